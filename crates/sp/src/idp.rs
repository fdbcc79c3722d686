//! What the SP trusts about its IdP, read from the IdP's metadata.
//!
//! # Security
//! Every signing certificate the metadata lists is trusted, so an IdP can publish its next key
//! ahead of a rollover and sign with either: logins keep working across the switch. The
//! metadata itself is trusted because of where it came from (a file the administrator placed,
//! or a URL they configured); keys inside a SAML message are never used.

use latchkey_saml::authn_request::binding_uri;
use latchkey_saml::metadata::{EntityDescriptor, MetadataOptions, parse_metadata};
use latchkey_xmlsec::crypto::VerifyingKey;
use time::{Duration, OffsetDateTime};

use crate::error::MetadataError;

/// The IdP as the SP knows it.
#[derive(Debug, Clone)]
pub struct IdpTrust {
    /// The IdP's entity ID: the Issuer its responses must carry.
    pub entity_id: String,
    /// Its SingleSignOnService URL for the HTTP-Redirect binding.
    pub sso_url: String,
    /// Its SingleLogoutService URL for the HTTP-Redirect binding, if it has one: where our
    /// LogoutRequests and LogoutResponses go.
    pub slo_url: Option<String>,
    /// Every signing key it publishes.
    pub keys: Vec<VerifyingKey>,
    /// The IdP asks for signed AuthnRequests.
    pub want_authn_requests_signed: bool,
    /// How long the metadata may be cached (the refresh interval).
    pub cache_duration: Option<Duration>,
    /// After this the metadata must not be used.
    pub valid_until: Option<OffsetDateTime>,
}

impl IdpTrust {
    /// Reads the IdP from a metadata document. `entity_id` picks one IdP out of an aggregate;
    /// without it the document must hold exactly one IdP. Expired metadata is refused.
    pub fn from_metadata(
        xml: &str,
        entity_id: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Self, MetadataError> {
        let options = MetadataOptions {
            now: Some(now),
            ..MetadataOptions::default()
        };
        let metadata = parse_metadata(xml, &options).map_err(MetadataError::Parse)?;
        let idps: Vec<&EntityDescriptor> = metadata
            .entities()
            .iter()
            .filter(|e| e.idp.is_some())
            .filter(|e| entity_id.is_none_or(|want| e.entity_id == want))
            .collect();
        let [entity] = idps.as_slice() else {
            return Err(MetadataError::NoIdp(match entity_id {
                Some(id) => format!("`{id}`"),
                None => format!("(found {} IdPs; set idp.entity_id)", idps.len()),
            }));
        };
        Self::from_entity(entity)
    }

    /// Reads the IdP from an already parsed EntityDescriptor.
    pub fn from_entity(entity: &EntityDescriptor) -> Result<Self, MetadataError> {
        let Some(idp) = &entity.idp else {
            return Err(MetadataError::NoIdp(format!("`{}`", entity.entity_id)));
        };
        let keys = entity.idp_signing_keys();
        if keys.is_empty() {
            return Err(MetadataError::NoSigningKey(entity.entity_id.clone()));
        }
        let sso_url = idp
            .sso_services
            .iter()
            .find(|e| e.binding == binding_uri::HTTP_REDIRECT)
            .map(|e| e.location.clone())
            .ok_or_else(|| MetadataError::NoRedirectEndpoint(entity.entity_id.clone()))?;
        let slo_url = idp
            .slo_services
            .iter()
            .find(|e| e.binding == binding_uri::HTTP_REDIRECT)
            .map(|e| e.location.clone());
        Ok(Self {
            entity_id: entity.entity_id.clone(),
            sso_url,
            slo_url,
            keys,
            want_authn_requests_signed: idp.want_authn_requests_signed,
            cache_duration: entity.cache_duration,
            valid_until: entity.valid_until,
        })
    }

    /// When to fetch the metadata again: its cacheDuration, else `fallback`, kept between one
    /// minute (a tiny cacheDuration must not turn into a fetch loop) and one day.
    pub fn refresh_interval(&self, fallback: Duration) -> Duration {
        self.cache_duration
            .unwrap_or(fallback)
            .clamp(Duration::minutes(1), Duration::days(1))
    }

    /// When to fetch the metadata again, seen at `now`: [`Self::refresh_interval`], or
    /// sooner if the copy expires (`validUntil`) before then, since an expired copy is no
    /// longer used (still at least a minute apart).
    pub fn next_refresh(&self, fallback: Duration, now: OffsetDateTime) -> Duration {
        let interval = self.refresh_interval(fallback);
        match self.valid_until {
            Some(until) => interval.min((until - now).max(Duration::minutes(1))),
            None => interval,
        }
    }

    /// Whether this copy of the metadata may still be used at `now`.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        self.valid_until.is_some_and(|until| until <= now)
    }
}

/// Reads the IdP from the metadata source the settings name, when it is a file. A URL needs
/// the `fetch` feature (`fetch::load_idp`), which reads both.
pub fn load_from_file(
    config: &crate::settings::SpConfig,
    now: OffsetDateTime,
) -> Result<IdpTrust, crate::Error> {
    match config.metadata_source()? {
        crate::settings::MetadataSource::File(path) => {
            let xml = crate::settings::read_text(&path)?;
            Ok(IdpTrust::from_metadata(
                &xml,
                config.idp.entity_id.as_deref(),
                now,
            )?)
        }
        crate::settings::MetadataSource::Url(_) => Err(crate::SettingsError::FetchDisabled.into()),
    }
}
