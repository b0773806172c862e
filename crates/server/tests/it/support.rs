//! Helpers for tests that run the `latchkey` binary itself.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// The binary Cargo built for these tests.
pub const LATCHKEY: &str = env!("CARGO_BIN_EXE_latchkey");

/// A `latchkey` command with a clean environment: none of the caller's latchkey or database
/// settings leak in, and the working directory has no `latchkey.toml`.
pub fn latchkey(cwd: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(LATCHKEY);
    for (key, _) in std::env::vars() {
        if key.starts_with("LATCHKEY_") || key.ends_with("DATABASE_URL") || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    command
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Output of a finished command.
pub struct Finished {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

pub async fn finish(mut command: tokio::process::Command) -> Finished {
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("latchkey did not finish within 60 s")
        .expect("latchkey could not be run");
    Finished {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Sends SIGTERM to a child process.
pub async fn terminate(child: &tokio::process::Child) {
    let pid = child.id().expect("the child is running").to_string();
    let status = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill could be run");
    assert!(status.success());
}

/// Polls `url` until it answers 200 or `limit` passes; returns how long it took.
pub async fn wait_until_ok(url: &str, limit: Duration) -> Duration {
    let client = reqwest::Client::new();
    let started = tokio::time::Instant::now();
    loop {
        if let Ok(response) = client.get(url).send().await
            && response.status() == 200
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{url} did not answer 200 within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
