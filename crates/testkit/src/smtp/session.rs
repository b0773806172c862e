//! One SMTP conversation: the greeting, the commands, and the TLS upgrade. Plain, implicit TLS
//! (the handshake before the greeting) or STARTTLS as RFC 3207 has it: offered in EHLO until
//! TLS is up, no input may follow the command before the handshake, and everything learnt before
//! it (the EHLO, an envelope) is forgotten, so the client must say EHLO again.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tokio::io::{
    AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, BufReader,
};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use super::{Received, Security, Shared};

const GREETING: &[u8] = b"220 testkit ESMTP ready\r\n";
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What one connection has established so far.
struct State {
    /// The connection's index in the server's transcripts.
    id: usize,
    tls: bool,
    greeted: bool,
    user: Option<String>,
    envelope: Envelope,
}

/// One envelope being collected.
#[derive(Default)]
struct Envelope {
    from: Option<String>,
    to: Vec<String>,
}

/// How a run of commands ended.
enum Next {
    Closed,
    StartTls,
}

pub(super) async fn session(stream: TcpStream, shared: Arc<Shared>) -> std::io::Result<()> {
    let mut state = State {
        id: shared.open_transcript(),
        tls: false,
        greeted: false,
        user: None,
        envelope: Envelope::default(),
    };
    if shared.security == Security::ImplicitTls {
        let Some(tls) = handshake(stream, &shared, state.id).await else {
            return Ok(());
        };
        state.tls = true;
        let mut io = BufReader::new(tls);
        reply(&mut io, GREETING).await?;
        converse(&mut io, &shared, &mut state).await?;
        return Ok(());
    }
    let mut io = BufReader::new(stream);
    reply(&mut io, GREETING).await?;
    if let Next::StartTls = converse(&mut io, &shared, &mut state).await? {
        // Bytes sent after STARTTLS but before the handshake would be read as if they came
        // through TLS (the plaintext injection of CVE-2011-0411): refuse the connection.
        if !io.buffer().is_empty() {
            shared.note(state.id, "input after STARTTLS");
            return Ok(());
        }
        let Some(tls) = handshake(io.into_inner(), &shared, state.id).await else {
            return Ok(());
        };
        state = State {
            id: state.id,
            tls: true,
            greeted: false,
            user: None,
            envelope: Envelope::default(),
        };
        converse(&mut BufReader::new(tls), &shared, &mut state).await?;
    }
    Ok(())
}

/// The TLS handshake with the server's current certificate; `None` (and a transcript entry) if
/// the client gave up, for example because it does not trust the certificate.
async fn handshake(
    stream: TcpStream,
    shared: &Shared,
    id: usize,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let config = shared.tls_config()?;
    let accepted =
        tokio::time::timeout(HANDSHAKE_TIMEOUT, TlsAcceptor::from(config).accept(stream)).await;
    if let Ok(Ok(tls)) = accepted {
        shared.note(id, "TLS");
        Some(tls)
    } else {
        shared.note(id, "TLS failed");
        None
    }
}

async fn reply<S: AsyncWrite + Unpin>(io: &mut S, bytes: &[u8]) -> std::io::Result<()> {
    io.write_all(bytes).await?;
    io.flush().await
}

fn angle_address(argument: &str) -> String {
    let inner = argument
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map_or(argument, |(address, _)| address);
    inner.trim().to_owned()
}

/// The transcript's name for a command: its verb, and for `AUTH` the mechanism, never an
/// argument (they hold addresses and credentials).
fn event_name(verb: &str, argument: &str) -> String {
    const KNOWN: [&str; 11] = [
        "EHLO", "HELO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "QUIT", "VRFY",
    ];
    let verb = verb.to_ascii_uppercase();
    if !KNOWN.contains(&verb.as_str()) {
        return "unknown".to_owned();
    }
    if verb != "AUTH" {
        return verb;
    }
    const MECHANISMS: [&str; 6] = [
        "PLAIN",
        "LOGIN",
        "CRAM-MD5",
        "XOAUTH2",
        "SCRAM-SHA-1",
        "SCRAM-SHA-256",
    ];
    let mechanism = argument.split(' ').next().unwrap_or_default();
    match MECHANISMS
        .iter()
        .find(|known| known.eq_ignore_ascii_case(mechanism))
    {
        Some(known) => format!("AUTH {known}"),
        None => "AUTH".to_owned(),
    }
}

/// Answers commands until the client quits or the connection ends (`Closed`), or until the
/// client's `STARTTLS` was accepted (`StartTls`; the caller runs the handshake).
async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut BufReader<S>,
    shared: &Shared,
    state: &mut State,
) -> std::io::Result<Next> {
    let starttls_offered = shared.security == Security::StartTls && !state.tls;
    loop {
        let Some(line) = read_line(io).await? else {
            return Ok(Next::Closed);
        };
        let (verb, argument) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let verb = verb.to_ascii_uppercase();
        shared.note(state.id, &event_name(&verb, argument));
        let needs_greeting = matches!(
            verb.as_str(),
            "STARTTLS" | "AUTH" | "MAIL" | "RCPT" | "DATA"
        );
        let answer = match verb.as_str() {
            _ if needs_greeting && !state.greeted => "503 5.5.1 Send EHLO first".to_owned(),
            "EHLO" => {
                state.greeted = true;
                state.envelope = Envelope::default();
                let mut lines = vec!["250-testkit".to_owned(), "250-8BITMIME".to_owned()];
                if starttls_offered {
                    lines.push("250-STARTTLS".to_owned());
                }
                // Offered before TLS too, so a client that would send credentials in clear
                // gets the chance to, and the transcript shows it.
                if shared.credentials.is_some() {
                    lines.push("250-AUTH PLAIN LOGIN".to_owned());
                }
                lines.push("250 SIZE 10485760".to_owned());
                lines.join("\r\n")
            }
            "HELO" => {
                state.greeted = true;
                state.envelope = Envelope::default();
                "250 testkit".to_owned()
            }
            "STARTTLS" if !argument.is_empty() => "501 5.5.4 No parameters allowed".to_owned(),
            "STARTTLS" if state.tls => "503 5.5.1 TLS already active".to_owned(),
            "STARTTLS" if starttls_offered => {
                reply(io, b"220 2.0.0 Ready to start TLS\r\n").await?;
                return Ok(Next::StartTls);
            }
            "AUTH" if starttls_offered => {
                "538 5.7.11 Encryption required for requested authentication mechanism".to_owned()
            }
            "AUTH" => match authenticate(argument, io, shared).await? {
                Some(name) => {
                    state.user = Some(name);
                    "235 2.7.0 Authentication successful".to_owned()
                }
                None => "535 5.7.8 Authentication credentials invalid".to_owned(),
            },
            "MAIL" if starttls_offered => {
                "530 5.7.0 Must issue a STARTTLS command first".to_owned()
            }
            "MAIL" if shared.credentials.is_some() && state.user.is_none() => {
                "530 5.7.0 Authentication required".to_owned()
            }
            "MAIL" => {
                state.envelope = Envelope {
                    from: Some(angle_address(argument)),
                    to: Vec::new(),
                };
                "250 2.1.0 OK".to_owned()
            }
            "RCPT" if state.envelope.from.is_none() => "503 5.5.1 MAIL first".to_owned(),
            "RCPT" => {
                state.envelope.to.push(angle_address(argument));
                "250 2.1.5 OK".to_owned()
            }
            "DATA" if state.envelope.to.is_empty() => "503 5.5.1 RCPT first".to_owned(),
            "DATA" => {
                reply(io, b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                let Some(data) = read_data(io).await? else {
                    return Ok(Next::Closed);
                };
                let done = std::mem::take(&mut state.envelope);
                shared.messages.lock().unwrap().push(Received {
                    from: done.from.unwrap_or_default(),
                    to: done.to,
                    data,
                    user: state.user.clone(),
                    tls: state.tls,
                });
                shared.arrived.notify_waiters();
                "250 2.0.0 OK queued".to_owned()
            }
            "RSET" => {
                state.envelope = Envelope::default();
                "250 2.0.0 OK".to_owned()
            }
            "NOOP" => "250 2.0.0 OK".to_owned(),
            "QUIT" => {
                reply(io, b"221 2.0.0 Bye\r\n").await?;
                return Ok(Next::Closed);
            }
            _ => "502 5.5.2 Command not recognized".to_owned(),
        };
        reply(io, format!("{answer}\r\n").as_bytes()).await?;
    }
}

/// One line without its CRLF; `None` at the end of the stream. Lines are capped at 64 KiB.
async fn read_line<S: AsyncRead + Unpin>(io: &mut BufReader<S>) -> std::io::Result<Option<String>> {
    let mut buffer = Vec::new();
    let read = (&mut *io)
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
async fn read_data<S: AsyncRead + Unpin>(io: &mut BufReader<S>) -> std::io::Result<Option<String>> {
    let mut data: Vec<String> = Vec::new();
    loop {
        let Some(line) = read_line(io).await? else {
            return Ok(None);
        };
        if line == "." {
            return Ok(Some(data.join("\r\n")));
        }
        data.push(line.strip_prefix('.').map_or(line.clone(), str::to_owned));
    }
}

/// Runs an `AUTH` exchange; the user name if the credentials are right.
async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    argument: &str,
    io: &mut BufReader<S>,
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
                reply(io, b"334 \r\n").await?;
                read_line(io).await?.unwrap_or_default()
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
                reply(io, b"334 VXNlcm5hbWU6\r\n").await?;
                decode(&read_line(io).await?.unwrap_or_default())
            } else {
                decode(initial)
            };
            reply(io, b"334 UGFzc3dvcmQ6\r\n").await?;
            (name, decode(&read_line(io).await?.unwrap_or_default()))
        }
        _ => return Ok(None),
    };
    Ok((given_user == *user && given_password == *password).then_some(given_user))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcripts_name_commands_without_their_arguments() {
        assert_eq!(event_name("MAIL", "FROM:<a@example.com>"), "MAIL");
        assert_eq!(event_name("AUTH", "plain AGFkYQBzZWNyZXQ="), "AUTH PLAIN");
        assert_eq!(event_name("AUTH", "AGFkYQBzZWNyZXQ"), "AUTH");
        assert_eq!(event_name("a@example.com", ""), "unknown");
    }
}
