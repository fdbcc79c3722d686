//! `/api/v1/audit`: the audit log, newest first, paged by cursor.
//!
//! The cursor is the `seq` of the last event seen; events are never renumbered, so a
//! page boundary stays put while new events arrive (offsets would shift).

use axum::extract::State;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::ApiState;
use super::error::{ApiError, ErrorBody};
use super::extract::ApiQuery;
use super::page;
use latchkey_idp::audit::{AuditEvent, AuditFilter};

/// One recorded change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEventDto {
    /// Position in the log; pass as `cursor` to continue after it.
    pub seq: i64,
    /// Globally unique event ID.
    pub id: Uuid,
    /// Commit time (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who made the change: the stable label (`cli:<user>@<host>`, `api:<token id>`,
    /// `user:<id>`, `system`).
    pub actor: String,
    /// Their name at the time (username, `token <name>`, `<user>@<host>`), where recorded.
    pub actor_name: Option<String>,
    /// What was done, e.g. `user.create`.
    pub action: String,
    /// `user`, `group`, `app` or `token`.
    pub target_kind: String,
    /// The changed object's ID.
    pub target_id: Option<String>,
    /// The object's name at the time.
    pub target_name: Option<String>,
    /// State before the change.
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    /// State after the change.
    #[schema(value_type = Option<Object>)]
    pub after: Option<serde_json::Value>,
}

impl From<AuditEvent> for AuditEventDto {
    fn from(e: AuditEvent) -> Self {
        AuditEventDto {
            seq: e.seq,
            id: e.id,
            at: e.at,
            actor: e.actor,
            actor_name: e.actor_name,
            action: e.action,
            target_kind: e.target_kind,
            target_id: e.target_id,
            target_name: e.target_name,
            before: e.before,
            after: e.after,
        }
    }
}

/// One page of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    /// Events, newest first.
    pub items: Vec<AuditEventDto>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<i64>,
}

/// Filters for the audit log.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only events by this actor.
    pub actor: Option<String>,
    /// Only events with this action (e.g. `user.create`).
    pub action: Option<String>,
    /// Only events about this object ID.
    pub target_id: Option<String>,
    /// Only events at or after this time (RFC 3339); the events then come newest first by
    /// their time (then `seq`), and `cursor` continues in that order.
    pub since: Option<String>,
    /// Only events before this time (RFC 3339); with `since`, a time range.
    pub until: Option<String>,
    /// Continue after this `seq` (from `next_cursor`).
    pub cursor: Option<i64>,
    /// Page size (1-500, default 50).
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/audit", operation_id = "audit_list", tag = "audit", params(AuditQuery),
    responses((status = 200, description = "OK", body = AuditPage), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody), (status = 422, description = "A field is invalid; `field` names it", body = ErrorBody)),
    security(("bearer" = [])))]
/// Lists audit events, newest first.
pub async fn list(
    State(state): State<ApiState>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<axum::Json<AuditPage>, ApiError> {
    let limit = page::limit(q.limit)?;
    let time = |field: &'static str, raw: Option<&str>| {
        raw.map(|s| {
            OffsetDateTime::parse(s, &Rfc3339).map_err(|e| {
                ApiError::invalid(field, format!("{s:?} is not an RFC 3339 time: {e}"))
            })
        })
        .transpose()
    };
    let since = time("since", q.since.as_deref())?;
    let until = time("until", q.until.as_deref())?;
    // One extra row tells whether another page exists without a second query.
    let filter = AuditFilter {
        actor: q.actor,
        action: q.action,
        target_id: q.target_id,
        user_id: None,
        since,
        until,
        before_seq: q.cursor,
        limit: Some(limit.saturating_add(1)),
    };
    let mut events = state.store.audit().list(&filter).await?;
    let more = events.len() > limit as usize;
    events.truncate(limit as usize);
    let next_cursor = if more {
        events.last().map(|e| e.seq)
    } else {
        None
    };
    Ok(axum::Json(AuditPage {
        items: events.into_iter().map(AuditEventDto::from).collect(),
        next_cursor,
    }))
}
