//! The SCIM server over HTTP (the axum router on a real store): each operation, the contract
//! and engine behind every write, deactivation, and each error with nothing half-written.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use latchkey_sp::Error;
use latchkey_sp::jit::{JitEngine, Outcome, PlanAction, RefusalCode};
use latchkey_sp::scim::server;
use latchkey_sp::scim::service::{ScimService, ScimSettings, TokenSettings, token_sha256};
use latchkey_sp::store::{AuditKind, RoleOrigin, SqlAccountStore};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};
use tower::ServiceExt;
use uuid::Uuid;

use crate::support::{Db, Fixture, IDP, WIKI, alice, contract, fixture, t0};

const TOKEN: &str = "scim-test-token-0123456789";

pub(crate) struct Scim {
    pub fx: Fixture,
    pub engine: JitEngine<SqlAccountStore>,
    pub router: Router,
    pub clock: Arc<Mutex<OffsetDateTime>>,
    pub deactivated: Arc<AtomicU64>,
}

pub(crate) async fn scim(db: Db, contract_text: &str) -> Scim {
    scim_limited(db, contract_text, None).await
}

/// [`scim`] whose filtered listings are refused past `max_filtered` users.
pub(crate) async fn scim_limited(db: Db, contract_text: &str, max_filtered: Option<usize>) -> Scim {
    let fx = fixture(db).await;
    let engine = JitEngine::new(contract(contract_text), fx.store.clone());
    let settings = ScimSettings {
        tokens: vec![TokenSettings {
            name: "test-idp".to_owned(),
            sha256: token_sha256(TOKEN),
        }],
        base_url: None,
        idp_entity_id: None,
        name_id: "externalId".to_owned(),
        attributes: Default::default(),
    };
    let deactivated = Arc::new(AtomicU64::new(0));
    let counter = deactivated.clone();
    let service = ScimService::new(
        engine.clone(),
        &settings,
        IDP,
        "https://app.example/scim/v2",
    )
    .unwrap()
    .on_deactivate(Arc::new(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        1
    }));
    let service = match max_filtered {
        Some(n) => service.max_filtered_users(n),
        None => service,
    };
    let clock = Arc::new(Mutex::new(t0()));
    let c = clock.clone();
    let router = Router::new().nest(
        "/scim/v2",
        server::router(service, Arc::new(move || *c.lock().unwrap())),
    );
    Scim {
        fx,
        engine,
        router,
        clock,
        deactivated,
    }
}

impl Scim {
    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("/scim/v2{path}"))
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/scim+json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let response = self.router.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, headers, value)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let (s, _, v) = self.call_with(method, path, body, &[]).await;
        (s, v)
    }

    pub fn advance(&self, by: Duration) {
        *self.clock.lock().unwrap() += by;
    }

    /// How many SCIM deletes the store remembers against logins.
    async fn deleted_identities(&self) -> i64 {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&self.fx.url).await.unwrap();
        let n = sqlx::query_scalar("SELECT count(*) FROM sp_deleted_identities")
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        n
    }

    async fn audit_kinds(&self) -> Vec<(AuditKind, Option<String>)> {
        self.fx
            .store
            .audit_log(1000)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.kind, e.actor))
            .collect()
    }
}

fn alice_user() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "alice",
        "externalId": "alice-7f3a",
        "displayName": "Alice Liddell",
        "emails": [{"value": "Alice@Example.org", "type": "work", "primary": true}]
    })
}

fn user(name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name,
        "externalId": format!("{name}-ext"),
        "displayName": name.to_uppercase(),
        "emails": [{"value": format!("{name}@example.org"), "primary": true}]
    })
}

fn patch(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

fn err_type(v: &Value) -> &str {
    v["scimType"].as_str().unwrap_or("")
}

pub(crate) async fn create_get_and_the_account_behind_it(db: Db) {
    let s = scim(db, WIKI).await;
    let (status, headers, body) = s
        .call_with(Method::POST, "/Users", Some(&alice_user()), &[])
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(headers[header::CONTENT_TYPE], "application/scim+json");
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        headers[header::LOCATION],
        format!("https://app.example/scim/v2/Users/{id}").as_str()
    );
    assert_eq!(headers[header::ETAG], "W/\"1\"");
    assert_eq!(body["meta"]["resourceType"], "User");
    assert_eq!(body["meta"]["version"], "W/\"1\"");
    // `active` is as the client wrote it: absent, which means enabled.
    assert!(body.get("active").is_none());
    // The account behind it was made by the contract: IdP-owned fields, create-only uid.
    let account =
        s.fx.store
            .account(Uuid::parse_str(&id).unwrap())
            .await
            .unwrap()
            .unwrap();
    assert_eq!(account.email.as_deref(), Some("alice@example.org"));
    assert_eq!(account.fields["display_name"], "Alice Liddell");
    assert_eq!(account.fields["username"], "alice");
    assert!(account.roles.is_empty(), "no group yet: no role");
    // A SAML login of the same person finds the same account.
    let login = s.engine.login(&alice(), t0()).await.unwrap();
    assert_eq!(login.account.id, account.id);
    // GET returns what POST returned.
    let (status, got) = s.call(Method::GET, &format!("/Users/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["userName"], "alice");
    assert_eq!(got["emails"], body["emails"]);
    // The write is audited with the token's name.
    assert!(
        s.audit_kinds()
            .await
            .contains(&(AuditKind::ScimCreated, Some("test-idp".to_owned())))
    );
    // Unknown and malformed ids are 404.
    for missing in [Uuid::new_v4().to_string(), "not-a-uuid".to_owned()] {
        let (status, body) = s
            .call(Method::GET, &format!("/Users/{missing}"), None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["status"], "404");
    }
}

pub(crate) async fn authentication_is_required(db: Db) {
    let s = scim(db, WIKI).await;
    for auth in [None, Some("Bearer wrong"), Some("Basic dGVzdDp0ZXN0")] {
        let mut req = Request::builder().uri("/scim/v2/Users");
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        let response = s
            .router
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
    }
}

pub(crate) async fn list_filter_page_and_sort(db: Db) {
    let s = scim_limited(db, WIKI, Some(4)).await;
    for name in ["carol", "alice", "bob", "dave"] {
        let (status, _) = s.call(Method::POST, "/Users", Some(&user(name))).await;
        assert_eq!(status, StatusCode::CREATED);
        s.advance(Duration::minutes(1));
    }
    let names = |v: &Value| -> Vec<String> {
        v["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["userName"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, all) = s.call(Method::GET, "/Users", None).await;
    assert_eq!(all["totalResults"], 4);
    assert_eq!(
        names(&all),
        ["carol", "alice", "bob", "dave"],
        "creation order"
    );
    // Without filter or sort the page is cut in SQL: same order, the total of all users,
    // and each user on the page with its groups.
    let alice_id = all["Resources"][1]["id"].as_str().unwrap().to_owned();
    let (status, group) = s
        .call(
            Method::POST,
            "/Groups",
            Some(&json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "readers",
                "members": [{"value": alice_id}]
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    let (_, cut) = s
        .call(Method::GET, "/Users?startIndex=2&count=2", None)
        .await;
    assert_eq!(names(&cut), ["alice", "bob"]);
    assert_eq!(cut["totalResults"], 4);
    assert_eq!(cut["startIndex"], 2);
    assert_eq!(cut["itemsPerPage"], 2);
    assert_eq!(cut["Resources"][0]["groups"][0]["display"], "readers");
    assert!(
        cut["Resources"][1]
            .get("groups")
            .is_none_or(|g| g == &json!([])),
        "{cut}"
    );
    let (_, past) = s.call(Method::GET, "/Users?startIndex=9", None).await;
    assert_eq!(
        (past["totalResults"].as_u64(), names(&past).len()),
        (Some(4), 0)
    );
    let (_, projected) = s
        .call(Method::GET, "/Users?count=1&attributes=userName", None)
        .await;
    assert_eq!(projected["Resources"][0].get("name"), None, "{projected}");
    assert_eq!(projected["Resources"][0]["userName"], "carol");
    let (_, one) = s
        .call(Method::GET, "/Users?filter=userName%20eq%20%22BOB%22", None)
        .await;
    assert_eq!(names(&one), ["bob"]);
    // Created a minute apart from t0: the last two are after t0 + 1m30s.
    let after = (t0() + Duration::seconds(90))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (status, recent) = s
        .call(
            Method::GET,
            &format!("/Users?filter=meta.lastModified%20gt%20%22{after}%22"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{recent}");
    assert_eq!(names(&recent), ["bob", "dave"]);
    let (_, sorted) = s
        .call(
            Method::GET,
            "/Users?sortBy=userName&sortOrder=descending",
            None,
        )
        .await;
    assert_eq!(names(&sorted), ["dave", "carol", "bob", "alice"]);
    let (_, page) = s
        .call(
            Method::GET,
            "/Users?sortBy=userName&startIndex=2&count=2",
            None,
        )
        .await;
    assert_eq!(names(&page), ["bob", "carol"]);
    assert_eq!(page["totalResults"], 4);
    assert_eq!(page["startIndex"], 2);
    assert_eq!(page["itemsPerPage"], 2);
    let (_, none) = s
        .call(
            Method::GET,
            "/Users?filter=emails%5Bvalue%20sw%20%22zed%22%5D%20or%20not%20(userName%20pr)",
            None,
        )
        .await;
    assert_eq!(none["totalResults"], 0);
    let (status, bad) = s
        .call(Method::GET, "/Users?filter=userName%20zz%20%22x%22", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err_type(&bad), "invalidFilter");
    let (status, bad) = s
        .call(Method::GET, "/Users?filter=shoeSize%20eq%2042", None)
        .await;
    assert_eq!(
        (status, err_type(&bad)),
        (StatusCode::BAD_REQUEST, "invalidFilter")
    );
    // This server evaluates general filters over at most 4 users: a fifth makes them
    // `tooMany`, while `userName eq` and plain paging still answer from SQL.
    let (status, _) = s.call(Method::POST, "/Users", Some(&user("erin"))).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, refused) = s.call(Method::GET, "/Users?sortBy=userName", None).await;
    assert_eq!(
        (status, err_type(&refused)),
        (StatusCode::BAD_REQUEST, "tooMany")
    );
    let (_, one) = s
        .call(
            Method::GET,
            "/Users?filter=userName%20eq%20%22erin%22",
            None,
        )
        .await;
    assert_eq!(names(&one), ["erin"]);
    let (_, all) = s.call(Method::GET, "/Users", None).await;
    assert_eq!(all["totalResults"], 5);
}

pub(crate) async fn put_patch_and_etags(db: Db) {
    let s = scim(db, WIKI).await;
    let (_, created) = s.call(Method::POST, "/Users", Some(&alice_user())).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let path = format!("/Users/{id}");
    s.advance(Duration::minutes(5));
    let mut replacement = alice_user();
    replacement["displayName"] = json!("Alice L.");
    let (status, headers, put) = s
        .call_with(
            Method::PUT,
            &path,
            Some(&replacement),
            &[("If-Match", "W/\"1\"")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{put}");
    assert_eq!(headers[header::ETAG], "W/\"2\"");
    assert_ne!(put["meta"]["lastModified"], created["meta"]["lastModified"]);
    let account_id = Uuid::parse_str(&id).unwrap();
    let account = s.fx.store.account(account_id).await.unwrap().unwrap();
    assert_eq!(account.fields["display_name"], "Alice L.");
    // A stale ETag: 412, and nothing changes.
    let audit_before = s.audit_kinds().await.len();
    let (status, body) = s
        .call_with(
            Method::PATCH,
            &path,
            Some(&patch(
                json!([{"op": "replace", "path": "displayName", "value": "X"}]),
            )),
            &[("If-Match", "W/\"1\"")],
        )
        .await
        .into_status_and_body();
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{body}");
    let (status, body) = s
        .call_with(
            Method::PUT,
            &path,
            Some(&alice_user()),
            &[("If-Match", "W/\"7\"")],
        )
        .await
        .into_status_and_body();
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{body}");
    let (status, body) = s
        .call_with(Method::DELETE, &path, None, &[("If-Match", "W/\"1\"")])
        .await
        .into_status_and_body();
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{body}");
    assert_eq!(s.audit_kinds().await.len(), audit_before);
    assert_eq!(
        s.fx.store
            .account(account_id)
            .await
            .unwrap()
            .unwrap()
            .fields["display_name"],
        "Alice L."
    );
    // If-None-Match with the current version: 304.
    let (status, _, _) = s
        .call_with(Method::GET, &path, None, &[("If-None-Match", "W/\"2\"")])
        .await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    // PATCH forms, each through the contract.
    let (status, patched) = s
        .call_with(
            Method::PATCH,
            &path,
            Some(&patch(json!([
                {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "alice@new.example"},
                {"op": "add", "path": "name.givenName", "value": "Alice"},
                {"op": "remove", "path": "displayName"}
            ]))),
            &[("If-Match", "W/\"2\"")],
        )
        .await
        .into_status_and_body();
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["emails"][0]["value"], "alice@new.example");
    assert_eq!(patched["name"]["givenName"], "Alice");
    assert!(patched.get("displayName").is_none());
    assert_eq!(patched["meta"]["version"], "W/\"3\"");
    let account = s.fx.store.account(account_id).await.unwrap().unwrap();
    assert_eq!(account.email.as_deref(), Some("alice@new.example"));
    // An IdP-owned field the client removed is cleared, as a login without it would.
    assert!(!account.fields.contains_key("display_name"));
}

trait IntoStatusAndBody {
    fn into_status_and_body(self) -> (StatusCode, Value);
}

impl IntoStatusAndBody for (StatusCode, HeaderMap, Value) {
    fn into_status_and_body(self) -> (StatusCode, Value) {
        (self.0, self.2)
    }
}

pub(crate) async fn bad_input_writes_nothing(db: Db) {
    let s = scim(db, WIKI).await;
    let (_, created) = s.call(Method::POST, "/Users", Some(&alice_user())).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let path = format!("/Users/{id}");
    let snapshot = || async {
        (
            s.fx.store.accounts().await.unwrap(),
            s.audit_kinds().await,
            s.call(Method::GET, &path, None).await.1,
        )
    };
    let before = snapshot().await;
    let mut unknown_attribute = user("bob");
    unknown_attribute["shoeSize"] = json!(42);
    let mut wrong_type = user("bob");
    wrong_type["active"] = json!("sometimes");
    let mut no_schemas = user("bob");
    no_schemas.as_object_mut().unwrap().remove("schemas");
    let mut taken = user("bob");
    taken["userName"] = json!("ALICE");
    let cases: Vec<(Method, String, Value, StatusCode, &str)> = vec![
        (
            Method::POST,
            "/Users".into(),
            unknown_attribute,
            StatusCode::BAD_REQUEST,
            "invalidValue",
        ),
        (
            Method::POST,
            "/Users".into(),
            wrong_type,
            StatusCode::BAD_REQUEST,
            "invalidValue",
        ),
        (
            Method::POST,
            "/Users".into(),
            no_schemas,
            StatusCode::BAD_REQUEST,
            "invalidSyntax",
        ),
        (
            Method::POST,
            "/Users".into(),
            taken,
            StatusCode::CONFLICT,
            "uniqueness",
        ),
        (
            Method::POST,
            "/Users".into(),
            alice_user(),
            StatusCode::CONFLICT,
            "uniqueness",
        ),
        (
            Method::PATCH,
            path.clone(),
            patch(json!([{"op": "replace", "path": "noSuch", "value": 1}])),
            StatusCode::BAD_REQUEST,
            "invalidPath",
        ),
        (
            Method::PATCH,
            path.clone(),
            patch(
                json!([{"op": "replace", "path": "emails[type eq \"fax\"]", "value": {"value": "x"}}]),
            ),
            StatusCode::BAD_REQUEST,
            "noTarget",
        ),
        (
            Method::PATCH,
            path.clone(),
            patch(json!([
                {"op": "replace", "path": "displayName", "value": "changed"},
                {"op": "replace", "path": "active", "value": "perhaps"}
            ])),
            StatusCode::BAD_REQUEST,
            "invalidValue",
        ),
        (
            Method::PATCH,
            path.clone(),
            json!({"Operations": []}),
            StatusCode::BAD_REQUEST,
            "invalidSyntax",
        ),
        (
            Method::PATCH,
            path.clone(),
            patch(json!([{"op": "remove", "path": "externalId"}])),
            StatusCode::BAD_REQUEST,
            "invalidValue",
        ),
        (
            Method::PUT,
            path.clone(),
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]}),
            StatusCode::BAD_REQUEST,
            "invalidValue",
        ),
    ];
    for (method, p, body, status, scim_type) in cases {
        let (got, answer) = s.call(method.clone(), &p, Some(&body)).await;
        assert_eq!(
            (got, err_type(&answer)),
            (status, scim_type),
            "{method} {p} {body}: {answer}"
        );
    }
    // Not JSON, and a body over the limit.
    let req = Request::builder()
        .method(Method::POST)
        .uri("/scim/v2/Users")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::from("{not json"))
        .unwrap();
    let response = s.router.clone().oneshot(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let huge = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "x".repeat(400_000)});
    let (status, body) = s.call(Method::POST, "/Users", Some(&huge)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(snapshot().await, before);
}

pub(crate) async fn a_contract_refusal_is_audited_and_writes_nothing(db: Db) {
    let s = scim(db, WIKI).await;
    s.call(Method::POST, "/Users", Some(&alice_user())).await;
    let accounts = s.fx.store.accounts().await.unwrap();
    // Audit events of one millisecond have no order: the refusal comes later.
    s.advance(Duration::seconds(1));
    // bob claims alice's address: the contract refuses (no account gets two owners).
    let mut bob = user("bob");
    bob["emails"] = json!([{"value": "alice@example.org", "primary": true}]);
    let (status, body) = s.call(Method::POST, "/Users", Some(&bob)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("EMAIL_BELONGS_TO_OTHER_ACCOUNT")
    );
    assert_eq!(s.fx.store.accounts().await.unwrap(), accounts);
    assert_eq!(
        s.audit_kinds().await.last(),
        Some(&(AuditKind::ScimRefused, Some("test-idp".to_owned())))
    );
    // A required attribute the user lacks is the contract's refusal too.
    let mut no_mail = user("carol");
    no_mail.as_object_mut().unwrap().remove("emails");
    let (status, body) = s.call(Method::POST, "/Users", Some(&no_mail)).await;
    assert_eq!(
        (status, err_type(&body)),
        (StatusCode::BAD_REQUEST, "invalidValue")
    );
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("REQUIRED_ATTRIBUTE_MISSING")
    );
    assert_eq!(s.fx.store.accounts().await.unwrap(), accounts);
}

pub(crate) async fn deactivation_ends_sessions_and_refuses_logins(db: Db) {
    let s = scim(db, WIKI).await;
    let (_, created) = s.call(Method::POST, "/Users", Some(&alice_user())).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let account_id = Uuid::parse_str(&id).unwrap();
    let (status, body) = s
        .call(
            Method::PATCH,
            &format!("/Users/{id}"),
            Some(&patch(
                json!([{"op": "replace", "path": "active", "value": false}]),
            )),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["active"], false);
    assert_eq!(
        s.deactivated.load(Ordering::SeqCst),
        1,
        "sessions ended at once"
    );
    assert!(
        !s.fx
            .store
            .account(account_id)
            .await
            .unwrap()
            .unwrap()
            .active
    );
    assert!(
        s.audit_kinds()
            .await
            .contains(&(AuditKind::ScimDisabled, Some("test-idp".to_owned())))
    );
    match s.engine.login(&alice(), t0()).await {
        Err(Error::Refused { refusal, .. }) => {
            assert_eq!(refusal.code, RefusalCode::AccountDisabled)
        }
        other => panic!("a disabled account signed in: {other:?}"),
    }
    let (_, filtered) = s
        .call(Method::GET, "/Users?filter=active%20eq%20false", None)
        .await;
    assert_eq!(filtered["totalResults"], 1);
    // Re-enabled, the person signs in again.
    let (status, _) = s
        .call(
            Method::PATCH,
            &format!("/Users/{id}"),
            Some(&patch(
                json!([{"op": "replace", "value": {"active": true}}]),
            )),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        s.engine.login(&alice(), t0()).await.unwrap().account.id,
        account_id
    );
}

pub(crate) async fn delete_follows_the_contract(db: Db) {
    // Default: disable and detach.
    let s = scim(db, WIKI).await;
    let (_, created) = s.call(Method::POST, "/Users", Some(&alice_user())).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let account_id = Uuid::parse_str(&id).unwrap();
    let (status, _) = s.call(Method::DELETE, &format!("/Users/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        s.call(Method::GET, &format!("/Users/{id}"), None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.call(Method::DELETE, &format!("/Users/{id}"), None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let account = s.fx.store.account(account_id).await.unwrap().unwrap();
    assert!(!account.active, "kept, disabled");
    assert_eq!(s.deactivated.load(Ordering::SeqCst), 1);
    // Provisioned again (a re-assignment), the same account comes back enabled.
    let (status, again) = s.call(Method::POST, "/Users", Some(&alice_user())).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again["id"], id.as_str());
    assert!(
        s.fx.store
            .account(account_id)
            .await
            .unwrap()
            .unwrap()
            .active
    );
    // Under `deprovision = "delete"` the account goes.
    let s = scim(db, &format!("deprovision = \"delete\"\n{WIKI}")).await;
    let (_, created) = s.call(Method::POST, "/Users", Some(&alice_user())).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(
        s.call(Method::DELETE, &format!("/Users/{id}"), None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert!(
        s.fx.store
            .account(Uuid::parse_str(&id).unwrap())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.audit_kinds()
            .await
            .contains(&(AuditKind::ScimDeleted, Some("test-idp".to_owned())))
    );
}

/// A login in flight across a SCIM delete under `deprovision = "delete"` (its assertion
/// verified before the delete, its JIT write after) does not bring the account back: it is
/// refused `ACCOUNT_DELETED`, with nothing written but its audit event. A login
/// authenticated after the delete creates the account anew, as does SCIM itself; the delete
/// is forgotten after `DELETED_IDENTITY_LIFETIME`, and the next delete purges it.
pub(crate) async fn a_login_in_flight_does_not_undo_a_delete(db: Db) {
    let s = scim(db, &format!("deprovision = \"delete\"\n{WIKI}")).await;
    let authenticated = |at: OffsetDateTime| latchkey_sp::jit::LoginFacts {
        authn_instant: Some(at),
        ..alice()
    };
    let (_, created) = s.call(Method::POST, "/Users", Some(&alice_user())).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let first = s.engine.login(&authenticated(t0()), t0()).await.unwrap();
    assert_eq!(first.account.id.to_string(), id);

    // The next login's assertion is verified (the person authenticated at t0 + 1 min), then
    // the IdP deletes the user, then the login's JIT write runs.
    let in_flight = authenticated(t0() + Duration::minutes(1));
    let deleted_at = t0() + Duration::minutes(2);
    *s.clock.lock().unwrap() = deleted_at;
    let (status, _) = s.call(Method::DELETE, &format!("/Users/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let later = deleted_at + Duration::seconds(5);
    // The dry run shows the refusal a login at `later` gets (and the create of one
    // authenticated after the delete), writing nothing, not even an audit event.
    let dry = s.engine.plan(&in_flight, later).await.unwrap();
    assert!(
        matches!(&dry.action, PlanAction::Refuse(r) if r.code == RefusalCode::AccountDeleted),
        "{dry:?}"
    );
    let dry = s
        .engine
        .plan(&authenticated(deleted_at + Duration::seconds(1)), later)
        .await
        .unwrap();
    assert!(matches!(dry.action, PlanAction::Create { .. }), "{dry:?}");
    assert_eq!(
        s.fx.store.audit_log(1).await.unwrap()[0].kind,
        AuditKind::ScimDeleted
    );
    for facts in [in_flight.clone(), authenticated(deleted_at), alice()] {
        match s.engine.login(&facts, later).await {
            Err(Error::Refused { refusal, .. }) => {
                assert_eq!(refusal.code, RefusalCode::AccountDeleted, "{facts:?}")
            }
            other => panic!("a login authenticated before the delete got {other:?}"),
        }
    }
    assert!(s.fx.store.accounts().await.unwrap().is_empty());
    let log = s.fx.store.audit_log(1).await.unwrap();
    assert_eq!(log[0].kind, AuditKind::Refused);
    assert_eq!(log[0].account_id, None);

    // Authenticated after the delete: a first login again, a new account.
    let fresh = s
        .engine
        .login(&authenticated(deleted_at + Duration::seconds(1)), later)
        .await
        .unwrap();
    assert_eq!(fresh.outcome, Outcome::Created);
    assert_ne!(fresh.account.id.to_string(), id);

    // Taken over by SCIM and deleted again; once the delete is forgotten, even an old
    // assertion creates.
    *s.clock.lock().unwrap() = later;
    let (_, taken) = s.call(Method::POST, "/Users", Some(&alice_user())).await;
    assert_eq!(taken["id"], fresh.account.id.to_string());
    let path = format!("/Users/{}", fresh.account.id);
    assert_eq!(
        s.call(Method::DELETE, &path, None).await.0,
        StatusCode::NO_CONTENT
    );
    let forgotten = later + latchkey_sp::scim::service::DELETED_IDENTITY_LIFETIME;
    assert!(matches!(
        s.engine
            .login(&in_flight, forgotten - Duration::seconds(1))
            .await,
        Err(Error::Refused { .. })
    ));
    let again = s.engine.login(&in_flight, forgotten).await.unwrap();
    assert_eq!(again.outcome, Outcome::Created);

    // The next delete purges what is forgotten: the table does not grow.
    *s.clock.lock().unwrap() = forgotten;
    let (_, bob) = s.call(Method::POST, "/Users", Some(&user("bob"))).await;
    let bob_path = format!("/Users/{}", bob["id"].as_str().unwrap());
    assert_eq!(
        s.call(Method::DELETE, &bob_path, None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(s.deleted_identities().await, 1, "only bob's delete is kept");

    // SCIM, the provisioning client itself, may create what it deleted at once.
    let (status, body) = s.call(Method::POST, "/Users", Some(&user("bob"))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

pub(crate) async fn groups_move_managed_roles(db: Db) {
    let s = scim(db, WIKI).await;
    let (_, alice_res) = s.call(Method::POST, "/Users", Some(&alice_user())).await;
    let (_, bob_res) = s.call(Method::POST, "/Users", Some(&user("bob"))).await;
    let alice_id = alice_res["id"].as_str().unwrap().to_owned();
    let bob_id = bob_res["id"].as_str().unwrap().to_owned();
    let alice_account = Uuid::parse_str(&alice_id).unwrap();
    let roles = |id: Uuid| {
        let store = s.fx.store.clone();
        async move { store.account(id).await.unwrap().unwrap().roles }
    };
    let (status, group) = s
        .call(
            Method::POST,
            "/Groups",
            Some(&json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "wiki-admins",
                "members": [{"value": alice_id}]
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    let gid = group["id"].as_str().unwrap().to_owned();
    // Members come back as written.
    assert_eq!(group["members"], json!([{"value": alice_id}]));
    // The contract's rules turned the group into roles, managed like a login's.
    let r = roles(alice_account).await;
    assert_eq!(r.get("admin"), Some(&RoleOrigin::Managed));
    assert_eq!(r.get("editor"), Some(&RoleOrigin::Managed));
    let (_, got) = s
        .call(Method::GET, &format!("/Users/{alice_id}"), None)
        .await;
    assert_eq!(got["groups"][0]["display"], "wiki-admins");
    // A role an admin granted by hand survives losing the group.
    s.fx.store
        .grant_manual_role(alice_account, "editor")
        .await
        .unwrap();
    // Add bob, remove alice (PATCH with a value filter).
    let (status, body) = s
        .call(
            Method::PATCH,
            &format!("/Groups/{gid}"),
            Some(&patch(json!([
                {"op": "add", "path": "members", "value": [{"value": bob_id}]},
                {"op": "remove", "path": format!("members[value eq \"{alice_id}\"]")}
            ]))),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["members"].as_array().unwrap().len(), 1);
    let r = roles(alice_account).await;
    assert!(!r.contains_key("admin"), "{r:?}");
    assert_eq!(r.get("editor"), Some(&RoleOrigin::Manual));
    assert!(
        roles(Uuid::parse_str(&bob_id).unwrap())
            .await
            .contains_key("admin")
    );
    let kinds = s.audit_kinds().await;
    assert!(kinds.contains(&(AuditKind::ScimGroup, Some("test-idp".to_owned()))));
    assert!(kinds.contains(&(AuditKind::ScimUpdated, Some("test-idp".to_owned()))));
    // Filters and uniqueness on groups.
    let (_, found) = s
        .call(
            Method::GET,
            "/Groups?filter=displayName%20eq%20%22WIKI-ADMINS%22",
            None,
        )
        .await;
    assert_eq!(found["totalResults"], 1);
    let (status, body) = s
        .call(
            Method::POST,
            "/Groups",
            Some(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Wiki-Admins"})),
        )
        .await;
    assert_eq!(
        (status, err_type(&body)),
        (StatusCode::CONFLICT, "uniqueness")
    );
    let (status, body) = s
        .call(
            Method::POST,
            "/Groups",
            Some(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "x", "members": [{"value": Uuid::new_v4().to_string()}]})),
        )
        .await;
    assert_eq!(
        (status, err_type(&body)),
        (StatusCode::BAD_REQUEST, "invalidValue")
    );
    // Renaming the group out of the rules takes bob's role; deleting it is then a no-op for roles.
    let (status, _) = s
        .call(
            Method::PUT,
            &format!("/Groups/{gid}"),
            Some(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "former-admins", "members": [{"value": bob_id}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !roles(Uuid::parse_str(&bob_id).unwrap())
            .await
            .contains_key("admin")
    );
    assert_eq!(
        s.call(Method::DELETE, &format!("/Groups/{gid}"), None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.call(Method::GET, &format!("/Groups/{gid}"), None).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, got) = s.call(Method::GET, &format!("/Users/{bob_id}"), None).await;
    assert!(got.get("groups").is_none());
}

pub(crate) async fn a_jit_account_is_taken_over_by_scim(db: Db) {
    let s = scim(db, WIKI).await;
    let login = s.engine.login(&alice(), t0()).await.unwrap();
    assert_eq!(login.outcome, Outcome::Created);
    let (status, body) = s.call(Method::POST, "/Users", Some(&alice_user())).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["id"], login.account.id.to_string().as_str());
    assert_eq!(s.fx.store.accounts().await.unwrap().len(), 1);
}

pub(crate) async fn discovery(db: Db) {
    let s = scim(db, WIKI).await;
    let (status, spc) = s.call(Method::GET, "/ServiceProviderConfig", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(spc["filter"]["supported"], true);
    let (_, schemas) = s.call(Method::GET, "/Schemas", None).await;
    assert_eq!(schemas["totalResults"], 3);
    let (status, _) = s
        .call(
            Method::GET,
            "/Schemas/urn:ietf:params:scim:schemas:core:2.0:Group",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, types) = s.call(Method::GET, "/ResourceTypes", None).await;
    assert_eq!(types["totalResults"], 2);
    let (status, user) = s.call(Method::GET, "/ResourceTypes/User", None).await;
    assert_eq!(
        (status, user["endpoint"].as_str()),
        (StatusCode::OK, Some("/Users"))
    );
    assert_eq!(
        s.call(Method::GET, "/ResourceTypes/Nope", None).await.0,
        StatusCode::NOT_FOUND
    );
    for (path, status) in [
        ("/Bulk", StatusCode::NOT_IMPLEMENTED),
        ("/Groups/.search", StatusCode::NOT_IMPLEMENTED),
        ("/Nope", StatusCode::NOT_FOUND),
    ] {
        assert_eq!(
            s.call(Method::POST, path, Some(&json!({}))).await.0,
            status,
            "{path}"
        );
    }
}

crate::on_both_backends!(
    create_get_and_the_account_behind_it,
    authentication_is_required,
    list_filter_page_and_sort,
    put_patch_and_etags,
    bad_input_writes_nothing,
    a_contract_refusal_is_audited_and_writes_nothing,
    deactivation_ends_sessions_and_refuses_logins,
    delete_follows_the_contract,
    a_login_in_flight_does_not_undo_a_delete,
    groups_move_managed_roles,
    a_jit_account_is_taken_over_by_scim,
    discovery,
);

pub(crate) async fn a_dry_run_plans_without_writing(db: Db) {
    let fx = fixture(db).await;
    let engine = JitEngine::new(contract(WIKI), fx.store.clone());
    let settings = ScimSettings {
        tokens: vec![],
        base_url: None,
        idp_entity_id: None,
        name_id: "externalId".to_owned(),
        attributes: Default::default(),
    };
    let service = ScimService::new(engine, &settings, IDP, "https://app.example/scim/v2").unwrap();
    let plan = service.plan_user(&alice_user(), t0()).await.unwrap();
    match &plan.action {
        PlanAction::Create { fields, roles } => {
            assert_eq!(fields["email"], "Alice@Example.org");
            assert!(roles.is_empty());
        }
        other => panic!("{other:?}"),
    }
    assert!(fx.store.accounts().await.unwrap().is_empty());
    assert!(fx.store.audit_log(10).await.unwrap().is_empty());
    let mut bad = alice_user();
    bad.as_object_mut().unwrap().remove("emails");
    match service.plan_user(&bad, t0()).await.unwrap().action {
        PlanAction::Refuse(r) => assert_eq!(r.code, RefusalCode::RequiredAttributeMissing),
        other => panic!("{other:?}"),
    }
}

crate::on_both_backends!(a_dry_run_plans_without_writing);
