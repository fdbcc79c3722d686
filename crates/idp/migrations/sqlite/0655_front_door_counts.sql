-- The anonymous front-door rows' totals kept in step (sqlite; keep in step with
-- ../postgres/0655_front_door_counts.sql). An anonymous SAML park or passwordless WebAuthn start
-- takes its place under three caps, the last over every anonymous row: that total was a count
-- of the whole range, paid by every start under the one lock they all share. It is now one row
-- here, read by primary key, which triggers move by each row inserted, deleted or changed,
-- whoever writes (a park, a take, the expired rows each start deletes first, a user's deletion
-- cascading out of webauthn_challenges, bulk or hand-written SQL), in the writer's own
-- transaction. Anonymous means what the admission counts: a parked request owned by a network
-- (`addr:`), a ceremony without a user. Rows count until deleted, expired or not; every start
-- deletes the expired ones first, so at the check the total is the live one. Each total starts
-- at the rows there are.
CREATE TABLE front_door_counts (
    counted TEXT PRIMARY KEY NOT NULL,
    live    INTEGER NOT NULL
);
CREATE TRIGGER sso_parked_requests_insert_count AFTER INSERT ON sso_parked_requests
WHEN substr(NEW.owner, 1, 5) = 'addr:'
BEGIN UPDATE front_door_counts SET live = live + 1 WHERE counted = 'sso_parked_requests'; END;
CREATE TRIGGER sso_parked_requests_delete_count AFTER DELETE ON sso_parked_requests
WHEN substr(OLD.owner, 1, 5) = 'addr:'
BEGIN UPDATE front_door_counts SET live = live - 1 WHERE counted = 'sso_parked_requests'; END;
CREATE TRIGGER sso_parked_requests_update_count AFTER UPDATE OF owner ON sso_parked_requests
WHEN (substr(NEW.owner, 1, 5) IS 'addr:') <> (substr(OLD.owner, 1, 5) IS 'addr:')
BEGIN UPDATE front_door_counts
    SET live = live + (substr(NEW.owner, 1, 5) IS 'addr:') - (substr(OLD.owner, 1, 5) IS 'addr:')
    WHERE counted = 'sso_parked_requests'; END;
CREATE TRIGGER webauthn_challenges_insert_count AFTER INSERT ON webauthn_challenges
WHEN NEW.user_id IS NULL
BEGIN UPDATE front_door_counts SET live = live + 1 WHERE counted = 'webauthn_challenges'; END;
CREATE TRIGGER webauthn_challenges_delete_count AFTER DELETE ON webauthn_challenges
WHEN OLD.user_id IS NULL
BEGIN UPDATE front_door_counts SET live = live - 1 WHERE counted = 'webauthn_challenges'; END;
CREATE TRIGGER webauthn_challenges_update_count AFTER UPDATE OF user_id ON webauthn_challenges
WHEN (NEW.user_id IS NULL) <> (OLD.user_id IS NULL)
BEGIN UPDATE front_door_counts
    SET live = live + (NEW.user_id IS NULL) - (OLD.user_id IS NULL)
    WHERE counted = 'webauthn_challenges'; END;
INSERT INTO front_door_counts (counted, live) VALUES
    ('sso_parked_requests', (SELECT COUNT(*) FROM sso_parked_requests WHERE substr(owner, 1, 5) = 'addr:')),
    ('webauthn_challenges', (SELECT COUNT(*) FROM webauthn_challenges WHERE user_id IS NULL));
