//! XML Encryption interop, both directions:
//! * with xmlsec1 (Debian `xmlsec1`, installed by `scripts/test`): it decrypts what we
//!   encrypt, and we decrypt what it encrypts, live and from stored vectors. xmlsec1 1.2
//!   knows only `rsa-oaep-mgf1p`, so it covers SHA-1 OAEP with every content cipher;
//! * with pyca/cryptography through `tests/oracle/xmlenc_oracle.py` (`LATCHKEY_PYTHON`,
//!   default `python3`), an independent implementation that also covers XML-Enc 1.1
//!   `rsa-oaep` with SHA-256 and MGF1-SHA-256.
//!
//! A missing xmlsec1 or Python oracle fails the tests; they never pass silently.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use latchkey_xmlsec::crypto::Certificate;
use latchkey_xmlsec::reader::{self, Limits};
use latchkey_xmlsec::xmlenc::{
    self, DataAlgorithm, DecryptOptions, Decrypted, DecryptionKey, EncryptOptions, KeyTransport,
};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/xmlenc/");

fn data_path(name: &str) -> String {
    format!("{DATA}{name}")
}

fn data(name: &str) -> String {
    std::fs::read_to_string(data_path(name)).unwrap()
}

fn assertion_element() -> String {
    let text = data("assertion.xml");
    let start = text.find("<saml:Assertion").unwrap();
    text[start..].trim_end().to_owned()
}

fn xmlsec1() -> PathBuf {
    latchkey_testkit::oracle::xmlsec1()
}

fn python() -> String {
    latchkey_testkit::oracle::python(&["lxml", "cryptography"])
}

fn oracle(args: &[&str]) -> Vec<u8> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/xmlenc_oracle.py");
    let out = Command::new(python())
        .arg(&script)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run the XML-Enc oracle with {:?} (set LATCHKEY_PYTHON to a Python with \
                 lxml and cryptography): {e}",
                python()
            )
        });
    assert_ne!(
        out.status.code(),
        Some(3),
        "the XML-Enc oracle cannot import lxml/cryptography with {:?}: {}",
        python(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "oracle {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn decrypt_text(xml: &str) -> Decrypted {
    let doc = reader::parse(xml, &Limits::default()).unwrap();
    let key = DecryptionKey::from_pem(&data("sp-key.pem")).unwrap();
    let encrypted = doc
        .tree()
        .descendants()
        .find(|n| n.tag_name().name() == "EncryptedData")
        .unwrap();
    xmlenc::decrypt_element(encrypted, &[], &[key], &DecryptOptions::default()).unwrap()
}

fn sp_cert() -> Certificate {
    Certificate::from_pem(&data("sp-cert.pem")).unwrap()
}

/// Runs `xmlsec1 decrypt` with only `key` loaded; returns (success, stdout, stderr).
fn xmlsec1_decrypt(dir: &Path, xml: &str, key: &str) -> (bool, String, String) {
    let file = dir.join("in.xml");
    std::fs::write(&file, xml).unwrap();
    let out = Command::new(xmlsec1())
        .args(["decrypt", "--privkey-pem"])
        .arg(data_path(key))
        .arg(&file)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn xmlsec1_decrypts_what_we_encrypt() {
    let dir = tempfile::tempdir().unwrap();
    for data_alg in DataAlgorithm::ALL {
        for include_certificate in [false, true] {
            let mut options = EncryptOptions::new(data_alg, KeyTransport::RsaOaepMgf1Sha1);
            options.include_certificate = include_certificate;
            let enc = xmlenc::encrypt_element(&data("assertion.xml"), "_a1", &sp_cert(), &options)
                .unwrap();
            let (ok, stdout, stderr) = xmlsec1_decrypt(dir.path(), &enc, "sp-key.pem");
            assert!(
                ok,
                "{data_alg:?}: xmlsec1 refused our EncryptedData:\n{stderr}\n{enc}"
            );
            // xmlsec1 prints the document without an encoding declaration, so it writes
            // the one non-ASCII character as a character reference.
            let stdout = stdout.replace("&#xE9;", "\u{e9}");
            assert!(
                stdout.contains(&assertion_element()),
                "{data_alg:?}: xmlsec1 decrypted something else:\n{stdout}"
            );
            // The oracle can say no: the wrong key fails there too.
            let (ok, _, _) = xmlsec1_decrypt(dir.path(), &enc, "other-key.pem");
            assert!(!ok, "{data_alg:?}: xmlsec1 decrypted with the wrong key");
        }
    }
}

#[test]
fn we_decrypt_what_xmlsec1_encrypts() {
    let dir = tempfile::tempdir().unwrap();
    for (template, session_key, data_alg) in [
        (
            "tmpl-aes256-gcm-rsa-oaep-mgf1p.xml",
            "aes-256",
            DataAlgorithm::Aes256Gcm,
        ),
        (
            "tmpl-aes128-cbc-rsa-oaep-mgf1p.xml",
            "aes-128",
            DataAlgorithm::Aes128Cbc,
        ),
    ] {
        // Several runs: xmlsec1 pads CBC with random bytes, so the pad varies.
        for _ in 0..4 {
            let out = Command::new(xmlsec1())
                .args(["encrypt", "--pubkey-cert-pem"])
                .arg(data_path("sp-cert.pem"))
                .args(["--session-key", session_key, "--xml-data"])
                .arg(data_path("assertion.xml"))
                .args([
                    "--node-name",
                    "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
                ])
                .arg(data_path(template))
                .current_dir(dir.path())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "xmlsec1 encrypt: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let enc = String::from_utf8(out.stdout).unwrap();
            let plain = decrypt_text(&enc);
            assert_eq!(plain.xml, assertion_element(), "{template}");
            assert_eq!(plain.data_algorithm, data_alg);
            assert_eq!(plain.key_transport, KeyTransport::RsaOaepMgf1Sha1);
        }
    }
}

#[test]
fn stored_xmlsec1_vectors_decrypt() {
    for name in [
        "xmlsec1-aes256-gcm-rsa-oaep-mgf1p.xml",
        "xmlsec1-aes128-cbc-rsa-oaep-mgf1p.xml",
    ] {
        assert_eq!(decrypt_text(&data(name)).xml, assertion_element(), "{name}");
    }
    // xmlsec1 replaced the Assertion inside the Response, and its plaintext uses
    // prefixes only the Response declares: they are put on the decrypted element.
    let out = decrypt_text(&data("xmlsec1-in-place-inherited-ns.xml"));
    assert!(
        out.xml.starts_with(
            "<saml:Assertion xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" \
             xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" \
             xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" \
             xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" ID=\"_a2\""
        ),
        "{}",
        out.xml
    );
    let original = data("response-inherited-ns.xml");
    let start = original.find("<saml:Assertion").unwrap();
    let end = original.find("</samlp:Response>").unwrap();
    let rest_of_start_tag = &original[start + "<saml:Assertion".len()..end];
    assert!(out.xml.ends_with(rest_of_start_tag), "{}", out.xml);
}

#[test]
fn python_cryptography_decrypts_what_we_encrypt() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("enc.xml");
    for data_alg in DataAlgorithm::ALL {
        for transport in KeyTransport::ALL {
            let enc = xmlenc::encrypt_element(
                &data("assertion.xml"),
                "_a1",
                &sp_cert(),
                &EncryptOptions::new(data_alg, transport),
            )
            .unwrap();
            std::fs::write(&file, &enc).unwrap();
            let plain = oracle(&["decrypt", &data_path("sp-key.pem"), file.to_str().unwrap()]);
            assert_eq!(
                String::from_utf8(plain).unwrap(),
                assertion_element(),
                "{data_alg:?} {transport:?}"
            );
        }
    }
}

#[test]
fn we_decrypt_what_python_cryptography_encrypts() {
    let dir = tempfile::tempdir().unwrap();
    let element = dir.path().join("element.xml");
    std::fs::write(&element, assertion_element()).unwrap();
    for (name, data_alg) in [
        ("aes128-gcm", DataAlgorithm::Aes128Gcm),
        ("aes256-gcm", DataAlgorithm::Aes256Gcm),
        ("aes128-cbc", DataAlgorithm::Aes128Cbc),
        ("aes256-cbc", DataAlgorithm::Aes256Cbc),
    ] {
        for (transport_name, transport) in [
            ("mgf1p", KeyTransport::RsaOaepMgf1Sha1),
            ("oaep256", KeyTransport::RsaOaepSha256),
        ] {
            let enc = oracle(&[
                "encrypt",
                &data_path("sp-cert.pem"),
                element.to_str().unwrap(),
                name,
                transport_name,
            ]);
            let out = decrypt_text(&String::from_utf8(enc).unwrap());
            assert_eq!(out.xml, assertion_element(), "{name} {transport_name}");
            assert_eq!(
                (out.data_algorithm, out.key_transport),
                (data_alg, transport)
            );
        }
    }
}
