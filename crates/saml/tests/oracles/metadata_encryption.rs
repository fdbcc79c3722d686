//! `md:EncryptionMethod` checked both ways against pysaml2's own metadata model and
//! python3-saml's bundled metadata schema (moved from `tests/saml/metadata_encryption.rs`).
#![allow(clippy::unwrap_used, clippy::panic)] // test helpers outside #[test] fns

use std::path::Path;
use std::process::Command;

use latchkey_saml::metadata::KeyUse;
use serde_json::{Value, json};

use crate::shared::metadata_encryption::*;

/// Runs the oracle script and parses its output (JSON for `read`, XML text for `write`).
fn oracle(args: &[&str]) -> String {
    let python = latchkey_testkit::oracle::python(&["saml2", "onelogin.saml2"]);
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/metadata_encryption_methods.py");
    let out = Command::new(&python)
        .arg(&script)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {} with {python}: {e} (set LATCHKEY_PYTHON to the oracle venv, see scripts/test)", script.display())
        });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(
        out.status.code(),
        Some(3),
        "pysaml2/python3-saml are not importable with {python} (set LATCHKEY_PYTHON to the \
         oracle venv, see scripts/test): {stderr}"
    );
    assert!(out.status.success(), "oracle failed: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn pysaml2_reads_the_methods_we_write_and_the_schema_accepts_their_place() {
    let cert = rsa_cert();
    let xml = sp_entity(&cert, &[AES128_CBC, RSA_OAEP_MGF1P])
        .to_xml()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sp.xml");
    std::fs::write(&path, &xml).unwrap();
    let verdict: Value = serde_json::from_str(&oracle(&["read", path.to_str().unwrap()])).unwrap();
    assert_eq!(
        verdict,
        json!({
            "keys": [
                {"use": "signing", "algorithms": []},
                {"use": "encryption", "algorithms": [AES128_CBC, RSA_OAEP_MGF1P]},
            ],
            "schema_valid": true,
        })
    );
    // The oracle does tell a misplaced element: the edited eduGAIN file (methods after
    // KeyInfo) is schema-valid, and the same methods before KeyInfo are not.
    let edited = edugain_with_methods();
    std::fs::write(&path, &edited).unwrap();
    let verdict: Value = serde_json::from_str(&oracle(&["read", path.to_str().unwrap()])).unwrap();
    assert_eq!(verdict["schema_valid"], true, "{verdict}");
    let kd = edited
        .find("<md:KeyDescriptor use=\"encryption\">")
        .unwrap();
    let start = kd + edited[kd..].find("<ds:KeyInfo").unwrap();
    let end = kd + edited[kd..].find("</ds:KeyInfo>").unwrap() + "</ds:KeyInfo>".len();
    let key_info = &edited[start..end];
    let close = kd + edited[kd..].find("</md:KeyDescriptor>").unwrap();
    let misplaced = format!(
        "{}{}{key_info}{}",
        &edited[..start],
        &edited[end..close],
        &edited[close..]
    );
    std::fs::write(&path, &misplaced).unwrap();
    let verdict: Value = serde_json::from_str(&oracle(&["read", path.to_str().unwrap()])).unwrap();
    assert_ne!(verdict["schema_valid"], true, "{verdict}");
}

#[test]
fn we_read_the_methods_pysaml2_writes() {
    let cert = rsa_cert();
    let xml = oracle(&[
        "write",
        "https://sp.example.org/saml",
        "https://sp.example.org/saml/acs",
        &cert.to_base64(),
        AES256_GCM,
        RSA_OAEP,
        TRIPLEDES,
    ]);
    let sp = sp_of(&xml);
    assert_eq!(sp.keys.len(), 1);
    assert_eq!(sp.keys[0].key_use, Some(KeyUse::Encryption));
    assert_eq!(sp.keys[0].certificates, vec![cert]);
    assert_eq!(
        sp.keys[0].encryption_methods,
        [AES256_GCM, RSA_OAEP, TRIPLEDES]
    );
}
