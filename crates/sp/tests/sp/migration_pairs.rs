//! The SQLite and PostgreSQL migrations are kept as pairs written by hand; this holds each pair
//! to saying the same thing. Comments may differ (they name their backend) and so may the
//! clauses only one backend has; everything else (tables, columns, constraints and their
//! names, indexes, order) must match token for token.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// What only SQLite says, and what it reads as on PostgreSQL.
const SQLITE_ONLY: &[(&str, &str)] = &[
    // One b-tree keyed by the primary key; a PostgreSQL table is a heap beside its key's
    // index whatever it is told.
    (") WITHOUT ROWID;", ");"),
];

fn dir(backend: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend)
}

fn names(backend: &str) -> BTreeSet<String> {
    std::fs::read_dir(dir(backend))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// The statements without comments, one space between tokens.
fn normalize(sql: &str) -> String {
    let code: Vec<&str> = sql
        .lines()
        .map(|line| line.split_once("--").map_or(line, |(code, _)| code))
        .collect();
    code.join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn every_migration_exists_for_both_backends() {
    let sqlite = names("sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, names("postgres"));
}

#[test]
fn each_pair_says_the_same_but_for_what_only_sqlite_has() {
    for name in names("sqlite") {
        let read = |backend| std::fs::read_to_string(dir(backend).join(&name)).unwrap();
        let mut sqlite = normalize(&read("sqlite"));
        for (only, read_as) in SQLITE_ONLY {
            sqlite = sqlite.replace(only, read_as);
        }
        assert_eq!(
            sqlite,
            normalize(&read("postgres")),
            "{name}: the pair differs"
        );
    }
}

#[test]
fn normalizing_keeps_what_matters() {
    // A renamed column is a difference; a comment or a line break is not.
    let a = normalize("CREATE TABLE t ( -- sqlite\n  n BIGINT NOT NULL\n);");
    assert_eq!(
        a,
        normalize("CREATE TABLE t (\n  n BIGINT NOT NULL -- pg\n);")
    );
    assert_ne!(a, normalize("CREATE TABLE t (m BIGINT NOT NULL);"));
}
