//! Self-service password reset through the pages, with the reset desk mailing through the
//! testkit's loopback SMTP sink: the mailed link resets, expired and reused links are
//! refused, an account with a second factor must give a code, and the request page answers
//! the same, in the same time, for names that exist and names that do not.

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use axum::http::StatusCode;
use latchkey_idp::config::{SmtpConfig, SmtpSecurity};
use latchkey_idp::directory::NewUser;
use latchkey_idp::enrollment::reset::ResetDesk;
use latchkey_idp::keys::{Kek, KekSource};
use latchkey_idp::mail::Mailer;
use latchkey_idp::mfa::recovery::RecoveryCodes;
use latchkey_idp::mfa::totp::{Totp, TotpCheck};
use latchkey_idp::{Actor, Clock};
use latchkey_idp_web::reset::KEY_FRESH_FOR;
use latchkey_testkit::smtp::SmtpSink;
use totp_rs::{Algorithm, Secret, TOTP};

use super::support::*;

const NEW_PASSWORD: &str = "a new and quite long passphrase";

/// The test IdP with a reset desk that mails through a fresh sink, and a TOTP key.
async fn idp_with_reset(kek: Option<Kek>) -> (Idp, SmtpSink) {
    let sink = SmtpSink::start();
    let mailer = Mailer::new(&SmtpConfig {
        host: Some("127.0.0.1".into()),
        port: Some(sink.port()),
        security: SmtpSecurity::None,
        from: Some("Latchkey <idp@example.org>".into()),
        ..SmtpConfig::default()
    })
    .unwrap();
    let mut idp = idp_with(|c| c.trust_forwarded_for = true).await;
    let desk = ResetDesk::start(
        idp.store.clone(),
        BASE.into(),
        time::Duration::minutes(30),
        Arc::new(mailer),
    );
    rebuild(&mut idp, |state| {
        let state = state.with_reset_desk(desk);
        match kek {
            Some(kek) => state.with_sealing_kek(kek),
            None => state,
        }
    });
    (idp, sink)
}

/// Asks for a reset of `name` through the page; returns the page.
async fn ask(b: &mut Browser<'_>, name: &str) -> Page {
    let form = b.get("/reset").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let csrf = form.field("csrf").unwrap();
    b.post("/reset", &[("name", name), ("csrf", &csrf)]).await
}

/// The path of the `n`th reset link mailed (1-based), waiting for it.
fn mailed_link(sink: &SmtpSink, n: usize) -> String {
    let mails = sink.wait_for(n, StdDuration::from_secs(20));
    assert!(mails.len() >= n, "{} mails", mails.len());
    let text = mails[n - 1].text();
    let start = text
        .find(&format!("{BASE}/reset/"))
        .expect("a reset link in the mail");
    let url = text[start..].split_whitespace().next().unwrap();
    url.strip_prefix(BASE).unwrap().to_owned()
}

/// Posts the set-password form at `path`.
async fn set_password(b: &mut Browser<'_>, path: &str, password: &str, code: Option<&str>) -> Page {
    let form = b.get(path).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let csrf = form.field("csrf").unwrap();
    let mut fields = vec![
        ("password", password),
        ("confirm", password),
        ("csrf", csrf.as_str()),
    ];
    if let Some(code) = code {
        fields.push(("code", code));
    }
    b.post(path, &fields).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mailed_link_resets_and_works_once() {
    let (idp, sink) = idp_with_reset(None).await;
    let mut b = Browser::new(&idp);
    let login = b.get("/login").await;
    assert!(login.body.contains("href=\"/reset\""), "{}", login.body);

    // A session from before the reset, in another browser.
    let mut other = Browser::new(&idp);
    assert_eq!(
        other.login("alice", PASSWORD, None).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(other.get("/portal").await.status, StatusCode::OK);

    let sent = ask(&mut b, "alice@example.org").await;
    assert_eq!(sent.status, StatusCode::OK);
    assert!(sent.body.contains("If an account matches"), "{}", sent.body);
    let path = mailed_link(&sink, 1);
    assert_eq!(sink.messages()[0].to, vec!["alice@example.org".to_owned()]);

    // Two copies that differ, then a short password: refused, the link still works.
    let form = b.get(&path).await;
    let csrf = form.field("csrf").unwrap();
    let differ = b
        .post(
            &path,
            &[
                ("password", NEW_PASSWORD),
                ("confirm", "something else entirely"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(differ.status, StatusCode::BAD_REQUEST);
    assert!(
        differ.body.contains("The two passwords differ"),
        "{}",
        differ.body
    );
    let short = set_password(&mut b, &path, "short1", None).await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST);
    assert!(
        short.body.contains("at least 12 characters"),
        "{}",
        short.body
    );

    let done = set_password(&mut b, &path, NEW_PASSWORD, None).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("Password changed"), "{}", done.body);
    // Every session ended, the old password is gone, the new one signs in.
    let portal = other.get("/portal").await;
    assert_eq!(portal.status, StatusCode::SEE_OTHER);
    assert!(portal.location().starts_with("/login"));
    assert_eq!(
        b.login("alice", PASSWORD, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        b.login("alice", NEW_PASSWORD, None).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(audit_actions(&idp, "user.password_reset").await.len(), 1);

    // Used: the page says so, and a post changes nothing.
    let again = b.get(&path).await;
    assert_eq!(again.status, StatusCode::GONE);
    assert_eq!(again.error_code(), Some("LINK-USED"));
    let csrf = b.get("/reset").await.field("csrf").unwrap();
    let reuse = b
        .post(
            &path,
            &[
                ("password", "yet another long passphrase"),
                ("confirm", "yet another long passphrase"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(reuse.error_code(), Some("LINK-USED"));
    assert_eq!(
        b.login("alice", NEW_PASSWORD, None).await.status,
        StatusCode::SEE_OTHER
    );

    // A made-up link.
    let unknown = b
        .get("/reset/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.error_code(), Some("LINK-UNKNOWN"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_link_is_refused_and_a_forged_form_too() {
    let (idp, sink) = idp_with_reset(None).await;
    let mut b = Browser::new(&idp);
    ask(&mut b, "bob").await;
    let path = mailed_link(&sink, 1);
    let form = b.get(&path).await;
    assert_eq!(form.status, StatusCode::OK);
    let csrf = form.field("csrf").unwrap();

    // Without the anti-forgery token: refused, nothing changed.
    let forged = b
        .cross_site_post(
            &path,
            &[("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)],
        )
        .await;
    assert_eq!(forged.error_code(), Some("WEB-CSRF"));

    idp.clock.advance(time::Duration::minutes(31));
    let late = b.get(&path).await;
    assert_eq!(late.status, StatusCode::GONE);
    assert_eq!(late.error_code(), Some("LINK-EXPIRED"));
    let post = b
        .post(
            &path,
            &[
                ("password", NEW_PASSWORD),
                ("confirm", NEW_PASSWORD),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(post.error_code(), Some("LINK-EXPIRED"));
    assert_eq!(
        b.login("bob", PASSWORD, None).await.status,
        StatusCode::SEE_OTHER
    );
    assert!(audit_actions(&idp, "user.password_reset").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_with_totp_must_give_a_code_or_a_recovery_code() {
    let text = Kek::generate_base64();
    let kek = Kek::from_base64(&text, KekSource::Env).unwrap();
    let server_kek = Kek::from_base64(&text, KekSource::Env).unwrap();
    let (idp, sink) = idp_with_reset(Some(server_kek)).await;
    // alice enrols an authenticator app and gets recovery codes.
    let totp = Totp::new(&idp.store, &kek);
    let e = totp.begin(&idp.alice, "phone", "test").await.unwrap();
    let app = TOTP::new_unchecked(
        Algorithm::SHA1,
        6,
        0,
        30,
        Secret::Encoded(e.secret_base32.to_string())
            .to_bytes()
            .unwrap(),
        None,
        String::new(),
    );
    let code = app.generate(idp.clock.now().unix_timestamp() as u64);
    let done = totp
        .confirm(
            &Actor::user(idp.alice.id),
            &idp.alice,
            &e.factor_id,
            &code,
            "127.0.0.1",
        )
        .await
        .unwrap();
    assert!(matches!(done, TotpCheck::Accepted { .. }));
    let codes = RecoveryCodes::new(&idp.store)
        .regenerate(
            &Actor::user(idp.alice.id),
            &idp.alice,
            latchkey_idp::session::Keep::Nothing,
        )
        .await
        .unwrap();

    let mut b = Browser::new(&idp);
    ask(&mut b, "alice").await;
    let path = mailed_link(&sink, 1);
    let form = b.get(&path).await;
    assert!(form.body.contains("name=\"code\""), "{}", form.body);

    // No code, a wrong code: refused, the link still usable, the password unchanged.
    let none = set_password(&mut b, &path, NEW_PASSWORD, Some("")).await;
    assert_eq!(none.status, StatusCode::BAD_REQUEST);
    assert!(none.body.contains("second factor"), "{}", none.body);
    let wrong = set_password(&mut b, &path, NEW_PASSWORD, Some("000000")).await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(
        wrong.body.contains("The code is not right"),
        "{}",
        wrong.body
    );
    assert!(audit_actions(&idp, "user.password_reset").await.is_empty());

    // The app's current code (a fresh step) lets it through.
    idp.clock.advance(time::Duration::seconds(30));
    let code = app.generate(idp.clock.now().unix_timestamp() as u64);
    let ok = set_password(&mut b, &path, NEW_PASSWORD, Some(&code)).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(
        b.login("alice", NEW_PASSWORD, None).await.status,
        StatusCode::SEE_OTHER
    );
    // The reset's audit says which code it took; a TOTP code is no recovery code.
    let reset = &audit_actions(&idp, "user.password_reset").await[0];
    assert_eq!(reset.after.as_ref().unwrap()["code_used"], "totp");
    assert!(
        audit_actions(&idp, "mfa.recovery_code_use")
            .await
            .is_empty()
    );

    // A second reset with a recovery code instead (the desk allows three per account).
    idp.clock.advance(time::Duration::minutes(1));
    ask(&mut b, "alice@example.org").await;
    let path = mailed_link(&sink, 2);
    let ok = set_password(&mut b, &path, "the third long passphrase", Some(&codes[0])).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(
        RecoveryCodes::new(&idp.store)
            .remaining(&idp.alice)
            .await
            .unwrap(),
        codes.len() as i64 - 1
    );
    // An auditor tells this use of a recovery code from a sign-in's: `used_for`, and the
    // reset's own event names the code it took.
    let used = audit_actions(&idp, "mfa.recovery_code_use").await;
    assert_eq!(used.len(), 1);
    assert_eq!(
        used[0].after.as_ref().unwrap()["used_for"],
        "password_reset"
    );
    let resets = audit_actions(&idp, "user.password_reset").await;
    assert_eq!(resets.len(), 2);
    assert!(
        resets
            .iter()
            .any(|e| e.after.as_ref().unwrap()["code_used"] == "recovery_code"),
        "{resets:?}"
    );
}

/// alice with an authenticator app (confirmed now) and recovery codes; returns the codes.
async fn alice_with_totp_and_codes(idp: &Idp) -> Vec<String> {
    let kek = idp.kek();
    let totp = Totp::new(&idp.store, &kek);
    let e = totp.begin(&idp.alice, "phone", "test").await.unwrap();
    let code = app_for(&e.secret_base32).generate(idp.clock.now().unix_timestamp() as u64);
    let done = totp
        .confirm(
            &Actor::user(idp.alice.id),
            &idp.alice,
            &e.factor_id,
            &code,
            "127.0.0.1",
        )
        .await
        .unwrap();
    assert!(matches!(done, TotpCheck::Accepted { .. }));
    RecoveryCodes::new(&idp.store)
        .regenerate(
            &Actor::user(idp.alice.id),
            &idp.alice,
            latchkey_idp::session::Keep::Nothing,
        )
        .await
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect()
}

/// A recovery code typed on the reset page is used up only with the link: a post the full
/// hash pool turns away (503) leaves the user their code, which then works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_turned_away_by_a_busy_hash_pool_leaves_the_code() {
    let mut idp = idp_with_passwords(
        latchkey_idp::config::PasswordConfig {
            memory_kib: 8192,
            iterations: 30,
            max_concurrent: 1,
            max_queued: 1,
            ..cheap_passwords()
        },
        |_| {},
    )
    .await;
    let kek = idp.kek();
    rebuild(&mut idp, |state| state.with_sealing_kek(kek));
    let codes = alice_with_totp_and_codes(&idp).await;
    let link = idp
        .store
        .enrollment()
        .issue_reset(&Actor::system(), idp.alice.id, time::Duration::minutes(30))
        .await
        .unwrap();
    let mut b = Browser::new(&idp);

    // The pool full: one hash running, one waiting, a third refused.
    let holders: Vec<_> = (0..3)
        .map(|_| {
            let store = idp.store.clone();
            tokio::spawn(async move {
                store
                    .hashing()
                    .hash(latchkey_idp::password::Password::new("held held held"))
                    .await
            })
        })
        .collect();
    while idp.store.hashing().stats().refused == 0 {
        tokio::task::yield_now().await;
    }
    b.busy_ok = true;
    let busy = set_password(&mut b, &link.path(), NEW_PASSWORD, Some(&codes[0])).await;
    assert_eq!(
        busy.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        busy.body
    );
    for holder in holders {
        let _ = holder.await.unwrap();
    }
    assert_eq!(
        RecoveryCodes::new(&idp.store)
            .remaining(&idp.alice)
            .await
            .unwrap(),
        codes.len() as i64
    );
    assert!(
        audit_actions(&idp, "mfa.recovery_code_use")
            .await
            .is_empty()
    );

    // The same code again, the pool free: the reset goes through and uses it.
    let ok = set_password(&mut b, &link.path(), NEW_PASSWORD, Some(&codes[0])).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(
        RecoveryCodes::new(&idp.store)
            .remaining(&idp.alice)
            .await
            .unwrap(),
        codes.len() as i64 - 1
    );
    assert_eq!(audit_actions(&idp, "mfa.recovery_code_use").await.len(), 1);
}

/// Resets the full hash pool turns away (503) never reached the hash: the throttle slots
/// their (right) code took go back, as a sign-in's do, so a user retrying through a burst is
/// not locked out by our own overload. Wrong codes still count, and once the limit is
/// reached even the right code is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_a_busy_hash_pool_turns_away_take_no_throttle_slot() {
    use latchkey_idp::session::{Throttle, ThrottlePolicy};
    use std::sync::atomic::{AtomicBool, Ordering};
    let mut idp = idp_with_passwords(
        latchkey_idp::config::PasswordConfig {
            memory_kib: 8192,
            iterations: 30,
            max_concurrent: 1,
            max_queued: 1,
            ..cheap_passwords()
        },
        |_| {},
    )
    .await;
    let kek = idp.kek();
    rebuild(&mut idp, |state| state.with_sealing_kek(kek));
    let codes = alice_with_totp_and_codes(&idp).await;
    let link = idp
        .store
        .enrollment()
        .issue_reset(&Actor::system(), idp.alice.id, time::Duration::minutes(30))
        .await
        .unwrap();
    let throttle = Throttle::new(&idp.store);
    let runs = throttle.runs().await.unwrap();
    let mut b = Browser::new(&idp);
    b.busy_ok = true;

    // The pool kept full (one hash running, one waiting) until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let keepers: Vec<_> = (0..4)
        .map(|_| {
            let store = idp.store.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let held = latchkey_idp::password::Password::new("held held held");
                    let _ = store.hashing().hash(held).await;
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    let free = usize::try_from(ThrottlePolicy::FACTOR.free).unwrap();
    for attempt in 0..free + 2 {
        let refused = idp.store.hashing().stats().refused;
        while idp.store.hashing().stats().refused == refused {
            tokio::task::yield_now().await;
        }
        let busy = set_password(&mut b, &link.path(), NEW_PASSWORD, Some(&codes[0])).await;
        assert_eq!(
            busy.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "attempt {attempt}: {}",
            busy.body
        );
    }
    stop.store(true, Ordering::SeqCst);
    for keeper in keepers {
        keeper.await.unwrap();
    }
    assert_eq!(
        throttle.runs().await.unwrap(),
        runs,
        "every slot given back"
    );

    // Wrong codes (well-formed, so each is a guess) count as before: `free` of them, and
    // then the right code is refused too, with nothing written.
    let wrong = codes[1].split('-').rev().collect::<Vec<_>>().join("-");
    assert!(!codes.contains(&wrong));
    for guess in 0..free {
        let page = set_password(&mut b, &link.path(), NEW_PASSWORD, Some(&wrong)).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "guess {guess}");
        assert!(page.body.contains("The code is not right"), "{}", page.body);
    }
    let page = set_password(&mut b, &link.path(), NEW_PASSWORD, Some(&codes[0])).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("Too many wrong codes"), "{}", page.body);
    assert_eq!(
        RecoveryCodes::new(&idp.store)
            .remaining(&idp.alice)
            .await
            .unwrap(),
        codes.len() as i64
    );
    assert!(audit_actions(&idp, "user.password_reset").await.is_empty());
}

/// A passkey-only account (no TOTP app, no recovery codes left) cannot type a code, and
/// `/account` asks for the password it forgot: the reset link works once this browser's
/// session of the same user used the key lately, and only then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passkey_only_user_resets_after_signing_in_with_the_key() {
    use super::webauthn::{enrolled_with_answer, json_post, passkey_answer, passkey_idp};
    let idp = passkey_idp().await;
    let (mut key, raw_id, done) = enrolled_with_answer(&idp).await;
    // She uses up her recovery codes: the key is all she has.
    for code in done["recovery_codes"].as_array().unwrap() {
        let used = RecoveryCodes::new(&idp.store)
            .consume(&idp.alice, code.as_str().unwrap(), "198.51.100.9")
            .await
            .unwrap();
        assert!(matches!(
            used,
            latchkey_idp::mfa::recovery::RecoveryCheck::Accepted { .. }
        ));
    }
    let link = idp
        .store
        .enrollment()
        .issue_reset(&Actor::system(), idp.alice.id, time::Duration::minutes(30))
        .await
        .unwrap();
    let path = link.path();

    // No session, or a password-only one: sent to sign in with the key, not to /account.
    let mut b = Browser::new(&idp);
    let page = b.get(&path).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert!(page.body.contains("open the link"), "{}", page.body);
    assert!(!page.body.contains("account page"), "{}", page.body);
    // The window the page names is the one the code keeps, from the constant itself.
    let minutes = KEY_FRESH_FOR.whole_minutes();
    assert!(
        page.body.contains(&format!("within {minutes} minutes")),
        "{}",
        page.body
    );
    let mut with_password = Browser::new(&idp);
    with_password.login("alice", PASSWORD, None).await;
    assert_eq!(with_password.get(&path).await.status, StatusCode::FORBIDDEN);

    // Someone else's key session does not count either.
    let mut bobs = Browser::new(&idp);
    bobs.login("bob", PASSWORD, None).await;
    assert_eq!(bobs.get(&path).await.status, StatusCode::FORBIDDEN);

    // Signed in with the key: the form, without a code field; the reset goes through.
    let body = passkey_answer(&mut b, &mut key, &raw_id, idp.alice.id.0).await;
    let (status, signed_in) = json_post(&mut b, "/webauthn/login/finish", &body.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{signed_in}");
    let form = b.get(&path).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert!(!form.body.contains("name=\"code\""), "{}", form.body);
    let ok = set_password(&mut b, &path, NEW_PASSWORD, None).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(audit_actions(&idp, "user.password_reset").await.len(), 1);
    assert_eq!(
        Browser::new(&idp)
            .login("alice", NEW_PASSWORD, None)
            .await
            .status,
        StatusCode::SEE_OTHER
    );

    // A key sign-in older than the window does not count.
    let link = idp
        .store
        .enrollment()
        .issue_reset(&Actor::system(), idp.alice.id, time::Duration::minutes(30))
        .await
        .unwrap();
    let mut later = Browser::new(&idp);
    let body = passkey_answer(&mut later, &mut key, &raw_id, idp.alice.id.0).await;
    let (status, _) = json_post(&mut later, "/webauthn/login/finish", &body.to_string()).await;
    assert_eq!(status, StatusCode::OK);
    idp.clock
        .advance(KEY_FRESH_FOR + time::Duration::minutes(1));
    assert_eq!(later.get(&link.path()).await.status, StatusCode::FORBIDDEN);
}

/// A user with both a key and a TOTP app: a fresh key session of theirs in this browser is
/// the second factor (nothing to type, no code used up), as for a passkey-only user; a
/// password session, or a key session older than [`KEY_FRESH_FOR`], still asks for a code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_with_a_key_and_totp_resets_with_a_fresh_key_session() {
    use super::webauthn::{enrolled_with_answer, json_post, passkey_answer, passkey_idp};
    let idp = passkey_idp().await;
    let (mut key, raw_id, _) = enrolled_with_answer(&idp).await;
    let codes = alice_with_totp_and_codes(&idp).await;
    let issue = || async {
        idp.store
            .enrollment()
            .issue_reset(&Actor::system(), idp.alice.id, time::Duration::minutes(30))
            .await
            .unwrap()
            .path()
    };
    let path = issue().await;

    // No session, or a password-only one: the form asks for a code.
    let mut b = Browser::new(&idp);
    let form = b.get(&path).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert!(form.body.contains("name=\"code\""), "{}", form.body);
    let mut with_password = Browser::new(&idp);
    with_password.login("alice", PASSWORD, None).await;
    let form = with_password.get(&path).await;
    assert!(form.body.contains("name=\"code\""), "{}", form.body);
    let none = set_password(&mut with_password, &path, NEW_PASSWORD, Some("")).await;
    assert_eq!(none.status, StatusCode::BAD_REQUEST, "{}", none.body);

    // Signed in with the key in this browser: no code field, and the reset goes through
    // without one, using none of her codes.
    let body = passkey_answer(&mut b, &mut key, &raw_id, idp.alice.id.0).await;
    let (status, signed_in) = json_post(&mut b, "/webauthn/login/finish", &body.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{signed_in}");
    let form = b.get(&path).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert!(!form.body.contains("name=\"code\""), "{}", form.body);
    let ok = set_password(&mut b, &path, NEW_PASSWORD, None).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    let resets = audit_actions(&idp, "user.password_reset").await;
    assert_eq!(resets.len(), 1);
    assert!(resets[0].after.as_ref().unwrap()["code_used"].is_null());
    assert_eq!(
        RecoveryCodes::new(&idp.store)
            .remaining(&idp.alice)
            .await
            .unwrap(),
        codes.len() as i64
    );
    assert_eq!(
        Browser::new(&idp)
            .login("alice", NEW_PASSWORD, None)
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    // The link was used once: a second post does nothing.
    assert_ne!(b.get(&path).await.status, StatusCode::OK);

    // A key sign-in older than the window: a code again, and no reset without it.
    let path = issue().await;
    let mut later = Browser::new(&idp);
    let body = passkey_answer(&mut later, &mut key, &raw_id, idp.alice.id.0).await;
    let (status, _) = json_post(&mut later, "/webauthn/login/finish", &body.to_string()).await;
    assert_eq!(status, StatusCode::OK);
    idp.clock
        .advance(KEY_FRESH_FOR + time::Duration::minutes(1));
    let form = later.get(&path).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert!(form.body.contains("name=\"code\""), "{}", form.body);
    let none = set_password(&mut later, &path, "yet another long passphrase", Some("")).await;
    assert_eq!(none.status, StatusCode::BAD_REQUEST, "{}", none.body);
    assert_eq!(audit_actions(&idp, "user.password_reset").await.len(), 1);
}

/// Rank-sum (Mann-Whitney U) z statistic of two samples, with the normal approximation.
fn rank_sum_z(a: &[f64], b: &[f64]) -> f64 {
    let mut all: Vec<(f64, usize)> = a
        .iter()
        .map(|&x| (x, 0))
        .chain(b.iter().map(|&x| (x, 1)))
        .collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut ranks = vec![0.0; all.len()];
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for r in &mut ranks[i..=j] {
            *r = rank;
        }
        i = j + 1;
    }
    let r1: f64 = all
        .iter()
        .zip(&ranks)
        .filter(|(x, _)| x.1 == 0)
        .map(|(_, r)| r)
        .sum();
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let u = r1 - n1 * (n1 + 1.0) / 2.0;
    let mean = n1 * n2 / 2.0;
    let sd = (n1 * n2 * (n1 + n2 + 1.0) / 12.0).sqrt();
    (u - mean) / sd
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
}

/// One reset request from `addr`, timed from the request to the whole answer.
async fn timed(b: &mut Browser<'_>, csrf: &str, name: &str, addr: &str) -> (f64, String) {
    b.address = Some(addr.to_owned());
    let start = Instant::now();
    let page = b.post("/reset", &[("name", name), ("csrf", csrf)]).await;
    let took = start.elapsed().as_secs_f64();
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    (took, page.body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_request_takes_the_same_time_for_unknown_names() {
    const N: usize = 50;
    let (idp, sink) = idp_with_reset(None).await;
    for i in 0..N {
        idp.store
            .users()
            .create(
                &Actor::system(),
                NewUser::new(format!("member{i}"), format!("member{i}@example.org")),
            )
            .await
            .unwrap();
    }
    let mut b = Browser::new(&idp);
    let csrf = b.get("/reset").await.field("csrf").unwrap();
    // Each request from its own address and for its own name, so no throttle answers any
    // of them; the pair's order alternates, so a drift in the machine's load hits both.
    // Warm-up (first statements prepared, pages compiled), not measured.
    for i in 0..5 {
        timed(&mut b, &csrf, &format!("warmup{i}"), &format!("10.2.0.{i}")).await;
    }
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    let mut bodies = Vec::new();
    for i in 0..N {
        let pair = [(format!("member{i}"), true), (format!("nobody{i}"), false)];
        let order: Vec<_> = if i % 2 == 0 {
            pair.to_vec()
        } else {
            pair.iter().rev().cloned().collect()
        };
        for (j, (name, exists)) in order.into_iter().enumerate() {
            let (took, body) = timed(&mut b, &csrf, &name, &format!("10.1.{i}.{j}")).await;
            if exists {
                known.push(took)
            } else {
                unknown.push(took)
            }
            bodies.push(body);
        }
    }
    // The same page for everyone (the anti-forgery token is the browser's, the same too).
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    let (mk, mu) = (median(known.clone()), median(unknown.clone()));
    let ratio = mk / mu;
    let z = rank_sum_z(&known, &unknown);
    // On a loaded two-core machine the mail and link work that real accounts put on the
    // background queue still competes for the CPU, which moves sub-millisecond medians by
    // about a millisecond either way. What must never happen is path-dependent work on the
    // request path (a hash, a database write, an SMTP exchange): that separates the two
    // samples by more than this floor, and then both checks below apply.
    const FLOOR: f64 = 0.003;
    if (mk - mu).abs() > FLOOR {
        assert!(
            (0.5..2.0).contains(&ratio),
            "medians {mk:.6}s known, {mu:.6}s unknown"
        );
        // Two-sided, 1 %.
        assert!(
            z.abs() < 2.576,
            "rank-sum z = {z:.2} (medians {mk:.6}s, {mu:.6}s)"
        );
    }
    // And the known ones were mailed (off the request path).
    assert_eq!(sink.wait_for(N, StdDuration::from_secs(60)).len(), N);
}
