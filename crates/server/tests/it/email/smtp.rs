//! Mail over a real SMTP server on loopback (the testkit's): plain, implicit TLS and STARTTLS
//! with a certificate from a CA made for the test, a relay whose certificate is refused, a relay
//! that goes away for a while, and who may open the dev mailbox.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use latchkey_identity::mail::{Sender, SmtpUrl};
use latchkey_store::{Db, PoolSettings};
use latchkey_testkit::TestContext;
use latchkey_testkit::browser::Browser;
use latchkey_testkit::smtp::{SmtpServer, TestCa};

use super::{OutboxRow, me, outbox_rows, outbox_rows_in, sign_up_with, start_sign_up};
use crate::identity::enter_code;
use crate::support::Served;

const WAIT: Duration = Duration::from_secs(10);

pub async fn over_smtp_a_sign_up_works_and_the_dev_mailbox_is_not_served(ctx: TestContext) {
    let smtp = SmtpServer::start_with_auth("mailer", "relay secret").await;
    let app = ctx
        .spawn_with(|c| {
            c.mail.smtp_url = Some(SmtpUrl::parse(&smtp.url()).unwrap());
            c.mail.from = Some(Sender::parse("Test App <no-reply@test.example>").unwrap());
        })
        .await;
    app.get("/dev/mailbox").expect(404).await;

    let mut browser = start_sign_up(&app, "smtp@example.com").await;
    let mail = smtp.latest_to("smtp@example.com", WAIT).await;
    assert_eq!(
        mail.user.as_deref(),
        Some("mailer"),
        "the relay's AUTH was used"
    );
    assert_eq!(mail.from, "no-reply@test.example");
    assert_eq!(mail.header("to").as_deref(), Some("smtp@example.com"));
    assert!(
        mail.header("from")
            .unwrap()
            .contains("<no-reply@test.example>")
    );
    assert_eq!(
        mail.header("subject").as_deref(),
        Some("Verify your email address for Test App")
    );
    assert!(
        mail.header("message-id")
            .unwrap()
            .ends_with("@test.example>")
    );
    assert!(
        mail.header("content-type")
            .unwrap()
            .starts_with("multipart/alternative")
    );
    let code = mail.code().expect("the text part carries the code");
    assert!(
        mail.html().unwrap().contains(&code),
        "and the HTML part too"
    );

    let reply = enter_code(&mut browser, &code, 303).await;
    assert_eq!(reply.header("location"), Some("/"));
    assert_eq!(
        me(&browser).await["email_addresses"][0]["verification"]["status"],
        "verified"
    );
    // Sent once, and its body (which held the code) is gone from the database once the
    // worker recorded the relay's answer.
    let started = std::time::Instant::now();
    let rows = loop {
        let rows = outbox_rows(&app, "smtp@example.com").await;
        if rows.len() == 1 && rows[0].0 != "pending" {
            break rows;
        }
        assert!(
            started.elapsed() < WAIT,
            "the mail was not recorded as sent: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        (rows[0].0.as_str(), rows[0].1, rows[0].2.as_str()),
        ("sent", 1, "")
    );
    assert_eq!(smtp.received().len(), 1);
    app.get("/dev/mailbox").expect(404).await;
    app.stop().await;
}

pub async fn a_relay_down_for_a_while_loses_nothing_and_sends_each_mail_once(ctx: TestContext) {
    let smtp = SmtpServer::start().await;
    let mut config = ctx.fresh_config().await;
    config.mail.smtp_url = Some(SmtpUrl::parse(&smtp.url()).unwrap());
    config.mail.retry_schedule =
        latchkey_server::config::parse_duration_list(&vec!["200ms"; 30].join(","));
    smtp.stop().await;
    let first = ctx.start(config.clone()).await;
    let addresses = [
        "down1@example.com",
        "down2@example.com",
        "down3@example.com",
    ];
    let mut browsers = Vec::new();
    for address in addresses {
        browsers.push(start_sign_up(&first, address).await);
    }
    // Every mail has failed at least once while the relay was down.
    let started = std::time::Instant::now();
    loop {
        let mut failed_once = 0;
        for address in addresses {
            let rows = outbox_rows(&first, address).await;
            if rows.len() == 1 && rows[0].0 == "pending" && rows[0].1 >= 1 {
                failed_once += 1;
            }
        }
        if failed_once == addresses.len() {
            break;
        }
        assert!(started.elapsed() < WAIT, "the attempts were not recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // latchkey restarts while the relay is still down.
    first.stop().await;
    let second = ctx.start(config).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(smtp.received().is_empty());

    smtp.restart().await;
    for address in addresses {
        smtp.wait_for(address, 1, WAIT).await;
    }
    // The code that arrived late still works, on the new instance.
    let mut late = Browser::new(&second.url);
    late.cookies = browsers[0].cookies.clone();
    let code = smtp.latest_to(addresses[0], WAIT).await.code().unwrap();
    enter_code(&mut late, &code, 303).await;

    tokio::time::sleep(Duration::from_secs(1)).await;
    for address in addresses {
        assert_eq!(
            smtp.received_by(address).len(),
            1,
            "{address} got its mail once"
        );
        let rows = outbox_rows(&second, address).await;
        assert_eq!(rows[0].0, "sent");
        assert!(rows[0].1 >= 2, "it was retried: {rows:?}");
    }
    second.stop().await;
}

/// An address of this machine that is not loopback (the one it would use to reach TEST-NET-1;
/// connecting a UDP socket sends nothing).
fn non_loopback_address() -> IpAddr {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    socket
        .connect("192.0.2.1:9")
        .expect("this test needs a network interface besides loopback");
    let ip = socket.local_addr().unwrap().ip();
    assert!(!ip.is_loopback() && !ip.is_unspecified(), "{ip}");
    ip
}

pub async fn the_dev_mailbox_is_served_only_to_loopback(ctx: TestContext) {
    let app = ctx
        .spawn_with(|c| c.addr = SocketAddr::from(([0, 0, 0, 0], 0)))
        .await;
    let port = app.addr.port();
    let client = reqwest::Client::new();
    start_sign_up(&app, "local@example.com").await;
    let id = {
        let html = client
            .get(format!("http://127.0.0.1:{port}/dev/mailbox"))
            .send()
            .await
            .unwrap();
        assert_eq!(html.status(), 200);
        let html = html.text().await.unwrap();
        assert!(html.contains("local@example.com"));
        let at = html.find("/dev/mailbox/").unwrap() + "/dev/mailbox/".len();
        html[at..at + html[at..].find('"').unwrap()].to_owned()
    };
    let mail = client
        .get(format!("http://127.0.0.1:{port}/dev/mailbox/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(mail.status(), 200);
    assert!(mail.text().await.unwrap().contains("<!doctype html>"));

    let remote = non_loopback_address();
    for path in ["/dev/mailbox".to_owned(), format!("/dev/mailbox/{id}")] {
        let reply = client
            .get(format!("http://{}{path}", SocketAddr::new(remote, port)))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 404, "{path} from {remote}");
        // A proxy in front makes every visitor look local; its headers are refused too.
        let proxied = client
            .get(format!("http://127.0.0.1:{port}{path}"))
            .header("x-forwarded-for", "203.0.113.9")
            .send()
            .await
            .unwrap();
        assert_eq!(proxied.status(), 404, "{path} through a proxy");
    }
    app.stop().await;
}

/// A `latchkey serve` child with its own database on this test's backend, sending through
/// `smtp` and trusting only `ca` (through `SSL_CERT_FILE`, as an operator with a private relay
/// would). Returns the child and a handle on its database.
async fn served_with_relay(
    ctx: &TestContext,
    smtp: &SmtpServer,
    ca: &TestCa,
    retry_schedule: &str,
) -> (Served, Db) {
    let cwd = ctx.temp_dir();
    let ca_file = ca.write_pem(&cwd, "relay-ca.pem");
    let database_url = ctx.fresh_database().await;
    let served = Served::start(
        &cwd,
        &[
            ("DATABASE_URL", &database_url.expose_for_child_process()),
            ("LATCHKEY_SMTP_URL", &smtp.url()),
            ("LATCHKEY_MAIL_FROM", "Test App <no-reply@test.example>"),
            ("LATCHKEY_MAIL_RETRY_SCHEDULE", retry_schedule),
            ("SSL_CERT_FILE", ca_file.to_str().unwrap()),
        ],
    )
    .await;
    let db = Db::connect(&database_url, &PoolSettings::default())
        .await
        .unwrap();
    (served, db)
}

/// Waits until the one outbox mail to `address` has left `pending` or has failed `attempts`
/// times; returns it.
async fn outbox_row_once(db: &Db, address: &str, attempts: i64) -> OutboxRow {
    let started = std::time::Instant::now();
    loop {
        let mut rows = outbox_rows_in(db, address).await;
        if rows.len() == 1 && (rows[0].status != "pending" || rows[0].attempts >= attempts) {
            return rows.remove(0);
        }
        assert!(
            started.elapsed() < WAIT,
            "the outbox did not move: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The whole verified sign-up through `served` with the mail coming over `smtp`.
async fn sign_up_through(served: &Served, smtp: &SmtpServer, address: &str) {
    let mut browser = sign_up_with(Browser::new(&served.url), address).await;
    let mail = smtp.latest_to(address, WAIT).await;
    assert!(mail.tls, "the mail travelled encrypted");
    assert_eq!(mail.user.as_deref(), Some("mailer"));
    let reply = enter_code(&mut browser, &mail.code().unwrap(), 303).await;
    assert_eq!(reply.header("location"), Some("/"));
    assert_eq!(
        me(&browser).await["email_addresses"][0]["verification"]["status"],
        "verified"
    );
    let mailbox = reqwest::get(format!("{}/dev/mailbox", served.url))
        .await
        .unwrap();
    assert_eq!(mailbox.status(), 404, "no dev mailbox with a relay set");
}

pub async fn over_implicit_tls_the_relay_gets_the_mail_and_the_password_only_encrypted(
    ctx: TestContext,
) {
    let ca = TestCa::new("relay CA");
    let smtp = SmtpServer::builder()
        .auth("mailer", "relay secret")
        .implicit_tls(&ca.server_certificate())
        .start()
        .await;
    assert!(smtp.url().starts_with("smtps://"));
    let (served, db) = served_with_relay(&ctx, &smtp, &ca, "1s").await;
    sign_up_through(&served, &smtp, "smtps@example.com").await;

    let row = outbox_row_once(&db, "smtps@example.com", i64::MAX).await;
    assert_eq!((row.status.as_str(), row.attempts), ("sent", 1));
    // The handshake came first, before any command (so before AUTH).
    let transcripts = smtp.transcripts();
    assert!(!transcripts.is_empty());
    for transcript in &transcripts {
        assert_eq!(
            transcript.first().map(String::as_str),
            Some("TLS"),
            "{transcript:?}"
        );
    }
    let log = served.stop().await;
    assert!(
        !log.contains("relay secret"),
        "the relay password is never logged"
    );
    assert!(!log.contains("smtps@example.com"), "nor the address");
}

pub async fn over_starttls_the_upgrade_comes_before_auth(ctx: TestContext) {
    let ca = TestCa::new("relay CA");
    let smtp = SmtpServer::builder()
        .auth("mailer", "relay secret")
        .starttls(&ca.server_certificate())
        .start()
        .await;
    assert!(smtp.url().ends_with("?tls=required"));
    let (served, db) = served_with_relay(&ctx, &smtp, &ca, "1s").await;
    sign_up_through(&served, &smtp, "starttls@example.com").await;

    let row = outbox_row_once(&db, "starttls@example.com", i64::MAX).await;
    assert_eq!((row.status.as_str(), row.attempts), ("sent", 1));
    let transcripts = smtp.transcripts();
    let delivering = transcripts
        .iter()
        .find(|t| t.iter().any(|verb| verb == "MAIL"))
        .expect("a connection delivered the mail");
    let position = |verb: &str| {
        delivering
            .iter()
            .position(|v| v == verb || v.starts_with(&format!("{verb} ")))
            .unwrap_or_else(|| panic!("no {verb} in {delivering:?}"))
    };
    assert!(position("STARTTLS") < position("TLS"), "{delivering:?}");
    assert!(position("TLS") < position("AUTH"), "{delivering:?}");
    assert!(position("AUTH") < position("MAIL"), "{delivering:?}");
    served.stop().await;
}

pub async fn a_relay_certificate_from_another_ca_is_refused_until_it_is_fixed(ctx: TestContext) {
    let trusted = TestCa::new("relay CA");
    let stranger = TestCa::new("someone else's CA");
    let smtp = SmtpServer::builder()
        .auth("mailer", "relay secret")
        .implicit_tls(&stranger.server_certificate())
        .start()
        .await;
    let (served, db) = served_with_relay(&ctx, &smtp, &trusted, &vec!["200ms"; 30].join(",")).await;
    let mut browser = sign_up_with(Browser::new(&served.url), "pinned@example.com").await;

    let row = outbox_row_once(&db, "pinned@example.com", 2).await;
    assert_eq!(row.status, "pending", "refused, not given up: {row:?}");
    assert_eq!(
        row.last_error.as_deref(),
        Some("certificate"),
        "the operator is told why: {row:?}"
    );
    assert!(smtp.received().is_empty(), "nothing went to the stranger");
    assert!(
        smtp.transcripts()
            .iter()
            .all(|t| t.first().map(String::as_str) == Some("TLS failed") && t.len() == 1),
        "no command, so no password, crossed a refused handshake: {:?}",
        smtp.transcripts()
    );

    // The relay gets a certificate the process trusts: the same mail goes out, once.
    smtp.set_certificate(&trusted.server_certificate());
    let mail = smtp.latest_to("pinned@example.com", WAIT).await;
    enter_code(&mut browser, &mail.code().unwrap(), 303).await;
    // The relay has the mail; the worker records the send a moment later: wait for the row to
    // leave `pending` (no attempt count is enough on its own).
    let row = outbox_row_once(&db, "pinned@example.com", i64::MAX).await;
    assert_eq!(row.status, "sent");
    assert!(row.attempts >= 3, "{row:?}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(smtp.received_by("pinned@example.com").len(), 1);
    served.stop().await;
}
