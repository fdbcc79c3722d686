//! An invitation over real mail, in a real Chromium: `latchkey serve` with `[smtp]` pointing
//! at a loopback sink (the testkit's), `latchkey user invite` mails the link, the browser
//! follows it from the message, sets the password and is signed in; the same link again is
//! refused (`LINK-USED`), so is one past its expiry (`LINK-EXPIRED`), and the new password
//! signs in at the ordinary form. On the way, the portal's link opens the account page.

use std::time::Duration;

use latchkey_testkit::smtp::SmtpSink;
use serde_json::json;

use super::stack::{Stack, free_port};
use super::webdriver::Driver;
use super::{Shots, artefact_dir_named};

const NEW_PASSWORD: &str = "dana chose this long passphrase";

/// The invitation link in the `n`th message (1-based), waiting for it.
fn mailed_link(sink: &SmtpSink, n: usize, idp: &str, to: &str) -> String {
    let mails = sink.wait_for(n, Duration::from_secs(30));
    assert!(mails.len() >= n, "{} messages arrived", mails.len());
    let mail = &mails[n - 1];
    assert!(
        mail.to.iter().any(|a| a.contains(to)),
        "addressed to {:?}",
        mail.to
    );
    let text = mail.text();
    let start = text
        .find(&format!("{idp}/invite/"))
        .unwrap_or_else(|| panic!("no invitation link in: {text}"));
    text[start..].split_whitespace().next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_is_mailed_followed_in_the_browser_and_works_once() {
    let dir = artefact_dir_named("invite");
    let logs = dir.join("logs");
    let mut shots = Shots {
        dir: dir.clone(),
        next: 0,
    };
    let sink = SmtpSink::start();
    let smtp = format!(
        "[smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\n\
         from = \"Latchkey <idp@example.com>\"\n",
        sink.port()
    );
    let stack = Stack::start_with_config(&logs, "127.0.0.1", &smtp);
    let idp = stack.idp.clone();
    let profiles = tempfile::tempdir().unwrap();
    let driver = Driver::start(free_port(), &logs.join("chromedriver.log")).await;

    // A new hire with no password; the admin invites them and the mail goes out.
    stack.cli(&["user", "add", "dana", "--email", "dana@example.com"]);
    let said = stack.cli(&["user", "invite", "dana"]);
    assert!(said.contains("mailed a link"), "{said}");
    assert!(
        !said.contains("/invite/"),
        "a mailed link is not printed: {said}"
    );
    let link = mailed_link(&sink, 1, &idp, "dana@example.com");

    // Dana follows it: the form, the new password twice, signed in at the portal.
    let b = driver.browser(&profiles.path().join("dana")).await;
    b.goto(&link).await;
    let text = b.wait_for(&link, "dana").await;
    assert!(text.to_lowercase().contains("password"), "{text}");
    shots.take(&b, "invitation-form").await;
    b.type_into("#password", NEW_PASSWORD).await;
    b.type_into("#confirm", NEW_PASSWORD).await;
    b.click("button[type=submit]").await;
    let portal = b.wait_for(&format!("{idp}/portal"), "dana").await;
    assert!(portal.contains("Signed in as"), "{portal}");
    shots.take(&b, "invitation-signed-in").await;
    // Her account page, from the portal's link: her session, with this browser's name, and
    // the sign-in the invitation made.
    b.click("a[href='/account']").await;
    let account = b
        .wait_for(&format!("{idp}/account"), "Recent sign-ins")
        .await;
    assert!(account.contains("This browser"), "{account}");
    assert!(
        account.contains("Chrome"),
        "the User-Agent is shown: {account}"
    );
    assert!(account.contains("Signed in"), "{account}");
    assert!(account.contains("no second factor"), "{account}");
    shots.take(&b, "account-page").await;

    // The same link again, even from the browser that used it: refused.
    b.goto(&link).await;
    let used = b.wait_for(&link, "LINK-USED").await;
    assert!(used.contains("Operation ID"), "{used}");
    shots.take(&b, "invitation-used").await;

    // The new password works at the sign-in form (every cookie gone first).
    b.command("DELETE", "/cookie", json!({})).await;
    b.goto(&format!("{idp}/login")).await;
    b.wait_for(&format!("{idp}/login"), "Password").await;
    b.type_into("#username", "dana").await;
    b.type_into("#password", NEW_PASSWORD).await;
    b.click("button[type=submit]").await;
    b.wait_for(&format!("{idp}/portal"), "dana").await;
    b.quit().await;

    // An invitation that has lapsed: refused, and nothing was set.
    stack.cli(&["user", "add", "erin", "--email", "erin@example.com"]);
    let said = stack.cli(&["user", "invite", "erin", "--expires", "1s"]);
    assert!(said.contains("mailed a link"), "{said}");
    let late = mailed_link(&sink, 2, &idp, "erin@example.com");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let e = driver.browser(&profiles.path().join("erin")).await;
    e.goto(&late).await;
    let expired = e.wait_for(&late, "LINK-EXPIRED").await;
    assert!(!expired.contains("New password"), "{expired}");
    shots.take(&e, "invitation-expired").await;
    e.quit().await;
}
