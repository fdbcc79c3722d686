//! mod_auth_mellon, the SAML SP module many Apache sites run, against a real `latchkey
//! serve`, with mellon's defaults: it asks for a `transient` NameID, which Latchkey must
//! issue although the app is registered (from the `generic-saml` template) with pairwise
//! persistent NameIDs.
//!
//! Apache (`apache.rs`) runs mod_auth_mellon from a temporary directory, configured only
//! where any administrator must: the SP's key and certificate (Debian ships none;
//! `mellon_create_metadata` would make them), the IdP's metadata (Latchkey's own
//! `/saml/metadata`) and the attribute names (`MellonSetEnv`, the standard SAML 2.0
//! X.500/LDAP names the template releases). Mellon generates its own metadata, from which
//! Latchkey registers it (`latchkey app add --metadata`). The scripted browser (`client.rs`)
//! then goes through:
//!
//! 1. SP-initiated login: the protected page sends alice to the IdP with an AuthnRequest
//!    asking for a transient NameID; she signs in and the page shows the NameID and the
//!    released attributes as `MELLON_*` variables;
//! 2. single logout from mellon (`/mellon/logout`), through the IdP and back;
//! 3. an unassigned user (carol) refused by the IdP, mellon never reached;
//! 4. a second login (a new transient NameID) and single logout from the IdP's portal,
//!    through mellon and back;
//! 5. an allowed list of NameID formats without transient: mellon's request is answered
//!    `InvalidNameIDPolicy` and mellon lets nobody in.
//!
//! Needs Debian's `apache2` and `libapache2-mod-auth-mellon` (scripts/test installs them);
//! without them the test FAILS and names them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::apache::{self, Apache, free_port};
use crate::client::Client;
use crate::sp_idp::{
    Idp, between, cli, hop, portal_sign_out, posted_response, redirect_message, sign_in, variables,
    xml_attr,
};

/// What Debian ships; the test fails, naming them, when they are missing.
const PACKAGES: &str = "apache2 libapache2-mod-auth-mellon";
const MOD_MELLON: &str = "/usr/lib/apache2/modules/mod_auth_mellon.so";
const TRANSIENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient";

struct Mellon {
    /// `http://localhost:PORT`.
    base: String,
    apache: Apache,
}

impl Mellon {
    fn start(dir: &Path, idp_metadata: &str) -> Mellon {
        for path in [apache::APACHE, MOD_MELLON] {
            assert!(
                Path::new(path).exists(),
                "{path} is missing: the mod_auth_mellon interop test needs the Debian \
                 packages {PACKAGES} (scripts/test installs them: apt-get install {PACKAGES})"
            );
        }
        apache::prepare(dir);
        let etc = dir.join("mellon");
        std::fs::create_dir_all(&etc).unwrap();
        apache::open_up(&etc, false);
        // The SP's key and certificate, as mellon_create_metadata would make them.
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&pair)
            .unwrap();
        let key = etc.join("sp-key.pem");
        std::fs::write(&key, pair.serialize_pem()).unwrap();
        // Apache reads it as root at start (lasso ≥ 2.2.2), so it stays private.
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(etc.join("sp-cert.pem"), cert.pem()).unwrap();
        std::fs::write(etc.join("idp-metadata.xml"), idp_metadata).unwrap();
        std::fs::write(
            dir.join("htdocs/secure/env.shtml"),
            "<pre>\n<!--#printenv -->\n</pre>\n",
        )
        .unwrap();
        std::fs::write(dir.join("htdocs/index.html"), "<p>mellon test site</p>\n").unwrap();

        let port = free_port();
        let etc_path = etc.display();
        let site = format!(
            "LoadModule authz_user_module {modules}/mod_authz_user.so\n\
             LoadModule auth_mellon_module {MOD_MELLON}\n\
             <Location />\n\
               MellonEnable info\n\
               MellonEndpointPath /mellon\n\
               MellonSPPrivateKeyFile {etc_path}/sp-key.pem\n\
               MellonSPCertFile {etc_path}/sp-cert.pem\n\
               MellonIdPMetadataFile {etc_path}/idp-metadata.xml\n\
               MellonSetEnv mail urn:oid:0.9.2342.19200300.100.1.3\n\
               MellonSetEnv givenName urn:oid:2.5.4.42\n\
               MellonSetEnv sn urn:oid:2.5.4.4\n\
               MellonSetEnv displayName urn:oid:2.16.840.1.113730.3.1.241\n\
               MellonSetEnv uid urn:oid:0.9.2342.19200300.100.1.1\n\
               MellonSetEnv isMemberOf urn:oid:1.3.6.1.4.1.5923.1.5.1.1\n\
             </Location>\n\
             <Location /secure>\n\
               AuthType Mellon\n\
               MellonEnable auth\n\
               Require valid-user\n\
               Options +Includes\n\
               SetHandler server-parsed\n\
             </Location>\n",
            modules = apache::MODULES
        );
        // Only what Apache needs: nothing of the test's environment reaches the page that
        // prints the environment.
        let env = [("PATH", PathBuf::from("/usr/sbin:/usr/bin:/sbin:/bin"))];
        let apache = Apache::start(dir, port, &site, &env);
        Mellon {
            base: apache.base.clone(),
            apache,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mod_auth_mellon_signs_in_and_out_through_latchkey_with_transient_name_ids() {
    let dir = tempfile::Builder::new()
        .prefix("latchkey-mellon-")
        .tempdir()
        .unwrap();
    let idp_server = Idp::start(dir.path()).await;
    let idp = idp_server.base.clone();
    let config = idp_server.config.clone();
    let mellon_dir = dir.path().join("mellon-sp");
    std::fs::create_dir_all(&mellon_dir).unwrap();
    let mut sp = Mellon::start(&mellon_dir, &idp_server.metadata);
    let secure = format!("{}/secure/env.shtml", sp.base);
    let acs = format!("{}/mellon/postResponse", sp.base);

    // Register mellon from the metadata it generates itself, which says what it asks
    // for: transient NameIDs.
    let mut b = Client::new();
    let metadata = b.get(&format!("{}/mellon/metadata", sp.base)).await;
    assert_eq!(metadata.status, 200, "{}", metadata.body);
    assert!(metadata.body.contains(TRANSIENT), "{}", metadata.body);
    let entity_id = between(&metadata.body, "entityID=\"", "\"").to_owned();
    let metadata_file = dir.path().join("mellon-metadata.xml");
    std::fs::write(&metadata_file, &metadata.body).unwrap();
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
            "Mellon SP",
        ],
    );
    eprintln!("latchkey app add --metadata (mellon's):\n{warnings}");
    cli(&config, &["app", "assign", &entity_id, "staff"]);
    let shown: serde_json::Value =
        serde_json::from_str(&cli(&config, &["app", "show", &entity_id, "--json"]).0).unwrap();
    assert_eq!(
        shown["name_id_format"], "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
        "the template's own format, so that issuing transient is the IdP honouring the request"
    );

    // 1. SP-initiated login, transient NameID asked for and issued.
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
    assert!(
        request.contains(&format!("Format=\"{TRANSIENT}\"")),
        "mellon asks for a transient NameID by default: {request}"
    );
    let request_id = xml_attr(&request, "ID");
    let page = sign_in(&mut b, page, "alice").await;
    assert_eq!(page.url.as_str(), secure, "{:#?}", b.trail);
    let response = posted_response(&b, &acs);
    assert_eq!(xml_attr(&response, "InResponseTo"), request_id);
    assert!(response.contains(TRANSIENT), "{response}");
    let env = variables(&page);
    let first_id = check_alice(&env);
    assert!(response.contains(&first_id), "{response}");

    // 2. Single logout from mellon: its LogoutRequest names the transient NameID; the IdP
    //    ends her session and answers Success; mellon sends her to ReturnTo.
    let back = format!("{}/index.html", sp.base);
    let page = b
        .get(&format!(
            "{}/mellon/logout?ReturnTo={}",
            sp.base,
            form_encode(&back)
        ))
        .await;
    let page = b.settle(page).await;
    let slo = hop(&b, &format!("GET {idp}/saml/slo?SAMLRequest="));
    let (logout, query) = redirect_message(&slo);
    assert!(logout.contains("LogoutRequest"), "{logout}");
    assert!(logout.contains(&first_id), "{logout}");
    assert!(
        query.contains_key("Signature"),
        "mellon's LogoutRequest is unsigned: {slo}"
    );
    let answer = hop(&b, &format!("GET {}/mellon/logout?SAMLResponse=", sp.base));
    let (logout_response, query) = redirect_message(&answer);
    assert_eq!(
        xml_attr(&logout_response, "InResponseTo"),
        xml_attr(&logout, "ID")
    );
    assert!(
        logout_response.contains("urn:oasis:names:tc:SAML:2.0:status:Success"),
        "{logout_response}"
    );
    assert!(query.contains_key("Signature"));
    assert_eq!(page.url.as_str(), back, "{:#?}", b.trail);
    // Both sessions are gone: the page asks the IdP again, which asks for a password.
    let page = b.get(&secure).await;
    assert!(
        page.url.as_str().starts_with(&format!("{idp}/login")),
        "{}",
        page.url
    );

    // 3. carol is assigned nothing: refused by the IdP, nothing posted to mellon.
    let mut c = Client::new();
    let page = c.get(&secure).await;
    let page = sign_in(&mut c, page, "carol").await;
    assert!(page.url.as_str().starts_with(&idp), "{}", page.url);
    assert!(page.body.contains("Access denied"), "{}", page.body);
    assert!(page.body.contains("Mellon SP"), "{}", page.body);
    assert!(
        c.posts
            .iter()
            .all(|(to, _)| !to.as_str().starts_with(&sp.base))
    );

    // 4. A new login gets a new transient NameID; single logout from the IdP's portal
    //    sends mellon a LogoutRequest naming it, and mellon answers Success.
    let mut d = Client::new();
    let page = d.get(&secure).await;
    let page = sign_in(&mut d, page, "alice").await;
    let env = variables(&page);
    let second_id = check_alice(&env);
    assert_ne!(second_id, first_id, "a transient NameID is never reused");
    let page = portal_sign_out(&mut d, &idp_server).await;
    let hop_in = hop(&d, &format!("GET {}/mellon/logout?SAMLRequest=", sp.base));
    let (logout, query) = redirect_message(&hop_in);
    assert!(logout.contains(&second_id), "{logout}");
    assert!(query.contains_key("Signature"));
    let hop_out = hop(&d, &format!("GET {idp}/saml/slo?SAMLResponse="));
    let (logout_response, _) = redirect_message(&hop_out);
    assert_eq!(
        xml_attr(&logout_response, "InResponseTo"),
        xml_attr(&logout, "ID")
    );
    assert!(
        logout_response.contains("urn:oasis:names:tc:SAML:2.0:status:Success"),
        "{logout_response}"
    );
    assert!(
        page.body.contains("You are signed out of Latchkey"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Mellon SP"), "{}", page.body);
    assert!(!page.body.contains("did not confirm"), "{}", page.body);
    let page = d.get(&secure).await;
    assert!(
        page.url.as_str().starts_with(&format!("{idp}/login")),
        "mellon's session survived the IdP's logout: {}",
        page.url
    );

    // 5. With an allowed list that leaves transient out, mellon's request is refused with
    //    InvalidNameIDPolicy, and mellon shows nothing of the protected page.
    cli(
        &config,
        &["app", "set", &entity_id, "--name-id-formats", "persistent"],
    );
    // Refused when the request arrives: nobody is asked to sign in for it.
    let mut e = Client::new();
    let page = e.get(&secure).await;
    let page = e.settle(page).await;
    let response = posted_response(&e, &acs);
    assert!(
        response.contains("urn:oasis:names:tc:SAML:2.0:status:InvalidNameIDPolicy"),
        "{response}"
    );
    assert!(!response.contains("Assertion"), "{response}");
    assert_ne!(page.status, 200, "{}: {}", page.url, page.body);
    assert!(!page.body.contains("MELLON_NAME_ID"), "{}", page.body);
    assert!(
        !e.cookie_names("127.0.0.1")
            .iter()
            .any(|n| n.contains("session")),
        "a session at the IdP"
    );

    // mellon's log: the one refusal of step 5, and no other warning or error.
    sp.apache.stop();
    let log = sp.apache.log("error.log");
    let problems: Vec<&str> = log
        .lines()
        .filter(|l| {
            [":warn]", ":error]", ":crit]", ":alert]", ":emerg]"]
                .iter()
                .any(|level| l.contains(level))
        })
        .collect();
    assert_eq!(problems.len(), 1, "mellon's error.log:\n{log}");
    assert!(
        problems[0].contains("urn:oasis:names:tc:SAML:2.0:status:InvalidNameIDPolicy"),
        "{log}"
    );
}

/// What the generic-saml template releases for alice, as mellon's variables; returns the
/// transient NameID.
fn check_alice(env: &BTreeMap<String, String>) -> String {
    let want = [
        ("AUTH_TYPE", "Mellon"),
        ("MELLON_mail", "alice@example.org"),
        ("MELLON_givenName", "Alice"),
        ("MELLON_sn", "Anders"),
        ("MELLON_displayName", "Alice Anders"),
        ("MELLON_uid", "alice"),
        ("MELLON_isMemberOf", "staff"),
    ];
    for (name, value) in want {
        assert_eq!(
            env.get(name).map(String::as_str),
            Some(value),
            "{name} in {env:#?}"
        );
    }
    let name_id = env
        .get("MELLON_NAME_ID")
        .unwrap_or_else(|| panic!("no MELLON_NAME_ID in {env:#?}"))
        .clone();
    assert!(name_id.len() >= 20, "{env:#?}");
    assert_ne!(name_id, "alice");
    assert_ne!(name_id, "alice@example.org");
    assert_eq!(env.get("REMOTE_USER"), Some(&name_id), "{env:#?}");
    name_id
}

fn form_encode(value: &str) -> String {
    let mut url = reqwest::Url::parse("http://x/").unwrap();
    url.query_pairs_mut().append_pair("v", value);
    url.query().unwrap()["v=".len()..].to_owned()
}
