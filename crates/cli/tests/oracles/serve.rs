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
    let python = latchkey_testkit::oracle::python(&["saml2"]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/pysaml2_sp.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(cmd)
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
