//! Every page comes from a template: hostile text is escaped wherever it is shown, the
//! stylesheet is one hashed, immutable file, and no page carries inline style or a script
//! other than the SAML auto-POST's (allowed by its hash).

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use latchkey_idp::Actor;
use latchkey_idp::apps::{Binding, Endpoint};
use latchkey_idp::directory::UserPatch;
use latchkey_idp::ids::AppId;
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
        .contains("<script src=\"/static/logout.js\"></script>")
        || page
            .body
            .contains("<script src=\"/static/webauthn.js\" defer></script>")
    {
        // The logout frames page's or the passkey pages' one script, a file of our own.
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

    // The console, as an admin whose display name is hostile.
    idp.store
        .roles()
        .grant(
            &Actor::system(),
            latchkey_idp::console::Role::Admin,
            latchkey_idp::console::Holder::User(idp.alice.id),
        )
        .await
        .unwrap();
    let mut admin = Browser::new(&idp);
    admin.login("alice", PASSWORD, None).await;
    step_up_with_new_totp(&mut admin, &idp.alice).await;
    let alice_page = format!("/admin/users/{}", idp.alice.id);
    let app_page = format!("/admin/apps/{}", idp.app.id);
    let preview = format!("/admin/preview?user=alice&app={}", idp.app.id);
    for route in [
        app_page.as_str(),
        preview.as_str(),
        "/admin/apps/new",
        "/admin/apps/new/latchkey-wiki",
        "/admin/apps/new/generic-saml",
        "/admin",
        "/admin/users",
        "/admin/users/new",
        alice_page.as_str(),
        "/admin/groups",
        "/admin/apps",
        "/admin/tokens",
        "/admin/keys",
        "/admin/roles",
        "/admin/audit",
        "/admin/audit/1",
    ] {
        let page = admin.get(route).await;
        assert_eq!(page.status, StatusCode::OK, "{route}");
        if route == alice_page || route == app_page || route == preview {
            assert_escaped(route, &page, HOSTILE);
        }
        pages.push(("console page", page));
    }

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

async fn set_redirect_slo(idp: &Idp, app: AppId, url: &str) {
    let url = url.to_owned();
    idp.store
        .apps()
        .update(&Actor::system(), app, |a| {
            a.slo = Some(Endpoint {
                url: url.clone(),
                binding: Binding::HttpRedirect,
            });
        })
        .await
        .unwrap();
}

/// Every single-logout page (the frames, a frame's status, the end, the onward refresh):
/// from templates on the base layout, hostile application names escaped, no inline code,
/// and the frames page's script a file of ours that its CSP names.
#[tokio::test]
async fn every_logout_page_is_a_template_with_names_escaped_and_no_inline_code() {
    let idp = idp().await;
    make_hostile(&idp).await;
    set_redirect_slo(&idp, idp.app.id, &format!("{SP}/slo")).await;
    let wiki = format!("Wiki {HOSTILE}");
    let mut pages = Vec::new();

    // IdP-initiated: the frames page names the hostile app, its frame ends on a status page,
    // a reloaded frame too, and the done page lists the app as not answering.
    let mut alice = Browser::new(&idp);
    alice.login("alice", PASSWORD, None).await;
    let launched = alice.go(&redirect_uri(&authn_request(SP), None)).await;
    assert!(
        launched.field("SAMLResponse").is_some(),
        "{}",
        launched.body
    );
    let csrf = alice.get("/logout").await.field("csrf").unwrap();
    let frames = alice.post("/logout", &[("csrf", csrf.as_str())]).await;
    assert_eq!(frames.status, StatusCode::OK, "{}", frames.body);
    assert_escaped("frames", &frames, &wiki);
    assert!(
        frames.body.contains("<h1>Signing out</h1>"),
        "{}",
        frames.body
    );
    let frame = frames.slo_frames().remove(0);
    let asked = alice.get(&frame).await;
    assert_eq!(asked.status, StatusCode::SEE_OTHER, "{}", asked.body);
    let again = alice.get(&frame).await;
    assert!(
        again.body.contains("This application was already asked."),
        "{}",
        again.body
    );
    assert!(
        again
            .body
            .contains("<meta name=\"latchkey-slo\" content=\"done\">"),
        "{}",
        again.body
    );
    pages.push(("frame status", again));
    pages.push((
        "unknown frame",
        alice
            .get(&format!("/saml/slo/frame/{}", "A".repeat(43)))
            .await,
    ));
    let done = alice.get(&frames.slo_done().1).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let silent = done.body.split("did not answer:").nth(1).unwrap();
    assert!(
        silent.contains(&format!("<li>{}</li>", escaped(&wiki))),
        "{}",
        done.body
    );
    assert_escaped("done", &done, &wiki);
    pages.push(("frames", frames));
    pages.push(("done", done));

    // SP-initiated by POST, with nobody else to tell: the answer to the asking application
    // leaves the form's navigation through the onward page (a meta refresh).
    set_redirect_slo(&idp, idp.signed_app.id, &format!("{SIGNED_SP}/slo")).await;
    let mut carol = Browser::new(&idp);
    carol.login("alice", PASSWORD, None).await;
    let request = authn_request(SIGNED_SP);
    let page = carol.go(&signed_redirect_uri(&request, &idp.sp_key)).await;
    let subject = sp_validate(
        &idp,
        SIGNED_SP,
        SIGNED_ACS,
        &page.saml_response(),
        Some(&request.id),
    )
    .unwrap();
    let request = super::slo_cases::logout_request(
        SIGNED_SP,
        &subject.name_id.value,
        subject.name_id.format.as_deref().unwrap(),
    );
    let parked = carol
        .post(
            "/saml/slo",
            &[(
                "SAMLRequest",
                &super::slo_cases::signed_post(&request, &idp.sp_key),
            )],
        )
        .await;
    assert_eq!(parked.status, StatusCode::SEE_OTHER, "{}", parked.body);
    let onward = carol.get(parked.location()).await;
    assert_eq!(onward.status, StatusCode::OK, "{}", onward.body);
    let to = format!("{SIGNED_SP}/slo?SAMLResponse=");
    assert!(
        onward.body.contains(&format!(
            "<meta http-equiv=\"refresh\" content=\"0;url={to}"
        )),
        "{}",
        onward.body
    );
    assert!(
        onward.body.contains(&format!("<a href=\"{to}")),
        "{}",
        onward.body
    );
    pages.push(("onward", onward));

    let sheet = format!(
        "<link rel=\"stylesheet\" href=\"{}\">",
        stylesheet_href(&pages[0].1)
    );
    for (what, page) in &pages {
        assert!(
            page.headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{what}"
        );
        // The base layout, with the one hashed stylesheet.
        assert!(page.body.starts_with("<!DOCTYPE html>"), "{what}");
        assert!(page.body.contains(&sheet), "{what}: {}", page.body);
        assert_no_inline_code(what, page);
    }
}

/// A refused SAML request's page says what kind of refusal, the code and the operation ID,
/// never the rule it broke (that goes to the log under the operation ID).
#[tokio::test]
async fn refusal_pages_show_a_code_and_an_operation_id_but_no_rule() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    let mut unknown = authn_request(SP);
    unknown.issuer = Some("https://unknown.example.org".into());
    let cases = [
        (
            "undecodable sign-in",
            "/saml/sso?SAMLRequest=%%%".to_owned(),
        ),
        ("unknown issuer", redirect_uri(&unknown, None)),
        (
            "undecodable sign-out",
            "/saml/slo?SAMLRequest=%%%".to_owned(),
        ),
        ("sign-out without a message", "/saml/slo".to_owned()),
    ];
    for (what, uri) in cases {
        let page = b.get(&uri).await;
        assert!(page.status.is_client_error(), "{what}: {}", page.status);
        let code = page
            .error_code()
            .unwrap_or_else(|| panic!("{what}: {}", page.body));
        assert!(!code.is_empty(), "{what}");
        assert!(
            page.body.contains("Operation ID: <code>"),
            "{what}: {}",
            page.body
        );
        let message = page.body.split("<p class=\"error\">").nth(1).unwrap();
        let message = message.split("</p>").next().unwrap();
        assert!(!message.contains("cannot accept:"), "{what}: {message}");
        for rule in [
            "unknown.example.org",
            "base64",
            "deflate",
            "SAMLRequest",
            "issuer",
        ] {
            assert!(
                !page.body.contains(rule),
                "{what}: shows {rule:?}: {}",
                page.body
            );
        }
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

#[tokio::test]
async fn the_account_page_escapes_what_users_typed_and_has_no_inline_code() {
    let idp = idp().await;
    make_hostile(&idp).await;
    // A factor named by the user, a session from a browser that says what it likes.
    let kek = idp.kek();
    let totp = latchkey_idp::mfa::totp::Totp::new(&idp.store, &kek);
    let e = totp.begin(&idp.alice, HOSTILE, "test").await.unwrap();
    let app = super::mfa_pages::app_for(&e.secret_base32);
    let confirmed = totp
        .confirm(
            &Actor::user(idp.alice.id),
            &idp.alice,
            &e.factor_id,
            &super::mfa_pages::code_now(&idp, &app),
            "127.0.0.1",
        )
        .await
        .unwrap();
    assert!(
        matches!(
            confirmed,
            latchkey_idp::mfa::totp::TotpCheck::Accepted { .. }
        ),
        "{confirmed:?}"
    );
    idp.clock.advance(time::Duration::seconds(30));
    let mut alice = Browser::new(&idp);
    let form = alice.get("/login").await;
    let csrf = form.field("csrf").unwrap();
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("username", "alice"),
            ("password", PASSWORD),
            ("csrf", &csrf),
        ])
        .finish();
    alice
        .send(
            Request::post("/login")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::USER_AGENT, HOSTILE)
                .body(Body::from(body))
                .unwrap(),
        )
        .await;

    let page = alice.get("/account").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_escaped("account: display name", &page, &format!("Alice {HOSTILE}"));
    assert_escaped("account: factor and browser", &page, HOSTILE);
    assert!(
        page.body.matches(&escaped(HOSTILE)).count() >= 2,
        "{}",
        page.body
    );
    assert_no_inline_code("account", &page);
    // A refusal on it too.
    let csrf = page.field("csrf").unwrap();
    let refused = alice
        .post(
            "/account/password",
            &[("csrf", csrf.as_str()), ("current", "")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_no_inline_code("account refusal", &refused);
}
