//! The database store: signing keys as rows of `signing_keys`, shared by every IdP node on
//! the same database (migration 0260).
//!
//! Every change runs in one write transaction that first bumps the single row of
//! `signing_keys_generation`. That row lock queues concurrent changes from several nodes
//! on PostgreSQL (SQLite's `BEGIN IMMEDIATE` already does), so each change sees the one
//! before it and two `activate`s cannot both promote; the unique index on `role` refuses a
//! second active or next key even if a bug let one through. The generation is also what a
//! running node polls ([`DatabaseKeyStore::generation`]) to learn that it must re-read the
//! keys, which keeps the poll to one tiny query.
//!
//! Keys are generated before the transaction opens: an RSA key takes a while to make, and
//! the lock should be held for the writes only.

use sqlx::AnyConnection;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::kek::KeyBinding;
use super::state::KeyRecord;
use super::{
    Activation, Kek, KeyAlgorithm, KeyError, KeyInfo, KeyMaterial, KeyStatus, KeyStore, Mismatch,
};
use crate::audit::{self, Actor};
use crate::store::{Store, WriteTx, timestamp};

const COLUMNS: &str = "id, algorithm, role, certificate_pem, fingerprint_sha256, kek_id, \
                       sealed_key, created_at, activated_at, retired_at";

/// Signing keys in the store, sealed under a key-encryption key.
#[derive(Debug)]
pub struct DatabaseKeyStore {
    store: Store,
    kek: Kek,
}

/// One `signing_keys` row as stored.
#[derive(sqlx::FromRow)]
struct KeyRow {
    id: String,
    algorithm: String,
    role: String,
    certificate_pem: String,
    fingerprint_sha256: String,
    kek_id: String,
    sealed_key: String,
    created_at: String,
    activated_at: Option<String>,
    retired_at: Option<String>,
}

/// A row decoded, with what is needed to open it.
struct StoredKey {
    record: KeyRecord,
    certificate_pem: String,
    kek_id: String,
    sealed_key: String,
}

impl DatabaseKeyStore {
    /// The keys in `store`, sealed and opened with `kek`.
    pub fn new(store: Store, kek: Kek) -> Self {
        DatabaseKeyStore { store, kek }
    }

    /// The store the keys live in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The key-encryption key in use.
    pub fn kek(&self) -> &Kek {
        &self.kek
    }

    /// A number that changes whenever any node changes the keys.
    pub async fn generation(&self) -> Result<i64, KeyError> {
        let generation: i64 =
            sqlx::query_scalar("SELECT generation FROM signing_keys_generation WHERE id = 1")
                .fetch_one(self.store.pool())
                .await?;
        Ok(generation)
    }

    /// Every key, active first, then next, then retired from newest to oldest. Nothing is
    /// decrypted.
    pub async fn list(&self) -> Result<Vec<KeyInfo>, KeyError> {
        let mut out: Vec<KeyInfo> = self
            .read_all()
            .await?
            .iter()
            .map(|k| k.record.info())
            .collect();
        super::sort_for_listing(&mut out);
        Ok(out)
    }

    /// The key that signs now, opened and checked against its certificate.
    pub async fn active(&self) -> Result<KeyMaterial, KeyError> {
        let keys = self.read_all().await?;
        let active = find(&keys, KeyStatus::Active).ok_or(KeyError::NoActiveKey)?;
        self.open(active)
    }

    /// The key published ahead of activation, opened and checked like the active one: a
    /// row that does not open under the KEK was not written by a node that holds it, and
    /// its certificate must not reach the metadata.
    pub async fn next(&self) -> Result<Option<KeyMaterial>, KeyError> {
        let keys = self.read_all().await?;
        find(&keys, KeyStatus::Next)
            .map(|k| self.open(k))
            .transpose()
    }

    /// The active and next keys read together, for the server's cache.
    pub(crate) async fn published(&self) -> Result<(KeyMaterial, Option<KeyMaterial>), KeyError> {
        let keys = self.read_all().await?;
        let active = find(&keys, KeyStatus::Active).ok_or(KeyError::NoActiveKey)?;
        let next = find(&keys, KeyStatus::Next)
            .map(|k| self.open(k))
            .transpose()?;
        Ok((self.open(active)?, next))
    }

    /// Makes sure an active key exists, generating one of `algorithm` if the store holds
    /// none (first start of the first node), audited as `actor`'s. When several nodes start
    /// at once, one key wins and the others' are discarded unused (and unrecorded).
    pub async fn load_or_generate(
        &self,
        actor: &Actor,
        algorithm: KeyAlgorithm,
        now: OffsetDateTime,
    ) -> Result<KeyInfo, KeyError> {
        let keys = self.read_all().await?;
        if let Some(active) = find(&keys, KeyStatus::Active) {
            self.check_kek(active)?;
            return Ok(active.record.info());
        }
        let now = micros(now);
        let mut new = super::generate(algorithm, now)?;
        let mut tx = self.begin_change().await?;
        let keys = read_all_in(&mut tx).await?;
        if let Some(active) = find(&keys, KeyStatus::Active) {
            self.check_kek(active)?;
            return Ok(active.record.info());
        }
        new.record.status = KeyStatus::Active;
        new.record.activated_at = Some(now);
        self.insert(&mut tx, &new.record, &new.key_pem, &new.cert_pem)
            .await?;
        let info = new.record.info();
        audit::record(&mut tx, actor, now, super::generated(&info)).await?;
        tx.commit().await?;
        Ok(info)
    }

    /// Generates the `next` key; refused while one already waits (see
    /// [`KeyStore::rotate`]).
    pub async fn rotate(
        &self,
        actor: &Actor,
        algorithm: KeyAlgorithm,
        now: OffsetDateTime,
    ) -> Result<KeyInfo, KeyError> {
        let now = micros(now);
        let mut new = super::generate(algorithm, now)?;
        let mut tx = self.begin_change().await?;
        let keys = read_all_in(&mut tx).await?;
        let active = find(&keys, KeyStatus::Active).ok_or(KeyError::NoActiveKey)?;
        if let Some(next) = find(&keys, KeyStatus::Next) {
            return Err(KeyError::NextKeyExists(next.record.id.clone()));
        }
        // A next key sealed under another KEK than the active one would stop every
        // node that holds the right KEK at activation.
        self.check_kek(active)?;
        new.record.status = KeyStatus::Next;
        self.insert(&mut tx, &new.record, &new.key_pem, &new.cert_pem)
            .await?;
        let info = new.record.info();
        audit::record(&mut tx, actor, now, super::rotated(&info)).await?;
        tx.commit().await?;
        Ok(info)
    }

    /// Promotes `next` to `active` and retires the old active key, in one transaction: no
    /// node ever reads two active keys or none. `rule` is checked in that transaction, on
    /// the key it promotes.
    pub async fn activate(
        &self,
        actor: &Actor,
        now: OffsetDateTime,
        rule: Activation,
    ) -> Result<KeyInfo, KeyError> {
        let now = micros(now);
        let mut tx = self.begin_change().await?;
        let keys = read_all_in(&mut tx).await?;
        let next = find(&keys, KeyStatus::Next).ok_or(KeyError::NoNextKey)?;
        rule.check(&next.record.info(), now)?;
        let old = find(&keys, KeyStatus::Active).map(|k| k.record.id.clone());
        // Only a key this KEK opens, and that matches its certificate, may start signing.
        self.open(next)?;
        let at = timestamp::format(now);
        sqlx::query(
            "UPDATE signing_keys SET role = 'retired', retired_at = $1 WHERE role = 'active'",
        )
        .bind(&at)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE signing_keys SET role = 'active', activated_at = $1 WHERE id = $2")
            .bind(&at)
            .bind(&next.record.id)
            .execute(&mut *tx)
            .await?;
        let mut info = next.record.info();
        info.status = KeyStatus::Active;
        info.activated_at = Some(now);
        let change = super::activated(&info, old.as_deref(), rule);
        audit::record(&mut tx, actor, now, change).await?;
        tx.commit().await?;
        Ok(info)
    }

    /// Abandons a rollover: the `next` key is retired without ever signing.
    pub async fn retire_next(
        &self,
        actor: &Actor,
        now: OffsetDateTime,
    ) -> Result<KeyInfo, KeyError> {
        let now = micros(now);
        let mut tx = self.begin_change().await?;
        let keys = read_all_in(&mut tx).await?;
        let next = find(&keys, KeyStatus::Next).ok_or(KeyError::NoNextKey)?;
        sqlx::query("UPDATE signing_keys SET role = 'retired', retired_at = $1 WHERE id = $2")
            .bind(timestamp::format(now))
            .bind(&next.record.id)
            .execute(&mut *tx)
            .await?;
        let mut info = next.record.info();
        info.status = KeyStatus::Retired;
        info.retired_at = Some(now);
        audit::record(&mut tx, actor, now, super::retired_next(&info)).await?;
        tx.commit().await?;
        Ok(info)
    }

    /// Copies every key of a file store, with its role and dates, into this (empty)
    /// store in one transaction: the way from one node with files to many on the database.
    pub async fn import(&self, actor: &Actor, files: &KeyStore) -> Result<Vec<KeyInfo>, KeyError> {
        // Read (and check) every file first, so a damaged file stops the import before
        // the transaction starts.
        let mut materials = Vec::new();
        for info in files.list() {
            if let Some(material) = files.material(&info.id)? {
                materials.push(material);
            }
        }
        let mut tx = self.begin_change().await?;
        let existing = read_all_in(&mut tx).await?;
        if !existing.is_empty() {
            return Err(KeyError::ImportTargetNotEmpty {
                count: existing.len(),
            });
        }
        let mut imported = Vec::with_capacity(materials.len());
        for m in &materials {
            let record = KeyRecord {
                id: m.info.id.clone(),
                algorithm: m.info.algorithm,
                status: m.info.status,
                created_at: micros(m.info.created_at),
                activated_at: m.info.activated_at.map(micros),
                retired_at: m.info.retired_at.map(micros),
                fingerprint_sha256: m.info.fingerprint_sha256.clone(),
            };
            self.insert(&mut tx, &record, &m.key_pem, &m.cert_pem)
                .await?;
            imported.push(record.info());
        }
        let change = super::imported(files.dir(), &imported);
        audit::record(&mut tx, actor, self.store.now(), change).await?;
        tx.commit().await?;
        Ok(imported)
    }

    /// Re-seals every key under `new` in one transaction, for replacing the KEK (a KEK
    /// that may have leaked, or a routine change). Every row must open under the current
    /// KEK first, so a damaged row stops the change before anything is written. Nodes
    /// still holding the old KEK keep signing with the keys they loaded and log the
    /// `WrongKek` of each refresh until they are restarted with the new one. Returns how
    /// many keys were re-sealed.
    pub async fn rewrap(&self, actor: &Actor, new: &Kek) -> Result<usize, KeyError> {
        let mut tx = self.begin_change().await?;
        let keys = read_all_in(&mut tx).await?;
        for key in &keys {
            let material = self.open(key)?;
            let binding = KeyBinding {
                id: &key.record.id,
                algorithm: key.record.algorithm,
                fingerprint_sha256: &key.record.fingerprint_sha256,
            };
            let sealed = new.seal(&binding, material.key_pem.as_bytes())?;
            sqlx::query("UPDATE signing_keys SET kek_id = $1, sealed_key = $2 WHERE id = $3")
                .bind(new.id())
                .bind(sealed)
                .bind(&key.record.id)
                .execute(&mut *tx)
                .await?;
        }
        let change = super::rewrapped(self.kek.id(), new.id(), keys.len());
        audit::record(&mut tx, actor, self.store.now(), change).await?;
        tx.commit().await?;
        Ok(keys.len())
    }

    /// Opens a write transaction and bumps the generation (see the module docs).
    async fn begin_change(&self) -> Result<WriteTx, KeyError> {
        let mut tx = self.store.begin().await?;
        sqlx::query("UPDATE signing_keys_generation SET generation = generation + 1 WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    async fn insert(
        &self,
        tx: &mut WriteTx,
        record: &KeyRecord,
        key_pem: &Zeroizing<String>,
        cert_pem: &str,
    ) -> Result<(), KeyError> {
        let binding = KeyBinding {
            id: &record.id,
            algorithm: record.algorithm,
            fingerprint_sha256: &record.fingerprint_sha256,
        };
        let sealed = self.kek.seal(&binding, key_pem.as_bytes())?;
        let sql = format!(
            "INSERT INTO signing_keys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&record.id)
            .bind(record.algorithm.as_str())
            .bind(record.status.as_str())
            .bind(cert_pem)
            .bind(&record.fingerprint_sha256)
            .bind(self.kek.id())
            .bind(sealed)
            .bind(timestamp::format(record.created_at))
            .bind(record.activated_at.map(timestamp::format))
            .bind(record.retired_at.map(timestamp::format))
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    async fn read_all(&self) -> Result<Vec<StoredKey>, KeyError> {
        let mut conn = self.store.pool().acquire().await?;
        read_all_in(&mut conn).await
    }

    /// Refuses to add to, or vouch for, keys sealed under another KEK.
    fn check_kek(&self, key: &StoredKey) -> Result<(), KeyError> {
        if key.kek_id == self.kek.id() {
            return Ok(());
        }
        Err(KeyError::WrongKek {
            key_id: key.record.id.clone(),
            kek: self.kek.source().clone(),
            kek_id: self.kek.id().to_owned(),
            sealed_with: key.kek_id.clone(),
        })
    }

    /// Unseals a key and checks it against its certificate.
    fn open(&self, key: &StoredKey) -> Result<KeyMaterial, KeyError> {
        let record = &key.record;
        let binding = KeyBinding {
            id: &record.id,
            algorithm: record.algorithm,
            fingerprint_sha256: &record.fingerprint_sha256,
        };
        let key_pem = self.kek.open(&binding, &key.kek_id, &key.sealed_key)?;
        super::check_pair(record, &key_pem, &key.certificate_pem).map_err(|m| {
            let reason = match m {
                Mismatch::Key(r) => format!("private key: {r}"),
                Mismatch::Cert(r) => format!("certificate: {r}"),
            };
            KeyError::StoredCorrupt {
                id: record.id.clone(),
                reason,
            }
        })?;
        Ok(KeyMaterial {
            info: record.info(),
            key_pem,
            cert_pem: key.certificate_pem.clone(),
        })
    }
}

async fn read_all_in(conn: &mut AnyConnection) -> Result<Vec<StoredKey>, KeyError> {
    let sql = format!("SELECT {COLUMNS} FROM signing_keys ORDER BY created_at, id");
    let rows: Vec<KeyRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await?;
    rows.into_iter().map(decode).collect()
}

fn decode(row: KeyRow) -> Result<StoredKey, KeyError> {
    let corrupt = |reason: String| KeyError::StoredCorrupt {
        id: row.id.clone(),
        reason,
    };
    let algorithm = KeyAlgorithm::parse(&row.algorithm)
        .ok_or_else(|| corrupt(format!("unknown algorithm {:?}", row.algorithm)))?;
    let status = KeyStatus::parse(&row.role)
        .ok_or_else(|| corrupt(format!("unknown role {:?}", row.role)))?;
    if !super::valid_id(&row.id, &row.fingerprint_sha256) {
        return Err(corrupt("id is not the fingerprint's prefix".into()));
    }
    let time = |text: &str| {
        timestamp::parse("signing_keys timestamp", text).map_err(|e| corrupt(e.to_string()))
    };
    let created_at = time(&row.created_at)?;
    let activated_at = row.activated_at.as_deref().map(time).transpose()?;
    let retired_at = row.retired_at.as_deref().map(time).transpose()?;
    Ok(StoredKey {
        record: KeyRecord {
            id: row.id,
            algorithm,
            status,
            created_at,
            activated_at,
            retired_at,
            fingerprint_sha256: row.fingerprint_sha256,
        },
        certificate_pem: row.certificate_pem,
        kek_id: row.kek_id,
        sealed_key: row.sealed_key,
    })
}

fn find(keys: &[StoredKey], status: KeyStatus) -> Option<&StoredKey> {
    keys.iter().find(|k| k.record.status == status)
}

/// Truncates to what a stored timestamp keeps, so what a call returns equals what a later
/// read finds.
fn micros(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_microsecond(at.microsecond()).unwrap_or(at)
}
