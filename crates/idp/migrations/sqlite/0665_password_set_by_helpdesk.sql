-- Whether the user's password was set for them by an operator who could not grant console
-- roles (sqlite; keep in step with ../postgres/0665_password_set_by_helpdesk.sql). Helpdesk may
-- set the password of a user who holds no role; if that user later gains one, whoever set it
-- must not become that role through it, so gaining a role clears such a password
-- (`console::roles::void_credentials_of`). Set by the console's password form for a helpdesk
-- operator; cleared by every other way a password is set (the user's own change, an invitation
-- or reset link, an admin, the API, the CLI). Existing passwords count as not set by helpdesk:
-- nothing recorded who set them.
ALTER TABLE users ADD COLUMN password_set_by_helpdesk INTEGER NOT NULL DEFAULT 0;
