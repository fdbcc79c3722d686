-- applications.name_id_formats (postgres): the NameID formats a request may ask for, as a
-- JSON array of format URNs. Empty (every existing application): any format the IdP can
-- make, as before. Set with `latchkey app set APP --name-id-formats transient,persistent`.
-- Keep in step with ../sqlite/0370_app_name_id_formats.sql.

ALTER TABLE applications ADD COLUMN name_id_formats TEXT NOT NULL DEFAULT '[]';
