//! CSV import of users: all or nothing, and idempotent.
//!
//! The file is parsed and checked completely before the store is touched; then every row is
//! applied in one transaction, so a bad row anywhere leaves the store exactly as it was.
//! Re-running the same file changes nothing: rows equal to the stored user write nothing and
//! record nothing, and memberships are only added when missing.
//!
//! Columns: `username` and `email` (required), `given_name`, `family_name`, `display_name`,
//! `status` (`active`/`suspended`), `groups` (names separated by `;`). Any other column is a
//! custom attribute. A column present in the file is authoritative (an empty cell clears the
//! field); a column absent from the file leaves existing users' values alone. Groups are only
//! added, never removed, and must already exist.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use serde::Serialize;

use super::groups;
use super::users::{self, AttributeValue, UserFields, UserStatus, Users};
use super::validate;
use crate::audit::Actor;
use crate::console::roles::AdminGuard;
use crate::error::{Error, Result};
use crate::store;

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Usernames created.
    pub created: Vec<String>,
    /// Usernames whose fields changed.
    pub updated: Vec<String>,
    /// Rows that matched the store already.
    pub unchanged: usize,
    /// Memberships added.
    pub memberships_added: usize,
}

impl ImportReport {
    /// Whether the import changed anything.
    pub fn changed_anything(&self) -> bool {
        !self.created.is_empty() || !self.updated.is_empty() || self.memberships_added > 0
    }
}

const KNOWN: [&str; 7] = [
    "username",
    "email",
    "given_name",
    "family_name",
    "display_name",
    "status",
    "groups",
];

#[derive(Debug)]
struct Row {
    line: u64,
    cells: HashMap<String, String>,
    groups: Vec<String>,
}

fn at(line: u64) -> impl Fn(Error) -> Error {
    move |source| Error::ImportRow {
        line,
        source: Box::new(source),
    }
}

fn parse(reader: impl Read) -> Result<(Vec<String>, Vec<Row>)> {
    let mut csv = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(reader);
    // Spreadsheet exports often start with a UTF-8 byte-order mark; it is not part of the name.
    let headers: Vec<String> = csv
        .headers()?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').trim().to_ascii_lowercase())
        .collect();
    for required in ["username", "email"] {
        if !headers.iter().any(|h| h == required) {
            return Err(at(1)(Error::invalid(
                "header",
                format!("missing required column {required:?}"),
            )));
        }
    }
    for (i, header) in headers.iter().enumerate() {
        if headers.iter().skip(i + 1).any(|h| h == header) {
            return Err(at(1)(Error::invalid(
                "header",
                format!("column {header:?} appears twice"),
            )));
        }
        if !KNOWN.contains(&header.as_str()) {
            validate::attribute_key(header).map_err(at(1))?;
        }
    }
    let mut rows = Vec::new();
    for record in csv.records() {
        let record = record?;
        let line = record.position().map(csv::Position::line).unwrap_or(0);
        let cells: HashMap<String, String> = headers
            .iter()
            .cloned()
            .zip(record.iter().map(str::to_string))
            .collect();
        let groups = cells
            .get("groups")
            .map(|g| {
                g.split(';')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        rows.push(Row {
            line,
            cells,
            groups,
        });
    }
    Ok((headers, rows))
}

/// The fields a row asks for, on top of the existing user (if any).
fn fields_for(row: &Row, base: Option<&users::User>) -> Result<UserFields> {
    let cell = |name: &str| row.cells.get(name).cloned();
    let optional = |name: &str, old: Option<&Option<String>>| match cell(name) {
        Some(v) if v.is_empty() => None,
        Some(v) => Some(v),
        None => old.cloned().flatten(),
    };
    let mut attributes: BTreeMap<String, AttributeValue> =
        base.map(|u| u.attributes.clone()).unwrap_or_default();
    for (name, value) in &row.cells {
        if KNOWN.contains(&name.as_str()) {
            continue;
        }
        if value.is_empty() {
            attributes.remove(name);
        } else {
            attributes.insert(name.clone(), AttributeValue::One(value.clone()));
        }
    }
    let status = match cell("status") {
        Some(s) => UserStatus::parse(&s)?,
        None => base.map(|u| u.status).unwrap_or(UserStatus::Active),
    };
    UserFields {
        username: cell("username").unwrap_or_default(),
        email: cell("email").unwrap_or_default(),
        given_name: optional("given_name", base.map(|u| &u.given_name)),
        family_name: optional("family_name", base.map(|u| &u.family_name)),
        display_name: optional("display_name", base.map(|u| &u.display_name)),
        attributes,
        status,
    }
    .validate()
}

impl Users<'_> {
    /// Imports users from CSV (see the module docs); all rows or none are applied.
    pub async fn import_csv(&self, actor: &Actor, reader: impl Read) -> Result<ImportReport> {
        let (_headers, rows) = parse(reader)?;
        // Check every row on its own and against the others before touching the store.
        let mut usernames = HashMap::new();
        let mut emails = HashMap::new();
        for row in &rows {
            let fields = fields_for(row, None).map_err(at(row.line))?;
            if usernames
                .insert(store::fold(&fields.username), row.line)
                .is_some()
            {
                return Err(at(row.line)(Error::DuplicateUsername {
                    username: fields.username,
                }));
            }
            if emails
                .insert(store::fold(&fields.email), row.line)
                .is_some()
            {
                return Err(at(row.line)(Error::DuplicateEmail {
                    email: fields.email,
                }));
            }
        }

        let mut report = ImportReport::default();
        let mut tx = self.store().begin().await?;
        let conn = store::conn(&mut tx);
        // A row may suspend someone: the import is one change that could take the admin role
        // from its last active holder.
        let guard = AdminGuard::take(&mut *conn).await?;
        let now = self.store().now();
        for row in &rows {
            let line = row.line;
            let username = row.cells.get("username").cloned().unwrap_or_default();
            let existing = match users::fetch_by_username(&mut *conn, username.trim())
                .await
                .map_err(at(line))?
            {
                // Read again under the row's lock: the row is rewritten from what is read.
                Some(found) => users::fetch_for_update(conn, found.id)
                    .await
                    .map_err(at(line))?,
                None => None,
            };
            let fields = fields_for(row, existing.as_ref()).map_err(at(line))?;
            let user = match existing {
                Some(before) => {
                    let after = users::rewrite(conn, actor, now, "user.update", &before, &fields)
                        .await
                        .map_err(at(line))?;
                    if after == before {
                        report.unchanged += 1;
                    } else {
                        report.updated.push(after.username.clone());
                    }
                    after
                }
                None => {
                    let user = users::insert(conn, actor, now, &fields, None)
                        .await
                        .map_err(at(line))?;
                    report.created.push(user.username.clone());
                    user
                }
            };
            for name in &row.groups {
                let group = groups::fetch_by_name(&mut *conn, name)
                    .await
                    .map_err(at(line))?
                    .ok_or_else(|| at(line)(Error::UnknownGroup { name: name.clone() }))?;
                if groups::ensure_member(conn, actor, now, &group, &user)
                    .await
                    .map_err(at(line))?
                {
                    report.memberships_added += 1;
                }
            }
        }
        guard.keep(conn).await?;
        store::commit(tx).await?;
        self.store().wake_outbox();
        Ok(report)
    }
}
