//! Interop with xmlsec1 (the README's oracle): every signature we make verifies there,
//! with only the certificate on the command line trusted, and a signature xmlsec1 makes
//! verifies here. xmlsec1 comes from Debian (`apt-get install xmlsec1`, done by
//! `scripts/test`); if it is missing these tests fail rather than pass silently.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use latchkey_xmlsec::crypto::{Certificate, SignatureAlgorithm, SigningKey};
use latchkey_xmlsec::dsig::{self, SignOptions, VerifyOptions};
use latchkey_xmlsec::reader::{self, Limits};

const ASSERTION_NS: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
const PROTOCOL_NS: &str = "urn:oasis:names:tc:SAML:2.0:protocol";

/// Namespaces (saml, xs, xsi) are declared on the Response, outside the signed
/// Assertion, so exclusive C14N has to pull them in.
const RESPONSE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ID="_resp1" Version="2.0" IssueInstant="2026-01-01T00:00:00Z" Destination="https://sp.example.org/acs">
  <saml:Issuer>https://idp.example.org</saml:Issuer>
  <samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>
  <saml:Assertion ID="_assert1" Version="2.0" IssueInstant="2026-01-01T00:00:00Z">
    <saml:Issuer>https://idp.example.org</saml:Issuer>
    <saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">alice@example.org</saml:NameID></saml:Subject>
    <saml:AttributeStatement><saml:Attribute Name="mail"><saml:AttributeValue xsi:type="xs:string">alice &amp; co &lt;x&gt;</saml:AttributeValue></saml:Attribute></saml:AttributeStatement>
  </saml:Assertion>
</samlp:Response>
"#;

fn xmlsec1() -> PathBuf {
    latchkey_testkit::oracle::xmlsec1()
}

struct Keys {
    key: SigningKey,
    cert: Certificate,
    key_pem: String,
}

fn keypair(alg: SignatureAlgorithm) -> Keys {
    let rc_alg = match alg {
        SignatureAlgorithm::RsaSha256 => &rcgen::PKCS_RSA_SHA256,
        SignatureAlgorithm::RsaSha384 => &rcgen::PKCS_RSA_SHA384,
        SignatureAlgorithm::RsaSha512 => &rcgen::PKCS_RSA_SHA512,
        SignatureAlgorithm::EcdsaSha256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        SignatureAlgorithm::EcdsaSha384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        other => panic!("no test key for {other:?}"),
    };
    let kp = rcgen::KeyPair::generate_for(rc_alg).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["idp.example.org".into()])
        .unwrap()
        .self_signed(&kp)
        .unwrap();
    Keys {
        key: SigningKey::from_pem(&kp.serialize_pem()).unwrap(),
        cert: Certificate::from_pem(&cert.pem()).unwrap(),
        key_pem: kp.serialize_pem(),
    }
}

/// Runs `xmlsec1 --verify` trusting only `cert`; returns (success, stderr).
fn xmlsec1_verify(
    dir: &Path,
    name: &str,
    xml: &str,
    cert: &Certificate,
    extra: &[&str],
) -> (bool, String) {
    let file = dir.join(format!("{name}.xml"));
    let cert_file = dir.join(format!("{name}.crt"));
    std::fs::write(&file, xml).unwrap();
    std::fs::write(&cert_file, cert.to_pem()).unwrap();
    let out = Command::new(xmlsec1())
        .args([
            "--verify",
            "--enabled-key-data",
            "key-name",
            "--pubkey-cert-pem",
        ])
        .arg(&cert_file)
        .arg("--id-attr:ID")
        .arg(format!("{ASSERTION_NS}:Assertion"))
        .arg("--id-attr:ID")
        .arg(format!("{PROTOCOL_NS}:Response"))
        .args(extra)
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.success() && stderr.contains("OK"), stderr)
}

#[test]
fn xmlsec1_verifies_what_we_sign() {
    let dir = tempfile::tempdir().unwrap();
    for alg in SignatureAlgorithm::ALL.into_iter().filter(|a| a.can_sign()) {
        let k = keypair(alg);
        let opts = SignOptions {
            algorithm: Some(alg),
            ..SignOptions::default()
        };
        let signed = dsig::sign(RESPONSE, "_assert1", &k.key, Some(&k.cert), &opts).unwrap();
        let name = format!("{alg:?}");
        let (ok, stderr) = xmlsec1_verify(dir.path(), &name, &signed, &k.cert, &[]);
        assert!(
            ok,
            "{alg:?}: xmlsec1 refused our signature:\n{stderr}\n{signed}"
        );

        // The oracle is not vacuous: it refuses a tampered copy, and a wrong key.
        let tampered = signed.replacen("alice@example.org", "mallory@example.org", 1);
        let (ok, _) = xmlsec1_verify(
            dir.path(),
            &format!("{name}-tampered"),
            &tampered,
            &k.cert,
            &[],
        );
        assert!(!ok, "{alg:?}: xmlsec1 accepted a tampered document");
        let other = keypair(alg);
        let (ok, _) = xmlsec1_verify(
            dir.path(),
            &format!("{name}-wrongkey"),
            &signed,
            &other.cert,
            &[],
        );
        assert!(!ok, "{alg:?}: xmlsec1 accepted the wrong key");
    }
}

#[test]
fn xmlsec1_verifies_both_signatures_of_a_doubly_signed_response() {
    let dir = tempfile::tempdir().unwrap();
    let k = keypair(SignatureAlgorithm::RsaSha256);
    let inner = dsig::sign(
        RESPONSE,
        "_assert1",
        &k.key,
        Some(&k.cert),
        &SignOptions::default(),
    )
    .unwrap();
    let both = dsig::sign(
        &inner,
        "_resp1",
        &k.key,
        Some(&k.cert),
        &SignOptions::default(),
    )
    .unwrap();
    for (name, xpath) in [
        (
            "outer",
            "/*[local-name()='Response']/*[local-name()='Signature']",
        ),
        (
            "inner",
            "//*[local-name()='Assertion']/*[local-name()='Signature']",
        ),
    ] {
        let (ok, stderr) =
            xmlsec1_verify(dir.path(), name, &both, &k.cert, &["--node-xpath", xpath]);
        assert!(ok, "{name}: {stderr}");
    }
}

/// The other direction: xmlsec1 fills in a signature template; we verify it.
#[test]
fn we_verify_what_xmlsec1_signs() {
    let dir = tempfile::tempdir().unwrap();
    for alg in [
        SignatureAlgorithm::RsaSha256,
        SignatureAlgorithm::EcdsaSha384,
    ] {
        let k = keypair(alg);
        let digest = if alg == SignatureAlgorithm::EcdsaSha384 {
            "http://www.w3.org/2001/04/xmldsig-more#sha384"
        } else {
            "http://www.w3.org/2001/04/xmlenc#sha256"
        };
        let template = format!(
            "<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\">\n      <ds:SignedInfo>\
             <ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>\
             <ds:SignatureMethod Algorithm=\"{}\"/><ds:Reference URI=\"#_assert1\"><ds:Transforms>\
             <ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/>\
             <ds:Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"><ec:InclusiveNamespaces xmlns:ec=\"http://www.w3.org/2001/10/xml-exc-c14n#\" PrefixList=\"xs\"/></ds:Transform>\
             </ds:Transforms><ds:DigestMethod Algorithm=\"{digest}\"/><ds:DigestValue/></ds:Reference>\
             </ds:SignedInfo>\n      <ds:SignatureValue/></ds:Signature>",
            alg.uri()
        );
        let xml = RESPONSE.replacen(
            "<saml:Issuer>https://idp.example.org</saml:Issuer>\n    <saml:Subject>",
            &format!("<saml:Issuer>https://idp.example.org</saml:Issuer>\n    {template}\n    <saml:Subject>"),
            1,
        );
        let tpl_file = dir.path().join("template.xml");
        let key_file = dir.path().join("key.pem");
        std::fs::write(&tpl_file, &xml).unwrap();
        std::fs::write(&key_file, &k.key_pem).unwrap();
        let out = Command::new(xmlsec1())
            .args(["--sign", "--privkey-pem"])
            .arg(&key_file)
            .arg("--id-attr:ID")
            .arg(format!("{ASSERTION_NS}:Assertion"))
            .arg(&tpl_file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "xmlsec1 --sign: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let signed = String::from_utf8(out.stdout).unwrap();
        let doc = reader::parse(&signed, &Limits::default()).unwrap();
        let keys = [k.cert.verifying_key().clone()];
        let v = dsig::verify_by_id(&doc, "_assert1", &keys, &VerifyOptions::default())
            .unwrap_or_else(|e| panic!("{alg:?}: {e}\n{signed}"));
        assert_eq!(v.signature_algorithm(), alg);
        assert_eq!(v.element().tag_name().name(), "Assertion");
    }
}
