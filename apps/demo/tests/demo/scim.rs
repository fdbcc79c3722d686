//! SCIM through the demo wiki: the endpoint under the app's token, one account for JIT and
//! SCIM, roles from SCIM groups, a disabled account's session ending at once, and the admin
//! page saying where each change came from.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use latchkey_demo_apps::{AppKind, DemoConfig};
use latchkey_sp::scim::service::token_sha256;
use serde_json::{Value, json};

use crate::support::*;

const TOKEN: &str = "demo-scim-token-for-tests";

fn scim_settings() -> String {
    format!(
        "[sp.scim]\ntokens = [{{ name = \"test-idp\", sha256 = \"{}\" }}]\nname_id = \"emails\"\n",
        token_sha256(TOKEN)
    )
}

async fn scim(t: &TestApp, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(format!("/scim/v2{path}"))
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "application/scim+json");
    let reply = send(
        t,
        req.body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .unwrap(),
    )
    .await;
    let value = if reply.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&reply.body).unwrap()
    };
    (reply.status, value)
}

fn ada(groups: &[&str]) -> Login {
    Login::new(
        "ada@example.org",
        EMAIL_FORMAT,
        &[
            ("email", &["ada@example.org"]),
            ("displayName", &["Ada Lovelace"]),
            ("groups", groups),
        ],
    )
}

fn patch(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

#[tokio::test]
async fn jit_and_scim_share_the_account_and_a_disabled_account_is_signed_out_at_once() {
    let t = app(AppKind::Wiki, &scim_settings()).await;
    let cookie = sp_initiated(&t, ada(&["wiki-editors"])).await.cookie();
    let account_id = whoami(&t, Some(&cookie)).await["account"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The IdP pushes the same person: SCIM takes over the account JIT made.
    let (status, user) = scim(
        &t,
        Method::POST,
        "/Users",
        Some(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "ada",
            "displayName": "Ada Lovelace",
            "emails": [{"value": "ada@example.org", "primary": true}]
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    assert_eq!(user["id"], account_id.as_str());
    // The wiki's contract needs a role from a group: SCIM's groups are the ones that count now.
    let (status, group) = scim(
        &t,
        Method::POST,
        "/Groups",
        Some(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "wiki-admins",
            "members": [{"value": account_id}]
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    assert_eq!(whoami(&t, Some(&cookie)).await["account"]["role"], "admin");

    // The admin page says where each change came from.
    let page = get(&t, "/admin", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("JIT login"), "{}", page.body);
    assert!(page.body.contains("SCIM (test-idp)"), "{}", page.body);
    assert!(page.body.contains("scim.created") && page.body.contains("scim.group"));

    // Disabled through SCIM: the session ends at once, and the next login is refused.
    let (status, user) = scim(
        &t,
        Method::PATCH,
        &format!("/Users/{account_id}"),
        Some(patch(
            json!([{"op": "replace", "path": "active", "value": false}]),
        )),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(whoami(&t, Some(&cookie)).await["authenticated"], false);
    let refused = sp_initiated(&t, ada(&["wiki-admins"])).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_eq!(refused.error_code(), "ACCOUNT_DISABLED");
    assert!(refused.set_cookie.is_none());
}

#[tokio::test]
async fn the_scim_endpoint_needs_the_token_and_exists_only_when_configured() {
    let t = app(AppKind::Wiki, &scim_settings()).await;
    let reply = get(&t, "/scim/v2/Users", None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let (status, list) = scim(&t, Method::GET, "/Users", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["totalResults"], 0);

    let without = app(AppKind::Wiki, "").await;
    assert_eq!(
        get(&without, "/scim/v2/Users", None).await.status,
        StatusCode::NOT_FOUND
    );
}

#[test]
fn the_demo_makes_its_scim_token_once_and_keeps_only_its_hash_in_settings() {
    let dir = tempfile::tempdir().unwrap();
    let load = || DemoConfig::from_toml(&config_toml(AppKind::Helpdesk, ""), dir.path()).unwrap();
    let mut config = load();
    config.ensure_scim("externalId").unwrap();
    let file = config.scim_token_file();
    let token = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    assert!(token.len() >= 64, "{token}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let settings = config.sp.scim.clone().unwrap();
    assert_eq!(settings.tokens[0].sha256, token_sha256(&token));
    assert_eq!(settings.name_id, "externalId");
    // A restart reuses the token.
    let mut again = load();
    again.ensure_scim("externalId").unwrap();
    assert_eq!(
        again.sp.scim.unwrap().tokens[0].sha256,
        token_sha256(&token)
    );
}
