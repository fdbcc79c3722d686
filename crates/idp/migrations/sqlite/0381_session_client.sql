-- Where a session was started (sqlite): the client address and the browser's User-Agent, as
-- the sign-in saw them, so its owner can tell their sessions apart on /account and end the
-- one they do not recognise. Both are shown to the session's user only; the User-Agent is
-- cut to 256 characters. Sessions from before this migration have neither. Owned by
-- src/session/. Keep in step with ../postgres/0381_session_client.sql.

ALTER TABLE web_sessions ADD COLUMN client_address TEXT;
ALTER TABLE web_sessions ADD COLUMN user_agent TEXT;
