-- Each login started is bound to the browser that started it (no login CSRF, `binding.rs`):
-- the SHA-256, in hex, of the random value of that browser's login cookie. The ACS honours the
-- request only from a browser presenting that value. Rows from before this have none ('') and
-- are refused (BROWSER_MISMATCH): a login in flight across the upgrade is started again, and
-- a login an attacker started before it cannot be posted from someone else's browser.
ALTER TABLE sp_pending_requests ADD COLUMN browser TEXT NOT NULL DEFAULT '';
