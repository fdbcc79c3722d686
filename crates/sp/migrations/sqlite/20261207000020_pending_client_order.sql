-- The PostgreSQL pair puts the pending logins' client index in byte order (COLLATE "C"), which
-- a /48's range of clients needs there. SQLite's default collation already is byte-wise, and
-- its client index serves the range as it is: nothing to do (sqlite).
SELECT 1;
