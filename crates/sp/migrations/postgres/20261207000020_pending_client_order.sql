-- Logins started from one IPv6 /48 are counted as one range of clients in byte order (postgres;
-- the SQLite pair is a no-op: its default collation already is byte-wise and its client index
-- serves the range). The range is compared COLLATE "C", which an index in the database's
-- default collation cannot serve: each login started read every pending row under the lock.
-- The client index is now in byte order, and every count of clients says COLLATE "C".
DROP INDEX sp_pending_requests_client;
CREATE INDEX sp_pending_requests_client_c ON sp_pending_requests (client COLLATE "C");
