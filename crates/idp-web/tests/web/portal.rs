//! The portal and IdP-initiated sign-in.

use axum::http::StatusCode;
use latchkey_idp::apps::NewApplication;
use latchkey_idp::{Actor, Clock};

use super::support::*;

#[tokio::test]
async fn portal_shows_exactly_the_assigned_apps() {
    let idp = idp().await;
    // An app nobody is assigned to.
    idp.store
        .apps()
        .create(
            &Actor::system(),
            NewApplication::new(
                "https://hidden.example",
                "Payroll",
                "https://hidden.example/acs",
            ),
        )
        .await
        .unwrap();
    let mut b = Browser::new(&idp);
    assert_eq!(b.get("/portal").await.location(), "/login");
    b.login("alice", PASSWORD, None).await;
    let page = b.get("/portal").await;
    // Tiles link by slug (derived from the app's name).
    assert_eq!(idp.app.settings.slug, "wiki");
    assert!(
        page.body.contains("href=\"/saml/init/wiki\""),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("href=\"/saml/init/tracker\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("The team wiki"));
    assert!(!page.body.contains("Payroll"));

    let mut b = Browser::new(&idp);
    b.login("bob", PASSWORD, None).await;
    let page = b.get("/portal").await;
    assert!(!page.body.contains("/saml/init/"));
    assert!(
        page.body
            .contains("No applications are assigned to you yet.")
    );
}

#[tokio::test]
async fn tile_launch_sends_an_unsolicited_response_with_the_default_relay_state() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    // Signed in already: the launch is answered in the one round trip, no redirect.
    let page = b.get(&format!("/saml/init/{}", idp.app.id)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.field("RelayState").as_deref(), Some("/welcome"));
    let xml = page.saml_response();
    assert!(!xml.contains("InResponseTo"));
    let subject = sp_validate(&idp, SP, SP_ACS, &xml, None).unwrap();
    assert!(subject.in_response_to.is_none());
    // An SP that does not accept unsolicited responses refuses it: it really is one.
    let mut settings = latchkey_saml::profile::SpSettings::new(
        SP,
        SP_ACS,
        idp.settings.entity_id.clone(),
        idp.idp_keys.clone(),
    );
    settings.allow_unsolicited = false;
    assert!(
        latchkey_saml::profile::validate_response(&settings, &xml, None, idp.clock.now()).is_err()
    );
}

#[tokio::test]
async fn launch_takes_the_apps_slug_as_well_as_its_id() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    let by_slug = b.get("/saml/init/wiki").await;
    assert_eq!(by_slug.status, StatusCode::OK, "{}", by_slug.body);
    let subject = sp_validate(&idp, SP, SP_ACS, &by_slug.saml_response(), None).unwrap();
    assert!(subject.in_response_to.is_none());
    let by_id = b.get(&format!("/saml/init/{}", idp.app.id)).await;
    assert_eq!(by_id.status, StatusCode::OK, "{}", by_id.body);
    // An unknown slug, or something no slug can be, is simply not found.
    for missing in [
        "/saml/init/no-such-app",
        &format!("/saml/init/{}", "x".repeat(300)),
    ] {
        let page = b.get(missing).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{missing}");
    }
}

#[tokio::test]
async fn launch_without_a_session_signs_in_first_and_unassigned_users_are_denied() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    let first = b.get(&format!("/saml/init/{}", idp.app.id)).await;
    let cont = first.location().to_owned();
    let login = b.get(&cont).await.location().to_owned();
    let key = continue_key(&login);
    b.login("alice", PASSWORD, Some(&key)).await;
    let page = b.get(&cont).await;
    sp_validate(&idp, SP, SP_ACS, &page.saml_response(), None).unwrap();

    let mut b = Browser::new(&idp);
    b.login("bob", PASSWORD, None).await;
    let page = b.go(&format!("/saml/init/{}", idp.app.id)).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(page.error_code(), Some("SSO-DENIED"));
    assert_eq!(audit_actions(&idp, "sso.denied").await.len(), 1);

    for bad in [
        "/saml/init/not-a-uuid",
        "/saml/init/00000000-0000-0000-0000-000000000000",
        "/saml/init/%FF%FE",
    ] {
        let page = b.get(bad).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{bad}");
        assert_eq!(page.error_code(), Some("WEB-NOT-FOUND"), "{bad}");
    }
    let page = b.get("/saml/continue/%FF%FE").await;
    assert_eq!(page.error_code(), Some("WEB-NOT-FOUND"));
}

/// A login URL with every character HTML gives meaning to (the URL parser accepts them in
/// a query); the registry stores it as typed, so the portal must escape it.
const LOGIN_URL: &str = "https://sp.example.com/login?next=/a&x=<b>\"q\"'";

async fn with_login_url(idp: &Idp, url: &str) {
    idp.store
        .apps()
        .update(&Actor::system(), idp.app.id, |a| {
            a.tile.login_url = Some(url.into())
        })
        .await
        .unwrap();
}

/// The `href` of the portal tile whose text holds `name`.
fn tile_href<'p>(page: &'p str, name: &str) -> &'p str {
    let tile = page
        .split("<li>")
        .find(|li| li.contains(&format!("<strong class=\"tile-name\">{name}</strong>")))
        .unwrap_or_else(|| panic!("no tile for {name}: {page}"));
    let start = tile.find("<a href=\"").unwrap() + "<a href=\"".len();
    let end = tile[start..].find('"').unwrap() + start;
    &tile[start..end]
}

#[tokio::test]
async fn a_tile_with_a_login_url_links_there_escaped_and_the_others_launch_idp_initiated() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    let page = b.get("/portal").await;
    assert_eq!(
        tile_href(&page.body, "Wiki"),
        format!("/saml/init/{}", idp.app.settings.slug)
    );

    with_login_url(&idp, LOGIN_URL).await;
    let page = b.get("/portal").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        tile_href(&page.body, "Wiki"),
        "https://sp.example.com/login?next=/a&#38;x=&#60;b&#62;&#34;q&#34;&#39;"
    );
    assert!(!page.body.contains("<b>"), "{}", page.body);
    assert!(
        !page
            .body
            .contains(&format!("/saml/init/{}", idp.app.settings.slug)),
        "{}",
        page.body
    );
    // The app without one still launches IdP-initiated.
    assert_eq!(
        tile_href(&page.body, "Tracker"),
        format!("/saml/init/{}", idp.signed_app.settings.slug)
    );
    // Following a link is not something the portal's CSP restricts (form-action covers
    // forms; there is no navigate-to): the policy is the strict default, unchanged.
    let csp = page.headers[axum::http::header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("form-action 'self'"), "{csp}");
    assert!(!csp.contains("navigate-to"), "{csp}");

    // Cleared, the tile launches IdP-initiated again.
    idp.store
        .apps()
        .update(&Actor::system(), idp.app.id, |a| a.tile.login_url = None)
        .await
        .unwrap();
    let page = b.get("/portal").await;
    assert_eq!(
        tile_href(&page.body, "Wiki"),
        format!("/saml/init/{}", idp.app.settings.slug)
    );
}

#[tokio::test]
async fn saml_init_still_signs_in_to_an_app_with_a_login_url() {
    let idp = idp().await;
    with_login_url(&idp, "https://sp.example.com/login").await;
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    let page = b.get(&format!("/saml/init/{}", idp.app.id)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.field("RelayState").as_deref(), Some("/welcome"));
    let subject = sp_validate(&idp, SP, SP_ACS, &page.saml_response(), None).unwrap();
    assert!(subject.in_response_to.is_none());

    // And it still applies the access policy: bob is not assigned.
    let mut b = Browser::new(&idp);
    b.login("bob", PASSWORD, None).await;
    let page = b.go(&format!("/saml/init/{}", idp.app.id)).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(page.error_code(), Some("SSO-DENIED"));
}

#[tokio::test]
async fn a_login_url_the_rules_refuse_is_not_stored_and_the_tile_is_unchanged() {
    let idp = idp().await;
    for bad in [
        "javascript:alert(document.cookie)",
        "data:text/html,<script>alert(1)</script>",
        "/saml/init/x",
        "http://sp.example.com/login",
        "https://admin:pw@sp.example.com/login",
    ] {
        let err = idp
            .store
            .apps()
            .update(&Actor::system(), idp.app.id, |a| {
                a.tile.login_url = Some(bad.into())
            })
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                latchkey_idp::Error::InvalidField {
                    field: "login_url",
                    ..
                }
            ),
            "{bad}: {err:?}"
        );
    }
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    let page = b.get("/portal").await;
    assert_eq!(
        tile_href(&page.body, "Wiki"),
        format!("/saml/init/{}", idp.app.settings.slug)
    );
}

/// A GET of `/saml/init/{app}` as a browser sends it, with its `Sec-Fetch-Site`. `None`
/// stands for a browser that sends no usable value (the test helper would otherwise mark
/// the request same-origin, so an empty value is sent).
async fn launch_from(
    b: &mut Browser<'_>,
    app: latchkey_idp::ids::AppId,
    site: Option<&str>,
) -> Page {
    let request = axum::http::Request::get(format!("/saml/init/{app}"))
        .header("sec-fetch-site", site.unwrap_or(""))
        .body(axum::body::Body::empty())
        .unwrap();
    b.send(request).await
}

#[tokio::test]
async fn another_sites_link_gets_a_confirmation_not_an_assertion() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    for site in [Some("cross-site"), Some("same-site"), None] {
        let page = launch_from(&mut b, idp.app.id, site).await;
        assert_eq!(page.status, StatusCode::OK, "{site:?}");
        assert!(
            page.field("SAMLResponse").is_none(),
            "{site:?}: {}",
            page.body
        );
        assert!(
            page.body
                .contains(&format!("action=\"/saml/init/{}\"", idp.app.id)),
            "{}",
            page.body
        );
        assert!(page.body.contains("Continue to Wiki"));
        assert!(page.body.contains("href=\"/portal\""));
    }
    // The confirmation posts back with our anti-forgery token and gets the assertion.
    let csrf = b.cookies["latchkey_csrf"].clone();
    let page = b
        .post(
            &format!("/saml/init/{}", idp.app.id),
            &[("csrf", csrf.as_str())],
        )
        .await;
    let xml = page.saml_response();
    assert!(sp_validate(&idp, SP, SP_ACS, &xml, None).is_ok());
    // Without the token (another site posting the form) nothing is issued.
    let page = b
        .post(&format!("/saml/init/{}", idp.app.id), &[("csrf", "forged")])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(page.error_code(), Some("WEB-CSRF"));
    let page = b
        .cross_site_post(
            &format!("/saml/init/{}", idp.app.id),
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert!(page.field("SAMLResponse").is_none(), "{}", page.body);
}

#[tokio::test]
async fn our_own_pages_and_typed_addresses_launch_at_once_and_an_app_may_opt_out() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    for site in ["same-origin", "none"] {
        let page = launch_from(&mut b, idp.app.id, Some(site)).await;
        assert!(
            page.field("SAMLResponse").is_some(),
            "{site}: {}",
            page.body
        );
    }
    idp.store
        .apps()
        .update(&Actor::system(), idp.app.id, |a| {
            a.launch_without_confirmation = true;
        })
        .await
        .unwrap();
    let page = launch_from(&mut b, idp.app.id, Some("cross-site")).await;
    assert!(page.field("SAMLResponse").is_some(), "{}", page.body);
}

/// The names on the portal's tiles, in order.
fn tile_names(page: &str) -> Vec<String> {
    page.split("<strong class=\"tile-name\">")
        .skip(1)
        .map(|rest| rest.split("</strong>").next().unwrap().to_owned())
        .collect()
}

/// Twelve more applications for alice's group ("App 00" to "App 11").
async fn a_dozen_more_apps(idp: &Idp) -> Vec<latchkey_idp::ids::AppId> {
    let staff = idp
        .store
        .groups()
        .find_by_name("staff")
        .await
        .unwrap()
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..12 {
        let mut new = NewApplication::new(
            format!("https://app{i}.example.org"),
            format!("App {i:02}"),
            format!("https://app{i}.example.org/acs"),
        );
        if i == 7 {
            new.tile.description = Some("Expense reports".into());
        }
        let app = idp
            .store
            .apps()
            .create(&Actor::system(), new)
            .await
            .unwrap();
        idp.store
            .apps()
            .assign(&Actor::system(), app.id, staff.id)
            .await
            .unwrap();
        ids.push(app.id);
    }
    ids
}

#[tokio::test]
async fn past_a_dozen_apps_the_portal_searches_and_puts_the_recently_used_first() {
    let idp = idp().await;
    let ids = a_dozen_more_apps(&idp).await;
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    let page = b.get("/portal").await;
    assert!(page.body.contains("name=\"q\""), "{}", page.body);
    let mut all: Vec<String> = (0..12).map(|i| format!("App {i:02}")).collect();
    all.extend(["Tracker".to_owned(), "Wiki".to_owned()]);
    assert_eq!(tile_names(&page.body), all, "by name before any use");

    // A plain GET form: name or description, any case.
    let page = b.get("/portal?q=expense").await;
    assert_eq!(tile_names(&page.body), ["App 07"]);
    assert!(page.body.contains("value=\"expense\""), "{}", page.body);
    let page = b.get("/portal?q=WIKI").await;
    assert_eq!(tile_names(&page.body), ["Wiki"]);
    let page = b.get("/portal?q=nothing+like+it").await;
    assert!(tile_names(&page.body).is_empty());
    assert!(
        page.body.contains("No application matches"),
        "{}",
        page.body
    );

    // Used in this session: the latest first, then the rest by name.
    for app in [idp.app.id, ids[5]] {
        let posted = launch_from(&mut b, app, Some("same-origin")).await;
        assert!(posted.field("SAMLResponse").is_some(), "{}", posted.body);
        idp.clock.advance(time::Duration::seconds(5));
    }
    let names = tile_names(&b.get("/portal").await.body);
    assert_eq!(names[..3], ["App 05", "Wiki", "App 00"], "{names:?}");
    assert_eq!(names.len(), 14);
    // The search keeps that order among its matches.
    let names = tile_names(&b.get("/portal?q=app+0").await.body);
    assert_eq!(names[..2], ["App 05", "App 00"], "{names:?}");
}

#[tokio::test]
async fn a_dozen_apps_or_fewer_have_no_search_and_every_tile_has_an_icon() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    let page = b.get("/portal?q=zzz").await;
    assert!(!page.body.contains("name=\"q\""), "{}", page.body);
    assert_eq!(tile_names(&page.body), ["Tracker", "Wiki"]);
    // No icon URL: a monogram of the first letter, in a colour class.
    assert!(
        page.body.contains("monogram hue-") && page.body.contains(">W</span>"),
        "{}",
        page.body
    );
}
