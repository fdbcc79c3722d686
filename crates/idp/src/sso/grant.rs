//! Everything an assertion needs beyond the session, read in one statement.
//!
//! On the SSO path every statement is a round trip to the database: a hop to the
//! connection's worker thread and back with SQLite, a network round trip with PostgreSQL.
//! The facts below are independent rows of several tables, so they are read as one
//! `UNION ALL` of text columns (portable to both backends) instead of a statement each:
//! whether the user may use the application, the user's groups (for attribute mapping), the
//! pairwise NameID already allocated, what this session was last told by the application
//! (so an unchanged sign-in does not rewrite the row single logout reads), and the MFA
//! policy's stored inputs ([`MfaFacts`]: the user's, their groups' and the application's
//! rules, and whether the user has a factor), which the sign-in's gate decides on
//! ([`super::authn::gate`]).

use crate::apps::registry::apps_version_column;
use crate::apps::{Application, AppsVersion};
use crate::directory::{User, UserStatus};
use crate::error::{Error, Result};
use crate::ids::AppId;
use crate::mfa::policy::{MfaFacts, class_name};
use crate::session::{Session, SessionApp, SessionRow, Sessions, cookie_hash, session_columns};
use crate::store::Store;
use time::{Duration, OffsetDateTime};

/// What one sign-in at one application needs to know.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    /// The access policy's answer: the user is active and in a group granted the app.
    pub may_access: bool,
    /// The user's groups, by name, in case-folded name order.
    pub groups: Vec<String>,
    /// The user's persistent pairwise NameID at this application, if one was allocated.
    pub pairwise: Option<String>,
    /// What this session last told the application, if anything.
    pub recorded: Option<SessionApp>,
    /// What the MFA policy reads for this user at this application.
    pub mfa: MfaFacts,
}

#[derive(sqlx::FromRow)]
struct GrantRow {
    kind: String,
    a: Option<String>,
    b: Option<String>,
}

/// Reads the grant for `session`'s user at `app`.
pub async fn load(store: &Store, session: &Session, app: &Application) -> Result<Grant> {
    read(store, &session.user, Some(session.token_hash()), app).await
}

/// Reads the grant for `user` at `app` outside any session (the console's preview): the
/// same rows, with nothing recorded.
pub async fn for_user(store: &Store, user: &User, app: &Application) -> Result<Grant> {
    read(store, user, None, app).await
}

/// The rows of a grant as one `UNION ALL` of `(kind, a, b, sort_key)`, for the application
/// `$app`, the user `$user` and the session whose token hash is `$token` (SQL expressions):
/// one text for both statements that read it.
macro_rules! grant_rows {
    ($app:literal, $user:literal, $token:literal) => {
        concat!(
            "SELECT 'group' AS kind, g.name AS a, \
               CASE WHEN EXISTS (SELECT 1 FROM app_access x \
                                 WHERE x.app_id = ",
            $app,
            " AND x.group_id = g.id) \
                 THEN 'granted' ELSE 'no' END AS b, \
               g.name_key AS sort_key \
             FROM directory_groups g JOIN group_members m ON m.group_id = g.id \
             WHERE m.user_id = ",
            $user,
            " \
             UNION ALL \
             SELECT 'pairwise', p.name_id, NULL, NULL FROM pairwise_ids p \
             WHERE p.app_id = ",
            $app,
            " AND p.user_id = ",
            $user,
            " \
             UNION ALL \
             SELECT 'recorded', r.name_id, r.name_id_format, NULL FROM web_session_apps r \
             WHERE r.token_hash = ",
            $token,
            " AND r.app_id = ",
            $app,
            " \
             UNION ALL \
             SELECT 'mfa_user', NULL, NULL, NULL FROM mfa_user_policy u \
             WHERE u.user_id = ",
            $user,
            " AND u.require_mfa <> 0 \
             UNION ALL \
             SELECT 'mfa_group', g.name, NULL, NULL FROM mfa_group_policy p \
             JOIN directory_groups g ON g.id = p.group_id \
             JOIN group_members m ON m.group_id = p.group_id \
             WHERE m.user_id = ",
            $user,
            " AND p.require_mfa = 1 \
             UNION ALL \
             SELECT 'mfa_app', q.mfa_class, \
               CASE WHEN q.require_mfa <> 0 THEN 'required' ELSE 'no' END, NULL \
             FROM mfa_app_policy q WHERE q.app_id = ",
            $app,
            " \
             UNION ALL \
             SELECT 'mfa_factor', NULL, NULL, NULL \
             WHERE EXISTS (SELECT 1 FROM mfa_totp t WHERE t.user_id = ",
            $user,
            " AND t.confirmed = 1) \
                OR EXISTS (SELECT 1 FROM webauthn_credentials w WHERE w.user_id = ",
            $user,
            ")"
        )
    };
}

/// The session a browser's cookie `token` names, if still valid at `now` (as
/// [`Sessions::resume`] decides, with the same effects), with its grant at `app`: the two
/// reads of a sign-in with a live session in one statement, so one round trip to the
/// database instead of two. The grant's rows come joined to the session's row, so they are
/// read for exactly the user the session belongs to (nothing is read for a token no
/// session has). The same statement reads the applications' version, which confirms (or
/// not) the node's copy of the application the sign-in is for ([`crate::apps::Apps::confirm`]).
pub async fn resume(
    store: &Store,
    token: &str,
    now: OffsetDateTime,
    idle: Duration,
    app: AppId,
) -> Result<Option<(Session, Grant, AppsVersion)>> {
    let Some(hash) = cookie_hash(token) else {
        return Ok(None);
    };
    let rows: Vec<SessionGrantRow> = sqlx::query_as(concat!(
        "WITH me AS (SELECT user_id FROM web_sessions WHERE token_hash = $2) SELECT ",
        session_columns!(),
        ", ",
        apps_version_column!(),
        ", g.kind, g.a, g.b FROM web_sessions s JOIN users u ON u.id = s.user_id \
         LEFT JOIN (",
        grant_rows!("$1", "(SELECT user_id FROM me)", "$2"),
        ") g ON 1 = 1 WHERE s.token_hash = $2 ORDER BY g.kind, g.sort_key"
    ))
    .bind(app.to_db())
    .bind(&hash)
    .fetch_all(store.pool())
    .await?;
    let mut session_row = None;
    let mut grant_rows = Vec::with_capacity(rows.len());
    for row in rows {
        session_row.get_or_insert((row.session, AppsVersion(row.apps_version)));
        grant_rows.push(GrantRow {
            kind: row.kind.unwrap_or_default(),
            a: row.a,
            b: row.b,
        });
    }
    let Some((session_row, apps_version)) = session_row else {
        return Ok(None);
    };
    let Some(session) = Sessions::new(store)
        .admit(session_row, hash, now, idle)
        .await?
    else {
        return Ok(None);
    };
    let grant = fold(grant_rows, &session.user, app)?;
    Ok(Some((session, grant, apps_version)))
}

/// A session row with one of its grant's rows (none when the grant has no row at all).
#[derive(sqlx::FromRow)]
struct SessionGrantRow {
    #[sqlx(flatten)]
    session: SessionRow,
    apps_version: i64,
    kind: Option<String>,
    a: Option<String>,
    b: Option<String>,
}

async fn read(
    store: &Store,
    user: &User,
    token_hash: Option<&str>,
    app: &Application,
) -> Result<Grant> {
    let rows: Vec<GrantRow> = sqlx::query_as(concat!(
        "SELECT kind, a, b FROM (",
        grant_rows!("$1", "$2", "$3"),
        ") grant_rows ORDER BY kind, sort_key"
    ))
    .bind(app.id.to_db())
    .bind(user.id.to_db())
    .bind(token_hash)
    .fetch_all(store.pool())
    .await?;
    fold(rows, user, app.id)
}

/// The grant that `rows` (of [`grant_rows!`], in `kind, sort_key` order) state for `user` at
/// `app`.
fn fold(rows: Vec<GrantRow>, user: &User, app: AppId) -> Result<Grant> {
    let mut grant = Grant::default();
    for row in rows {
        match (row.kind.as_str(), row.a) {
            ("group", Some(name)) => {
                grant.may_access |= row.b.as_deref() == Some("granted");
                grant.groups.push(name);
            }
            ("pairwise", Some(name_id)) => grant.pairwise = Some(name_id),
            ("recorded", Some(name_id)) => {
                grant.recorded = Some(SessionApp {
                    app,
                    name_id,
                    name_id_format: row.b.unwrap_or_default(),
                });
            }
            ("mfa_user", _) => grant.mfa.user_required = true,
            ("mfa_group", _) => grant.mfa.group_required = true,
            ("mfa_app", Some(class)) => {
                grant.mfa.app.require_mfa = row.b.as_deref() == Some("required");
                grant.mfa.app.mfa_class = class_name::parse(&class)
                    .ok_or_else(|| Error::corrupt("mfa_app_policy.mfa_class", &class))?;
            }
            ("mfa_factor", _) => grant.mfa.has_factor = true,
            _ => {}
        }
    }
    // A suspended user is refused even if their groups still grant the application (the
    // session layer ends their sessions; this keeps the rule true on its own).
    grant.may_access &= user.status == UserStatus::Active;
    Ok(grant)
}
