-- applications.slug (postgres): a short unique name for launch links (/saml/init/{slug},
-- beside the internal ID). New applications get one derived from their name; existing ones
-- get "app-" and the first 12 hex digits of their ID, unique in practice (48 random bits),
-- until an admin sets a better one with `latchkey app set APP --slug NAME`.
-- Keep in step with ../sqlite/0360_app_slug.sql.

ALTER TABLE applications ADD COLUMN slug TEXT NOT NULL DEFAULT '';
UPDATE applications SET slug = 'app-' || substr(replace(id, '-', ''), 1, 12);
CREATE UNIQUE INDEX applications_slug ON applications (slug);
