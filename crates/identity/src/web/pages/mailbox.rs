//! `/dev/mailbox`: the mail latchkey would have sent, for a development run without an SMTP
//! relay. The route exists only while no relay is configured, and answers only requests whose
//! connection comes from loopback and carries no proxy header (a proxy on the same machine
//! would make every visitor look local); anyone else gets the same 404 as an unknown path.

use std::net::SocketAddr;

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse as _, Response};
use http::{HeaderMap, StatusCode};

use super::{format_utc, html, unavailable};
use crate::context::Peer;
use crate::mail;
use crate::state::Identity;

/// Mails shown, newest first.
const SHOWN: i64 = 50;

struct MailRow {
    id: String,
    kind: String,
    to: String,
    subject: String,
    text: String,
    created: String,
    created_iso: String,
}

#[derive(Template)]
#[template(path = "mailbox.html")]
struct MailboxPage<'a> {
    title: &'a str,
    mails: Vec<MailRow>,
}

/// Whether a request may see the mailbox: a loopback peer, and no sign of a proxy.
pub(crate) fn served_to(peer: Option<SocketAddr>, headers: &HeaderMap) -> bool {
    let proxied = ["forwarded", "x-forwarded-for", "x-real-ip"]
        .iter()
        .any(|name| headers.contains_key(*name));
    !proxied && peer.is_some_and(|addr| addr.ip().to_canonical().is_loopback())
}

fn not_found() -> Response {
    StatusCode::NOT_FOUND.into_response()
}

pub(crate) async fn list(
    State(identity): State<Identity>,
    peer: Peer,
    headers: HeaderMap,
) -> Response {
    if !served_to(peer.0, &headers) {
        return not_found();
    }
    let mails = match mail::mailbox(&identity, SHOWN).await {
        Ok(mails) => mails,
        Err(error) => {
            tracing::warn!(error = %latchkey_web::ErrorChain(&error), "could not read the dev mailbox");
            return unavailable("/dev/mailbox");
        }
    };
    let mails = mails
        .into_iter()
        .map(|mail| {
            let (created, created_iso) = format_utc(mail.created_at);
            MailRow {
                id: mail.id,
                kind: mail.kind,
                to: mail.to,
                subject: mail.subject,
                text: mail.text,
                created,
                created_iso,
            }
        })
        .collect();
    let page = MailboxPage {
        title: "Dev mailbox",
        mails,
    };
    html(StatusCode::OK, page.render(), &[])
}

pub(crate) async fn show(
    State(identity): State<Identity>,
    Path(id): Path<String>,
    peer: Peer,
    headers: HeaderMap,
) -> Response {
    if !served_to(peer.0, &headers) {
        return not_found();
    }
    match mail::mailbox_entry(&identity, &id).await {
        // The stored HTML body, served with the pages' headers: no scripts, no framing.
        Ok(Some(mail)) => html(StatusCode::OK, Ok(mail.html), &[]),
        Ok(None) => not_found(),
        Err(error) => {
            tracing::warn!(error = %latchkey_web::ErrorChain(&error), "could not read the dev mailbox");
            unavailable("/dev/mailbox")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_peers_without_proxy_headers_see_the_mailbox() {
        let local: SocketAddr = "127.0.0.1:50000".parse().unwrap();
        let local6: SocketAddr = "[::1]:50000".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:50000".parse().unwrap();
        let remote: SocketAddr = "192.0.2.7:50000".parse().unwrap();
        let none = HeaderMap::new();
        assert!(served_to(Some(local), &none));
        assert!(served_to(Some(local6), &none));
        assert!(served_to(Some(mapped), &none));
        assert!(!served_to(Some(remote), &none));
        assert!(!served_to(None, &none));
        for header in ["forwarded", "x-forwarded-for", "x-real-ip"] {
            let mut proxied = HeaderMap::new();
            proxied.insert(header, "203.0.113.9".parse().unwrap());
            assert!(!served_to(Some(local), &proxied), "{header}");
        }
    }
}
