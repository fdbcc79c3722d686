//! The SQLite and PostgreSQL migrations are kept as pairs written by hand; this holds each pair
//! to saying the same thing. Comments may differ (they name their backend) and so may the
//! clauses only one backend has; everything else (tables, columns, constraints and their
//! names, indexes, order) must match token for token.

use latchkey_testkit::migrations::{names, read, tokens};

const HERE: &str = env!("CARGO_MANIFEST_DIR");

/// What only SQLite says, and what it reads as on PostgreSQL.
const SQLITE_ONLY: &[(&str, &str)] = &[
    // One b-tree keyed by the primary key; a PostgreSQL table is a heap beside its key's
    // index whatever it is told.
    (") WITHOUT ROWID;", ");"),
];

#[test]
fn every_migration_exists_for_both_backends() {
    let sqlite = names(HERE, "sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, names(HERE, "postgres"));
}

#[test]
fn each_pair_says_the_same_but_for_what_only_sqlite_has() {
    for name in names(HERE, "sqlite") {
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
