//! The example Next.js apps in `examples/` (Clerk's own SDK, `@clerk/nextjs` 6 and 7), built
//! and started beside latchkey, and a front door that gives them and latchkey one origin.
//!
//! Installing and building is the test's job, so a plain `cargo test` on a fresh machine works:
//! `npm ci` from each app's lock file, `next build` with the build-time environment (Next.js
//! bakes `NEXT_PUBLIC_*` into the bundles), both at most once per test process, and not at all
//! when the sources, lock file and build environment are those of the last build (a stamp in
//! `.next/`). Clerk's browser scripts come from the checksummed step in
//! `interop/clerk-assets/`. Anything missing or failing fails the test.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use sha2::{Digest as _, Sha256};
use tokio_util::sync::CancellationToken;

/// The repository's root.
fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One of the example apps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Example {
    /// `examples/nextjs`: `@clerk/nextjs` 6, `<SignedIn>`, clerk-js 5 with its UI inside.
    Core2,
    /// `examples/nextjs-core3`: `@clerk/nextjs` 7, `<Show when="signed-in">`, clerk-js 6 and
    /// `@clerk/ui` 1.
    Core3,
}

impl Example {
    #[must_use]
    pub fn dir(self) -> PathBuf {
        repo().join("examples").join(match self {
            Self::Core2 => "nextjs",
            Self::Core3 => "nextjs-core3",
        })
    }
}

/// `interop/clerk-assets/npm`, filled by the checksummed fetch step (run here once per
/// process; it skips packages already present with their pinned integrity).
///
/// # Panics
/// If Node.js is missing, npm cannot fetch a package, or a checksum differs.
#[must_use]
pub fn clerk_scripts_dir() -> PathBuf {
    static FETCHED: Mutex<bool> = Mutex::new(false);
    let mut fetched = FETCHED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let assets = repo().join("interop/clerk-assets");
    if !*fetched {
        let output = std::process::Command::new("node")
            .arg("fetch.mjs")
            .current_dir(&assets)
            .output()
            .unwrap_or_else(|e| panic!("cannot run node (needed for Clerk's scripts): {e}"));
        assert!(
            output.status.success(),
            "interop/clerk-assets/fetch.mjs failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        *fetched = true;
    }
    assets.join("npm")
}

/// The build of each example made by this process, keyed by its build environment.
static BUILT: Mutex<BTreeSet<(Example, String)>> = Mutex::new(BTreeSet::new());

/// Installs the example's packages (`npm ci`) and builds it (`next build`) with `env`, unless
/// this process or an earlier one already built the same sources with the same environment.
///
/// # Panics
/// If npm or the build fails.
pub fn build(example: Example, env: &BTreeMap<String, String>) {
    let mut built = BUILT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let stamp = build_stamp(example, env);
    if built.contains(&(example, stamp.clone())) {
        return;
    }
    let dir = example.dir();
    install(&dir);
    let stamp_file = dir.join(".next/latchkey-build-stamp");
    if std::fs::read_to_string(&stamp_file).ok().as_deref() != Some(stamp.as_str()) {
        let started = Instant::now();
        let output = std::process::Command::new("node")
            .args(["node_modules/next/dist/bin/next", "build"])
            .current_dir(&dir)
            .envs(env)
            .env("NEXT_TELEMETRY_DISABLED", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run next build in {}: {e}", dir.display()));
        assert!(
            output.status.success(),
            "next build in {} failed:\n{}\n{}",
            dir.display(),
            tail(&String::from_utf8_lossy(&output.stdout), 60),
            tail(&String::from_utf8_lossy(&output.stderr), 60)
        );
        std::fs::write(&stamp_file, &stamp).unwrap();
        let note = format!(
            "latchkey: built {} in {:.0?}\n",
            dir.display(),
            started.elapsed()
        );
        let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), note.as_bytes());
    }
    built.insert((example, stamp));
}

/// `npm ci` in `dir` unless its `node_modules` is newer than its lock file.
fn install(dir: &Path) {
    let marker = dir.join("node_modules/.package-lock.json");
    let lock = dir.join("package-lock.json");
    let fresh = match (std::fs::metadata(&marker), std::fs::metadata(&lock)) {
        (Ok(m), Ok(l)) => m.modified().ok() >= l.modified().ok(),
        _ => false,
    };
    if fresh {
        return;
    }
    let output = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .env("NEXT_TELEMETRY_DISABLED", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run npm (Node.js is needed for the example apps): {e}"));
    assert!(
        output.status.success(),
        "npm ci in {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A digest of what a build depends on: the app's sources and configuration files, its lock
/// file and the build environment.
fn build_stamp(example: Example, env: &BTreeMap<String, String>) -> String {
    let dir = example.dir();
    let mut files = Vec::new();
    collect(&dir.join("src"), &mut files);
    for name in [
        "package-lock.json",
        "package.json",
        "tsconfig.json",
        "next.config.ts",
        "next.config.mjs",
    ] {
        let path = dir.join(name);
        if path.exists() {
            files.push(path);
        }
    }
    files.sort();
    let mut hash = Sha256::new();
    for file in files {
        hash.update(
            file.strip_prefix(&dir)
                .unwrap()
                .to_string_lossy()
                .as_bytes(),
        );
        hash.update([0]);
        hash.update(std::fs::read(&file).unwrap());
        hash.update([0]);
    }
    for (name, value) in env {
        hash.update(format!("{name}={value}\0").as_bytes());
    }
    hex::encode(hash.finalize())
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A running `next start`, killed with its process group when dropped.
pub struct NextServer {
    child: tokio::process::Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    pub addr: SocketAddr,
    log: PathBuf,
}

impl NextServer {
    /// Starts the built `example` on a free loopback port with the run-time `env`, its output
    /// in `log`, and waits (30 s at most) until it answers. The port is free when picked but
    /// not held: if another listener takes it before `next` binds it, `next` exits with
    /// `EADDRINUSE` and another port is tried. Only an answer once `next` has said it is ready,
    /// from a `next` still running, counts as started.
    ///
    /// # Panics
    /// If it does not start.
    pub async fn start(example: Example, env: &BTreeMap<String, String>, log: PathBuf) -> Self {
        for _ in 0..5 {
            if let Some(server) =
                Self::start_on(example, env, &log, crate::pgbouncer::free_port()).await
            {
                return server;
            }
        }
        panic!(
            "next start lost its port five times:\n{}",
            tail(&std::fs::read_to_string(&log).unwrap_or_default(), 80)
        );
    }

    /// One attempt of [`NextServer::start`]: `None` if `next` exited because the port was taken.
    async fn start_on(
        example: Example,
        env: &BTreeMap<String, String>,
        log: &Path,
        port: u16,
    ) -> Option<Self> {
        let dir = example.dir();
        let out = std::fs::File::create(log).unwrap();
        let child = tokio::process::Command::new("node")
            .args([
                "node_modules/next/dist/bin/next",
                "start",
                "-H",
                "localhost",
            ])
            .arg("-p")
            .arg(port.to_string())
            .current_dir(&dir)
            .envs(env)
            .env("NEXT_TELEMETRY_DISABLED", "1")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start next in {}: {e}", dir.display()));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut server = Self {
            child,
            url: format!("http://{addr}"),
            addr,
            log: log.to_owned(),
        };
        let http = crate::client::client();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if server.child.try_wait().unwrap().is_some() {
                let log = server.log();
                assert!(log.contains("EADDRINUSE"), "next start exited:\n{log}");
                return None;
            }
            // `next` prints "Ready" once it listens; an answer before that is another
            // listener's, on the port `next` is about to fail to bind.
            let answered = http
                .get(format!("{}/api/me", server.url))
                .send()
                .await
                .is_ok();
            let from_next = answered && server.log().contains("Ready in");
            if from_next && server.child.try_wait().unwrap().is_none() {
                return Some(server);
            }
            assert!(
                Instant::now() < deadline,
                "next start did not answer within 30 s:\n{}",
                server.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// What the server printed so far (the last 80 lines).
    #[must_use]
    pub fn log(&self) -> String {
        tail(&std::fs::read_to_string(&self.log).unwrap_or_default(), 80)
    }
}

impl Drop for NextServer {
    fn drop(&mut self) {
        if let Some(pid) = self
            .child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}

/// One origin for the browser, as an app's load balancer gives it: paths under a prefix go to
/// latchkey, everything else to the app. Requests and answers pass unchanged (the `Host`
/// header included, so both see the origin the browser used); redirects are not followed.
pub struct FrontDoor {
    pub addr: SocketAddr,
    /// `http://localhost:<port>`: the origin the browser uses.
    pub url: String,
    routes: Arc<Routes>,
    stop: CancellationToken,
}

struct Routes {
    app: Mutex<Option<SocketAddr>>,
    latchkey: Mutex<Option<SocketAddr>>,
    prefixes: Vec<String>,
    /// `METHOD path [(_method=…)] -> status` of each request latchkey answered, and any
    /// request either side did not answer or answered only in part, in order.
    seen: Arc<Mutex<Vec<String>>>,
    http: reqwest::Client,
}

impl FrontDoor {
    /// Listens on a loopback port; paths starting with one of `latchkey_prefixes` (e.g.
    /// `/fapi/`) go to latchkey, the rest to the app. Targets are set later (the app's
    /// environment names this origin, so it exists first).
    pub async fn start(latchkey_prefixes: &[&str]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let routes = Arc::new(Routes {
            app: Mutex::new(None),
            latchkey: Mutex::new(None),
            prefixes: latchkey_prefixes.iter().map(|p| (*p).to_owned()).collect(),
            seen: Arc::default(),
            // A connection per request: Node closes idle keep-alive connections after 5 s,
            // and a request sent on one it has just closed would fail.
            http: {
                crate::client::install_crypto_provider();
                reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .pool_max_idle_per_host(0)
                    .build()
                    .unwrap()
            },
        });
        let router = axum::Router::new()
            .fallback(forward)
            .with_state(routes.clone());
        let stop = crate::serve_until_cancelled(listener, router);
        Self {
            addr,
            url: format!("http://localhost:{}", addr.port()),
            routes,
            stop,
        }
    }

    pub fn route_app_to(&self, addr: SocketAddr) {
        *self.routes.app.lock().unwrap() = Some(addr);
    }

    pub fn route_latchkey_to(&self, addr: SocketAddr) {
        *self.routes.latchkey.lock().unwrap() = Some(addr);
    }

    /// The requests sent to latchkey so far.
    #[must_use]
    pub fn latchkey_requests(&self) -> Vec<String> {
        self.routes.seen.lock().unwrap().clone()
    }

    /// The live list behind [`FrontDoor::latchkey_requests`].
    #[must_use]
    pub fn latchkey_requests_log(&self) -> Arc<Mutex<Vec<String>>> {
        self.routes.seen.clone()
    }
}

impl Drop for FrontDoor {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
];

async fn forward(State(routes): State<Arc<Routes>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let to_latchkey = routes
        .prefixes
        .iter()
        .any(|p| parts.uri.path().starts_with(p.as_str()));
    // `METHOD path [(_method=…)]` of a request for latchkey, logged with its answer's status.
    let seen = to_latchkey.then(|| {
        let override_method = parts.uri.query().and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "_method")
                .map(|(_, v)| v.into_owned())
        });
        let mut line = format!("{} {}", parts.method, parts.uri.path());
        if let Some(method) = override_method {
            line.push_str(&format!(" (_method={method})"));
        }
        line
    });
    let target = if to_latchkey {
        *routes.latchkey.lock().unwrap()
    } else {
        *routes.app.lock().unwrap()
    };
    let Some(target) = target else {
        return Response::builder()
            .status(502)
            .body(Body::from("no target yet"))
            .unwrap();
    };
    let Ok(bytes) = axum::body::to_bytes(body, 16 << 20).await else {
        return Response::builder().status(413).body(Body::empty()).unwrap();
    };
    let mut outgoing = routes.http.request(
        parts.method.clone(),
        format!("http://{target}{path_and_query}"),
    );
    for (name, value) in &parts.headers {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            outgoing = outgoing.header(name, value);
        }
    }
    let reply = match outgoing.body(bytes).send().await {
        Ok(reply) => reply,
        Err(e) => return lost(&routes, &parts, &format!("no answer from {target}"), &e),
    };
    if let Some(line) = seen {
        let status = reply.status().as_u16();
        routes
            .seen
            .lock()
            .unwrap()
            .push(format!("{line} -> {status}"));
    }
    let mut response = Response::builder().status(reply.status());
    for (name, value) in reply.headers() {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            response = response.header(name, value);
        }
    }
    match reply.bytes().await {
        Ok(body) => response.body(Body::from(body)).unwrap(),
        Err(e) => lost(
            &routes,
            &parts,
            &format!("answer from {target} cut short"),
            &e,
        ),
    }
}

/// A 502 for a request either side did not answer in full, logged too (a lost script is a lost
/// page; an empty one passed on would hide it).
fn lost(
    routes: &Routes,
    parts: &axum::http::request::Parts,
    what: &str,
    e: &reqwest::Error,
) -> Response {
    routes.seen.lock().unwrap().push(format!(
        "{} {} -> {what}: {e}",
        parts.method,
        parts.uri.path()
    ));
    Response::builder()
        .status(502)
        .body(Body::from(format!("upstream: {e}")))
        .unwrap()
}
