//! Assertion encryption settings in the registry: an encryption certificate that cannot
//! encrypt is refused when stored (not at the first sign-in), and the algorithms an SP
//! advertises are stored with it, imported from its metadata, and read back from stores
//! made before they were recorded.

use latchkey_idp::Error;
use latchkey_idp::apps::{NewApplication, SpMetadata, SpMetadataOptions};
use time::macros::datetime;

use super::{admin, snapshot};
use crate::on_both_backends;
use crate::support::TestStore;

on_both_backends!(
    an_encryption_key_that_cannot_encrypt_is_refused_when_stored,
    advertised_algorithms_are_stored_normalised_and_replaced,
    metadata_import_takes_the_algorithms_of_the_encryption_key,
    stores_from_before_the_algorithms_column_read_them_as_none,
);

const AES128_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes128-cbc";
const AES256_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes256-gcm";
const RSA_1_5: &str = "http://www.w3.org/2001/04/xmlenc#rsa-1_5";

/// samael's `test_vectors/sp_metadata.xml` (MIT; provenance in crates/saml/tests/data/README.md):
/// an RSA certificate in a signing and an encryption KeyDescriptor.
const SAMAEL_SP: &str = include_str!("../../../saml/tests/data/metadata/sp_metadata.xml");

fn cert(alg: &'static rcgen::SignatureAlgorithm) -> String {
    let pair = rcgen::KeyPair::generate_for(alg).unwrap();
    rcgen::CertificateParams::new(vec!["sp.example.org".to_string()])
        .unwrap()
        .self_signed(&pair)
        .unwrap()
        .pem()
}

fn app() -> NewApplication {
    NewApplication::new(
        "https://sp.example.org/saml",
        "Tracker",
        "https://sp.example.org/saml/acs",
    )
}

async fn an_encryption_key_that_cannot_encrypt_is_refused_when_stored(t: TestStore) {
    let apps = t.store.apps();
    let before = snapshot(&t.store).await;
    let ec = cert(&rcgen::PKCS_ECDSA_P256_SHA256);

    // Registering with encryption to an ECDSA key.
    let mut new = app();
    new.encryption_cert = Some(ec.clone());
    new.encrypt_assertion = true;
    let err = apps.create(&admin(), new.clone()).await.unwrap_err();
    assert!(
        matches!(&err, Error::EncryptionKeyUnsupported { key } if key == "ECDSA P-256"),
        "{err:?}"
    );
    assert!(err.to_string().contains("encryption_cert"), "{err}");
    // Encryption with no certificate at all.
    new.encryption_cert = None;
    let err = apps.create(&admin(), new).await.unwrap_err();
    assert!(
        matches!(
            &err,
            Error::InvalidField {
                field: "encrypt_assertion",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(snapshot(&t.store).await, before);

    // Stored without encryption, the ECDSA certificate is harmless; turning encryption on
    // is refused and changes nothing.
    let mut new = app();
    new.encryption_cert = Some(ec);
    let stored = apps.create(&admin(), new).await.unwrap();
    let before = snapshot(&t.store).await;
    let err = apps
        .update(&admin(), stored.id, |a| a.encrypt_assertion = true)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::EncryptionKeyUnsupported { .. }),
        "{err:?}"
    );
    assert_eq!(snapshot(&t.store).await, before);

    // With an RSA certificate it is accepted.
    let rsa = cert(&rcgen::PKCS_RSA_SHA256);
    let updated = apps
        .update(&admin(), stored.id, |a| {
            a.encryption_cert = Some(rsa.clone());
            a.encrypt_assertion = true;
        })
        .await
        .unwrap();
    assert!(updated.settings.encrypt_assertion);
    assert_eq!(apps.get(stored.id).await.unwrap(), updated);
}

async fn advertised_algorithms_are_stored_normalised_and_replaced(t: TestStore) {
    let apps = t.store.apps();
    let mut new = app();
    new.encryption_cert = Some(cert(&rcgen::PKCS_RSA_SHA256));
    new.encryption_methods = vec![
        format!(" {AES128_CBC}"),
        RSA_1_5.into(),
        "aes256-gcm".into(),
        AES128_CBC.into(),
    ];
    let created = apps.create(&admin(), new).await.unwrap();
    assert_eq!(
        created.settings.encryption_methods,
        [AES128_CBC, RSA_1_5, AES256_GCM]
    );
    assert_eq!(apps.get(created.id).await.unwrap(), created);
    assert_eq!(apps.list().await.unwrap(), vec![created.clone()]);

    // Replaced, then cleared, through the audited update path.
    let updated = apps
        .update(&admin(), created.id, |a| {
            a.encryption_methods = vec![AES256_GCM.into()]
        })
        .await
        .unwrap();
    assert_eq!(updated.settings.encryption_methods, [AES256_GCM]);
    let events = t.store.audit().count().await.unwrap();
    let cleared = apps
        .update(&admin(), created.id, |a| a.encryption_methods.clear())
        .await
        .unwrap();
    assert!(cleared.settings.encryption_methods.is_empty());
    assert_eq!(apps.get(created.id).await.unwrap(), cleared);
    assert_eq!(t.store.audit().count().await.unwrap(), events + 1);

    // Anything but a URI is refused and changes nothing.
    let before = snapshot(&t.store).await;
    let err = apps
        .update(&admin(), created.id, |a| {
            a.encryption_methods = vec!["fast please".into()]
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidField {
                field: "encryption_methods",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(snapshot(&t.store).await, before);
}

/// samael's SP metadata with `methods` listed under the KeyDescriptor whose `use` is
/// `key_use`.
fn samael_with_methods(key_use: &str, methods: &[&str]) -> String {
    let kd = SAMAEL_SP
        .find(&format!("<md:KeyDescriptor use=\"{key_use}\">"))
        .unwrap();
    let at = kd + SAMAEL_SP[kd..].find("</ds:KeyInfo>").unwrap() + "</ds:KeyInfo>".len();
    let listed: String = methods
        .iter()
        .map(|m| format!("<md:EncryptionMethod Algorithm=\"{m}\"/>"))
        .collect();
    format!("{}{listed}{}", &SAMAEL_SP[..at], &SAMAEL_SP[at..])
}

async fn metadata_import_takes_the_algorithms_of_the_encryption_key(t: TestStore) {
    let mut options = SpMetadataOptions::new(datetime!(2026-06-01 12:00 UTC));
    options.allow_expired = true;

    // The sample as published lists none.
    let plain = SpMetadata::parse(SAMAEL_SP, &options).unwrap();
    assert!(plain.encryption_cert.is_some());
    assert!(plain.encryption_methods.is_empty());

    // Listed under the encryption key: taken, in order.
    let xml = samael_with_methods("encryption", &[RSA_1_5, AES128_CBC]);
    let (mut new, _) = NewApplication::from_sp_metadata(&xml, &options).unwrap();
    assert_eq!(new.encryption_methods, [RSA_1_5, AES128_CBC]);
    new.encrypt_assertion = true;
    let app = t.store.apps().create(&admin(), new).await.unwrap();
    assert_eq!(app.settings.encryption_methods, [RSA_1_5, AES128_CBC]);

    // Listed under the signing key only: not about the encryption certificate.
    let xml = samael_with_methods("signing", &[AES256_GCM]);
    let metadata = SpMetadata::parse(&xml, &options).unwrap();
    assert!(metadata.encryption_methods.is_empty());

    // A refresh from metadata replaces them with the certificate.
    let xml = samael_with_methods("encryption", &[AES256_GCM]);
    let metadata = SpMetadata::parse(&xml, &options).unwrap();
    let refreshed = t
        .store
        .apps()
        .update(&admin(), app.id, |a| metadata.apply_to(a))
        .await
        .unwrap();
    assert_eq!(refreshed.settings.encryption_methods, [AES256_GCM]);
}

/// Runs one statement on the store's database behind the registry's back.
async fn raw(t: &TestStore, sql: &'static str) {
    use sqlx::Connection;
    if t.url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(&t.url).await.unwrap();
        sqlx::query(sql).execute(&mut c).await.unwrap();
    } else {
        let mut c = sqlx::PgConnection::connect(&t.url).await.unwrap();
        sqlx::query(sql).execute(&mut c).await.unwrap();
    }
}

async fn stores_from_before_the_algorithms_column_read_them_as_none(t: TestStore) {
    let mut new = app();
    new.encryption_cert = Some(cert(&rcgen::PKCS_RSA_SHA256));
    new.encrypt_assertion = true;
    new.encryption_methods = vec![AES128_CBC.into()];
    let stored = t.store.apps().create(&admin(), new).await.unwrap();
    // Make the store what it was before migration 2: no column, migration not applied.
    raw(
        &t,
        "ALTER TABLE applications DROP COLUMN encryption_methods",
    )
    .await;
    raw(&t, "DELETE FROM _sqlx_migrations WHERE version = 2").await;

    // Opening it applies the migration; the old row reads as having advertised nothing.
    let reopened = latchkey_idp::Store::open_url(&t.url, 2, crate::support::cheap_passwords())
        .await
        .unwrap();
    let read = reopened.apps().get(stored.id).await.unwrap();
    let mut expected = stored.settings.clone();
    expected.encryption_methods.clear();
    assert_eq!(read.settings, expected);
    assert!(
        reopened
            .apps()
            .update(&admin(), stored.id, |a| {
                a.encryption_methods = vec![AES256_GCM.into()]
            })
            .await
            .is_ok()
    );
}
