-- The applications' version (postgres; keep in step with ../sqlite/0570_apps_version.sql).
-- Each node keeps a copy of the applications the sign-in path reads and checks it against this
-- number, which the statement reading the session returns: any insert, update or delete of an
-- application moves it, by trigger, so no write path (console, API, CLI, import, metadata
-- refresh, another node, hand-written SQL) can forget to. The triggers are spelled per backend
-- (the pair test holds each to its expected text).
CREATE TABLE apps_version (
    id      BIGINT PRIMARY KEY NOT NULL CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO apps_version (id, version) VALUES (1, 0);
CREATE FUNCTION applications_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN UPDATE apps_version SET version = version + 1 WHERE id = 1; RETURN NULL; END $$;
CREATE TRIGGER applications_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON applications
FOR EACH STATEMENT EXECUTE FUNCTION applications_version();
