use std::fs;
use std::os::unix::fs::PermissionsExt;

use time::macros::datetime;

use super::*;

const T0: OffsetDateTime = datetime!(2026-11-28 12:00 UTC);
const T1: OffsetDateTime = datetime!(2026-12-05 12:00 UTC);
const T2: OffsetDateTime = datetime!(2026-12-12 12:00 UTC);

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn first_start_generates_an_rsa_key_with_a_matching_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let keys_dir = dir.path().join("keys");
    let mut store = KeyStore::open(&keys_dir).unwrap();
    assert!(matches!(store.active(), Err(KeyError::NoActiveKey)));
    assert!(store.list().is_empty());

    let info = store.load_or_generate(KeyAlgorithm::Rsa2048, T0).unwrap();
    assert_eq!(info.status, KeyStatus::Active);
    assert_eq!(info.algorithm, KeyAlgorithm::Rsa2048);
    assert_eq!(info.activated_at, Some(T0));
    assert_eq!(info.fingerprint_sha256.len(), 64);
    assert!(info.fingerprint_sha256.starts_with(&info.id));

    let active = store.active().unwrap();
    assert_eq!(active.info, info);
    assert!(active.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(active.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    // An RSA-2048 PKCS#8 key is over 1,100 bytes of DER; a P-256 one is about 140.
    let der = pem::parse(active.key_pem.as_str()).unwrap();
    assert!(der.contents().len() > 1100, "{}", der.contents().len());
    // The certificate carries the generated key.
    let kp = KeyPair::from_pem(&active.key_pem).unwrap();
    let cert = pem::parse(&active.cert_pem).unwrap();
    let spki = kp.subject_public_key_info();
    assert!(
        cert.contents()
            .windows(spki.len())
            .any(|w| w == spki.as_slice())
    );
    assert_eq!(
        hex::encode(Sha256::digest(cert.contents())),
        info.fingerprint_sha256
    );

    // Files and permissions.
    assert_eq!(mode(&keys_dir), 0o700);
    assert_eq!(mode(&keys_dir.join(format!("{}.key.pem", info.id))), 0o600);
    assert_eq!(mode(&keys_dir.join(format!("{}.crt.pem", info.id))), 0o644);
    assert_eq!(mode(&keys_dir.join("state.json")), 0o600);

    // A second call keeps the key, even when asked for another algorithm.
    let again = store.load_or_generate(KeyAlgorithm::EcdsaP256, T1).unwrap();
    assert_eq!(again, info);
    assert_eq!(store.list().len(), 1);
}

#[test]
fn ecdsa_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path()).unwrap();
    let info = store.load_or_generate(KeyAlgorithm::EcdsaP256, T0).unwrap();
    assert_eq!(info.algorithm, KeyAlgorithm::EcdsaP256);
    let active = store.active().unwrap();
    let der = pem::parse(active.key_pem.as_str()).unwrap();
    assert!(der.contents().len() < 200, "{}", der.contents().len());
    // The key loads as P-256 and not as RSA.
    assert!(
        KeyPair::from_pkcs8_pem_and_sign_algo(&active.key_pem, &PKCS_ECDSA_P256_SHA256).is_ok()
    );
    assert!(KeyPair::from_pkcs8_pem_and_sign_algo(&active.key_pem, &PKCS_RSA_SHA256).is_err());
}

#[test]
fn rotate_then_activate_and_reload_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path()).unwrap();
    assert!(matches!(
        store.rotate(KeyAlgorithm::EcdsaP256, T0),
        Err(KeyError::NoActiveKey)
    ));
    let first = store.load_or_generate(KeyAlgorithm::EcdsaP256, T0).unwrap();
    assert!(matches!(
        store.activate(T0, Activation::Forced),
        Err(KeyError::NoNextKey)
    ));
    assert!(store.next().unwrap().is_none());
    assert_eq!(store.published_certificates().unwrap().len(), 1);

    let next = store.rotate(KeyAlgorithm::EcdsaP256, T1).unwrap();
    assert_eq!(next.status, KeyStatus::Next);
    assert_ne!(next.id, first.id);
    assert!(matches!(
        store.rotate(KeyAlgorithm::EcdsaP256, T1),
        Err(KeyError::NextKeyExists(id)) if id == next.id
    ));
    // The active key still signs; both certificates are published.
    assert_eq!(store.active().unwrap().info.id, first.id);
    assert_eq!(store.next().unwrap().unwrap().info.id, next.id);
    let published = store.published_certificates().unwrap();
    assert_eq!(published.len(), 2);
    assert_eq!(published[0], store.active().unwrap().cert_pem);

    // A fresh process sees the same state.
    let reopened = KeyStore::open(dir.path()).unwrap();
    let ids: Vec<_> = reopened
        .list()
        .into_iter()
        .map(|k| (k.id, k.status))
        .collect();
    assert_eq!(
        ids,
        [
            (first.id.clone(), KeyStatus::Active),
            (next.id.clone(), KeyStatus::Next)
        ]
    );

    let promoted = store.activate(T2, Activation::Forced).unwrap();
    assert_eq!(promoted.id, next.id);
    assert_eq!(promoted.activated_at, Some(T2));
    assert_eq!(store.active().unwrap().info.id, next.id);
    assert!(store.next().unwrap().is_none());
    assert_eq!(store.published_certificates().unwrap().len(), 1);

    let reopened = KeyStore::open(dir.path()).unwrap();
    let list = reopened.list();
    assert_eq!(list.len(), 2);
    assert_eq!(
        (list[0].id.as_str(), list[0].status),
        (next.id.as_str(), KeyStatus::Active)
    );
    assert_eq!(
        (list[1].id.as_str(), list[1].status),
        (first.id.as_str(), KeyStatus::Retired)
    );
    assert_eq!(list[1].retired_at, Some(T2));
    // The retired key's files stay for audit.
    assert!(dir.path().join(format!("{}.key.pem", first.id)).exists());

    // A second rollover works the same way.
    let third = store.rotate(KeyAlgorithm::Rsa2048, T2).unwrap();
    store.activate(T2, Activation::Forced).unwrap();
    let list = KeyStore::open(dir.path()).unwrap().list();
    assert_eq!(list[0].id, third.id);
    assert_eq!(
        list.iter()
            .filter(|k| k.status == KeyStatus::Retired)
            .count(),
        2
    );
}

#[test]
fn a_key_readable_by_others_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path()).unwrap();
    let info = store.load_or_generate(KeyAlgorithm::EcdsaP256, T0).unwrap();
    let key = dir.path().join(format!("{}.key.pem", info.id));
    fs::set_permissions(&key, fs::Permissions::from_mode(0o640)).unwrap();
    match KeyStore::open(dir.path()) {
        Err(KeyError::InsecurePermissions { mode, .. }) => assert_eq!(mode, 0o640),
        other => panic!("expected InsecurePermissions, got {other:?}"),
    }
    assert!(matches!(
        store.active(),
        Err(KeyError::InsecurePermissions { .. })
    ));
}

#[test]
fn tampered_files_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path()).unwrap();
    let info = store.load_or_generate(KeyAlgorithm::EcdsaP256, T0).unwrap();

    // Swap in another key's certificate: the fingerprint no longer matches.
    let other_dir = tempfile::tempdir().unwrap();
    let mut other = KeyStore::open(other_dir.path()).unwrap();
    let other_info = other.load_or_generate(KeyAlgorithm::EcdsaP256, T0).unwrap();
    let cert_path = dir.path().join(format!("{}.crt.pem", info.id));
    let original_cert = fs::read(&cert_path).unwrap();
    fs::copy(
        other_dir.path().join(format!("{}.crt.pem", other_info.id)),
        &cert_path,
    )
    .unwrap();
    assert!(
        matches!(KeyStore::open(dir.path()), Err(KeyError::Corrupt { reason, .. }) if reason.contains("fingerprint"))
    );
    fs::write(&cert_path, original_cert).unwrap();

    // Swap in another private key: it does not match the certificate.
    let key_path = dir.path().join(format!("{}.key.pem", info.id));
    let other_key = fs::read(other_dir.path().join(format!("{}.key.pem", other_info.id))).unwrap();
    fs::write(&key_path, other_key).unwrap();
    assert!(
        matches!(KeyStore::open(dir.path()), Err(KeyError::Corrupt { reason, .. }) if reason.contains("does not match"))
    );
}

#[test]
fn damaged_state_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path()).unwrap();
    let info = store.load_or_generate(KeyAlgorithm::EcdsaP256, T0).unwrap();
    let state_path = dir.path().join("state.json");
    let good = fs::read_to_string(&state_path).unwrap();

    fs::write(&state_path, "{ not json").unwrap();
    assert!(matches!(
        KeyStore::open(dir.path()),
        Err(KeyError::Corrupt { .. })
    ));

    // An id that would escape the directory.
    fs::write(
        &state_path,
        good.replace(
            &format!("\"id\": \"{}\"", info.id),
            "\"id\": \"../../etc/x\"",
        ),
    )
    .unwrap();
    assert!(
        matches!(KeyStore::open(dir.path()), Err(KeyError::Corrupt { reason, .. }) if reason.contains("bad key id"))
    );

    // Two active keys.
    let mut two: serde_json::Value = serde_json::from_str(&good).unwrap();
    let first = two["keys"][0].clone();
    two["keys"].as_array_mut().unwrap().push(first);
    fs::write(&state_path, two.to_string()).unwrap();
    assert!(
        matches!(KeyStore::open(dir.path()), Err(KeyError::Corrupt { reason, .. }) if reason.contains("more than one"))
    );

    fs::write(&state_path, &good).unwrap();
    assert_eq!(KeyStore::open(dir.path()).unwrap().list()[0].id, info.id);
}

#[test]
fn debug_output_hides_the_private_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path()).unwrap();
    store.load_or_generate(KeyAlgorithm::EcdsaP256, T0).unwrap();
    let active = store.active().unwrap();
    let shown = format!("{active:?}");
    assert!(!shown.contains("PRIVATE KEY"));
    assert!(shown.contains("redacted"));
}

#[test]
fn algorithm_names_round_trip() {
    for alg in [KeyAlgorithm::Rsa2048, KeyAlgorithm::EcdsaP256] {
        assert_eq!(KeyAlgorithm::parse(alg.as_str()), Some(alg));
    }
    assert_eq!(KeyAlgorithm::parse("ecdsa"), Some(KeyAlgorithm::EcdsaP256));
    assert_eq!(KeyAlgorithm::parse("dsa"), None);
}

#[test]
fn generated_keys_sign_and_their_certificates_verify_in_xmlsec() {
    use latchkey_xmlsec::crypto::LegacyPolicy;
    for alg in [KeyAlgorithm::Rsa2048, KeyAlgorithm::EcdsaP256] {
        let dir = tempfile::tempdir().unwrap();
        let mut store = KeyStore::open(dir.path()).unwrap();
        store.load_or_generate(alg, T0).unwrap();
        let active = store.active().unwrap();
        let key = active.signing_key().unwrap();
        let cert = active.certificate().unwrap();
        assert_eq!(cert.subject(), format!("CN={CERT_COMMON_NAME}"));
        assert_eq!(cert.not_after(), (T0 + CERT_VALIDITY).unix_timestamp());
        assert_eq!(
            cert.sha256_fingerprint().to_vec(),
            hex::decode(&active.info.fingerprint_sha256).unwrap()
        );
        let message = b"<SignedInfo>...</SignedInfo>";
        let algorithm = key.default_algorithm();
        let signature = key.sign(algorithm, message).unwrap();
        let policy = LegacyPolicy::default();
        cert.verifying_key()
            .verify(algorithm, message, &signature, policy)
            .unwrap();
        assert!(
            cert.verifying_key()
                .verify(algorithm, b"tampered", &signature, policy)
                .is_err()
        );
    }
}

#[test]
fn retire_next_abandons_a_rollover() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path()).unwrap();
    assert!(matches!(store.retire_next(T0), Err(KeyError::NoNextKey)));
    let first = store.load_or_generate(KeyAlgorithm::EcdsaP256, T0).unwrap();
    let next = store.rotate(KeyAlgorithm::EcdsaP256, T1).unwrap();
    let retired = store.retire_next(T2).unwrap();
    assert_eq!(retired.id, next.id);
    assert_eq!(retired.status, KeyStatus::Retired);
    assert_eq!(retired.retired_at, Some(T2));
    assert_eq!(retired.activated_at, None);
    assert!(matches!(
        store.activate(T2, Activation::Forced),
        Err(KeyError::NoNextKey)
    ));
    let reopened = KeyStore::open(dir.path()).unwrap();
    assert_eq!(reopened.active().unwrap().info.id, first.id);
    assert!(reopened.next().unwrap().is_none());
    assert_eq!(reopened.published_certificates().unwrap().len(), 1);
    // Its files stay, and it can still be read by id (import-files copies it).
    let material = reopened.material(&next.id).unwrap().unwrap();
    assert_eq!(material.info.status, KeyStatus::Retired);
    assert!(reopened.material("0000000000000000").unwrap().is_none());
}

#[test]
fn file_store_activation_waits_until_the_next_key_was_published_long_enough() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path().join("keys")).unwrap();
    store.load_or_generate(KeyAlgorithm::EcdsaP256, T0).unwrap();
    let next = store.rotate(KeyAlgorithm::EcdsaP256, T1).unwrap();
    let rule = Activation::AfterPublished(Duration::hours(24));
    let err = store.activate(T1 + Duration::hours(23), rule).unwrap_err();
    assert!(
        matches!(&err, KeyError::TooSoon { remaining, .. } if *remaining == Duration::hours(1)),
        "{err:?}"
    );
    assert!(err.to_string().contains("Wait 1h more"), "{err}");
    // The refusal left the rollover where it was, on disk too.
    assert_eq!(store.next().unwrap().unwrap().info.id, next.id);
    let reopened = KeyStore::open(dir.path().join("keys")).unwrap();
    assert_eq!(reopened.next().unwrap().unwrap().info.id, next.id);
    assert_eq!(
        store.activate(T1 + Duration::hours(24), rule).unwrap().id,
        next.id
    );
}

#[test]
fn the_wait_is_the_cache_duration_plus_the_database_refresh() {
    let files = crate::config::KeysConfig {
        metadata_cache_seconds: 600,
        ..crate::config::KeysConfig::default()
    };
    assert_eq!(
        Activation::for_config(&files),
        Activation::AfterPublished(Duration::minutes(10))
    );
    let database = crate::config::KeysConfig {
        store: crate::config::KeyStoreKind::Database,
        refresh_seconds: 30,
        ..files.clone()
    };
    assert_eq!(
        Activation::for_config(&database),
        Activation::AfterPublished(Duration::seconds(630))
    );
    assert_eq!(Activation::Forced.earliest(T1), T1);
    assert_eq!(
        Activation::for_config(&files).earliest(T1),
        T1 + Duration::minutes(10)
    );
}

#[test]
fn waits_read_as_hours_minutes_and_seconds() {
    assert_eq!(human(Duration::seconds(86_396)), "23h 59m 56s");
    assert_eq!(human(Duration::hours(1)), "1h");
    assert_eq!(human(Duration::milliseconds(4_200)), "5s");
    assert_eq!(human(Duration::ZERO), "0s");
}
