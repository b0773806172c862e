//! Running the official third-party libraries in `interop/` (Node.js, and Python for the
//! Prometheus parser) against latchkey.
//!
//! The packages are installed on first use, with `npm ci` from the committed lock file and
//! `pip install --require-hashes` from `requirements.txt`, so a plain `cargo test` on a fresh
//! machine works; a failed install fails the test.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};

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

static PYTHON_INSTALLED: Mutex<bool> = Mutex::new(false);

fn ensure_python_installed() {
    let mut installed = PYTHON_INSTALLED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if *installed {
        return;
    }
    let dir = interop_dir();
    let marker = dir.join(".python/.installed");
    let requirements = dir.join("requirements.txt");
    let fresh = match (std::fs::metadata(&marker), std::fs::metadata(&requirements)) {
        (Ok(m), Ok(r)) => m.modified().ok() >= r.modified().ok(),
        _ => false,
    };
    if !fresh {
        let output = std::process::Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--require-hashes",
                "--upgrade",
                "--target",
                ".python",
                "-r",
                "requirements.txt",
            ])
            .current_dir(&dir)
            .output()
            .unwrap_or_else(|e| panic!("cannot run python3 -m pip: {e}"));
        assert!(
            output.status.success(),
            "pip install in interop/ failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::fs::write(&marker, b"").unwrap();
    }
    *installed = true;
}

/// Runs `python3 interop/<script> args…` with the packages of `requirements.txt` and `stdin`,
/// returning its stdout.
///
/// # Panics
/// If Python or the packages are missing, or the script fails.
pub async fn python(script: &str, args: &[&str], stdin: &[u8]) -> String {
    tokio::task::spawn_blocking(ensure_python_installed)
        .await
        .unwrap();
    let mut command = tokio::process::Command::new("python3");
    command
        .arg(script)
        .args(args)
        .env("PYTHONPATH", interop_dir().join(".python"));
    run(command, script, stdin).await
}

/// Runs `node interop/<script> args…` with `stdin`, returning its stdout.
///
/// # Panics
/// If Node.js or the packages are missing, or the script fails.
pub async fn node(script: &str, args: &[&str], stdin: &[u8]) -> String {
    tokio::task::spawn_blocking(ensure_installed).await.unwrap();
    let mut command = tokio::process::Command::new("node");
    command.arg(script).args(args);
    run(command, script, stdin).await
}

async fn run(mut command: tokio::process::Command, script: &str, stdin: &[u8]) -> String {
    let mut child = command
        .current_dir(interop_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).await.unwrap();
    drop(input);
    let output = child.wait_with_output().await.unwrap();
    assert!(
        output.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A Node script left running (a server), killed when dropped.
pub struct NodeServer {
    _child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    /// What the script printed after `READY ` on its first line (its URL).
    pub ready: String,
}

impl NodeServer {
    /// Writes `line` to the script's stdin and returns the next line it prints (30 s at most).
    ///
    /// # Panics
    /// If the script exits or stays silent.
    pub async fn tell(&mut self, line: &str) -> String {
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        self.stdin.flush().await.unwrap();
        next_line(&mut self.lines).await
    }
}

async fn next_line(
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
) -> String {
    tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
        .await
        .unwrap_or_else(|_| panic!("the node script said nothing within 30 s"))
        .unwrap()
        .unwrap_or_else(|| panic!("the node script exited"))
}

/// Starts `node interop/<script> args…` and waits (up to 30 s) for its `READY <text>` line.
///
/// # Panics
/// If Node.js or the packages are missing, or the script exits or stays silent.
pub async fn serve(script: &str, args: &[&str]) -> NodeServer {
    tokio::task::spawn_blocking(ensure_installed).await.unwrap();
    let mut child = tokio::process::Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(interop_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run node: {e}"));
    let stdin = child.stdin.take().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = next_line(&mut lines).await;
    let ready = line
        .strip_prefix("READY ")
        .unwrap_or_else(|| panic!("node {script} printed {line:?}"))
        .to_owned();
    NodeServer {
        _child: child,
        stdin,
        lines,
        ready,
    }
}
