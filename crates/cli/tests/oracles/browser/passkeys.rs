//! Passkeys in a real Chromium, through WebDriver's virtual authenticator (CTAP2, internal,
//! resident keys, user verification): alice enrols a passkey after her password (and, as it
//! is her first factor, is shown her recovery codes once), signs out,
//! and signs in with the passkey and no password; a browser holding a passkey the IdP never
//! enrolled is refused. The IdP is on `localhost` (WebAuthn refuses IP-address RP IDs).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use super::stack::{Stack, free_port};
use super::webdriver::{Browser, Driver};
use super::{artefact_dir_named, sign_in_at_idp};

async fn virtual_authenticator(b: &Browser) -> String {
    let id = b
        .command(
            "POST",
            "/webauthn/authenticator",
            json!({
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserVerified": true,
            }),
        )
        .await;
    id.as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkeys_enrol_and_sign_in_without_a_password() {
    let dir = artefact_dir_named("passkeys");
    let logs = dir.join("logs");
    let stack = Stack::start_with_idp_host(&logs, "localhost");
    let idp = stack.idp.clone();
    let driver = Driver::start(free_port(), &logs.join("chromedriver.log")).await;
    let profiles = tempfile::tempdir().unwrap();

    let b = driver.browser(&profiles.path().join("alice")).await;
    let authenticator = virtual_authenticator(&b).await;
    b.goto(&format!("{idp}/login")).await;
    sign_in_at_idp(&b, &stack, "alice").await;
    b.wait_for(&format!("{idp}/portal"), "").await;

    // Enrol: the page's script runs navigator.credentials.create against the virtual key.
    b.goto(&format!("{idp}/webauthn")).await;
    b.type_into("#key-name", "laptop").await;
    b.click("#enrol").await;
    b.wait_for(&format!("{idp}/webauthn"), "Enrolled: laptop")
        .await;
    // Her first factor: ten recovery codes, shown once on the page by its script.
    let page = b
        .wait_for(&format!("{idp}/webauthn"), "shown only now")
        .await;
    assert_eq!(b.count("#recovery-codes li").await, 10, "{page}");
    let held = b
        .command(
            "GET",
            &format!("/webauthn/authenticator/{authenticator}/credentials"),
            json!({}),
        )
        .await;
    let held = held.as_array().unwrap();
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["isResidentCredential"], true);
    assert_eq!(held[0]["rpId"], "localhost");

    // Sign out (every cookie gone), then in with the passkey alone.
    b.command("DELETE", "/cookie", json!({})).await;
    b.goto(&format!("{idp}/portal")).await;
    b.wait_for(&format!("{idp}/login"), "Password").await;
    b.goto(&format!("{idp}/webauthn")).await;
    let page = b.text().await;
    assert!(!page.contains("Signed in as"), "{page}");
    b.click("#passkey-sign-in").await;
    let portal = b.wait_for(&format!("{idp}/portal"), "").await;
    assert!(portal.to_lowercase().contains("alice"), "{portal}");
    b.quit().await;

    // A passkey for this RP that the IdP never enrolled (a key made here, put into a
    // fresh virtual authenticator): refused with its code, no session.
    let m = driver.browser(&profiles.path().join("mallory")).await;
    let authenticator = virtual_authenticator(&m).await;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    m.command(
        "POST",
        &format!("/webauthn/authenticator/{authenticator}/credential"),
        json!({
            "credentialId": URL_SAFE_NO_PAD.encode([7u8; 32]),
            "isResidentCredential": true,
            "rpId": "localhost",
            "privateKey": URL_SAFE_NO_PAD.encode(key.serialize_der()),
            "userHandle": URL_SAFE_NO_PAD.encode([9u8; 16]),
            "signCount": 0,
        }),
    )
    .await;
    m.goto(&format!("{idp}/webauthn")).await;
    m.click("#passkey-sign-in").await;
    m.wait_for(&format!("{idp}/webauthn"), "WEBAUTHN-UNKNOWN-CREDENTIAL")
        .await;
    m.goto(&format!("{idp}/portal")).await;
    m.wait_for(&format!("{idp}/login"), "Password").await;
    m.quit().await;
}
