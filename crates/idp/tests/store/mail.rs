//! Mail through a real SMTP dialogue with the testkit's loopback sink: an invitation's link
//! arrives and redeems, a reset requested through the desk arrives, and a server that
//! refuses is retried and reported, never silently dropped.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use latchkey_idp::config::{SmtpConfig, SmtpSecurity};
use latchkey_idp::enrollment::reset::{LinkSink, ResetDesk};
use latchkey_idp::enrollment::{LinkKind, LinkLookup};
use latchkey_idp::mail::{Mail, MailError, Mailer};
use latchkey_idp::password::Password;
use latchkey_testkit::smtp::SmtpSink;
use time::Duration;

use crate::storage::{admin, user};

fn config(sink: &SmtpSink) -> SmtpConfig {
    SmtpConfig {
        host: Some("127.0.0.1".into()),
        port: Some(sink.port()),
        security: SmtpSecurity::None,
        from: Some("Latchkey <idp@example.org>".into()),
        ..SmtpConfig::default()
    }
}

fn link_in(text: &str, prefix: &str) -> String {
    let start = text.find(prefix).expect("the link is in the message");
    text[start..].split_whitespace().next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_mailed_through_smtp_redeems() {
    let t = crate::support::sqlite().await;
    let sink = SmtpSink::start();
    let mailer = Mailer::new(&config(&sink)).unwrap();
    assert!(mailer.configured());
    let alice = user(&t.store, "alice").await;
    let link = t
        .store
        .enrollment()
        .invite(&admin(), alice.id, Duration::hours(72))
        .await
        .unwrap();
    mailer
        .send(&Mail::for_link(&link, &link.url("https://idp.example.org")))
        .await
        .unwrap();
    let got = sink.wait_for(1, StdDuration::from_secs(5));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].to, vec!["alice@example.org".to_owned()]);
    let text = got[0].text();
    assert!(text.contains("Subject: Your account invitation"), "{text}");
    assert!(text.contains("Content-Type: text/plain"), "{text}");
    let url = link_in(&text, "https://idp.example.org/invite/");
    let token = url.rsplit('/').next().unwrap();
    assert!(matches!(
        t.store
            .enrollment()
            .lookup(LinkKind::Invitation, token)
            .await
            .unwrap(),
        LinkLookup::Valid(_)
    ));
    t.store
        .enrollment()
        .redeem(
            LinkKind::Invitation,
            token,
            Password::new("violet staple hinge"),
        )
        .await
        .unwrap();
    assert!(
        t.store
            .users()
            .verify_password(alice.id, Password::new("violet staple hinge"))
            .await
            .unwrap()
    );
    assert_eq!(mailer.stats().sent(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_request_is_mailed_off_the_request_path() {
    let t = crate::support::sqlite().await;
    let sink = SmtpSink::start();
    let mailer = Mailer::new(&config(&sink)).unwrap();
    user(&t.store, "bob").await;
    let desk = ResetDesk::start(
        t.store.clone(),
        "https://idp.example.org".into(),
        Duration::minutes(30),
        Arc::new(mailer.clone()) as Arc<dyn LinkSink>,
    );
    desk.request(&t.store, "bob@example.org", "192.0.2.1")
        .await
        .unwrap();
    desk.request(&t.store, "nobody", "192.0.2.1").await.unwrap();
    let got = sink.wait_for(1, StdDuration::from_secs(5));
    assert_eq!(got.len(), 1, "one message, for the account that exists");
    assert_eq!(got[0].to, vec!["bob@example.org".to_owned()]);
    let url = link_in(&got[0].text(), "https://idp.example.org/reset/");
    let token = url.rsplit('/').next().unwrap();
    t.store
        .enrollment()
        .redeem(LinkKind::Reset, token, Password::new("violet staple hinge"))
        .await
        .unwrap();
    // No more arrives for the unknown name.
    std::thread::sleep(StdDuration::from_millis(200));
    assert_eq!(sink.messages().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_server_is_retried_then_reported() {
    let sink = SmtpSink::start();
    sink.refuse(true);
    let mailer = Mailer::new(&config(&sink)).unwrap();
    let mail = Mail {
        to: "carol@example.org".into(),
        subject: "s".into(),
        body: "b".into(),
    };
    let err = mailer.send(&mail).await.unwrap_err();
    assert!(
        matches!(err, MailError::Failed { attempts: 3, .. }),
        "{err}"
    );
    assert_eq!(sink.attempts(), 3, "each attempt reached the server");
    assert_eq!(mailer.stats().failed(), 1);
    // Nothing listening at all: reported as well.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut gone = config(&sink);
    gone.port = Some(closed);
    let err = Mailer::new(&gone).unwrap().send(&mail).await.unwrap_err();
    assert!(matches!(err, MailError::Failed { .. }), "{err}");
    // Without [smtp] nothing is pretended.
    let none = Mailer::new(&SmtpConfig::default()).unwrap();
    assert!(!none.configured());
    assert!(matches!(
        none.send(&mail).await,
        Err(MailError::NotConfigured)
    ));
}
