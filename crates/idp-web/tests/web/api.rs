//! The admin REST API, driven in-process through `tower::ServiceExt::oneshot` (no
//! socket), with the store test suite's harness: its store cases run on SQLite in the main
//! binary and on a throwaway PostgreSQL in the oracles binary.

use crate::support::TestStore;
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use latchkey_idp::Actor;
use latchkey_idp::tokens::ApiTokens;
use latchkey_idp_web::api::{self, ApiState};
use serde_json::{Value, json};
use tower::ServiceExt;

pub(crate) struct Api {
    pub(crate) router: Router,
    pub(crate) token: String,
    pub(crate) token_id: String,
    pub(crate) t: TestStore,
}

pub(crate) async fn api(t: TestStore) -> Api {
    let (info, issued) = ApiTokens::new(&t.store)
        .create(&Actor::cli("tester"), "tests")
        .await
        .unwrap();
    Api {
        router: api::router(ApiState::new(t.store.clone())),
        token: issued.expose().to_owned(),
        token_id: info.id,
        t,
    }
}

impl Api {
    pub(crate) async fn raw(
        &self,
        req: Request<Body>,
    ) -> (StatusCode, axum::http::HeaderMap, Value) {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!("non-JSON body ({e}): {}", String::from_utf8_lossy(&bytes))
            })
        };
        (status, headers, body)
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token));
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let (status, _, value) = self.raw(req.body(body).unwrap()).await;
        (status, value)
    }

    pub(crate) async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.call(Method::GET, uri, None).await
    }

    pub(crate) async fn audit_count(&self) -> i64 {
        self.t.store.audit().count().await.unwrap()
    }
}

/// The usernames of a user listing's `items`, in order.
fn names(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_owned())
        .collect()
}

fn assert_error(resp: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(resp.0, status, "{}", resp.1);
    assert_eq!(resp.1["error"], code, "{}", resp.1);
    assert!(
        resp.1["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        resp.1
    );
}

async fn authentication(t: TestStore) {
    let a = api(t).await;
    let bare = Request::get("/api/v1/users").body(Body::empty()).unwrap();
    let (status, headers, body) = a.raw(bare).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "unauthorized");
    assert!(
        headers[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );

    // A well-formed token with a wrong secret, a mangled one, and another scheme.
    let wrong_secret = format!(
        "{}{}",
        &a.token[..a.token.len() - 1],
        if a.token.ends_with('0') { '1' } else { '0' }
    );
    for value in [
        format!("Bearer {wrong_secret}"),
        format!("Bearer {}x", a.token),
        "Bearer lk_nonsense".to_owned(),
        format!("Basic {}", a.token),
    ] {
        let req = Request::get("/api/v1/users")
            .header(header::AUTHORIZATION, value.clone())
            .body(Body::empty())
            .unwrap();
        assert_eq!(a.raw(req).await.0, StatusCode::UNAUTHORIZED, "{value}");
    }
    // The scheme is case-insensitive (RFC 9110).
    let req = Request::get("/api/v1/users")
        .header(header::AUTHORIZATION, format!("bearer {}", a.token))
        .body(Body::empty())
        .unwrap();
    assert_eq!(a.raw(req).await.0, StatusCode::OK);

    // The OpenAPI document is public.
    let req = Request::get("/api/v1/openapi.json")
        .body(Body::empty())
        .unwrap();
    assert_eq!(a.raw(req).await.0, StatusCode::OK);

    // Use is recorded; revocation takes effect on the next request.
    let tokens = ApiTokens::new(&a.t.store);
    let listed = tokens.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].last_used_at.is_some());
    tokens.revoke(&Actor::cli("tester"), "tests").await.unwrap();
    assert_error(
        &a.get("/api/v1/users").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert!(matches!(
        tokens.revoke(&Actor::cli("tester"), &a.token_id).await,
        Err(latchkey_idp::Error::UnknownToken { .. })
    ));
    let events = a.t.store.audit().list(&Default::default()).await.unwrap();
    let actions: Vec<_> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["token.revoke", "token.create"]);
    // The audit log never holds the secret.
    assert!(
        !serde_json::to_string(&events)
            .unwrap()
            .contains(&a.token[3 + 16..])
    );
}

/// A token of scope `api_read` reads everything an `api` token reads and changes nothing:
/// every other method is a 403 `token_read_only` that changes nothing; it reaches no SCIM.
/// Each refusal writes exactly one audit event, `api.refused`, under the token's identity,
/// naming the scope it needed, the method and path, and the operation ID the response carries.
async fn read_only_tokens(t: TestStore) {
    use latchkey_idp::audit::AuditFilter;
    use latchkey_idp::tokens::TokenScope;
    let mut a = api(t).await;
    let (siem, issued) = ApiTokens::new(&a.t.store)
        .create_scoped(&Actor::cli("tester"), "siem", TokenScope::ApiRead)
        .await
        .unwrap();
    let full = std::mem::replace(&mut a.token, issued.expose().to_owned());
    for uri in [
        "/api/v1/users",
        "/api/v1/groups",
        "/api/v1/apps",
        "/api/v1/audit",
    ] {
        let (status, body) = a.get(uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    }
    let before = a.audit_count().await;
    let writes = [
        (
            Method::POST,
            "/api/v1/users",
            Some(json!({"username": "mallory", "email": "m@example.org"})),
        ),
        (
            Method::POST,
            "/api/v1/groups",
            Some(json!({"name": "admins-too"})),
        ),
        (Method::PUT, "/api/v1/roles/admin/users/mallory", None),
        (Method::POST, "/api/v1/users/nobody/suspend", None),
        (Method::DELETE, "/api/v1/users/nobody", None),
        (Method::PATCH, "/api/v1/users/nobody", Some(json!({}))),
        (Method::PUT, "/api/v1/apps/nothing/scim", Some(json!({}))),
    ];
    for (i, (method, uri, body)) in writes.iter().cloned().enumerate() {
        let answer = a.call(method.clone(), uri, body).await;
        assert_error(&answer, StatusCode::FORBIDDEN, "token_read_only");
        let shown = answer.1["operation_id"]
            .as_str()
            .unwrap_or_else(|| panic!("an operation ID: {}", answer.1))
            .to_owned();
        assert_eq!(
            a.audit_count().await,
            before + i as i64 + 1,
            "one event per refusal"
        );
        let events =
            a.t.store
                .audit()
                .list(&AuditFilter {
                    action: Some("api.refused".into()),
                    ..AuditFilter::default()
                })
                .await
                .unwrap();
        let event = events
            .iter()
            .find(|e| e.after.as_ref().is_some_and(|d| d["operation_id"] == shown))
            .unwrap_or_else(|| panic!("an api.refused event under {shown}: {events:?}"));
        assert_eq!(event.actor, format!("api_read:{}", siem.id), "{event:?}");
        assert_eq!(event.actor_name.as_deref(), Some("token siem"), "{event:?}");
        assert_eq!(event.target_kind, "api", "{event:?}");
        assert_eq!(event.target_name.as_deref(), Some(uri), "{event:?}");
        let details = event.after.as_ref().unwrap();
        assert_eq!(details["permission"], "api", "{event:?}");
        assert_eq!(details["reason"], "scope", "{event:?}");
        assert_eq!(details["method"], method.as_str(), "{event:?}");
        assert_eq!(details["path"], uri, "{event:?}");
        assert_eq!(details["code"], "token_read_only", "{event:?}");
    }
    assert_eq!(
        a.audit_count().await,
        before + writes.len() as i64,
        "the refusals' events and nothing else"
    );
    assert!(
        a.t.store
            .users()
            .find_by_username("mallory")
            .await
            .unwrap()
            .is_none()
    );
    let listed = ApiTokens::new(&a.t.store).list().await.unwrap();
    assert!(
        listed
            .iter()
            .any(|t| t.name == "siem" && t.scope == TokenScope::ApiRead),
        "{listed:?}"
    );
    // The full token still writes.
    a.token = full;
    let (status, body) = a
        .call(
            Method::POST,
            "/api/v1/groups",
            Some(json!({"name": "written"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn users_crud(t: TestStore) {
    let a = api(t).await;
    let (status, alice) = a
        .call(
            Method::POST,
            "/api/v1/users",
            Some(
                json!({"username": "alice", "email": "alice@example.org", "given_name": "Alice",
                         "attributes": {"department": "R&D", "roles": ["a", "b"]},
                         "password": "correct horse battery staple"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{alice}");
    assert_eq!(alice["username"], "alice");
    assert_eq!(alice["status"], "active");
    assert_eq!(alice["has_password"], true);
    assert_eq!(alice["attributes"]["roles"], json!(["a", "b"]));
    assert!(alice.get("password").is_none() && alice.get("password_hash").is_none());
    let id = alice["id"].as_str().unwrap().to_owned();

    // Lookup by id, username or e-mail.
    for r in [id.as_str(), "alice", "ALICE@example.org"] {
        let (s, u) = a.get(&format!("/api/v1/users/{r}")).await;
        assert_eq!(
            (s, u["id"].as_str()),
            (StatusCode::OK, Some(id.as_str())),
            "{r}"
        );
    }

    // Uniqueness and validation, reported with the field.
    let dup = a
        .call(
            Method::POST,
            "/api/v1/users",
            Some(json!({"username": "Alice", "email": "x@example.org"})),
        )
        .await;
    assert_error(&dup, StatusCode::CONFLICT, "duplicate_username");
    assert_eq!(dup.1["field"], "username");
    let bad = a
        .call(
            Method::POST,
            "/api/v1/users",
            Some(json!({"username": "bob", "email": "not-an-address"})),
        )
        .await;
    assert_error(&bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(bad.1["field"], "email");

    // A refused request writes nothing: no user, no audit event.
    let events = a.audit_count().await;
    let weak = a
        .call(
            Method::POST,
            "/api/v1/users",
            Some(json!({"username": "bob", "email": "bob@example.org", "password": "x"})),
        )
        .await;
    assert_error(
        &weak,
        StatusCode::UNPROCESSABLE_ENTITY,
        "password_too_short",
    );
    assert_eq!(weak.1["field"], "password");
    let common = a
        .call(
            Method::POST,
            "/api/v1/users",
            Some(
                json!({"username": "bob", "email": "bob@example.org", "password": "qwerty123456"}),
            ),
        )
        .await;
    assert_error(
        &common,
        StatusCode::UNPROCESSABLE_ENTITY,
        "password_too_common",
    );
    assert_eq!(a.get("/api/v1/users/bob").await.0, StatusCode::NOT_FOUND);
    assert_eq!(a.audit_count().await, events);

    // PATCH: absent fields stay, null clears.
    let (s, u) = a
        .call(
            Method::PATCH,
            "/api/v1/users/alice",
            Some(json!({"display_name": "Dr Alice", "given_name": null, "remove_attributes": ["roles"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{u}");
    assert_eq!(u["display_name"], "Dr Alice");
    assert_eq!(u["given_name"], Value::Null);
    assert_eq!(u["email"], "alice@example.org");
    assert_eq!(u["attributes"], json!({"department": "R&D"}));
    let unknown_field = a
        .call(
            Method::PATCH,
            "/api/v1/users/alice",
            Some(json!({"nickname": "al"})),
        )
        .await;
    assert_error(
        &unknown_field,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    );

    // Suspend / resume.
    let (_, u) = a
        .call(Method::POST, "/api/v1/users/alice/suspend", None)
        .await;
    assert_eq!(u["status"], "suspended");
    let (_, u) = a
        .call(Method::POST, "/api/v1/users/alice/resume", None)
        .await;
    assert_eq!(u["status"], "active");

    // Password: set, checked by the store, then removed.
    let (s, _) = a
        .call(
            Method::PUT,
            "/api/v1/users/alice/password",
            Some(json!({"password": "another long passphrase"})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let uid = a.t.store.users().lookup("alice").await.unwrap().id;
    let pw = |p: &str| latchkey_idp::password::Password::new(p);
    assert!(
        a.t.store
            .users()
            .verify_password(uid, pw("another long passphrase"))
            .await
            .unwrap()
    );
    assert!(
        !a.t.store
            .users()
            .verify_password(uid, pw("correct horse battery staple"))
            .await
            .unwrap()
    );
    let (s, _) = a
        .call(
            Method::PUT,
            "/api/v1/users/alice/password",
            Some(json!({"password": null})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(a.get("/api/v1/users/alice").await.1["has_password"], false);

    // Changes are audited under the token.
    let events = a.t.store.audit().list(&Default::default()).await.unwrap();
    assert!(
        events
            .iter()
            .filter(|e| e.action.starts_with("user."))
            .all(|e| e.actor == format!("api:{}", a.token_id))
    );

    // Delete.
    assert_eq!(
        a.call(Method::DELETE, "/api/v1/users/alice", None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &a.get("/api/v1/users/alice").await,
        StatusCode::NOT_FOUND,
        "unknown_user",
    );
    assert_error(
        &a.call(Method::DELETE, "/api/v1/users/alice", None).await,
        StatusCode::NOT_FOUND,
        "unknown_user",
    );
}

async fn user_lists_filter_and_page(t: TestStore) {
    let a = api(t).await;
    for (name, status) in [
        ("ann", "active"),
        ("bea", "suspended"),
        ("cat", "active"),
        ("dan", "active"),
        ("eve", "active"),
    ] {
        let (s, b) = a
            .call(
                Method::POST,
                "/api/v1/users",
                Some(json!({"username": name, "email": format!("{name}@corp.example"), "status": status})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    let (_, p1) = a.get("/api/v1/users?limit=2").await;
    assert_eq!(names(&p1), ["ann", "bea"]);
    assert_eq!(
        p1["page"],
        json!({"total": 5, "offset": 0, "limit": 2, "next_offset": 2})
    );
    let (_, p3) = a.get("/api/v1/users?limit=2&offset=4").await;
    assert_eq!(names(&p3), ["eve"]);
    assert!(p3["page"].get("next_offset").is_none());
    assert!(p3.get("next_cursor").is_none());

    // Keyset paging: follow next_cursor to the end; cursor pages carry no count.
    let mut walked = names(&p1);
    let mut cursor = p1["next_cursor"].as_str().unwrap().to_owned();
    loop {
        let (s, p) = a
            .get(&format!("/api/v1/users?limit=2&cursor={cursor}"))
            .await;
        assert_eq!(s, StatusCode::OK, "{p}");
        assert!(p.get("page").is_none(), "{p}");
        walked.extend(names(&p));
        match p["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(walked, ["ann", "bea", "cat", "dan", "eve"]);
    let (_, after_cat) = a.get("/api/v1/users?limit=1&offset=2").await;
    let next = after_cat["next_cursor"].as_str().unwrap();
    assert_eq!(
        names(&a.get(&format!("/api/v1/users?cursor={next}")).await.1),
        ["dan", "eve"]
    );
    for bad in ["nonsense!", "dXNlcnM", "Z3JvdXBzOmFubg"] {
        let answer = a.get(&format!("/api/v1/users?cursor={bad}")).await;
        assert_eq!(answer.1["field"], "cursor", "{bad}: {}", answer.1);
        assert_error(&answer, StatusCode::BAD_REQUEST, "invalid_query");
    }
    assert_error(
        &a.get(&format!("/api/v1/users?cursor={next}&offset=1"))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );
    // Search is a prefix of the username, or of the e-mail address when it has an `@`.
    assert_eq!(names(&a.get("/api/v1/users?q=DAN%40corp").await.1), ["dan"]);
    assert!(names(&a.get("/api/v1/users?q=nn").await.1).is_empty());
    assert_eq!(
        names(&a.get("/api/v1/users?status=suspended").await.1),
        ["bea"]
    );
    assert_eq!(names(&a.get("/api/v1/users?q=CA").await.1), ["cat"]);

    a.call(
        Method::POST,
        "/api/v1/groups",
        Some(json!({"name": "staff"})),
    )
    .await;
    a.call(Method::PUT, "/api/v1/groups/staff/members/dan", None)
        .await;
    assert_eq!(names(&a.get("/api/v1/users?group=staff").await.1), ["dan"]);
    // A group's members page the same way, by cursor, never in one response.
    for name in ["eve", "ann"] {
        a.call(
            Method::PUT,
            &format!("/api/v1/groups/staff/members/{name}"),
            None,
        )
        .await;
    }
    let (s, m1) = a.get("/api/v1/groups/staff/members?limit=2").await;
    assert_eq!(s, StatusCode::OK, "{m1}");
    assert_eq!(names(&m1), ["ann", "dan"]);
    assert_eq!(m1["page"]["total"], 3);
    let next = m1["next_cursor"].as_str().unwrap();
    let (_, m2) = a
        .get(&format!(
            "/api/v1/groups/staff/members?limit=2&cursor={next}"
        ))
        .await;
    assert_eq!(names(&m2), ["eve"]);
    assert!(m2.get("next_cursor").is_none(), "{m2}");
    assert_error(
        &a.get("/api/v1/groups/staff/members?cursor=nonsense!").await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    );
    assert_error(
        &a.get("/api/v1/groups/staff/members?limit=501").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );

    assert_error(
        &a.get("/api/v1/users?limit=0").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );
    assert_error(
        &a.get("/api/v1/users?limit=abc").await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    );
    assert_error(
        &a.get("/api/v1/users?status=gone").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );
    assert_error(
        &a.get("/api/v1/users?color=red").await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    );
    assert_error(
        &a.get("/api/v1/users?group=nope").await,
        StatusCode::NOT_FOUND,
        "unknown_group",
    );
}

async fn groups_and_members(t: TestStore) {
    let a = api(t).await;
    a.call(
        Method::POST,
        "/api/v1/users",
        Some(json!({"username": "alice", "email": "alice@example.org"})),
    )
    .await;
    let (s, g) = a
        .call(
            Method::POST,
            "/api/v1/groups",
            Some(json!({"name": "wiki-editors", "description": "Edit the wiki"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{g}");
    let gid = g["id"].as_str().unwrap().to_owned();
    assert_error(
        &a.call(
            Method::POST,
            "/api/v1/groups",
            Some(json!({"name": "WIKI-editors"})),
        )
        .await,
        StatusCode::CONFLICT,
        "duplicate_group",
    );
    assert_eq!(
        a.get(&format!("/api/v1/groups/{gid}")).await.1["name"],
        "wiki-editors"
    );

    assert_eq!(
        a.call(
            Method::PUT,
            "/api/v1/groups/wiki-editors/members/alice",
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &a.call(
            Method::PUT,
            "/api/v1/groups/wiki-editors/members/alice",
            None,
        )
        .await,
        StatusCode::CONFLICT,
        "already_member",
    );
    assert_error(
        &a.call(
            Method::PUT,
            "/api/v1/groups/wiki-editors/members/nobody",
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "unknown_user",
    );
    let (_, members) = a.get("/api/v1/groups/wiki-editors/members").await;
    assert_eq!(members["items"].as_array().unwrap().len(), 1);
    assert_eq!(members["items"][0]["username"], "alice");
    let (_, of_user) = a.get("/api/v1/users/alice/groups").await;
    assert_eq!(of_user[0]["name"], "wiki-editors");
    let (_, listed) = a.get("/api/v1/groups?q=WIKI").await;
    assert_eq!(listed["page"]["total"], 1);

    // A rename keeps the group (ID, members) and records the change; a taken name is a
    // conflict, an unknown field or group is refused, and nothing changes then.
    a.call(
        Method::POST,
        "/api/v1/groups",
        Some(json!({"name": "other"})),
    )
    .await;
    let (s, renamed) = a
        .call(
            Method::PATCH,
            &format!("/api/v1/groups/{gid}"),
            Some(json!({"name": "wiki-writers"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{renamed}");
    assert_eq!(
        (renamed["id"].as_str(), &renamed["name"]),
        (Some(gid.as_str()), &json!("wiki-writers"))
    );
    let (_, of_user) = a.get("/api/v1/users/alice/groups").await;
    assert_eq!(of_user[0]["name"], "wiki-writers");
    let (_, audit) = a.get("/api/v1/audit?action=group.update").await;
    assert_eq!(audit["items"][0]["target_name"], "wiki-writers", "{audit}");
    assert_error(
        &a.call(
            Method::PATCH,
            "/api/v1/groups/wiki-writers",
            Some(json!({"name": "OTHER"})),
        )
        .await,
        StatusCode::CONFLICT,
        "duplicate_group",
    );
    assert_error(
        &a.call(
            Method::PATCH,
            "/api/v1/groups/wiki-writers",
            Some(json!({"description": "x"})),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    );
    assert_error(
        &a.call(
            Method::PATCH,
            "/api/v1/groups/nope",
            Some(json!({"name": "x"})),
        )
        .await,
        StatusCode::NOT_FOUND,
        "unknown_group",
    );
    // Back to the first name: it is no longer a former one.
    let (s, _) = a
        .call(
            Method::PATCH,
            "/api/v1/groups/wiki-writers",
            Some(json!({"name": "wiki-editors"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    assert_eq!(
        a.call(
            Method::DELETE,
            "/api/v1/groups/wiki-editors/members/alice",
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &a.call(
            Method::DELETE,
            "/api/v1/groups/wiki-editors/members/alice",
            None,
        )
        .await,
        StatusCode::CONFLICT,
        "not_member",
    );
    assert_eq!(
        a.call(Method::DELETE, "/api/v1/groups/wiki-editors", None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &a.get("/api/v1/groups/wiki-editors").await,
        StatusCode::NOT_FOUND,
        "unknown_group",
    );
}

async fn applications(t: TestStore) {
    let a = api(t).await;
    let wiki = json!({
        "entity_id": "https://wiki.example.org/saml/metadata",
        "name": "Wiki",
        "acs": [{"url": "https://wiki.example.org/saml/acs"}],
        "name_id_format": "email",
        "name_id_source": "email",
        "attributes": ["mail@basic=email", "groups@basic=groups|strip-prefix:wiki-"],
    });
    let (s, app) = a
        .call(Method::POST, "/api/v1/apps", Some(wiki.clone()))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{app}");
    // The launch slug, derived from the name (`/saml/init/wiki`).
    assert_eq!(app["slug"], "wiki");
    assert_eq!(
        app["acs"][0]["binding"],
        "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
    );
    assert_eq!(app["acs"][0]["is_default"], true);
    assert_eq!(
        app["name_id_format"],
        "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
    );
    assert_eq!(
        app["attributes"],
        json!(["mail@basic=email", "groups@basic=groups|strip-prefix:wiki-"])
    );
    assert_eq!(app["sign_assertion"], true);

    assert_error(
        &a.call(Method::POST, "/api/v1/apps", Some(wiki.clone()))
            .await,
        StatusCode::CONFLICT,
        "duplicate_entity_id",
    );

    // Every kind of bad field is refused and nothing is stored.
    let events = a.audit_count().await;
    for (patch, field) in [
        (json!({"attributes": ["mail"]}), "attribute mapping"),
        (json!({"acs": [{"url": "ftp://x/acs"}]}), "acs_url"),
        (json!({"name_id_format": "fancy"}), "name_id_format"),
        (
            json!({"acs": [{"url": "https://x/acs", "binding": "pigeon"}]}),
            "binding",
        ),
    ] {
        let mut body = wiki.clone();
        body["entity_id"] = json!("https://other.example.org");
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let resp = a.call(Method::POST, "/api/v1/apps", Some(body)).await;
        assert_error(&resp, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
        assert_eq!(resp.1["field"], field, "{}", resp.1);
    }
    assert_eq!(a.audit_count().await, events);
    assert_eq!(a.get("/api/v1/apps").await.1["page"]["total"], 1);

    // Lookup by percent-encoded entity ID.
    let enc = "https%3A%2F%2Fwiki.example.org%2Fsaml%2Fmetadata";
    assert_eq!(
        a.get(&format!("/api/v1/apps/{enc}")).await.1["name"],
        "Wiki"
    );

    // From a catalogue template.
    let (s, gl) = a
        .call(
            Method::POST,
            "/api/v1/apps/from-template",
            Some(json!({"template": "gitlab", "placeholders": {"gitlab_host": "git.example.org"}})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{gl}");
    assert_eq!(gl["entity_id"], "https://git.example.org");
    assert_eq!(
        gl["acs"][0]["url"],
        "https://git.example.org/users/auth/saml/callback"
    );
    assert!(
        gl["attributes"]
            .as_array()
            .unwrap()
            .contains(&json!("first_name@basic=given_name"))
    );
    let missing = a
        .call(
            Method::POST,
            "/api/v1/apps/from-template",
            Some(json!({"template": "grafana"})),
        )
        .await;
    assert_error(&missing, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(missing.1["field"], "placeholders.grafana_host");
    assert_error(
        &a.call(
            Method::POST,
            "/api/v1/apps/from-template",
            Some(json!({"template": "nope"})),
        )
        .await,
        StatusCode::NOT_FOUND,
        "unknown_template",
    );
    let (_, templates) = a.get("/api/v1/templates").await;
    assert!(templates.as_array().unwrap().len() >= 13);
    let (_, tpl) = a.get("/api/v1/templates/gitlab").await;
    assert_eq!(tpl["placeholders"], json!(["gitlab_host"]));

    // Access groups.
    a.call(
        Method::POST,
        "/api/v1/groups",
        Some(json!({"name": "devs"})),
    )
    .await;
    assert_eq!(
        a.call(
            Method::PUT,
            "/api/v1/apps/https%3A%2F%2Fgit.example.org/groups/devs",
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &a.call(
            Method::PUT,
            "/api/v1/apps/https%3A%2F%2Fgit.example.org/groups/devs",
            None,
        )
        .await,
        StatusCode::CONFLICT,
        "already_assigned",
    );
    let gid = gl["id"].as_str().unwrap();
    assert_eq!(
        a.get(&format!("/api/v1/apps/{gid}/groups")).await.1[0]["name"],
        "devs"
    );
    assert_eq!(
        a.call(
            Method::DELETE,
            &format!("/api/v1/apps/{gid}/groups/devs"),
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &a.call(
            Method::DELETE,
            &format!("/api/v1/apps/{gid}/groups/devs"),
            None,
        )
        .await,
        StatusCode::CONFLICT,
        "not_assigned",
    );

    // Replace keeps the ID.
    let mut changed = wiki.clone();
    changed["name"] = json!("Team wiki");
    changed["sign_response"] = json!(false);
    let (s, replaced) = a
        .call(Method::PUT, &format!("/api/v1/apps/{enc}"), Some(changed))
        .await;
    assert_eq!(s, StatusCode::OK, "{replaced}");
    assert_eq!(
        (replaced["id"].clone(), replaced["name"].clone()),
        (app["id"].clone(), json!("Team wiki"))
    );
    assert_eq!(replaced["sign_response"], false);

    let (_, page) = a.get("/api/v1/apps?q=team").await;
    assert_eq!(page["page"]["total"], 1);
    assert_eq!(
        a.call(Method::DELETE, &format!("/api/v1/apps/{enc}"), None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &a.get(&format!("/api/v1/apps/{enc}")).await,
        StatusCode::NOT_FOUND,
        "unknown_app",
    );
}

async fn audit_pages_by_cursor(t: TestStore) {
    let a = api(t).await;
    for i in 0..5 {
        a.call(
            Method::POST,
            "/api/v1/groups",
            Some(json!({"name": format!("g{i}")})),
        )
        .await;
    }
    let actor = format!("api:{}", a.token_id);
    let (s, p1) = a.get(&format!("/api/v1/audit?limit=2&actor={actor}")).await;
    assert_eq!(s, StatusCode::OK, "{p1}");
    let names = |p: &Value| -> Vec<String> {
        p["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["target_name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&p1), ["g4", "g3"]);
    let mut seen = names(&p1);
    let mut cursor = p1["next_cursor"].as_i64();
    while let Some(c) = cursor {
        let (_, p) = a
            .get(&format!("/api/v1/audit?limit=2&actor={actor}&cursor={c}"))
            .await;
        seen.extend(names(&p));
        cursor = p["next_cursor"].as_i64();
    }
    assert_eq!(seen, ["g4", "g3", "g2", "g1", "g0"]);
    let (_, creates) = a.get("/api/v1/audit?action=token.create").await;
    assert_eq!(creates["items"].as_array().unwrap().len(), 1);
    assert!(creates["next_cursor"].is_null());
    assert_error(
        &a.get("/api/v1/audit?since=yesterday").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );
    let (_, future) = a.get("/api/v1/audit?since=2999-01-01T00:00:00Z").await;
    assert!(future["items"].as_array().unwrap().is_empty());
}

async fn malformed_requests_get_json_errors(t: TestStore) {
    let a = api(t).await;
    let post = |body: &'static str, content_type: &'static str| {
        Request::post("/api/v1/groups")
            .header(header::AUTHORIZATION, format!("Bearer {}", a.token))
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .unwrap()
    };
    let (s, _, b) = a.raw(post("{not json", "application/json")).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_json"))
    );
    let (s, _, b) = a
        .raw(post("{\"description\": \"x\"}", "application/json"))
        .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_body"))
    );
    let (s, _, b) = a
        .raw(post("name=x", "application/x-www-form-urlencoded"))
        .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("unsupported_media_type")
        )
    );
    assert_error(
        &a.get("/api/v1/nothing-here").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &a.call(Method::DELETE, "/api/v1/users", None).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
}

async fn openapi_document_lists_every_route(t: TestStore) {
    let a = api(t).await;
    let (s, doc) = a.get("/api/v1/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/api/v1/users", &["get", "post"][..]),
        ("/api/v1/users/{user}", &["get", "patch", "delete"]),
        ("/api/v1/users/{user}/suspend", &["post"]),
        ("/api/v1/users/{user}/resume", &["post"]),
        ("/api/v1/users/{user}/password", &["put"]),
        ("/api/v1/users/{user}/groups", &["get"]),
        ("/api/v1/users/{user}/provisioning", &["get"]),
        ("/api/v1/users/{user}/invitations", &["post"]),
        ("/api/v1/groups", &["get", "post"]),
        ("/api/v1/groups/{group}", &["get", "delete"]),
        ("/api/v1/groups/{group}/members", &["get"]),
        ("/api/v1/groups/{group}/members/{user}", &["put", "delete"]),
        ("/api/v1/apps", &["get", "post"]),
        ("/api/v1/apps/from-template", &["post"]),
        ("/api/v1/apps/from-metadata", &["post"]),
        ("/api/v1/apps/{app}", &["get", "put", "delete"]),
        ("/api/v1/apps/{app}/groups", &["get"]),
        ("/api/v1/apps/{app}/groups/{group}", &["put", "delete"]),
        ("/api/v1/templates", &["get"]),
        ("/api/v1/templates/{name}", &["get"]),
        ("/api/v1/audit", &["get"]),
        ("/api/v1/users/{user}/factors", &["get", "delete"]),
        ("/api/v1/users/{user}/mfa", &["put"]),
        ("/api/v1/groups/{group}/mfa", &["put"]),
        ("/api/v1/apps/{app}/mfa", &["put"]),
        ("/api/v1/apps/{app}/scim", &["get", "put", "delete"]),
        ("/api/v1/roles", &["get"]),
        ("/api/v1/roles/{role}/users/{user}", &["put", "delete"]),
        ("/api/v1/roles/{role}/groups/{group}", &["put", "delete"]),
    ] {
        let entry = paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} missing from OpenAPI"));
        for m in methods {
            assert!(entry.get(*m).is_some(), "{m} {path} missing from OpenAPI");
        }
    }
    assert_eq!(
        paths.len(),
        29,
        "a route was added without a test here: {:?}",
        paths.keys()
    );
    // Clients generate one function per operation ID, and a reader needs each answer
    // explained: IDs are unique and no response goes without a description.
    let mut ids = std::collections::BTreeSet::new();
    for (path, methods) in paths {
        for (method, op) in methods.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or_default();
            assert!(!id.is_empty(), "{method} {path} has no operationId");
            assert!(ids.insert(id.to_owned()), "operationId {id} is used twice");
            for (status, response) in op["responses"].as_object().unwrap() {
                let text = response["description"].as_str().unwrap_or_default();
                assert!(
                    !text.is_empty(),
                    "{method} {path} {status} has no description"
                );
            }
        }
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "ErrorBody",
        "PageInfo",
        "UserDto",
        "UserPage",
        "CreateUser",
        "PatchUser",
        "SetPassword",
        "GroupDto",
        "GroupPage",
        "CreateGroup",
        "AppDto",
        "AppInput",
        "AppPage",
        "AcsDto",
        "CreateFromTemplate",
        "TemplateDto",
        "AuditPage",
        "AuditEventDto",
        "InvitationDto",
        "MailOutcome",
        "ScimStatusDto",
        "ScimConnectionInput",
    ] {
        assert!(
            schemas.contains_key(name),
            "schema {name} missing: {:?}",
            schemas.keys()
        );
    }
    assert_eq!(
        schemas["UserDto"]["properties"]["created_at"]["format"],
        "date-time"
    );
    assert_eq!(schemas["UserDto"]["properties"]["id"]["format"], "uuid");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    // Each documented path really is routed (no 404 from the fallback).
    for path in paths.keys() {
        let concrete = path
            .replace("{user}", "x")
            .replace("{group}", "x")
            .replace("{app}", "x")
            .replace("{name}", "x");
        let (_, body) = a.get(&concrete).await;
        assert_ne!(body["error"], "not_found", "{path}");
    }
}

/// 1,300 users share a given name (more than a search once gathered by words: it then
/// answered no one); 1,500 more have fourteen words beginning `pa` each, too many for `q=pa`
/// to be read by names: the page then holds the username prefix and says so, on every path.
async fn a_search_by_names_says_when_it_is_too_broad(t: TestStore) {
    use latchkey_idp::directory::NewUser;
    let a = api(t).await;
    let seeded = |prefix: &'static str, n: usize, display: String| -> Vec<NewUser> {
        (0..n)
            .map(|i| {
                let name = format!("{prefix}{i:04}");
                let mut u = NewUser::new(&name, format!("{name}@corp.example"));
                u.family_name = Some("Lamport".into());
                u.display_name = Some(display.clone());
                u
            })
            .collect()
    };
    let users = a.t.store.users();
    users
        .create_many(
            &Actor::system(),
            seeded("l", 1_300, "Leslie Lamport".into()),
        )
        .await
        .unwrap();
    let wordy: Vec<String> = (1..=14).map(|w| format!("Pa{w:02}")).collect();
    users
        .create_many(&Actor::system(), seeded("q", 1_500, wordy.join(" ")))
        .await
        .unwrap();
    users
        .create(
            &Actor::system(),
            NewUser::new("pablo", "pablo@corp.example"),
        )
        .await
        .unwrap();

    let (s, first) = a.get("/api/v1/users?q=leslie&limit=2").await;
    assert_eq!(s, StatusCode::OK, "{first}");
    assert_eq!(names(&first), ["l0000", "l0001"]);
    assert_eq!(first["page"]["total"], 1_300, "{first}");
    assert!(first.get("search_too_broad").is_none(), "{first}");
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = a
        .get(&format!("/api/v1/users?q=leslie&limit=2&cursor={cursor}"))
        .await;
    assert_eq!(names(&second), ["l0002", "l0003"]);
    let (_, deep) = a.get("/api/v1/users?q=lamport&limit=2&offset=2798").await;
    assert_eq!(names(&deep), ["q1498", "q1499"]);
    assert!(deep.get("next_cursor").is_none(), "{deep}");
    assert_eq!(deep["page"]["total"], 2_800, "{deep}");

    for path in [
        "/api/v1/users?q=pa",
        "/api/v1/users?q=PA&offset=0",
        "/api/v1/users?q=pa&offset=1",
    ] {
        let (s, broad) = a.get(path).await;
        assert_eq!(s, StatusCode::OK, "{broad}");
        assert_eq!(broad["search_too_broad"], true, "{path}: {broad}");
    }
    let (_, broad) = a.get("/api/v1/users?q=pa").await;
    assert_eq!(names(&broad), ["pablo"]);
    assert_eq!(broad["page"]["total"], 1, "{broad}");
    // Another word narrows it.
    let (_, narrowed) = a.get("/api/v1/users?q=pa%20q0042").await;
    assert_eq!(names(&narrowed), ["q0042"]);
    assert!(narrowed.get("search_too_broad").is_none(), "{narrowed}");
}

/// A token an admin made in the console is theirs: once they are no longer an admin (here
/// demoted; suspended or deleted alike), it is refused like an unknown one, so they cannot
/// use it to make themselves admin again, and nothing is written.
async fn a_demoted_admins_token_is_refused(t: TestStore) {
    use latchkey_idp::console::{Holder, Role};
    use latchkey_idp::directory::NewUser;
    let mut a = api(t).await;
    let s = a.t.store.clone();
    let mut admins = Vec::new();
    for name in ["alice", "bob"] {
        let user = s
            .users()
            .create(
                &Actor::system(),
                NewUser::new(name, format!("{name}@example.org")),
            )
            .await
            .unwrap();
        s.roles()
            .grant(&Actor::system(), Role::Admin, Holder::User(user.id))
            .await
            .unwrap();
        admins.push(user);
    }
    let alice = &admins[0];
    let (_, issued) = ApiTokens::new(&s)
        .create(&Actor::person(alice), "alice-script")
        .await
        .unwrap();
    a.token = issued.expose().to_owned();
    assert_eq!(a.get("/api/v1/users").await.0, StatusCode::OK);
    s.roles()
        .revoke(&Actor::system(), Role::Admin, Holder::User(alice.id))
        .await
        .unwrap();
    let before = a.audit_count().await;
    assert_error(
        &a.get("/api/v1/users").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let uri = format!("/api/v1/roles/admin/users/{}", alice.id);
    assert_error(
        &a.call(Method::PUT, &uri, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_eq!(a.audit_count().await, before);
    assert!(s.roles().of_user(alice).await.unwrap().is_empty());
}

crate::on_both_backends!(
    authentication,
    a_demoted_admins_token_is_refused,
    read_only_tokens,
    users_crud,
    user_lists_filter_and_page,
    a_search_by_names_says_when_it_is_too_broad,
    groups_and_members,
    applications,
    audit_pages_by_cursor,
    malformed_requests_get_json_errors,
    openapi_document_lists_every_route,
    applications_from_metadata,
    application_encryption_settings,
    security_headers_on_every_answer,
    user_invitations,
    a_role_granted_uses_up_the_invitation,
    a_refusal_whose_audit_fails_is_still_a_403,
    console_roles,
    scim_connection,
    scim_pending_removals,
);

/// `/apps/{app}/scim`: set (the token sealed, never answered, not in the audit), read the
/// delivery state, refuse a bad URL with nothing written, remove.
async fn scim_connection(t: TestStore) {
    use latchkey_idp::keys::{Kek, KekSource};
    let mut a = api(t).await;
    let kek = Kek::from_base64(&Kek::generate_base64(), KekSource::Env).unwrap();
    a.router = api::router(ApiState::new(a.t.store.clone()).with_sealing_kek(kek.into()));
    let app = latchkey_idp::apps::NewApplication::new(
        "https://scim-sp.test",
        "S",
        "https://scim-sp.test/acs",
    );
    let app =
        a.t.store
            .apps()
            .create(&Actor::system(), app)
            .await
            .unwrap();
    let uri = format!("/api/v1/apps/{}/scim", app.id);
    assert_error(
        &a.get(&uri).await,
        StatusCode::NOT_FOUND,
        "scim_not_connected",
    );
    let secret = "api-scim-token-never-shown";
    let before = a.audit_count().await;
    let bad = a
        .call(
            Method::PUT,
            &uri,
            Some(json!({"url": "http://scim-sp.test/v2", "token": secret})),
        )
        .await;
    assert_error(&bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(
        a.audit_count().await,
        before,
        "a refused change writes nothing"
    );
    let (s, set) = a
        .call(
            Method::PUT,
            &uri,
            Some(
                json!({"url": "https://scim-sp.test/v2/", "token": secret, "on_remove": "delete"}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{set}");
    assert_eq!(set["base_url"], "https://scim-sp.test/v2");
    assert_eq!(set["on_remove"], "delete");
    assert_eq!(set["queue_length"], 0);
    let (s, got) = a.get(&uri).await;
    assert_eq!((s, &got), (StatusCode::OK, &set));
    assert!(!got.to_string().contains(secret));
    let (_, audit) = a.get("/api/v1/audit?action=app.scim_connect").await;
    assert!(!audit.to_string().contains(secret), "{audit}");
    assert!(
        audit.to_string().contains(&format!("api:{}", a.token_id)),
        "{audit}"
    );
    let (s, _) = a.call(Method::DELETE, &uri, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_error(
        &a.get(&uri).await,
        StatusCode::NOT_FOUND,
        "scim_not_connected",
    );
}

/// `/users/{user}/provisioning` lists what waits for a user per application (a removal once
/// suspended); `DELETE /apps/{app}/scim` is a 409 `scim_removals_pending`, nothing written,
/// until `?force=true`, whose event names the user.
async fn scim_pending_removals(t: TestStore) {
    use latchkey_idp::keys::{Kek, KekSource};
    let mut a = api(t).await;
    let kek = Kek::from_base64(&Kek::generate_base64(), KekSource::Env).unwrap();
    a.router = api::router(ApiState::new(a.t.store.clone()).with_sealing_kek(kek.into()));
    let s = a.t.store.clone();
    let sys = Actor::system();
    let app = latchkey_idp::apps::NewApplication::new(
        "https://scim-sp.test",
        "S",
        "https://scim-sp.test/acs",
    );
    let app = s.apps().create(&sys, app).await.unwrap();
    let staff = s
        .groups()
        .create(&sys, latchkey_idp::directory::NewGroup::new("staff"))
        .await
        .unwrap();
    let alice = s
        .users()
        .create(
            &sys,
            latchkey_idp::directory::NewUser::new("alice", "alice@example.org"),
        )
        .await
        .unwrap();
    s.groups()
        .add_member(&sys, staff.id, alice.id)
        .await
        .unwrap();
    s.apps().assign(&sys, app.id, staff.id).await.unwrap();
    let (st, none) = a.get("/api/v1/users/alice/provisioning").await;
    assert_eq!((st, none), (StatusCode::OK, json!([])));
    let uri = format!("/api/v1/apps/{}/scim", app.id);
    let (st, _) = a
        .call(
            Method::PUT,
            &uri,
            Some(json!({"url": "https://scim-sp.test/v2", "token": "t"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, pending) = a.get("/api/v1/users/alice/provisioning").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(pending[0]["kind"], "update", "{pending}");
    let (st, _) = a
        .call(Method::POST, "/api/v1/users/alice/suspend", None)
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, pending) = a
        .get(&format!("/api/v1/users/{}/provisioning", alice.id))
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(pending.as_array().unwrap().len(), 1, "{pending}");
    let p = &pending[0];
    assert_eq!(p["app_id"], app.id.to_string());
    assert_eq!(p["app"], "https://scim-sp.test");
    assert_eq!(p["kind"], "removal");
    assert_eq!(p["attempts"], 0);
    assert_eq!(p["last_error"], Value::Null);
    assert!(p["since"].as_str().unwrap().ends_with('Z'), "{p}");
    assert_error(
        &a.get("/api/v1/users/nobody/provisioning").await,
        StatusCode::NOT_FOUND,
        "unknown_user",
    );

    let before = a.audit_count().await;
    let refused = a.call(Method::DELETE, &uri, None).await;
    assert_error(&refused, StatusCode::CONFLICT, "scim_removals_pending");
    assert!(refused.1["message"].as_str().unwrap().contains("1 user(s)"));
    assert_error(
        &a.call(Method::DELETE, &format!("{uri}?force=false"), None)
            .await,
        StatusCode::CONFLICT,
        "scim_removals_pending",
    );
    assert_error(
        &a.call(Method::DELETE, &format!("{uri}?force=maybe"), None)
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    );
    assert_eq!(a.audit_count().await, before, "a refusal writes nothing");
    let (st, still) = a.get(&uri).await;
    assert_eq!(
        (st, &still["queue_length"]),
        (StatusCode::OK, &json!(2)),
        "two rows: nothing dropped"
    );

    let (st, _) = a
        .call(Method::DELETE, &format!("{uri}?force=true"), None)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (_, audit) = a.get("/api/v1/audit?action=app.scim_disconnect").await;
    let event = &audit["items"][0];
    assert_eq!(event["after"]["dropped_removals"], 1, "{audit}");
    assert_eq!(event["after"]["users"][0]["name"], "alice", "{audit}");
    let (_, pending) = a.get("/api/v1/users/alice/provisioning").await;
    assert_eq!(pending, json!([]));
}

/// `POST /users/{user}/invitations`: a link that works once (only its hash is stored),
/// answered (no `[smtp]` here) and audited with the token's name; bad input refused.
async fn user_invitations(t: TestStore) {
    let a = api(t).await;
    let (s, _) = a
        .call(
            Method::POST,
            "/api/v1/users",
            Some(json!({"username": "alice", "email": "alice@example.org"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, inv) = a
        .call(
            Method::POST,
            "/api/v1/users/alice/invitations?expires_hours=2",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{inv}");
    assert_eq!(inv["mail"], "not_configured");
    assert_eq!(inv["username"], "alice");
    let url = inv["url"].as_str().unwrap();
    let token = url
        .strip_prefix("/invite/")
        .expect("a link under the base URL");
    let expires = time::OffsetDateTime::parse(
        inv["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let life = expires - a.t.store.now();
    assert!(life > time::Duration::minutes(119) && life <= time::Duration::hours(2));
    let user =
        a.t.store
            .enrollment()
            .redeem(
                latchkey_idp::enrollment::LinkKind::Invitation,
                token,
                latchkey_idp::password::Password::new("violet staple hinge"),
            )
            .await
            .unwrap();
    assert!(user.has_password);
    let (_, log) = a.get("/api/v1/audit?action=user.invited").await;
    let event = &log["items"][0];
    assert_eq!(event["actor"], format!("api:{}", a.token_id), "{log}");
    assert!(!log.to_string().contains(token));

    for bad in ["0", "721"] {
        let r = a
            .call(
                Method::POST,
                &format!("/api/v1/users/alice/invitations?expires_hours={bad}"),
                None,
            )
            .await;
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    }
    let r = a
        .call(Method::POST, "/api/v1/users/nobody/invitations", None)
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "unknown_user");
}

/// Roles over the API: granted to a user and to a group, listed, refused twice (409) or
/// misspelt (422 naming `role`) with nothing recorded, revoked; each change audited under
/// the token.
async fn console_roles(t: TestStore) {
    let a = api(t).await;
    a.call(
        Method::POST,
        "/api/v1/users",
        Some(json!({"username": "alice", "email": "alice@example.org"})),
    )
    .await;
    a.call(
        Method::POST,
        "/api/v1/groups",
        Some(json!({"name": "support"})),
    )
    .await;
    let put = |uri: &'static str| a.call(Method::PUT, uri, None);
    assert_eq!(
        put("/api/v1/roles/admin/users/alice").await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        put("/api/v1/roles/helpdesk/groups/support").await.0,
        StatusCode::NO_CONTENT
    );
    let count = a.audit_count().await;
    assert_error(
        &put("/api/v1/roles/admin/users/alice").await,
        StatusCode::CONFLICT,
        "already_granted",
    );
    let bad = put("/api/v1/roles/root/users/alice").await;
    assert_error(&bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(bad.1["field"], "role");
    assert_error(
        &put("/api/v1/roles/admin/users/nobody").await,
        StatusCode::NOT_FOUND,
        "unknown_user",
    );
    assert_eq!(a.audit_count().await, count);
    let (s, list) = a.get("/api/v1/roles").await;
    assert_eq!(s, StatusCode::OK);
    let rows: Vec<(&str, &str, &str)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["role"].as_str().unwrap(),
                g["holder_kind"].as_str().unwrap(),
                g["holder_name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [("admin", "user", "alice"), ("helpdesk", "group", "support")]
    );
    // alice is the only admin: taking it away, by any route, leaves the console to no one.
    let count = a.audit_count().await;
    for (method, uri) in [
        (Method::DELETE, "/api/v1/roles/admin/users/alice"),
        (Method::POST, "/api/v1/users/alice/suspend"),
        (Method::DELETE, "/api/v1/users/alice"),
    ] {
        assert_error(
            &a.call(method, uri, None).await,
            StatusCode::CONFLICT,
            "last_admin",
        );
    }
    assert_error(
        &a.call(
            Method::PATCH,
            "/api/v1/users/alice",
            Some(json!({"status": "suspended"})),
        )
        .await,
        StatusCode::CONFLICT,
        "last_admin",
    );
    assert_eq!(a.audit_count().await, count);
    // With another admin, it goes.
    a.call(
        Method::POST,
        "/api/v1/users",
        Some(json!({"username": "bob", "email": "bob@example.org"})),
    )
    .await;
    assert_eq!(
        put("/api/v1/roles/admin/users/bob").await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        a.call(Method::DELETE, "/api/v1/roles/admin/users/alice", None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &a.call(Method::DELETE, "/api/v1/roles/admin/users/alice", None)
            .await,
        StatusCode::CONFLICT,
        "not_granted",
    );
    let events =
        a.t.store
            .audit()
            .list(&latchkey_idp::audit::AuditFilter {
                action: Some("role.grant".into()),
                ..Default::default()
            })
            .await
            .unwrap();
    assert_eq!(events.len(), 3);
    assert!(
        events
            .iter()
            .all(|e| e.actor == format!("api:{}", a.token_id))
    );
}

/// The API's JSON carries directory data: like the pages, it must not be sniffed into
/// something else nor kept by a cache, whether it is an answer, a refusal or a 404.
async fn security_headers_on_every_answer(t: TestStore) {
    let a = api(t).await;
    let authed = |uri: &str| {
        Request::get(uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", a.token))
            .body(Body::empty())
            .unwrap()
    };
    let requests = [
        ("list", authed("/api/v1/users")),
        (
            "openapi",
            Request::get("/api/v1/openapi.json")
                .body(Body::empty())
                .unwrap(),
        ),
        (
            "no token",
            Request::get("/api/v1/users").body(Body::empty()).unwrap(),
        ),
        ("unknown route", authed("/api/v1/nowhere")),
        ("unknown user", authed("/api/v1/users/nobody")),
    ];
    for (what, request) in requests {
        let (status, headers, _) = a.raw(request).await;
        assert_eq!(
            headers[header::X_CONTENT_TYPE_OPTIONS],
            "nosniff",
            "{what} ({status})"
        );
        assert_eq!(
            headers[header::CACHE_CONTROL],
            "no-store",
            "{what} ({status})"
        );
        assert_eq!(
            headers[header::X_FRAME_OPTIONS],
            "DENY",
            "{what} ({status})"
        );
        assert!(
            headers[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .starts_with("default-src 'none'"),
            "{what}"
        );
    }
}

/// `POST /api/v1/apps/from-metadata`: samael's SP sample (expired, so only when allowed),
/// with a template, and the typed refusals.
async fn applications_from_metadata(t: TestStore) {
    const SP: &str = include_str!("../../../saml/tests/data/metadata/sp_metadata.xml");
    let a = api(t).await;
    let events = a.audit_count().await;
    let expired = a
        .call(
            Method::POST,
            "/api/v1/apps/from-metadata",
            Some(json!({ "metadata": SP })),
        )
        .await;
    assert_error(
        &expired,
        StatusCode::UNPROCESSABLE_ENTITY,
        "metadata_expired",
    );
    assert_eq!(expired.1["field"], "valid_until");
    let malformed = a
        .call(
            Method::POST,
            "/api/v1/apps/from-metadata",
            Some(json!({ "metadata": "<md:EntityDescriptor" })),
        )
        .await;
    assert_error(
        &malformed,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_metadata",
    );
    assert_eq!(a.audit_count().await, events);

    let body = json!({ "metadata": SP, "allow_expired": true, "template": "latchkey-wiki" });
    let (s, created) = a
        .call(
            Method::POST,
            "/api/v1/apps/from-metadata",
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let app = &created["app"];
    assert_eq!(app["entity_id"], "https://sp.example.com");
    assert_eq!(app["acs"][0]["url"], "https://sp.example.com/acs");
    assert_eq!(app["acs"][0]["index"], 1);
    assert_eq!(app["name"], "Latchkey demo wiki");
    assert_eq!(app["signing_certs"].as_array().unwrap().len(), 1);
    let attrs: Vec<&str> = app["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        attrs
            .iter()
            .any(|a| a.starts_with("email") && a.ends_with("=email")),
        "{attrs:?}"
    );
    assert_eq!(attrs.len(), 5, "{attrs:?}");
    assert!(created["warnings"][0].as_str().unwrap().contains("expired"));

    let again = a
        .call(Method::POST, "/api/v1/apps/from-metadata", Some(body))
        .await;
    assert_error(&again, StatusCode::CONFLICT, "duplicate_entity_id");
}

/// Assertion encryption over the API: a certificate whose key cannot encrypt is a typed
/// 422 naming `encryption_cert`; advertised algorithms are stored as URIs (short names of
/// ours accepted) and replaced like every other field.
async fn application_encryption_settings(t: TestStore) {
    let a = api(t).await;
    let cert = |alg: &'static rcgen::SignatureAlgorithm| {
        let pair = rcgen::KeyPair::generate_for(alg).unwrap();
        rcgen::CertificateParams::new(vec!["crm.example.org".to_string()])
            .unwrap()
            .self_signed(&pair)
            .unwrap()
            .pem()
    };
    let mut crm = json!({
        "entity_id": "https://crm.example.org/saml",
        "name": "CRM",
        "acs": [{"url": "https://crm.example.org/saml/acs"}],
        "encryption_cert": cert(&rcgen::PKCS_ECDSA_P256_SHA256),
        "encrypt_assertion": true,
    });
    let events = a.audit_count().await;
    let refused = a
        .call(Method::POST, "/api/v1/apps", Some(crm.clone()))
        .await;
    assert_error(
        &refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "encryption_key_unsupported",
    );
    assert_eq!(refused.1["field"], "encryption_cert");
    assert!(
        refused.1["message"]
            .as_str()
            .unwrap()
            .contains("ECDSA P-256"),
        "{}",
        refused.1
    );
    assert_eq!(a.audit_count().await, events);

    crm["encryption_cert"] = json!(cert(&rcgen::PKCS_RSA_SHA256));
    crm["encryption_methods"] = json!(["aes128-cbc", "http://www.w3.org/2001/04/xmlenc#rsa-1_5"]);
    let (s, app) = a
        .call(Method::POST, "/api/v1/apps", Some(crm.clone()))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{app}");
    let listed = json!([
        "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
        "http://www.w3.org/2001/04/xmlenc#rsa-1_5"
    ]);
    assert_eq!(app["encryption_methods"], listed);
    let id = app["id"].as_str().unwrap();
    assert_eq!(
        a.get(&format!("/api/v1/apps/{id}")).await.1["encryption_methods"],
        listed
    );

    let mut bad = crm.clone();
    bad["encryption_methods"] = json!(["not an algorithm"]);
    let resp = a
        .call(Method::PUT, &format!("/api/v1/apps/{id}"), Some(bad))
        .await;
    assert_error(&resp, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(resp.1["field"], "encryption_methods");

    // A replacement that leaves the field out says nothing was advertised.
    let mut without = crm.clone();
    without
        .as_object_mut()
        .unwrap()
        .remove("encryption_methods");
    let (s, replaced) = a
        .call(Method::PUT, &format!("/api/v1/apps/{id}"), Some(without))
        .await;
    assert_eq!(s, StatusCode::OK, "{replaced}");
    assert_eq!(replaced["encryption_methods"], json!([]));
}

crate::on_both_backends!(application_tile_login_url);

/// The tile's login URL over the API: set on create, shown, replaced, left out (cleared)
/// like every other field; refused as a typed 422 naming `login_url`, with nothing
/// recorded; filled from a template's pattern; listed with the template.
async fn application_tile_login_url(t: TestStore) {
    let a = api(t).await;
    let mut crm = json!({
        "entity_id": "https://crm.example.org/saml",
        "name": "CRM",
        "acs": [{"url": "https://crm.example.org/saml/acs"}],
        "tile": {"description": "Customers", "login_url": "https://crm.example.org/sso/start"},
    });
    let (s, app) = a
        .call(Method::POST, "/api/v1/apps", Some(crm.clone()))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{app}");
    assert_eq!(
        app["tile"]["login_url"],
        "https://crm.example.org/sso/start"
    );
    assert_eq!(app["tile"]["description"], "Customers");
    let id = app["id"].as_str().unwrap().to_owned();
    assert_eq!(
        a.get(&format!("/api/v1/apps/{id}")).await.1["tile"]["login_url"],
        "https://crm.example.org/sso/start"
    );

    let events = a.audit_count().await;
    for bad in [
        "javascript:alert(1)",
        "data:text/html,x",
        "/sso/start",
        "http://crm.example.org/sso/start",
        "https://me:pw@crm.example.org/sso/start",
    ] {
        let mut body = crm.clone();
        body["tile"]["login_url"] = json!(bad);
        let resp = a
            .call(Method::PUT, &format!("/api/v1/apps/{id}"), Some(body))
            .await;
        assert_error(&resp, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
        assert_eq!(resp.1["field"], "login_url", "{bad}");
    }
    let mut body = crm.clone();
    body["tile"]["login_url"] = json!("javascript:alert(1)");
    body["entity_id"] = json!("https://other.example.org/saml");
    let resp = a.call(Method::POST, "/api/v1/apps", Some(body)).await;
    assert_error(&resp, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(resp.1["field"], "login_url");
    assert_eq!(a.audit_count().await, events);

    crm["tile"]["login_url"] = json!("http://127.0.0.1:9000/login");
    let (s, replaced) = a
        .call(
            Method::PUT,
            &format!("/api/v1/apps/{id}"),
            Some(crm.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{replaced}");
    assert_eq!(replaced["tile"]["login_url"], "http://127.0.0.1:9000/login");

    // A replacement whose tile leaves it out has none.
    crm["tile"].as_object_mut().unwrap().remove("login_url");
    let (s, replaced) = a
        .call(Method::PUT, &format!("/api/v1/apps/{id}"), Some(crm))
        .await;
    assert_eq!(s, StatusCode::OK, "{replaced}");
    assert_eq!(replaced["tile"]["login_url"], Value::Null);
    assert_eq!(a.audit_count().await, events + 2);

    // From a template: its pattern, filled with the same placeholder as the ACS URL.
    let (_, tpl) = a.get("/api/v1/templates/gitlab").await;
    assert_eq!(tpl["login_url"], "https://{gitlab_host}/users/sign_in");
    let (s, gitlab) = a
        .call(
            Method::POST,
            "/api/v1/apps/from-template",
            Some(json!({"template": "gitlab", "placeholders": {"gitlab_host": "git.example.org"}})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{gitlab}");
    assert_eq!(
        gitlab["tile"]["login_url"],
        "https://git.example.org/users/sign_in"
    );
}

crate::on_both_backends!(application_name_id_formats);

/// The allowed NameID formats travel as URNs, take short names, must include the app's
/// own format, and an empty list (the default) means any.
async fn application_name_id_formats(t: TestStore) {
    let a = api(t).await;
    let mut app = json!({
        "entity_id": "https://crm.example.org/saml",
        "name": "CRM",
        "acs": [{"url": "https://crm.example.org/saml/acs"}],
    });
    let (s, made) = a
        .call(Method::POST, "/api/v1/apps", Some(app.clone()))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{made}");
    assert_eq!(made["name_id_formats"], json!([]));
    let id = made["id"].as_str().unwrap().to_owned();

    app["name_id_formats"] = json!(["transient", "persistent", "transient"]);
    let (s, replaced) = a
        .call(
            Method::PUT,
            &format!("/api/v1/apps/{id}"),
            Some(app.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{replaced}");
    let allowed = json!([
        "urn:oasis:names:tc:SAML:2.0:nameid-format:transient",
        "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
    ]);
    assert_eq!(replaced["name_id_formats"], allowed);
    assert_eq!(
        a.get(&format!("/api/v1/apps/{id}")).await.1["name_id_formats"],
        allowed
    );

    let events = a.audit_count().await;
    // Without the app's own format (persistent), or with one we do not know: refused.
    for bad in [json!(["transient"]), json!(["persistent", "kerberos"])] {
        let mut body = app.clone();
        body["name_id_formats"] = bad.clone();
        let resp = a
            .call(Method::PUT, &format!("/api/v1/apps/{id}"), Some(body))
            .await;
        assert_error(&resp, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
        assert_eq!(resp.1["field"], "name_id_formats", "{bad}");
    }
    assert_eq!(a.audit_count().await, events);
    assert_eq!(
        a.get(&format!("/api/v1/apps/{id}")).await.1["name_id_formats"],
        allowed
    );
}

crate::on_both_backends!(mfa_admin_actions);

/// The admin's MFA actions: list a user's factors (never a secret), require a factor of a
/// user, of a group, of an application (with its class), reset; each audited under the token.
async fn mfa_admin_actions(t: TestStore) {
    let api = api(t).await;
    let (status, _) = api
        .call(
            Method::POST,
            "/api/v1/users",
            Some(json!({"username": "mia", "email": "mia@example.org"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let mia = api.t.store.users().lookup("mia").await.unwrap();
    latchkey_idp::mfa::recovery::RecoveryCodes::new(&api.t.store)
        .regenerate(
            &Actor::cli("tester"),
            &mia,
            latchkey_idp::session::Keep::Nothing,
        )
        .await
        .unwrap();
    let (status, factors) = api.get("/api/v1/users/mia/factors").await;
    assert_eq!(status, StatusCode::OK, "{factors}");
    assert_eq!(factors[0]["kind"], "recovery_codes");
    assert_eq!(factors[0]["remaining"], 10);
    assert!(factors[0].get("code_hash").is_none());

    let before = api.audit_count().await;
    let (status, body) = api
        .call(
            Method::PUT,
            "/api/v1/users/mia/mfa",
            Some(json!({"require_mfa": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = api
        .call(
            Method::POST,
            "/api/v1/groups",
            Some(json!({"name": "payroll-users"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = api
        .call(
            Method::PUT,
            "/api/v1/groups/payroll-users/mfa",
            Some(json!({"require_mfa": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = api
        .call(
            Method::POST,
            "/api/v1/apps",
            Some(
                json!({"entity_id": "https://payroll.example.org", "name": "Payroll",
                        "acs": [{"url": "https://payroll.example.org/acs"}]}),
            ),
        )
        .await;
    assert!(status.is_success(), "{status}");
    let (status, body) = api
        .call(
            Method::PUT,
            "/api/v1/apps/https%3A%2F%2Fpayroll.example.org/mfa",
            Some(json!({"require_mfa": true, "mfa_class": "mobile_two_factor"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["mfa_class"], "mobile_two_factor");
    let (status, body) = api
        .call(
            Method::PUT,
            "/api/v1/apps/https%3A%2F%2Fpayroll.example.org/mfa",
            Some(json!({"require_mfa": true, "mfa_class": "sms"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["field"], "mfa_class");
    // mia is signed in somewhere (perhaps with the lost factor).
    let sessions = latchkey_idp::session::Sessions::new(&api.t.store);
    let now = api.t.store.now();
    sessions
        .create(&mia, now, time::Duration::hours(8))
        .await
        .unwrap();
    let (status, _) = api
        .call(Method::DELETE, "/api/v1/users/mia/factors", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, factors) = api.get("/api/v1/users/mia/factors").await;
    assert_eq!(factors, json!([]));
    assert!(sessions.of_user(mia.id, now).await.unwrap().is_empty());
    // Six changes, and the reset's end of mia's sessions (an admin's factor reset ends
    // them all, in its transaction).
    assert_eq!(api.audit_count().await, before + 7, "each change audited");
    let actor = format!("api:{}", api.token_id);
    for (action, reason) in [
        ("mfa.reset", None),
        ("user.sessions_end", Some("mfa_reset")),
    ] {
        let events = api
            .t
            .store
            .audit()
            .list(&latchkey_idp::audit::AuditFilter {
                action: Some(action.into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(events[0].actor, actor, "{action}");
        assert_eq!(events[0].target_id, Some(mia.id.to_string()), "{action}");
        if let Some(reason) = reason {
            assert_eq!(events[0].after.as_ref().unwrap()["reason"], reason);
        }
    }
}

/// A replace may name the version it read (`If-Match`, the `ETag` of a read): when the
/// application changed since (a metadata refresh rolling the SP's certificate), it is
/// refused with 412 `changed_since` and nothing is written; with the current tag, or
/// without the header, it goes.
async fn application_replace_if_match(t: TestStore) {
    let a = api(t).await;
    let wiki = json!({
        "entity_id": "https://wiki.example.org/saml/metadata",
        "name": "Wiki",
        "acs": [{"url": "https://wiki.example.org/saml/acs"}],
    });
    let (s, app) = a
        .call(Method::POST, "/api/v1/apps", Some(wiki.clone()))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{app}");
    let uri = format!("/api/v1/apps/{}", app["id"].as_str().unwrap());
    let read = |uri: String| {
        let a = &a;
        async move {
            let req = Request::builder()
                .uri(uri)
                .header(header::AUTHORIZATION, format!("Bearer {}", a.token))
                .body(Body::empty())
                .unwrap();
            let (status, headers, _) = a.raw(req).await;
            assert_eq!(status, StatusCode::OK);
            headers[header::ETAG].to_str().unwrap().to_owned()
        }
    };
    let put = |tag: Option<String>, body: Value| {
        let a = &a;
        let uri = uri.clone();
        async move {
            let mut req = Request::builder()
                .method(Method::PUT)
                .uri(uri)
                .header(header::AUTHORIZATION, format!("Bearer {}", a.token))
                .header(header::CONTENT_TYPE, "application/json");
            if let Some(tag) = tag {
                req = req.header(header::IF_MATCH, tag);
            }
            a.raw(req.body(Body::from(body.to_string())).unwrap()).await
        }
    };
    let seen = read(uri.clone()).await;

    // Meanwhile the SP's signing certificate is rolled.
    let id = app["id"].as_str().unwrap().parse().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["wiki.example.org".to_owned()])
        .unwrap()
        .cert
        .pem();
    a.t.store
        .apps()
        .update(&Actor::system(), id, move |s| s.signing_certs = vec![cert])
        .await
        .unwrap();
    let written = a.audit_count().await;
    let mut renamed = wiki.clone();
    renamed["name"] = json!("Team wiki");
    let (status, _, body) = put(Some(seen.clone()), renamed.clone()).await;
    assert_error(
        &(status, body),
        StatusCode::PRECONDITION_FAILED,
        "changed_since",
    );
    assert_eq!(a.audit_count().await, written);
    let now = a.t.store.apps().get(id).await.unwrap().settings;
    assert_eq!((now.name.as_str(), now.signing_certs.len()), ("Wiki", 1));

    // With the tag read now (weak or strong, in a list), it goes and answers the new tag.
    let current = read(uri.clone()).await;
    assert_ne!(current, seen);
    let (status, headers, body) = put(Some(format!("{seen}, W/{current}")), renamed).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "Team wiki");
    let after = headers[header::ETAG].to_str().unwrap().to_owned();
    assert_eq!(after, read(uri.clone()).await);
    // Without If-Match, a replace is unconditional, as before.
    let (status, _, body) = put(None, wiki).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "Wiki");
}
crate::on_both_backends!(application_replace_if_match);

/// A user's `PATCH` may name the version it read (`If-Match`): after another change (a
/// suspension) it is refused with 412 `changed_since`, nothing written; with the current tag
/// it goes and answers the new one.
async fn user_patch_if_match(t: TestStore) {
    let a = api(t).await;
    let carol =
        a.t.store
            .users()
            .create(
                &Actor::system(),
                latchkey_idp::directory::NewUser::new("carol", "carol@example.org"),
            )
            .await
            .unwrap();
    let uri = format!("/api/v1/users/{}", carol.id);
    let request = |method: Method, tag: Option<&str>, body: Option<Value>| {
        let mut req = Request::builder()
            .method(method)
            .uri(&uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", a.token));
        if let Some(tag) = tag {
            req = req.header(header::IF_MATCH, tag);
        }
        match body {
            Some(v) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(v.to_string()))
                .unwrap(),
            None => req.body(Body::empty()).unwrap(),
        }
    };
    let (_, headers, _) = a.raw(request(Method::GET, None, None)).await;
    let seen = headers[header::ETAG].to_str().unwrap().to_owned();
    a.t.store
        .users()
        .suspend(&Actor::system(), carol.id)
        .await
        .unwrap();
    let written = a.audit_count().await;
    let rename = json!({"display_name": "Carol C."});
    let (status, _, body) = a
        .raw(request(Method::PATCH, Some(&seen), Some(rename.clone())))
        .await;
    assert_error(
        &(status, body),
        StatusCode::PRECONDITION_FAILED,
        "changed_since",
    );
    assert_eq!(a.audit_count().await, written);
    let (_, headers, _) = a.raw(request(Method::GET, None, None)).await;
    let current = headers[header::ETAG].to_str().unwrap().to_owned();
    assert_ne!(current, seen);
    let (status, headers, body) = a
        .raw(request(Method::PATCH, Some(&current), Some(rename)))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["display_name"].clone(), body["status"].clone()),
        (json!("Carol C."), json!("suspended"))
    );
    let after = headers[header::ETAG].to_str().unwrap().to_owned();
    let (_, headers, _) = a.raw(request(Method::GET, None, None)).await;
    assert_eq!(headers[header::ETAG].to_str().unwrap(), after);
}
crate::on_both_backends!(user_patch_if_match);

/// A group's `GET` answers an `ETag` that another writer's rename, and a membership by
/// anyone, moves; a write naming an older one (`If-Match`: rename, member added or removed,
/// deletion) is refused with 412 `changed_since`, nothing written; with the current tag it
/// goes and answers the new one; without the header a write goes as before.
async fn group_writes_if_match(t: TestStore) {
    let a = api(t).await;
    let groups = a.t.store.groups();
    let eng = groups
        .create(
            &Actor::system(),
            latchkey_idp::directory::NewGroup::new("eng"),
        )
        .await
        .unwrap();
    let carol =
        a.t.store
            .users()
            .create(
                &Actor::system(),
                latchkey_idp::directory::NewUser::new("carol", "carol@example.org"),
            )
            .await
            .unwrap();
    let uri = format!("/api/v1/groups/{}", eng.id);
    let member = format!("{uri}/members/{}", carol.id);
    let request = |method: Method, uri: &str, tag: Option<&str>, body: Option<Value>| {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", a.token));
        if let Some(tag) = tag {
            req = req.header(header::IF_MATCH, tag);
        }
        match body {
            Some(v) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(v.to_string()))
                .unwrap(),
            None => req.body(Body::empty()).unwrap(),
        }
    };
    let read = || async {
        let (status, headers, body) = a.raw(request(Method::GET, &uri, None, None)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (headers[header::ETAG].to_str().unwrap().to_owned(), body)
    };
    let (seen, _) = read().await;

    // Meanwhile another writer renames it: the tag moves, a rename from the old one is refused.
    groups
        .rename(&Actor::system(), eng.id, "engineering")
        .await
        .unwrap();
    let (current, body) = read().await;
    assert_ne!(current, seen);
    assert_eq!(body["name"], "engineering");
    let written = a.audit_count().await;
    let rename = json!({"name": "platform"});
    let (status, _, body) = a
        .raw(request(
            Method::PATCH,
            &uri,
            Some(&seen),
            Some(rename.clone()),
        ))
        .await;
    assert_error(
        &(status, body),
        StatusCode::PRECONDITION_FAILED,
        "changed_since",
    );
    assert_eq!(a.audit_count().await, written);
    assert_eq!(groups.get(eng.id).await.unwrap().name, "engineering");

    // With the current tag it goes and answers the new one.
    let (status, headers, body) = a
        .raw(request(Method::PATCH, &uri, Some(&current), Some(rename)))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "platform");
    let renamed = headers[header::ETAG].to_str().unwrap().to_owned();
    assert_ne!(renamed, current);
    assert_eq!(read().await.0, renamed);

    // A membership moves the tag too, whoever writes it (as a SCIM group's ETag).
    groups
        .add_member(&Actor::system(), eng.id, carol.id)
        .await
        .unwrap();
    let (with_carol, _) = read().await;
    assert_ne!(with_carol, renamed);
    let written = a.audit_count().await;
    for (method, uri, body) in [
        (Method::PATCH, uri.as_str(), Some(json!({"name": "ops"}))),
        (Method::DELETE, member.as_str(), None),
        (Method::DELETE, uri.as_str(), None),
    ] {
        let (status, _, body) = a
            .raw(request(method.clone(), uri, Some(&renamed), body))
            .await;
        assert_error(
            &(status, body),
            StatusCode::PRECONDITION_FAILED,
            "changed_since",
        );
    }
    assert_eq!(a.audit_count().await, written);
    assert_eq!(groups.get(eng.id).await.unwrap().name, "platform");
    assert_eq!(groups.members(eng.id).await.unwrap().len(), 1);

    // A member removed with the current tag answers the group's new one; added back with a
    // stale one, refused.
    let (status, headers, body) = a
        .raw(request(Method::DELETE, &member, Some(&with_carol), None))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let without = headers[header::ETAG].to_str().unwrap().to_owned();
    assert_eq!(read().await.0, without);
    let (status, _, body) = a
        .raw(request(Method::PUT, &member, Some(&with_carol), None))
        .await;
    assert_error(
        &(status, body),
        StatusCode::PRECONDITION_FAILED,
        "changed_since",
    );
    assert!(groups.members(eng.id).await.unwrap().is_empty());
    let (status, headers, body) = a
        .raw(request(Method::PUT, &member, Some(&without), None))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(read().await.0, headers[header::ETAG].to_str().unwrap());

    // Without If-Match, as before.
    let (status, _, body) = a
        .raw(request(
            Method::PATCH,
            &uri,
            None,
            Some(json!({"name": "eng"})),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "eng");
    let (tag, _) = read().await;
    let (status, _, body) = a.raw(request(Method::DELETE, &uri, Some(&tag), None)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(groups.find_by_name("eng").await.unwrap().is_none());

    // The OpenAPI document says so for every conditional write.
    let (_, doc) = a.get("/api/v1/openapi.json").await;
    for (path, method) in [
        ("/api/v1/groups/{group}", "patch"),
        ("/api/v1/groups/{group}", "delete"),
        ("/api/v1/groups/{group}/members/{user}", "put"),
        ("/api/v1/groups/{group}/members/{user}", "delete"),
        ("/api/v1/groups/{group}/mfa", "put"),
    ] {
        let op = &doc["paths"][path][method];
        let header = op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "If-Match" && p["in"] == "header");
        assert!(
            header && op["responses"]["412"].is_object(),
            "{path} {method}: {op}"
        );
    }
}
crate::on_both_backends!(group_writes_if_match);

/// The group's MFA rule is a write of the group like the others: `If-Match` naming an older
/// `ETag` (a member added since) is refused with 412 `changed_since`, nothing written or
/// audited; with the current one the rule is set and the group's `ETag` answered; without
/// the header it goes as before.
async fn group_mfa_rule_if_match(t: TestStore) {
    let a = api(t).await;
    let groups = a.t.store.groups();
    let eng = groups
        .create(
            &Actor::system(),
            latchkey_idp::directory::NewGroup::new("eng"),
        )
        .await
        .unwrap();
    let carol =
        a.t.store
            .users()
            .create(
                &Actor::system(),
                latchkey_idp::directory::NewUser::new("carol", "carol@example.org"),
            )
            .await
            .unwrap();
    let uri = format!("/api/v1/groups/{}", eng.id);
    let rule = format!("{uri}/mfa");
    let put = |tag: Option<&str>, require: bool| {
        let mut req = Request::builder()
            .method(Method::PUT)
            .uri(&rule)
            .header(header::AUTHORIZATION, format!("Bearer {}", a.token))
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(tag) = tag {
            req = req.header(header::IF_MATCH, tag);
        }
        req.body(Body::from(json!({ "require_mfa": require }).to_string()))
            .unwrap()
    };
    let read = || async {
        let req = Request::get(&uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", a.token))
            .body(Body::empty())
            .unwrap();
        let (status, headers, body) = a.raw(req).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        headers[header::ETAG].to_str().unwrap().to_owned()
    };
    let requires = || async {
        let group = groups.get(eng.id).await.unwrap();
        latchkey_idp::mfa::policy::MfaPolicy::new(&a.t.store)
            .group_requires(&group)
            .await
            .unwrap()
    };
    let seen = read().await;
    groups
        .add_member(&Actor::system(), eng.id, carol.id)
        .await
        .unwrap();
    let current = read().await;
    assert_ne!(current, seen);

    // Stale: refused, nothing written, nothing audited.
    let written = a.audit_count().await;
    let (status, _, body) = a.raw(put(Some(&seen), true)).await;
    assert_error(
        &(status, body),
        StatusCode::PRECONDITION_FAILED,
        "changed_since",
    );
    assert_eq!(a.audit_count().await, written);
    assert!(!requires().await);

    // Current: set, and the group's ETag answered (the rule is no part of it).
    let (status, headers, body) = a.raw(put(Some(&current), true)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["require_mfa"], true);
    assert_eq!(headers[header::ETAG].to_str().unwrap(), current);
    assert_eq!(read().await, current);
    assert!(requires().await);
    assert_eq!(a.audit_count().await, written + 1);

    // Without If-Match, as before; the ETag is still answered.
    let (status, headers, body) = a.raw(put(None, false)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers[header::ETAG].to_str().unwrap(), current);
    assert!(!requires().await);
}
crate::on_both_backends!(group_mfa_rule_if_match);

/// An invitation shown while its user held no console role sets no password once the user
/// has one: `PUT /roles/{role}/users/{user}` and a member `PUT` into a group that carries a
/// role use it up; a user who gains no role keeps theirs.
async fn a_role_granted_uses_up_the_invitation(t: TestStore) {
    use latchkey_idp::enrollment::{LinkKind, LinkLookup};
    let a = api(t).await;
    for name in ["dora", "eve", "gus"] {
        let (s, body) = a
            .call(
                Method::POST,
                "/api/v1/users",
                Some(json!({"username": name, "email": format!("{name}@example.org")})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
    }
    for (name, body) in [
        ("staff", json!({"name": "staff"})),
        ("plain", json!({"name": "plain"})),
    ] {
        let (s, made) = a.call(Method::POST, "/api/v1/groups", Some(body)).await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {made}");
    }
    let (s, body) = a
        .call(Method::PUT, "/api/v1/roles/auditor/groups/staff", None)
        .await;
    assert!(s.is_success(), "{body}");
    let invite = |name: &'static str| {
        let a = &a;
        async move {
            let (s, inv) = a
                .call(
                    Method::POST,
                    &format!("/api/v1/users/{name}/invitations"),
                    None,
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{inv}");
            inv["url"]
                .as_str()
                .unwrap()
                .trim_start_matches("/invite/")
                .to_owned()
        }
    };
    let (dora, eve, gus) = (
        invite("dora").await,
        invite("eve").await,
        invite("gus").await,
    );
    let (s, body) = a
        .call(Method::PUT, "/api/v1/roles/helpdesk/users/dora", None)
        .await;
    assert!(s.is_success(), "{body}");
    let (s, body) = a
        .call(Method::PUT, "/api/v1/groups/staff/members/eve", None)
        .await;
    assert!(s.is_success(), "{body}");
    let (s, body) = a
        .call(Method::PUT, "/api/v1/groups/plain/members/gus", None)
        .await;
    assert!(s.is_success(), "{body}");
    let links = a.t.store.enrollment();
    for (who, token, works) in [
        ("dora", &dora, false),
        ("eve", &eve, false),
        ("gus", &gus, true),
    ] {
        let found = links.lookup(LinkKind::Invitation, token).await.unwrap();
        assert_eq!(matches!(found, LinkLookup::Valid(_)), works, "{who}");
    }
    let (_, log) = a.get("/api/v1/audit?action=user.links_voided").await;
    let mut voided: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["target_name"].as_str().unwrap())
        .collect();
    voided.sort();
    assert_eq!(voided, ["dora", "eve"], "{log}");
}

/// The audit log being unwritable never turns a read-only token's 403 into a 500: the
/// refusal stands (the failure is logged under its operation ID).
async fn a_refusal_whose_audit_fails_is_still_a_403(t: TestStore) {
    use sqlx::Connection;
    let mut a = api(t).await;
    let (_, issued) = ApiTokens::new(&a.t.store)
        .create_scoped(
            &Actor::cli("tester"),
            "siem",
            latchkey_idp::tokens::TokenScope::ApiRead,
        )
        .await
        .unwrap();
    a.token = issued.expose().to_owned();
    let mut raw = sqlx::AnyConnection::connect(&a.t.url).await.unwrap();
    sqlx::query("ALTER TABLE audit_events RENAME TO audit_events_away")
        .execute(&mut raw)
        .await
        .unwrap();
    let answer = a
        .call(
            Method::POST,
            "/api/v1/groups",
            Some(json!({"name": "admins-too"})),
        )
        .await;
    sqlx::query("ALTER TABLE audit_events_away RENAME TO audit_events")
        .execute(&mut raw)
        .await
        .unwrap();
    assert_error(&answer, StatusCode::FORBIDDEN, "token_read_only");
    assert!(answer.1["operation_id"].is_string(), "{}", answer.1);
    assert!(
        a.t.store
            .groups()
            .find_by_name("admins-too")
            .await
            .unwrap()
            .is_none()
    );
}
