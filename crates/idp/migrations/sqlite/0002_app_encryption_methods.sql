-- The md:EncryptionMethod algorithm URIs an application advertised (a JSON array of
-- strings, in its order). Rows written before this column read as "said nothing".
-- Keep in step with ../postgres/0002_app_encryption_methods.sql.

ALTER TABLE applications ADD COLUMN encryption_methods TEXT NOT NULL DEFAULT '[]';
