-- Directory, applications and audit log (PostgreSQL).
-- Keep in step with ../sqlite/0001_directory.sql: same tables, columns and constraint names.
-- Timestamps are UTC text in one fixed-width format so they sort as strings;
-- *_key columns hold the case-folded value that uniqueness is enforced on.

CREATE TABLE users (
    id            TEXT PRIMARY KEY NOT NULL,
    username      TEXT NOT NULL,
    username_key  TEXT NOT NULL CONSTRAINT users_username_key_uq UNIQUE,
    email         TEXT NOT NULL,
    email_key     TEXT NOT NULL CONSTRAINT users_email_key_uq UNIQUE,
    given_name    TEXT,
    family_name   TEXT,
    display_name  TEXT,
    attributes    TEXT NOT NULL DEFAULT '{}',
    status        TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
    password_hash TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

CREATE TABLE directory_groups (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    name_key    TEXT NOT NULL CONSTRAINT directory_groups_name_key_uq UNIQUE,
    description TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES directory_groups (id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    added_at TEXT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members (user_id);

CREATE TABLE applications (
    id                  TEXT PRIMARY KEY NOT NULL,
    entity_id           TEXT NOT NULL CONSTRAINT applications_entity_id_uq UNIQUE,
    name                TEXT NOT NULL,
    acs_endpoints       TEXT NOT NULL,
    slo_endpoint        TEXT,
    signing_certs       TEXT NOT NULL DEFAULT '[]',
    encryption_cert     TEXT,
    name_id_format      TEXT NOT NULL,
    name_id_source      TEXT NOT NULL,
    attribute_mappings  TEXT NOT NULL DEFAULT '[]',
    sign_response       BIGINT NOT NULL,
    sign_assertion      BIGINT NOT NULL,
    encrypt_assertion   BIGINT NOT NULL,
    tile_description    TEXT,
    tile_icon_url       TEXT,
    default_relay_state TEXT,
    tile_visible        BIGINT NOT NULL,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);

CREATE TABLE app_access (
    app_id   TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    group_id TEXT NOT NULL REFERENCES directory_groups (id) ON DELETE CASCADE,
    added_at TEXT NOT NULL,
    PRIMARY KEY (app_id, group_id)
);
CREATE INDEX app_access_group ON app_access (group_id);

CREATE TABLE pairwise_ids (
    app_id     TEXT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name_id    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (app_id, user_id),
    CONSTRAINT pairwise_ids_name_id_uq UNIQUE (app_id, name_id)
);

CREATE TABLE audit_events (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target_id   TEXT,
    target_name TEXT,
    before      TEXT,
    after       TEXT
);
CREATE INDEX audit_events_target ON audit_events (target_id);
CREATE INDEX audit_events_at ON audit_events (at);
