//! Every console route, under every role, against the one `Permission` table: each route
//! names the permission its handler asks for, and admin, helpdesk, auditor and a user with
//! no role get exactly what `Role::permits` says (the page or the change, else 403 with
//! nothing written). Every POST refuses a missing or foreign anti-forgery token. The table
//! is checked against the routes `console/mod.rs` declares, so a new route cannot be left
//! out.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use latchkey_idp::Actor;
use latchkey_idp::console::{Permission, Role, RoleSet};
use latchkey_idp::tokens::ApiTokens;

use super::console::{csrf, person, refused, signed_in, written};
use super::support::*;

/// One route: method, the pattern as the router declares it, the permission its handler
/// asks for, the path to request and the form to send.
struct Route {
    method: &'static str,
    pattern: &'static str,
    permission: Permission,
    path: String,
    fields: Vec<(&'static str, String)>,
}

fn get(pattern: &'static str, permission: Permission, path: String) -> Route {
    Route {
        method: "GET",
        pattern,
        permission,
        path,
        fields: Vec::new(),
    }
}

fn post(
    pattern: &'static str,
    permission: Permission,
    path: String,
    fields: &[(&'static str, &str)],
) -> Route {
    Route {
        method: "POST",
        pattern,
        permission,
        path,
        fields: fields.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
    }
}

/// What a role may do, from the one table; `None` is a user with no role.
fn allows(role: Option<Role>, permission: Permission) -> bool {
    RoleSet::new(role).allows(permission)
}

/// The routes of a seeded IdP, in an order whose changes do not undo each other's
/// preconditions (join before leave, grant before revoke).
async fn routes(idp: &Idp) -> Vec<Route> {
    use Permission as P;
    let carol = person(idp, "carol", None).await;
    person(idp, "dave", None).await;
    let staff = idp.store.groups().lookup("staff").await.unwrap();
    let doomed = idp
        .store
        .groups()
        .create(
            &Actor::system(),
            latchkey_idp::directory::NewGroup {
                name: "doomed".into(),
                description: None,
            },
        )
        .await
        .unwrap();
    let (token, _) = ApiTokens::new(&idp.store)
        .create(&Actor::system(), "ci")
        .await
        .unwrap();
    let seq = idp.store.audit().list(&Default::default()).await.unwrap()[0].seq;
    let user = format!("/admin/users/{}", carol.id);
    let group = format!("/admin/groups/{}", staff.id);
    let app = format!("/admin/apps/{}", idp.app.id);
    vec![
        get("/admin", P::ReadDirectory, "/admin".into()),
        get("/admin/users", P::ReadDirectory, "/admin/users?q=c".into()),
        get("/admin/users/new", P::WriteUsers, "/admin/users/new".into()),
        get("/admin/users/{id}", P::ReadDirectory, user.clone()),
        get("/admin/groups", P::ReadDirectory, "/admin/groups".into()),
        get("/admin/groups/{id}", P::ReadDirectory, group.clone()),
        get("/admin/apps", P::ReadApps, "/admin/apps".into()),
        get(
            "/admin/apps/{id}",
            P::ReadApps,
            format!("/admin/apps/{}", idp.app.id),
        ),
        get("/admin/keys", P::ReadApps, "/admin/keys".into()),
        get("/admin/apps/new", P::WriteApps, "/admin/apps/new".into()),
        get(
            "/admin/apps/new/{template}",
            P::WriteApps,
            "/admin/apps/new/latchkey-wiki".into(),
        ),
        get(
            "/admin/preview",
            P::ReadDirectory,
            format!("/admin/preview?user=alice&app={}", idp.app.id),
        ),
        get("/admin/roles", P::ReadDirectory, "/admin/roles".into()),
        get("/admin/tokens", P::ReadApps, "/admin/tokens".into()),
        get(
            "/admin/audit",
            P::ReadAudit,
            "/admin/audit?event=user.create".into(),
        ),
        get(
            "/admin/audit/export",
            P::ReadAudit,
            "/admin/audit/export?format=csv".into(),
        ),
        get(
            "/admin/audit/{seq}",
            P::ReadAudit,
            format!("/admin/audit/{seq}"),
        ),
        post(
            "/admin/users",
            P::WriteUsers,
            "/admin/users".into(),
            &[("username", "erin"), ("email", "erin@example.org")],
        ),
        post(
            "/admin/users/{id}",
            P::WriteUsers,
            user.clone(),
            &[
                ("username", "carol"),
                ("email", "carol@example.org"),
                ("display_name", "Carol C"),
            ],
        ),
        post(
            "/admin/users/{id}/attributes",
            P::WriteUsers,
            format!("{user}/attributes"),
            &[("name", "department"), ("values", "sales\nsupport")],
        ),
        post(
            "/admin/users/{id}/attributes/remove",
            P::WriteUsers,
            format!("{user}/attributes/remove"),
            &[("name", "department")],
        ),
        post(
            "/admin/users/{id}/suspend",
            P::WriteUsers,
            format!("{user}/suspend"),
            &[],
        ),
        post(
            "/admin/users/{id}/resume",
            P::WriteUsers,
            format!("{user}/resume"),
            &[],
        ),
        post(
            "/admin/users/{id}/password",
            P::WriteUsers,
            format!("{user}/password"),
            &[("password", "a new password 123")],
        ),
        post(
            "/admin/users/{id}/sessions",
            P::WriteUsers,
            format!("{user}/sessions"),
            &[],
        ),
        post(
            "/admin/users/{id}/invitation",
            P::WriteUsers,
            format!("{user}/invitation"),
            &[],
        ),
        post(
            "/admin/users/{id}/factors/reset",
            P::WriteUsers,
            format!("{user}/factors/reset"),
            &[],
        ),
        post(
            "/admin/users/{id}/groups",
            P::WriteGroupMembers,
            format!("{user}/groups"),
            &[("group", "staff")],
        ),
        post(
            "/admin/users/{id}/groups/remove",
            P::WriteGroupMembers,
            format!("{user}/groups/remove"),
            &[("group", "staff")],
        ),
        post(
            "/admin/groups",
            P::WriteGroups,
            "/admin/groups".into(),
            &[("name", "another-group")],
        ),
        post(
            "/admin/groups/{id}/name",
            P::WriteGroups,
            format!("{group}/name"),
            // A change of case only: later rows still find it as `staff`.
            &[("name", "Staff")],
        ),
        post(
            "/admin/groups/{id}/delete",
            P::WriteGroups,
            format!("/admin/groups/{}/delete", doomed.id),
            &[("confirm", "yes")],
        ),
        post(
            "/admin/groups/{id}/members",
            P::WriteGroupMembers,
            format!("{group}/members"),
            &[("user", "dave")],
        ),
        post(
            "/admin/groups/{id}/members/remove",
            P::WriteGroupMembers,
            format!("{group}/members/remove"),
            &[("user", "dave")],
        ),
        post(
            "/admin/apps",
            P::WriteApps,
            "/admin/apps".into(),
            &[
                ("entity_id", "https://new.example.org"),
                ("acs_url", "https://new.example.org/acs"),
                ("acs_binding", "post"),
                ("name_id_format", "persistent"),
            ],
        ),
        post(
            "/admin/apps/new/{template}",
            P::WriteApps,
            "/admin/apps/new/latchkey-wiki".into(),
            &[("param-wiki_base_url", "https://wiki2.example.org")],
        ),
        post(
            "/admin/apps/{id}",
            P::WriteApps,
            app.clone(),
            &[
                ("name", "Renamed"),
                ("name_id_format", "persistent"),
                ("name_id_source", "pairwise"),
                ("sign_response", "on"),
                ("sign_assertion", "on"),
            ],
        ),
        // The seeded app opens to staff: remove, then give it back.
        post(
            "/admin/apps/{id}/access/remove",
            P::WriteApps,
            format!("{app}/access/remove"),
            &[("group", "staff")],
        ),
        post(
            "/admin/apps/{id}/access",
            P::WriteApps,
            format!("{app}/access"),
            &[("group", "staff")],
        ),
        post(
            "/admin/apps/{id}/mfa",
            P::WriteApps,
            format!("{app}/mfa"),
            &[("require_mfa", "on"), ("mfa_class", "refeds")],
        ),
        // Connect, then disconnect, so each write succeeds for the role that may.
        post(
            "/admin/apps/{id}/scim",
            P::WriteApps,
            format!("{app}/scim"),
            &[
                ("scim_url", "https://scim.sp.test/v2"),
                ("scim_token", "route-table-token-0123456789abcdef"),
            ],
        ),
        post(
            "/admin/apps/{id}/scim/remove",
            P::WriteApps,
            format!("{app}/scim/remove"),
            &[],
        ),
        post(
            "/admin/keys/rotate",
            P::WriteKeys,
            "/admin/keys/rotate".into(),
            &[("algorithm", "rsa2048")],
        ),
        post(
            "/admin/keys/activate",
            P::WriteKeys,
            "/admin/keys/activate".into(),
            &[("force", "on")],
        ),
        post(
            "/admin/tokens",
            P::WriteTokens,
            "/admin/tokens".into(),
            &[("name", "terraform")],
        ),
        post(
            "/admin/tokens/revoke",
            P::WriteTokens,
            "/admin/tokens/revoke".into(),
            &[("token", token.id.as_str())],
        ),
        post(
            "/admin/roles",
            P::WriteRoles,
            "/admin/roles".into(),
            &[("role", "auditor"), ("kind", "user"), ("holder", "carol")],
        ),
        post(
            "/admin/roles/revoke",
            P::WriteRoles,
            "/admin/roles/revoke".into(),
            &[("role", "auditor"), ("kind", "user"), ("holder", "carol")],
        ),
    ]
}

/// The (method, pattern) pairs the console routes: `console/mod.rs` and the areas that
/// declare their own (`apps.rs`, `keys.rs`).
fn declared_routes() -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for source in [
        include_str!("../../src/console/mod.rs"),
        include_str!("../../src/console/apps.rs"),
        include_str!("../../src/console/keys.rs"),
    ] {
        for chunk in source.split(".route(").skip(1) {
            let start = chunk.find('"').unwrap() + 1;
            let end = chunk[start..].find('"').unwrap() + start;
            let pattern = &chunk[start..end];
            // The handlers of this route: up to the next route or the end of the builder.
            let body = &chunk[end..chunk.find("\n}").unwrap_or(chunk.len())];
            for (call, method) in [("get(", "GET"), ("post(", "POST")] {
                if body.contains(call) {
                    out.insert((method.to_owned(), pattern.to_owned()));
                }
            }
        }
    }
    out
}

/// Routes whose forms this table cannot send as a plain form that succeeds, checked for
/// every role and for the anti-forgery token in `console_apps`
/// (`only_an_admin_changes_applications_and_keys`,
/// `a_missing_or_foreign_anti_forgery_token_is_refused`): the multipart upload, and the
/// metadata URL, which needs a server to fetch from.
const CHECKED_IN_CONSOLE_APPS: [(&str, &str); 2] = [
    ("POST", "/admin/apps/new/upload"),
    ("POST", "/admin/apps/new/metadata"),
];

#[tokio::test]
async fn the_table_names_every_console_route() {
    let idp = idp().await;
    let listed: BTreeSet<(String, String)> = routes(&idp)
        .await
        .iter()
        .map(|r| (r.method.to_owned(), r.pattern.to_owned()))
        .chain(
            CHECKED_IN_CONSOLE_APPS
                .iter()
                .map(|(m, p)| ((*m).to_owned(), (*p).to_owned())),
        )
        .collect();
    let declared = declared_routes();
    assert!(declared.len() > 20, "{declared:?}");
    assert_eq!(
        listed, declared,
        "console routes and this test's table differ"
    );
}

#[tokio::test]
async fn every_role_gets_exactly_what_the_permission_table_says() {
    let roles = [
        ("root", Some(Role::Admin)),
        ("hd", Some(Role::Helpdesk)),
        ("aud", Some(Role::Auditor)),
        ("plain", None),
    ];
    for (name, role) in roles {
        // A fresh directory per role, so each one's changes start from the same state.
        let idp = idp().await;
        person(&idp, name, role).await;
        let table = routes(&idp).await;
        let mut b = signed_in(&idp, name).await;
        let token = csrf(&mut b).await;
        for r in &table {
            let before = written(&idp).await;
            let page = if r.method == "GET" {
                b.get(&r.path).await
            } else {
                let mut form: Vec<(&str, &str)> =
                    r.fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
                form.push(("csrf", &token));
                b.post(&r.path, &form).await
            };
            let what = format!("{name} {} {}", r.method, r.path);
            if allows(role, r.permission) {
                let ok = if r.method == "GET" {
                    vec![StatusCode::OK]
                } else {
                    vec![StatusCode::SEE_OTHER, StatusCode::OK]
                };
                assert!(
                    ok.contains(&page.status),
                    "{what}: {} {}",
                    page.status,
                    page.body
                );
                if r.method == "POST" {
                    assert!(
                        written(&idp).await.1 > before.1,
                        "{what} wrote no audit line"
                    );
                }
            } else {
                // Refused by the permission table: the page's audit event (an operator's),
                // and nothing else.
                let path = r.path.split('?').next().unwrap_or_default();
                refused(&idp, before, &page, name, path, "permission").await;
            }
        }
    }
}

#[tokio::test]
async fn every_post_refuses_a_missing_or_foreign_anti_forgery_token() {
    let idp = idp().await;
    person(&idp, "root", Some(Role::Admin)).await;
    person(&idp, "other", Some(Role::Admin)).await;
    let table = routes(&idp).await;
    let mut b = signed_in(&idp, "root").await;
    let mut other = signed_in(&idp, "other").await;
    let foreign = csrf(&mut other).await;
    let before = written(&idp).await;
    for r in table.iter().filter(|r| r.method == "POST") {
        for token in [None, Some(""), Some(foreign.as_str())] {
            let mut form: Vec<(&str, &str)> =
                r.fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            if let Some(t) = token {
                form.push(("csrf", t));
            }
            let page = b.post(&r.path, &form).await;
            assert_eq!(page.status, StatusCode::FORBIDDEN, "{} {token:?}", r.path);
            assert_eq!(page.error_code(), Some("WEB-CSRF"), "{} {token:?}", r.path);
        }
    }
    assert_eq!(written(&idp).await, before);
}
