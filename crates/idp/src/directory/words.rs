//! The words a user is found by: the parts of their names, username and e-mail address,
//! case-folded, one row each in `user_words` (migration 0590) with the user's case-folded
//! username (0610), which a search pages by.
//!
//! An admin looks people up by surname ("smith" for Jane Smith, username `jsmith`). A
//! substring search would read every user (SQLite has no trigram index); a prefix of a word
//! is a range of one B-tree on both backends. Words are split here, by Unicode's notion of
//! letters and digits, because neither backend's SQL can: so every writer of a user's names
//! writes their words in the same transaction ([`write`], [`insert_many`]), and existing
//! users got theirs once, at the first start after the migration ([`backfill`]).

use std::collections::BTreeSet;

use sqlx::{AnyConnection, AnyPool};

use super::users::UserFields;
use crate::error::Result;
use crate::ids::UserId;
use crate::store;

/// Words kept per user: enough for any real name, username and address, and a bound on the
/// rows one user can add (a display name is free text).
const MAX_WORDS: usize = 16;

/// Characters kept of a word; a longer word is still found by its first 40.
const MAX_CHARS: usize = 40;

/// Terms of a search that must each begin a word: more are ignored.
pub(crate) const MAX_TERMS: usize = 4;

/// Rows per multi-row insert (three bound values each, under the 999 of older SQLite).
const ROWS_PER_STATEMENT: usize = 300;

/// `text`'s words: runs of letters and digits, case-folded, cut to [`MAX_CHARS`].
pub(crate) fn split(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| store::fold(&w.chars().take(MAX_CHARS).collect::<String>()))
}

/// The words `fields` is found by: given, family and display name first, then the username's
/// and the address's local part's pieces (`j.smith`, `jane_smith@...`).
pub(crate) fn of(fields: &UserFields) -> BTreeSet<String> {
    let local = fields.email.split('@').next().unwrap_or_default();
    let sources = [
        fields.given_name.as_deref().unwrap_or_default(),
        fields.family_name.as_deref().unwrap_or_default(),
        fields.display_name.as_deref().unwrap_or_default(),
        &fields.username,
        local,
    ];
    let mut words = BTreeSet::new();
    for word in sources.into_iter().flat_map(split) {
        if words.len() == MAX_WORDS {
            break;
        }
        words.insert(word);
    }
    words
}

/// A search's terms, each of which must begin one of a user's words (a search of one word
/// has one term).
pub(crate) fn terms(search: &str) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    for term in split(search) {
        if terms.len() == MAX_TERMS {
            break;
        }
        if !terms.contains(&term) {
            terms.push(term);
        }
    }
    terms
}

/// Replaces `user`'s words, in the caller's transaction; `username_key` is the user's
/// case-folded username as it is written to `users` in that transaction.
pub(crate) async fn write(
    conn: &mut AnyConnection,
    user: UserId,
    username_key: &str,
    words: &BTreeSet<String>,
) -> Result<()> {
    sqlx::query("DELETE FROM user_words WHERE user_id = $1")
        .bind(user.to_db())
        .execute(&mut *conn)
        .await?;
    insert_many(conn, words.iter().map(|w| (user, username_key, w.as_str()))).await
}

/// Inserts `(user, username key, word)` rows in multi-row statements, in the caller's
/// transaction; a row already there is left (the backfill may meet words a new node already
/// wrote).
pub(crate) async fn insert_many<'w>(
    conn: &mut AnyConnection,
    rows: impl Iterator<Item = (UserId, &'w str, &'w str)>,
) -> Result<()> {
    let rows: Vec<(UserId, &str, &str)> = rows.collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3))
            .collect();
        // Only placeholders are formatted in; every value is bound.
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO user_words (word, username_key, user_id) VALUES {} \
             ON CONFLICT DO NOTHING",
            values.join(", ")
        ));
        let mut query = sqlx::query(sql);
        for (user, key, word) in chunk {
            query = query.bind(*word).bind(*key).bind(user.to_db());
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Users read per round of the backfill.
const BACKFILL_BATCH: i64 = 1_000;

type NameRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Writes the words of every user once, after migration 0590 created the table: it left a
/// row in `pending_backfills` that the first node to start takes (and so every other node
/// skips, on PostgreSQL after waiting for that node's commit). Afterwards, each start writes
/// the words of users that have none: those that nodes of an older version created during a
/// rolling upgrade (they write no words): a read of every user's first index entry, ~60 ms
/// at 100,000 users on SQLite. Returns the users indexed.
pub(crate) async fn backfill(pool: &AnyPool, backend: store::Backend) -> Result<u64> {
    // Read first: opening a store must not write (a read-only file shows at the write probe,
    // with its cause), and there is nothing to write once the backfill is done.
    let pending: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM pending_backfills WHERE name = 'user_words'")
            .fetch_one(pool)
            .await?;
    if pending == 0 {
        let missing = users_after(pool, Users::WithoutWords, "").await?;
        // A user may have no word at all (username `_`, no names): nothing to write for them.
        let mut wordless = i64::try_from(missing.len()).unwrap_or(i64::MAX) < BACKFILL_BATCH;
        for row in missing {
            wordless = wordless && words_of(row)?.2.is_empty();
        }
        if wordless {
            return Ok(0);
        }
        let mut tx = pool.begin_with(backend.begin_write()).await?;
        // Two nodes starting at once may both write a user's words: the inserts skip rows
        // that exist.
        let indexed = index(&mut tx, Users::WithoutWords).await?;
        tx.commit().await?;
        return Ok(indexed);
    }
    let mut tx = pool.begin_with(backend.begin_write()).await?;
    let taken = sqlx::query("DELETE FROM pending_backfills WHERE name = 'user_words'")
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if taken == 0 {
        return Ok(0);
    }
    let indexed = index(&mut tx, Users::All).await?;
    tx.commit().await?;
    Ok(indexed)
}

/// Which users a round of the backfill reads.
#[derive(Debug, Clone, Copy)]
enum Users {
    All,
    /// Users with no row in `user_words` (every user has a word: a username has a letter or
    /// digit), read through `user_words_user`.
    WithoutWords,
}

/// Up to [`BACKFILL_BATCH`] users after `after` (by ID).
async fn users_after<'c, E>(conn: E, which: Users, after: &str) -> Result<Vec<NameRow>>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let sql = match which {
        Users::All => {
            "SELECT id, username, username_key, email, given_name, family_name, display_name \
             FROM users WHERE id > $1 ORDER BY id LIMIT $2"
        }
        Users::WithoutWords => {
            "SELECT id, username, username_key, email, given_name, family_name, display_name \
             FROM users u WHERE id > $1 AND NOT EXISTS (SELECT 1 FROM user_words w WHERE w.user_id = u.id) \
             ORDER BY id LIMIT $2"
        }
    };
    Ok(sqlx::query_as(sql)
        .bind(after)
        .bind(BACKFILL_BATCH)
        .fetch_all(conn)
        .await?)
}

/// A user's ID, case-folded username and words, from the names a backfill read.
fn words_of(row: NameRow) -> Result<(UserId, String, BTreeSet<String>)> {
    let (id, username, username_key, email, given_name, family_name, display_name) = row;
    let fields = UserFields {
        username,
        email,
        given_name,
        family_name,
        display_name,
        attributes: Default::default(),
        status: super::UserStatus::Active,
    };
    Ok((UserId::from_db(&id)?, username_key, of(&fields)))
}

/// Writes the words of `which` users in the caller's transaction; returns how many.
async fn index(conn: &mut AnyConnection, which: Users) -> Result<u64> {
    let mut after = String::new();
    let mut indexed = 0u64;
    loop {
        let rows = users_after(&mut *conn, which, &after).await?;
        let Some(last) = rows.last() else { break };
        after = last.0.clone();
        let mut words = Vec::with_capacity(rows.len());
        for row in rows {
            words.push(words_of(row)?);
            indexed += 1;
        }
        insert_many(
            &mut *conn,
            words
                .iter()
                .flat_map(|(id, key, ws)| ws.iter().map(|w| (*id, key.as_str(), w.as_str()))),
        )
        .await?;
    }
    Ok(indexed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(username: &str, email: &str, display: Option<&str>) -> UserFields {
        UserFields {
            username: username.into(),
            email: email.into(),
            given_name: None,
            family_name: None,
            display_name: display.map(Into::into),
            attributes: Default::default(),
            status: super::super::UserStatus::Active,
        }
    }

    #[test]
    fn words_come_from_names_username_and_address() {
        let f = fields(
            "j.smith",
            "Jane_Smith@Example.org",
            Some("Jane O'Brien-Smith"),
        );
        let words = of(&f);
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        assert_eq!(words, ["brien", "j", "jane", "o", "smith"]);
        // The domain is not a word: everyone at example.org would match "example".
        assert!(!of(&f).contains("example"));
    }

    #[test]
    fn words_are_folded_unicode_and_bounded() {
        let f = fields("ÉMILE", "e@x.org", Some(&"Ünal ".repeat(40)));
        assert!(of(&f).contains("émile") && of(&f).contains("ünal"));
        let many = (0..100)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(of(&fields("u", "u@x.org", Some(&many))).len(), MAX_WORDS);
        let long = "a".repeat(500);
        assert_eq!(
            of(&fields("u", "u@x.org", Some(&long)))
                .iter()
                .map(|w| w.chars().count())
                .max(),
            Some(MAX_CHARS)
        );
    }

    #[test]
    fn terms_are_distinct_and_bounded() {
        assert_eq!(terms("  Smith, Jane smith "), ["smith", "jane"]);
        assert_eq!(terms("a b c d e f").len(), MAX_TERMS);
        assert!(terms("--").is_empty());
    }
}
