//! The wiki: e-mail NameID, roles from groups, JIT creation and updates shown to the person.

use axum::http::StatusCode;
use latchkey_demo_apps::AppKind;

use crate::support::*;

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

#[tokio::test]
async fn first_login_creates_the_account_and_whoami_shows_it() {
    let t = app(AppKind::Wiki, "").await;
    assert!(t.app.store().accounts().await.unwrap().is_empty());
    assert_eq!(whoami(&t, None).await["authenticated"], false);

    let reply = sp_initiated(&t, ada(&["wiki-editors"])).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(reply.location.as_deref(), Some("/"));
    let set_cookie = reply.set_cookie.clone().unwrap();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"));
    let cookie = reply.cookie();

    let me = whoami(&t, Some(&cookie)).await;
    assert_eq!(me["authenticated"], true);
    assert_eq!(me["issuer"], IDP);
    assert_eq!(me["name_id"], "ada@example.org");
    assert_eq!(me["name_id_format"], EMAIL_FORMAT);
    assert_eq!(me["session_index"], "_session-1");
    assert!(me["assertion_id"].as_str().unwrap().starts_with("_a"));
    assert_eq!(me["attributes"]["groups"][0], "wiki-editors");
    assert_eq!(me["account"]["role"], "editor");
    assert_eq!(me["account"]["fields"]["display_name"], "Ada Lovelace");
    assert_eq!(me["account"]["provisioned_by"], "jit");
    assert_eq!(
        me["provisioning"],
        "created just now from your Latchkey login"
    );

    let accounts = t.app.store().accounts().await.unwrap();
    assert_eq!(accounts.len(), 1);
    assert_eq!(me["account"]["id"], accounts[0].id.to_string());

    let home = get(&t, "/", Some(&cookie)).await;
    assert!(
        home.body
            .contains("created just now from your Latchkey login")
    );
    assert!(home.body.contains("<span class=\"role\">editor</span>"));
}

#[tokio::test]
async fn role_change_is_applied_and_described() {
    let t = app(AppKind::Wiki, "").await;
    sp_initiated(&t, ada(&["wiki-editors"])).await;
    let reply = sp_initiated(&t, ada(&["wiki-admins"])).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let me = whoami(&t, Some(&reply.cookie())).await;
    assert_eq!(me["account"]["role"], "admin");
    assert_eq!(me["provisioning"], "updated: role editor -> admin");
    assert_eq!(t.app.store().accounts().await.unwrap().len(), 1);
}

#[tokio::test]
async fn engineering_members_are_readers() {
    let t = app(AppKind::Wiki, "").await;
    let reply = sp_initiated(&t, ada(&["engineering"])).await;
    let me = whoami(&t, Some(&reply.cookie())).await;
    assert_eq!(me["account"]["role"], "reader");
}

#[tokio::test]
async fn admin_page_lists_jit_accounts_for_admins_only() {
    let t = app(AppKind::Wiki, "").await;
    let reader = sp_initiated(&t, ada(&["engineering"])).await.cookie();
    let refused = get(&t, "/admin", Some(&reader)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.error_code(), "ADMIN_ROLE_REQUIRED");

    let mut grace = Login::new(
        "grace@example.org",
        EMAIL_FORMAT,
        &[("groups", &["wiki-admins"])],
    );
    grace
        .attributes
        .push(("email".into(), vec!["grace@example.org".into()]));
    let admin = sp_initiated(&t, grace).await.cookie();
    let page = get(&t, "/admin", Some(&admin)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("ada@example.org"));
    assert!(page.body.contains("grace@example.org"));
    assert!(page.body.contains("jit.created"));

    let anonymous = get(&t, "/admin", None).await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert!(anonymous.location.unwrap().starts_with(SSO));
}

#[tokio::test]
async fn login_returns_to_local_paths_only() {
    let t = app(AppKind::Wiki, "").await;
    let reply = get(&t, "/login?return_to=https://evil.example/", None).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    let pending = t.app.sp().pending().count().await.unwrap();
    assert_eq!(pending, 1);
    // Answer that login: the ACS must send the browser home, not to the foreign URL.
    let location = reply.location.unwrap();
    let query = location.split_once('?').unwrap().1;
    let message = latchkey_saml::binding::redirect::decode(query, &Default::default()).unwrap();
    let request = latchkey_saml::authn_request::AuthnRequest::parse(&message.xml).unwrap();
    let mut login = ada(&["engineering"]);
    login.in_response_to = Some(request.id);
    let done = post_acs(&t, &login.response_xml(&t), message.relay_state.as_deref()).await;
    assert_eq!(done.location.as_deref(), Some("/"));
}

/// Where an ACS sends the browser for each `return_to` a link can carry: a path of ours
/// goes through (non-ASCII percent-encoded, so it is a valid `Location`), anything that
/// could leave the site or split the header goes home; never a server error.
#[tokio::test]
async fn every_return_to_ends_on_a_local_location_and_never_a_server_error() {
    let t = app(AppKind::Wiki, "").await;
    for (return_to, expected) in [
        ("/wiki/Caf%C3%A9", "/wiki/Caf%C3%A9"),
        ("/wiki/a%20b", "/wiki/a%20b"),
        ("//evil.example/", "/"),
        ("/%5Cevil.example/", "/"),
        ("https:evil.example", "/"),
        ("%2F%2Fevil.example", "/"),
        ("/%0D%0ASet-Cookie:%20x=1", "/"),
        ("/%09/evil.example", "/"),
    ] {
        let reply = get(&t, &format!("/login?return_to={return_to}"), None).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{return_to}");
        let location = reply.location.unwrap();
        let query = location.split_once('?').unwrap().1;
        let message = latchkey_saml::binding::redirect::decode(query, &Default::default()).unwrap();
        let request = latchkey_saml::authn_request::AuthnRequest::parse(&message.xml).unwrap();
        let mut login = ada(&["engineering"]);
        login.in_response_to = Some(request.id);
        let done = post_acs(&t, &login.response_xml(&t), message.relay_state.as_deref()).await;
        assert_eq!(
            done.status,
            StatusCode::SEE_OTHER,
            "{return_to}: {}",
            done.body
        );
        assert_eq!(done.location.as_deref(), Some(expected), "{return_to}");
    }
}

#[tokio::test]
async fn metadata_names_the_acs_and_entity() {
    let t = app(AppKind::Wiki, "").await;
    let reply = get(&t, "/saml/metadata", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let md = latchkey_saml::metadata::parse_metadata(&reply.body, &Default::default()).unwrap();
    let entity = md.find(&t.entity_id).unwrap();
    let sp = entity.sp.as_ref().unwrap();
    assert_eq!(sp.acs(None).unwrap().location, t.acs);
}

#[tokio::test]
async fn logout_ends_the_session() {
    let t = app(AppKind::Wiki, "").await;
    let cookie = sp_initiated(&t, ada(&["engineering"])).await.cookie();
    let reply = send(
        &t,
        axum::http::Request::post("/logout")
            .header("cookie", &cookie)
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(whoami(&t, Some(&cookie)).await["authenticated"], false);
}

/// Sign-out is a POST from our own page: one another site posts (a cross-site form, told by
/// `Sec-Fetch-Site` or, without it, by `Origin`) signs nobody out and clears no cookie.
#[tokio::test]
async fn a_sign_out_posted_from_another_site_changes_nothing() {
    let t = app(AppKind::Wiki, "").await;
    let cookie = sp_initiated(&t, ada(&["engineering"])).await.cookie();
    for (name, value) in [
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
        ("origin", "https://evil.example"),
        ("origin", "null"),
    ] {
        let reply = send(
            &t,
            axum::http::Request::post("/logout")
                .header("cookie", &cookie)
                .header("host", "wiki.test")
                .header(name, value)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{name}: {value}");
        assert_eq!(reply.set_cookie, None, "{name}: {value}");
        assert_eq!(
            whoami(&t, Some(&cookie)).await["authenticated"],
            true,
            "{name}: {value}"
        );
    }
    // From our own page it signs out.
    let reply = send(
        &t,
        axum::http::Request::post("/logout")
            .header("cookie", &cookie)
            .header("host", "wiki.test")
            .header("origin", "http://wiki.test")
            .header("sec-fetch-site", "same-origin")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert!(reply.set_cookie.unwrap().contains("Max-Age=0"));
    assert_eq!(whoami(&t, Some(&cookie)).await["authenticated"], false);
}

#[tokio::test]
async fn pages_carry_a_strict_csp_and_no_script() {
    let t = app(AppKind::Wiki, "").await;
    let response = tower::ServiceExt::oneshot(
        t.router.clone(),
        axum::http::Request::get("/")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"));
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    assert!(!String::from_utf8_lossy(&body).contains("<script"));
}

#[tokio::test]
async fn unchanged_login_says_so() {
    let t = app(AppKind::Wiki, "").await;
    sp_initiated(&t, ada(&["engineering"])).await;
    let reply = sp_initiated(&t, ada(&["engineering"])).await;
    let me = whoami(&t, Some(&reply.cookie())).await;
    assert_eq!(
        me["provisioning"],
        "up to date: nothing changed at this login"
    );
}

#[tokio::test]
async fn asserted_values_are_escaped_in_pages() {
    let t = app(AppKind::Wiki, "").await;
    let login = Login::new(
        "eve@example.org",
        EMAIL_FORMAT,
        &[
            ("displayName", &["<script>alert(1)</script>"]),
            ("groups", &["engineering", "\"><img src=x>"]),
        ],
    );
    let cookie = sp_initiated(&t, login).await.cookie();
    let home = get(&t, "/", Some(&cookie)).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(!home.body.contains("<script>"));
    assert!(!home.body.contains("<img src=x>"));
    assert!(
        home.body
            .contains("&#60;script&#62;alert(1)&#60;/script&#62;")
    );
    assert!(home.body.contains("&#34;&#62;&#60;img src=x&#62;"));
}

/// The `href` of a page's stylesheet link.
fn stylesheet_href(body: &str) -> String {
    let marker = "<link rel=\"stylesheet\" href=\"";
    let at = body.find(marker).unwrap_or_else(|| panic!("{body}")) + marker.len();
    let end = body[at..].find('"').unwrap() + at;
    body[at..end].to_owned()
}

#[tokio::test]
async fn pages_share_one_hashed_stylesheet_and_carry_no_inline_code() {
    let t = app(AppKind::Wiki, "").await;
    let anonymous = get(&t, "/", None).await;
    let admin = sp_initiated(&t, ada(&["wiki-admins"])).await.cookie();
    let reader = sp_initiated(
        &t,
        Login::new(
            "bo@example.org",
            EMAIL_FORMAT,
            &[("groups", &["engineering"])],
        ),
    )
    .await
    .cookie();
    let pages = [
        ("welcome", anonymous),
        ("home", get(&t, "/", Some(&admin)).await),
        ("admin", get(&t, "/admin", Some(&admin)).await),
        ("refused", get(&t, "/admin", Some(&reader)).await),
    ];
    let href = stylesheet_href(&pages[0].1.body);
    let hash = href
        .strip_prefix("/static/demo.")
        .and_then(|h| h.strip_suffix(".css"))
        .unwrap_or_else(|| panic!("{href}"));
    assert_eq!(hash.len(), 16, "{href}");
    for (what, page) in &pages {
        assert_eq!(stylesheet_href(&page.body), href, "{what}");
        assert!(!page.body.contains("style="), "{what}: {}", page.body);
        assert!(!page.body.contains("<style"), "{what}: {}", page.body);
        assert!(!page.body.contains("<script"), "{what}: {}", page.body);
    }
    let css = get(&t, &href, None).await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(
        css.cache_control.as_deref(),
        Some("public, max-age=31536000, immutable")
    );
    assert!(css.body.contains(".card{"));
    for stale in ["/style.css", "/static/demo.0000000000000000.css"] {
        assert_eq!(
            get(&t, stale, None).await.status,
            StatusCode::NOT_FOUND,
            "{stale}"
        );
    }
}

/// `[sp.audit] retain_days`: the app purges, on its own clock, the events older than that,
/// and records the purge; without it the app keeps every event.
#[tokio::test]
async fn audit_retention_purges_old_events_on_the_apps_clock() {
    use latchkey_sp::jit::{PlanAction, ProvisioningPlan};
    use latchkey_sp::store::{AccountStore, AccountTx, AuditEvent, AuditKind};

    for (settings, retained) in [("", false), ("[sp.audit]\nretain_days = 30", true)] {
        let t = app(AppKind::Wiki, settings).await;
        let long_ago = NOW - time::Duration::days(31);
        let mut tx = t.app.store().begin().await.unwrap();
        tx.append_audit(&AuditEvent {
            id: AuditEvent::id_at(long_ago),
            operation_id: uuid::Uuid::new_v4(),
            at: long_ago,
            kind: AuditKind::Unchanged,
            account_id: None,
            idp_entity_id: IDP.to_owned(),
            identity_key: None,
            session_index: None,
            actor: None,
            plan: ProvisioningPlan {
                identity: None,
                action: PlanAction::Unchanged {
                    account_id: uuid::Uuid::nil(),
                },
            },
        })
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let reply = sp_initiated(&t, ada(&["wiki-editors"])).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);

        let purge = t.app.purge_audit().await.unwrap();
        let kinds: Vec<AuditKind> = t
            .app
            .store()
            .audit_log(10)
            .await
            .unwrap()
            .iter()
            .map(|e| e.kind)
            .collect();
        if retained {
            assert_eq!(purge.map(|p| p.events), Some(1));
            assert_eq!(kinds, [AuditKind::Created, AuditKind::Purged]);
        } else {
            assert_eq!(purge, None);
            assert_eq!(kinds, [AuditKind::Unchanged, AuditKind::Created]);
        }
    }
}

/// `[sp.audit] unchanged_logins = "log_only"`: the app's second, unchanged login is not an
/// audit event; by default it is.
#[tokio::test]
async fn unchanged_logins_follow_the_apps_audit_setting() {
    use latchkey_sp::store::AuditKind;

    for (settings, recorded) in [
        ("", true),
        ("[sp.audit]\nunchanged_logins = \"log_only\"", false),
    ] {
        let t = app(AppKind::Wiki, settings).await;
        for _ in 0..2 {
            let reply = sp_initiated(&t, ada(&["wiki-editors"])).await;
            assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        }
        let kinds: Vec<AuditKind> = t
            .app
            .store()
            .audit_log(10)
            .await
            .unwrap()
            .iter()
            .map(|e| e.kind)
            .collect();
        if recorded {
            assert_eq!(
                kinds,
                [AuditKind::Created, AuditKind::Unchanged],
                "{settings}"
            );
        } else {
            assert_eq!(kinds, [AuditKind::Created], "{settings}");
        }
    }
}
