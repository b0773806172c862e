//! `latchkey`: everything happens in the library; see `latchkey --help`.

fn main() -> std::process::ExitCode {
    latchkey_server::cli::main()
}
