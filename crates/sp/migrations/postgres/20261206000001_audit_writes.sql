-- Every login writes one audit row, so each index on sp_audit is one more page written per
-- login. Nothing reads the audit log by account (the log is listed by time: sp_audit_at), and
-- account IDs are random, so this index cost a page in a random place of the file each time.
DROP INDEX sp_audit_account;
