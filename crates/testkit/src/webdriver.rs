//! A real browser for end-to-end tests: Debian's headless Chromium, driven through chromedriver
//! over the W3C WebDriver protocol. It starts and stops the browser; it judges no page.
//!
//! The client is written here rather than taken from a WebDriver crate: the dozen commands tests
//! need are small JSON requests over the `reqwest` the testkit already has.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

/// Where Debian's `chromium` and `chromium-driver` packages install them.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The key under which WebDriver returns an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A WebDriver command that failed: the protocol's error and the first line of its message.
type Error = String;

/// A headless Chromium with a fresh profile. Dropping it (also when the test panics) closes
/// the browser, kills chromedriver with everything it started, and removes the profile.
pub struct Chrome {
    http: reqwest::Client,
    port: u16,
    session: String,
    driver: tokio::process::Child,
    profile: Option<tempfile::TempDir>,
}

impl Chrome {
    /// Starts chromedriver on a free loopback port and opens a browser with an empty profile.
    ///
    /// # Panics
    /// If Chromium or chromedriver is not installed or does not start: the test needs them.
    pub async fn start() -> Self {
        for path in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(path).exists(),
                "{path} is missing: install Debian's chromium and chromium-driver packages \
                 (.ci/run does)"
            );
        }
        crate::client::install_crypto_provider();
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let profile = tempfile::Builder::new()
            .prefix("latchkey-chromium-")
            .tempdir()
            .unwrap();
        // Without the background-networking flags Chromium dials out at start, and a closed
        // network refuses it.
        let mut args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
        ]
        .map(str::to_owned)
        .to_vec();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let (driver, port) = start_driver(&http).await;
        let mut chrome = Self {
            http,
            port,
            session: String::new(),
            driver,
            profile: Some(profile),
        };
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "timeouts": { "pageLoad": 30_000, "script": 10_000, "implicit": 0 },
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
            "goog:loggingPrefs": { "browser": "ALL" },
        }}});
        let reply = chrome
            .call(Method::POST, "/session".to_owned(), Some(capabilities))
            .await
            .unwrap_or_else(|e| panic!("chromedriver could not start Chromium: {e}"));
        chrome.session = reply["sessionId"].as_str().unwrap().to_owned();
        chrome
    }

    /// Opens `url` and waits until it has loaded.
    pub async fn goto(&self, url: &str) {
        let result = self
            .command(Method::POST, "/url", json!({ "url": url }))
            .await;
        self.must(&format!("cannot open {url}"), result).await;
    }

    /// The address of the page shown.
    pub async fn current_url(&self) -> String {
        let result = self.command(Method::GET, "/url", Value::Null).await;
        let url = self.must("cannot read the URL", result).await;
        url.as_str().unwrap_or_default().to_owned()
    }

    /// The path of the page shown, without query.
    pub async fn path(&self) -> String {
        let url = self.current_url().await;
        url::Url::parse(&url).map_or(url, |u| u.path().to_owned())
    }

    /// The page's current HTML.
    pub async fn source(&self) -> String {
        let result = self.command(Method::GET, "/source", Value::Null).await;
        let source = self.must("cannot read the page source", result).await;
        source.as_str().unwrap_or_default().to_owned()
    }

    /// Types `text` into the field at `css`, replacing what it held.
    pub async fn fill(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        let cleared = self
            .command(Method::POST, &format!("/element/{id}/clear"), json!({}))
            .await;
        self.must(&format!("cannot clear {css}"), cleared).await;
        let body = json!({ "text": text });
        let typed = self
            .command(Method::POST, &format!("/element/{id}/value"), body)
            .await;
        self.must(&format!("cannot type into {css}"), typed).await;
    }

    /// Clicks the element at `css`; a click that submits a form waits for the next page.
    pub async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.click_element(css, &id).await;
    }

    /// Clicks the element at `css` if there is one and it takes the click (not covered, not
    /// detached); says why not otherwise. For pages that are still settling.
    pub async fn try_click(&self, css: &str) -> Result<(), String> {
        let id = self.find("css selector", css).await?;
        let path = format!("/element/{id}/click");
        self.command(Method::POST, &path, json!({}))
            .await
            .map(|_| ())
    }

    /// The browser console's messages since the last call (errors, warnings, logs), one per
    /// line, for failure messages.
    pub async fn console_log(&self) -> String {
        let result = self
            .command(Method::POST, "/se/log", json!({ "type": "browser" }))
            .await;
        match result {
            Ok(entries) => entries
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| {
                    format!(
                        "{} {}",
                        e["level"].as_str().unwrap_or_default(),
                        e["message"].as_str().unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"),
            Err(e) => format!("(no console log: {e})"),
        }
    }

    /// Whether an element matches `css` now.
    pub async fn is_present(&self, css: &str) -> bool {
        self.find("css selector", css).await.is_ok()
    }

    /// Clicks the button whose text is `text`.
    pub async fn click_button(&self, text: &str) {
        assert!(
            !text.contains('\''),
            "button texts with quotes are not supported"
        );
        let xpath = format!("//button[normalize-space(.)='{text}']");
        let found = self.find("xpath", &xpath).await;
        let id = self.must(&format!("no button says {text:?}"), found).await;
        self.click_element(&xpath, &id).await;
    }

    /// The rendered text of the first element at `css`.
    pub async fn text(&self, css: &str) -> String {
        let id = self.element(css).await;
        self.text_of(css, &id).await
    }

    /// The rendered texts of every element at `css` (none is fine).
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let body = json!({ "using": "css selector", "value": css });
        let found = self.command(Method::POST, "/elements", body).await;
        let found = self.must(&format!("cannot look for {css}"), found).await;
        let mut texts = Vec::new();
        for element in found.as_array().into_iter().flatten() {
            let id = element[ELEMENT].as_str().unwrap_or_default();
            texts.push(self.text_of(css, id).await);
        }
        texts
    }

    /// An attribute of the first element at `css`, if it has it.
    pub async fn attribute(&self, css: &str, name: &str) -> Option<String> {
        let id = self.element(css).await;
        let path = format!("/element/{id}/attribute/{name}");
        let result = self.command(Method::GET, &path, Value::Null).await;
        let value = self
            .must(&format!("cannot read {name} of {css}"), result)
            .await;
        value.as_str().map(str::to_owned)
    }

    /// Runs `script` (a function body; arguments in `arguments`) in the page; returns its result.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        let body = json!({ "script": script, "args": args });
        let result = self.command(Method::POST, "/execute/sync", body).await;
        self.must("the script failed", result).await
    }

    /// Waits until an element matches `css`.
    pub async fn wait_for(&self, css: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.find("css selector", css).await.is_err() {
            if Instant::now() > deadline {
                self.fail::<()>(&format!("nothing matched {css} within {timeout:?}"))
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the page shown is at `path`.
    pub async fn wait_for_path(&self, path: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.path().await != path {
            if Instant::now() > deadline {
                self.fail::<()>(&format!(
                    "the browser did not reach {path} within {timeout:?}"
                ))
                .await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Adds a virtual authenticator (W3C WebAuthn §11, "Virtual Authenticators"): a platform
    /// passkey provider (CTAP2, transport `internal`) that keeps discoverable credentials and
    /// verifies its user at every request without asking. Returns its id.
    pub async fn add_virtual_authenticator(&self) -> String {
        let options = json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserConsenting": true,
            "isUserVerified": true,
        });
        let result = self
            .command(Method::POST, "/webauthn/authenticator", options)
            .await;
        let id = self
            .must("cannot add a virtual authenticator", result)
            .await;
        id.as_str().unwrap_or_default().to_owned()
    }

    /// The credentials a virtual authenticator holds (`credentialId`, `rpId`, `signCount`, …).
    pub async fn virtual_credentials(&self, authenticator: &str) -> Vec<Value> {
        let path = format!("/webauthn/authenticator/{authenticator}/credentials");
        let result = self.command(Method::GET, &path, Value::Null).await;
        let list = self.must("cannot list virtual credentials", result).await;
        list.as_array().cloned().unwrap_or_default()
    }

    /// Puts `credential` (as [`Chrome::virtual_credentials`] lists them, private key included)
    /// into a virtual authenticator: the same passkey on another device.
    pub async fn add_virtual_credential(&self, authenticator: &str, credential: &Value) {
        let path = format!("/webauthn/authenticator/{authenticator}/credential");
        let result = self.command(Method::POST, &path, credential.clone()).await;
        self.must("cannot add a virtual credential", result).await;
    }

    async fn element(&self, css: &str) -> String {
        let found = self.find("css selector", css).await;
        self.must(&format!("nothing matches {css}"), found).await
    }

    async fn find(&self, using: &str, value: &str) -> Result<String, Error> {
        let body = json!({ "using": using, "value": value });
        let found = self.command(Method::POST, "/element", body).await?;
        Ok(found[ELEMENT].as_str().unwrap_or_default().to_owned())
    }

    async fn click_element(&self, what: &str, id: &str) {
        let path = format!("/element/{id}/click");
        let result = self.command(Method::POST, &path, json!({})).await;
        self.must(&format!("cannot click {what}"), result).await;
    }

    async fn text_of(&self, what: &str, id: &str) -> String {
        let path = format!("/element/{id}/text");
        let result = self.command(Method::GET, &path, Value::Null).await;
        let text = self
            .must(&format!("cannot read the text of {what}"), result)
            .await;
        text.as_str().unwrap_or_default().to_owned()
    }

    /// A command in this browser's session; `Value::Null` sends no body.
    async fn command(&self, method: Method, path: &str, body: Value) -> Result<Value, Error> {
        let path = format!("/session/{}{path}", self.session);
        self.call(method, path, (!body.is_null()).then_some(body))
            .await
    }

    async fn call(
        &self,
        method: Method,
        path: String,
        body: Option<Value>,
    ) -> Result<Value, Error> {
        let mut request = self
            .http
            .request(method, format!("http://127.0.0.1:{}{path}", self.port));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("chromedriver did not answer {path}: {e}"))?;
        let ok = response.status().is_success();
        let mut reply: Value = response
            .json()
            .await
            .map_err(|e| format!("chromedriver answered {path} with no JSON: {e}"))?;
        let value = reply["value"].take();
        if ok {
            Ok(value)
        } else {
            let code = value["error"].as_str().unwrap_or("unknown error");
            let message = value["message"].as_str().unwrap_or_default();
            let first_line = message.lines().next().unwrap_or_default();
            if first_line.starts_with(code) {
                Err(first_line.to_owned())
            } else {
                Err(format!("{code}: {first_line}"))
            }
        }
    }

    async fn must<T>(&self, what: &str, result: Result<T, Error>) -> T {
        match result {
            Ok(value) => value,
            Err(e) => self.fail(&format!("{what}: {e}")).await,
        }
    }

    /// Panics with `what`, the page's address and the start of its body.
    async fn fail<T>(&self, what: &str) -> T {
        let url = self.command(Method::GET, "/url", Value::Null).await;
        let source = self.command(Method::GET, "/source", Value::Null).await;
        let url = url.map_or_else(|e| format!("unknown ({e})"), |u| u.to_string());
        let source = source.map(|s| s.as_str().unwrap_or_default().to_owned());
        let source = source.unwrap_or_else(|e| format!("unknown ({e})"));
        let body = source.find("<body").map_or(&*source, |i| &source[i..]);
        let snippet: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
        let snippet: String = snippet.chars().take(1500).collect();
        panic!("{what}\n  page: {url}\n  source: {snippet}");
    }
}

/// Starts chromedriver in its own process group (so Chromium can be killed with it) and waits
/// until it is ready. A port taken between choosing and binding gets another try.
async fn start_driver(http: &reqwest::Client) -> (tokio::process::Child, u16) {
    for _ in 0..3 {
        let port = crate::pgbouncer::free_port();
        let mut child = tokio::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
            let status = http
                .get(format!("http://127.0.0.1:{port}/status"))
                .send()
                .await;
            if let Ok(status) = status
                && let Ok(status) = status.json::<Value>().await
                && status["value"]["ready"] == true
            {
                return (child, port);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        kill_group(&mut child);
    }
    panic!("{CHROMEDRIVER} did not become ready on a loopback port");
}

/// Kills `child` and its process group (Chromium included) and reaps `child`. Chromium's
/// processes are not waited for: killed, they write nothing more, and init reaps them.
fn kill_group(child: &mut tokio::process::Child) {
    let Some(pid) = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    let deadline = Instant::now() + Duration::from_secs(1);
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `DELETE /session/<id>`, written by hand because `Drop` cannot await.
fn delete_session(port: u16, session: &str) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!(
        "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Connection: close\r\nContent-Length: 0\r\n\r\n"
    );
    // The answer comes once Chromium has quit; chromedriver keeps the connection open after it.
    if stream.write_all(request.as_bytes()).is_ok() {
        let _ = stream.read(&mut [0; 512]);
    }
}

impl Drop for Chrome {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            delete_session(self.port, &self.session);
        }
        kill_group(&mut self.driver);
        if let Some(profile) = self.profile.take() {
            let path = profile.path().to_owned();
            if profile.close().is_err() {
                // A process killed mid-write may have added a file while the first pass ran.
                std::thread::sleep(Duration::from_millis(100));
                let _ = std::fs::remove_dir_all(path);
            }
        }
    }
}
