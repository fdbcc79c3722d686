-- The applications' version (sqlite; keep in step with ../postgres/0570_apps_version.sql).
-- Each node keeps a copy of the applications the sign-in path reads and checks it against this
-- number, which the statement reading the session returns: any insert, update or delete of an
-- application moves it, by trigger, so no write path (console, API, CLI, import, metadata
-- refresh, another node, hand-written SQL) can forget to. The triggers are spelled per backend
-- (the pair test holds each to its expected text).
CREATE TABLE apps_version (
    id      INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO apps_version (id, version) VALUES (1, 0);
CREATE TRIGGER applications_insert_version AFTER INSERT ON applications
BEGIN UPDATE apps_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER applications_update_version AFTER UPDATE ON applications
BEGIN UPDATE apps_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER applications_delete_version AFTER DELETE ON applications
BEGIN UPDATE apps_version SET version = version + 1 WHERE id = 1; END;
