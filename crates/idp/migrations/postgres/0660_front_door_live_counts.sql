-- The front door's counts by expiry (postgres; keep in step with
-- ../sqlite/0660_front_door_live_counts.sql). An anonymous SAML park or passwordless WebAuthn
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
    live       BIGINT NOT NULL,
    PRIMARY KEY (scope, name, expires_at)
);
CREATE TABLE front_door_counts_ceremonies (
    scope      TEXT NOT NULL,
    name       TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    live       BIGINT NOT NULL,
    PRIMARY KEY (scope, name, expires_at)
);
-- The /48 of the rows already there (an IPv6 owner `addr:a:b:c:d::/64` -> `addr:a:b:c:`).
UPDATE sso_parked_requests SET wide = substring(owner from '^addr:[^:]*:[^:]*:[^:]*:')
WHERE owner LIKE 'addr:%:%:%:%::/64';
UPDATE webauthn_challenges SET wide = substring(owner from '^addr:[^:]*:[^:]*:[^:]*:')
WHERE owner LIKE 'addr:%:%:%:%::/64';
-- 0655's statement triggers stay (insert, update, delete, truncate, with their transition
-- tables); the functions they call now move these rows, in key order (no deadlock between
-- writers), and delete those that reach 0.
CREATE FUNCTION front_door_counts_parked_move(scopes TEXT[], names TEXT[], expiries TEXT[], moves BIGINT[])
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
INSERT INTO front_door_counts_parked AS c (scope, name, expires_at, live)
    SELECT m.scope, m.name, m.expires_at, SUM(m.move)
    FROM unnest(scopes, names, expiries, moves) AS m (scope, name, expires_at, move)
    GROUP BY m.scope, m.name, m.expires_at HAVING SUM(m.move) <> 0
    ORDER BY m.scope, m.name, m.expires_at
    ON CONFLICT (scope, name, expires_at) DO UPDATE SET live = c.live + excluded.live;
DELETE FROM front_door_counts_parked AS c
    USING unnest(scopes, names, expiries) AS m (scope, name, expires_at)
    WHERE c.scope = m.scope AND c.name = m.name AND c.expires_at = m.expires_at AND c.live = 0;
END $$;
CREATE FUNCTION front_door_counts_ceremonies_move(scopes TEXT[], names TEXT[], expiries BIGINT[], moves BIGINT[])
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
INSERT INTO front_door_counts_ceremonies AS c (scope, name, expires_at, live)
    SELECT m.scope, m.name, m.expires_at, SUM(m.move)
    FROM unnest(scopes, names, expiries, moves) AS m (scope, name, expires_at, move)
    GROUP BY m.scope, m.name, m.expires_at HAVING SUM(m.move) <> 0
    ORDER BY m.scope, m.name, m.expires_at
    ON CONFLICT (scope, name, expires_at) DO UPDATE SET live = c.live + excluded.live;
DELETE FROM front_door_counts_ceremonies AS c
    USING unnest(scopes, names, expiries) AS m (scope, name, expires_at)
    WHERE c.scope = m.scope AND c.name = m.name AND c.expires_at = m.expires_at AND c.live = 0;
END $$;
CREATE OR REPLACE FUNCTION sso_parked_requests_count() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE scopes TEXT[]; names TEXT[]; expiries TEXT[]; moves BIGINT[];
BEGIN
IF TG_OP = 'TRUNCATE' THEN DELETE FROM front_door_counts_parked; RETURN NULL; END IF;
IF TG_OP IN ('DELETE', 'UPDATE') THEN
    SELECT array_agg(m.scope), array_agg(m.name), array_agg(m.expires_at), array_agg(-1::BIGINT)
    INTO scopes, names, expiries, moves FROM (
        SELECT 'owner' AS scope, owner AS name, expires_at FROM gone WHERE owner <> ''
        UNION ALL SELECT 'wide', wide, expires_at FROM gone WHERE wide IS NOT NULL
        UNION ALL SELECT 'all', '', expires_at FROM gone WHERE substr(owner, 1, 5) = 'addr:') AS m;
    PERFORM front_door_counts_parked_move(scopes, names, expiries, moves);
END IF;
IF TG_OP IN ('INSERT', 'UPDATE') THEN
    SELECT array_agg(m.scope), array_agg(m.name), array_agg(m.expires_at), array_agg(1::BIGINT)
    INTO scopes, names, expiries, moves FROM (
        SELECT 'owner' AS scope, owner AS name, expires_at FROM came WHERE owner <> ''
        UNION ALL SELECT 'wide', wide, expires_at FROM came WHERE wide IS NOT NULL
        UNION ALL SELECT 'all', '', expires_at FROM came WHERE substr(owner, 1, 5) = 'addr:') AS m;
    PERFORM front_door_counts_parked_move(scopes, names, expiries, moves);
END IF;
RETURN NULL; END $$;
CREATE OR REPLACE FUNCTION webauthn_challenges_count() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE scopes TEXT[]; names TEXT[]; expiries BIGINT[]; moves BIGINT[];
BEGIN
IF TG_OP = 'TRUNCATE' THEN DELETE FROM front_door_counts_ceremonies; RETURN NULL; END IF;
IF TG_OP IN ('DELETE', 'UPDATE') THEN
    SELECT array_agg(m.scope), array_agg(m.name), array_agg(m.expires_at), array_agg(-1::BIGINT)
    INTO scopes, names, expiries, moves FROM (
        SELECT 'owner' AS scope, owner AS name, expires_at FROM gone WHERE owner <> ''
        UNION ALL SELECT 'wide', wide, expires_at FROM gone WHERE wide IS NOT NULL
        UNION ALL SELECT 'all', '', expires_at FROM gone WHERE user_id IS NULL) AS m;
    PERFORM front_door_counts_ceremonies_move(scopes, names, expiries, moves);
END IF;
IF TG_OP IN ('INSERT', 'UPDATE') THEN
    SELECT array_agg(m.scope), array_agg(m.name), array_agg(m.expires_at), array_agg(1::BIGINT)
    INTO scopes, names, expiries, moves FROM (
        SELECT 'owner' AS scope, owner AS name, expires_at FROM came WHERE owner <> ''
        UNION ALL SELECT 'wide', wide, expires_at FROM came WHERE wide IS NOT NULL
        UNION ALL SELECT 'all', '', expires_at FROM came WHERE user_id IS NULL) AS m;
    PERFORM front_door_counts_ceremonies_move(scopes, names, expiries, moves);
END IF;
RETURN NULL; END $$;
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
