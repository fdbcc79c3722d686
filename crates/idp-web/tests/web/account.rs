//! The account page (`/account`): it lists the user's factors, sessions and recent
//! sign-ins; it changes the password (the current one required, the policy applied, other
//! sessions ended), renames and removes factors (after a step-up, only the user's own),
//! ends sessions (only the user's own). Each refusal is the page with the field named, a
//! code and an operation ID, and nothing written.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use latchkey_idp::mfa::Factors;
use latchkey_idp::mfa::recovery::RecoveryCodes;
use latchkey_idp::mfa::totp::{Totp, TotpCheck};
use latchkey_idp::password::Password;
use latchkey_idp::session::Sessions;
use latchkey_idp::webauthn::Credentials;
use latchkey_idp::{Actor, Clock};
use serde_json::json;

use super::mfa_pages::{app_for, code_now, recovery_codes_on, submit_code, totp_enrolled};
use super::support::*;

const NEW_PASSWORD: &str = "an entirely new passphrase";
const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64) TestBrowser/1.0";

/// Signs in through the form with a User-Agent, as a real browser would.
async fn login_with_agent(b: &mut Browser<'_>, user: &str, password: &str) -> Page {
    let form = b.get("/login").await;
    let csrf = form.field("csrf").unwrap();
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("username", user), ("password", password), ("csrf", &csrf)])
        .finish();
    b.send(
        Request::post("/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::USER_AGENT, BROWSER)
            .body(Body::from(body))
            .unwrap(),
    )
    .await
}

/// The account page's csrf field.
async fn csrf_of(b: &mut Browser<'_>) -> String {
    let page = b.get("/account").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page.field("csrf").unwrap()
}

async fn password_is(idp: &Idp, user: &latchkey_idp::directory::User, password: &str) -> bool {
    idp.store
        .users()
        .verify_password(user.id, Password::new(password))
        .await
        .unwrap()
}

/// The refusal the account page shows: its field and code.
fn refusal_of(page: &Page) -> (Option<String>, String) {
    let at = page
        .body
        .find("id=\"account-refusal\">")
        .unwrap_or_else(|| panic!("no refusal: {} {}", page.status, page.body));
    let text = &page.body[at..page.body[at..].find("</p>").unwrap() + at];
    let field = text
        .find("<strong>")
        .map(|s| text[s + 8..text.find("</strong>").unwrap()].to_owned());
    (field, page.error_code().unwrap().to_owned())
}

/// A TOTP app for bob, through the domain; returns its factor ID.
async fn bob_totp(idp: &Idp) -> String {
    let kek = idp.kek();
    let totp = Totp::new(&idp.store, &kek);
    let e = totp.begin(&idp.bob, "bob's phone", "test").await.unwrap();
    let app = app_for(&e.secret_base32);
    let done = totp
        .confirm(
            &Actor::user(idp.bob.id),
            &idp.bob,
            &e.factor_id,
            &code_now(idp, &app),
            "127.0.0.1",
        )
        .await
        .unwrap();
    assert!(matches!(done, TotpCheck::Accepted { .. }));
    e.factor_id
}

fn totp_names(list: &[latchkey_idp::mfa::FactorInfo]) -> Vec<String> {
    list.iter()
        .filter(|f| f.kind == latchkey_idp::mfa::FactorKind::Totp)
        .map(|f| f.name.clone())
        .collect()
}

#[tokio::test]
async fn the_page_lists_factors_sessions_and_recent_sign_ins_and_the_portal_links_to_it() {
    let idp = idp().await;
    let app = totp_enrolled(&idp).await;
    RecoveryCodes::new(&idp.store)
        .regenerate(
            &Actor::user(idp.alice.id),
            &idp.alice,
            latchkey_idp::session::Keep::Nothing,
        )
        .await
        .unwrap();
    let mut anonymous = Browser::new(&idp);
    assert_eq!(
        anonymous.get("/account").await.location(),
        "/login?to=/account"
    );
    // A wrong password first: it shows among the sign-ins.
    let mut other = Browser::new(&idp);
    assert_eq!(
        other.login("alice", "not her password", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    other.login("alice", PASSWORD, None).await;

    let mut b = Browser::new(&idp);
    assert_eq!(
        login_with_agent(&mut b, "alice", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    let done = submit_code(
        &mut b,
        "/login/mfa?then=account",
        "totp",
        &code_now(&idp, &app),
    )
    .await;
    assert_eq!(done.location(), "/account");
    let portal = b.get("/portal").await;
    assert!(portal.body.contains("href=\"/account\""), "{}", portal.body);

    let page = b.get("/account").await;
    assert_eq!(page.status, StatusCode::OK);
    let body = &page.body;
    // The factor with its name and last use; the codes left.
    assert!(body.contains("Authenticator app"), "{body}");
    assert!(body.contains("<td>phone</td>"), "{body}");
    assert!(!body.contains("<td>never</td>"), "the app was used: {body}");
    assert!(
        body.contains("<strong id=\"recovery-remaining\">10</strong>"),
        "{body}"
    );
    // Both sessions, this one marked, with its browser and methods.
    let sessions = &body[body.find("id=\"session-list\"").unwrap()..];
    assert_eq!(sessions.matches("name=\"session\"").count(), 2, "{body}");
    assert!(sessions.contains(BROWSER), "{body}");
    assert!(sessions.contains("This browser"), "{body}");
    assert!(
        sessions.contains("<td>password, authenticator app</td>"),
        "{body}"
    );
    // The sign-ins, newest first: the step-up, two sign-ins, the failure.
    let sign_ins = &body[body.find("id=\"sign-in-list\"").unwrap()..];
    let order: Vec<usize> = ["Second factor accepted", "Signed in", "Sign-in refused"]
        .iter()
        .map(|w| sign_ins.find(w).unwrap_or_else(|| panic!("{w}: {body}")))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{body}");
    assert_eq!(sign_ins.matches("<td>Signed in</td>").count(), 2, "{body}");
}

#[tokio::test]
async fn a_password_change_needs_the_current_one_meets_the_policy_and_ends_other_sessions() {
    let idp = idp().await;
    let mut other = Browser::new(&idp);
    other.login("alice", PASSWORD, None).await;
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    let csrf = csrf_of(&mut b).await;
    let change = |current: &'static str, new: &'static str, confirm: &'static str| {
        vec![
            ("current", current),
            ("password", new),
            ("confirm", confirm),
        ]
    };

    // No anti-forgery token: refused before anything.
    let forged = b
        .post(
            "/account/password",
            &change(PASSWORD, NEW_PASSWORD, NEW_PASSWORD),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(forged.error_code(), Some("WEB-CSRF"));

    // Bad input: the field named, nothing written.
    let cases = [
        (
            change("", NEW_PASSWORD, NEW_PASSWORD),
            "Current password",
            "ACCOUNT-INPUT",
        ),
        (
            change(PASSWORD, "short", "short"),
            "New password",
            "PASSWORD-REFUSED",
        ),
        (
            change(PASSWORD, NEW_PASSWORD, "something else entirely"),
            "New password",
            "PASSWORD-REFUSED",
        ),
        (
            change(PASSWORD, "1qaz2wsx3edc", "1qaz2wsx3edc"),
            "New password",
            "PASSWORD-REFUSED",
        ),
    ];
    for (mut fields, field, code) in cases {
        fields.push(("csrf", &csrf));
        let page = b.post("/account/password", &fields).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
        assert_eq!(refusal_of(&page), (Some(field.to_owned()), code.to_owned()));
        assert!(page.body.contains("Operation ID"), "{}", page.body);
    }
    // The wrong current password: refused, and in the sign-in history.
    let mut fields = change("not my password", NEW_PASSWORD, NEW_PASSWORD);
    fields.push(("csrf", &csrf));
    let page = b.post("/account/password", &fields).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        refusal_of(&page),
        (
            Some("Current password".to_owned()),
            "ACCOUNT-PASSWORD-WRONG".to_owned()
        )
    );
    assert!(
        page.body.contains("Wrong current password"),
        "{}",
        page.body
    );
    assert!(password_is(&idp, &idp.alice, PASSWORD).await);
    assert!(audit_actions(&idp, "user.password").await.is_empty());
    assert_eq!(other.get("/portal").await.status, StatusCode::OK);

    // The right one: changed, audited with her name, the other session ended, this one kept.
    let mut fields = change(PASSWORD, NEW_PASSWORD, NEW_PASSWORD);
    fields.push(("csrf", &csrf));
    let page = b.post("/account/password", &fields).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), "/account?done=password");
    assert!(password_is(&idp, &idp.alice, NEW_PASSWORD).await);
    let changed = audit_actions(&idp, "user.password").await;
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].actor_name.as_deref(), Some("alice"));
    let ended = audit_actions(&idp, "user.sessions_end").await;
    assert_eq!(ended[0].after.as_ref().unwrap()["sessions_ended"], 1);
    assert_eq!(other.get("/portal").await.status, StatusCode::SEE_OTHER);
    let page = b.get("/account?done=password").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("id=\"account-notice\""), "{}", page.body);
}

#[tokio::test]
async fn guessing_the_current_password_is_throttled_like_a_sign_in() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    let csrf = csrf_of(&mut b).await;
    let mut last = None;
    for _ in 0..12 {
        let page = b
            .post(
                "/account/password",
                &[
                    ("current", "a guess"),
                    ("password", NEW_PASSWORD),
                    ("confirm", NEW_PASSWORD),
                    ("csrf", &csrf),
                ],
            )
            .await;
        if page.status == StatusCode::TOO_MANY_REQUESTS {
            last = Some(page);
            break;
        }
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    }
    let page = last.expect("throttled within the account key's free attempts");
    assert_eq!(page.error_code(), Some("LOGIN-THROTTLED"));
    assert!(page.headers.contains_key(header::RETRY_AFTER));
    // Throttled means not checked: the right password is refused the same way now.
    let page = b
        .post(
            "/account/password",
            &[
                ("current", PASSWORD),
                ("password", NEW_PASSWORD),
                ("confirm", NEW_PASSWORD),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(password_is(&idp, &idp.alice, PASSWORD).await);
}

#[tokio::test]
async fn factors_change_only_after_a_step_up_and_only_ones_own() {
    let idp = idp().await;
    let app = totp_enrolled(&idp).await;
    let bobs = bob_totp(&idp).await;
    let factors = Factors::new(&idp.store);
    let alices = factors.list(&idp.alice).await.unwrap()[0].id.clone();
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;

    // A password session: the page offers the step-up, and the forms send there.
    let page = b.get("/account").await;
    assert!(
        page.body.contains("href=\"/login/mfa?then=account\""),
        "{}",
        page.body
    );
    assert!(!page.body.contains("/rename\""), "{}", page.body);
    let csrf = page.field("csrf").unwrap();
    for action in ["rename", "remove"] {
        let page = b
            .post(
                &format!("/account/factors/{alices}/{action}"),
                &[("csrf", &csrf), ("name", "stolen")],
            )
            .await;
        assert_eq!(page.location(), "/login/mfa?then=account", "{action}");
    }
    assert_eq!(
        totp_names(&factors.list(&idp.alice).await.unwrap()),
        ["phone"]
    );
    let done = submit_code(
        &mut b,
        "/login/mfa?then=account",
        "totp",
        &code_now(&idp, &app),
    )
    .await;
    assert_eq!(done.location(), "/account");
    let page = b.get("/account").await;
    assert!(
        page.body
            .contains(&format!("action=\"/account/factors/{alices}/rename\"")),
        "{}",
        page.body
    );

    // Bad names: the field named, nothing written.
    for name in ["", "   ", &"x".repeat(65), "tab\there"] {
        let page = b
            .post(
                &format!("/account/factors/{alices}/rename"),
                &[("csrf", &csrf), ("name", name)],
            )
            .await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{name:?}");
        assert_eq!(
            refusal_of(&page),
            (Some("Name".to_owned()), "ACCOUNT-INPUT".to_owned())
        );
    }
    // Bob's factor, and one that does not exist: the same refusal, nothing written.
    for id in [bobs.as_str(), "no-such-factor", "recovery-codes"] {
        for action in ["rename", "remove"] {
            let page = b
                .post(
                    &format!("/account/factors/{id}/{action}"),
                    &[("csrf", &csrf), ("name", "mine now")],
                )
                .await;
            assert_eq!(page.status, StatusCode::NOT_FOUND, "{id} {action}");
            assert_eq!(refusal_of(&page), (None, "ACCOUNT-UNKNOWN".to_owned()));
        }
    }
    assert_eq!(
        totp_names(&factors.list(&idp.bob).await.unwrap()),
        ["bob's phone"]
    );
    assert_eq!(
        totp_names(&factors.list(&idp.alice).await.unwrap()),
        ["phone"]
    );
    // A forged form changes nothing.
    let forged = b
        .post(&format!("/account/factors/{alices}/remove"), &[])
        .await;
    assert_eq!(forged.error_code(), Some("WEB-CSRF"));

    // Rename, then remove: each audited with her name.
    let page = b
        .post(
            &format!("/account/factors/{alices}/rename"),
            &[("csrf", &csrf), ("name", "work phone")],
        )
        .await;
    assert_eq!(page.location(), "/account?done=renamed");
    assert_eq!(
        totp_names(&factors.list(&idp.alice).await.unwrap()),
        ["work phone"]
    );
    let renamed = audit_actions(&idp, "mfa.totp_rename").await;
    assert_eq!(renamed[0].actor_name.as_deref(), Some("alice"));
    // Her other session (say, one a thief holds) and bob's, before the removal.
    let mut elsewhere = Browser::new(&idp);
    elsewhere.login("alice", PASSWORD, None).await;
    assert_eq!(elsewhere.get("/account").await.status, StatusCode::OK);
    let mut bob = Browser::new(&idp);
    bob.login("bob", PASSWORD, None).await;
    let page = b
        .post(
            &format!("/account/factors/{alices}/remove"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(page.location(), "/account?done=removed");
    assert!(!factors.has_factor(&idp.alice).await.unwrap());
    let removed = audit_actions(&idp, "mfa.totp_remove").await;
    assert_eq!(removed[0].actor_name.as_deref(), Some("alice"));
    // Her other sessions end with it; the one she removed it from goes on, bob's too.
    assert_other_sessions_ended(&idp, &mut b, &mut elsewhere, "mfa_totp_remove").await;
    assert_eq!(bob.get("/portal").await.status, StatusCode::OK);
}

/// After alice removed or replaced a second factor from `current`: `current` goes on,
/// `elsewhere` is signed out, and one `user.sessions_end` event by her says why.
async fn assert_other_sessions_ended(
    idp: &Idp,
    current: &mut Browser<'_>,
    elsewhere: &mut Browser<'_>,
    reason: &str,
) {
    assert_eq!(current.get("/account").await.status, StatusCode::OK);
    let out = elsewhere.get("/portal").await;
    assert_eq!(out.status, StatusCode::SEE_OTHER, "{}", out.body);
    assert_eq!(out.location(), "/login");
    let ended: Vec<_> = audit_actions(idp, "user.sessions_end")
        .await
        .into_iter()
        .filter(|e| e.after.as_ref().is_some_and(|a| a["reason"] == reason))
        .collect();
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(ended[0].actor, format!("user:{}", idp.alice.id));
    assert_eq!(ended[0].target_id, Some(idp.alice.id.to_string()));
    let count = ended[0].after.as_ref().unwrap()["sessions_ended"].as_u64();
    assert!(count.is_some_and(|n| n >= 1), "{ended:?}");
}

#[tokio::test]
async fn new_recovery_codes_from_the_account_page_are_shown_once_after_a_step_up() {
    let idp = idp().await;
    let app = totp_enrolled(&idp).await;
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    let csrf = csrf_of(&mut b).await;
    let page = b
        .post(
            "/mfa/recovery-codes",
            &[("csrf", &csrf), ("then", "account")],
        )
        .await;
    assert_eq!(page.location(), "/login/mfa?then=recovery-codes");
    // Nor does the password alone learn how many codes are left.
    let page = b.get("/mfa/recovery-codes").await;
    assert_eq!(page.location(), "/login/mfa?then=recovery-codes");
    assert!(!page.body.contains("recovery-remaining"), "{}", page.body);
    submit_code(
        &mut b,
        "/login/mfa?then=account",
        "totp",
        &code_now(&idp, &app),
    )
    .await;
    let page = b
        .post(
            "/mfa/recovery-codes",
            &[("csrf", &csrf), ("then", "account")],
        )
        .await;
    assert_eq!(recovery_codes_on(&page).len(), 10);
    let page = b.get("/mfa/recovery-codes").await;
    assert!(
        page.body
            .contains("<strong id=\"recovery-remaining\">10</strong>"),
        "{}",
        page.body
    );
    let account = b.get("/account").await;
    assert!(
        account
            .body
            .contains("<strong id=\"recovery-remaining\">10</strong>"),
        "{}",
        account.body
    );
    assert!(recovery_codes_on(&account).is_empty());

    // New codes again: the unused ones go, and so do her other sessions (one may have
    // signed in with a code); this one stays.
    let mut elsewhere = Browser::new(&idp);
    elsewhere.login("alice", PASSWORD, None).await;
    assert_eq!(elsewhere.get("/account").await.status, StatusCode::OK);
    let page = b
        .post(
            "/mfa/recovery-codes",
            &[("csrf", &csrf), ("then", "account")],
        )
        .await;
    assert_eq!(recovery_codes_on(&page).len(), 10);
    assert_other_sessions_ended(
        &idp,
        &mut b,
        &mut elsewhere,
        "mfa_recovery_codes_regenerate",
    )
    .await;
}

#[tokio::test]
async fn sessions_end_one_at_a_time_and_only_ones_own() {
    let idp = idp().await;
    let mut other = Browser::new(&idp);
    other.login("alice", PASSWORD, None).await;
    let mut bob = Browser::new(&idp);
    bob.login("bob", PASSWORD, None).await;
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    let sessions = Sessions::new(&idp.store);
    let now = idp.clock.now();
    let bobs = sessions.of_user(idp.bob.id, now).await.unwrap()[0]
        .session_index
        .clone();
    let csrf = csrf_of(&mut b).await;
    let page = b.get("/account").await;
    let list = &page.body[page.body.find("id=\"session-list\"").unwrap()..];
    let rows: Vec<(bool, String)> = list
        .split("<tr>")
        .filter_map(|row| {
            let at = row.find("name=\"session\" value=\"")? + "name=\"session\" value=\"".len();
            let index = row[at..at + row[at..].find('"')?].to_owned();
            Some((row.contains("This browser"), index))
        })
        .collect();
    assert_eq!(rows.len(), 2, "{}", page.body);
    let own = rows.iter().find(|(current, _)| *current).unwrap().1.clone();
    let theirs = rows
        .iter()
        .find(|(current, _)| !*current)
        .unwrap()
        .1
        .clone();

    // Bad input, bob's session, a forged form: nothing ended.
    for (value, status, code) in [
        ("", StatusCode::BAD_REQUEST, "ACCOUNT-INPUT"),
        (bobs.as_str(), StatusCode::NOT_FOUND, "ACCOUNT-UNKNOWN"),
        ("_sdeadbeef", StatusCode::NOT_FOUND, "ACCOUNT-UNKNOWN"),
    ] {
        let page = b
            .post(
                "/account/sessions/end",
                &[("csrf", &csrf), ("session", value)],
            )
            .await;
        assert_eq!(page.status, status, "{value:?}");
        assert_eq!(refusal_of(&page).1, code);
    }
    let long = "x".repeat(200);
    let page = b
        .post(
            "/account/sessions/end",
            &[("csrf", &csrf), ("session", &long)],
        )
        .await;
    assert_eq!(
        refusal_of(&page),
        (Some("Session".to_owned()), "ACCOUNT-INPUT".to_owned())
    );
    let forged = b
        .post("/account/sessions/end", &[("session", &theirs)])
        .await;
    assert_eq!(forged.error_code(), Some("WEB-CSRF"));
    assert_eq!(bob.get("/portal").await.status, StatusCode::OK);
    assert_eq!(other.get("/portal").await.status, StatusCode::OK);
    assert!(audit_actions(&idp, "session.end").await.is_empty());

    // The other browser's session: ended, audited; this one goes on.
    let page = b
        .post(
            "/account/sessions/end",
            &[("csrf", &csrf), ("session", &theirs)],
        )
        .await;
    assert_eq!(page.location(), "/account?done=session");
    assert_eq!(other.get("/portal").await.status, StatusCode::SEE_OTHER);
    assert_eq!(b.get("/portal").await.status, StatusCode::OK);
    let ended = audit_actions(&idp, "session.end").await;
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].actor_name.as_deref(), Some("alice"));
    assert_eq!(
        ended[0].before.as_ref().unwrap(),
        &json!({ "session_index": theirs })
    );
    // Its own: signed out.
    let page = b
        .post(
            "/account/sessions/end",
            &[("csrf", &csrf), ("session", &own)],
        )
        .await;
    assert_eq!(page.location(), "/login");
    assert_eq!(b.get("/portal").await.status, StatusCode::SEE_OTHER);
    assert_eq!(bob.get("/portal").await.status, StatusCode::OK);
}

#[tokio::test]
async fn passkeys_are_listed_renamed_and_removed_from_a_passkey_session() {
    let idp = super::webauthn::passkey_idp().await;
    let (mut key, raw_id) = super::webauthn::enrolled(&idp).await;
    let credentials = Credentials::new(&idp.store);
    let id = credentials.list(idp.alice.id).await.unwrap()[0].id;
    let mut b = Browser::new(&idp);
    let body = super::webauthn::passkey_answer(&mut b, &mut key, &raw_id, idp.alice.id.0).await;
    let (status, _) =
        super::webauthn::json_post(&mut b, "/webauthn/login/finish", &body.to_string()).await;
    assert_eq!(status, StatusCode::OK);

    let page = b.get("/account").await;
    assert!(
        page.body.contains("Passkey or security key"),
        "{}",
        page.body
    );
    assert!(page.body.contains("<td>my key</td>"), "{}", page.body);
    assert!(page.body.contains("href=\"/webauthn\""), "{}", page.body);
    assert!(page.body.contains("<td>passkey</td>"), "{}", page.body);
    let csrf = page.field("csrf").unwrap();
    let page = b
        .post(
            &format!("/account/factors/{id}/rename"),
            &[("csrf", &csrf), ("name", "")],
        )
        .await;
    assert_eq!(refusal_of(&page).0.as_deref(), Some("Name"));
    let page = b
        .post(
            &format!("/account/factors/{id}/rename"),
            &[("csrf", &csrf), ("name", "laptop")],
        )
        .await;
    assert_eq!(page.location(), "/account?done=renamed");
    assert_eq!(
        credentials.list(idp.alice.id).await.unwrap()[0].name,
        "laptop"
    );
    let mut elsewhere = Browser::new(&idp);
    elsewhere.login("alice", PASSWORD, None).await;
    assert_eq!(elsewhere.get("/account").await.status, StatusCode::OK);
    let page = b
        .post(&format!("/account/factors/{id}/remove"), &[("csrf", &csrf)])
        .await;
    assert_eq!(page.location(), "/account?done=removed");
    assert_eq!(credentials.count(idp.alice.id).await.unwrap(), 0);
    assert_eq!(audit_actions(&idp, "webauthn.removed").await.len(), 1);
    assert_other_sessions_ended(&idp, &mut b, &mut elsewhere, "webauthn_remove").await;
}

/// The reset form of a fresh link for `user`.
async fn reset_form(idp: &Idp, user: &latchkey_idp::directory::User) -> Page {
    let link = idp
        .store
        .enrollment()
        .issue_reset(&Actor::system(), user.id, time::Duration::minutes(30))
        .await
        .unwrap();
    Browser::new(idp).get(&link.path()).await
}

#[tokio::test]
async fn a_first_passkey_brings_recovery_codes_and_reset_asks_for_one() {
    let idp = super::webauthn::passkey_idp().await;
    let (_key, _raw_id, answer) = super::webauthn::enrolled_with_answer(&idp).await;
    // Shown once, in the enrolment's answer: ten codes that work.
    let codes: Vec<String> = answer["recovery_codes"]
        .as_array()
        .unwrap_or_else(|| panic!("no codes: {answer}"))
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    let recovery = RecoveryCodes::new(&idp.store);
    assert_eq!(recovery.remaining(&idp.alice).await.unwrap(), 10);

    // A passkey is a second factor (the one definition): reset asks for a recovery code.
    let factors = Factors::new(&idp.store);
    assert!(factors.has_factor(&idp.alice).await.unwrap());
    let form = reset_form(&idp, &idp.alice).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("name=\"code\""), "{}", form.body);
    // With every code used, nothing the form takes is left: sign in with the key instead.
    for code in &codes {
        let used = recovery
            .consume(&idp.alice, code, "127.0.0.1")
            .await
            .unwrap();
        assert!(
            matches!(
                used,
                latchkey_idp::mfa::recovery::RecoveryCheck::Accepted { .. }
            ),
            "{used:?}"
        );
    }
    let form = reset_form(&idp, &idp.alice).await;
    assert_eq!(form.status, StatusCode::FORBIDDEN, "{}", form.body);
    assert!(form.body.contains("passkey"), "{}", form.body);
    assert!(!form.body.contains("name=\"password\""), "{}", form.body);

    // She has a factor now: a password session may not add another key.
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    assert_eq!(
        super::webauthn::json_post(&mut b, "/webauthn/register/start", "{}")
            .await
            .0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn recovery_codes_alone_are_not_a_second_factor_anywhere() {
    let idp = idp().await;
    totp_enrolled(&idp).await;
    RecoveryCodes::new(&idp.store)
        .regenerate(
            &Actor::user(idp.alice.id),
            &idp.alice,
            latchkey_idp::session::Keep::Nothing,
        )
        .await
        .unwrap();
    let form = reset_form(&idp, &idp.alice).await;
    assert!(form.body.contains("name=\"code\""), "{}", form.body);
    // Her app goes, and her codes with it (the last factor takes them along).
    let factors = Factors::new(&idp.store);
    let id = factors.list(&idp.alice).await.unwrap()[0].id.clone();
    assert!(
        Totp::new(&idp.store, &idp.kek())
            .remove(
                &Actor::user(idp.alice.id),
                &idp.alice,
                &id,
                latchkey_idp::session::Keep::Nothing
            )
            .await
            .unwrap()
    );
    assert_eq!(
        factors.available(&idp.alice).await.unwrap().recovery_codes,
        0
    );
    // Codes made with no factor at all are still not one.
    RecoveryCodes::new(&idp.store)
        .regenerate(
            &Actor::user(idp.alice.id),
            &idp.alice,
            latchkey_idp::session::Keep::Nothing,
        )
        .await
        .unwrap();
    let available = factors.available(&idp.alice).await.unwrap();
    assert_eq!(available.recovery_codes, 10);
    // Every page agrees: no factor. Reset asks no code; sign-in's second step enrols one.
    assert!(!available.any_factor());
    assert!(!factors.has_factor(&idp.alice).await.unwrap());
    let form = reset_form(&idp, &idp.alice).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(!form.body.contains("name=\"code\""), "{}", form.body);
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    assert_eq!(
        b.get("/login/mfa?then=account").await.location(),
        "/mfa/totp?then=account"
    );
    // And the account page lets a password session add one (nothing to step up with).
    let page = b.get("/account").await;
    assert!(
        page.body.contains("href=\"/mfa/totp?then=account\""),
        "{}",
        page.body
    );
}

/// `[mfa] required` (and a user's or group's rule) holds at the account page as at the
/// portal: a session that used only a password sees nothing of the account and changes
/// nothing (not the password, not another session), and is sent to step up first.
#[tokio::test]
async fn a_session_short_of_a_required_second_factor_is_sent_to_step_up_first() {
    let idp = idp_with_settings(|s| s.mfa_required = true).await;
    let app = totp_enrolled(&idp).await;
    let mut owner = Browser::new(&idp);
    owner.login("alice", PASSWORD, None).await;
    submit_code(
        &mut owner,
        "/login/mfa?then=portal",
        "totp",
        &code_now(&idp, &app),
    )
    .await;
    assert_eq!(owner.get("/portal").await.status, StatusCode::OK);
    let owners = Sessions::new(&idp.store)
        .of_user(idp.alice.id, idp.clock.now())
        .await
        .unwrap()[0]
        .session_index
        .clone();

    // Someone with the password only.
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    assert_eq!(b.get("/portal").await.location(), "/login/mfa?then=portal");
    let page = b.get("/account").await;
    assert_eq!(page.location(), "/login/mfa?then=account");
    assert!(!page.body.contains("session-list"), "{}", page.body);
    let csrf = b
        .get("/login/mfa?then=account")
        .await
        .field("csrf")
        .unwrap();
    let changed = b
        .post(
            "/account/password",
            &[
                ("csrf", &csrf),
                ("current", PASSWORD),
                ("password", NEW_PASSWORD),
                ("confirm", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(changed.location(), "/login/mfa?then=account");
    assert!(password_is(&idp, &idp.alice, PASSWORD).await);
    let ended = b
        .post(
            "/account/sessions/end",
            &[("csrf", &csrf), ("session", &owners)],
        )
        .await;
    assert_eq!(ended.location(), "/login/mfa?then=account");
    assert_eq!(owner.get("/portal").await.status, StatusCode::OK);
    assert!(audit_actions(&idp, "session.end").await.is_empty());

    // After the code, the page is theirs.
    idp.clock.advance(time::Duration::seconds(30));
    let done = submit_code(
        &mut b,
        "/login/mfa?then=account",
        "totp",
        &code_now(&idp, &app),
    )
    .await;
    assert_eq!(done.location(), "/account");
    assert_eq!(b.get("/account").await.status, StatusCode::OK);
}
