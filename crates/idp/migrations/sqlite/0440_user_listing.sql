-- User listing, search and keyset paging compare the case-folded keys byte-wise, which
-- is SQLite's default (BINARY) collation. Keep in step with ../postgres/0440_user_listing.sql,
-- whose indexes say COLLATE "C" for the same order. (The first two duplicate the UNIQUE
-- indexes here; they keep the pair identical, and the statement may use either.)
CREATE INDEX users_username_key_c ON users (username_key);
CREATE INDEX users_email_key_c ON users (email_key);
CREATE INDEX users_status_username_c ON users (status, username_key);
