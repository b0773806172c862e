//! A small SMTP server on loopback for tests: it speaks enough of RFC 5321 for a real client
//! (EHLO/HELO, AUTH PLAIN and LOGIN when credentials are set, MAIL, RCPT, DATA with
//! dot-unstuffing, RSET, NOOP, QUIT), keeps every message it accepted, and can be stopped and
//! started again on the same port to play a relay that goes away for a while.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod message;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use message::{Received, first_code};

struct Shared {
    messages: Mutex<Vec<Received>>,
    credentials: Option<(String, String)>,
    arrived: Notify,
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
    /// A server on a free loopback port that accepts mail from anyone.
    pub async fn start() -> Self {
        Self::launch(None).await
    }

    /// A server that requires `AUTH` (PLAIN or LOGIN) as `user` / `password` before `MAIL`.
    pub async fn start_with_auth(user: &str, password: &str) -> Self {
        Self::launch(Some((user.to_owned(), password.to_owned()))).await
    }

    async fn launch(credentials: Option<(String, String)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            messages: Mutex::new(Vec::new()),
            credentials,
            arrived: Notify::new(),
        });
        let running = serve(listener, shared.clone());
        Self {
            addr,
            shared,
            running: Mutex::new(Some(running)),
        }
    }

    /// `smtp://[user:password@]127.0.0.1:port`: plain SMTP on loopback, as latchkey takes it.
    #[must_use]
    pub fn url(&self) -> String {
        match &self.shared.credentials {
            Some((user, password)) => format!("smtp://{user}:{password}@{}", self.addr),
            None => format!("smtp://{}", self.addr),
        }
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
                    _ = session(stream, shared) => {}
                }
            });
        }
        drop(listener);
        while sessions.join_next().await.is_some() {}
    });
    Running { stop, task }
}

/// One envelope being collected.
#[derive(Default)]
struct Envelope {
    from: Option<String>,
    to: Vec<String>,
}

fn angle_address(argument: &str) -> String {
    let inner = argument
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map_or(argument, |(address, _)| address);
    inner.trim().to_owned()
}

async fn session(stream: TcpStream, shared: Arc<Shared>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 testkit ESMTP ready\r\n").await?;
    let mut user: Option<String> = None;
    let mut envelope = Envelope::default();
    loop {
        let Some(line) = read_line(&mut lines).await? else {
            return Ok(());
        };
        let (verb, argument) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let answer = match verb.to_ascii_uppercase().as_str() {
            "EHLO" => {
                let mut lines = vec!["250-testkit".to_owned(), "250-8BITMIME".to_owned()];
                if shared.credentials.is_some() {
                    lines.push("250-AUTH PLAIN LOGIN".to_owned());
                }
                lines.push("250 SIZE 10485760".to_owned());
                lines.join("\r\n")
            }
            "HELO" => "250 testkit".to_owned(),
            "AUTH" => {
                let name = authenticate(argument, &mut lines, &mut write, &shared).await?;
                match name {
                    Some(name) => {
                        user = Some(name);
                        "235 2.7.0 Authentication successful".to_owned()
                    }
                    None => "535 5.7.8 Authentication credentials invalid".to_owned(),
                }
            }
            "MAIL" if shared.credentials.is_some() && user.is_none() => {
                "530 5.7.0 Authentication required".to_owned()
            }
            "MAIL" => {
                envelope = Envelope {
                    from: Some(angle_address(argument)),
                    to: Vec::new(),
                };
                "250 2.1.0 OK".to_owned()
            }
            "RCPT" if envelope.from.is_none() => "503 5.5.1 MAIL first".to_owned(),
            "RCPT" => {
                envelope.to.push(angle_address(argument));
                "250 2.1.5 OK".to_owned()
            }
            "DATA" if envelope.to.is_empty() => "503 5.5.1 RCPT first".to_owned(),
            "DATA" => {
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let Some(data) = read_data(&mut lines).await? else {
                    return Ok(());
                };
                let done = std::mem::take(&mut envelope);
                shared.messages.lock().unwrap().push(Received {
                    from: done.from.unwrap_or_default(),
                    to: done.to,
                    data,
                    user: user.clone(),
                });
                shared.arrived.notify_waiters();
                "250 2.0.0 OK queued".to_owned()
            }
            "RSET" => {
                envelope = Envelope::default();
                "250 2.0.0 OK".to_owned()
            }
            "NOOP" => "250 2.0.0 OK".to_owned(),
            "QUIT" => {
                write.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            _ => "502 5.5.2 Command not recognized".to_owned(),
        };
        write.write_all(format!("{answer}\r\n").as_bytes()).await?;
    }
}

/// One line without its CRLF; `None` at the end of the stream. Lines are capped at 64 KiB.
async fn read_line(
    lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<Option<String>> {
    let mut buffer = Vec::new();
    let read = (&mut *lines)
        .take(65_536)
        .read_until(b'\n', &mut buffer)
        .await?;
    if read == 0 {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&buffer);
    Ok(Some(text.trim_end_matches(['\r', '\n']).to_owned()))
}

/// The message after `DATA`, up to the lone dot; leading dots unstuffed.
async fn read_data(
    lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<Option<String>> {
    let mut data: Vec<String> = Vec::new();
    loop {
        let Some(line) = read_line(lines).await? else {
            return Ok(None);
        };
        if line == "." {
            return Ok(Some(data.join("\r\n")));
        }
        data.push(line.strip_prefix('.').map_or(line.clone(), str::to_owned));
    }
}

/// Runs an `AUTH` exchange; the user name if the credentials are right.
async fn authenticate(
    argument: &str,
    lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    write: &mut tokio::net::tcp::OwnedWriteHalf,
    shared: &Shared,
) -> std::io::Result<Option<String>> {
    let Some((user, password)) = &shared.credentials else {
        return Ok(None);
    };
    let decode = |text: &str| {
        String::from_utf8_lossy(&STANDARD.decode(text.trim()).unwrap_or_default()).into_owned()
    };
    let (mechanism, initial) = argument.split_once(' ').unwrap_or((argument, ""));
    let (given_user, given_password) = match mechanism.to_ascii_uppercase().as_str() {
        "PLAIN" => {
            let response = if initial.is_empty() {
                write.write_all(b"334 \r\n").await?;
                read_line(lines).await?.unwrap_or_default()
            } else {
                initial.to_owned()
            };
            let decoded = decode(&response);
            let mut fields = decoded.split('\0').skip(1);
            (
                fields.next().unwrap_or_default().to_owned(),
                fields.next().unwrap_or_default().to_owned(),
            )
        }
        "LOGIN" => {
            let name = if initial.is_empty() {
                write.write_all(b"334 VXNlcm5hbWU6\r\n").await?;
                decode(&read_line(lines).await?.unwrap_or_default())
            } else {
                decode(initial)
            };
            write.write_all(b"334 UGFzc3dvcmQ6\r\n").await?;
            (name, decode(&read_line(lines).await?.unwrap_or_default()))
        }
        _ => return Ok(None),
    };
    Ok((given_user == *user && given_password == *password).then_some(given_user))
}
