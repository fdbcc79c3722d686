//! `GET /Users` and `GET /Groups` without loading the directory.
//!
//! A filter is translated into SQL where its attributes are columns or indexed expressions:
//! `userName` (eq, ne, sw, pr), `emails`/`emails.value` (eq, ne, sw, pr), `id` (eq),
//! `externalId` (eq), `active` (eq, ne), `groups.value` and `groups[value eq ...]` on users;
//! `displayName` (eq, ne, sw, pr), `id`, `externalId`, `members.value` and
//! `members[value eq ...]` on groups; joined by and, or and not. Such a filter, sorted by
//! `userName` (`displayName` for groups) or not at all, is answered by the database alone:
//! a count and one page (`LIMIT`/`OFFSET`).
//!
//! Any other filter or sort is evaluated here over the candidates the translatable part
//! selects (or all resources), in username (name) order, at most [`MAX_SCAN`] of them: past
//! that the answer is `400 tooMany`, naming the attributes that narrow a search. So memory
//! and work per request are bounded whatever the directory's size.

use serde_json::{Value, json};
use sqlx::FromRow;
use time::OffsetDateTime;

use latchkey_scim::filter::{CompareOp, Filter};
use latchkey_scim::list::{ListQuery, Projection};
use latchkey_scim::{LIST_SCHEMA, ScimError, ScimType};

use super::{ScimDirectory, render, scim_error};
use crate::directory::{Group, User, UserRow};
use crate::ids::{GroupId, UserId};
use crate::store::sql::{Sql, prefix_bound};
use crate::store::{self, Backend, timestamp};

/// The most resources a filter that SQL cannot answer alone is evaluated over.
pub const MAX_SCAN: usize = 2000;

/// A predicate built from fixed fragments; values are always bound.
#[derive(Debug, Clone)]
enum Pred {
    True,
    False,
    And(Box<Pred>, Box<Pred>),
    Or(Box<Pred>, Box<Pred>),
    Not(Box<Pred>),
    Eq(&'static str, String),
    Prefix(&'static str, String),
    /// A fragment ending in `= ` followed by the value and a closing parenthesis.
    Exists(&'static str, String),
}

/// A translated filter: the predicate, whether it selects exactly what the filter matches
/// (else a superset), and whether a column it reads may be NULL (then `NOT` is not exact).
struct Translated {
    pred: Pred,
    exact: bool,
    nullable: bool,
}

impl Translated {
    fn exact(pred: Pred) -> Option<Translated> {
        Some(Translated {
            pred,
            exact: true,
            nullable: false,
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Users,
    Groups,
}

struct Columns {
    username: &'static str,
    username_sorted: &'static str,
    email: &'static str,
    email_sorted: &'static str,
    external_id: &'static str,
    group_name: &'static str,
    group_name_sorted: &'static str,
}

fn columns(backend: Backend) -> Columns {
    match backend {
        Backend::Postgres => Columns {
            username: "u.username_key",
            username_sorted: "u.username_key COLLATE \"C\"",
            email: "u.email_key",
            email_sorted: "u.email_key COLLATE \"C\"",
            external_id: "(u.attributes::jsonb ->> 'externalId')",
            group_name: "g.name_key",
            group_name_sorted: "g.name_key COLLATE \"C\"",
        },
        Backend::Sqlite => Columns {
            username: "u.username_key",
            username_sorted: "u.username_key",
            email: "u.email_key",
            email_sorted: "u.email_key",
            external_id: "json_extract(u.attributes, '$.externalId')",
            group_name: "g.name_key",
            group_name_sorted: "g.name_key",
        },
    }
}

const USER_IN_GROUP: &str =
    "EXISTS (SELECT 1 FROM group_members m WHERE m.user_id = u.id AND m.group_id = ";
const GROUP_HAS_MEMBER: &str =
    "EXISTS (SELECT 1 FROM group_members m WHERE m.group_id = g.id AND m.user_id = ";

fn translate(f: &Filter, kind: Kind, c: &Columns) -> Option<Translated> {
    match f {
        Filter::And(a, b) => match (translate(a, kind, c), translate(b, kind, c)) {
            (Some(x), Some(y)) => Some(Translated {
                pred: Pred::And(Box::new(x.pred), Box::new(y.pred)),
                exact: x.exact && y.exact,
                nullable: x.nullable || y.nullable,
            }),
            (Some(x), None) | (None, Some(x)) => Some(Translated { exact: false, ..x }),
            (None, None) => None,
        },
        Filter::Or(a, b) => {
            let (x, y) = (translate(a, kind, c)?, translate(b, kind, c)?);
            Some(Translated {
                pred: Pred::Or(Box::new(x.pred), Box::new(y.pred)),
                exact: x.exact && y.exact,
                nullable: x.nullable || y.nullable,
            })
        }
        Filter::Not(a) => {
            let x = translate(a, kind, c)?;
            (x.exact && !x.nullable).then(|| Translated {
                pred: Pred::Not(Box::new(x.pred)),
                ..x
            })
        }
        Filter::Present(path) => {
            let always = path.uri.is_none()
                && path.sub.as_deref().is_none_or(|s| s == "value")
                && match kind {
                    Kind::Users => matches!(path.attr.as_str(), "id" | "userName" | "emails"),
                    Kind::Groups => matches!(path.attr.as_str(), "id" | "displayName"),
                };
            if always {
                Translated::exact(Pred::True)
            } else {
                None
            }
        }
        Filter::Compare(path, op, value) => {
            if path.uri.is_some() {
                return None;
            }
            let sub = path.sub.as_deref();
            let text = value.as_str();
            let leaf = match (kind, path.attr.as_str(), sub, op, text) {
                (Kind::Users, "userName", None, CompareOp::Eq | CompareOp::Ne, Some(v)) => {
                    Pred::Eq(c.username, store::fold(v))
                }
                (Kind::Users, "userName", None, CompareOp::Sw, Some(v)) => {
                    Pred::Prefix(c.username_sorted, store::fold(v))
                }
                (
                    Kind::Users,
                    "emails",
                    None | Some("value"),
                    CompareOp::Eq | CompareOp::Ne,
                    Some(v),
                ) => Pred::Eq(c.email, store::fold(v)),
                (Kind::Users, "emails", None | Some("value"), CompareOp::Sw, Some(v)) => {
                    Pred::Prefix(c.email_sorted, store::fold(v))
                }
                (Kind::Users, "id", None, CompareOp::Eq | CompareOp::Ne, Some(v)) => {
                    match v.parse::<UserId>() {
                        Ok(id) => Pred::Eq("u.id", id.to_db()),
                        Err(_) => Pred::False,
                    }
                }
                (Kind::Users, "externalId", None, CompareOp::Eq, Some(v)) => {
                    return Some(Translated {
                        pred: Pred::Eq(c.external_id, v.to_owned()),
                        exact: true,
                        nullable: true,
                    });
                }
                (Kind::Users, "active", None, CompareOp::Eq | CompareOp::Ne, _) => {
                    let Value::Bool(b) = value else { return None };
                    let active = *b == (*op == CompareOp::Eq);
                    return Translated::exact(Pred::Eq(
                        "u.status",
                        if active { "active" } else { "suspended" }.to_owned(),
                    ));
                }
                (Kind::Users, "groups", None | Some("value"), CompareOp::Eq, Some(v)) => {
                    match v.parse::<GroupId>() {
                        Ok(id) => Pred::Exists(USER_IN_GROUP, id.to_db()),
                        Err(_) => Pred::False,
                    }
                }
                (Kind::Groups, "displayName", None, CompareOp::Eq | CompareOp::Ne, Some(v)) => {
                    Pred::Eq(c.group_name, store::fold(v.trim()))
                }
                (Kind::Groups, "displayName", None, CompareOp::Sw, Some(v)) => {
                    Pred::Prefix(c.group_name_sorted, store::fold(v))
                }
                (Kind::Groups, "id", None, CompareOp::Eq | CompareOp::Ne, Some(v)) => {
                    match v.parse::<GroupId>() {
                        Ok(id) => Pred::Eq("g.id", id.to_db()),
                        Err(_) => Pred::False,
                    }
                }
                (Kind::Groups, "externalId", None, CompareOp::Eq, Some(v)) => {
                    return Some(Translated {
                        pred: Pred::Eq("sg.external_id", v.to_owned()),
                        exact: true,
                        nullable: true,
                    });
                }
                (Kind::Groups, "members", None | Some("value"), CompareOp::Eq, Some(v)) => {
                    match v.parse::<UserId>() {
                        Ok(id) => Pred::Exists(GROUP_HAS_MEMBER, id.to_db()),
                        Err(_) => Pred::False,
                    }
                }
                _ => return None,
            };
            if *op == CompareOp::Ne {
                Translated::exact(Pred::Not(Box::new(leaf)))
            } else {
                Translated::exact(leaf)
            }
        }
        Filter::ValuePath(path, inner) => {
            // `groups[value eq "..."]`, `members[value eq "..."]`: the same as the path.
            let (attr, head) = match kind {
                Kind::Users => ("groups", USER_IN_GROUP),
                Kind::Groups => ("members", GROUP_HAS_MEMBER),
            };
            if path.uri.is_some() || path.attr != attr || path.sub.is_some() {
                return None;
            }
            let Filter::Compare(p, CompareOp::Eq, Value::String(v)) = inner.as_ref() else {
                return None;
            };
            if p.attr != "value" {
                return None;
            }
            let id = match kind {
                Kind::Users => v.parse::<GroupId>().map(GroupId::to_db).ok(),
                Kind::Groups => v.parse::<UserId>().map(UserId::to_db).ok(),
            };
            Translated::exact(match id {
                Some(id) => Pred::Exists(head, id),
                None => Pred::False,
            })
        }
    }
}

fn push(sql: &mut Sql, pred: &Pred) {
    match pred {
        Pred::True => {
            sql.push("1 = 1");
        }
        Pred::False => {
            sql.push("1 = 0");
        }
        Pred::And(a, b) | Pred::Or(a, b) => {
            sql.push("(");
            push(sql, a);
            sql.push(if matches!(pred, Pred::And(..)) {
                " AND "
            } else {
                " OR "
            });
            push(sql, b);
            sql.push(")");
        }
        Pred::Not(a) => {
            sql.push("NOT (");
            push(sql, a);
            sql.push(")");
        }
        Pred::Eq(column, value) => {
            sql.push(column).push(" = ").text(value.clone());
        }
        Pred::Prefix(column, value) => {
            sql.push("(")
                .push(column)
                .push(" >= ")
                .text(value.clone())
                .push(" AND ")
                .push(column)
                .push(" < ")
                .text(prefix_bound(value))
                .push(")");
        }
        Pred::Exists(head, value) => {
            sql.push(head).text(value.clone()).push(")");
        }
    }
}

/// Whether the filter reads attribute `attr` anywhere.
fn mentions(f: &Filter, attr: &str) -> bool {
    match f {
        Filter::And(a, b) | Filter::Or(a, b) => mentions(a, attr) || mentions(b, attr),
        Filter::Not(a) => mentions(a, attr),
        Filter::Present(p) | Filter::Compare(p, _, _) | Filter::ValuePath(p, _) => {
            p.uri.is_none() && p.attr == attr
        }
    }
}

/// How a listing is answered.
enum Plan {
    /// Count and page in SQL; `descending` for the sort.
    Sql { descending: bool },
    /// Evaluate here over at most [`MAX_SCAN`] candidates.
    Scan,
}

fn plan(query: &ListQuery, kind: Kind, translated: Option<&Translated>) -> Plan {
    let exact = match (&query.filter, translated) {
        (None, _) => true,
        (Some(_), Some(t)) => t.exact,
        (Some(_), None) => false,
    };
    let key = match kind {
        Kind::Users => "userName",
        Kind::Groups => "displayName",
    };
    let sql_sort = query
        .sort_by
        .as_ref()
        .is_none_or(|p| p.uri.is_none() && p.attr == key && p.sub.is_none());
    if exact && sql_sort {
        Plan::Sql {
            descending: query.sort_by.is_some() && query.descending,
        }
    } else {
        Plan::Scan
    }
}

fn too_many(kind: Kind) -> ScimError {
    let narrow = match kind {
        Kind::Users => "userName, emails, externalId, id, active or groups",
        Kind::Groups => "displayName, externalId, id or members",
    };
    ScimError::bad_request(
        ScimType::TooMany,
        format!(
            "this filter or sort is evaluated over at most {MAX_SCAN} resources; narrow it \
             with {narrow} (eq, sw), which the database answers"
        ),
    )
}

fn list_response(total: u64, start_index: usize, page: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": page.len(),
        "Resources": page,
    })
}

#[derive(FromRow)]
struct ListedUser {
    #[sqlx(flatten)]
    user: UserRow,
    scim_resource: Option<String>,
    scim_updated_at: Option<String>,
}

struct Listed {
    user: User,
    extras: Value,
    modified: Option<OffsetDateTime>,
}

impl ListedUser {
    fn into_listed(self) -> Result<Listed, ScimError> {
        let user = self.user.into_user().map_err(scim_error)?;
        let extras = match self.scim_resource {
            Some(text) => serde_json::from_str(&text)
                .map_err(|e| scim_error(crate::Error::corrupt("scim_users.resource", e)))?,
            None => Value::Object(Default::default()),
        };
        let modified = self
            .scim_updated_at
            .map(|t| timestamp::parse("scim_users.updated_at", &t))
            .transpose()
            .map_err(scim_error)?;
        Ok(Listed {
            user,
            extras,
            modified,
        })
    }
}

const USER_ROWS: &str = "SELECT u.id, u.username, u.email, u.given_name, u.family_name, \
     u.display_name, u.attributes, u.status, u.password_hash, u.created_at, u.updated_at, \
     s.resource AS scim_resource, s.updated_at AS scim_updated_at \
     FROM users u LEFT JOIN scim_users s ON s.user_id = u.id WHERE ";

type GroupTuple = (
    String,
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
);

/// A group's row, with its members' version read in the same statement (before any member).
const GROUP_ROWS: &str = "SELECT g.id, g.name, g.description, g.created_at, g.updated_at, \
     sg.external_id, sg.updated_at, g.members_version FROM directory_groups g \
     LEFT JOIN scim_groups sg ON sg.group_id = g.id WHERE ";

struct ListedGroup {
    group: Group,
    external_id: Option<String>,
    modified: Option<OffsetDateTime>,
    members_version: i64,
}

fn listed_group(row: GroupTuple) -> Result<ListedGroup, ScimError> {
    let (id, name, description, created_at, updated_at, external_id, modified, members_version) =
        row;
    let parse = |what, t: &str| timestamp::parse(what, t).map_err(scim_error);
    Ok(ListedGroup {
        group: Group {
            id: GroupId::from_db(&id).map_err(scim_error)?,
            name,
            description,
            created_at: parse("directory_groups.created_at", &created_at)?,
            updated_at: parse("directory_groups.updated_at", &updated_at)?,
        },
        external_id,
        modified: modified
            .map(|t| parse("scim_groups.updated_at", &t))
            .transpose()?,
        members_version,
    })
}

impl ScimDirectory {
    /// `GET /Users`.
    pub async fn list_users(&self, query: &ListQuery) -> Result<Value, ScimError> {
        let store = self.store();
        let c = columns(store.backend());
        let translated = query
            .filter
            .as_ref()
            .and_then(|f| translate(f, Kind::Users, &c));
        let pred = translated.as_ref().map_or(Pred::True, |t| t.pred.clone());
        let mut conn = store.pool().acquire().await.map_err(super::db)?;
        match plan(query, Kind::Users, translated.as_ref()) {
            Plan::Sql { descending } => {
                let mut count = Sql::new("SELECT COUNT(*) FROM users u WHERE ");
                push(&mut count, &pred);
                let total = count.fetch_int(store.pool()).await.map_err(scim_error)?;
                let mut page = Vec::new();
                if query.count > 0 {
                    let mut sql = Sql::new(USER_ROWS);
                    push(&mut sql, &pred);
                    sql.push(" ORDER BY ").push(c.username_sorted);
                    if descending {
                        sql.push(" DESC");
                    }
                    sql.push(" LIMIT ")
                        .int(i64::try_from(query.count).unwrap_or(i64::MAX))
                        .push(" OFFSET ")
                        .int(i64::try_from(query.start_index - 1).unwrap_or(i64::MAX));
                    let rows: Vec<ListedUser> =
                        sql.fetch_all(store.pool()).await.map_err(scim_error)?;
                    for row in rows {
                        let l = row.into_listed()?;
                        let groups = super::user_groups(&mut conn, l.user.id).await?;
                        let mut r =
                            render::user(&l.user, &l.extras, &groups, l.modified, self.base_url());
                        query.projection.apply(&mut r.json);
                        page.push(r.json);
                    }
                }
                Ok(list_response(
                    u64::try_from(total).unwrap_or(0),
                    query.start_index,
                    page,
                ))
            }
            Plan::Scan => {
                let mut sql = Sql::new(USER_ROWS);
                push(&mut sql, &pred);
                sql.push(" ORDER BY ")
                    .push(c.username_sorted)
                    .push(" LIMIT ")
                    .int(i64::try_from(MAX_SCAN + 1).unwrap_or(i64::MAX));
                let rows: Vec<ListedUser> =
                    sql.fetch_all(store.pool()).await.map_err(scim_error)?;
                if rows.len() > MAX_SCAN {
                    return Err(too_many(Kind::Users));
                }
                let needs_groups = query.filter.as_ref().is_some_and(|f| mentions(f, "groups"))
                    || query.sort_by.as_ref().is_some_and(|p| p.attr == "groups");
                let mut listed = Vec::with_capacity(rows.len());
                let mut light = Vec::with_capacity(rows.len());
                for row in rows {
                    let l = row.into_listed()?;
                    let groups = if needs_groups {
                        super::user_groups(&mut conn, l.user.id).await?
                    } else {
                        Vec::new()
                    };
                    light.push(
                        render::user(&l.user, &l.extras, &groups, l.modified, self.base_url()).json,
                    );
                    listed.push(l);
                }
                let mut answer = respond_unprojected(query, light);
                let mut page = Vec::new();
                for id in page_ids(&answer) {
                    let Some(l) = listed.iter().find(|l| l.user.id.to_string() == id) else {
                        continue;
                    };
                    let groups = super::user_groups(&mut conn, l.user.id).await?;
                    let mut r =
                        render::user(&l.user, &l.extras, &groups, l.modified, self.base_url());
                    query.projection.apply(&mut r.json);
                    page.push(r.json);
                }
                answer["Resources"] = Value::Array(page);
                Ok(answer)
            }
        }
    }

    /// `GET /Groups`.
    pub async fn list_groups(&self, query: &ListQuery) -> Result<Value, ScimError> {
        let store = self.store();
        let c = columns(store.backend());
        let translated = query
            .filter
            .as_ref()
            .and_then(|f| translate(f, Kind::Groups, &c));
        let pred = translated.as_ref().map_or(Pred::True, |t| t.pred.clone());
        let mut conn = store.pool().acquire().await.map_err(super::db)?;
        match plan(query, Kind::Groups, translated.as_ref()) {
            Plan::Sql { descending } => {
                let mut count = Sql::new(
                    "SELECT COUNT(*) FROM directory_groups g \
                     LEFT JOIN scim_groups sg ON sg.group_id = g.id WHERE ",
                );
                push(&mut count, &pred);
                let total = count.fetch_int(store.pool()).await.map_err(scim_error)?;
                let mut page = Vec::new();
                if query.count > 0 {
                    let mut sql = Sql::new(GROUP_ROWS);
                    push(&mut sql, &pred);
                    sql.push(" ORDER BY ").push(c.group_name_sorted);
                    if descending {
                        sql.push(" DESC");
                    }
                    sql.push(" LIMIT ")
                        .int(i64::try_from(query.count).unwrap_or(i64::MAX))
                        .push(" OFFSET ")
                        .int(i64::try_from(query.start_index - 1).unwrap_or(i64::MAX));
                    let rows: Vec<GroupTuple> =
                        sql.fetch_all(store.pool()).await.map_err(scim_error)?;
                    for row in rows {
                        let mut json = self
                            .full_group(&mut conn, listed_group(row)?, &query.projection)
                            .await?;
                        query.projection.apply(&mut json);
                        page.push(json);
                    }
                }
                Ok(list_response(
                    u64::try_from(total).unwrap_or(0),
                    query.start_index,
                    page,
                ))
            }
            Plan::Scan => {
                let mut sql = Sql::new(GROUP_ROWS);
                push(&mut sql, &pred);
                sql.push(" ORDER BY ")
                    .push(c.group_name_sorted)
                    .push(" LIMIT ")
                    .int(i64::try_from(MAX_SCAN + 1).unwrap_or(i64::MAX));
                let rows: Vec<GroupTuple> =
                    sql.fetch_all(store.pool()).await.map_err(scim_error)?;
                if rows.len() > MAX_SCAN {
                    return Err(too_many(Kind::Groups));
                }
                let needs_members = query
                    .filter
                    .as_ref()
                    .is_some_and(|f| mentions(f, "members"))
                    || query.sort_by.as_ref().is_some_and(|p| p.attr == "members");
                let mut listed = Vec::with_capacity(rows.len());
                let mut light = Vec::with_capacity(rows.len());
                for row in rows {
                    let l = listed_group(row)?;
                    let members = if needs_members {
                        Some(super::group_members(&mut conn, l.group.id).await?)
                    } else {
                        None
                    };
                    light.push(
                        render::group(
                            &l.group,
                            l.external_id.as_deref(),
                            members.as_deref(),
                            l.members_version,
                            l.modified,
                            self.base_url(),
                        )
                        .json,
                    );
                    listed.push(l);
                }
                let mut answer = respond_unprojected(query, light);
                let mut page = Vec::new();
                for id in page_ids(&answer) {
                    let Some(pos) = listed.iter().position(|l| l.group.id.to_string() == id) else {
                        continue;
                    };
                    let l = listed.swap_remove(pos);
                    let mut json = self.full_group(&mut conn, l, &query.projection).await?;
                    query.projection.apply(&mut json);
                    page.push(json);
                }
                answer["Resources"] = Value::Array(page);
                Ok(answer)
            }
        }
    }
}

impl ScimDirectory {
    /// The group as a page answers it: its members only if `projection` returns them.
    async fn full_group(
        &self,
        conn: &mut sqlx::AnyConnection,
        l: ListedGroup,
        projection: &Projection,
    ) -> Result<Value, ScimError> {
        let members = if projection.returns("members") {
            Some(super::group_members(conn, l.group.id).await?)
        } else {
            None
        };
        Ok(render::group(
            &l.group,
            l.external_id.as_deref(),
            members.as_deref(),
            l.members_version,
            l.modified,
            self.base_url(),
        )
        .json)
    }
}

/// The filtered, sorted page as `ListQuery::respond` makes it, before any projection (the
/// page's resources are rendered again in full, then projected).
fn respond_unprojected(query: &ListQuery, resources: Vec<Value>) -> Value {
    let mut q = query.clone();
    q.projection = Projection::default();
    q.respond(resources)
}

fn page_ids(answer: &Value) -> Vec<String> {
    answer["Resources"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|r| r["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
