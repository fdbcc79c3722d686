-- Who a parked request counts against (sqlite; keep in step with ../postgres/0560_parked_owner.sql).
-- Anyone can have an AuthnRequest parked, so parking takes a place under a cap per owner (the
-- client's network, or the signed-in user) and one in all; rows parked before this have none.
ALTER TABLE sso_parked_requests ADD COLUMN owner TEXT NOT NULL DEFAULT '';
CREATE INDEX sso_parked_requests_owner ON sso_parked_requests (owner);
