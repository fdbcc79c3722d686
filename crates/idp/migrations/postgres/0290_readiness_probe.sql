-- One row that /readyz (and `latchkey serve` at start) updates to learn whether the
-- database takes writes: a read answers even from a read-only file, a full disk or a held
-- lock, where every sign-in would fail. Updating one row in place never grows the table.
-- Owned by Store::probe_write in src/store/mod.rs.
-- Keep in step with ../sqlite/0290_readiness_probe.sql.

CREATE TABLE readiness_probe (
    id        BIGINT PRIMARY KEY,
    probed_at TEXT NOT NULL
);
INSERT INTO readiness_probe (id, probed_at) VALUES (1, '1970-01-01T00:00:00Z');
