//! Sign-in audit lines go through one writer that stores whatever arrived together as one
//! statement (group commit). These tests hold it to the rule that matters: every assertion
//! that leaves has its line, and without a stored line no assertion leaves.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt;

use super::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_concurrent_assertion_has_its_own_audit_line() {
    let idp: &'static Idp = Box::leak(Box::new(idp().await));
    let mut first = Browser::new(idp);
    first.login("alice", PASSWORD, None).await;
    let cookies = first.cookies.clone();
    const LAUNCHES: usize = 48;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..LAUNCHES {
        let cookies = cookies.clone();
        set.spawn(async move {
            let mut b = Browser::new(idp);
            b.cookies = cookies;
            let page = b.get(&format!("/saml/init/{}", idp.app.id)).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.body);
            let subject = sp_validate(idp, SP, SP_ACS, &page.saml_response(), None).unwrap();
            subject.assertion_id
        });
    }
    let mut sent = Vec::new();
    while let Some(id) = set.join_next().await {
        sent.push(id.unwrap());
    }
    let lines = audit_actions(idp, "sso.assertion").await;
    assert_eq!(lines.len(), LAUNCHES);
    let mut recorded: Vec<String> = lines
        .iter()
        .map(|e| {
            e.after.as_ref().unwrap()["assertion_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    recorded.sort();
    sent.sort();
    assert_eq!(
        recorded, sent,
        "each assertion sent is recorded exactly once"
    );
    let mut ids: Vec<_> = lines.iter().map(|e| e.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), LAUNCHES);
    assert!(
        lines
            .iter()
            .all(|e| e.actor == format!("user:{}", idp.alice.id))
    );
}

#[tokio::test]
async fn no_stored_audit_line_means_no_assertion() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    raw_sql(&idp, "ALTER TABLE audit_events RENAME TO audit_events_away").await;
    // The browser helper refuses 5xx pages, so this request goes to the router directly.
    let jar: Vec<String> = b.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let request = Request::get(format!("/saml/init/{}", idp.app.id))
        .header(header::COOKIE, jar.join("; "))
        .header("sec-fetch-site", "same-origin")
        .body(Body::empty())
        .unwrap();
    let response = idp.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = body_text(response).await;
    assert!(!body.contains("SAMLResponse"), "{body}");
    assert!(body.contains("WEB-INTERNAL"), "{body}");
    assert!(
        !body.contains("audit_events"),
        "no internals on the page: {body}"
    );

    // Once the log is back, sign-ins are answered again.
    raw_sql(&idp, "ALTER TABLE audit_events_away RENAME TO audit_events").await;
    let page = b.get(&format!("/saml/init/{}", idp.app.id)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.field("SAMLResponse").is_some());
}

/// A console refusal's audit event is a side channel: when the log cannot be written, the
/// operator still gets the 403 page with its code and operation ID, never a 500.
#[tokio::test]
async fn a_console_refusal_stays_a_403_when_its_audit_event_cannot_be_written() {
    use super::console::{csrf, person, signed_in};
    use latchkey_idp::console::Role;
    let idp = idp().await;
    person(&idp, "hd", Some(Role::Helpdesk)).await;
    let root = person(&idp, "root", Some(Role::Admin)).await;
    let mut b = signed_in(&idp, "hd").await;
    let token = csrf(&mut b).await;
    raw_sql(&idp, "ALTER TABLE audit_events RENAME TO audit_events_away").await;
    let page = b
        .post(
            &format!("/admin/users/{}/suspend", root.id),
            &[("csrf", &token)],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert_eq!(page.error_code(), Some("WEB-FORBIDDEN"));
    assert!(page.operation_id().is_some(), "{}", page.body);
    raw_sql(&idp, "ALTER TABLE audit_events_away RENAME TO audit_events").await;
}

/// A statement on the store's SQLite file, behind the server's back.
async fn raw_sql(idp: &Idp, sql: &'static str) {
    use sqlx::Connection;
    let db = idp.key_dir.parent().unwrap().join("latchkey.db");
    let url = latchkey_idp::config::sqlite_url(&db);
    let mut raw = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query(sql).execute(&mut raw).await.unwrap();
}
