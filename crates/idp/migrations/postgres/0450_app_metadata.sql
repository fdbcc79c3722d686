-- app_metadata (postgres): where an application registered from its SP's metadata read it, and
-- until when that metadata is valid (its validUntil, or the aggregate's if earlier), so the
-- console's dashboard warns before the SP's copy goes stale. Written by app add --metadata,
-- the API's from-metadata, the console, and every metadata refresh.
-- Keep in step with ../sqlite/0450_app_metadata.sql.

CREATE TABLE app_metadata (
    app_id      TEXT PRIMARY KEY NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    source      TEXT NOT NULL,
    valid_until TEXT,
    read_at     TEXT NOT NULL
);
CREATE INDEX app_metadata_valid_until ON app_metadata (valid_until);
