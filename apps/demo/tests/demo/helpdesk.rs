//! The helpdesk: persistent NameID, agents from the support department.

use axum::http::StatusCode;
use latchkey_demo_apps::AppKind;
use latchkey_sp::jit::NAMEID_FORMAT_PERSISTENT;

use crate::support::*;

pub fn person(id: &str, department: &str) -> Login {
    Login::new(
        id,
        NAMEID_FORMAT_PERSISTENT,
        &[
            ("givenName", &["Grace"]),
            ("sn", &["Hopper"]),
            ("department", &[department]),
            ("email", &["grace@example.org"]),
        ],
    )
}

#[tokio::test]
async fn support_department_gets_agent_and_others_requester() {
    let t = app(AppKind::Helpdesk, "").await;
    let reply = sp_initiated(&t, person("p-0001", "support")).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let me = whoami(&t, Some(&reply.cookie())).await;
    assert_eq!(me["account"]["role"], "agent");
    assert_eq!(me["account"]["fields"]["department"], "support");
    assert_eq!(me["name_id_format"], NAMEID_FORMAT_PERSISTENT);

    // Moving department: the same account, now a requester.
    let reply = sp_initiated(&t, person("p-0001", "finance")).await;
    let me = whoami(&t, Some(&reply.cookie())).await;
    assert_eq!(me["account"]["role"], "requester");
    let text = me["provisioning"].as_str().unwrap();
    assert!(
        text.starts_with("updated: role agent -> requester"),
        "{text}"
    );
    assert!(text.contains("department support -> finance"), "{text}");
    assert_eq!(t.app.store().accounts().await.unwrap().len(), 1);
}

#[tokio::test]
async fn missing_department_is_refused() {
    let t = app(AppKind::Helpdesk, "").await;
    let mut login = person("p-0002", "support");
    login.attributes.retain(|(n, _)| n != "department");
    let reply = sp_initiated(&t, login).await;
    assert_refused(&t, &reply, "REQUIRED_ATTRIBUTE_MISSING").await;
    // Which attribute is missing is for the audit trail (the page shows the code and the
    // operation ID only).
    let audit = t.app.store().audit_log(10).await.unwrap();
    let event = audit
        .iter()
        .find(|e| e.operation_id.to_string() == reply.operation_id())
        .unwrap();
    assert!(refusal_detail(event).contains("department"), "{event:?}");
    assert!(!reply.body.contains("department"), "{}", reply.body);
}

#[tokio::test]
async fn email_name_id_is_refused_by_the_helpdesk() {
    let t = app(AppKind::Helpdesk, "").await;
    let mut login = person("grace@example.org", "support");
    login.format = EMAIL_FORMAT.into();
    let reply = sp_initiated(&t, login).await;
    assert_refused(&t, &reply, "NAME_ID_NOT_PERSISTENT").await;
}
