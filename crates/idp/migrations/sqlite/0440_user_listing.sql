-- User listing by status in username order (GET /api/v1/users?status=...).
-- The username and e-mail prefix searches and the username order itself are served by the
-- UNIQUE indexes on username_key and email_key: SQLite compares text byte-wise (BINARY),
-- which is what the listing statement relies on.
CREATE INDEX users_status_username ON users (status, username_key);
