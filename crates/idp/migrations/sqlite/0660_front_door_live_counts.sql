-- The front door's counts by expiry (sqlite; keep in step with
-- ../postgres/0660_front_door_live_counts.sql). An anonymous SAML park or passwordless WebAuthn
-- start takes its place under three caps: its owner's rows, its IPv6 /48's and all anonymous
-- ones. 0655 kept the last in one row per table, but the /48's stayed a range count of up to
-- its cap's index entries under the lock every start shares, and every row counted until
-- deleted, so each start first deleted every expired row (50,000 after a flood ran out).
-- Now every cap is read from rows kept here, one per (scope, name, expires_at): scope 'owner'
-- (name: the row's owner; a parked request's owner '' is a record hung off a key, counted
-- nowhere), 'wide' (name: the row's new `wide` column, its /48's owner prefix, written by
-- the admission) and 'all' (name ''; a parked request owned by a network, `addr:`, a
-- ceremony without a user). A cap reads the live count, the sum over its rows with
-- expires_at after now: expired rows count for nothing whether deleted yet or not, so a
-- start deletes only a small batch of them and the periodic sweep the rest. Starts write
-- expiries on a 10-second grid, so a name has at most a lifetime's worth of rows here.
-- Triggers keep the rows in step in the writer's transaction, whoever writes (a start, a
-- take, expired rows deleted, a cascade, bulk or hand-written SQL), and delete a row when its
-- count reaches 0. Each count starts at the rows there are.
ALTER TABLE sso_parked_requests ADD COLUMN wide TEXT;
ALTER TABLE webauthn_challenges ADD COLUMN wide TEXT;
CREATE TABLE front_door_counts_parked (
    scope      TEXT NOT NULL,
    name       TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    live       INTEGER NOT NULL,
    PRIMARY KEY (scope, name, expires_at)
);
CREATE TABLE front_door_counts_ceremonies (
    scope      TEXT NOT NULL,
    name       TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    live       INTEGER NOT NULL,
    PRIMARY KEY (scope, name, expires_at)
);
-- The /48 of the rows already there (an IPv6 owner `addr:a:b:c:d::/64` -> `addr:a:b:c:`).
UPDATE sso_parked_requests SET wide = 'addr:' || substr(substr(owner, 6), 1,
    instr(substr(owner, 6), ':')
    + instr(substr(owner, 6 + instr(substr(owner, 6), ':')), ':')
    + instr(substr(owner, 6 + instr(substr(owner, 6), ':')
        + instr(substr(owner, 6 + instr(substr(owner, 6), ':')), ':')), ':'))
WHERE owner LIKE 'addr:%:%:%:%::/64';
UPDATE webauthn_challenges SET wide = 'addr:' || substr(substr(owner, 6), 1,
    instr(substr(owner, 6), ':')
    + instr(substr(owner, 6 + instr(substr(owner, 6), ':')), ':')
    + instr(substr(owner, 6 + instr(substr(owner, 6), ':')
        + instr(substr(owner, 6 + instr(substr(owner, 6), ':')), ':')), ':'))
WHERE owner LIKE 'addr:%:%:%:%::/64';
DROP TRIGGER sso_parked_requests_insert_count;
DROP TRIGGER sso_parked_requests_delete_count;
DROP TRIGGER sso_parked_requests_update_count;
DROP TRIGGER webauthn_challenges_insert_count;
DROP TRIGGER webauthn_challenges_delete_count;
DROP TRIGGER webauthn_challenges_update_count;
CREATE TRIGGER sso_parked_requests_insert_count AFTER INSERT ON sso_parked_requests
BEGIN
INSERT INTO front_door_counts_parked (scope, name, expires_at, live)
    SELECT 'owner', NEW.owner, NEW.expires_at, 1 WHERE NEW.owner <> ''
    ON CONFLICT (scope, name, expires_at) DO UPDATE SET live = live + 1;
INSERT INTO front_door_counts_parked (scope, name, expires_at, live)
    SELECT 'wide', NEW.wide, NEW.expires_at, 1 WHERE NEW.wide IS NOT NULL
    ON CONFLICT (scope, name, expires_at) DO UPDATE SET live = live + 1;
INSERT INTO front_door_counts_parked (scope, name, expires_at, live)
    SELECT 'all', '', NEW.expires_at, 1 WHERE substr(NEW.owner, 1, 5) = 'addr:'
    ON CONFLICT (scope, name, expires_at) DO UPDATE SET live = live + 1;
END;
CREATE TRIGGER sso_parked_requests_delete_count AFTER DELETE ON sso_parked_requests
BEGIN
UPDATE front_door_counts_parked SET live = live - 1
    WHERE scope = 'owner' AND name = OLD.owner AND expires_at = OLD.expires_at;
UPDATE front_door_counts_parked SET live = live - 1
    WHERE scope = 'wide' AND name = OLD.wide AND expires_at = OLD.expires_at;
UPDATE front_door_counts_parked SET live = live - 1
    WHERE scope = 'all' AND name = '' AND expires_at = OLD.expires_at
    AND substr(OLD.owner, 1, 5) = 'addr:';
DELETE FROM front_door_counts_parked WHERE live = 0 AND expires_at = OLD.expires_at
    AND scope IN ('owner', 'wide', 'all') AND name IN (OLD.owner, OLD.wide, '');
END;
CREATE TRIGGER sso_parked_requests_update_count
AFTER UPDATE OF owner, wide, expires_at ON sso_parked_requests
WHEN NEW.owner IS NOT OLD.owner OR NEW.wide IS NOT OLD.wide OR NEW.expires_at IS NOT OLD.expires_at
BEGIN
UPDATE front_door_counts_parked SET live = live - 1
    WHERE scope = 'owner' AND name = OLD.owner AND expires_at = OLD.expires_at;
UPDATE front_door_counts_parked SET live = live - 1
    WHERE scope = 'wide' AND name = OLD.wide AND expires_at = OLD.expires_at;
UPDATE front_door_counts_parked SET live = live - 1
    WHERE scope = 'all' AND name = '' AND expires_at = OLD.expires_at
    AND substr(OLD.owner, 1, 5) = 'addr:';
DELETE FROM front_door_counts_parked WHERE live = 0 AND expires_at = OLD.expires_at
    AND scope IN ('owner', 'wide', 'all') AND name IN (OLD.owner, OLD.wide, '');
INSERT INTO front_door_counts_parked (scope, name, expires_at, live)
    SELECT 'owner', NEW.owner, NEW.expires_at, 1 WHERE NEW.owner <> ''
    ON CONFLICT (scope, name, expires_at) DO UPDATE SET live = live + 1;
INSERT INTO front_door_counts_parked (scope, name, expires_at, live)
    SELECT 'wide', NEW.wide, NEW.expires_at, 1 WHERE NEW.wide IS NOT NULL
    ON CONFLICT (scope, name, expires_at) DO UPDATE SET live = live + 1;
INSERT INTO front_door_counts_parked (scope, name, expires_at, live)
    SELECT 'all', '', NEW.expires_at, 1 WHERE substr(NEW.owner, 1, 5) = 'addr:'
    ON CONFLICT (scope, name, expires_at) DO UPDATE SET live = live + 1;
END;
CREATE TRIGGER webauthn_challenges_insert_count AFTER INSERT ON webauthn_challenges
BEGIN
INSERT INTO front_door_counts_ceremonies (scope, name, expires_at, live)
    SELECT 'owner', NEW.owner, NEW.expires_at, 1 WHERE NEW.owner <> ''
    ON CONFLICT (scope, name, expires_at) DO UPDATE SET live = live + 1;
INSERT INTO front_door_counts_ceremonies (scope, name, expires_at, live)
    SELECT 'wide', NEW.wide, NEW.expires_at, 1 WHERE NEW.wide IS NOT NULL
    ON CONFLICT (scope, name, expires_at) DO UPDATE SET live = live + 1;
INSERT INTO front_door_counts_ceremonies (scope, name, expires_at, live)
    SELECT 'all', '', NEW.expires_at, 1 WHERE NEW.user_id IS NULL
    ON CONFLICT (scope, name, expires_at) DO UPDATE SET live = live + 1;
END;
CREATE TRIGGER webauthn_challenges_delete_count AFTER DELETE ON webauthn_challenges
BEGIN
UPDATE front_door_counts_ceremonies SET live = live - 1
    WHERE scope = 'owner' AND name = OLD.owner AND expires_at = OLD.expires_at;
UPDATE front_door_counts_ceremonies SET live = live - 1
    WHERE scope = 'wide' AND name = OLD.wide AND expires_at = OLD.expires_at;
UPDATE front_door_counts_ceremonies SET live = live - 1
    WHERE scope = 'all' AND name = '' AND expires_at = OLD.expires_at
    AND OLD.user_id IS NULL;
DELETE FROM front_door_counts_ceremonies WHERE live = 0 AND expires_at = OLD.expires_at
    AND scope IN ('owner', 'wide', 'all') AND name IN (OLD.owner, OLD.wide, '');
END;
CREATE TRIGGER webauthn_challenges_update_count
AFTER UPDATE OF owner, wide, user_id, expires_at ON webauthn_challenges
WHEN NEW.owner IS NOT OLD.owner OR NEW.wide IS NOT OLD.wide
    OR (NEW.user_id IS NULL) <> (OLD.user_id IS NULL) OR NEW.expires_at IS NOT OLD.expires_at
BEGIN
UPDATE front_door_counts_ceremonies SET live = live - 1
    WHERE scope = 'owner' AND name = OLD.owner AND expires_at = OLD.expires_at;
UPDATE front_door_counts_ceremonies SET live = live - 1
    WHERE scope = 'wide' AND name = OLD.wide AND expires_at = OLD.expires_at;
UPDATE front_door_counts_ceremonies SET live = live - 1
    WHERE scope = 'all' AND name = '' AND expires_at = OLD.expires_at
    AND OLD.user_id IS NULL;
DELETE FROM front_door_counts_ceremonies WHERE live = 0 AND expires_at = OLD.expires_at
    AND scope IN ('owner', 'wide', 'all') AND name IN (OLD.owner, OLD.wide, '');
INSERT INTO front_door_counts_ceremonies (scope, name, expires_at, live)
    SELECT 'owner', NEW.owner, NEW.expires_at, 1 WHERE NEW.owner <> ''
    ON CONFLICT (scope, name, expires_at) DO UPDATE SET live = live + 1;
INSERT INTO front_door_counts_ceremonies (scope, name, expires_at, live)
    SELECT 'wide', NEW.wide, NEW.expires_at, 1 WHERE NEW.wide IS NOT NULL
    ON CONFLICT (scope, name, expires_at) DO UPDATE SET live = live + 1;
INSERT INTO front_door_counts_ceremonies (scope, name, expires_at, live)
    SELECT 'all', '', NEW.expires_at, 1 WHERE NEW.user_id IS NULL
    ON CONFLICT (scope, name, expires_at) DO UPDATE SET live = live + 1;
END;
DROP TABLE front_door_counts;
INSERT INTO front_door_counts_parked (scope, name, expires_at, live)
    SELECT 'owner', owner, expires_at, COUNT(*) FROM sso_parked_requests
    WHERE owner <> '' GROUP BY owner, expires_at
    UNION ALL SELECT 'wide', wide, expires_at, COUNT(*) FROM sso_parked_requests
    WHERE wide IS NOT NULL GROUP BY wide, expires_at
    UNION ALL SELECT 'all', '', expires_at, COUNT(*) FROM sso_parked_requests
    WHERE substr(owner, 1, 5) = 'addr:' GROUP BY expires_at;
INSERT INTO front_door_counts_ceremonies (scope, name, expires_at, live)
    SELECT 'owner', owner, expires_at, COUNT(*) FROM webauthn_challenges
    WHERE owner <> '' GROUP BY owner, expires_at
    UNION ALL SELECT 'wide', wide, expires_at, COUNT(*) FROM webauthn_challenges
    WHERE wide IS NOT NULL GROUP BY wide, expires_at
    UNION ALL SELECT 'all', '', expires_at, COUNT(*) FROM webauthn_challenges
    WHERE user_id IS NULL GROUP BY expires_at;
