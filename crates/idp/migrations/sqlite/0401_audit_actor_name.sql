-- The audit actor's name (sqlite): the person or token behind a change, as they were called when
-- they made it (a username, an API token's name, the OS user and host at the CLI), so the log
-- reads as names and still does after a rename or deletion. The actor column keeps the stable
-- label (user:<id>, api:<token id>) that filters match on. Owned by src/audit.rs.
-- Keep in step with ../postgres/0401_audit_actor_name.sql.

ALTER TABLE audit_events ADD COLUMN actor_name TEXT;
