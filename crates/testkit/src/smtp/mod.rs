//! A small SMTP server on loopback for tests: it speaks enough of RFC 5321 for a real client
//! (EHLO/HELO, AUTH PLAIN and LOGIN when credentials are set, MAIL, RCPT, DATA with
//! dot-unstuffing, RSET, NOOP, QUIT), plain, over implicit TLS, or upgraded with STARTTLS
//! (RFC 3207), with a certificate from a CA the test made ([`TestCa`]). It keeps every message it
//! accepted and a transcript of each connection's commands (verbs only), and can be stopped and
//! started again on the same port to play a relay that goes away for a while, or be given
//! another certificate.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod message;
mod session;
mod tls;

use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use message::{Received, first_code};
pub use tls::{ServerCertificate, TestCa};

/// How a connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Security {
    /// Plain SMTP; `STARTTLS` is neither offered nor understood.
    #[default]
    Plain,
    /// TLS from the first byte (`smtps://`, port 465 in the wild).
    ImplicitTls,
    /// Plain until the client's `STARTTLS`, which EHLO offers; `AUTH` and `MAIL` are refused
    /// until then (`smtp://…?tls=required`, port 587 in the wild).
    StartTls,
}

struct Shared {
    messages: Mutex<Vec<Received>>,
    /// Per connection, in order: each command's verb (`AUTH` with its mechanism), `TLS` when a
    /// handshake completed and `TLS failed` when one did not.
    transcripts: Mutex<Vec<Vec<String>>>,
    credentials: Option<(String, String)>,
    security: Security,
    tls: Mutex<Option<Arc<ServerConfig>>>,
    arrived: Notify,
}

impl Shared {
    fn open_transcript(&self) -> usize {
        let mut transcripts = self.transcripts.lock().unwrap();
        transcripts.push(Vec::new());
        transcripts.len() - 1
    }

    fn note(&self, id: usize, event: &str) {
        self.transcripts.lock().unwrap()[id].push(event.to_owned());
    }

    fn tls_config(&self) -> Option<Arc<ServerConfig>> {
        self.tls.lock().unwrap().clone()
    }
}

/// What [`SmtpServer::builder`] starts.
#[derive(Debug, Default)]
#[must_use]
pub struct SmtpServerBuilder {
    credentials: Option<(String, String)>,
    security: Security,
    certificate: Option<ServerCertificate>,
}

impl SmtpServerBuilder {
    /// Requires `AUTH` (PLAIN or LOGIN) as `user` / `password` before `MAIL`.
    pub fn auth(mut self, user: &str, password: &str) -> Self {
        self.credentials = Some((user.to_owned(), password.to_owned()));
        self
    }

    /// TLS from the first byte, presenting `certificate`.
    pub fn implicit_tls(mut self, certificate: &ServerCertificate) -> Self {
        self.security = Security::ImplicitTls;
        self.certificate = Some(certificate.clone());
        self
    }

    /// STARTTLS, presenting `certificate` once upgraded.
    pub fn starttls(mut self, certificate: &ServerCertificate) -> Self {
        self.security = Security::StartTls;
        self.certificate = Some(certificate.clone());
        self
    }

    /// Listens on a free loopback port.
    pub async fn start(self) -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            messages: Mutex::new(Vec::new()),
            transcripts: Mutex::new(Vec::new()),
            credentials: self.credentials,
            security: self.security,
            tls: Mutex::new(self.certificate.map(|c| c.server_config())),
            arrived: Notify::new(),
        });
        let running = serve(listener, shared.clone());
        SmtpServer {
            addr,
            shared,
            running: Mutex::new(Some(running)),
        }
    }
}

struct Running {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// The server. Dropping it stops it.
pub struct SmtpServer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    running: Mutex<Option<Running>>,
}

impl SmtpServer {
    /// A plain server on a free loopback port that accepts mail from anyone.
    pub async fn start() -> Self {
        Self::builder().start().await
    }

    /// A plain server that requires `AUTH` (PLAIN or LOGIN) as `user` / `password` before
    /// `MAIL`.
    pub async fn start_with_auth(user: &str, password: &str) -> Self {
        Self::builder().auth(user, password).start().await
    }

    /// A server with credentials or TLS: `SmtpServer::builder().auth(u, p).starttls(&cert)`.
    pub fn builder() -> SmtpServerBuilder {
        SmtpServerBuilder::default()
    }

    /// The URL latchkey takes for this server: `smtp://[user:password@]127.0.0.1:port` when
    /// plain, `smtps://…` for implicit TLS, `smtp://…?tls=required` for STARTTLS.
    #[must_use]
    pub fn url(&self) -> String {
        let credentials = match &self.shared.credentials {
            Some((user, password)) => format!("{user}:{password}@"),
            None => String::new(),
        };
        match self.shared.security {
            Security::Plain => format!("smtp://{credentials}{}", self.addr),
            Security::ImplicitTls => format!("smtps://{credentials}{}", self.addr),
            Security::StartTls => format!("smtp://{credentials}{}?tls=required", self.addr),
        }
    }

    /// Presents `certificate` from the next handshake on (open connections keep theirs).
    pub fn set_certificate(&self, certificate: &ServerCertificate) {
        *self.shared.tls.lock().unwrap() = Some(certificate.server_config());
    }

    /// Each connection's transcript so far, oldest connection first: the verb of every command
    /// (`AUTH` with its mechanism; never an argument), `TLS` where a handshake completed and
    /// `TLS failed` where one did not.
    #[must_use]
    pub fn transcripts(&self) -> Vec<Vec<String>> {
        self.shared.transcripts.lock().unwrap().clone()
    }

    /// Closes the port and every open connection; connecting is refused until [`Self::restart`].
    pub async fn stop(&self) {
        let running = self.running.lock().unwrap().take();
        if let Some(running) = running {
            running.stop.cancel();
            let _ = running.task.await;
        }
    }

    /// Listens on the same port again.
    pub async fn restart(&self) {
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(error) => {
                    tries += 1;
                    assert!(tries < 50, "cannot listen on {} again: {error}", self.addr);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        let running = serve(listener, self.shared.clone());
        *self.running.lock().unwrap() = Some(running);
    }

    /// Every message accepted so far.
    #[must_use]
    pub fn received(&self) -> Vec<Received> {
        self.shared.messages.lock().unwrap().clone()
    }

    /// The messages accepted for `address` (any case).
    #[must_use]
    pub fn received_by(&self, address: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|m| m.to.iter().any(|to| to.eq_ignore_ascii_case(address)))
            .collect()
    }

    /// Waits until `address` has received `count` messages; returns them.
    ///
    /// # Panics
    /// After `timeout`.
    pub async fn wait_for(&self, address: &str, count: usize, timeout: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.arrived.notified();
            let found = self.received_by(address);
            if found.len() >= count {
                return found;
            }
            assert!(
                tokio::time::timeout_at(deadline, notified).await.is_ok(),
                "{address} received {} of {count} messages within {timeout:?}",
                found.len()
            );
        }
    }

    /// The newest message to `address`, waiting for one to arrive if none has.
    pub async fn latest_to(&self, address: &str, timeout: Duration) -> Received {
        let found = self.wait_for(address, 1, timeout).await;
        found.last().cloned().unwrap()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Some(running) = self.running.lock().unwrap().take() {
            running.stop.cancel();
        }
    }
}

fn serve(listener: TcpListener, shared: Arc<Shared>) -> Running {
    let stop = CancellationToken::new();
    let token = stop.clone();
    let task = tokio::spawn(async move {
        let mut sessions = tokio::task::JoinSet::new();
        loop {
            let accepted = tokio::select! {
                () = token.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let Ok((stream, _)) = accepted else { continue };
            let (shared, token) = (shared.clone(), token.clone());
            sessions.spawn(async move {
                tokio::select! {
                    () = token.cancelled() => {}
                    _ = session::session(stream, shared) => {}
                }
            });
        }
        drop(listener);
        while sessions.join_next().await.is_some() {}
    });
    Running { stop, task }
}
