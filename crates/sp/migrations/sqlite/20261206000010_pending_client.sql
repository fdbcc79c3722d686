-- Logins started and not finished, counted per client network too: one client alone must not
-- fill the table and turn everyone's logins away. Rows from before this (and starts from an
-- unknown client) have none and count against the total only.
ALTER TABLE sp_pending_requests ADD COLUMN client TEXT NOT NULL DEFAULT '';
CREATE INDEX sp_pending_requests_client ON sp_pending_requests (client);
