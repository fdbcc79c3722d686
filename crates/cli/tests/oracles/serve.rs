//! `latchkey serve` for real: the binary on a loopback socket, with pysaml2 as the SP and a
//! scripted browser (tests/interop/pysaml2_sp.py) signing in through it, SP- and
//! IdP-initiated. The oracle is found through LATCHKEY_PYTHON (scripts/test sets it),
//! falling back to `python3`; if it cannot run, the test FAILS with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::shared::serve::*;

fn pysaml2(base: &str, seeded: &Seeded, cmd: &str) -> serde_json::Value {
    pysaml2_with(base, seeded, cmd, &[])
}

fn pysaml2_with(base: &str, seeded: &Seeded, cmd: &str, extra: &[&str]) -> serde_json::Value {
    let python = latchkey_testkit::oracle::python(&["saml2", "pyotp"]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/pysaml2_sp.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(cmd)
        .args(extra)
        .args(["--base", base, "--sp-entity-id", SP_ENTITY, "--acs", SP_ACS])
        .arg("--key")
        .arg(&seeded.key)
        .arg("--cert")
        .arg(&seeded.cert)
        .args(["--username", "alice", "--password", PASSWORD])
        .args(["--app-id", &seeded.app_id])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {python} (set LATCHKEY_PYTHON to the oracle venv, see scripts/test): {e}")
        });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "pysaml2 SP failed (set LATCHKEY_PYTHON to the oracle venv, see scripts/test):\n{stderr}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// python3-saml's SP (tests/interop/onelogin_sp.py), asking for REFEDS MFA.
fn onelogin(base: &str, extra: &[&str]) -> serde_json::Value {
    let python = latchkey_testkit::oracle::python(&["onelogin.saml2", "pyotp"]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/onelogin_sp.py");
    let out = Command::new(&python)
        .arg(&script)
        .args([
            "--base",
            base,
            "--sp-entity-id",
            ONELOGIN_ENTITY,
            "--acs",
            ONELOGIN_ACS,
        ])
        .args(["--username", "alice", "--password", PASSWORD])
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    assert!(
        out.status.success(),
        "python3-saml SP failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

const ONELOGIN_ENTITY: &str = "https://sp.onelogin.test/metadata";
const ONELOGIN_ACS: &str = "https://sp.onelogin.test/acs";
const REFEDS_MFA: &str = "https://refeds.org/profile/mfa";

/// Starts `latchkey serve` on the seeded configuration and waits until it answers.
fn start_server(dir: &Path, port: u16, config: &Path) -> Server {
    let log = std::fs::File::create(dir.join("serve.log")).unwrap();
    let server = Server(
        Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .args(["serve", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    while !http_get(port, "/healthz").is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "server did not come up: {}",
            std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

/// Both Python SPs ask for REFEDS MFA (`RequestedAuthnContext`, exact) and get it after a
/// second factor: python3-saml's, in strict mode with `failOnAuthnContextMismatch`, for a
/// sign-in on which alice enrols TOTP (the secret read off the page, pyotp's code); then
/// pysaml2's, whose first sign-in is a plain one (a password: `Password` on plain http) and
/// whose request for MFA steps the same IdP session up with a code (same SessionIndex, no
/// second password).
#[test]
fn python_sps_that_request_refeds_mfa_get_it_after_a_step_up() {
    let (dir, port, base, config) = cheap_server_config();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let seeded = runtime.block_on(seed(&config, dir.path()));
    runtime.block_on(async {
        let config = latchkey_idp::Config::load(Some(&config)).unwrap();
        let store = latchkey_idp::Store::open(&config).await.unwrap();
        let admin = latchkey_idp::Actor::system();
        let mut app =
            latchkey_idp::apps::NewApplication::new(ONELOGIN_ENTITY, "OneLogin SP", ONELOGIN_ACS);
        // python3-saml wants an AttributeStatement.
        app.attributes = vec!["mail=email".parse().unwrap()];
        let app = store.apps().create(&admin, app).await.unwrap();
        let staff = store.groups().lookup("staff").await.unwrap();
        store.apps().assign(&admin, app.id, staff.id).await.unwrap();
        store.close().await;
    });
    let _server = start_server(dir.path(), port, &config);

    let strict = onelogin(&base, &[]);
    assert_eq!(strict["errors"], serde_json::json!([]), "{strict}");
    assert_eq!(
        strict["authn_contexts"],
        serde_json::json!([REFEDS_MFA]),
        "{strict}"
    );
    assert_eq!(strict["in_response_to"], strict["request_id"]);
    assert_eq!(
        strict["idp_pages"],
        serde_json::json!(["/login", "/mfa/totp"]),
        "{strict}"
    );
    assert_eq!(strict["recovery_codes"], 10);
    let secret = strict["totp_secret"].as_str().unwrap().to_owned();
    let last_step = strict["totp_last_step"].to_string();

    let sp = pysaml2_with(
        &base,
        &seeded,
        "sp-initiated-mfa",
        &["--totp-secret", &secret, "--totp-last-step", &last_step],
    );
    let (first, stepped) = (&sp["first"], &sp["stepped_up"]);
    assert_eq!(
        first["authn_context"], "urn:oasis:names:tc:SAML:2.0:ac:classes:Password",
        "{sp}"
    );
    assert_eq!(stepped["authn_context"], REFEDS_MFA, "{sp}");
    assert_eq!(stepped["in_response_to"], stepped["request_id"]);
    assert_eq!(stepped["session_index"], first["session_index"], "{sp}");
    // The step-up asked for the code alone: the session already had the password.
    assert_eq!(
        stepped["idp_pages"],
        serde_json::json!(["/login/mfa"]),
        "{sp}"
    );
    // The step-up's AuthnInstant (to the second: the same second, on a fast machine).
    assert!(
        stepped["authn_instant"].as_str().unwrap() >= first["authn_instant"].as_str().unwrap(),
        "{sp}"
    );
}

#[test]
fn pysaml2_sp_signs_in_through_a_running_server() {
    let (dir, port, base, config) = cheap_server_config();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let seeded = runtime.block_on(seed(&config, dir.path()));

    let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .args(["serve", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    loop {
        if http_get(port, "/healthz").is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "server did not come up: {}",
            std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let ready = http_get(port, "/readyz").unwrap();
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    assert!(ready.contains("content-security-policy: default-src 'none'"));

    let sp = pysaml2(&base, &seeded, "sp-initiated");
    assert_eq!(sp["in_response_to"], sp["request_id"], "{sp}");
    assert_eq!(sp["issuer"], format!("{base}/saml/metadata"));
    assert_eq!(
        sp["name_id_format"],
        "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
    );
    assert_eq!(sp["relay_state"], "interop-relay");
    assert_eq!(
        sp["ava"]["mail"],
        serde_json::json!(["alice@example.org"]),
        "{sp}"
    );
    assert_eq!(sp["ava"]["givenName"], serde_json::json!(["Alice"]));
    assert!(
        sp["session_index"]
            .as_str()
            .is_some_and(|s| s.starts_with("_s"))
    );

    let post = pysaml2(&base, &seeded, "sp-initiated-post");
    assert_eq!(post["in_response_to"], post["request_id"], "{post}");
    assert_eq!(post["relay_state"], "interop-post");
    assert_eq!(post["name_id"], sp["name_id"]);

    let idp = pysaml2(&base, &seeded, "idp-initiated");
    assert!(idp["in_response_to"].is_null(), "{idp}");
    assert_eq!(idp["relay_state"], "/home");
    // The same pairwise identifier both times.
    assert_eq!(idp["name_id"], sp["name_id"]);

    let metrics = http_get(port, "/metrics").unwrap();
    assert!(
        metrics.contains(&format!(
            "latchkey_assertions_issued_total{{app=\"{SP_ENTITY}\"}} 3"
        )),
        "{metrics}"
    );
}
