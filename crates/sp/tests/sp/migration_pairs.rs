//! The SQLite and PostgreSQL migrations are kept as pairs written by hand; this holds each pair
//! to saying the same thing. Comments may differ (they name their backend) and so may the
//! clauses only one backend has; everything else (tables, columns, constraints and their
//! names, indexes, order) must match token for token, but for the few changes that only
//! SQLite's storage needs, whose PostgreSQL pair does nothing, and the few that only
//! PostgreSQL's needs, whose SQLite pair does nothing.

use latchkey_testkit::migrations::{names, read, tokens};

const HERE: &str = env!("CARGO_MANIFEST_DIR");

/// What only SQLite says, and what it reads as on PostgreSQL.
const SQLITE_ONLY: &[(&str, &str)] = &[
    // One b-tree keyed by the primary key; a PostgreSQL table is a heap beside its key's
    // index whatever it is told.
    (") WITHOUT ROWID;", ");"),
];

/// Migrations that change something only SQLite has; their PostgreSQL pair is a no-op.
const SQLITE_ONLY_MIGRATIONS: &[&str] = &[
    // The audit log's key was a second b-tree written by every login; PostgreSQL keeps it (a
    // heap has its key in an index either way, and lists the log by it).
    "20261206000040_audit_unkeyed.sql",
];

/// Migrations that add something only PostgreSQL needs; their SQLite pair is a no-op.
const POSTGRES_ONLY_MIGRATIONS: &[&str] = &[
    // The audit events with random (version 4) IDs, by time, for the retention purge, which
    // walks the PostgreSQL log by its time-ordered key; SQLite walks its log by `seq`.
    "20261206000050_audit_unordered.sql",
    // The pending logins' client index in byte order (COLLATE "C"), for a /48's range of
    // clients; SQLite's default collation already is byte-wise.
    "20261207000020_pending_client_order.sql",
];

/// What a migration that changes nothing says.
const NO_OP: &str = "SELECT 1;";

#[test]
fn every_migration_exists_for_both_backends() {
    let sqlite = names(HERE, "sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, names(HERE, "postgres"));
}

#[test]
fn each_pair_says_the_same_but_for_what_only_sqlite_has() {
    for name in names(HERE, "sqlite") {
        if SQLITE_ONLY_MIGRATIONS.contains(&name.as_str()) {
            assert_eq!(
                tokens(&read(HERE, "postgres", &name)),
                NO_OP,
                "{name}: the PostgreSQL pair of a SQLite-only change must change nothing"
            );
            continue;
        }
        if POSTGRES_ONLY_MIGRATIONS.contains(&name.as_str()) {
            assert_eq!(
                tokens(&read(HERE, "sqlite", &name)),
                NO_OP,
                "{name}: the SQLite pair of a PostgreSQL-only change must change nothing"
            );
            continue;
        }
        let mut sqlite = tokens(&read(HERE, "sqlite", &name));
        for (only, read_as) in SQLITE_ONLY {
            sqlite = sqlite.replace(only, read_as);
        }
        assert_eq!(
            sqlite,
            tokens(&read(HERE, "postgres", &name)),
            "{name}: the pair differs"
        );
    }
}
