//! The user portal: one tile per application the user may use, and IdP-initiated launch.
//!
//! The portal lists exactly what [`latchkey_idp::apps::Apps::for_user`] returns (visible tiles
//! only). A tile whose application has a login URL of its own links there: the application
//! then starts an SP-initiated sign-in, which SPs prefer (the Response answers a request
//! they made). Any other tile launches `/saml/init/{app}`, which answers an unsolicited
//! sign-in for the app's default ACS exactly as an SP-initiated one is answered
//! ([`super::saml::answer_or_park`]), so the access policy and the session rules are
//! applied in one place. `/saml/init/{app}` works for every application, login URL or not
//! (admins and bookmarks use it); from another site's link it asks first ([`launch`]).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::html::{escape, page};
use super::{WebError, WebState, cookies};
use latchkey_idp::apps::Application;
use latchkey_idp::error::Error;
use latchkey_idp::ids::AppId;
use latchkey_idp::sso::PendingRequest;
use latchkey_idp::sso::request::default_acs;

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
            body.push_str(&format!("<li><a href=\"{}\">", escape(&tile_target(app))));
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

/// Where a tile sends the browser: the application's login URL, or IdP-initiated launch.
///
/// # Security
/// The login URL was checked when it was stored; it is checked again here so that a row
/// changed behind the registry's back (a hand-edited database, an old restore) still never
/// puts a `javascript:` or `data:` URL in front of every assigned user: such a tile falls
/// back to `/saml/init/{app}`.
fn tile_target(app: &Application) -> String {
    app.settings
        .tile
        .login_url
        .as_deref()
        .and_then(|url| latchkey_idp::apps::login_url(url).ok())
        .unwrap_or_else(|| match app.settings.slug.as_str() {
            "" => format!("/saml/init/{}", app.id),
            slug => format!("/saml/init/{slug}"),
        })
}

/// Whether the browser says this request came from our own pages or from the user
/// (typed, bookmarked): `Sec-Fetch-Site`, which browsers set and pages cannot forge.
fn from_our_pages(headers: &HeaderMap) -> bool {
    matches!(
        headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()),
        Some("same-origin" | "none")
    )
}

/// The application a launch path names.
async fn launched_app(
    state: &WebState,
    app: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Application, WebError> {
    let Ok(Path(app)) = app else {
        return Err(WebError::NotFound);
    };
    // The internal ID, or the app's slug (which never reads as an ID).
    let Ok(id) = app.parse::<AppId>() else {
        if app.len() > latchkey_idp::apps::MAX_SLUG {
            return Err(WebError::NotFound);
        }
        return match state.store().apps().find_by_slug(&app).await? {
            Some(app) => Ok(app),
            None => Err(WebError::NotFound),
        };
    };
    match state.store().apps().get(id).await {
        Ok(app) => Ok(app),
        Err(Error::UnknownApplication { .. }) => Err(WebError::NotFound),
        Err(e) => Err(e.into()),
    }
}

/// GET /saml/init/{app}
///
/// # Security
/// Issued at once only when the click came from our own pages (the portal) or from the
/// user, or when the application opted out (`launch_without_confirmation`). A link on
/// another site gets a confirmation page instead: otherwise any site could sign a visitor
/// with a live session into an application of its choosing (login CSRF). Browsers that
/// send no `Sec-Fetch-Site` get the confirmation too; it costs them one click.
pub async fn launch(
    State(state): State<WebState>,
    headers: HeaderMap,
    app: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response, WebError> {
    let app = launched_app(&state, app).await?;
    if !app.settings.launch_without_confirmation && !from_our_pages(&headers) {
        return Ok(confirmation(&state, &headers, &app));
    }
    issue(&state, &headers, &app).await
}

/// POST /saml/init/{app}: the confirmation page's form (our own CSRF token).
pub async fn launch_confirmed(
    State(state): State<WebState>,
    headers: HeaderMap,
    app: Result<Path<String>, axum::extract::rejection::PathRejection>,
    form: Result<axum::Form<super::login::CsrfForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, WebError> {
    let axum::Form(form) = form.map_err(|e| WebError::BadForm(e.body_text()))?;
    if !cookies::csrf_ok(state.settings(), &headers, form.csrf.as_deref()) {
        return Err(WebError::Csrf);
    }
    let app = launched_app(&state, app).await?;
    issue(&state, &headers, &app).await
}

/// "Continue to <app>?", with a form that posts back here and a way out.
fn confirmation(state: &WebState, headers: &HeaderMap, app: &Application) -> Response {
    let (csrf, set_cookie) = cookies::csrf_token(state.settings(), headers);
    let body = format!(
        "<p>A link asked to sign you in to <strong>{name}</strong>. Continue only if you \
         meant to open it.</p>\n\
         <form method=\"post\" action=\"/saml/init/{id}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button type=\"submit\">Continue to {name}</button></form>\n\
         <p><a href=\"/portal\">Back to your applications</a></p>",
        name = escape(&app.settings.name),
        id = app.id,
        csrf = escape(&csrf),
    );
    let mut response = Html(page("Continue?", &body)).into_response();
    if let Some(cookie) = set_cookie
        && let Ok(v) = axum::http::HeaderValue::from_str(&cookie)
    {
        response
            .headers_mut()
            .append(axum::http::header::SET_COOKIE, v);
    }
    response
}

/// Answers an unsolicited sign-in for the app's default ACS.
async fn issue(
    state: &WebState,
    headers: &HeaderMap,
    app: &Application,
) -> Result<Response, WebError> {
    let pending = PendingRequest {
        app_id: app.id,
        request_id: None,
        acs_url: default_acs(app)?,
        relay_state: app.settings.tile.default_relay_state.clone(),
        force_authn: false,
        is_passive: false,
        name_id_format: None,
        allow_create: None,
        subject: None,
    };
    super::saml::answer_or_park(state, headers, app, pending).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_idp::apps::NewApplication;

    fn app_with(login_url: Option<&str>) -> Application {
        let mut settings = NewApplication::new(
            "https://sp.example.org",
            "Wiki",
            "https://sp.example.org/acs",
        );
        settings.tile.login_url = login_url.map(str::to_owned);
        let now = time::macros::datetime!(2026-01-01 00:00 UTC);
        Application {
            id: AppId::new_random(),
            settings,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn a_tile_goes_to_its_login_url_or_to_idp_initiated_launch() {
        let app = app_with(Some("https://sp.example.org/login"));
        assert_eq!(tile_target(&app), "https://sp.example.org/login");
        let app = app_with(None);
        assert_eq!(tile_target(&app), format!("/saml/init/{}", app.id));
    }

    /// A row written behind the registry's back never becomes a script or off-rule link.
    #[test]
    fn a_stored_login_url_the_rules_refuse_falls_back_to_idp_initiated_launch() {
        for bad in [
            "javascript:alert(document.cookie)",
            "data:text/html,<script>alert(1)</script>",
            "//evil.example/login",
            "http://evil.example/login",
            "https://user:pw@sp.example.org/login",
            "",
        ] {
            let app = app_with(Some(bad));
            assert_eq!(
                tile_target(&app),
                format!("/saml/init/{}", app.id),
                "{bad:?}"
            );
        }
    }
}
