//! Running the official third-party libraries in `interop/` (Node.js) against latchkey.
//!
//! The packages are installed on first use with `npm ci` from the committed lock file, so a
//! plain `cargo test` on a fresh machine works; a failed install fails the test.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;

use tokio::io::AsyncWriteExt as _;

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop")
}

static INSTALLED: Mutex<bool> = Mutex::new(false);

fn ensure_installed() {
    let mut installed = INSTALLED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if *installed {
        return;
    }
    let dir = interop_dir();
    let marker = dir.join("node_modules/.package-lock.json");
    let lock = dir.join("package-lock.json");
    let fresh = match (std::fs::metadata(&marker), std::fs::metadata(&lock)) {
        (Ok(m), Ok(l)) => m.modified().ok() >= l.modified().ok(),
        _ => false,
    };
    if !fresh {
        let output = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run npm (Node.js is needed for interop tests): {e}")
            });
        assert!(
            output.status.success(),
            "npm ci in interop/ failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    *installed = true;
}

/// Runs `node interop/<script> args…` with `stdin`, returning its stdout.
///
/// # Panics
/// If Node.js or the packages are missing, or the script fails.
pub async fn node(script: &str, args: &[&str], stdin: &[u8]) -> String {
    tokio::task::spawn_blocking(ensure_installed).await.unwrap();
    let mut child = tokio::process::Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(interop_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run node: {e}"));
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).await.unwrap();
    drop(input);
    let output = child.wait_with_output().await.unwrap();
    assert!(
        output.status.success(),
        "node {script} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}
