-- The IdP's signing keys when `[keys] store = "database"` (sqlite), so IdP nodes sharing the
-- store share their keys too. Owned by src/keys/database.rs.
--
-- The private key is sealed (AES-256-GCM, base64 of nonce || ciphertext || tag) under a
-- key-encryption key that is never stored here; kek_id names that KEK so a node given the
-- wrong one says so. id, algorithm and fingerprint are bound into the seal, so a sealed key
-- copied into another row does not open. The partial unique index lets the database itself
-- refuse a second active or next key, whatever two nodes do at once.

CREATE TABLE signing_keys (
    id                 TEXT PRIMARY KEY NOT NULL,
    algorithm          TEXT NOT NULL,
    role               TEXT NOT NULL CHECK (role IN ('active', 'next', 'retired')),
    certificate_pem    TEXT NOT NULL,
    fingerprint_sha256 TEXT NOT NULL,
    kek_id             TEXT NOT NULL,
    sealed_key         TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    activated_at       TEXT,
    retired_at         TEXT
);
CREATE UNIQUE INDEX signing_keys_role_key ON signing_keys (role) WHERE role <> 'retired';

-- Bumped in the same transaction as every change to signing_keys: a node polls this one
-- row to learn cheaply whether it must re-read the keys. Updating it first also queues
-- concurrent key changes (PostgreSQL row lock) behind each other.
CREATE TABLE signing_keys_generation (
    id         INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    generation BIGINT NOT NULL
);
INSERT INTO signing_keys_generation (id, generation) VALUES (1, 0);
