//! Every page comes from a template: hostile text is escaped wherever it is shown, the
//! stylesheet is one hashed, immutable file, and no page carries inline style or a script
//! other than the SAML auto-POST's (allowed by its hash).

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use latchkey_idp::Actor;
use latchkey_idp::directory::UserPatch;
use latchkey_saml::binding::post;
use sha2::{Digest, Sha256};

use super::support::*;

/// Text that breaks out of an element or attribute if it is not escaped.
const HOSTILE: &str = "<script>alert(1)</script>\"'&<img src=x onerror=alert(2)>";

/// What askama makes of it.
fn escaped(text: &str) -> String {
    text.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

/// A GET as a browser clicking on our own pages sends it.
fn same_origin(uri: &str) -> Request<Body> {
    Request::get(uri)
        .header("sec-fetch-site", "same-origin")
        .body(Body::empty())
        .unwrap()
}

/// A GET from another site's link.
fn cross_site(uri: &str) -> Request<Body> {
    Request::get(uri)
        .header("sec-fetch-site", "cross-site")
        .body(Body::empty())
        .unwrap()
}

async fn make_hostile(idp: &Idp) {
    idp.store
        .users()
        .update(
            &Actor::system(),
            idp.alice.id,
            UserPatch {
                display_name: Some(Some(format!("Alice {HOSTILE}"))),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap();
    idp.store
        .apps()
        .update(&Actor::system(), idp.app.id, |a| {
            a.name = format!("Wiki {HOSTILE}");
            a.tile.description = Some(format!("About {HOSTILE}"));
        })
        .await
        .unwrap();
}

fn assert_escaped(what: &str, page: &Page, shown: &str) {
    assert!(
        page.body.contains(&escaped(shown)),
        "{what}: the text is not shown escaped: {}",
        page.body
    );
    assert!(
        !page.body.contains("<script>alert"),
        "{what}: {}",
        page.body
    );
    assert!(!page.body.contains("<img src=x"), "{what}: {}", page.body);
}

#[tokio::test]
async fn hostile_names_and_descriptions_are_escaped_on_every_page_that_shows_them() {
    let idp = idp().await;
    make_hostile(&idp).await;

    // The login page names the application a parked sign-in is for.
    let mut anonymous = Browser::new(&idp);
    let first = anonymous.get(&redirect_uri(&authn_request(SP), None)).await;
    let at_login = anonymous.get(first.location()).await;
    let key = continue_key(at_login.location());
    let page = anonymous.get(&format!("/login?continue={key}")).await;
    assert_escaped("login", &page, &format!("Wiki {HOSTILE}"));

    // The portal: the user's display name, the app's name and description.
    let mut alice = Browser::new(&idp);
    alice.login("alice", PASSWORD, None).await;
    let page = alice.get("/portal").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_escaped("portal name", &page, &format!("Alice {HOSTILE}"));
    assert_escaped("portal tile", &page, &format!("Wiki {HOSTILE}"));
    assert_escaped("portal description", &page, &format!("About {HOSTILE}"));

    // The launch confirmation for another site's link.
    let page = alice
        .send(cross_site(&format!("/saml/init/{}", idp.app.id)))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Continue to"), "{}", page.body);
    assert_escaped("confirmation", &page, &format!("Wiki {HOSTILE}"));

    // Access denied names the application.
    let mut bob = Browser::new(&idp);
    bob.login("bob", PASSWORD, None).await;
    let page = bob
        .send(same_origin(&format!("/saml/init/{}", idp.app.id)))
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_escaped("denied", &page, &format!("Wiki {HOSTILE}"));
}

/// The `href` of the page's stylesheet link.
fn stylesheet_href(page: &Page) -> String {
    let at = page
        .body
        .find("<link rel=\"stylesheet\" href=\"")
        .unwrap_or_else(|| panic!("no stylesheet: {}", page.body))
        + "<link rel=\"stylesheet\" href=\"".len();
    let end = page.body[at..].find('"').unwrap() + at;
    page.body[at..end].to_owned()
}

#[tokio::test]
async fn the_stylesheet_is_named_by_its_hash_and_cached_for_good() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    let href = stylesheet_href(&b.get("/login").await);
    let hash = href
        .strip_prefix("/static/latchkey.")
        .and_then(|h| h.strip_suffix(".css"))
        .unwrap_or_else(|| panic!("{href}"));
    assert_eq!(hash.len(), 16, "{href}");
    assert!(hash.bytes().all(|c| c.is_ascii_hexdigit()), "{href}");
    // Every page links the same file.
    assert_eq!(stylesheet_href(&b.get("/nowhere").await), href);

    let css = b.get(&href).await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(
        css.headers[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert!(
        css.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    let digest = Sha256::digest(css.body.as_bytes());
    let digest: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    assert!(digest.starts_with(hash), "{digest} is not named {hash}");

    // The unhashed name and any other hash are gone.
    for stale in [
        "/static/latchkey.css",
        "/static/latchkey.0000000000000000.css",
    ] {
        let page = b.get(stale).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{stale}");
        assert_eq!(page.error_code(), Some("WEB-NOT-FOUND"));
    }
}

/// No inline style; no script but the auto-POST's, and then its CSP allows exactly it, or
/// the passkey script (a file of ours), and then the CSP allows our own files only.
fn assert_no_inline_code(what: &str, page: &Page) {
    assert!(!page.body.contains("style="), "{what}: {}", page.body);
    assert!(!page.body.contains("<style"), "{what}: {}", page.body);
    let csp = page
        .headers
        .get(header::CONTENT_SECURITY_POLICY)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(csp.starts_with("default-src 'none'"), "{what}: CSP {csp:?}");
    let scripts = page.body.matches("<script").count();
    if scripts == 0 {
        assert!(!csp.contains("script-src"), "{what}: {csp}");
        return;
    }
    assert_eq!(scripts, 1, "{what}: {}", page.body);
    if page
        .body
        .contains("<script src=\"/static/webauthn.js\" defer></script>")
    {
        assert!(
            csp.contains("script-src 'self';") && !csp.contains("unsafe"),
            "{what}: {csp}"
        );
        return;
    }
    assert!(
        page.body
            .contains(&format!("<script>{}</script>", post::AUTO_SUBMIT_SCRIPT)),
        "{what}: {}",
        page.body
    );
    assert!(
        csp.contains(&format!("script-src {};", post::SCRIPT_CSP_HASH)),
        "{what}: {csp}"
    );
}

#[tokio::test]
async fn no_page_has_inline_style_or_a_script_its_csp_does_not_name() {
    let idp = idp().await;
    make_hostile(&idp).await;
    let mut pages = Vec::new();

    let mut anonymous = Browser::new(&idp);
    pages.push(("login", anonymous.get("/login").await));
    let first = anonymous.get(&redirect_uri(&authn_request(SP), None)).await;
    let at_login = anonymous.get(first.location()).await;
    let key = continue_key(at_login.location());
    pages.push((
        "login to continue",
        anonymous.get(&format!("/login?continue={key}")).await,
    ));
    pages.push(("sign-out form", anonymous.get("/logout").await));
    pages.push(("not found", anonymous.get("/nowhere").await));
    pages.push((
        "bad request",
        anonymous.get("/saml/sso?SAMLRequest=%%%").await,
    ));
    pages.push((
        "expired sign-in",
        anonymous
            .get(&format!("/saml/continue/{}", "A".repeat(43)))
            .await,
    ));
    pages.push((
        "csrf refused",
        anonymous
            .post("/login", &[("username", "alice"), ("password", "x")])
            .await,
    ));
    let failed = anonymous.login("alice", "wrong", None).await;
    assert_eq!(failed.status, StatusCode::UNAUTHORIZED);
    pages.push(("failed sign-in", failed));

    let mut alice = Browser::new(&idp);
    alice.login("alice", PASSWORD, None).await;
    pages.push(("portal", alice.get("/portal").await));
    pages.push((
        "launch confirmation",
        alice
            .send(cross_site(&format!("/saml/init/{}", idp.app.id)))
            .await,
    ));
    let posted = alice
        .send(same_origin(&format!("/saml/init/{}", idp.app.id)))
        .await;
    assert!(posted.field("SAMLResponse").is_some(), "{}", posted.body);
    pages.push(("auto-POST", posted));
    let csrf = alice.get("/logout").await.field("csrf").unwrap();
    pages.push((
        "signed out",
        alice.post("/logout", &[("csrf", csrf.as_str())]).await,
    ));

    let mut bob = Browser::new(&idp);
    bob.login("bob", PASSWORD, None).await;
    pages.push((
        "access denied",
        bob.send(same_origin(&format!("/saml/init/{}", idp.app.id)))
            .await,
    ));

    for (what, page) in &pages {
        assert!(
            page.headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{what}"
        );
        assert_no_inline_code(what, page);
    }
}

/// The second-factor pages, and the pages that run the passkey script (on a `localhost`
/// IdP, where passkeys are on).
#[tokio::test]
async fn the_second_factor_and_passkey_pages_have_no_inline_code() {
    let idp = idp_with(|c| c.base_url = "http://localhost:8080".into()).await;
    latchkey_idp::mfa::policy::MfaPolicy::new(&idp.store)
        .set_app(
            &latchkey_idp::Actor::cli("admin"),
            &idp.app,
            latchkey_idp::mfa::policy::AppMfa {
                require_mfa: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut pages = Vec::new();
    let mut anonymous = Browser::new(&idp);
    pages.push(("login with passkeys", anonymous.get("/login").await));
    pages.push(("passkeys, signed out", anonymous.get("/webauthn").await));

    let mut alice = Browser::new(&idp);
    alice.login("alice", PASSWORD, None).await;
    pages.push(("passkeys, signed in", alice.get("/webauthn").await));
    let request = latchkey_saml::authn_request::AuthnRequest::new(
        SP,
        "http://localhost:8080/saml/sso",
        latchkey_idp::Clock::now(&latchkey_idp::SystemClock),
    )
    .unwrap();
    let parked = alice.get(&redirect_uri(&request, None)).await;
    let to_enrol = alice.get(parked.location()).await;
    let enrol = alice.get(to_enrol.location()).await;
    assert!(enrol.body.contains("<svg"), "{}", enrol.body);
    let csrf = enrol.field("csrf").unwrap();
    let factor = enrol.field("factor").unwrap();
    pages.push(("TOTP enrolment", enrol));
    let refused = alice
        .post(
            "/mfa/totp",
            &[("csrf", &csrf), ("factor", &factor), ("code", "12a456")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    pages.push(("TOTP enrolment refused", refused));
    pages.push(("recovery codes", alice.get("/mfa/recovery-codes").await));

    // With a factor: the second-step page.
    super::mfa_pages::totp_enrolled(&idp).await;
    let mut second = Browser::new(&idp);
    second.login("alice", PASSWORD, None).await;
    pages.push(("second step", second.get("/login/mfa?then=portal").await));

    for (what, page) in &pages {
        assert!(
            page.headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{what}"
        );
        assert_no_inline_code(what, page);
    }
}
