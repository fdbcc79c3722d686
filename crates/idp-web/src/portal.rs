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
//! The portal itself needs what `[mfa] required` and the user's and groups' rules ask: a
//! session short of them is sent to `/login/mfa` first; a launch is gated like any SSO.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::extract::{ClientAddress, CsrfForm, CsrfOnly, CsrfToken, SessionCookie};
use super::html::render;
use super::pages::{ConfirmLaunchPage, PortalPage, Tile};
use super::{WebError, WebState, mfa};
use latchkey_idp::apps::{AppKey, AppRead, Application, SignInApp};
use latchkey_idp::ids::AppId;
use latchkey_idp::session::{Session, Sessions};
use latchkey_idp::sso::PendingRequest;
use latchkey_idp::sso::request::default_acs;

/// More applications than this and the portal offers a search box.
pub const SEARCH_FROM: usize = 12;
/// The longest search text read (longer is cut).
const MAX_QUERY: usize = 100;

/// `?q=` on the portal.
#[derive(Debug, Deserialize)]
pub struct PortalQuery {
    q: Option<String>,
}

/// GET /portal
pub async fn portal(
    State(state): State<WebState>,
    cookie: SessionCookie,
    csrf: CsrfToken,
    query: Result<Query<PortalQuery>, QueryRejection>,
) -> Result<Response, WebError> {
    let Some(session) = cookie.resume(&state).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    if let Some(step_up) = short_of_second_factor(&state, &session, "portal").await? {
        return Ok(step_up);
    }
    let apps = state.store().apps().for_user(&session.user).await?;
    let used = Sessions::new(state.store()).apps(&session).await?;
    let visible: Vec<&Application> = apps.iter().filter(|a| a.settings.tile.visible).collect();
    let searchable = visible.len() > SEARCH_FROM;
    let query: String = query
        .ok()
        .and_then(|Query(q)| q.q)
        .unwrap_or_default()
        .trim()
        .chars()
        .take(MAX_QUERY)
        .collect();
    let query = if searchable { query } else { String::new() };
    let recent: Vec<AppId> = used.iter().rev().map(|u| u.app).collect();
    let tiles = arrange(visible, &recent, &query)
        .into_iter()
        .map(tile)
        .collect();
    let html = render(&PortalPage {
        title: "Your applications",
        shown_name: &session.user.shown_name(),
        username: &session.user.username,
        searchable,
        query: &query,
        tiles,
        csrf: csrf.value(),
    })?;
    Ok((csrf, html).into_response())
}

/// The gate of the IdP's own pages (the portal, the account page; `then` names the page to
/// come back to): [`mfa::own_page_satisfied`] with no rule of the page's own. A session short
/// of it gets the redirect to step up (or enrol) first, and sees and changes nothing.
pub(crate) async fn short_of_second_factor(
    state: &WebState,
    session: &Session,
    then: &'static str,
) -> Result<Option<Response>, WebError> {
    if mfa::own_page_satisfied(state, session, false, then).await? {
        return Ok(None);
    }
    Ok(Some(
        Redirect::to(&format!("/login/mfa?then={then}")).into_response(),
    ))
}

/// The tiles to show, in order: those matching `query` (in the name or the description,
/// ignoring case; all when empty), the recently used first (most recent first, `recent` is
/// newest first), then the rest by name.
fn arrange<'a>(apps: Vec<&'a Application>, recent: &[AppId], query: &str) -> Vec<&'a Application> {
    let needle = query.to_lowercase();
    let mut shown: Vec<&Application> = apps
        .into_iter()
        .filter(|a| {
            needle.is_empty()
                || a.settings.name.to_lowercase().contains(&needle)
                || a.settings
                    .tile
                    .description
                    .as_deref()
                    .is_some_and(|d| d.to_lowercase().contains(&needle))
        })
        .collect();
    shown.sort_by_cached_key(|a| {
        let rank = recent
            .iter()
            .position(|id| *id == a.id)
            .unwrap_or(usize::MAX);
        (rank, a.settings.name.to_lowercase())
    });
    shown
}

/// The number of monogram colours in the stylesheet (`.hue-0` to `.hue-11`).
const HUES: u32 = 12;

fn tile(app: &Application) -> Tile {
    let name = &app.settings.name;
    let monogram = name
        .chars()
        .find(|c| c.is_alphanumeric())
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_else(|| "?".to_owned());
    // A stable colour per name (FNV-1a), so an app keeps its colour across pages and nodes.
    let hash = name.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    Tile {
        href: tile_target(app),
        name: name.clone(),
        description: app.settings.tile.description.clone(),
        icon: app.settings.tile.icon_url.clone(),
        monogram,
        hue: u8::try_from(hash % HUES).unwrap_or(0),
    }
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

/// The application a launch path names, as `read` says.
async fn launched_app(state: &WebState, app: &str, read: AppRead) -> Result<SignInApp, WebError> {
    // The internal ID, or the app's slug (which never reads as an ID).
    let key = match app.parse::<AppId>() {
        Ok(id) => AppKey::Id(id),
        Err(_) if app.len() > latchkey_idp::apps::MAX_SLUG => return Err(WebError::NotFound),
        Err(_) => AppKey::Slug(app),
    };
    state
        .store()
        .apps()
        .for_sign_in(key, read)
        .await?
        .ok_or(WebError::NotFound)
}

/// GET /saml/init/{app}
///
/// # Security
/// Issued at once only when the click came from our own pages (the portal) or from the
/// user, or when the application opted out (`launch_without_confirmation`). A link on
/// another site gets a confirmation page instead: otherwise any site could sign a visitor
/// with a live session into an application of its choosing (login CSRF). Browsers that
/// send no `Sec-Fetch-Site` get the confirmation too; it costs them one click.
///
/// The application is this node's copy first; whatever is answered from it is confirmed
/// as current first, else decided again on the application read from the database.
pub async fn launch(
    State(state): State<WebState>,
    headers: HeaderMap,
    cookie: SessionCookie,
    client: ClientAddress,
    csrf: CsrfToken,
    app: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response, WebError> {
    let Ok(Path(app)) = app else {
        return Err(WebError::NotFound);
    };
    for read in [AppRead::Cached, AppRead::Fresh] {
        let found = launched_app(&state, &app, read).await?;
        if !found.app.settings.launch_without_confirmation && !from_our_pages(&headers) {
            if !state.store().apps().confirm_now(found.unconfirmed).await? {
                continue;
            }
            return confirmation(csrf, &found.app);
        }
        if let Some(answer) = issue(&state, &cookie, &client, &found).await? {
            return Ok(answer);
        }
    }
    Err(super::saml::stale_twice())
}

/// POST /saml/init/{app}: the confirmation page's form (our own CSRF token).
pub async fn launch_confirmed(
    State(state): State<WebState>,
    cookie: SessionCookie,
    client: ClientAddress,
    app: Result<Path<String>, axum::extract::rejection::PathRejection>,
    CsrfForm(_): CsrfForm<CsrfOnly>,
) -> Result<Response, WebError> {
    let Ok(Path(app)) = app else {
        return Err(WebError::NotFound);
    };
    for read in [AppRead::Cached, AppRead::Fresh] {
        let found = launched_app(&state, &app, read).await?;
        if let Some(answer) = issue(&state, &cookie, &client, &found).await? {
            return Ok(answer);
        }
    }
    Err(super::saml::stale_twice())
}

/// "Continue to <app>?", with a form that posts back here and a way out.
fn confirmation(csrf: CsrfToken, app: &Application) -> Result<Response, WebError> {
    let html = render(&ConfirmLaunchPage {
        title: "Continue?",
        app_name: &app.settings.name,
        app_id: app.id.to_string(),
        csrf: csrf.value(),
    })?;
    Ok((csrf, html).into_response())
}

/// Answers an unsolicited sign-in for the app's default ACS (`None`: `found` was a stale
/// copy, nothing answered).
async fn issue(
    state: &WebState,
    cookie: &SessionCookie,
    client: &ClientAddress,
    found: &SignInApp,
) -> Result<Option<Response>, WebError> {
    let app = &*found.app;
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
        requested_authn_context: None,
    };
    super::saml::answer_or_park(state, cookie, client, app, found.unconfirmed, pending, None).await
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
