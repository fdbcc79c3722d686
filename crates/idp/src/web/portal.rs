//! The user portal: one tile per application the user may use, and IdP-initiated launch.
//!
//! The portal lists exactly what [`crate::apps::Apps::for_user`] returns (visible tiles
//! only); a tile launches `/saml/init/{app}`, which answers an unsolicited sign-in for the
//! app's default ACS exactly as an SP-initiated one is answered
//! ([`super::saml::answer_or_park`]), so the access policy and the session rules are
//! applied in one place.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::html::{escape, page};
use super::{WebError, WebState, cookies};
use crate::error::Error;
use crate::ids::AppId;
use crate::sso::PendingRequest;
use crate::sso::request::default_acs;

/// GET /portal
pub async fn portal(
    State(state): State<WebState>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let Some(session) = state.session(&headers).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let apps = state.store().apps().for_user(&session.user).await?;
    let mut body = format!(
        "<p>Signed in as <strong>{}</strong> ({}).</p>\n",
        escape(&session.user.shown_name()),
        escape(&session.user.username)
    );
    let visible: Vec<_> = apps.iter().filter(|a| a.settings.tile.visible).collect();
    if visible.is_empty() {
        body.push_str("<p>No applications are assigned to you yet.</p>\n");
    } else {
        body.push_str("<ul class=\"tiles\">\n");
        for app in visible {
            body.push_str(&format!(
                "<li><a href=\"/saml/init/{}\">",
                escape(&app.id.to_string())
            ));
            if let Some(icon) = &app.settings.tile.icon_url {
                body.push_str(&format!("<img src=\"{}\" alt=\"\"> ", escape(icon)));
            }
            body.push_str(&format!("<strong>{}</strong>", escape(&app.settings.name)));
            if let Some(d) = &app.settings.tile.description {
                body.push_str(&format!("<br><span class=\"meta\">{}</span>", escape(d)));
            }
            body.push_str("</a></li>\n");
        }
        body.push_str("</ul>\n");
    }
    let (csrf, set_cookie) = cookies::csrf_token(state.settings(), &headers);
    body.push_str(&format!(
        "<form method=\"post\" action=\"/logout\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <button type=\"submit\">Sign out</button></form>",
        escape(&csrf)
    ));
    let mut response = Html(page("Your applications", &body)).into_response();
    if let Some(cookie) = set_cookie
        && let Ok(v) = axum::http::HeaderValue::from_str(&cookie)
    {
        response
            .headers_mut()
            .append(axum::http::header::SET_COOKIE, v);
    }
    Ok(response)
}

/// GET /saml/init/{app}
pub async fn launch(
    State(state): State<WebState>,
    headers: HeaderMap,
    app: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response, WebError> {
    let Ok(Path(app)) = app else {
        return Err(WebError::NotFound);
    };
    let id: AppId = app.parse().map_err(|_| WebError::NotFound)?;
    let app = match state.store().apps().get(id).await {
        Ok(app) => app,
        Err(Error::UnknownApplication { .. }) => return Err(WebError::NotFound),
        Err(e) => return Err(e.into()),
    };
    let pending = PendingRequest {
        app_id: app.id,
        request_id: None,
        acs_url: default_acs(&app)?,
        relay_state: app.settings.tile.default_relay_state.clone(),
        force_authn: false,
        is_passive: false,
    };
    super::saml::answer_or_park(&state, &headers, &app, pending).await
}
