//! Helpers shared by the tests: running the `latchkey` binary itself, and a Postgres database
//! behind a proxy the test can cut or stall.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use latchkey_server::config::Config;
use latchkey_store::DatabaseUrl;
use latchkey_testkit::pgbouncer::free_port;
use latchkey_testkit::proxy::TcpProxy;
use latchkey_testkit::{Call, Reply, TestApp, TestContext};
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

/// `latchkey <args> --data-dir <app's>` against `app`'s database, in a fresh directory (for
/// adding stdin or more environment before running it; [`run_on`] runs it as it is).
pub fn latchkey_on(ctx: &TestContext, app: &TestApp, args: &[&str]) -> tokio::process::Command {
    let mut command = latchkey(&ctx.temp_dir());
    command
        .args(args)
        .arg("--data-dir")
        .arg(&app.config.data_dir)
        .env(
            "DATABASE_URL",
            app.config.database_url.expose_for_child_process(),
        );
    command
}

/// Runs [`latchkey_on`] to its end.
pub async fn run_on(ctx: &TestContext, app: &TestApp, args: &[&str]) -> Finished {
    finish(latchkey_on(ctx, app, args)).await
}

/// Runs `latchkey <args>` in `cwd` with `env` on top of the clean environment of [`latchkey`],
/// to its end.
pub async fn run_in(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Finished {
    let mut command = latchkey(cwd);
    command.args(args).envs(env.iter().copied());
    finish(command).await
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

/// A fresh Postgres database, reached directly and through a proxy the test can cut or stall:
/// `(proxy, URL through it, direct URL)`.
pub async fn postgres_behind_a_proxy(ctx: &TestContext) -> (TcpProxy, DatabaseUrl, DatabaseUrl) {
    let pg = ctx.postgres().expect("postgres test").clone();
    let (host, port) = pg.host_port();
    let target = tokio::net::lookup_host((host.as_str(), port))
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = TcpProxy::start(target).await;
    let direct = ctx.fresh_database().await;
    let name = direct.postgres_database().unwrap();
    let through = format!("postgres://{}@{}/{name}", pg.user(), proxy.addr)
        .parse()
        .unwrap();
    (proxy, through, direct)
}

/// A server on a fresh Postgres database that it reaches through a proxy the test can cut
/// (its migrations go direct); `adjust` sets the rest of its configuration.
pub async fn spawn_behind_a_proxy(
    ctx: &TestContext,
    adjust: impl FnOnce(&mut Config),
) -> (TcpProxy, TestApp) {
    let (proxy, through, direct) = postgres_behind_a_proxy(ctx).await;
    let app = ctx
        .spawn_with(|config| {
            config.database_url = through;
            config.direct_database_url = Some(direct);
            adjust(config);
        })
        .await;
    (proxy, app)
}

/// Sends `call()` every 100 ms until it is answered 200, for up to `limit`; that answer.
pub async fn until_ok(limit: Duration, call: impl Fn() -> Call) -> Reply {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let reply = call().send().await;
        if reply.status == 200 {
            return reply;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not answered 200 within {limit:?}: {} {}",
            reply.status,
            reply.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls the app's users table until `check` holds, for up to 2 s (the acceptance bound for
/// an identity change to reach the app).
pub async fn app_users_within_two_seconds(
    app: &TestApp,
    what: &str,
    check: impl Fn(&[latchkey_app::users::AppUser]) -> bool,
) {
    let started = std::time::Instant::now();
    loop {
        let users = app.app_users().await;
        if check(&users) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{what} did not reach the app within 2 s: {users:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Calls `read` every 50 ms until `done` holds for what it returns, for up to `limit` (then
/// fails, naming `what`); that value.
pub async fn eventually<T: std::fmt::Debug, F: Future<Output = T>>(
    limit: Duration,
    what: &str,
    read: impl Fn() -> F,
    done: impl Fn(&T) -> bool,
) -> T {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let value = read().await;
        if done(&value) {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not {what} within {limit:?}: {value:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
