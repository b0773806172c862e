//! Helpers for tests that run the `latchkey` binary itself.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use latchkey_testkit::pgbouncer::free_port;
use tokio::io::{AsyncBufReadExt as _, AsyncRead};

/// The binary Cargo built for these tests.
pub const LATCHKEY: &str = env!("CARGO_BIN_EXE_latchkey");

/// A `latchkey` command with a clean environment: none of the caller's latchkey, database or
/// trust-store (`SSL_CERT_FILE`, `SSL_CERT_DIR`) settings leak in, and the working directory
/// has no `latchkey.toml`.
pub fn latchkey(cwd: &Path) -> tokio::process::Command {
    clean_command(LATCHKEY, cwd)
}

/// `program` with the clean environment of [`latchkey`] (for a shell that then runs it).
pub fn clean_command(program: &str, cwd: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program);
    // `vars_os`: a non-UTF-8 variable in the caller's environment must not panic the tests.
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if key.starts_with("LATCHKEY_")
            || key.ends_with("DATABASE_URL")
            || key.starts_with("SSL_CERT_")
            || key == "RUST_LOG"
        {
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

/// `latchkey serve` as an operator runs it, in a child process on a free loopback port, with
/// everything it prints collected.
pub struct Served {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    child: tokio::process::Child,
    output: Arc<Mutex<String>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Served {
    /// Starts `latchkey serve --data-dir data` in `cwd` with `env` on top of the clean
    /// environment of [`latchkey`], and waits until `/readyz` answers.
    pub async fn start(cwd: &Path, env: &[(&str, &str)]) -> Self {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut command = latchkey(cwd);
        command
            .args(["serve", "--data-dir", "data", "--addr", &addr])
            .envs(env.iter().copied());
        Self::spawn(command, &addr).await
    }

    /// Runs `command`, a `latchkey serve` that listens on `addr`, reading everything it prints
    /// as it comes (a child whose pipe fills up blocks in its next log line, and with it the
    /// thread that wrote it), and waits until `/readyz` answers.
    pub async fn spawn(mut command: tokio::process::Command, addr: &str) -> Self {
        let mut child = command.spawn().expect("latchkey starts");
        let output = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            collect(child.stdout.take().unwrap(), output.clone()),
            collect(child.stderr.take().unwrap(), output.clone()),
        ];
        let url = format!("http://{addr}");
        wait_until_ok(&format!("{url}/readyz"), Duration::from_secs(30)).await;
        Self {
            url,
            child,
            output,
            readers,
        }
    }

    /// Stops it with SIGTERM, expects a clean exit, and returns all it printed (stdout and
    /// stderr, line by line as they came).
    pub async fn stop(mut self) -> String {
        terminate(&self.child).await;
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("latchkey stops within 10 s of SIGTERM")
            .unwrap();
        let output = self.output().await;
        assert!(status.success(), "{status:?}; it printed:\n{output}");
        output
    }

    /// Kills it with SIGKILL, as a crash would; returns all it printed.
    pub async fn kill(mut self) -> String {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
        self.output().await
    }

    async fn output(&mut self) -> String {
        for reader in self.readers.drain(..) {
            reader.await.unwrap();
        }
        self.output.lock().unwrap().clone()
    }
}

/// Appends each line of `stream` to `into` until the stream ends.
fn collect(
    stream: impl AsyncRead + Unpin + Send + 'static,
    into: Arc<Mutex<String>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut text = into.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    })
}
