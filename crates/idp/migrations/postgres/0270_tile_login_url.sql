-- The application's own sign-in start page, which its portal tile links to instead of
-- IdP-initiated /saml/init/{id} (SPs prefer a sign-in they asked for). NULL: the tile
-- launches IdP-initiated, as every row written before this column does.
-- Keep in step with ../sqlite/0270_tile_login_url.sql.

ALTER TABLE applications ADD COLUMN tile_login_url TEXT;
