//! Interop: a login from a pysaml2 IdP (software nobody here wrote) is accepted by the toolkit
//! and JIT-provisions a helpdesk account.
//!
//! The oracle is found through LATCHKEY_PYTHON (scripts/test points it at the venv), falling
//! back to `python3`; if pysaml2 cannot run, this test FAILS with the reason.

use std::path::Path;
use std::process::Command;

use axum::http::StatusCode;
use latchkey_demo_apps::{AppKind, Clock};
use latchkey_sp::jit::NAMEID_FORMAT_PERSISTENT;

use crate::support::*;

fn pysaml2_response(dir: &Path, t: &TestApp, metadata: &str, request_id: &str) -> String {
    let key = dir.join("idp.key");
    let cert = dir.join("idp.crt");
    let sp_md = dir.join("sp.xml");
    std::fs::write(&key, &idp_key().key_pem).unwrap();
    std::fs::write(&cert, &idp_key().cert_pem).unwrap();
    std::fs::write(&sp_md, metadata).unwrap();
    let python = latchkey_testkit::oracle::python(&["saml2"]);
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/pysaml2_idp_response.py");
    let out = Command::new(&python)
        .arg(&script)
        .args(["--key", key.to_str().unwrap()])
        .args(["--cert", cert.to_str().unwrap()])
        .args(["--idp-entity-id", IDP, "--sso", SSO])
        .args(["--sp-metadata", sp_md.to_str().unwrap()])
        .args(["--sp-entity-id", &t.entity_id, "--acs", &t.acs])
        .args(["--request-id", request_id, "--name-id", "pysaml2-pairwise-7"])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run the pysaml2 oracle with {python}: {e} (set LATCHKEY_PYTHON to the oracle venv, see scripts/test)")
        });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "pysaml2 oracle failed with {python} (set LATCHKEY_PYTHON to the oracle venv, see scripts/test):\n{stderr}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["xml"].as_str().unwrap().to_owned()
}

/// pysaml2 sends the attributes it knows under their `urn:mace:dir:attribute-def:` names (and
/// `department`, which it does not know, as is), so the helpdesk's contract is replaced by one
/// reading those names through `[sp.provisioning]`, as an operator would for such an IdP.
const PYSAML2_CONTRACT: &str = r#"
[sp.provisioning]
identity = { source = "persistent_name_id" }
default_role = "requester"

[[sp.provisioning.fields]]
attribute = "urn:mace:dir:attribute-def:givenName"
field = "given_name"
ownership = "idp"
required = true

[[sp.provisioning.fields]]
attribute = "urn:mace:dir:attribute-def:sn"
field = "surname"
ownership = "idp"
required = true

[[sp.provisioning.fields]]
attribute = "department"
field = "department"
ownership = "idp"
required = true

[[sp.provisioning.fields]]
attribute = "urn:mace:dir:attribute-def:email"
field = "email"
ownership = "idp"

[[sp.provisioning.roles]]
grant = "agent"
when = { attribute = "department", equals = "support" }
"#;

#[tokio::test]
async fn pysaml2_idp_login_provisions_a_helpdesk_account() {
    let t = app_at(AppKind::Helpdesk, PYSAML2_CONTRACT, Clock::System).await;
    let dir = tempfile::tempdir().unwrap();
    let metadata = get(&t, "/saml/metadata", None).await.body;
    let (relay, request_id) = start_login(&t).await;
    let xml = pysaml2_response(dir.path(), &t, &metadata, &request_id);
    assert!(xml.contains(&request_id));

    let reply = post_acs(&t, &xml, Some(&relay)).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let me = whoami(&t, Some(&reply.cookie())).await;
    assert_eq!(me["issuer"], IDP);
    assert_eq!(me["name_id"], "pysaml2-pairwise-7");
    assert_eq!(me["name_id_format"], NAMEID_FORMAT_PERSISTENT);
    assert_eq!(me["account"]["fields"]["given_name"], "Ada");
    assert_eq!(me["account"]["fields"]["surname"], "Lovelace");
    assert_eq!(me["account"]["fields"]["department"], "support");
    assert_eq!(me["account"]["fields"]["email"], "ada@example.org");
    assert_eq!(me["account"]["role"], "agent");
    assert_eq!(
        me["provisioning"],
        "created just now from your Latchkey login"
    );
    let accounts = t.app.store().accounts().await.unwrap();
    assert_eq!(accounts.len(), 1);
    assert_eq!(
        accounts[0].identity.as_ref().unwrap().key,
        "name_id:pysaml2-pairwise-7"
    );
}
