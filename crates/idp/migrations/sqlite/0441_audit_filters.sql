-- Every audit filter is served by an index, in the listing's order (newest first, by
-- seq): the statement in audit.rs (`Audit::list`) names only the filters that are set, so
-- each is a plain predicate on one of these. Keep in step with ../postgres/0441_audit_filters.sql.
-- (SQLite appends the rowid, which is seq, to every index anyway; naming it keeps the pair
-- identical.)
DROP INDEX audit_events_target;
CREATE INDEX audit_events_target_seq ON audit_events (target_id, seq);
CREATE INDEX audit_events_actor_seq ON audit_events (actor, seq);
CREATE INDEX audit_events_action_seq ON audit_events (action, seq);
