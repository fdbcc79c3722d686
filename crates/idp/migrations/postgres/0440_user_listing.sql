-- User listing, search and keyset paging compare the case-folded keys byte-wise
-- (COLLATE "C"): the database's default collation may be a locale one, under which a
-- prefix is not a key range and the order differs from SQLite's. These indexes serve the
-- statement as written in directory/users.rs (`listing`).
CREATE INDEX users_username_key_c ON users (username_key COLLATE "C");
CREATE INDEX users_email_key_c ON users (email_key COLLATE "C");
CREATE INDEX users_status_username_c ON users (status, username_key COLLATE "C");
