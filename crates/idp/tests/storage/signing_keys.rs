//! The database key store (`[keys] store = "database"`): rollover, sealing under the KEK,
//! refusal of a wrong KEK and of altered rows, import from files, and two nodes on one
//! database following each other's rollovers.

use std::sync::Arc;
use std::time::Duration;

use latchkey_idp::audit::{AuditEvent, AuditFilter};
use latchkey_idp::config::{Config, DatabaseConfig, KeyStoreKind, KeysConfig, ProcessEnv};
use latchkey_idp::keys::Keyring;
use latchkey_idp::keys::{
    Activation, DatabaseKeyStore, Kek, KekSource, KeyAlgorithm, KeyError, KeyStatus, KeyStore,
};
use latchkey_idp::sso::{IdpKeys, SigningMaterial};
use latchkey_idp::{Actor, Store};
use latchkey_xmlsec::crypto::LegacyPolicy;
use sqlx::AnyPool;
use time::OffsetDateTime;
use time::macros::datetime;

use crate::on_both_backends;
use crate::storage::admin as actor;
use crate::support::{TestStore, cheap_passwords};

const T0: OffsetDateTime = datetime!(2026-11-28 12:00 UTC);
const T1: OffsetDateTime = datetime!(2026-12-05 12:00 UTC);
const T2: OffsetDateTime = datetime!(2026-12-12 12:00 UTC);
/// ECDSA keys are fast to make; the algorithm is not what these tests are about.
const ALG: KeyAlgorithm = KeyAlgorithm::EcdsaP256;

on_both_backends!(
    rollover_round_trips_through_the_database,
    private_keys_are_sealed_at_rest,
    a_wrong_kek_is_named_and_refused,
    altered_or_swapped_rows_are_refused,
    a_row_injected_without_the_kek_is_never_published,
    a_second_node_follows_rotation_and_activation_after_refresh,
    concurrent_activations_promote_once,
    concurrent_first_starts_agree_on_one_key,
    file_keys_import_into_an_empty_database_store,
    rewrap_moves_every_key_to_the_new_kek,
    activation_waits_for_the_metadata_cache_duration,
    every_database_key_change_is_audited_with_its_actor,
    file_key_changes_are_audited_through_the_keyring,
    a_servers_first_key_is_recorded_as_the_systems,
);

fn new_kek() -> Kek {
    Kek::from_base64(&Kek::generate_base64(), KekSource::Env).unwrap()
}

/// The same KEK again, as another node would load it.
fn same_kek(text: &str) -> Kek {
    Kek::from_base64(text, KekSource::Env).unwrap()
}

/// A second handle on the same database, as another node has.
async fn other_node(t: &TestStore) -> Store {
    Store::open_url(&t.url, 5, cheap_passwords()).await.unwrap()
}

/// A raw pool on the test database, to do what an attacker with write access could.
async fn raw(t: &TestStore) -> AnyPool {
    AnyPool::connect(&t.url).await.unwrap()
}

async fn sealed_key(pool: &AnyPool, id: &str) -> String {
    sqlx::query_scalar("SELECT sealed_key FROM signing_keys WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn set_sealed_key(pool: &AnyPool, id: &str, sealed: &str) {
    sqlx::query("UPDATE signing_keys SET sealed_key = $1 WHERE id = $2")
        .bind(sealed)
        .bind(id)
        .execute(pool)
        .await
        .unwrap();
}

/// Signs with the node's current key and verifies against `cert_pem`.
fn signs_as(material: &SigningMaterial, cert_pem: &str) -> bool {
    let cert = latchkey_xmlsec::crypto::Certificate::from_pem(cert_pem).unwrap();
    let message = b"<SignedInfo>rollover</SignedInfo>";
    let algorithm = material.key.default_algorithm();
    let signature = material.key.sign(algorithm, message).unwrap();
    cert.verifying_key()
        .verify(algorithm, message, &signature, LegacyPolicy::default())
        .is_ok()
}

async fn rollover_round_trips_through_the_database(t: TestStore) {
    let kek_text = Kek::generate_base64();
    let keys = DatabaseKeyStore::new(t.store.clone(), same_kek(&kek_text));
    assert!(keys.list().await.unwrap().is_empty());
    assert!(matches!(keys.active().await, Err(KeyError::NoActiveKey)));
    assert!(matches!(
        keys.rotate(&actor(), ALG, T0).await,
        Err(KeyError::NoActiveKey)
    ));

    let first = keys.load_or_generate(&actor(), ALG, T0).await.unwrap();
    assert_eq!(first.status, KeyStatus::Active);
    assert_eq!(first.activated_at, Some(T0));
    assert_eq!(
        keys.load_or_generate(&actor(), KeyAlgorithm::Rsa2048, T1)
            .await
            .unwrap(),
        first
    );
    let active = keys.active().await.unwrap();
    assert_eq!(active.info, first);
    assert!(active.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(keys.next().await.unwrap().is_none());
    assert!(matches!(
        keys.activate(&actor(), T1, Activation::Forced).await,
        Err(KeyError::NoNextKey)
    ));

    let next = keys.rotate(&actor(), ALG, T1).await.unwrap();
    assert_eq!(next.status, KeyStatus::Next);
    assert!(matches!(
        keys.rotate(&actor(), ALG, T1).await,
        Err(KeyError::NextKeyExists(id)) if id == next.id
    ));
    assert_eq!(keys.next().await.unwrap().unwrap().info, next);

    let promoted = keys
        .activate(&actor(), T2, Activation::Forced)
        .await
        .unwrap();
    assert_eq!(promoted.id, next.id);
    assert_eq!(promoted.activated_at, Some(T2));

    // A retired-without-signing key, then a listing as another node reads it.
    let abandoned = keys.rotate(&actor(), ALG, T2).await.unwrap();
    let retired = keys.retire_next(&actor(), T2).await.unwrap();
    assert_eq!(retired.id, abandoned.id);
    assert!(matches!(
        keys.retire_next(&actor(), T2).await,
        Err(KeyError::NoNextKey)
    ));

    let elsewhere = DatabaseKeyStore::new(other_node(&t).await, same_kek(&kek_text));
    let list = elsewhere.list().await.unwrap();
    let roles: Vec<_> = list.iter().map(|k| (k.id.as_str(), k.status)).collect();
    assert_eq!(
        roles,
        [
            (next.id.as_str(), KeyStatus::Active),
            (abandoned.id.as_str(), KeyStatus::Retired),
            (first.id.as_str(), KeyStatus::Retired),
        ]
    );
    assert_eq!(list[0], promoted);
    assert_eq!(list[2].retired_at, Some(T2));
    assert_eq!(list[1].activated_at, None);
    let active = elsewhere.active().await.unwrap();
    assert_eq!(active.info.id, next.id);
    let cert = active.certificate().unwrap();
    assert_eq!(
        hex::encode(cert.sha256_fingerprint()),
        active.info.fingerprint_sha256
    );
}

async fn private_keys_are_sealed_at_rest(t: TestStore) {
    let keys = DatabaseKeyStore::new(t.store.clone(), new_kek());
    let info = keys.load_or_generate(&actor(), ALG, T0).await.unwrap();
    let pool = raw(&t).await;
    let row: (String, String, String, String) = sqlx::query_as(
        "SELECT role, kek_id, certificate_pem, sealed_key FROM signing_keys WHERE id = $1",
    )
    .bind(&info.id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(row.0, "active");
    assert_eq!(row.1, keys.kek().id());
    assert!(row.2.starts_with("-----BEGIN CERTIFICATE-----"));
    let pem = keys.active().await.unwrap().key_pem;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(!row.3.contains("PRIVATE KEY"));
    assert!(!row.3.contains(&body[..40]), "the key is stored in clear");
    // Nothing else in the table carries the key either.
    let dump: Vec<(String, String, String, String)> =
        sqlx::query_as("SELECT id, algorithm, fingerprint_sha256, created_at FROM signing_keys")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(dump.iter().all(|r| !format!("{r:?}").contains(&body[..40])));
}

async fn a_wrong_kek_is_named_and_refused(t: TestStore) {
    let right = DatabaseKeyStore::new(t.store.clone(), new_kek());
    let info = right.load_or_generate(&actor(), ALG, T0).await.unwrap();
    right.rotate(&actor(), ALG, T1).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let kek_path = dir.path().join("wrong.kek");
    let wrong_kek = Kek::create_file(&kek_path).unwrap();
    let wrong = DatabaseKeyStore::new(other_node(&t).await, wrong_kek);
    // Listing needs no key; anything that opens or adds a key names the KEK.
    assert_eq!(wrong.list().await.unwrap().len(), 2);
    let err = wrong.active().await.unwrap_err();
    match &err {
        KeyError::WrongKek {
            key_id,
            kek,
            kek_id,
            sealed_with,
        } => {
            assert_eq!(key_id, &info.id);
            assert_eq!(kek, &KekSource::File(kek_path.clone()));
            assert_eq!(kek_id, wrong.kek().id());
            assert_eq!(sealed_with, right.kek().id());
        }
        other => panic!("expected WrongKek, got {other:?}"),
    }
    assert!(err.to_string().contains("wrong.kek"), "{err}");
    assert!(matches!(wrong.next().await, Err(KeyError::WrongKek { .. })));
    assert!(matches!(
        wrong.load_or_generate(&actor(), ALG, T1).await,
        Err(KeyError::WrongKek { .. })
    ));
    assert!(matches!(
        wrong.activate(&actor(), T2, Activation::Forced).await,
        Err(KeyError::WrongKek { .. })
    ));
    let err = IdpKeys::open_database(wrong, Duration::from_secs(30), ALG, T2)
        .await
        .unwrap_err();
    assert!(matches!(err, KeyError::WrongKek { .. }), "{err:?}");
    // Nothing changed: the right node still sees the rollover waiting.
    assert_eq!(right.active().await.unwrap().info.id, info.id);
    assert!(right.next().await.unwrap().is_some());

    // A writer with the wrong KEK cannot add a next key the others could not open.
    right.retire_next(&actor(), T2).await.unwrap();
    let wrong = DatabaseKeyStore::new(other_node(&t).await, Kek::from_file(&kek_path).unwrap());
    assert!(matches!(
        wrong.rotate(&actor(), ALG, T2).await,
        Err(KeyError::WrongKek { .. })
    ));
    assert!(right.next().await.unwrap().is_none());
}

async fn altered_or_swapped_rows_are_refused(t: TestStore) {
    let keys = DatabaseKeyStore::new(t.store.clone(), new_kek());
    let active = keys.load_or_generate(&actor(), ALG, T0).await.unwrap();
    let next = keys.rotate(&actor(), ALG, T1).await.unwrap();
    let pool = raw(&t).await;
    let active_sealed = sealed_key(&pool, &active.id).await;
    let next_sealed = sealed_key(&pool, &next.id).await;

    // One byte of the ciphertext changed.
    let mut bytes = base64_decode(&active_sealed);
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    set_sealed_key(&pool, &active.id, &base64_encode(&bytes)).await;
    let err = keys.active().await.unwrap_err();
    assert!(
        matches!(&err, KeyError::Tampered { id } if *id == active.id),
        "{err:?}"
    );

    // The two rows' sealed keys swapped: each decrypts only in its own row.
    set_sealed_key(&pool, &active.id, &next_sealed).await;
    set_sealed_key(&pool, &next.id, &active_sealed).await;
    assert!(matches!(
        keys.active().await,
        Err(KeyError::Tampered { id }) if id == active.id
    ));
    assert!(matches!(
        keys.next().await,
        Err(KeyError::Tampered { id }) if id == next.id
    ));
    // ... and an activation that would sign with it is refused, leaving the roles alone.
    assert!(matches!(
        keys.activate(&actor(), T2, Activation::Forced).await,
        Err(KeyError::Tampered { .. })
    ));
    set_sealed_key(&pool, &active.id, &active_sealed).await;
    set_sealed_key(&pool, &next.id, &next_sealed).await;
    assert_eq!(keys.active().await.unwrap().info.id, active.id);

    // Another key's certificate in the clear column: the fingerprint check catches it.
    let next_cert: String =
        sqlx::query_scalar("SELECT certificate_pem FROM signing_keys WHERE id = $1")
            .bind(&next.id)
            .fetch_one(&pool)
            .await
            .unwrap();
    sqlx::query("UPDATE signing_keys SET certificate_pem = $1 WHERE id = $2")
        .bind(&next_cert)
        .bind(&active.id)
        .execute(&pool)
        .await
        .unwrap();
    assert!(matches!(
        keys.active().await,
        Err(KeyError::StoredCorrupt { id, reason }) if id == active.id && reason.contains("fingerprint")
    ));

    // A row relabelled with another algorithm no longer opens (the AAD names it).
    sqlx::query("UPDATE signing_keys SET algorithm = 'rsa2048' WHERE id = $1")
        .bind(&next.id)
        .execute(&pool)
        .await
        .unwrap();
    assert!(matches!(keys.next().await, Err(KeyError::Tampered { .. })));
}

async fn a_row_injected_without_the_kek_is_never_published(t: TestStore) {
    let node = IdpKeys::open_database(
        DatabaseKeyStore::new(t.store.clone(), new_kek()),
        Duration::from_secs(30),
        ALG,
        T0,
    )
    .await
    .unwrap();
    // An attacker with write access and a key store of their own (another KEK) slips
    // their key in as `next`, hoping SPs will trust it from the metadata.
    let attacker = tempfile::tempdir().unwrap();
    let attacker_url = latchkey_idp::config::sqlite_url(&attacker.path().join("a.db"));
    let attacker_store = Store::open_url(&attacker_url, 1, cheap_passwords())
        .await
        .unwrap();
    let theirs = DatabaseKeyStore::new(attacker_store, new_kek());
    let their_key = theirs.load_or_generate(&actor(), ALG, T1).await.unwrap();
    let their_pool = AnyPool::connect(&attacker_url).await.unwrap();
    let row: (String, String, String, String, String, String) = sqlx::query_as(
        "SELECT id, algorithm, certificate_pem, fingerprint_sha256, kek_id, sealed_key \
         FROM signing_keys",
    )
    .fetch_one(&their_pool)
    .await
    .unwrap();
    let pool = raw(&t).await;
    for kek_id in [row.4.clone(), node_kek_id(&pool).await] {
        sqlx::query("DELETE FROM signing_keys WHERE role = 'next'")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO signing_keys (id, algorithm, role, certificate_pem, fingerprint_sha256, \
             kek_id, sealed_key, created_at) VALUES ($1, $2, 'next', $3, $4, $5, $6, \
             '2026-12-01T00:00:00.000000Z')",
        )
        .bind(&row.0)
        .bind(&row.1)
        .bind(&row.2)
        .bind(&row.3)
        .bind(&kek_id)
        .bind(&row.5)
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query("UPDATE signing_keys_generation SET generation = generation + 1")
            .execute(&pool)
            .await
            .unwrap();
        // Under the attacker's KEK id it is a wrong KEK; under ours it fails to open.
        let err = node.refresh().await.unwrap_err();
        assert!(
            matches!(err, KeyError::WrongKek { .. } | KeyError::Tampered { .. }),
            "{err:?}"
        );
        // The node keeps publishing only its own certificate.
        let current = node.current().unwrap();
        assert_eq!(current.published.len(), 1);
        assert_ne!(
            hex::encode(current.published[0].sha256_fingerprint()),
            their_key.fingerprint_sha256
        );
    }
}

async fn node_kek_id(pool: &AnyPool) -> String {
    sqlx::query_scalar("SELECT kek_id FROM signing_keys WHERE role = 'active'")
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn a_second_node_follows_rotation_and_activation_after_refresh(t: TestStore) {
    let kek_text = Kek::generate_base64();
    let node_a = IdpKeys::open_database(
        DatabaseKeyStore::new(t.store.clone(), same_kek(&kek_text)),
        Duration::from_secs(30),
        ALG,
        T0,
    )
    .await
    .unwrap();
    let node_b = IdpKeys::open_database(
        DatabaseKeyStore::new(other_node(&t).await, same_kek(&kek_text)),
        Duration::from_secs(30),
        ALG,
        T0,
    )
    .await
    .unwrap();
    let admin = DatabaseKeyStore::new(t.store.clone(), same_kek(&kek_text));
    let first = admin.active().await.unwrap();
    // B found A's key rather than making its own.
    assert_eq!(admin.list().await.unwrap().len(), 1);
    assert!(signs_as(&node_b.current().unwrap(), &first.cert_pem));
    // Nothing changed: the refresh is the counter read only.
    assert!(!node_b.refresh().await.unwrap());

    // Rotate (on "node A", by the CLI): after its refresh B publishes both certificates
    // and still signs with the first key.
    let next = admin.rotate(&actor(), ALG, T1).await.unwrap();
    let before = node_b.current().unwrap();
    assert_eq!(before.published.len(), 1);
    assert!(node_b.refresh().await.unwrap());
    let during = node_b.current().unwrap();
    assert_eq!(during.published.len(), 2);
    assert_eq!(
        hex::encode(during.published[1].sha256_fingerprint()),
        next.fingerprint_sha256
    );
    assert!(signs_as(&during, &first.cert_pem));
    assert!(!node_b.refresh().await.unwrap());
    // What the handlers held before the refresh stays valid for their request.
    assert_eq!(before.published.len(), 1);

    // Activate: after its refresh B signs with the new key, and not with the old one.
    admin
        .activate(&actor(), T2, Activation::Forced)
        .await
        .unwrap();
    let next_cert = admin.active().await.unwrap().cert_pem;
    assert!(signs_as(&node_b.current().unwrap(), &first.cert_pem));
    assert!(node_b.refresh().await.unwrap());
    let after = node_b.current().unwrap();
    assert!(signs_as(&after, &next_cert));
    assert!(!signs_as(&after, &first.cert_pem));
    assert_eq!(after.published.len(), 1);
    // Node A (whose store did the change) follows the same way.
    assert!(node_a.refresh().await.unwrap());
    assert!(signs_as(&node_a.current().unwrap(), &next_cert));
    // Clones share the cache the refresh task updates.
    let clone = node_b.clone();
    assert!(Arc::ptr_eq(
        &clone.current().unwrap(),
        &node_b.current().unwrap()
    ));
}

async fn concurrent_activations_promote_once(t: TestStore) {
    let kek_text = Kek::generate_base64();
    let a = DatabaseKeyStore::new(t.store.clone(), same_kek(&kek_text));
    let b = DatabaseKeyStore::new(other_node(&t).await, same_kek(&kek_text));
    let first = a.load_or_generate(&actor(), ALG, T0).await.unwrap();
    let next = a.rotate(&actor(), ALG, T1).await.unwrap();
    let actor = actor();
    let (ra, rb) = tokio::join!(
        a.activate(&actor, T2, Activation::Forced),
        b.activate(&actor, T2, Activation::Forced)
    );
    let (won, lost) = match (ra, rb) {
        (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
        other => panic!("expected exactly one activation, got {other:?}"),
    };
    assert_eq!(won.id, next.id);
    assert!(matches!(lost, KeyError::NoNextKey), "{lost:?}");
    let list = a.list().await.unwrap();
    assert_eq!(
        list.iter()
            .filter(|k| k.status == KeyStatus::Active)
            .count(),
        1
    );
    assert_eq!(list[0].id, next.id);
    assert_eq!(list[1].id, first.id);
    assert_eq!(list[1].status, KeyStatus::Retired);
}

async fn concurrent_first_starts_agree_on_one_key(t: TestStore) {
    let kek_text = Kek::generate_base64();
    let a = DatabaseKeyStore::new(t.store.clone(), same_kek(&kek_text));
    let b = DatabaseKeyStore::new(other_node(&t).await, same_kek(&kek_text));
    let who = actor();
    let (ra, rb) = tokio::join!(
        a.load_or_generate(&who, ALG, T0),
        b.load_or_generate(&who, ALG, T0)
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.id, rb.id);
    assert_eq!(a.list().await.unwrap().len(), 1);
    // Only the key that was kept is recorded as generated.
    let events = key_events(&t.store).await;
    assert_eq!(actions(&events), [("key.generate", "cli:tester")]);
    assert_eq!(events[0].target_id.as_deref(), Some(ra.id.as_str()));
}

async fn file_keys_import_into_an_empty_database_store(t: TestStore) {
    let dir = tempfile::tempdir().unwrap();
    let mut files = KeyStore::open(dir.path()).unwrap();
    files.load_or_generate(ALG, T0).unwrap();
    files.rotate(ALG, T1).unwrap();
    files.activate(T2, Activation::Forced).unwrap();
    files.rotate(KeyAlgorithm::Rsa2048, T2).unwrap();
    let expected = files.list();

    let keys = DatabaseKeyStore::new(t.store.clone(), new_kek());
    let imported = keys.import(&actor(), &files).await.unwrap();
    assert_eq!(imported, expected);
    assert_eq!(keys.list().await.unwrap(), expected);
    let (file_active, db_active) = (files.active().unwrap(), keys.active().await.unwrap());
    assert_eq!(db_active.info, file_active.info);
    assert_eq!(*db_active.key_pem, *file_active.key_pem);
    assert_eq!(db_active.cert_pem, file_active.cert_pem);
    let db_next = keys.next().await.unwrap().unwrap();
    assert_eq!(db_next.info.algorithm, KeyAlgorithm::Rsa2048);
    assert_eq!(db_next.cert_pem, files.next().unwrap().unwrap().cert_pem);

    // A second import would merge two histories: refused, nothing added.
    assert!(matches!(
        keys.import(&actor(), &files).await,
        Err(KeyError::ImportTargetNotEmpty { count: 3 })
    ));
    assert_eq!(keys.list().await.unwrap(), expected);
    // The imported rollover goes on in the database.
    assert_eq!(
        keys.activate(&actor(), T2, Activation::Forced)
            .await
            .unwrap()
            .id,
        db_next.info.id
    );
}

async fn rewrap_moves_every_key_to_the_new_kek(t: TestStore) {
    let (old_text, new_text) = (Kek::generate_base64(), Kek::generate_base64());
    let old = DatabaseKeyStore::new(t.store.clone(), same_kek(&old_text));
    let node = IdpKeys::open_database(
        DatabaseKeyStore::new(other_node(&t).await, same_kek(&old_text)),
        Duration::from_secs(30),
        ALG,
        T0,
    )
    .await
    .unwrap();
    old.rotate(&actor(), ALG, T1).await.unwrap();
    old.activate(&actor(), T1, Activation::Forced)
        .await
        .unwrap();
    old.rotate(&actor(), ALG, T2).await.unwrap();
    let before = old.active().await.unwrap();
    assert!(node.refresh().await.unwrap());

    assert_eq!(old.rewrap(&actor(), &same_kek(&new_text)).await.unwrap(), 3);
    let new = DatabaseKeyStore::new(other_node(&t).await, same_kek(&new_text));
    let after = new.active().await.unwrap();
    assert_eq!(*after.key_pem, *before.key_pem);
    assert!(new.next().await.unwrap().is_some());
    let pool = raw(&t).await;
    let kek_ids: Vec<String> = sqlx::query_scalar("SELECT kek_id FROM signing_keys")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(kek_ids.len(), 3);
    assert!(kek_ids.iter().all(|id| id == new.kek().id()));
    // The old KEK no longer opens anything, and a rollover through it is refused.
    assert!(matches!(old.active().await, Err(KeyError::WrongKek { .. })));
    assert!(matches!(
        old.activate(&actor(), T2, Activation::Forced).await,
        Err(KeyError::WrongKek { .. })
    ));
    // A node still on the old KEK reports it and keeps signing with what it loaded.
    assert!(matches!(
        node.refresh().await,
        Err(KeyError::WrongKek { .. })
    ));
    assert!(signs_as(&node.current().unwrap(), &before.cert_pem));
    assert_eq!(node.current().unwrap().published.len(), 2);

    // A damaged row stops a rewrap before anything is written.
    let active_sealed = sealed_key(&pool, &after.info.id).await;
    let mut bytes = base64_decode(&active_sealed);
    bytes[20] ^= 0x80;
    set_sealed_key(&pool, &after.info.id, &base64_encode(&bytes)).await;
    let third = Kek::from_base64(&Kek::generate_base64(), KekSource::Env).unwrap();
    assert!(matches!(
        new.rewrap(&actor(), &third).await,
        Err(KeyError::Tampered { .. })
    ));
    let kek_ids: Vec<String> = sqlx::query_scalar("SELECT kek_id FROM signing_keys")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(kek_ids.iter().all(|id| id == new.kek().id()));
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

const DAY: time::Duration = time::Duration::days(1);

async fn key_events(store: &Store) -> Vec<AuditEvent> {
    let mut events = store
        .audit()
        .list(&AuditFilter::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action.starts_with("key."))
        .collect::<Vec<_>>();
    events.reverse();
    events
}

fn actions(events: &[AuditEvent]) -> Vec<(&str, &str)> {
    events
        .iter()
        .map(|e| (e.action.as_str(), e.actor.as_str()))
        .collect()
}

async fn activation_waits_for_the_metadata_cache_duration(t: TestStore) {
    let keys = DatabaseKeyStore::new(t.store.clone(), new_kek());
    keys.load_or_generate(&actor(), ALG, T0).await.unwrap();
    let next = keys.rotate(&actor(), ALG, T1).await.unwrap();
    let wait = Activation::AfterPublished(DAY);

    // Four seconds after `rotate`: refused, saying how long is left and how to force.
    let err = keys
        .activate(&actor(), T1 + time::Duration::seconds(4), wait)
        .await
        .unwrap_err();
    match &err {
        KeyError::TooSoon { id, remaining, .. } => {
            assert_eq!(id, &next.id);
            assert_eq!(*remaining, DAY - time::Duration::seconds(4));
        }
        other => panic!("{other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("23h 59m 56s"), "{message}");
    assert!(message.contains("--force"), "{message}");
    // Nothing changed, and nothing was recorded as done.
    assert_eq!(keys.next().await.unwrap().unwrap().info.id, next.id);
    assert!(!actions(&key_events(&t.store).await).contains(&("key.activate", "cli:tester")));

    // A second short of the wait is still too soon; the wait itself is enough.
    assert!(matches!(
        keys.activate(&actor(), T1 + DAY - time::Duration::seconds(1), wait)
            .await,
        Err(KeyError::TooSoon { .. })
    ));
    assert_eq!(
        keys.activate(&actor(), T1 + DAY, wait).await.unwrap().id,
        next.id
    );

    // Forced: at once.
    let third = keys.rotate(&actor(), ALG, T2).await.unwrap();
    assert_eq!(
        keys.activate(&actor(), T2, Activation::Forced)
            .await
            .unwrap()
            .id,
        third.id
    );
}

async fn every_database_key_change_is_audited_with_its_actor(t: TestStore) {
    let kek_text = Kek::generate_base64();
    let keys = DatabaseKeyStore::new(t.store.clone(), same_kek(&kek_text));
    let alice = Actor::cli("alice");
    let first = keys.load_or_generate(&alice, ALG, T0).await.unwrap();
    // Finding the key again changes nothing and records nothing.
    keys.load_or_generate(&alice, ALG, T1).await.unwrap();
    let next = keys.rotate(&alice, ALG, T1).await.unwrap();
    keys.activate(&alice, T2, Activation::AfterPublished(DAY))
        .await
        .unwrap();
    let abandoned = keys.rotate(&alice, ALG, T2).await.unwrap();
    keys.retire_next(&alice, T2).await.unwrap();
    // A refused change records nothing.
    assert!(keys.retire_next(&alice, T2).await.is_err());
    let third = new_kek();
    assert_eq!(keys.rewrap(&alice, &third).await.unwrap(), 3);

    let events = key_events(&t.store).await;
    assert_eq!(
        actions(&events),
        [
            ("key.generate", "cli:alice"),
            ("key.rotate", "cli:alice"),
            ("key.activate", "cli:alice"),
            ("key.rotate", "cli:alice"),
            ("key.retire_next", "cli:alice"),
            ("key.rewrap", "cli:alice"),
        ]
    );
    assert_eq!(events[0].target_id.as_deref(), Some(first.id.as_str()));
    assert_eq!(events[0].after.as_ref().unwrap()["status"], "active");
    let events = &events[1..];
    assert_eq!(events[0].target_id.as_deref(), Some(next.id.as_str()));
    let activated = events[1].after.as_ref().unwrap();
    assert_eq!(activated["active"], next.id.as_str());
    assert_eq!(activated["retired"], first.id.as_str());
    assert_eq!(activated["forced"], false);
    assert_eq!(events[3].target_id.as_deref(), Some(abandoned.id.as_str()));
    assert_eq!(events[3].after.as_ref().unwrap()["status"], "retired");
    let rewrap = events[4].after.as_ref().unwrap();
    assert_eq!(rewrap["kek_id"], third.id());
    assert_eq!(rewrap["keys"], 3);
    // No key material in the log.
    let text = serde_json::to_string(&events).unwrap();
    assert!(
        !text.contains("PRIVATE KEY") && !text.contains(kek_text.as_str()),
        "{text}"
    );

    // import-files into an empty store (a second database would do; an emptied one is
    // simpler): one event listing what was copied.
    let dir = tempfile::tempdir().unwrap();
    let mut files = KeyStore::open(dir.path().join("keys")).unwrap();
    files.load_or_generate(ALG, T0).unwrap();
    let pool = raw(&t).await;
    sqlx::query("DELETE FROM signing_keys")
        .execute(&pool)
        .await
        .unwrap();
    let imported = keys.import(&Actor::cli("bob"), &files).await.unwrap();
    let events = key_events(&t.store).await;
    let last = events.last().unwrap();
    assert_eq!(
        (last.action.as_str(), last.actor.as_str()),
        ("key.import_files", "cli:bob")
    );
    assert_eq!(
        last.after.as_ref().unwrap()[0]["id"],
        imported[0].id.as_str()
    );
}

async fn file_key_changes_are_audited_through_the_keyring(t: TestStore) {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().to_owned(),
        database: DatabaseConfig {
            url: Some(t.url.clone()),
            max_connections: Some(2),
        },
        keys: KeysConfig {
            store: KeyStoreKind::Files,
            ..KeysConfig::default()
        },
        ..Config::default()
    };
    let mut ring = Keyring::open(&config, &ProcessEnv).await.unwrap();
    let carol = Actor::cli("carol");
    let first = ring.load_or_generate(&carol, ALG, T0).await.unwrap();
    // Finding the key again changes nothing and records nothing.
    ring.load_or_generate(&carol, ALG, T1).await.unwrap();
    let next = ring.rotate(&carol, ALG, T1).await.unwrap();
    let rule = Activation::for_config(&config.keys);
    // Refused, and not recorded.
    assert!(matches!(
        ring.activate(&carol, T1 + time::Duration::hours(1), rule)
            .await,
        Err(KeyError::TooSoon { .. })
    ));
    let promoted = ring.activate(&carol, T1 + DAY, rule).await.unwrap();
    assert_eq!(promoted.id, next.id);
    ring.rotate(&carol, ALG, T2).await.unwrap();
    ring.retire_next(&carol, T2).await.unwrap();
    ring.close().await;

    let events = key_events(&t.store).await;
    assert_eq!(
        actions(&events),
        [
            ("key.generate", "cli:carol"),
            ("key.rotate", "cli:carol"),
            ("key.activate", "cli:carol"),
            ("key.rotate", "cli:carol"),
            ("key.retire_next", "cli:carol"),
        ]
    );
    assert_eq!(events[0].target_id.as_deref(), Some(first.id.as_str()));
    assert_eq!(events[2].target_id.as_deref(), Some(next.id.as_str()));
}

/// A server's first start generates the first key (`IdpKeys::from_config`, either store):
/// recorded as the system's, once; later starts find it and record nothing.
async fn a_servers_first_key_is_recorded_as_the_systems(t: TestStore) {
    let dir = tempfile::tempdir().unwrap();
    let kek_file = dir.path().join("kek");
    Kek::create_file(&kek_file).unwrap();
    for (store, at) in [(KeyStoreKind::Files, T0), (KeyStoreKind::Database, T1)] {
        let config = Config {
            data_dir: dir.path().to_owned(),
            keys: KeysConfig {
                store,
                kek_file: Some(kek_file.clone()),
                ..KeysConfig::default()
            },
            ..Config::default()
        };
        let first = IdpKeys::from_config(&config, &ProcessEnv, &t.store, ALG, at)
            .await
            .unwrap();
        let generated = first.current().unwrap().certificate.clone();
        IdpKeys::from_config(&config, &ProcessEnv, &t.store, ALG, at + DAY)
            .await
            .unwrap();
        let events = key_events(&t.store).await;
        let last = events.last().unwrap();
        assert_eq!(
            (last.action.as_str(), last.actor.as_str()),
            ("key.generate", "system")
        );
        assert_eq!(
            last.target_name.as_deref(),
            Some(hex::encode(generated.sha256_fingerprint()).as_str())
        );
    }
    assert_eq!(
        actions(&key_events(&t.store).await),
        [("key.generate", "system"), ("key.generate", "system")]
    );
}
