//! Second factors in a real Chromium. The wiki requires MFA (`app set --require-mfa true`):
//! alice, who has no factor, enrols a TOTP app on her way in (the secret read off the page,
//! the code computed by pyotp, software nobody here wrote), sees her recovery codes once,
//! and reaches the wiki, whose `/whoami` shows the REFEDS MFA `AuthnContextClassRef`; the
//! helpdesk, without the policy, signs her in without another prompt, in the same IdP
//! session. A second browser signs in with the password and a code. Then, on a `localhost`
//! IdP (WebAuthn refuses IP addresses), password plus security key through WebDriver's
//! virtual authenticator.

use std::process::Command;

use serde_json::json;

use super::stack::{Stack, free_port};
use super::webdriver::{Browser, Driver};
use super::{Shots, artefact_dir_named, sign_in_at_idp, whoami};

const REFEDS_MFA: &str = "https://refeds.org/profile/mfa";

/// pyotp's code for the base32 `secret` at Unix time `at`.
fn pyotp_code(secret: &str, at: u64) -> String {
    let python = latchkey_testkit::oracle::python(&["pyotp"]);
    let out = Command::new(&python)
        .args([
            "-c",
            "import pyotp, sys; print(pyotp.TOTP(sys.argv[1]).at(int(sys.argv[2])))",
            secret,
            &at.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pyotp: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The wall clock's Unix time: the browser's and the IdP's, which pyotp's code must match.
fn now() -> u64 {
    use latchkey_idp::Clock as _;
    u64::try_from(latchkey_idp::SystemClock.now().unix_timestamp()).unwrap()
}

/// On the IdP's "set up an authenticator app" page (where a sign-in that needs a second
/// factor sends a user who has none): reads the secret off the page, confirms it with
/// pyotp's code, and continues past the recovery codes, shown once.
pub(super) async fn enrol_totp_on_the_way(b: &Browser, idp: &str) {
    b.wait_for(&format!("{idp}/mfa/totp"), "Set up an authenticator app")
        .await;
    let secret = b
        .script(
            "return document.getElementById('totp-secret').textContent;",
            json!([]),
        )
        .await;
    let secret: String = secret
        .as_str()
        .unwrap()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    b.type_into("#code", &pyotp_code(&secret, now())).await;
    b.click("form[action='/mfa/totp'] button[type=submit]")
        .await;
    b.wait_for(&format!("{idp}/mfa/totp"), "Your recovery codes")
        .await;
    b.click("#continue").await;
}

/// The entity ID the stack registered the app under.
fn entity(app_url: &str) -> String {
    format!("{app_url}/saml/metadata")
}

/// Opens `app` and follows its "sign in" link to the IdP.
async fn start_at(b: &Browser, app: &str) {
    b.goto(&format!("{app}/")).await;
    b.click("a[href='/login']").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alice_enrols_totp_on_the_way_to_a_wiki_that_requires_mfa() {
    let dir = artefact_dir_named("mfa");
    let logs = dir.join("logs");
    let mut shots = Shots {
        dir: dir.clone(),
        next: 0,
    };
    let profiles = tempfile::tempdir().unwrap();
    let driver = Driver::start(free_port(), &logs.join("chromedriver.log")).await;
    let stack = Stack::start(&logs);
    stack.cli(&["app", "set", &entity(&stack.wiki), "--require-mfa", "true"]);
    let idp = stack.idp.clone();

    // 1. The wiki sends her to the IdP; after the password, the IdP asks her to set up an
    //    authenticator app, since the wiki needs a second factor and she has none.
    let alice = driver.browser(&profiles.path().join("alice")).await;
    start_at(&alice, &stack.wiki).await;
    sign_in_at_idp(&alice, &stack, "alice").await;
    let text = alice
        .wait_for(
            &format!("{idp}/mfa/totp?continue="),
            "Set up an authenticator app",
        )
        .await;
    assert!(
        text.contains("Latchkey demo wiki asks for a second factor"),
        "{text}"
    );
    assert_eq!(alice.count(".qr svg").await, 1, "the QR code: {text}");
    shots.take(&alice, "enrol-totp").await;
    let secret = alice
        .script(
            "return document.getElementById('totp-secret').textContent;",
            json!([]),
        )
        .await;
    let secret: String = secret
        .as_str()
        .unwrap()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    assert_eq!(secret.len(), 32, "{secret}");
    let at = now();
    alice.type_into("#code", &pyotp_code(&secret, at)).await;
    alice
        .click("form[action='/mfa/totp'] button[type=submit]")
        .await;

    // 2. The factor counts: ten recovery codes, once; then on to the wiki.
    let text = alice
        .wait_for(&format!("{idp}/mfa/totp"), "Your recovery codes")
        .await;
    assert!(text.contains("They are shown only now"), "{text}");
    assert_eq!(alice.count("#recovery-codes li").await, 10, "{text}");
    shots.take(&alice, "recovery-codes").await;
    alice.click("#continue").await;
    let text = alice
        .wait_for(&format!("{}/", stack.wiki), "Signed in as Alice Anders")
        .await;
    assert!(text.contains("Role: editor"), "{text}");
    shots.take(&alice, "wiki-after-mfa").await;
    let wiki_me = whoami(&alice, &stack.wiki).await;
    assert_eq!(wiki_me["authn_context_class_ref"], REFEDS_MFA, "{wiki_me}");

    // 3. The helpdesk has no policy: the same IdP session signs her in, no prompt.
    start_at(&alice, &stack.helpdesk).await;
    let text = alice
        .wait_for(&format!("{}/", stack.helpdesk), "Signed in as")
        .await;
    assert!(text.contains("Alice Anders"), "{text}");
    shots.take(&alice, "helpdesk-no-prompt").await;
    let desk_me = whoami(&alice, &stack.helpdesk).await;
    assert_eq!(
        desk_me["session_index"], wiki_me["session_index"],
        "{desk_me}"
    );
    assert_eq!(desk_me["authn_context_class_ref"], REFEDS_MFA);
    alice.quit().await;

    // 4. Another browser: the password, then the second step with a code (the next step's,
    //    which the IdP's one step of skew accepts: the current one was used to enrol).
    let other = driver.browser(&profiles.path().join("alice-2")).await;
    start_at(&other, &stack.wiki).await;
    sign_in_at_idp(&other, &stack, "alice").await;
    let text = other
        .wait_for(
            &format!("{idp}/login/mfa?continue="),
            "Code from your authenticator app",
        )
        .await;
    assert!(text.contains("Use a recovery code"), "{text}");
    shots.take(&other, "second-step").await;
    other
        .type_into("#code", &pyotp_code(&secret, at + 30))
        .await;
    other
        .click("form[action='/login/mfa'] button[type=submit]")
        .await;
    other
        .wait_for(&format!("{}/", stack.wiki), "Signed in as Alice Anders")
        .await;
    let me = whoami(&other, &stack.wiki).await;
    assert_eq!(me["authn_context_class_ref"], REFEDS_MFA, "{me}");
    assert_ne!(me["session_index"], wiki_me["session_index"]);
    other.quit().await;

    // The audit has each step.
    let audit = stack.cli(&["audit", "--user", "alice", "--json"]);
    for action in [
        "mfa.totp_enrol",
        "mfa.recovery_codes_regenerate",
        "login.step_up",
    ] {
        assert!(audit.contains(action), "{action}: {audit}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_and_security_key_for_a_wiki_that_requires_mfa() {
    let dir = artefact_dir_named("mfa-security-key");
    let logs = dir.join("logs");
    let mut shots = Shots {
        dir: dir.clone(),
        next: 0,
    };
    let stack = Stack::start_with_idp_host(&logs, "localhost");
    let idp = stack.idp.clone();
    let driver = Driver::start(free_port(), &logs.join("chromedriver.log")).await;
    let profiles = tempfile::tempdir().unwrap();
    let b = driver.browser(&profiles.path().join("alice")).await;
    // A security key with a PIN: USB, no room for resident keys, user verification.
    let authenticator = b
        .command(
            "POST",
            "/webauthn/authenticator",
            json!({
                "protocol": "ctap2",
                "transport": "usb",
                "hasResidentKey": false,
                "hasUserVerification": true,
                "isUserVerified": true,
            }),
        )
        .await;
    let authenticator = authenticator.as_str().unwrap().to_owned();

    // Her first factor: the key, added after her password.
    b.goto(&format!("{idp}/login")).await;
    sign_in_at_idp(&b, &stack, "alice").await;
    b.wait_for(&format!("{idp}/portal"), "").await;
    b.goto(&format!("{idp}/webauthn")).await;
    b.type_into("#key-name", "yubikey").await;
    b.click("#enrol").await;
    b.wait_for(&format!("{idp}/webauthn"), "Enrolled: yubikey")
        .await;
    let held = b
        .command(
            "GET",
            &format!("/webauthn/authenticator/{authenticator}/credentials"),
            json!({}),
        )
        .await;
    assert_eq!(held.as_array().unwrap().len(), 1, "{held}");
    b.command("DELETE", "/cookie", json!({})).await;

    // The wiki now needs a second factor: password, then the key.
    stack.cli(&["app", "set", &entity(&stack.wiki), "--require-mfa", "true"]);
    start_at(&b, &stack.wiki).await;
    sign_in_at_idp(&b, &stack, "alice").await;
    let text = b
        .wait_for(&format!("{idp}/login/mfa?continue="), "Use a security key")
        .await;
    assert!(!text.contains("Code from your authenticator app"), "{text}");
    shots.take(&b, "second-step-key").await;
    b.click("#security-key").await;
    b.wait_for(&format!("{}/", stack.wiki), "Signed in as Alice Anders")
        .await;
    shots.take(&b, "wiki-after-key").await;
    let me = whoami(&b, &stack.wiki).await;
    assert_eq!(me["authn_context_class_ref"], REFEDS_MFA, "{me}");
    let audit = stack.cli(&["audit", "--user", "alice", "--json"]);
    assert!(audit.contains("\"security_key\""), "{audit}");
    b.quit().await;
}
