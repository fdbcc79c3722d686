-- The pair of the SQLite migration that drops the audit log's key, and with it the second
-- b-tree every login's audit row was written to. A PostgreSQL table is a heap beside its
-- indexes whatever it is told, and the log here is listed by its key, so the key stays and
-- there is nothing to change: rebuilding the table would only copy the whole log at the
-- upgrade. (The migration exists so that both backends count the same versions.)
SELECT 1;
