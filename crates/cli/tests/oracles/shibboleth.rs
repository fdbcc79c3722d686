//! Shibboleth SP 3, the reference SAML service provider, against a real `latchkey serve`.
//!
//! `shibd` and Apache with `mod_shib` run as private instances from a temporary directory
//! (see `shibboleth/peer.rs`: Debian's defaults, changed only where an administrator must);
//! the IdP runs on 127.0.0.1 and Apache on localhost. Shibboleth is registered in Latchkey
//! from the metadata it serves itself (`latchkey app add --metadata`, the `generic-saml`
//! template) and reads Latchkey's `/saml/metadata`. A scripted browser (`shibboleth/
//! client.rs`: a cookie jar, redirects, auto-posted forms and meta refreshes followed by
//! hand) then goes through:
//!
//! 1. SP-initiated login: the protected page sends alice to the IdP; she signs in and the
//!    page shows the released attributes as Apache variables;
//! 2. single logout from Shibboleth (`/Shibboleth.sso/Logout`), through the IdP and back;
//! 3. an unassigned user (carol) refused by the IdP, Shibboleth never reached;
//! 4. IdP-initiated login from the portal tile, RelayState taking her to the page;
//! 5. single logout from the portal's sign-out, through Shibboleth and back;
//!
//! and finally requires shibd.log, the transaction log and mod_shib's log to hold no
//! warning or error beyond an allow-list of transport lines that plain HTTP forces.
//!
//! Needs Debian's `apache2`, `libapache2-mod-shib` and `shibboleth-sp-utils` (scripts/test
//! installs them); without them the test FAILS and names them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

#[path = "shibboleth/client.rs"]
mod client;
#[path = "shibboleth/peer.rs"]
mod peer;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use latchkey_idp::directory::{NewGroup, NewUser};
use latchkey_idp::password::Password;
use latchkey_idp::{Actor, Config, Store};
use latchkey_saml::binding::{BindingLimits, redirect};

use client::{Client, Page, forms};
use peer::Shibboleth;

const PASSWORD: &str = "shibboleth interop 1";

/// Kills `latchkey serve` when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// alice (in `staff`, which the SP is assigned to) and carol (in no group).
async fn seed(config: &Path) {
    let config = Config::load(Some(config)).unwrap();
    let store = Store::open(&config).await.unwrap();
    let admin = Actor::system();
    let mut alice = NewUser::new("alice", "alice@example.org");
    alice.given_name = Some("Alice".into());
    alice.family_name = Some("Anders".into());
    alice.display_name = Some("Alice Anders".into());
    alice.password = Some(Password::new(PASSWORD));
    let alice = store.users().create(&admin, alice).await.unwrap();
    let mut carol = NewUser::new("carol", "carol@example.org");
    carol.password = Some(Password::new(PASSWORD));
    store.users().create(&admin, carol).await.unwrap();
    let staff = store
        .groups()
        .create(&admin, NewGroup::new("staff"))
        .await
        .unwrap();
    store
        .groups()
        .add_member(&admin, staff.id, alice.id)
        .await
        .unwrap();
    store.close().await;
}

/// Runs an admin command against the IdP's store; it must succeed. Returns stderr too
/// (where `app add` prints what it left out of the metadata).
fn cli(config: &Path, args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("LATCHKEY_CONFIG")
        .env_remove("LATCHKEY_DATABASE_URL")
        .env_remove("DATABASE_URL")
        .env_remove("LATCHKEY_DATA_DIR")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "latchkey {args:?} failed: {stderr}");
    (String::from_utf8(out.stdout).unwrap(), stderr)
}

/// The variables a `<!--#printenv -->` page shows, one `NAME=value` a line.
fn variables(page: &Page) -> BTreeMap<String, String> {
    assert_eq!(page.status, 200, "{}: {}", page.url, page.body);
    let pre = page
        .body
        .split_once("<pre>")
        .and_then(|(_, rest)| rest.split_once("</pre>"))
        .unwrap_or_else(|| panic!("not the variables page: {}", page.body))
        .0;
    pre.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), client::unescape(v)))
        .collect()
}

/// Fills and sends the IdP's sign-in form, which `page` must be.
async fn sign_in(b: &mut Client, page: Page, user: &str) -> Page {
    let mut form = forms(&page)
        .into_iter()
        .find(|f| f.get("password").is_some())
        .unwrap_or_else(|| panic!("no sign-in form at {}: {}", page.url, page.body));
    form.set("username", user);
    form.set("password", PASSWORD);
    let page = b.submit(&form).await;
    b.settle(page).await
}

/// The SAML message a trail entry ("GET URL") carried in its query (HTTP-Redirect), as
/// Latchkey's own binding decoder reads it, and the query's parameters.
fn redirect_message(entry: &str) -> (String, BTreeMap<String, String>) {
    let url = reqwest::Url::parse(entry.split_once(' ').unwrap().1).unwrap();
    let query: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
    let message = redirect::decode(url.query().unwrap(), &BindingLimits::default()).unwrap();
    (message.xml, query)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shibboleth_sp_signs_in_and_out_through_latchkey() {
    peer::require_installed();
    let dir = tempfile::Builder::new()
        .prefix("latchkey-shibboleth-")
        .tempdir()
        .unwrap();
    let (idp_port, sp_port) = (free_port(), free_port());
    let idp = format!("http://127.0.0.1:{idp_port}");
    let config = dir.path().join("latchkey.toml");
    // Cheap Argon2: the test measures interoperability, not hashing.
    std::fs::write(
        &config,
        format!(
            "data_dir = \"data\"\n[password]\nmemory_kib = 256\niterations = 1\n\
             [server]\nlisten = \"127.0.0.1:{idp_port}\"\nbase_url = \"{idp}\"\n\
             cookie_secure = false\n"
        ),
    )
    .unwrap();
    seed(&config).await;
    let serve_log = dir.path().join("serve.log");
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .args(["serve", "--config"])
            .arg(&config)
            .env_remove("LATCHKEY_CONFIG")
            .env_remove("LATCHKEY_DATABASE_URL")
            .env_remove("DATABASE_URL")
            .env_remove("LATCHKEY_DATA_DIR")
            .env_remove("LATCHKEY_LISTEN")
            .env_remove("LATCHKEY_BASE_URL")
            .env_remove("LATCHKEY_COOKIE_SECURE")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&serve_log).unwrap())
            .spawn()
            .unwrap(),
    );
    let mut b = Client::new();
    let started = Instant::now();
    let probe = reqwest::Client::builder().no_proxy().build().unwrap();
    let idp_metadata = loop {
        if let Ok(r) = probe.get(format!("{idp}/saml/metadata")).send().await
            && r.status() == 200
        {
            break r.text().await.unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "latchkey serve did not come up: {}",
            std::fs::read_to_string(&serve_log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let idp_entity = format!("{idp}/saml/metadata");

    let shib_dir = dir.path().join("shibboleth");
    std::fs::create_dir_all(&shib_dir).unwrap();
    let mut sp = Shibboleth::start(&shib_dir, sp_port, &idp_entity, &idp_metadata);
    let secure = format!("{}/secure/env.shtml", sp.base);

    // Register the SP from the metadata it generates itself.
    let sp_metadata = b.get(&format!("{}/Shibboleth.sso/Metadata", sp.base)).await;
    assert_eq!(sp_metadata.status, 200, "{}", sp_metadata.body);
    assert!(
        sp_metadata.body.contains(&sp.entity_id),
        "{}",
        sp_metadata.body
    );
    let metadata_file = dir.path().join("sp-metadata.xml");
    std::fs::write(&metadata_file, &sp_metadata.body).unwrap();
    let (_, warnings) = cli(
        &config,
        &[
            "app",
            "add",
            "--metadata",
            metadata_file.to_str().unwrap(),
            "--template",
            "generic-saml",
            "--name",
            "Shibboleth SP",
            "--relay-state",
            &secure,
            // Shibboleth publishes an encryption key and the algorithms it takes; Latchkey
            // encrypts only when asked, and an admin would ask (Shibboleth decrypting
            // Latchkey's XML-Enc is part of what this test checks).
            "--encrypt",
            "true",
        ],
    );
    eprintln!("latchkey app add --metadata (Shibboleth's):\n{warnings}");
    cli(&config, &["app", "assign", &sp.entity_id, "staff"]);

    // 1. SP-initiated login: the protected page sends her to the IdP with an AuthnRequest
    //    (HTTP-Redirect); she signs in; the Response is posted to Shibboleth's ACS, and the
    //    page shows what was released.
    let page = b.get(&secure).await;
    assert!(
        page.url.as_str().starts_with(&format!("{idp}/login")),
        "the protected page should lead to the IdP's sign-in form, not {}: {}",
        page.url,
        page.body
    );
    let sso = hop(&b, &format!("GET {idp}/saml/sso?"));
    let (request, _) = redirect_message(&sso);
    assert!(request.contains("AuthnRequest"), "{request}");
    assert!(request.contains(&sp.entity_id), "{request}");
    let request_id = xml_attr(&request, "ID");
    let page = sign_in(&mut b, page, "alice").await;
    assert_eq!(page.url.as_str(), secure, "{:#?}", b.trail);
    let response = posted_response(&b, &format!("{}/Shibboleth.sso/SAML2/POST", sp.base));
    assert_eq!(
        xml_attr(&response, "InResponseTo"),
        request_id,
        "{response}"
    );
    // Shibboleth publishes an encryption key; the assertion travels encrypted to it, and
    // Shibboleth decrypts it.
    assert!(response.contains("EncryptedAssertion"), "{response}");
    let env = variables(&page);
    check_alice(&env, &idp_entity, &sp.entity_id);
    let persistent_id = env["persistent-id"].clone();
    assert_eq!(env["REMOTE_USER"], persistent_id, "{env:#?}");

    // 2. Single logout from Shibboleth: a signed LogoutRequest to the IdP, which ends her
    //    session there and answers Shibboleth, which shows its global-logout page.
    let page = b.get(&format!("{}/Shibboleth.sso/Logout", sp.base)).await;
    let page = b.settle(page).await;
    let slo = hop(&b, &format!("GET {idp}/saml/slo?SAMLRequest="));
    let (logout, query) = redirect_message(&slo);
    assert!(logout.contains("LogoutRequest"), "{logout}");
    assert!(logout.contains(&sp.entity_id), "{logout}");
    assert!(
        logout.contains(persistent_id.rsplit('!').next().unwrap()),
        "the LogoutRequest names her NameID: {logout}"
    );
    assert!(logout.contains(&env["Shib-Session-Index"]), "{logout}");
    // Shibboleth signs front-channel logout messages by default (so an IdP that requires
    // signed logout from SPs with a signing key accepts it without any setting).
    assert!(
        query.contains_key("Signature") && query.contains_key("SigAlg"),
        "Shibboleth's LogoutRequest is unsigned: {slo}"
    );
    let answer = hop(
        &b,
        &format!("GET {}/Shibboleth.sso/SLO/Redirect?SAMLResponse=", sp.base),
    );
    let (logout_response, query) = redirect_message(&answer);
    assert_eq!(
        xml_attr(&logout_response, "InResponseTo"),
        xml_attr(&logout, "ID"),
        "{logout_response}"
    );
    assert!(
        logout_response.contains("urn:oasis:names:tc:SAML:2.0:status:Success"),
        "{logout_response}"
    );
    assert!(
        query.contains_key("Signature"),
        "the IdP's LogoutResponse is unsigned"
    );
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("Global Logout"),
        "{}: {}",
        page.url,
        page.body
    );
    assert!(
        page.body.contains("Logout completed successfully"),
        "Shibboleth did not report success: {}",
        page.body
    );
    // Both sessions are gone: the page asks the IdP again, which asks for a password.
    let page = b.get(&secure).await;
    assert!(
        page.url.as_str().starts_with(&format!("{idp}/login")),
        "{}",
        page.url
    );
    assert!(page.body.contains("Password"), "{}", page.body);

    // 3. carol is assigned nothing: the IdP refuses her with its own page and nothing is
    //    posted to Shibboleth.
    let mut c = Client::new();
    let page = c.get(&secure).await;
    let page = sign_in(&mut c, page, "carol").await;
    assert!(
        page.url.as_str().starts_with(&idp),
        "{}: {}",
        page.url,
        page.body
    );
    assert!(page.body.contains("Access denied"), "{}", page.body);
    assert!(page.body.contains("Shibboleth SP"), "{}", page.body);
    assert!(
        c.posts
            .iter()
            .all(|(to, _)| !to.as_str().starts_with(&sp.base))
    );
    assert!(
        !c.cookie_names("localhost")
            .iter()
            .any(|n| n.starts_with("_shibsession_")),
        "carol has a Shibboleth session"
    );

    // 4. IdP-initiated login: the portal tile sends an unsolicited Response, whose
    //    RelayState (the app's) takes her to the protected page.
    let mut d = Client::new();
    let page = d.get(&format!("{idp}/portal")).await;
    let page = sign_in(&mut d, page, "alice").await;
    assert_eq!(page.url.as_str(), format!("{idp}/portal"), "{}", page.body);
    let tile = between(&page.body, "href=\"/saml/init/", "\"");
    let page = d.get(&format!("{idp}/saml/init/{tile}")).await;
    let page = d.settle(page).await;
    assert_eq!(page.url.as_str(), secure, "{:#?}", d.trail);
    let (_, fields) = d.posts.last().unwrap();
    let relay_state = fields.iter().find(|(n, _)| n == "RelayState").unwrap();
    assert_eq!(relay_state.1, secure);
    let response = posted_response(&d, &format!("{}/Shibboleth.sso/SAML2/POST", sp.base));
    assert!(!response.contains("InResponseTo"), "{response}");
    let env = variables(&page);
    check_alice(&env, &idp_entity, &sp.entity_id);
    // The same pairwise identifier as the first time.
    assert_eq!(env["persistent-id"], persistent_id);

    // 5. Single logout from the portal: the IdP's page frames each application; the frame
    //    sends Shibboleth a LogoutRequest, Shibboleth answers into it, and the logout ends
    //    on the IdP's page naming the app as signed out.
    let portal = d.get(&format!("{idp}/portal")).await;
    let form = forms(&portal)
        .into_iter()
        .find(|f| f.action.path() == "/logout")
        .unwrap_or_else(|| panic!("no sign-out form: {}", portal.body));
    let page = d.submit(&form).await;
    let page = d.settle(page).await;
    let frame = between(&page.body, "<iframe data-slo src=\"", "\"").to_owned();
    let done = between(&page.body, "id=\"slo-done\" href=\"", "\"").to_owned();
    let framed = d.get(&format!("{idp}{frame}")).await;
    let framed = d.settle(framed).await;
    assert!(framed.body.contains("signed you out"), "{}", framed.body);
    let page = d.get(&format!("{idp}{done}")).await;
    let hop_in = hop(
        &d,
        &format!("GET {}/Shibboleth.sso/SLO/Redirect?SAMLRequest=", sp.base),
    );
    let (logout, query) = redirect_message(&hop_in);
    assert!(
        logout.contains(persistent_id.rsplit('!').next().unwrap()),
        "{logout}"
    );
    assert!(
        query.contains_key("Signature"),
        "the IdP's LogoutRequest is unsigned"
    );
    let hop_out = hop(&d, &format!("GET {idp}/saml/slo?SAMLResponse="));
    let (logout_response, query) = redirect_message(&hop_out);
    assert_eq!(
        xml_attr(&logout_response, "InResponseTo"),
        xml_attr(&logout, "ID"),
        "{logout_response}"
    );
    assert!(
        logout_response.contains("urn:oasis:names:tc:SAML:2.0:status:Success"),
        "{logout_response}"
    );
    assert!(
        query.contains_key("Signature"),
        "Shibboleth's LogoutResponse is unsigned: {hop_out}"
    );
    assert!(
        page.url.as_str().starts_with(&format!("{idp}/saml/slo")),
        "{}",
        page.url
    );
    assert!(
        page.body.contains("You are signed out of Latchkey"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Shibboleth SP"), "{}", page.body);
    assert!(!page.body.contains("did not confirm"), "{}", page.body);
    let page = d.get(&secure).await;
    assert!(
        page.url.as_str().starts_with(&format!("{idp}/login")),
        "{}",
        page.url
    );

    // 6. Shibboleth's logs: every login and logout recorded, and nothing to warn about.
    sp.stop();
    let transactions = sp.log("transaction.log");
    let count = |event: &str| {
        transactions
            .lines()
            .filter(|l| l.contains(&format!("|Shibboleth-TRANSACTION.{event}|")))
            .count()
    };
    assert_eq!(count("Login"), 2, "{transactions}");
    // Shibboleth's own LogoutRequest (1), the IdP's (5).
    assert_eq!(count("Logout.Request"), 2, "{transactions}");
    // The IdP's answer to Shibboleth (2), Shibboleth's answer to the IdP (5): both Success.
    let successes = transactions
        .lines()
        .filter(|l| l.contains("|Shibboleth-TRANSACTION.Logout.Response|"))
        .filter(|l| l.contains("|urn:oasis:names:tc:SAML:2.0:status:Success|"))
        .count();
    assert_eq!(successes, 2, "{transactions}");
    let mut problems = Vec::new();
    for name in ["shibd.log", "transaction.log", "native.log", "error.log"] {
        let text = sp.log(name);
        problems.extend(
            text.lines()
                .filter(|l| is_problem(l) && !allowed(l))
                .map(|l| format!("{name}: {l}")),
        );
    }
    assert!(
        problems.is_empty(),
        "warnings or errors in Shibboleth's logs:\n{}",
        problems.join("\n")
    );
}

/// A log line at WARN or above: log4shib's level word (after the date in shibd.log, first
/// in native.log), Apache's `[module:level]`, or a transaction that failed (an exception
/// type or a SAML status other than Success).
fn is_problem(line: &str) -> bool {
    let levels = ["WARN", "ERROR", "CRIT", "FATAL", "ALERT", "EMERG"];
    line.split_whitespace()
        .take(3)
        .any(|word| levels.contains(&word))
        || [":warn]", ":error]", ":crit]", ":alert]", ":emerg]"]
            .iter()
            .any(|level| line.contains(level))
        || line.contains("Exception")
        || (line.contains("urn:oasis:names:tc:SAML:2.0:status:")
            && !line.contains("urn:oasis:names:tc:SAML:2.0:status:Success"))
}

/// Lines that say nothing about SAML and that this setup cannot avoid.
fn allowed(line: &str) -> bool {
    [
        // Plain HTTP on loopback: the two transport settings changed in peer.rs.
        "insecure cookieProps setting",
        "handlerSSL should be enabled",
        // Debian's default shibboleth2.xml enables the MetadataGenerator handler (which
        // the test uses to register the SP, as an admin would); Shibboleth marks that
        // handler as deprecated whenever it is configured.
        "Shibboleth.DEPRECATION : MetadataGenerator handler",
    ]
    .iter()
    .any(|allowed| line.contains(allowed))
}

/// What Latchkey's generic-saml template releases for alice, as Apache variables.
fn check_alice(env: &BTreeMap<String, String>, idp_entity: &str, sp_entity: &str) {
    let want = [
        ("AUTH_TYPE", "shibboleth"),
        ("Shib-Identity-Provider", idp_entity),
        ("mail", "alice@example.org"),
        ("givenName", "Alice"),
        ("sn", "Anders"),
        ("displayName", "Alice Anders"),
        ("uid", "alice"),
        ("isMemberOf", "staff"),
        (
            "Shib-AuthnContext-Class",
            "urn:oasis:names:tc:SAML:2.0:ac:classes:Password",
        ),
    ];
    for (name, value) in want {
        assert_eq!(
            env.get(name).map(String::as_str),
            Some(value),
            "{name} in {env:#?}"
        );
    }
    // The persistent NameID, qualified by both entity IDs.
    let prefix = format!("{idp_entity}!{sp_entity}!");
    assert!(
        env["persistent-id"]
            .strip_prefix(&prefix)
            .is_some_and(|v| v.len() >= 20),
        "{env:#?}"
    );
    assert!(env.contains_key("Shib-Session-ID"), "{env:#?}");
}

/// The one trail entry that starts with `prefix`.
fn hop(b: &Client, prefix: &str) -> String {
    let hops: Vec<&String> = b.trail.iter().filter(|h| h.starts_with(prefix)).collect();
    assert_eq!(hops.len(), 1, "one {prefix}... in {:#?}", b.trail);
    hops[0].clone()
}

/// The SAMLResponse of the last form posted to `acs`, decoded.
fn posted_response(b: &Client, acs: &str) -> String {
    let (_, fields) = b
        .posts
        .iter()
        .rev()
        .find(|(to, _)| to.as_str() == acs)
        .unwrap_or_else(|| panic!("nothing posted to {acs}: {:#?}", b.trail));
    let value = &fields.iter().find(|(n, _)| n == "SAMLResponse").unwrap().1;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(value)
        .unwrap();
    String::from_utf8(raw).unwrap()
}

/// The value of the first `name="..."` attribute in `xml` (on the root element for the
/// names used here: ID, InResponseTo).
fn xml_attr(xml: &str, name: &str) -> String {
    between(xml, &format!(" {name}=\""), "\"").to_owned()
}

/// The text between the first `start` in `text` and the next `end`.
fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("no {start:?} in {text}"))
        + start.len();
    let len = text[from..].find(end).unwrap();
    &text[from..from + len]
}
