//! axum helpers: the three SAML endpoints' responses, so an application's handlers stay a few
//! lines. The ACS itself is [`crate::acs::run`] on an `axum::Form<AcsForm>`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;

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

/// `GET /login`: starts a login and redirects the browser to the IdP (303, not cached).
pub async fn login_response(
    sp: &ServiceProvider,
    return_to: Option<&str>,
    now: OffsetDateTime,
) -> Result<Response, Error> {
    let redirect = sp.start_login(return_to, now).await?;
    let location = HeaderValue::from_str(&redirect.url).map_err(|_| {
        Error::Metadata(crate::MetadataError::NoRedirectEndpoint(
            "SSO URL is not a valid header value".to_owned(),
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
