//! What XML-DSig costs over the raw RSA operation it wraps.
//!
//! Run: `cargo bench -p latchkey-xmlsec --bench dsig`. Measures, in one run, enveloped
//! signing and verification of a typical SAML assertion (parse + exclusive C14N +
//! digest + RSA-2048) beside raw RSA-2048 PKCS#1 signing and verifying of a message the
//! size of a SignedInfo, then prints the two ratios.
// Bench set-up works on fixed inputs; a failure there should stop the bench loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::Criterion;
use latchkey_xmlsec::crypto::{LegacyPolicy, SignatureAlgorithm, SigningKey};
use latchkey_xmlsec::dsig::{self, SignOptions, VerifyOptions};
use latchkey_xmlsec::reader::{self, Limits};

const RESPONSE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ID="_resp1" Version="2.0" IssueInstant="2026-01-01T00:00:00Z" Destination="https://sp.example.org/saml/acs" InResponseTo="_req42">
  <saml:Issuer>https://idp.example.org/saml</saml:Issuer>
  <samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>
  <saml:Assertion ID="_assert1" Version="2.0" IssueInstant="2026-01-01T00:00:00Z">
    <saml:Issuer>https://idp.example.org/saml</saml:Issuer>
    <saml:Subject>
      <saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">alice@example.org</saml:NameID>
      <saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">
        <saml:SubjectConfirmationData NotOnOrAfter="2026-01-01T00:05:00Z" Recipient="https://sp.example.org/saml/acs" InResponseTo="_req42"/>
      </saml:SubjectConfirmation>
    </saml:Subject>
    <saml:Conditions NotBefore="2026-01-01T00:00:00Z" NotOnOrAfter="2026-01-01T00:05:00Z">
      <saml:AudienceRestriction><saml:Audience>https://sp.example.org/saml</saml:Audience></saml:AudienceRestriction>
    </saml:Conditions>
    <saml:AuthnStatement AuthnInstant="2026-01-01T00:00:00Z" SessionIndex="_sess1">
      <saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext>
    </saml:AuthnStatement>
    <saml:AttributeStatement>
      <saml:Attribute Name="mail"><saml:AttributeValue xsi:type="xs:string">alice@example.org</saml:AttributeValue></saml:Attribute>
      <saml:Attribute Name="displayName"><saml:AttributeValue xsi:type="xs:string">Alice Example</saml:AttributeValue></saml:Attribute>
      <saml:Attribute Name="groups"><saml:AttributeValue xsi:type="xs:string">staff</saml:AttributeValue><saml:AttributeValue xsi:type="xs:string">admins</saml:AttributeValue></saml:Attribute>
    </saml:AttributeStatement>
  </saml:Assertion>
</samlp:Response>
"#;

/// Mean time per iteration of each measured function, over every batch criterion ran.
static TOTALS: Mutex<[(Duration, u64); 4]> = Mutex::new([(Duration::ZERO, 0); 4]);

const XML_SIGN: usize = 0;
const XML_VERIFY: usize = 1;
const RAW_SIGN: usize = 2;
const RAW_VERIFY: usize = 3;

fn measured<R>(c: &mut Criterion, name: &str, slot: usize, mut f: impl FnMut() -> R) {
    c.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(f());
            }
            let elapsed = start.elapsed();
            let mut totals = TOTALS.lock().unwrap();
            totals[slot].0 += elapsed;
            totals[slot].1 += iters;
            elapsed
        });
    });
}

fn main() {
    let rsa = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let pkcs8 =
        aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&rsa).unwrap();
    let key = SigningKey::from_der(pkcs8.as_ref()).unwrap();
    let keys = [key.verifying_key().clone()];
    let options = SignOptions::default();
    let signed = dsig::sign(RESPONSE, "_assert1", &key, None, &options).unwrap();
    let verify_options = VerifyOptions::default();

    // A message the size of a canonical SignedInfo, for the raw operations.
    let signed_info_len = {
        let start = signed.find("<ds:SignedInfo>").unwrap();
        let end = signed.find("</ds:SignedInfo>").unwrap();
        end - start + 120
    };
    let message = vec![b'x'; signed_info_len];
    let raw_signature = key.sign(SignatureAlgorithm::RsaSha256, &message).unwrap();

    let mut c = Criterion::default().configure_from_args();
    measured(&mut c, "dsig/sign assertion (RSA-2048)", XML_SIGN, || {
        dsig::sign(RESPONSE, "_assert1", &key, None, &options).unwrap()
    });
    measured(
        &mut c,
        "dsig/verify assertion (RSA-2048)",
        XML_VERIFY,
        || {
            let doc = reader::parse(&signed, &Limits::default()).unwrap();
            dsig::verify_by_id(&doc, "_assert1", &keys, &verify_options)
                .unwrap()
                .key_index()
        },
    );
    measured(&mut c, "raw/RSA-2048 PKCS#1 sign", RAW_SIGN, || {
        key.sign(SignatureAlgorithm::RsaSha256, &message).unwrap()
    });
    measured(&mut c, "raw/RSA-2048 PKCS#1 verify", RAW_VERIFY, || {
        keys[0]
            .verify(
                SignatureAlgorithm::RsaSha256,
                &message,
                &raw_signature,
                LegacyPolicy::default(),
            )
            .unwrap()
    });
    c.final_summary();

    let totals = *TOTALS.lock().unwrap();
    let mean = |slot: usize| {
        let (total, iters) = totals[slot];
        total.as_secs_f64() / (iters.max(1) as f64)
    };
    if totals.iter().all(|(_, n)| *n > 0) {
        println!(
            "\nXML-DSig over raw RSA-2048 (document {} bytes, SignedInfo ~{} bytes):",
            signed.len(),
            signed_info_len
        );
        println!(
            "  sign:   {:>9.1} us vs {:>9.1} us raw  -> ratio {:.2}",
            mean(XML_SIGN) * 1e6,
            mean(RAW_SIGN) * 1e6,
            mean(XML_SIGN) / mean(RAW_SIGN)
        );
        println!(
            "  verify: {:>9.1} us vs {:>9.1} us raw  -> ratio {:.2}",
            mean(XML_VERIFY) * 1e6,
            mean(RAW_VERIFY) * 1e6,
            mean(XML_VERIFY) / mean(RAW_VERIFY)
        );
    }
}
