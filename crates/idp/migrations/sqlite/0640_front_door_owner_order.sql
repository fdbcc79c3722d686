-- The owner indexes of the anonymous front-door rows in byte order (sqlite; keep in step with
-- ../postgres/0640_front_door_owner_order.sql). A parked request or a WebAuthn ceremony takes its place
-- under caps counted per owner, per IPv6 /48 (a range of owners in byte order) and in all, in one
-- statement under one lock every start shares. PostgreSQL compares the range COLLATE "C", which
-- an index in the database's default collation cannot serve: each start read every live row.
-- The owner indexes are now in byte order (SQLite's default collation already is; there the
-- indexes are only renamed), and every count of owners says COLLATE "C" on PostgreSQL.
DROP INDEX sso_parked_requests_owner;
CREATE INDEX sso_parked_requests_owner_c ON sso_parked_requests (owner);
DROP INDEX webauthn_challenges_owner;
CREATE INDEX webauthn_challenges_owner_c ON webauthn_challenges (owner);
-- The anonymous ceremonies' total (user_id IS NULL) is counted off this index, not the table;
-- a deleted user's ceremonies (ON DELETE CASCADE) are found by it too.
CREATE INDEX webauthn_challenges_user ON webauthn_challenges (user_id);
