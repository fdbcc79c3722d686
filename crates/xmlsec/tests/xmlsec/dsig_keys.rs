//! Key and certificate loading in every encoding we accept, and the refusals.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use latchkey_xmlsec::crypto::{
    Certificate, Curve, KeyError, KeyKind, LegacyPolicy, SignatureAlgorithm, SigningKey,
    VerifyingKey,
};

fn text(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/data/keys/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn bytes(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/data/keys/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn rsa_private_key_in_pkcs1_and_pkcs8_is_the_same_key() {
    let pkcs1 = SigningKey::from_pem(&text("rsa2048-pkcs1.pem")).unwrap();
    let pkcs8 = SigningKey::from_der(&bytes("rsa2048-pkcs8.der")).unwrap();
    assert_eq!(pkcs1.kind(), KeyKind::Rsa { bits: 2048 });
    assert_eq!(pkcs1.verifying_key(), pkcs8.verifying_key());
    let debug = format!("{pkcs1:?}");
    assert_eq!(debug, "SigningKey { kind: Rsa { bits: 2048 }, .. }");
}

#[test]
fn every_public_encoding_gives_the_same_key() {
    let private = SigningKey::from_pem(&text("rsa2048-pkcs1.pem")).unwrap();
    let want = private.verifying_key();
    let cert_pem = Certificate::from_pem(&text("rsa2048-cert.pem")).unwrap();
    let cert_der = Certificate::from_der(&bytes("rsa2048-cert.der")).unwrap();
    assert_eq!(cert_pem, cert_der);
    assert_eq!(cert_pem.verifying_key(), want);
    assert_eq!(
        &VerifyingKey::from_pem(&text("rsa2048-cert.pem")).unwrap(),
        want
    );
    assert_eq!(
        &VerifyingKey::from_pem(&text("rsa2048-spki.pem")).unwrap(),
        want
    );
    assert_eq!(
        &VerifyingKey::from_pem(&text("rsa2048-pkcs1-public.pem")).unwrap(),
        want
    );
    assert!(
        cert_pem.subject().contains("CN=latchkey test rsa"),
        "{}",
        cert_pem.subject()
    );
    assert!(cert_pem.not_after() > cert_pem.not_before());
    // `openssl x509 -noout -fingerprint -sha256 -in rsa2048-cert.pem`: FB:B4:E1:D9:...:1A
    let fp = cert_pem.sha256_fingerprint();
    assert_eq!(fp[..4], [0xFB, 0xB4, 0xE1, 0xD9]);
    assert_eq!(fp[31], 0x1A);
    // PEM out parses back to the same DER, and base64 (as in ds:X509Certificate, with
    // line breaks) too.
    assert_eq!(
        Certificate::from_pem(&cert_pem.to_pem()).unwrap().der(),
        cert_der.der()
    );
    let wrapped: String = cert_pem
        .to_base64()
        .as_bytes()
        .chunks(64)
        .map(|c| format!("{}\n  ", std::str::from_utf8(c).unwrap()))
        .collect();
    assert_eq!(Certificate::from_base64(&wrapped).unwrap(), cert_pem);
    let sig = private.sign(SignatureAlgorithm::RsaSha512, b"m").unwrap();
    cert_der
        .verifying_key()
        .verify(
            SignatureAlgorithm::RsaSha512,
            b"m",
            &sig,
            LegacyPolicy::default(),
        )
        .unwrap();
}

#[test]
fn ec_sec1_with_parameters_block() {
    let key = SigningKey::from_pem(&text("p256-sec1.pem")).unwrap();
    assert_eq!(key.kind(), KeyKind::Ec(Curve::P256));
    assert_eq!(key.default_algorithm(), SignatureAlgorithm::EcdsaSha256);
}

#[test]
fn weak_or_verify_only_keys_are_refused_for_signing() {
    assert!(matches!(
        SigningKey::from_pem(&text("rsa1024-pkcs8.pem")),
        Err(KeyError::RsaKeyTooSmall {
            bits: 1024,
            min: 2048
        })
    ));
    assert!(matches!(
        SigningKey::from_pem(&text("p521-pkcs8.pem")),
        Err(KeyError::InvalidPrivateKey(_))
    ));
    // A public key is not a private key, and vice versa.
    assert!(matches!(
        SigningKey::from_pem(&text("rsa2048-spki.pem")),
        Err(KeyError::NoUsablePemBlock { .. })
    ));
    assert!(matches!(
        VerifyingKey::from_pem(&text("rsa2048-pkcs1.pem")),
        Err(KeyError::NoUsablePemBlock { .. })
    ));
    assert!(Certificate::from_der(b"\x30\x82\x01").is_err());
    let mut der = bytes("rsa2048-cert.der");
    der.push(0);
    assert!(matches!(
        Certificate::from_der(&der),
        Err(KeyError::InvalidCertificate(_))
    ));
}

#[test]
fn unsupported_curve_is_not_mistaken_for_rsa() {
    // secp256k1 in SEC1 form (generated once with `openssl ecparam -name secp256k1`).
    let k1 = "-----BEGIN EC PRIVATE KEY-----\nK1\n-----END EC PRIVATE KEY-----\n";
    let k1 = k1.replace("K1\n", KEY_K1);
    assert!(matches!(
        SigningKey::from_pem(&k1),
        Err(KeyError::InvalidPrivateKey(_))
    ));
}

const KEY_K1: &str = "MHQCAQEEIEZVVhpVh9zVPU9s+rt2sYZmSTtOZT5msvvSimnCtGjWoAcGBSuBBAAKoUQDQgAEU5VZdZNMpt0XO3w5oTx442mGEzKIy8iGNr6G/UaRo7dEttGwyLBOS3jedGy0+/G27DUj92441/O55w3ITVoRwA==\n";
