//! `POST /api/v1/users/{user}/invitations`: a single-use link that lets the user set their
//! password (the API's `latchkey user invite`).

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::ApiState;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiPath, ApiQuery, Caller};
use latchkey_idp::Store;
use latchkey_idp::audit::Actor;
use latchkey_idp::enrollment::IssuedLink;
use latchkey_idp::ids::UserId;
use latchkey_idp::mail::{Mail, Mailer};

/// What became of the invitation's e-mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MailOutcome {
    /// The mail server took it (the CLI waits for this).
    Sent,
    /// Handed to the server's mail queue (the API does not wait for the mail server).
    Queued,
    /// Every attempt failed, or the queue was full: deliver `url` another way.
    Failed,
    /// No `[smtp]` is configured: deliver `url` yourself.
    NotConfigured,
}

/// An invitation just made. `url` is the only copy of the link anywhere (only its hash is
/// stored); it works once, until `expires_at`, and replaces the user's older invitations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InvitationDto {
    /// The invited user's ID.
    pub user_id: Uuid,
    /// Their username.
    pub username: String,
    /// Their e-mail address (where the link was mailed, if it was).
    pub email: String,
    /// The link: `<base_url>/invite/<token>`.
    pub url: String,
    /// When the link stops working (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// What became of the e-mail.
    pub mail: MailOutcome,
}

impl InvitationDto {
    /// The answer for `link`, made under `base_url`.
    pub fn new(link: &IssuedLink, base_url: &str, mail: MailOutcome) -> Self {
        InvitationDto {
            user_id: link.user.id.0,
            username: link.user.username.clone(),
            email: link.user.email.clone(),
            url: link.url(base_url),
            expires_at: link.expires_at,
            mail,
        }
    }
}

/// Query of `POST /users/{user}/invitations`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InvitationQuery {
    /// How long the link works, in hours (1 to 720); default `[enrollment] invitation_hours`.
    pub expires_hours: Option<u32>,
}

#[utoipa::path(post, path = "/api/v1/users/{user}/invitations", operation_id = "users_invite", tag = "users",
    params(("user" = String, Path, description = "ID, username or e-mail address"), InvitationQuery),
    responses((status = 201, description = "Created; the link is in `url` and nowhere else", body = InvitationDto),
        (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody), (status = 404, description = "No such object", body = ErrorBody),
        (status = 422, description = "A field is invalid; `field` names it", body = ErrorBody)),
    security(("bearer" = [])))]
/// Invites the user: a single-use link to set their password, mailed when `[smtp]` is
/// configured. Audited as `user.invited`.
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(user): ApiPath<String>,
    ApiQuery(query): ApiQuery<InvitationQuery>,
) -> Result<(StatusCode, axum::Json<InvitationDto>), ApiError> {
    let ttl = match query.expires_hours {
        Some(h) if (1..=720).contains(&h) => time::Duration::hours(i64::from(h)),
        Some(_) => return Err(ApiError::invalid("expires_hours", "must be 1-720")),
        None => state.enrollment.invitation_ttl(),
    };
    let id = state.store.users().lookup(&user).await?.id;
    let invitation = issue(
        &state.store,
        &caller.actor(),
        id,
        ttl,
        &state.base_url,
        &state.mailer,
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(invitation)))
}

/// Invites `user` for `ttl`: the link (only its hash is stored), handed to `mailer`'s queue
/// when `[smtp]` is configured (the request never waits for the mail server). The one way
/// the API and the console invite.
pub(crate) async fn issue(
    store: &Store,
    actor: &Actor,
    user: UserId,
    ttl: time::Duration,
    base_url: &str,
    mailer: &Mailer,
) -> Result<InvitationDto, latchkey_idp::Error> {
    let link = store.enrollment().invite(actor, user, ttl).await?;
    let url = link.url(base_url);
    let mail = if !mailer.configured() {
        MailOutcome::NotConfigured
    } else {
        match mailer.queue(Mail::for_link(&link, &url)) {
            Ok(()) => MailOutcome::Queued,
            Err(e) => {
                tracing::warn!(user = %link.user.username, error = %e, "invitation mail not queued");
                MailOutcome::Failed
            }
        }
    };
    Ok(InvitationDto::new(&link, base_url, mail))
}
