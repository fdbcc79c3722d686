-- The user's e-mail address on each SCIM outbox row (postgres; keep in step with
-- ../sqlite/0670_scim_outbox_email.sql). A deleted user's removal is delivered after the user row
-- is gone; an application whose release sends `userName` from `email`, and which had the
-- user's account before it was connected (so no remote ID was stored), holds that account under
-- the address, which only the row can still give. Rows written before hold none.
ALTER TABLE scim_outbox ADD COLUMN user_email TEXT;
