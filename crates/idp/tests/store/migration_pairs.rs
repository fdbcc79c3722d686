//! The SQLite and PostgreSQL migrations are kept as pairs written by hand; this holds each pair
//! to saying the same thing. Comments may differ (they name their backend) and so may the few
//! types the backends spell differently; everything else (tables, columns, constraints and
//! their names, indexes, order) must match token for token.

use latchkey_testkit::migrations::{names, read, tokens};

const HERE: &str = env!("CARGO_MANIFEST_DIR");

/// SQLite spelling -> PostgreSQL spelling, applied longest first.
const SUBSTITUTIONS: &[(&str, &str)] = &[
    (
        "INTEGER PRIMARY KEY AUTOINCREMENT",
        "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    ),
    ("INTEGER", "BIGINT"),
    ("BLOB", "BYTEA"),
    // A field of a JSON text column in an expression index (0520: a user's `externalId`).
    (
        "json_extract(attributes, '$.externalId')",
        "(attributes::jsonb ->> 'externalId')",
    ),
    // 0580: the member entries of a JSON array, one row each.
    (
        "json_each(sg.members)",
        "jsonb_array_elements(sg.members::jsonb)",
    ),
    ("json_extract(e.value, '$.value')", "(e.value ->> 'value')"),
    ("json(e.value)", "e.value::text"),
];

/// Differences found in migrations already shipped, which cannot be edited (sqlx refuses a
/// database whose applied migrations changed checksum): (file, PostgreSQL text, read as).
const SHIPPED_DIFFERENCES: &[(&str, &str, &str)] = &[(
    // A one-row table (`CHECK (id = 1)`): int4 holds it as well as int8 would.
    "0260_signing_keys.sql",
    "id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1)",
    "id BIGINT PRIMARY KEY NOT NULL CHECK (id = 1)",
)];

/// Triggers, which the backends cannot spell alike (SQLite writes the body in the trigger,
/// PostgreSQL calls a function, and only it has statement triggers and `TRUNCATE`): each is
/// held to the exact text its backend must have, (file, SQLite, PostgreSQL) as normalized,
/// and the rest of the pair to matching token for token.
const TRIGGERS: &[(&str, &str, &str)] = &[
    (
        // Every change to an application moves the applications' version.
        "0570_apps_version.sql",
        "CREATE TRIGGER applications_insert_version AFTER INSERT ON applications \
     BEGIN UPDATE apps_version SET version = version + 1 WHERE id = 1; END; \
     CREATE TRIGGER applications_update_version AFTER UPDATE ON applications \
     BEGIN UPDATE apps_version SET version = version + 1 WHERE id = 1; END; \
     CREATE TRIGGER applications_delete_version AFTER DELETE ON applications \
     BEGIN UPDATE apps_version SET version = version + 1 WHERE id = 1; END;",
        "CREATE FUNCTION applications_version() RETURNS trigger LANGUAGE plpgsql AS $$ \
     BEGIN UPDATE apps_version SET version = version + 1 WHERE id = 1; RETURN NULL; END $$; \
     CREATE TRIGGER applications_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE \
     ON applications FOR EACH STATEMENT EXECUTE FUNCTION applications_version();",
    ),
    (
        // A word row an older node writes without its username key gets it from `users`.
        "0610_user_words_by_username.sql",
        "CREATE TRIGGER user_words_username_key AFTER INSERT ON user_words \
     WHEN NEW.username_key = '' \
     BEGIN UPDATE user_words SET username_key = \
     (SELECT u.username_key FROM users u WHERE u.id = NEW.user_id) \
     WHERE word = NEW.word AND username_key = '' AND user_id = NEW.user_id; END;",
        "CREATE FUNCTION user_words_username_key() RETURNS trigger LANGUAGE plpgsql AS $$ \
     BEGIN NEW.username_key := \
     (SELECT u.username_key FROM users u WHERE u.id = NEW.user_id); RETURN NEW; END $$; \
     CREATE TRIGGER user_words_username_key BEFORE INSERT ON user_words \
     FOR EACH ROW WHEN (NEW.username_key = '') EXECUTE FUNCTION user_words_username_key();",
    ),
    (
        // A rename by any writer moves the key copied into the listings' rows.
        "0620_username_key_follows.sql",
        "CREATE TRIGGER users_username_key_follows AFTER UPDATE OF username_key ON users \
     WHEN NEW.username_key IS NOT OLD.username_key \
     BEGIN UPDATE user_words SET username_key = NEW.username_key WHERE user_id = NEW.id; \
     UPDATE group_members SET username_key = NEW.username_key WHERE user_id = NEW.id; END;",
        "CREATE FUNCTION users_username_key_follows() RETURNS trigger LANGUAGE plpgsql AS $$ \
     BEGIN UPDATE user_words SET username_key = NEW.username_key WHERE user_id = NEW.id; \
     UPDATE group_members SET username_key = NEW.username_key WHERE user_id = NEW.id; \
     RETURN NULL; END $$; \
     CREATE TRIGGER users_username_key_follows AFTER UPDATE OF username_key ON users \
     FOR EACH ROW WHEN (NEW.username_key IS DISTINCT FROM OLD.username_key) \
     EXECUTE FUNCTION users_username_key_follows();",
    ),
    (
        // Any change to what a group's member list shows moves the group's members' version.
        "0630_group_version.sql",
        "CREATE TRIGGER group_members_insert_version AFTER INSERT ON group_members \
     BEGIN UPDATE directory_groups SET members_version = members_version + 1 \
     WHERE id = NEW.group_id; END; \
     CREATE TRIGGER group_members_update_version AFTER UPDATE ON group_members \
     BEGIN UPDATE directory_groups SET members_version = members_version + 1 \
     WHERE id IN (OLD.group_id, NEW.group_id); END; \
     CREATE TRIGGER group_members_delete_version AFTER DELETE ON group_members \
     BEGIN UPDATE directory_groups SET members_version = members_version + 1 \
     WHERE id = OLD.group_id; END; \
     CREATE TRIGGER scim_group_members_insert_version AFTER INSERT ON scim_group_members \
     BEGIN UPDATE directory_groups SET members_version = members_version + 1 \
     WHERE id = NEW.group_id; END; \
     CREATE TRIGGER scim_group_members_update_version AFTER UPDATE ON scim_group_members \
     BEGIN UPDATE directory_groups SET members_version = members_version + 1 \
     WHERE id IN (OLD.group_id, NEW.group_id); END; \
     CREATE TRIGGER scim_group_members_delete_version AFTER DELETE ON scim_group_members \
     BEGIN UPDATE directory_groups SET members_version = members_version + 1 \
     WHERE id = OLD.group_id; END; \
     CREATE TRIGGER users_username_members_version AFTER UPDATE OF username ON users \
     WHEN NEW.username IS NOT OLD.username \
     BEGIN UPDATE directory_groups SET members_version = members_version + 1 \
     WHERE id IN (SELECT group_id FROM group_members WHERE user_id = NEW.id); END;",
        "CREATE FUNCTION groups_members_version(ids TEXT[]) RETURNS void LANGUAGE plpgsql AS $$ \
     BEGIN PERFORM 1 FROM directory_groups WHERE id = ANY (ids) ORDER BY id FOR NO KEY UPDATE; \
     UPDATE directory_groups SET members_version = members_version + 1 WHERE id = ANY (ids); \
     END $$; \
     CREATE FUNCTION group_members_version() RETURNS trigger LANGUAGE plpgsql AS $$ \
     BEGIN IF TG_OP = 'INSERT' THEN \
     PERFORM groups_members_version(ARRAY(SELECT DISTINCT group_id FROM came)); \
     ELSIF TG_OP = 'DELETE' THEN \
     PERFORM groups_members_version(ARRAY(SELECT DISTINCT group_id FROM gone)); \
     ELSIF TG_OP = 'UPDATE' THEN PERFORM groups_members_version(\
     ARRAY(SELECT group_id FROM came UNION SELECT group_id FROM gone)); \
     ELSE UPDATE directory_groups SET members_version = members_version + 1; END IF; \
     RETURN NULL; END $$; \
     CREATE TRIGGER group_members_insert_version AFTER INSERT ON group_members \
     REFERENCING NEW TABLE AS came FOR EACH STATEMENT EXECUTE FUNCTION group_members_version(); \
     CREATE TRIGGER group_members_update_version AFTER UPDATE ON group_members \
     REFERENCING OLD TABLE AS gone NEW TABLE AS came \
     FOR EACH STATEMENT EXECUTE FUNCTION group_members_version(); \
     CREATE TRIGGER group_members_delete_version AFTER DELETE ON group_members \
     REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION group_members_version(); \
     CREATE TRIGGER group_members_truncate_version AFTER TRUNCATE ON group_members \
     FOR EACH STATEMENT EXECUTE FUNCTION group_members_version(); \
     CREATE TRIGGER scim_group_members_insert_version AFTER INSERT ON scim_group_members \
     REFERENCING NEW TABLE AS came FOR EACH STATEMENT EXECUTE FUNCTION group_members_version(); \
     CREATE TRIGGER scim_group_members_update_version AFTER UPDATE ON scim_group_members \
     REFERENCING OLD TABLE AS gone NEW TABLE AS came \
     FOR EACH STATEMENT EXECUTE FUNCTION group_members_version(); \
     CREATE TRIGGER scim_group_members_delete_version AFTER DELETE ON scim_group_members \
     REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION group_members_version(); \
     CREATE TRIGGER scim_group_members_truncate_version AFTER TRUNCATE ON scim_group_members \
     FOR EACH STATEMENT EXECUTE FUNCTION group_members_version(); \
     CREATE FUNCTION users_username_members_version() RETURNS trigger LANGUAGE plpgsql AS $$ \
     BEGIN PERFORM groups_members_version(\
     ARRAY(SELECT group_id FROM group_members WHERE user_id = NEW.id)); RETURN NULL; END $$; \
     CREATE TRIGGER users_username_members_version AFTER UPDATE OF username ON users \
     FOR EACH ROW WHEN (NEW.username IS DISTINCT FROM OLD.username) \
     EXECUTE FUNCTION users_username_members_version();",
    ),
    (
        // The anonymous rows of each front-door table, kept in step whoever writes.
        "0655_front_door_counts.sql",
        "CREATE TRIGGER sso_parked_requests_insert_count AFTER INSERT ON sso_parked_requests WHEN \
     substr(NEW.owner, 1, 5) = 'addr:' BEGIN UPDATE front_door_counts SET live = live + 1 \
     WHERE counted = 'sso_parked_requests'; END; CREATE TRIGGER \
     sso_parked_requests_delete_count AFTER DELETE ON sso_parked_requests WHEN \
     substr(OLD.owner, 1, 5) = 'addr:' BEGIN UPDATE front_door_counts SET live = live - 1 \
     WHERE counted = 'sso_parked_requests'; END; CREATE TRIGGER \
     sso_parked_requests_update_count AFTER UPDATE OF owner ON sso_parked_requests WHEN \
     (substr(NEW.owner, 1, 5) IS 'addr:') <> (substr(OLD.owner, 1, 5) IS 'addr:') BEGIN \
     UPDATE front_door_counts SET live = live + (substr(NEW.owner, 1, 5) IS 'addr:') - \
     (substr(OLD.owner, 1, 5) IS 'addr:') WHERE counted = 'sso_parked_requests'; END; CREATE \
     TRIGGER webauthn_challenges_insert_count AFTER INSERT ON webauthn_challenges WHEN \
     NEW.user_id IS NULL BEGIN UPDATE front_door_counts SET live = live + 1 WHERE counted = \
     'webauthn_challenges'; END; CREATE TRIGGER webauthn_challenges_delete_count AFTER DELETE \
     ON webauthn_challenges WHEN OLD.user_id IS NULL BEGIN UPDATE front_door_counts SET live \
     = live - 1 WHERE counted = 'webauthn_challenges'; END; CREATE TRIGGER \
     webauthn_challenges_update_count AFTER UPDATE OF user_id ON webauthn_challenges WHEN \
     (NEW.user_id IS NULL) <> (OLD.user_id IS NULL) BEGIN UPDATE front_door_counts SET live = \
     live + (NEW.user_id IS NULL) - (OLD.user_id IS NULL) WHERE counted = \
     'webauthn_challenges'; END;",
        "CREATE FUNCTION sso_parked_requests_count() RETURNS trigger LANGUAGE plpgsql AS $$ \
     DECLARE change BIGINT := 0; BEGIN IF TG_OP = 'TRUNCATE' THEN UPDATE front_door_counts \
     SET live = 0 WHERE counted = 'sso_parked_requests'; RETURN NULL; END IF; IF TG_OP IN \
     ('INSERT', 'UPDATE') THEN change := change + (SELECT COUNT(*) FROM came WHERE \
     substr(owner, 1, 5) = 'addr:'); END IF; IF TG_OP IN ('DELETE', 'UPDATE') THEN change := \
     change - (SELECT COUNT(*) FROM gone WHERE substr(owner, 1, 5) = 'addr:'); END IF; IF \
     change <> 0 THEN UPDATE front_door_counts SET live = live + change WHERE counted = \
     'sso_parked_requests'; END IF; RETURN NULL; END $$; CREATE TRIGGER \
     sso_parked_requests_insert_count AFTER INSERT ON sso_parked_requests REFERENCING NEW \
     TABLE AS came FOR EACH STATEMENT EXECUTE FUNCTION sso_parked_requests_count(); CREATE \
     TRIGGER sso_parked_requests_update_count AFTER UPDATE ON sso_parked_requests REFERENCING \
     OLD TABLE AS gone NEW TABLE AS came FOR EACH STATEMENT EXECUTE FUNCTION \
     sso_parked_requests_count(); CREATE TRIGGER sso_parked_requests_delete_count AFTER \
     DELETE ON sso_parked_requests REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE \
     FUNCTION sso_parked_requests_count(); CREATE TRIGGER sso_parked_requests_truncate_count \
     AFTER TRUNCATE ON sso_parked_requests FOR EACH STATEMENT EXECUTE FUNCTION \
     sso_parked_requests_count(); CREATE FUNCTION webauthn_challenges_count() RETURNS trigger \
     LANGUAGE plpgsql AS $$ DECLARE change BIGINT := 0; BEGIN IF TG_OP = 'TRUNCATE' THEN \
     UPDATE front_door_counts SET live = 0 WHERE counted = 'webauthn_challenges'; RETURN \
     NULL; END IF; IF TG_OP IN ('INSERT', 'UPDATE') THEN change := change + (SELECT COUNT(*) \
     FROM came WHERE user_id IS NULL); END IF; IF TG_OP IN ('DELETE', 'UPDATE') THEN change \
     := change - (SELECT COUNT(*) FROM gone WHERE user_id IS NULL); END IF; IF change <> 0 \
     THEN UPDATE front_door_counts SET live = live + change WHERE counted = \
     'webauthn_challenges'; END IF; RETURN NULL; END $$; CREATE TRIGGER \
     webauthn_challenges_insert_count AFTER INSERT ON webauthn_challenges REFERENCING NEW \
     TABLE AS came FOR EACH STATEMENT EXECUTE FUNCTION webauthn_challenges_count(); CREATE \
     TRIGGER webauthn_challenges_update_count AFTER UPDATE ON webauthn_challenges REFERENCING \
     OLD TABLE AS gone NEW TABLE AS came FOR EACH STATEMENT EXECUTE FUNCTION \
     webauthn_challenges_count(); CREATE TRIGGER webauthn_challenges_delete_count AFTER \
     DELETE ON webauthn_challenges REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE \
     FUNCTION webauthn_challenges_count(); CREATE TRIGGER webauthn_challenges_truncate_count \
     AFTER TRUNCATE ON webauthn_challenges FOR EACH STATEMENT EXECUTE FUNCTION \
     webauthn_challenges_count();",
    ),
    (
        // Each front-door table's live counts by scope and expiry, kept in step whoever writes.
        "0660_front_door_live_counts.sql",
        "UPDATE sso_parked_requests SET wide = 'addr:' || substr(substr(owner, 6), 1, \
     instr(substr(owner, 6), ':') + instr(substr(owner, 6 + instr(substr(owner, 6), ':')), \
     ':') + instr(substr(owner, 6 + instr(substr(owner, 6), ':') + instr(substr(owner, 6 + \
     instr(substr(owner, 6), ':')), ':')), ':')) WHERE owner LIKE 'addr:%:%:%:%::/64'; UPDATE \
     webauthn_challenges SET wide = 'addr:' || substr(substr(owner, 6), 1, \
     instr(substr(owner, 6), ':') + instr(substr(owner, 6 + instr(substr(owner, 6), ':')), \
     ':') + instr(substr(owner, 6 + instr(substr(owner, 6), ':') + instr(substr(owner, 6 + \
     instr(substr(owner, 6), ':')), ':')), ':')) WHERE owner LIKE 'addr:%:%:%:%::/64'; DROP \
     TRIGGER sso_parked_requests_insert_count; DROP TRIGGER sso_parked_requests_delete_count; \
     DROP TRIGGER sso_parked_requests_update_count; DROP TRIGGER \
     webauthn_challenges_insert_count; DROP TRIGGER webauthn_challenges_delete_count; DROP \
     TRIGGER webauthn_challenges_update_count; CREATE TRIGGER \
     sso_parked_requests_insert_count AFTER INSERT ON sso_parked_requests BEGIN INSERT INTO \
     front_door_counts_parked (scope, name, expires_at, live) SELECT 'owner', NEW.owner, \
     NEW.expires_at, 1 WHERE NEW.owner <> '' ON CONFLICT (scope, name, expires_at) DO UPDATE \
     SET live = live + 1; INSERT INTO front_door_counts_parked (scope, name, expires_at, \
     live) SELECT 'wide', NEW.wide, NEW.expires_at, 1 WHERE NEW.wide IS NOT NULL ON CONFLICT \
     (scope, name, expires_at) DO UPDATE SET live = live + 1; INSERT INTO \
     front_door_counts_parked (scope, name, expires_at, live) SELECT 'all', '', \
     NEW.expires_at, 1 WHERE substr(NEW.owner, 1, 5) = 'addr:' ON CONFLICT (scope, name, \
     expires_at) DO UPDATE SET live = live + 1; END; CREATE TRIGGER \
     sso_parked_requests_delete_count AFTER DELETE ON sso_parked_requests BEGIN UPDATE \
     front_door_counts_parked SET live = live - 1 WHERE scope = 'owner' AND name = OLD.owner \
     AND expires_at = OLD.expires_at; UPDATE front_door_counts_parked SET live = live - 1 \
     WHERE scope = 'wide' AND name = OLD.wide AND expires_at = OLD.expires_at; UPDATE \
     front_door_counts_parked SET live = live - 1 WHERE scope = 'all' AND name = '' AND \
     expires_at = OLD.expires_at AND substr(OLD.owner, 1, 5) = 'addr:'; DELETE FROM \
     front_door_counts_parked WHERE live = 0 AND expires_at = OLD.expires_at AND scope IN \
     ('owner', 'wide', 'all') AND name IN (OLD.owner, OLD.wide, ''); END; CREATE TRIGGER \
     sso_parked_requests_update_count AFTER UPDATE OF owner, wide, expires_at ON \
     sso_parked_requests WHEN NEW.owner IS NOT OLD.owner OR NEW.wide IS NOT OLD.wide OR \
     NEW.expires_at IS NOT OLD.expires_at BEGIN UPDATE front_door_counts_parked SET live = \
     live - 1 WHERE scope = 'owner' AND name = OLD.owner AND expires_at = OLD.expires_at; \
     UPDATE front_door_counts_parked SET live = live - 1 WHERE scope = 'wide' AND name = \
     OLD.wide AND expires_at = OLD.expires_at; UPDATE front_door_counts_parked SET live = \
     live - 1 WHERE scope = 'all' AND name = '' AND expires_at = OLD.expires_at AND \
     substr(OLD.owner, 1, 5) = 'addr:'; DELETE FROM front_door_counts_parked WHERE live = 0 \
     AND expires_at = OLD.expires_at AND scope IN ('owner', 'wide', 'all') AND name IN \
     (OLD.owner, OLD.wide, ''); INSERT INTO front_door_counts_parked (scope, name, \
     expires_at, live) SELECT 'owner', NEW.owner, NEW.expires_at, 1 WHERE NEW.owner <> '' ON \
     CONFLICT (scope, name, expires_at) DO UPDATE SET live = live + 1; INSERT INTO \
     front_door_counts_parked (scope, name, expires_at, live) SELECT 'wide', NEW.wide, \
     NEW.expires_at, 1 WHERE NEW.wide IS NOT NULL ON CONFLICT (scope, name, expires_at) DO \
     UPDATE SET live = live + 1; INSERT INTO front_door_counts_parked (scope, name, \
     expires_at, live) SELECT 'all', '', NEW.expires_at, 1 WHERE substr(NEW.owner, 1, 5) = \
     'addr:' ON CONFLICT (scope, name, expires_at) DO UPDATE SET live = live + 1; END; CREATE \
     TRIGGER webauthn_challenges_insert_count AFTER INSERT ON webauthn_challenges BEGIN \
     INSERT INTO front_door_counts_ceremonies (scope, name, expires_at, live) SELECT 'owner', \
     NEW.owner, NEW.expires_at, 1 WHERE NEW.owner <> '' ON CONFLICT (scope, name, expires_at) \
     DO UPDATE SET live = live + 1; INSERT INTO front_door_counts_ceremonies (scope, name, \
     expires_at, live) SELECT 'wide', NEW.wide, NEW.expires_at, 1 WHERE NEW.wide IS NOT NULL \
     ON CONFLICT (scope, name, expires_at) DO UPDATE SET live = live + 1; INSERT INTO \
     front_door_counts_ceremonies (scope, name, expires_at, live) SELECT 'all', '', \
     NEW.expires_at, 1 WHERE NEW.user_id IS NULL ON CONFLICT (scope, name, expires_at) DO \
     UPDATE SET live = live + 1; END; CREATE TRIGGER webauthn_challenges_delete_count AFTER \
     DELETE ON webauthn_challenges BEGIN UPDATE front_door_counts_ceremonies SET live = live \
     - 1 WHERE scope = 'owner' AND name = OLD.owner AND expires_at = OLD.expires_at; UPDATE \
     front_door_counts_ceremonies SET live = live - 1 WHERE scope = 'wide' AND name = \
     OLD.wide AND expires_at = OLD.expires_at; UPDATE front_door_counts_ceremonies SET live = \
     live - 1 WHERE scope = 'all' AND name = '' AND expires_at = OLD.expires_at AND \
     OLD.user_id IS NULL; DELETE FROM front_door_counts_ceremonies WHERE live = 0 AND \
     expires_at = OLD.expires_at AND scope IN ('owner', 'wide', 'all') AND name IN \
     (OLD.owner, OLD.wide, ''); END; CREATE TRIGGER webauthn_challenges_update_count AFTER \
     UPDATE OF owner, wide, user_id, expires_at ON webauthn_challenges WHEN NEW.owner IS NOT \
     OLD.owner OR NEW.wide IS NOT OLD.wide OR (NEW.user_id IS NULL) <> (OLD.user_id IS NULL) \
     OR NEW.expires_at IS NOT OLD.expires_at BEGIN UPDATE front_door_counts_ceremonies SET \
     live = live - 1 WHERE scope = 'owner' AND name = OLD.owner AND expires_at = \
     OLD.expires_at; UPDATE front_door_counts_ceremonies SET live = live - 1 WHERE scope = \
     'wide' AND name = OLD.wide AND expires_at = OLD.expires_at; UPDATE \
     front_door_counts_ceremonies SET live = live - 1 WHERE scope = 'all' AND name = '' AND \
     expires_at = OLD.expires_at AND OLD.user_id IS NULL; DELETE FROM \
     front_door_counts_ceremonies WHERE live = 0 AND expires_at = OLD.expires_at AND scope IN \
     ('owner', 'wide', 'all') AND name IN (OLD.owner, OLD.wide, ''); INSERT INTO \
     front_door_counts_ceremonies (scope, name, expires_at, live) SELECT 'owner', NEW.owner, \
     NEW.expires_at, 1 WHERE NEW.owner <> '' ON CONFLICT (scope, name, expires_at) DO UPDATE \
     SET live = live + 1; INSERT INTO front_door_counts_ceremonies (scope, name, expires_at, \
     live) SELECT 'wide', NEW.wide, NEW.expires_at, 1 WHERE NEW.wide IS NOT NULL ON CONFLICT \
     (scope, name, expires_at) DO UPDATE SET live = live + 1; INSERT INTO \
     front_door_counts_ceremonies (scope, name, expires_at, live) SELECT 'all', '', \
     NEW.expires_at, 1 WHERE NEW.user_id IS NULL ON CONFLICT (scope, name, expires_at) DO \
     UPDATE SET live = live + 1; END;",
        "UPDATE sso_parked_requests SET wide = substring(owner from '^addr:[^:]*:[^:]*:[^:]*:') \
     WHERE owner LIKE 'addr:%:%:%:%::/64'; UPDATE webauthn_challenges SET wide = \
     substring(owner from '^addr:[^:]*:[^:]*:[^:]*:') WHERE owner LIKE 'addr:%:%:%:%::/64'; \
     CREATE FUNCTION front_door_counts_parked_move(scopes TEXT[], names TEXT[], expiries \
     TEXT[], moves BIGINT[]) RETURNS void LANGUAGE plpgsql AS $$ BEGIN INSERT INTO \
     front_door_counts_parked AS c (scope, name, expires_at, live) SELECT m.scope, m.name, \
     m.expires_at, SUM(m.move) FROM unnest(scopes, names, expiries, moves) AS m (scope, name, \
     expires_at, move) GROUP BY m.scope, m.name, m.expires_at HAVING SUM(m.move) <> 0 ORDER \
     BY m.scope, m.name, m.expires_at ON CONFLICT (scope, name, expires_at) DO UPDATE SET \
     live = c.live + excluded.live; DELETE FROM front_door_counts_parked AS c USING \
     unnest(scopes, names, expiries) AS m (scope, name, expires_at) WHERE c.scope = m.scope \
     AND c.name = m.name AND c.expires_at = m.expires_at AND c.live = 0; END $$; CREATE \
     FUNCTION front_door_counts_ceremonies_move(scopes TEXT[], names TEXT[], expiries \
     BIGINT[], moves BIGINT[]) RETURNS void LANGUAGE plpgsql AS $$ BEGIN INSERT INTO \
     front_door_counts_ceremonies AS c (scope, name, expires_at, live) SELECT m.scope, \
     m.name, m.expires_at, SUM(m.move) FROM unnest(scopes, names, expiries, moves) AS m \
     (scope, name, expires_at, move) GROUP BY m.scope, m.name, m.expires_at HAVING \
     SUM(m.move) <> 0 ORDER BY m.scope, m.name, m.expires_at ON CONFLICT (scope, name, \
     expires_at) DO UPDATE SET live = c.live + excluded.live; DELETE FROM \
     front_door_counts_ceremonies AS c USING unnest(scopes, names, expiries) AS m (scope, \
     name, expires_at) WHERE c.scope = m.scope AND c.name = m.name AND c.expires_at = \
     m.expires_at AND c.live = 0; END $$; CREATE OR REPLACE FUNCTION \
     sso_parked_requests_count() RETURNS trigger LANGUAGE plpgsql AS $$ DECLARE scopes \
     TEXT[]; names TEXT[]; expiries TEXT[]; moves BIGINT[]; BEGIN IF TG_OP = 'TRUNCATE' THEN \
     DELETE FROM front_door_counts_parked; RETURN NULL; END IF; IF TG_OP IN ('DELETE', \
     'UPDATE') THEN SELECT array_agg(m.scope), array_agg(m.name), array_agg(m.expires_at), \
     array_agg(-1::BIGINT) INTO scopes, names, expiries, moves FROM ( SELECT 'owner' AS \
     scope, owner AS name, expires_at FROM gone WHERE owner <> '' UNION ALL SELECT 'wide', \
     wide, expires_at FROM gone WHERE wide IS NOT NULL UNION ALL SELECT 'all', '', expires_at \
     FROM gone WHERE substr(owner, 1, 5) = 'addr:') AS m; PERFORM \
     front_door_counts_parked_move(scopes, names, expiries, moves); END IF; IF TG_OP IN \
     ('INSERT', 'UPDATE') THEN SELECT array_agg(m.scope), array_agg(m.name), \
     array_agg(m.expires_at), array_agg(1::BIGINT) INTO scopes, names, expiries, moves FROM ( \
     SELECT 'owner' AS scope, owner AS name, expires_at FROM came WHERE owner <> '' UNION ALL \
     SELECT 'wide', wide, expires_at FROM came WHERE wide IS NOT NULL UNION ALL SELECT 'all', \
     '', expires_at FROM came WHERE substr(owner, 1, 5) = 'addr:') AS m; PERFORM \
     front_door_counts_parked_move(scopes, names, expiries, moves); END IF; RETURN NULL; END \
     $$; CREATE OR REPLACE FUNCTION webauthn_challenges_count() RETURNS trigger LANGUAGE \
     plpgsql AS $$ DECLARE scopes TEXT[]; names TEXT[]; expiries BIGINT[]; moves BIGINT[]; \
     BEGIN IF TG_OP = 'TRUNCATE' THEN DELETE FROM front_door_counts_ceremonies; RETURN NULL; \
     END IF; IF TG_OP IN ('DELETE', 'UPDATE') THEN SELECT array_agg(m.scope), \
     array_agg(m.name), array_agg(m.expires_at), array_agg(-1::BIGINT) INTO scopes, names, \
     expiries, moves FROM ( SELECT 'owner' AS scope, owner AS name, expires_at FROM gone \
     WHERE owner <> '' UNION ALL SELECT 'wide', wide, expires_at FROM gone WHERE wide IS NOT \
     NULL UNION ALL SELECT 'all', '', expires_at FROM gone WHERE user_id IS NULL) AS m; \
     PERFORM front_door_counts_ceremonies_move(scopes, names, expiries, moves); END IF; IF \
     TG_OP IN ('INSERT', 'UPDATE') THEN SELECT array_agg(m.scope), array_agg(m.name), \
     array_agg(m.expires_at), array_agg(1::BIGINT) INTO scopes, names, expiries, moves FROM ( \
     SELECT 'owner' AS scope, owner AS name, expires_at FROM came WHERE owner <> '' UNION ALL \
     SELECT 'wide', wide, expires_at FROM came WHERE wide IS NOT NULL UNION ALL SELECT 'all', \
     '', expires_at FROM came WHERE user_id IS NULL) AS m; PERFORM \
     front_door_counts_ceremonies_move(scopes, names, expiries, moves); END IF; RETURN NULL; \
     END $$;",
    ),
];

/// The statements as tokens, with PostgreSQL's type names, and without PostgreSQL's byte-wise
/// `COLLATE "C"`.
fn normalize(sql: &str, substitute: bool) -> String {
    let mut text = tokens(sql);
    if substitute {
        for (sqlite, postgres) in SUBSTITUTIONS {
            text = text.replace(sqlite, postgres);
        }
    } else {
        // PostgreSQL indexes for byte-wise key order say `COLLATE "C"`; SQLite's default
        // collation (BINARY) already is byte-wise and has no collation of that name.
        text = text.replace(" COLLATE \"C\"", "");
    }
    text
}

#[test]
fn every_migration_exists_for_both_backends() {
    let sqlite = names(HERE, "sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, names(HERE, "postgres"));
}

#[test]
fn each_pair_says_the_same_after_the_known_type_substitutions() {
    for name in names(HERE, "sqlite") {
        let mut sqlite = normalize(&read(HERE, "sqlite", &name), true);
        let mut postgres = normalize(&read(HERE, "postgres", &name), false);
        for (file, in_sqlite, in_postgres) in TRIGGERS {
            if *file == name {
                for (text, expected) in [(&mut sqlite, in_sqlite), (&mut postgres, in_postgres)] {
                    assert!(
                        text.contains(expected),
                        "{name}: the triggers are not {expected:?}"
                    );
                    *text = text.replace(expected, "<triggers>");
                }
            }
        }
        for (file, shipped, read_as) in SHIPPED_DIFFERENCES {
            if *file == name {
                assert!(
                    postgres.contains(shipped),
                    "{name}: stale exception {shipped:?}"
                );
                postgres = postgres.replace(shipped, read_as);
            }
        }
        if sqlite != postgres {
            let at = sqlite
                .chars()
                .zip(postgres.chars())
                .take_while(|(a, b)| a == b)
                .count();
            let context = |s: &str| {
                s.chars()
                    .skip(at.saturating_sub(60))
                    .take(160)
                    .collect::<String>()
            };
            panic!(
                "{name}: the pair differs\n  sqlite:   ...{}\n  postgres: ...{}",
                context(&sqlite),
                context(&postgres)
            );
        }
    }
}

#[test]
fn normalizing_keeps_what_matters() {
    // A renamed column is a difference; a spelling of a type is not.
    let a = normalize("CREATE TABLE t ( -- sqlite\n  n INTEGER NOT NULL\n);", true);
    assert_eq!(
        a,
        normalize("CREATE TABLE t (\n  n BIGINT NOT NULL -- pg\n);", false)
    );
    assert_ne!(a, normalize("CREATE TABLE t (m BIGINT NOT NULL);", false));
}
