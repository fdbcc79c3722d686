//! Migration pairs (`migrations/sqlite`, `migrations/postgres`) are written by hand; each
//! crate's pair test holds them to saying the same thing with these two readings, and keeps
//! its own list of the spellings its backends may differ by.

use std::collections::BTreeSet;
use std::path::Path;

/// The file names in a crate's `migrations/<backend>` directory.
pub fn names(crate_dir: &str, backend: &str) -> BTreeSet<String> {
    std::fs::read_dir(Path::new(crate_dir).join("migrations").join(backend))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// A migration file's text.
pub fn read(crate_dir: &str, backend: &str, name: &str) -> String {
    std::fs::read_to_string(
        Path::new(crate_dir)
            .join("migrations")
            .join(backend)
            .join(name),
    )
    .unwrap()
}

/// The statements without comments, one space between tokens: what a pair must agree on
/// once each backend's spellings are accounted for.
pub fn tokens(sql: &str) -> String {
    let code: Vec<&str> = sql
        .lines()
        .map(|line| line.split_once("--").map_or(line, |(code, _)| code))
        .collect();
    code.join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::tokens;

    #[test]
    fn tokens_keep_what_matters() {
        // A renamed column is a difference; a comment or a line break is not.
        let a = tokens("CREATE TABLE t ( -- sqlite\n  n BIGINT NOT NULL\n);");
        assert_eq!(a, tokens("CREATE TABLE t (\n  n BIGINT NOT NULL -- pg\n);"));
        assert_ne!(a, tokens("CREATE TABLE t (m BIGINT NOT NULL);"));
    }
}
