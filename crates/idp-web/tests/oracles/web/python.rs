//! Python oracles nobody here wrote: python3-saml as an SP of our IdP, and
//! openapi-spec-validator on the admin API's document.

use axum::http::StatusCode;
use latchkey_idp::Actor;

use super::api::api;
use super::sp_keys::*;
use super::support::*;

/// The OpenAPI document validates with openapi-spec-validator, software nobody here wrote
/// (the oracle venv, `LATCHKEY_PYTHON`; see scripts/test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_passes_openapi_spec_validator() {
    let a = api(crate::support::sqlite().await).await;
    let (status, doc) = a.get("/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let python = std::env::var("LATCHKEY_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(&python)
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {python} (set LATCHKEY_PYTHON to the oracle venv): {e}")
        });
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "openapi-spec-validator refused the document:\n{said}"
    );
    assert!(said.contains("OK"), "{said}");
}

/// python3-saml (strict, libxmlsec1 underneath) as an independent SP: it decrypts the
/// Response our IdP built for an encrypting application, verifies the signatures and
/// applies its profile rules. Needs the oracle venv (`LATCHKEY_PYTHON`); fails, never
/// skips, without it.
#[tokio::test]
async fn python3_saml_accepts_the_encrypted_response_our_idp_sends() {
    let idp = idp().await;
    let (key_pem, cert_pem) = sp_encryption_pair();
    idp.store
        .apps()
        .update(&Actor::system(), idp.app.id, |a| {
            a.encryption_cert = Some(cert_pem.clone());
            a.encrypt_assertion = true;
        })
        .await
        .unwrap();
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    let request = authn_request(SP);
    let xml = b.go(&redirect_uri(&request, None)).await.saml_response();
    let idp_cert = latchkey_idp::keys::KeyStore::open(&idp.key_dir)
        .unwrap()
        .active()
        .unwrap()
        .certificate()
        .unwrap()
        .to_pem();

    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let (response, idp_pem, sp_pem) = (
        write("response.xml", &xml),
        write("idp.pem", &idp_cert),
        write("sp.pem", &cert_pem),
    );
    let oracle = |sp_key: String| {
        python3_saml(&[
            response.clone(),
            idp_pem.clone(),
            sp_pem.clone(),
            sp_key,
            SP.to_owned(),
            SP_ACS.to_owned(),
            idp.settings.entity_id.clone(),
            request.id.clone(),
        ])
    };
    let verdict = oracle(write("sp-key.pem", &key_pem));
    assert_eq!(verdict["valid"], true, "{verdict}");
    let ours = sp_decrypt_validate(&idp, SP, SP_ACS, &key_pem, &xml, &request.id).unwrap();
    assert_eq!(verdict["name_id"], ours.name_id.value.as_str());

    // The same Response with another SP key is refused by python3-saml too.
    let (other_key, _) = sp_encryption_pair();
    let verdict = oracle(write("other-key.pem", &other_key));
    assert_eq!(verdict["valid"], false, "{verdict}");
}

/// Runs latchkey-saml's python3-saml oracle script and returns its JSON verdict.
fn python3_saml(args: &[String]) -> serde_json::Value {
    let python = std::env::var("LATCHKEY_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../saml/tests/oracle/onelogin_encrypted.py");
    let out = std::process::Command::new(&python)
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python:?} (set LATCHKEY_PYTHON): {e}"));
    assert_ne!(
        out.status.code(),
        Some(3),
        "python3-saml is not importable with {python:?} (set LATCHKEY_PYTHON to the oracle \
         venv): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Checks of scim2-tester that do not apply to the IdP's SCIM server, each with the reason:
/// (title, what its result says, why). Each must end SKIPPED, or ERROR with exactly that
/// text in its reason; every other check SUCCESS, COMPLIANT or ACCEPTABLE.
const SCIM_NOT_APPLICABLE: &[(&str, &str, &str)] = &[
    (
        "search_with_attributes",
        "",
        "POST /.search at the root is a MAY of RFC 7644 section 3.4.3 this server does not \
         offer (501, which scim2-tester counts as SKIPPED); listing with filter, attributes \
         and excludedAttributes on /Users and /Groups passes.",
    ),
    (
        "check_remove_attribute",
        "did not remove attribute 'active'",
        "A directory user is always active or suspended: removing `active` leaves the status \
         as it is (a removal must neither suspend nor resume anyone; `active: false` \
         suspends). Removing every other attribute passes.",
    ),
];

/// The IdP's SCIM server, served on loopback, against scim2-tester (software nobody here
/// wrote): every check that applies passes. Needs the oracle venv (`LATCHKEY_PYTHON`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim2_tester_passes_every_applicable_check_on_the_idp() {
    let t = crate::support::sqlite().await;
    let (_, issued) = latchkey_idp::tokens::ApiTokens::new(&t.store)
        .create_scoped(
            &Actor::cli("tester"),
            "scim2-tester",
            latchkey_idp::tokens::TokenScope::Scim,
        )
        .await
        .unwrap();
    let token = issued.expose().to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = latchkey_idp_web::scim::router(t.store.clone(), &format!("http://{addr}"));
    let server = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    let python = latchkey_testkit::oracle::python(&["scim2_tester", "httpx2"]);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/interop/scim2_tester_check.py");
    let url = format!("http://{addr}/scim/v2");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&python)
            .arg(&script)
            .args(["--url", &url, "--token", &token])
            .output()
            .unwrap_or_else(|e| panic!("cannot run scim2-tester with {python}: {e}"))
    })
    .await
    .unwrap();
    server.abort();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scim2-tester failed to run:\n{stderr}"
    );
    let results: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(results.len() > 20, "too few checks ran: {results:?}");
    let mut failed = Vec::new();
    for r in &results {
        let title = r["title"].as_str().unwrap_or_default();
        let status = r["status"].as_str().unwrap_or_default();
        let passed = matches!(status, "SUCCESS" | "COMPLIANT" | "ACCEPTABLE");
        let reason = r["reason"].as_str().unwrap_or_default();
        let excused = SCIM_NOT_APPLICABLE.iter().any(|(t, said, _)| {
            *t == title
                && if said.is_empty() {
                    status == "SKIPPED"
                } else {
                    status == "ERROR" && reason.contains(said) && !reason.contains('\n')
                }
        });
        if !passed && !excused {
            failed.push(format!(
                "{status} {} {title}: {}",
                r["resource_type"].as_str().unwrap_or("-"),
                r["reason"].as_str().unwrap_or_default()
            ));
        }
    }
    let summary: Vec<String> = results
        .iter()
        .map(|r| format!("{} {} {}", r["status"], r["resource_type"], r["title"]))
        .collect();
    println!("{}", summary.join("\n"));
    assert!(
        failed.is_empty(),
        "scim2-tester checks failed:\n{}",
        failed.join("\n")
    );
}
