//! Finds integration tests that were written but never registered.
//!
//! Tests are listed by hand in `test_cases![...]`; a function left off that list would compile
//! and silently never run. [`unregistered`] reads the test sources and names every function
//! with the signature the harness accepts (`fn name(ctx: TestContext)`, `async` or not, any
//! visibility, any parameter name, the type spelled with or without its path) whose
//! module path is not among the registered names. The harness runs it as one more test, so
//! plain `cargo test` fails when a test is forgotten.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Every test function under `root` (a test crate's directory: `main.rs` is its root module,
/// `a.rs` and `a/mod.rs` are module `a`, `a/b.rs` is `a::b`) missing from `registered`
/// (paths as `test_case!` records them: `module::name`), sorted.
///
/// # Errors
/// The directory or one of its files cannot be read, or it holds no test at all (a wrong
/// path must not pass as "nothing is missing").
pub fn unregistered(root: &Path, registered: &BTreeSet<String>) -> Result<Vec<String>, String> {
    let mut files = Vec::new();
    collect_rs_files(root, &mut files).map_err(|e| format!("{}: {e}", root.display()))?;
    let mut found = 0;
    let mut missing = Vec::new();
    for file in files {
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let module = module_path(root, &file);
        for name in test_functions(&text) {
            found += 1;
            let path = if module.is_empty() {
                name
            } else {
                format!("{module}::{name}")
            };
            if !registered.contains(&path) {
                missing.push(path);
            }
        }
    }
    if found == 0 {
        return Err(format!("no test functions found under {}", root.display()));
    }
    missing.sort();
    Ok(missing)
}

fn collect_rs_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_rs_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// `main.rs` → ``, `email.rs` and `email/mod.rs` → `email`, `email/codes.rs` → `email::codes`.
fn module_path(root: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(root).unwrap_or(file).with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "main") {
        parts.pop();
    }
    parts.join("::")
}

/// Names of the functions in `source` whose only parameter is a `TestContext` taken by value
/// (line comments, doc comments included, are skipped).
fn test_functions(source: &str) -> Vec<String> {
    let code: String = source
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .flat_map(|line| [line, "\n"])
        .collect();
    let mut names = Vec::new();
    let mut rest = code.as_str();
    while let Some(at) = find_fn_keyword(rest) {
        let after = &rest[at + 3..];
        let name: String = after
            .trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let tail = after.trim_start()[name.len()..].trim_start();
        if !name.is_empty()
            && let Some(params) = tail.strip_prefix('(')
            && let Some(end) = params.find(')')
            && takes_a_test_context(&params[..end])
        {
            names.push(name);
        }
        rest = after;
    }
    names
}

/// The offset of the next `fn` keyword (not part of a longer identifier) in `text`.
fn find_fn_keyword(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(found) = text[from..].find("fn ") {
        let at = from + found;
        let before = at.checked_sub(1).map(|i| bytes[i]);
        if before.is_none_or(|b| !(b.is_ascii_alphanumeric() || b == b'_')) {
            return Some(at);
        }
        from = at + 3;
    }
    None
}

/// `ctx: TestContext`, `_ctx: latchkey_testkit::TestContext,` and the like; not a reference.
fn takes_a_test_context(params: &str) -> bool {
    let compact: String = params.chars().filter(|c| !c.is_whitespace()).collect();
    let compact = compact.strip_suffix(',').unwrap_or(&compact);
    let Some((name, ty)) = compact.split_once(':') else {
        return false;
    };
    let name = name
        .strip_prefix("mut")
        .filter(|_| name.len() > 3)
        .unwrap_or(name);
    !name.is_empty()
        && name.chars().all(|c| c.is_alphanumeric() || c == '_')
        && (ty == "TestContext" || ty.ends_with("::TestContext"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signatures_the_harness_accepts_are_found() {
        let source = "
            pub async fn one(ctx: TestContext) {}
            pub async fn two(
                ctx: TestContext,
            ) {}
            async fn three(_ctx: latchkey_testkit::TestContext) {}
            pub fn four(mut ctx: TestContext) -> TestFuture { todo!() }
            async fn helper(ctx: &TestContext) {}
            async fn other(app: &TestApp, ctx: TestContext) {}
            pub async fn plain() {}
            // pub async fn commented(ctx: TestContext) {}
            /// `async fn documented(ctx: TestContext)`
            fn notfn(ctx: TestContextual) {}
        ";
        assert_eq!(test_functions(source), ["one", "two", "three", "four"]);
    }

    #[test]
    fn module_paths_follow_rusts_file_layout() {
        let root = Path::new("/t/it");
        assert_eq!(module_path(root, Path::new("/t/it/main.rs")), "");
        assert_eq!(module_path(root, Path::new("/t/it/email.rs")), "email");
        assert_eq!(module_path(root, Path::new("/t/it/bapi/mod.rs")), "bapi");
        assert_eq!(
            module_path(root, Path::new("/t/it/email/codes.rs")),
            "email::codes"
        );
    }

    #[test]
    fn a_forgotten_test_is_named_and_a_wrong_directory_is_an_error() {
        let dir = std::env::temp_dir().join(format!("latchkey-registry-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("email")).unwrap();
        std::fs::write(dir.join("main.rs"), "fn main() {}").unwrap();
        std::fs::write(
            dir.join("email/codes.rs"),
            "pub async fn kept(ctx: TestContext) {}\npub async fn forgotten(ctx: TestContext) {}",
        )
        .unwrap();
        let registered = BTreeSet::from(["email::codes::kept".to_owned()]);
        assert_eq!(
            unregistered(&dir, &registered).unwrap(),
            ["email::codes::forgotten"]
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(unregistered(&dir, &registered).is_err());
        let empty =
            std::env::temp_dir().join(format!("latchkey-registry-e-{}", std::process::id()));
        std::fs::create_dir_all(&empty).unwrap();
        assert!(unregistered(&empty, &registered).is_err());
        std::fs::remove_dir_all(&empty).unwrap();
    }
}
