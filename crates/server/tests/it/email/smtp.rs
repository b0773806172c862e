//! Mail over a real SMTP server on loopback (the testkit's), a relay that goes away for a
//! while, and who may open the dev mailbox.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use latchkey_identity::mail::{Sender, SmtpUrl};
use latchkey_testkit::TestContext;
use latchkey_testkit::browser::Browser;
use latchkey_testkit::smtp::SmtpServer;

use super::{me, outbox_rows, start_sign_up};
use crate::identity::enter_code;

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
