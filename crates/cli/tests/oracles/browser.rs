//! Real-browser journeys: headless Chromium, driven through chromedriver (W3C WebDriver),
//! signs people in to the demo wiki and helpdesk through `latchkey serve`, all three
//! running as child processes of the built binary. The IdP is on 127.0.0.1 and the apps on
//! localhost, so every SAML hop is a cross-site navigation with the browser's real
//! SameSite cookie rules, which no in-process test can show. The apps are registered from
//! their live metadata (as `latchkey demo` does), so their signing certificates and
//! single-logout endpoints are what the IdP checks and calls; single logout is followed
//! through every hop, SP-initiated (the app's refresh page past its CSP form-action) and
//! IdP-initiated (the IdP's meta-refresh answer to the portal's sign-out form).
//!
//! Needs Debian's `chromium` and `chromium-driver` (scripts/test installs them); without
//! them the test FAILS and says so. Each step leaves a screenshot in
//! `target/test-artifacts/browser/NN-name.png`, and the servers' logs beside them in `logs/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

#[path = "browser/console.rs"]
mod console;
#[path = "browser/invite.rs"]
mod invite;
#[path = "browser/mfa.rs"]
mod mfa;
#[path = "browser/passkeys.rs"]
mod passkeys;
#[path = "browser/scim.rs"]
mod scim;
#[path = "browser/stack.rs"]
mod stack;
#[path = "browser/webdriver.rs"]
mod webdriver;

use std::path::{Path, PathBuf};

use latchkey_saml::authn_request::AuthnRequest;
use latchkey_saml::binding::post::{SCRIPT_CSP_HASH, auto_submit_page};
use latchkey_saml::binding::{BindingLimits, MessageKind, redirect};
use latchkey_xmlsec::dsig::{self, SignOptions};
use serde_json::Value;

use stack::{Relay, Stack, free_port, password_of};
use webdriver::{Browser, Driver};

/// Numbered screenshots, in the order the steps ran.
struct Shots {
    dir: PathBuf,
    next: u32,
}

impl Shots {
    async fn take(&mut self, browser: &Browser, name: &str) {
        self.next += 1;
        let path = self.dir.join(format!("{:02}-{name}.png", self.next));
        browser.screenshot(&path).await;
    }
}

fn artefact_dir() -> PathBuf {
    artefact_dir_named("browser")
}

/// `target/test-artifacts/<name>`, emptied, with its `logs/`.
fn artefact_dir_named(name: &str) -> PathBuf {
    // CARGO_TARGET_TMPDIR is <target>/tmp: the artefacts go next to it.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap();
    let dir = target.join("test-artifacts").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    dir
}

fn roles(whoami: &Value) -> Vec<&str> {
    whoami["account"]["roles"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Fills the IdP's sign-in form, which the browser must be on (at the IdP's origin).
async fn sign_in_at_idp(b: &Browser, stack: &Stack, user: &str) {
    b.wait_for(&format!("{}/login", stack.idp), "Password")
        .await;
    b.type_into("#username", user).await;
    b.type_into("#password", &password_of(user)).await;
    b.click("button[type=submit]").await;
}

/// The app's `/whoami`, as this browser's cookies see it.
async fn whoami(b: &Browser, app: &str) -> Value {
    b.goto(&format!("{app}/whoami")).await;
    b.json().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_sign_in_through_a_real_browser() {
    let dir = artefact_dir();
    let logs = dir.join("logs");
    let mut shots = Shots {
        dir: dir.clone(),
        next: 0,
    };
    // Declared first so it is removed last, after the browsers using it are closed.
    let profiles = tempfile::tempdir().unwrap();
    let driver = Driver::start(free_port(), &logs.join("chromedriver.log")).await;
    let stack = Stack::start(&logs);

    // 1. alice opens the wiki, is sent to the IdP, signs in, and comes back with a new
    //    account holding the editor role (from wiki-editors).
    let alice = driver.browser(&profiles.path().join("alice")).await;
    alice.goto(&format!("{}/", stack.wiki)).await;
    let text = alice.text().await;
    assert!(text.contains("You are not signed in"), "{text}");
    shots.take(&alice, "wiki-signed-out").await;
    alice.click("a[href='/login']").await;
    let text = alice
        .wait_for(&format!("{}/login?continue=", stack.idp), "Sign in")
        .await;
    assert!(text.contains("Username or e-mail"), "{text}");
    shots.take(&alice, "idp-sign-in").await;
    sign_in_at_idp(&alice, &stack, "alice").await;
    let text = alice
        .wait_for(&format!("{}/", stack.wiki), "Signed in as Alice Anders")
        .await;
    assert!(text.contains("Role: editor"), "{text}");
    assert!(text.contains("created just now"), "{text}");
    shots.take(&alice, "wiki-alice-created-editor").await;
    let me = whoami(&alice, &stack.wiki).await;
    assert_eq!(me["authenticated"], true, "{me}");
    assert_eq!(me["name_id"], "alice@example.com", "{me}");
    assert_eq!(me["account"]["role"], "editor", "{me}");
    assert!(roles(&me).contains(&"editor"), "{me}");
    assert!(!roles(&me).contains(&"admin"), "{me}");
    shots.take(&alice, "wiki-whoami-editor").await;

    // 2. The portal shows exactly her two applications; the helpdesk tile signs her in
    //    there (IdP-initiated) without a second password prompt.
    alice.goto(&format!("{}/portal", stack.idp)).await;
    let text = alice.wait_for(&stack.idp, "Your applications").await;
    assert!(text.contains("Alice Anders"), "{text}");
    assert_eq!(alice.count("ul.tiles li").await, 2, "{text}");
    assert!(text.contains("Latchkey demo wiki"), "{text}");
    assert!(text.contains("Latchkey demo helpdesk"), "{text}");
    shots.take(&alice, "portal-alice-two-tiles").await;
    let tile = alice
        .script(
            "for (const a of document.querySelectorAll('ul.tiles a')) \
             { if (a.innerText.includes(arguments[0])) return a.getAttribute('href'); } \
             return null;",
            serde_json::json!(["helpdesk"]),
        )
        .await;
    let tile = tile.as_str().expect("a helpdesk tile");
    alice.click(&format!("a[href='{tile}']")).await;
    let text = alice
        .wait_for(&format!("{}/", stack.helpdesk), "Signed in as")
        .await;
    assert!(text.contains("Alice Anders"), "{text}");
    assert!(text.contains("Role: requester"), "{text}");
    shots.take(&alice, "helpdesk-alice-from-portal").await;
    let me = whoami(&alice, &stack.helpdesk).await;
    assert_eq!(me["authenticated"], true, "{me}");
    assert_eq!(
        me["name_id_format"],
        "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
    );
    assert!(roles(&me).contains(&"requester"), "{me}");

    // 3. The directory makes her a wiki admin; her next wiki login (no password: the IdP
    //    session is still there) changes her role.
    stack.cli(&["group", "members", "add", "wiki-admins", "alice"]);
    alice.goto(&format!("{}/login", stack.wiki)).await;
    let text = alice
        .wait_for(&format!("{}/", stack.wiki), "Role: admin")
        .await;
    assert!(text.contains("role editor -> admin"), "{text}");
    shots.take(&alice, "wiki-alice-now-admin").await;
    let me = whoami(&alice, &stack.wiki).await;
    assert_eq!(me["authenticated"], true, "{me}");
    assert!(roles(&me).contains(&"admin"), "{me}");
    alice.goto(&format!("{}/admin", stack.wiki)).await;
    let text = alice
        .wait_for(
            &format!("{}/admin", stack.wiki),
            "Accounts provisioned from Latchkey",
        )
        .await;
    assert!(text.contains("alice@example.com"), "{text}");
    shots.take(&alice, "wiki-admin-page").await;

    // 4. carol is in no group: the IdP refuses her with its own page, and the wiki never
    //    hears of her.
    let carol = driver.browser(&profiles.path().join("carol")).await;
    carol.goto(&format!("{}/login", stack.wiki)).await;
    sign_in_at_idp(&carol, &stack, "carol").await;
    let text = carol.wait_for(&stack.idp, "Access denied").await;
    assert!(
        text.contains("not allowed to use Latchkey demo wiki"),
        "{text}"
    );
    assert!(text.contains("SSO-DENIED"), "{text}");
    shots.take(&carol, "idp-carol-denied").await;
    // Signed in now, she gets the same refusal straight away, with no form in between.
    carol.goto(&format!("{}/login", stack.wiki)).await;
    let text = carol.wait_for(&stack.idp, "Access denied").await;
    assert!(!text.contains("Password"), "{text}");
    let me = whoami(&carol, &stack.wiki).await;
    assert_eq!(me["authenticated"], false, "{me}");
    carol.goto(&format!("{}/portal", stack.idp)).await;
    let text = carol.wait_for(&stack.idp, "Your applications").await;
    assert!(
        text.contains("No applications are assigned to you"),
        "{text}"
    );
    assert_eq!(carol.count("ul.tiles li").await, 0);
    shots.take(&carol, "portal-carol-empty").await;
    carol.quit().await;

    // 5. bob signs in to the helpdesk; once suspended, his IdP session is gone and his
    //    password no longer works.
    let bob = driver.browser(&profiles.path().join("bob")).await;
    bob.goto(&format!("{}/login", stack.helpdesk)).await;
    sign_in_at_idp(&bob, &stack, "bob").await;
    let text = bob
        .wait_for(&format!("{}/", stack.helpdesk), "Signed in as Bob Berg")
        .await;
    assert!(text.contains("Role: agent"), "{text}");
    shots.take(&bob, "helpdesk-bob-agent").await;
    stack.cli(&["user", "suspend", "bob"]);
    // Signing out goes through the IdP (single logout), which has no session of his left,
    // and back to the helpdesk's signed-out page.
    bob.click("form[action='/logout'] button").await;
    bob.wait_for(
        &format!("{}/saml/slo", stack.helpdesk),
        "You are signed out",
    )
    .await;
    bob.click("a[href='/login']").await;
    // No silent sign-in: the suspended user's session was dropped, so the form is back.
    sign_in_at_idp(&bob, &stack, "bob").await;
    let text = bob.wait_for(&stack.idp, "Sign-in failed").await;
    shots.take(&bob, "idp-bob-suspended-refused").await;
    assert!(text.contains("Ask your administrator"), "{text}");
    let me = whoami(&bob, &stack.helpdesk).await;
    assert_eq!(me["authenticated"], false, "{me}");
    bob.quit().await;

    // 6. SP-initiated with the HTTP-POST binding. The demo apps send their AuthnRequest
    //    with HTTP-Redirect only, so a page on the apps' site (localhost) posts the wiki's
    //    own request to the IdP instead. That POST is cross-site: the IdP's SameSite=Lax
    //    session cookie is not sent with it, so the IdP parks the request and continues it
    //    with a same-site GET (`/saml/continue/KEY`), where the cookie is sent. The wiki
    //    answers a login only in the browser that started it: the relay, on the wiki's
    //    host, hands the browser the login cookie the wiki set for that request.
    let relay = Relay::start();
    let post = driver.browser(&profiles.path().join("alice-post")).await;
    // First without an IdP session: the parked request waits behind the sign-in form.
    let (page, cookie) = wiki_request_as_post(&stack).await;
    relay.serve(page, &relay_csp(&stack), Some(cookie));
    post.goto(&relay.url).await;
    let url = wait_url(&post, &format!("{}/login?continue=", stack.idp)).await;
    let key = url.rsplit('=').next().unwrap_or_default();
    assert_eq!(key.len(), 43, "a parked request key in {url}");
    shots.take(&post, "idp-sign-in-after-post").await;
    sign_in_at_idp(&post, &stack, "alice").await;
    let text = post
        .wait_for(&format!("{}/", stack.wiki), "Signed in as Alice Anders")
        .await;
    assert!(text.contains("Role: admin"), "{text}");
    shots.take(&post, "wiki-alice-via-post-binding").await;
    // Then with the session: the cross-site POST alone could not show it, yet no form
    // appears, so the cookie came with the continue GET. (Signing out of the wiki first
    // would end the IdP session too, by single logout: the new login is told apart by its
    // assertion instead.)
    let before = whoami(&post, &stack.wiki).await;
    let (page, cookie) = wiki_request_as_post(&stack).await;
    relay.serve(page, &relay_csp(&stack), Some(cookie));
    post.goto(&relay.url).await;
    let text = post
        .wait_for(&format!("{}/", stack.wiki), "Signed in as Alice Anders")
        .await;
    assert!(text.contains("up to date"), "{text}");
    shots.take(&post, "wiki-alice-post-binding-no-prompt").await;
    let me = whoami(&post, &stack.wiki).await;
    assert_eq!(me["authenticated"], true, "{me}");
    assert_ne!(me["assertion_id"], before["assertion_id"], "a new login");
    post.quit().await;
    alice.quit().await;

    // 7. Single logout, SP- and IdP-initiated.
    single_logout(&driver, &stack, profiles.path(), &mut shots).await;
}

/// alice, in a fresh browser, signs in to both apps; signing out of the wiki signs her
/// out of the IdP and the helpdesk too. Then, signed in again, the portal's
/// "Sign out" tells both apps in turn and ends on the IdP's signed-out page.
async fn single_logout(driver: &Driver, stack: &Stack, profiles: &Path, shots: &mut Shots) {
    let b = driver.browser(&profiles.join("alice-slo")).await;
    sign_in_to_both(&b, stack).await;
    shots.take(&b, "slo-helpdesk-signed-in-too").await;

    // SP-initiated, from the wiki: the wiki's refresh page takes the browser to the IdP
    // (a 303 would fall under the form's CSP form-action), the IdP asks the helpdesk,
    // the helpdesk answers, and the IdP answers the wiki, which shows the outcome.
    b.goto(&format!("{}/", stack.wiki)).await;
    b.click("form[action='/logout'] button").await;
    let text = b
        .wait_for(
            &format!("{}/saml/slo?SAMLResponse=", stack.wiki),
            "You are signed out",
        )
        .await;
    assert!(
        text.contains("Latchkey signed you out of your other applications"),
        "every application confirmed: {text}"
    );
    shots.take(&b, "slo-wiki-signed-out-everywhere").await;
    let me = whoami(&b, &stack.wiki).await;
    assert_eq!(me["authenticated"], false, "{me}");
    let me = whoami(&b, &stack.helpdesk).await;
    assert_eq!(me["authenticated"], false, "{me}");
    b.goto(&format!("{}/portal", stack.idp)).await;
    let text = b
        .wait_for(&format!("{}/login", stack.idp), "Password")
        .await;
    assert!(text.contains("Sign in"), "{text}");
    shots.take(&b, "slo-portal-asks-to-sign-in").await;

    // IdP-initiated, from the portal's form: the IdP answers the POST with a page that
    // refreshes to the first app, each app answers, and the chain ends at the IdP.
    sign_in_to_both(&b, stack).await;
    b.goto(&format!("{}/portal", stack.idp)).await;
    b.wait_for(&stack.idp, "Your applications").await;
    b.click("form[action='/logout'] button").await;
    let text = b
        .wait_for(
            &format!("{}/saml/slo", stack.idp),
            "You are signed out of Latchkey",
        )
        .await;
    assert!(text.contains("Signed out of:"), "{text}");
    assert!(text.contains("Latchkey demo wiki"), "{text}");
    assert!(text.contains("Latchkey demo helpdesk"), "{text}");
    assert!(!text.contains("did not confirm"), "{text}");
    shots.take(&b, "slo-idp-signed-out-page").await;
    let me = whoami(&b, &stack.wiki).await;
    assert_eq!(me["authenticated"], false, "{me}");
    let me = whoami(&b, &stack.helpdesk).await;
    assert_eq!(me["authenticated"], false, "{me}");
    b.goto(&format!("{}/portal", stack.idp)).await;
    b.wait_for(&format!("{}/login", stack.idp), "Password")
        .await;
    b.quit().await;
}

/// Signs alice in to the wiki with her password (she has no IdP session) and then to the
/// helpdesk, which needs none.
async fn sign_in_to_both(b: &Browser, stack: &Stack) {
    b.goto(&format!("{}/login", stack.wiki)).await;
    sign_in_at_idp(b, stack, "alice").await;
    b.wait_for(&format!("{}/", stack.wiki), "Signed in as Alice Anders")
        .await;
    b.goto(&format!("{}/login", stack.helpdesk)).await;
    b.wait_for(&format!("{}/", stack.helpdesk), "Signed in as Alice Anders")
        .await;
    for app in [&stack.wiki, &stack.helpdesk] {
        let me = whoami(b, app).await;
        assert_eq!(me["authenticated"], true, "{me}");
    }
}

/// Starts a wiki login from outside the browser and re-encodes the wiki's own
/// AuthnRequest (and RelayState, which keys the wiki's pending request) for HTTP-POST:
/// the auto-submit page, and the `Set-Cookie` binding the login to its browser.
async fn wiki_request_as_post(stack: &Stack) -> (String, String) {
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .get(format!("{}/login", stack.wiki))
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.starts_with("latchkey_login=") && cookie.contains("; Secure; SameSite=None"),
        "{cookie}"
    );
    let (endpoint, query) = location.split_once('?').unwrap();
    assert_eq!(endpoint, format!("{}/saml/sso", stack.idp));
    let limits = BindingLimits::default();
    let message = redirect::decode(query, &limits).unwrap();
    // The wiki's certificate is registered, so the IdP wants the request signed: over
    // HTTP-POST that is an enveloped signature, made here with the wiki's own key.
    let request = AuthnRequest::parse(&message.xml).unwrap();
    let signed = dsig::sign(
        &message.xml,
        &request.id,
        &stack.app_key("wiki"),
        None,
        &SignOptions::default(),
    )
    .unwrap();
    let page = auto_submit_page(
        endpoint,
        MessageKind::Request,
        &signed,
        message.relay_state.as_deref(),
        None,
        &limits,
    )
    .unwrap();
    (page, cookie)
}

/// The relay page may run only the binding's auto-submit script and post only to the IdP.
fn relay_csp(stack: &Stack) -> String {
    format!(
        "default-src 'none'; script-src {SCRIPT_CSP_HASH}; form-action {}",
        stack.idp
    )
}

async fn wait_url(b: &Browser, prefix: &str) -> String {
    let started = std::time::Instant::now();
    loop {
        let url = b.url().await;
        if url.starts_with(prefix) {
            return url;
        }
        assert!(
            started.elapsed() < webdriver::WAIT,
            "waited for {prefix}..., the browser is on {url}:\n{}",
            b.text().await
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
