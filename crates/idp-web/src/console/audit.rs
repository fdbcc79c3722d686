//! `/admin/audit`: the log with filters (user, application, event, a range of days), one event, and
//! an export (CSV or JSON, bounded). People are shown by the name recorded with each line.

use crate::extract::PathSegment;
use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;

use super::forms::FieldError;
use super::{Nav, Refusal, admit};
use crate::extract::SessionCookie;
use crate::html::render;
use crate::{WebError, WebState};
use latchkey_idp::audit::{AuditEvent, AuditFilter};
use latchkey_idp::console::Permission;

/// Events per page.
const PAGE: u32 = 100;
/// The most events one export holds.
const EXPORT_LIMIT: u32 = 10_000;

/// The filters, as typed (kept to fill the form again).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Filters {
    #[serde(default)]
    user: String,
    #[serde(default)]
    app: String,
    #[serde(default)]
    event: String,
    #[serde(default)]
    since: String,
    /// The last day shown (inclusive).
    #[serde(default)]
    until: String,
    /// Page cursor: events with `seq` below this.
    before: Option<i64>,
    /// Export format: `csv` or `json`.
    format: Option<String>,
}

impl Filters {
    fn query(&self, extra: &str) -> String {
        let enc = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
        format!(
            "user={}&app={}&event={}&since={}&until={}{extra}",
            enc(&self.user),
            enc(&self.app),
            enc(&self.event),
            enc(&self.since),
            enc(&self.until)
        )
    }
}

/// One line as the page shows it.
struct Row {
    seq: i64,
    at: String,
    who: String,
    action: String,
    about: String,
}

fn row(e: &AuditEvent) -> Row {
    Row {
        seq: e.seq,
        at: e.at.format(&Rfc3339).unwrap_or_else(|_| e.at.to_string()),
        who: e.actor_name.clone().unwrap_or_else(|| e.actor.clone()),
        action: e.action.clone(),
        about: match &e.target_name {
            Some(name) => format!("{} {name}", e.target_kind),
            None => e.target_kind.clone(),
        },
    }
}

/// The store's filter for what was typed; a name that matches nothing is a field error.
async fn filter(
    state: &WebState,
    f: &Filters,
    limit: u32,
) -> Result<Result<AuditFilter, FieldError>, WebError> {
    let mut out = AuditFilter {
        limit: Some(limit),
        before_seq: f.before,
        ..AuditFilter::default()
    };
    let store = state.store();
    if !f.user.trim().is_empty() {
        match store.users().lookup(f.user.trim()).await {
            Ok(u) => out.user_id = Some(u.id.to_string()),
            Err(latchkey_idp::Error::UnknownUser { .. }) => {
                return Ok(Err(FieldError {
                    field: "user",
                    message: format!("no user {:?}", f.user.trim()),
                }));
            }
            Err(e) => return Err(e.into()),
        }
    }
    if !f.app.trim().is_empty() {
        match store.apps().lookup(f.app.trim()).await {
            Ok(a) => out.target_id = Some(a.id.to_string()),
            Err(latchkey_idp::Error::UnknownApplication { .. }) => {
                return Ok(Err(FieldError {
                    field: "app",
                    message: format!("no application {:?}", f.app.trim()),
                }));
            }
            Err(e) => return Err(e.into()),
        }
    }
    if !f.event.trim().is_empty() {
        out.action = Some(f.event.trim().to_owned());
    }
    let day = |field: &'static str, raw: &str| {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        time::Date::parse(raw.trim(), &format).map_err(|_| FieldError {
            field,
            message: "write the date as YYYY-MM-DD".into(),
        })
    };
    if !f.since.trim().is_empty() {
        match day("since", &f.since) {
            Ok(d) => out.since = Some(d.midnight().assume_utc()),
            Err(e) => return Ok(Err(e)),
        }
    }
    if !f.until.trim().is_empty() {
        // The whole day named: up to the next midnight.
        match day("until", &f.until).map(|d| d.next_day()) {
            Ok(Some(d)) => out.until = Some(d.midnight().assume_utc()),
            Ok(None) => {}
            Err(e) => return Ok(Err(e)),
        }
    }
    Ok(Ok(out))
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    title: &'static str,
    nav: Nav,
    f: Filters,
    events: Vec<Row>,
    next: Option<String>,
    csv_href: String,
    json_href: String,
    export_limit: u32,
    error: Option<FieldError>,
}

/// GET /admin/audit
pub(crate) async fn list(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    query: Result<Query<Filters>, QueryRejection>,
) -> Result<Response, Refusal> {
    let op = admit(&state, &cookie, &uri, Permission::ReadAudit).await?;
    let f = query.map(|Query(f)| f).unwrap_or_default();
    let (events, error, status) = match filter(&state, &f, PAGE).await? {
        Ok(filter) => (
            state.store().audit().list(&filter).await?,
            None,
            StatusCode::OK,
        ),
        Err(e) => (Vec::new(), Some(e), StatusCode::UNPROCESSABLE_ENTITY),
    };
    let next = (events.len() == PAGE as usize)
        .then(|| {
            events
                .last()
                .map(|e| format!("/admin/audit?{}", f.query(&format!("&before={}", e.seq))))
        })
        .flatten();
    let html = render(&AuditPage {
        title: "Audit log",
        nav: op.nav(),
        csv_href: format!("/admin/audit/export?{}", f.query("&format=csv")),
        json_href: format!("/admin/audit/export?{}", f.query("&format=json")),
        export_limit: EXPORT_LIMIT,
        events: events.iter().map(row).collect(),
        next,
        f,
        error,
    })?;
    Ok((status, html).into_response())
}

#[derive(Template)]
#[template(path = "console/event.html")]
struct EventPage {
    title: String,
    nav: Nav,
    row: Row,
    actor: String,
    id: String,
    before: Option<String>,
    after: Option<String>,
}

/// GET /admin/audit/{seq}
pub(crate) async fn show(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    PathSegment(seq): PathSegment,
) -> Result<Response, Refusal> {
    let op = admit(&state, &cookie, &uri, Permission::ReadAudit).await?;
    let seq: i64 = seq.parse().map_err(|_| WebError::NotFound)?;
    let found = state
        .store()
        .audit()
        .list(&AuditFilter {
            before_seq: seq.checked_add(1),
            limit: Some(1),
            ..AuditFilter::default()
        })
        .await?;
    let event = found
        .into_iter()
        .find(|e| e.seq == seq)
        .ok_or(WebError::NotFound)?;
    let pretty = |v: &Option<serde_json::Value>| {
        v.as_ref()
            .map(|v| serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()))
    };
    let html = render(&EventPage {
        title: format!("Event {}", event.action),
        nav: op.nav(),
        row: row(&event),
        actor: event.actor.clone(),
        id: event.id.to_string(),
        before: pretty(&event.before),
        after: pretty(&event.after),
    })?;
    Ok(html.into_response())
}

/// One CSV field, quoted when it holds a separator, a quote or a line break; a leading
/// `= + - @` is prefixed with `'` so a spreadsheet does not run it as a formula.
fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// GET /admin/audit/export?format=csv|json: the filtered events, newest first, at most
/// [`EXPORT_LIMIT`].
pub(crate) async fn export(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    query: Result<Query<Filters>, QueryRejection>,
) -> Result<Response, Refusal> {
    admit(&state, &cookie, &uri, Permission::ReadAudit).await?;
    let f = query.map(|Query(f)| f).unwrap_or_default();
    let filter = match filter(&state, &f, EXPORT_LIMIT).await? {
        Ok(filter) => filter,
        Err(e) => return Err(WebError::BadForm(format!("{}: {}", e.field, e.message)).into()),
    };
    let events = state.store().audit().list(&filter).await?;
    let (body, kind, name) = match f.format.as_deref() {
        Some("json") => {
            let shaped: Vec<crate::api::audit::AuditEventDto> =
                events.into_iter().map(Into::into).collect();
            let body = serde_json::to_string(&shaped)
                .map_err(|e| WebError::Internal(format!("audit export: {e}")))?;
            (body, "application/json", "audit.json")
        }
        Some("csv") | None => {
            let mut body =
                String::from("seq,at,actor_name,actor,action,target_kind,target_id,target_name\n");
            for e in &events {
                let at = e.at.format(&Rfc3339).unwrap_or_default();
                let fields = [
                    e.seq.to_string(),
                    at,
                    e.actor_name.clone().unwrap_or_default(),
                    e.actor.clone(),
                    e.action.clone(),
                    e.target_kind.clone(),
                    e.target_id.clone().unwrap_or_default(),
                    e.target_name.clone().unwrap_or_default(),
                ];
                let line: Vec<String> = fields.iter().map(|v| csv_field(v)).collect();
                body.push_str(&line.join(","));
                body.push('\n');
            }
            (body, "text/csv; charset=utf-8", "audit.csv")
        }
        Some(_) => return Err(WebError::BadForm("format is csv or json".into()).into()),
    };
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}
