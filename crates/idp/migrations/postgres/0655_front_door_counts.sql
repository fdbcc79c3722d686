-- The anonymous front-door rows' totals kept in step (postgres; keep in step with
-- ../sqlite/0655_front_door_counts.sql). An anonymous SAML park or passwordless WebAuthn start
-- takes its place under three caps, the last over every anonymous row: that total was an
-- index-only count of the whole range (8-11 ms at 50,000 rows, 80 ms under churn), paid by
-- every start under the one lock they all share, so a flood that filled the table held the
-- whole front door to ~90 starts/s. It is now one row here, read by primary key, which
-- statement triggers move by what each statement inserted, deleted or changed, whoever writes
-- (a park, a take, the expired rows each start deletes first, a user's deletion cascading out
-- of webauthn_challenges, bulk or hand-written SQL), in the writer's own transaction.
-- Anonymous means what the admission counts: a parked request owned by a network (`addr:`, the
-- byte range ['addr:', 'addr;')), a ceremony without a user. Rows count until deleted, expired
-- or not; every start deletes the expired ones first, under the lock, so at the check the total
-- is the live one. Each total starts at the rows there are, counted after the triggers exist
-- (creating them locks the tables against writers until this migration commits).
CREATE TABLE front_door_counts (
    counted TEXT PRIMARY KEY NOT NULL,
    live    BIGINT NOT NULL
);
CREATE FUNCTION sso_parked_requests_count() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE change BIGINT := 0;
BEGIN
IF TG_OP = 'TRUNCATE' THEN
    UPDATE front_door_counts SET live = 0 WHERE counted = 'sso_parked_requests'; RETURN NULL;
END IF;
IF TG_OP IN ('INSERT', 'UPDATE') THEN
    change := change + (SELECT COUNT(*) FROM came WHERE substr(owner, 1, 5) = 'addr:');
END IF;
IF TG_OP IN ('DELETE', 'UPDATE') THEN
    change := change - (SELECT COUNT(*) FROM gone WHERE substr(owner, 1, 5) = 'addr:');
END IF;
IF change <> 0 THEN
    UPDATE front_door_counts SET live = live + change WHERE counted = 'sso_parked_requests';
END IF;
RETURN NULL; END $$;
CREATE TRIGGER sso_parked_requests_insert_count AFTER INSERT ON sso_parked_requests
REFERENCING NEW TABLE AS came FOR EACH STATEMENT EXECUTE FUNCTION sso_parked_requests_count();
CREATE TRIGGER sso_parked_requests_update_count AFTER UPDATE ON sso_parked_requests
REFERENCING OLD TABLE AS gone NEW TABLE AS came FOR EACH STATEMENT EXECUTE FUNCTION sso_parked_requests_count();
CREATE TRIGGER sso_parked_requests_delete_count AFTER DELETE ON sso_parked_requests
REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION sso_parked_requests_count();
CREATE TRIGGER sso_parked_requests_truncate_count AFTER TRUNCATE ON sso_parked_requests
FOR EACH STATEMENT EXECUTE FUNCTION sso_parked_requests_count();
CREATE FUNCTION webauthn_challenges_count() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE change BIGINT := 0;
BEGIN
IF TG_OP = 'TRUNCATE' THEN
    UPDATE front_door_counts SET live = 0 WHERE counted = 'webauthn_challenges'; RETURN NULL;
END IF;
IF TG_OP IN ('INSERT', 'UPDATE') THEN
    change := change + (SELECT COUNT(*) FROM came WHERE user_id IS NULL);
END IF;
IF TG_OP IN ('DELETE', 'UPDATE') THEN
    change := change - (SELECT COUNT(*) FROM gone WHERE user_id IS NULL);
END IF;
IF change <> 0 THEN
    UPDATE front_door_counts SET live = live + change WHERE counted = 'webauthn_challenges';
END IF;
RETURN NULL; END $$;
CREATE TRIGGER webauthn_challenges_insert_count AFTER INSERT ON webauthn_challenges
REFERENCING NEW TABLE AS came FOR EACH STATEMENT EXECUTE FUNCTION webauthn_challenges_count();
CREATE TRIGGER webauthn_challenges_update_count AFTER UPDATE ON webauthn_challenges
REFERENCING OLD TABLE AS gone NEW TABLE AS came FOR EACH STATEMENT EXECUTE FUNCTION webauthn_challenges_count();
CREATE TRIGGER webauthn_challenges_delete_count AFTER DELETE ON webauthn_challenges
REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION webauthn_challenges_count();
CREATE TRIGGER webauthn_challenges_truncate_count AFTER TRUNCATE ON webauthn_challenges
FOR EACH STATEMENT EXECUTE FUNCTION webauthn_challenges_count();
INSERT INTO front_door_counts (counted, live) VALUES
    ('sso_parked_requests', (SELECT COUNT(*) FROM sso_parked_requests WHERE substr(owner, 1, 5) = 'addr:')),
    ('webauthn_challenges', (SELECT COUNT(*) FROM webauthn_challenges WHERE user_id IS NULL));
