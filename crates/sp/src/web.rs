//! axum helpers: the SAML endpoints' responses, so an application's handlers stay a few
//! lines. The ACS itself is [`crate::acs::run`] on an `axum::Form<AcsForm>` and the
//! request's [`BrowserBinding::from_headers`]; the
//! SingleLogoutService is [`ServiceProvider::receive_logout`] on the raw query (GET) or an
//! `axum::Form<SloForm>` (POST), answered with [`see_other`].
//!
//! [`SloForm`]: crate::logout::SloForm

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;

use crate::binding::BrowserBinding;
use crate::error::Error;
use crate::provider::ServiceProvider;

/// `GET /saml/metadata`: our metadata as `application/samlmetadata+xml`.
pub fn metadata_response(sp: &ServiceProvider) -> Result<Response, Error> {
    let xml = sp.metadata_xml()?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/samlmetadata+xml"),
        )],
        xml,
    )
        .into_response())
}

/// `GET /login`: starts a login for the browser at `client` (its address, counted per
/// network: see [`ServiceProvider::start_login_from`]) whose request carried `headers`, and
/// redirects it to the IdP (303, not cached) with its login binding cookie
/// ([`crate::binding`]: the one it presented, or a fresh one), which the ACS will ask for.
pub async fn login_response(
    sp: &ServiceProvider,
    client: Option<&str>,
    headers: &HeaderMap,
    return_to: Option<&str>,
    now: OffsetDateTime,
) -> Result<Response, Error> {
    let browser = BrowserBinding::from_headers(headers);
    let redirect = sp
        .start_login_from(client, &browser, return_to, now)
        .await?;
    let not_a_header = |what: &str| {
        Error::Metadata(crate::MetadataError::NoRedirectEndpoint(format!(
            "{what} is not a valid header value"
        )))
    };
    let cookie =
        HeaderValue::from_str(&redirect.set_cookie).map_err(|_| not_a_header("the cookie"))?;
    let mut response = see_other(&redirect.url).map_err(|_| not_a_header("SSO URL"))?;
    response.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(response)
}

/// A 303 to `url`, not cached: the hop to the IdP with a logout message, or back to it
/// with our LogoutResponse.
///
/// Answering a form POST (a "Sign out" button) this way can be blocked: browsers apply the
/// form page's CSP `form-action` to the redirects that follow the POST, so a page that
/// allows only `'self'` must send the browser on with a meta-refresh page instead.
pub fn see_other(url: &str) -> Result<Response, Error> {
    let location = HeaderValue::from_str(url).map_err(|_| {
        Error::Logout(crate::LogoutError::UnexpectedMessage(
            "a URL that is not a valid Location header",
        ))
    })?;
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response())
}
