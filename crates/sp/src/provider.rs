//! The service provider: settings, the trusted IdP, outstanding requests, and the three
//! operations an application exposes (metadata, login start, ACS). Single logout is in
//! [`crate::logout`].

use std::sync::{Arc, RwLock};

use latchkey_saml::authn_request::{AuthnRequest, NameIdPolicy, binding_uri};
use latchkey_saml::binding::{BindingLimits, MessageKind, post, redirect};
use latchkey_saml::inbound::SignaturePolicy;
use latchkey_saml::metadata::{
    Endpoint, EntityDescriptor, IndexedEndpoint, KeyDescriptor, SpSsoDescriptor,
};
use latchkey_saml::profile::{AuthenticatedSubject, SpSettings, validate_response};
use latchkey_xmlsec::crypto::{DigestAlgorithm, SignatureAlgorithm};
use time::{Duration, OffsetDateTime};

use crate::acs::VerifiedResponse;
use crate::binding::{BindingCookie, BrowserBinding, BrowserKey};
use crate::error::{Error, MetadataError};
use crate::idp::IdpTrust;
use crate::login::{LoginRedirect, PendingRequest, PendingRequests, PendingStore, local_path};
use crate::settings::{SpConfig, SpDecryption, SpKey};

/// How many logins may be outstanding at once.
const PENDING_CAPACITY: usize = 10_000;

/// One SP. Cheap to clone (shared state); safe to use from many requests at once.
#[derive(Debug, Clone)]
pub struct ServiceProvider {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    entity_id: String,
    acs_url: String,
    slo_url: Option<String>,
    clock_skew: Duration,
    signature_algorithms: Vec<SignatureAlgorithm>,
    digest_algorithms: Vec<DigestAlgorithm>,
    allow_idp_initiated: bool,
    request_lifetime: Duration,
    name_id_format: Option<String>,
    key: Option<SpKey>,
    decryption: Option<SpDecryption>,
    idp: RwLock<Arc<IdpTrust>>,
    /// How the metadata refreshes went ([`ServiceProvider::metadata_status`]).
    refreshes: crate::health::RefreshLog,
    /// Fetches the IdP metadata again when a signature fails (metadata from a URL only).
    #[cfg(feature = "fetch")]
    refetch: Option<crate::fetch::Refetch>,
    pending: PendingStore,
    /// The cookie binding a login to the browser that started it.
    binding: BindingCookie,
    limits: BindingLimits,
    /// Refused anonymous messages audited this minute ([`crate::refusals`]).
    refusals: crate::refusals::AuditBudget,
}

/// The form fields the IdP posts to the ACS (HTTP-POST binding).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct AcsForm {
    /// The base64 Response.
    #[serde(rename = "SAMLResponse")]
    pub saml_response: String,
    /// The RelayState we sent (or the IdP's own, for IdP-initiated login).
    #[serde(rename = "RelayState", default)]
    pub relay_state: Option<String>,
}

impl ServiceProvider {
    /// An SP from checked settings, its key (see [`SpConfig::load_key`]) and its IdP, keeping
    /// outstanding requests in memory. The decryption keys named in `[encryption]`, if any,
    /// are read here (see [`SpConfig::load_decryption`]).
    pub fn new(config: &SpConfig, key: Option<SpKey>, idp: IdpTrust) -> Result<Self, Error> {
        let pending = PendingStore::Memory(PendingRequests::new(PENDING_CAPACITY));
        Self::with_pending_store(config, key, idp, pending)
    }

    /// The same, keeping outstanding requests in the SP database: for several app nodes behind
    /// one name, or logins that must survive a restart.
    pub fn with_database(
        config: &SpConfig,
        key: Option<SpKey>,
        idp: IdpTrust,
        db: crate::store::Database,
    ) -> Result<Self, Error> {
        let pending =
            PendingStore::Sql(crate::login::SqlPendingRequests::new(db, PENDING_CAPACITY));
        Self::with_pending_store(config, key, idp, pending)
    }

    fn with_pending_store(
        config: &SpConfig,
        key: Option<SpKey>,
        idp: IdpTrust,
        pending: PendingStore,
    ) -> Result<Self, Error> {
        config.check()?;
        Ok(Self {
            inner: Arc::new(Inner {
                entity_id: config.entity_id.clone(),
                acs_url: config.acs_url.clone(),
                slo_url: config.slo_url.clone(),
                clock_skew: config.clock_skew(),
                signature_algorithms: config.signature_algorithms()?,
                digest_algorithms: config.digest_algorithms()?,
                allow_idp_initiated: config.allow_idp_initiated,
                request_lifetime: config.request_lifetime(),
                name_id_format: config.name_id_format.clone(),
                key,
                decryption: config.load_decryption()?,
                idp: RwLock::new(Arc::new(idp)),
                refreshes: crate::health::RefreshLog::default(),
                #[cfg(feature = "fetch")]
                refetch: crate::fetch::Refetch::for_config(config),
                pending,
                binding: BindingCookie::for_acs(
                    &config.acs_url,
                    config.request_lifetime().whole_seconds(),
                ),
                limits: BindingLimits::default(),
                refusals: crate::refusals::AuditBudget::default(),
            }),
        })
    }

    /// How many refused messages this SP still audits this minute.
    pub(crate) fn refusals(&self) -> &crate::refusals::AuditBudget {
        &self.inner.refusals
    }

    /// Our entity ID.
    pub fn entity_id(&self) -> &str {
        &self.inner.entity_id
    }

    /// Our ACS URL.
    pub fn acs_url(&self) -> &str {
        &self.inner.acs_url
    }

    /// Our SingleLogoutService URL, when single logout is configured.
    pub fn slo_url(&self) -> Option<&str> {
        self.inner.slo_url.as_deref()
    }

    /// Our key, which signs logout messages (whatever `sign_requests` says: the profile
    /// requires them signed).
    pub(crate) fn key(&self) -> Option<&SpKey> {
        self.inner.key.as_ref()
    }

    pub(crate) fn clock_skew(&self) -> Duration {
        self.inner.clock_skew
    }

    /// The configured allow-list, which every signature from the IdP is held to: on the
    /// ACS and on logout messages alike.
    pub(crate) fn signature_policy(&self) -> SignaturePolicy {
        SignaturePolicy {
            signature_algorithms: self.inner.signature_algorithms.clone(),
            digest_algorithms: self.inner.digest_algorithms.clone(),
            allow_rsa_1024: false,
        }
    }

    pub(crate) fn request_lifetime(&self) -> Duration {
        self.inner.request_lifetime
    }

    pub(crate) fn limits(&self) -> &BindingLimits {
        &self.inner.limits
    }

    /// The IdP as currently trusted.
    pub fn idp(&self) -> Arc<IdpTrust> {
        Arc::clone(&self.read_idp())
    }

    /// Replaces the trusted IdP (after a metadata refresh). Logins in flight keep the keys
    /// they started verifying with; the next one uses the new set.
    pub fn set_idp(&self, idp: IdpTrust) {
        self.replace_idp(Arc::new(idp));
    }

    /// Whether the IdP metadata still lets anyone log in, at `now`: for a health check (a
    /// `/readyz` answering 503 unless [`crate::health::MetadataStatus::can_log_in`]). Failed
    /// refreshes ([`crate::fetch::refresh_once`], and the fetches after a failed signature)
    /// make it [`crate::health::Verdict::Degraded`] until one succeeds; a trusted copy past
    /// its `validUntil`, [`crate::health::Verdict::CannotLogIn`].
    pub fn metadata_status(&self, now: OffsetDateTime) -> crate::health::MetadataStatus {
        self.inner.refreshes.status(&self.read_idp(), now)
    }

    /// Records a metadata refresh that succeeded at `at` (see [`Self::metadata_status`]).
    pub fn refresh_succeeded(&self, at: OffsetDateTime) {
        self.inner.refreshes.succeeded(at);
    }

    /// Records a metadata refresh that failed at `at` (see [`Self::metadata_status`]).
    pub fn refresh_failed(&self, at: OffsetDateTime, error: &dyn std::fmt::Display) {
        self.inner.refreshes.failed(at, error);
    }

    fn replace_idp(&self, idp: Arc<IdpTrust>) {
        let mut guard = self
            .inner
            .idp
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *guard = idp;
    }

    fn read_idp(&self) -> Arc<IdpTrust> {
        // Replacing an Arc cannot be left half-done, so a poisoned lock is still consistent.
        Arc::clone(
            &self
                .inner
                .idp
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// The outstanding requests (for tests and monitoring).
    pub fn pending(&self) -> &PendingStore {
        &self.inner.pending
    }

    /// The profile settings the ACS validates with: our IDs, the IdP's current keys and the
    /// configured algorithm allow-list, skew and unsolicited policy.
    pub fn profile_settings(&self) -> SpSettings {
        self.settings_for(&self.read_idp())
    }

    fn settings_for(&self, idp: &IdpTrust) -> SpSettings {
        let mut s = SpSettings::new(
            &self.inner.entity_id,
            &self.inner.acs_url,
            &idp.entity_id,
            idp.keys.clone(),
        );
        s.signature_algorithms = self.inner.signature_algorithms.clone();
        s.digest_algorithms = self.inner.digest_algorithms.clone();
        s.clock_skew = self.inner.clock_skew;
        s.allow_unsolicited = self.inner.allow_idp_initiated;
        if let Some(d) = &self.inner.decryption {
            s.decryption_keys = d.keys.clone();
            s.decrypt_options = d.options.clone();
        }
        s
    }

    /// Our metadata: entity ID, the POST ACS, the SingleLogoutService (Redirect and POST)
    /// when configured, our signing certificate when we have a key,
    /// and our encryption certificate when we accept encrypted assertions (an IdP that
    /// reads it encrypts to that key).
    pub fn metadata(&self) -> EntityDescriptor {
        use latchkey_saml::metadata::KeyUse;
        let mut entity = EntityDescriptor::new(&self.inner.entity_id);
        let signs = self.inner.key.as_ref().is_some_and(|k| k.sign_requests);
        let signing = self.inner.key.iter().map(|k| KeyDescriptor {
            key_use: Some(KeyUse::Signing),
            certificates: vec![k.certificate.clone()],
            encryption_methods: Vec::new(),
        });
        let encryption = self.inner.decryption.iter().map(|d| KeyDescriptor {
            key_use: Some(KeyUse::Encryption),
            certificates: vec![d.certificate.clone()],
            encryption_methods: Vec::new(),
        });
        entity.sp = Some(SpSsoDescriptor {
            authn_requests_signed: signs,
            want_assertions_signed: true,
            keys: signing.chain(encryption).collect(),
            name_id_formats: self.inner.name_id_format.iter().cloned().collect(),
            assertion_consumer_services: vec![IndexedEndpoint {
                binding: binding_uri::HTTP_POST.to_owned(),
                location: self.inner.acs_url.clone(),
                index: 0,
                is_default: Some(true),
            }],
            slo_services: self
                .inner
                .slo_url
                .iter()
                .flat_map(|url| {
                    [binding_uri::HTTP_REDIRECT, binding_uri::HTTP_POST].map(|b| Endpoint {
                        binding: b.to_owned(),
                        location: url.clone(),
                        response_location: None,
                    })
                })
                .collect(),
        });
        entity
    }

    /// Our metadata as XML.
    pub fn metadata_xml(&self) -> Result<String, Error> {
        Ok(self.metadata().to_xml()?)
    }

    /// Starts an SP-initiated login: builds the AuthnRequest, remembers it under a fresh
    /// RelayState, bound to a fresh browser binding ([`crate::binding`]), and returns the IdP
    /// URL to redirect the browser to with the binding's cookie. `return_to` is kept only if
    /// it is a local path. The start counts against the total of outstanding logins only and
    /// ignores the browser's cookies: a server facing browsers should call
    /// [`Self::start_login_from`], so that one client cannot use them all up and two tabs'
    /// logins share one binding.
    pub async fn start_login(
        &self,
        return_to: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<LoginRedirect, Error> {
        self.start_login_from(None, &BrowserBinding::none(), return_to, now)
            .await
    }

    /// [`Self::start_login`] for the browser at `client` (its address; an IPv6 client counts
    /// as its /64), which presented `browser` (its cookies: a binding it holds is reused, so
    /// that logins started in two tabs both complete; otherwise one is minted). Refused with
    /// [`Error::TooManyPendingFromClient`] (429) past [`crate::login::PENDING_PER_NETWORK`]
    /// logins started there and not finished.
    pub async fn start_login_from(
        &self,
        client: Option<&str>,
        browser: &BrowserBinding,
        return_to: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<LoginRedirect, Error> {
        let cookie = &self.inner.binding;
        let key = cookie
            .presented(browser)
            .cloned()
            .unwrap_or_else(BrowserKey::mint);
        let idp = self.read_idp();
        let mut request = AuthnRequest::new(&self.inner.entity_id, &idp.sso_url, now)?;
        request.assertion_consumer_service_url = Some(self.inner.acs_url.clone());
        request.protocol_binding = Some(binding_uri::HTTP_POST.to_owned());
        request.name_id_policy = Some(NameIdPolicy {
            format: self.inner.name_id_format.clone(),
            sp_name_qualifier: None,
            allow_create: Some(true),
        });
        let xml = request.to_xml()?;
        let pending = PendingRequest {
            request_id: request.id.clone(),
            return_to: return_to.and_then(local_path),
            expires_at: now + self.inner.request_lifetime,
            browser: Some(key.hash()),
        };
        let relay_state = self
            .inner
            .pending
            .insert(pending.clone(), client, now)
            .await?;
        let signer = self.inner.key.as_ref().filter(|k| k.sign_requests);
        let query = match signer {
            Some(k) => redirect::encode_signed(
                MessageKind::Request,
                &xml,
                Some(&relay_state),
                &k.key,
                k.key.default_algorithm(),
                &self.inner.limits,
            )?,
            None => {
                if idp.want_authn_requests_signed {
                    tracing::warn!(
                        idp = %idp.entity_id,
                        "the IdP wants signed AuthnRequests but no SP key is configured"
                    );
                }
                redirect::encode(
                    MessageKind::Request,
                    &xml,
                    Some(&relay_state),
                    &self.inner.limits,
                )?
            }
        };
        Ok(LoginRedirect {
            url: redirect::url(&idp.sso_url, &query),
            relay_state,
            request: pending,
            set_cookie: cookie.set_cookie(&key),
            browser: cookie.binding(key),
        })
    }

    /// The ACS's first step: decodes the POSTed Response, finds the request it answers by
    /// RelayState, checks that `browser` (the posting request's cookies) is the one that
    /// started it, and applies every profile rule (signature, issuer, destination, audience,
    /// time window, InResponseTo, unsolicited policy).
    ///
    /// A RelayState we never issued is treated as no request (IdP-initiated logins carry
    /// their own RelayState); the profile then refuses the Response if it claims to answer a
    /// request, or if unsolicited logins are not allowed. A request found is used up whatever
    /// follows (deleted here, in a commit of its own, before the signature is verified); from
    /// another browser it is refused ([`Error::BrowserMismatch`]) before the signature is
    /// verified. [`crate::acs::run`] checks the same, but with the request kept in the
    /// login's own database it defers the deletion to the login's transaction (one commit).
    pub async fn verify_response(
        &self,
        form: &AcsForm,
        browser: &BrowserBinding,
        now: OffsetDateTime,
    ) -> Result<VerifiedResponse, Error> {
        let xml = decode_post(&form.saml_response)?;
        let pending = match form.relay_state.as_deref() {
            Some(r) => self.inner.pending.take(r, now).await?,
            None => None,
        };
        if let Some(p) = &pending {
            self.inner
                .binding
                .check(browser, p)
                .map_err(Error::BrowserMismatch)?;
        }
        let (request_id, return_to) = match pending {
            Some(p) => (Some(p.request_id), p.return_to),
            None => (None, None),
        };
        let subject = self
            .verify_subject(&xml, request_id.as_deref(), now)
            .await?;
        Ok(VerifiedResponse::new(subject, return_to))
    }

    /// [`Self::verify_response`] for [`crate::acs::run`] when the login's replay cache and
    /// accounts are in `db`: a pending request kept there too is read, not taken, so that the
    /// login's own transaction uses it up ([`VerifiedResponse::sign_in`]: one commit for a
    /// successful SP-initiated login). Every check is the same and in the same order, and a
    /// request found is still used up whatever follows: expired, or from another browser, it
    /// is deleted and refused before the signature is verified; a Response that fails
    /// verification deletes it too. Otherwise (requests in memory or in another database)
    /// this is [`Self::verify_response`].
    pub(crate) async fn verify_response_for_login(
        &self,
        form: &AcsForm,
        browser: &BrowserBinding,
        db: &crate::store::Database,
        now: OffsetDateTime,
    ) -> Result<VerifiedResponse, Error> {
        let (Some(store), Some(relay_state)) =
            (self.inner.pending.sql(), form.relay_state.as_deref())
        else {
            return self.verify_response(form, browser, now).await;
        };
        if !store.database().same_as(db) {
            return self.verify_response(form, browser, now).await;
        }
        let xml = decode_post(&form.saml_response)?;
        let Some(pending) = store.peek(relay_state).await? else {
            // No request (an IdP-initiated login's own RelayState, or one used up already).
            let subject = self.verify_subject(&xml, None, now).await?;
            return Ok(VerifiedResponse::new(subject, None));
        };
        let refusal = if pending.expires_at <= now {
            Some(Error::RequestExpired)
        } else {
            self.inner
                .binding
                .check(browser, &pending)
                .err()
                .map(Error::BrowserMismatch)
        };
        if let Some(refusal) = refusal {
            store.discard(relay_state).await?;
            return Err(refusal);
        }
        match self
            .verify_subject(&xml, Some(&pending.request_id), now)
            .await
        {
            Ok(subject) => Ok(VerifiedResponse::answering(
                subject,
                pending.return_to,
                crate::acs::PendingClaim {
                    store: store.clone(),
                    relay_state: relay_state.to_owned(),
                    request_id: pending.request_id,
                },
            )),
            Err(error) => {
                // Used up all the same: a failed attempt may cost a commit.
                if let Err(store_error) = store.discard(relay_state).await {
                    tracing::warn!(
                        %error,
                        store_error = %store_error,
                        "a refused Response's pending request could not be used up"
                    );
                    return Err(store_error);
                }
                Err(error)
            }
        }
    }

    /// The profile rules on `xml` for `request_id`, retried with newer metadata when that may
    /// help.
    async fn verify_subject(
        &self,
        xml: &str,
        request_id: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<AuthenticatedSubject, Error> {
        let seen = self.read_idp();
        match self.verify_with(&seen, xml, request_id, now) {
            Err(error) if newer_metadata_may_help(&error) => {
                self.verify_with_newer_metadata(seen, error, xml, request_id, now)
                    .await
            }
            other => other,
        }
    }

    /// The second chance of a Response that failed on the IdP's keys (or on an expired copy
    /// of its metadata): verified again with newer metadata, if another request has fetched
    /// some since, or if this one may fetch it now (see [`crate::fetch`]). Otherwise, or if
    /// the fetch fails, the first error stands.
    async fn verify_with_newer_metadata(
        &self,
        seen: Arc<IdpTrust>,
        error: Error,
        xml: &str,
        request_id: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<AuthenticatedSubject, Error> {
        let current = self.read_idp();
        if !Arc::ptr_eq(&seen, &current) {
            return self.verify_with(&current, xml, request_id, now);
        }
        #[cfg(feature = "fetch")]
        if let Some(refetch) = &self.inner.refetch {
            match refetch.fetch_if_due(&seen.entity_id, now).await {
                Some(Ok(idp)) => {
                    tracing::info!(
                        idp = %idp.entity_id,
                        keys = idp.keys.len(),
                        %error,
                        "IdP metadata fetched again after a failed verification"
                    );
                    let idp = Arc::new(idp);
                    self.replace_idp(Arc::clone(&idp));
                    self.refresh_succeeded(now);
                    return self.verify_with(&idp, xml, request_id, now);
                }
                Some(Err(fetch_error)) => {
                    tracing::warn!(
                        error = %fetch_error,
                        "cannot fetch the IdP metadata again; keeping the current keys"
                    );
                    self.refresh_failed(now, &fetch_error);
                }
                None => {}
            }
        }
        Err(error)
    }

    /// The profile rules against one copy of the IdP's metadata, which must not have
    /// expired.
    fn verify_with(
        &self,
        idp: &IdpTrust,
        xml: &str,
        request_id: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<AuthenticatedSubject, Error> {
        if let Some(valid_until) = idp.valid_until.filter(|_| idp.is_expired(now)) {
            return Err(MetadataError::Expired {
                entity_id: idp.entity_id.clone(),
                valid_until,
            }
            .into());
        }
        Ok(validate_response(
            &self.settings_for(idp),
            xml,
            request_id,
            now,
        )?)
    }

    /// The profile rules on a decoded Response, for the request `request_id` (`None`:
    /// unsolicited). The same check as [`ServiceProvider::verify_response`], for tools that
    /// hold the XML already (such as a dry-run planner).
    pub fn verify_xml(
        &self,
        xml: &str,
        request_id: Option<&str>,
        return_to: Option<String>,
        now: OffsetDateTime,
    ) -> Result<VerifiedResponse, Error> {
        let subject = self.verify_with(&self.read_idp(), xml, request_id, now)?;
        Ok(VerifiedResponse::new(subject, return_to))
    }
}

/// Whether a refusal may be the IdP's key having changed since the metadata was read: the
/// signature matched no trusted key (or no key of its algorithm), or the copy expired. A
/// digest mismatch or a malformed signature is the message's fault and is not retried.
fn newer_metadata_may_help(error: &Error) -> bool {
    use latchkey_xmlsec::dsig::SignatureError as S;
    match error {
        Error::Metadata(MetadataError::Expired { .. }) => true,
        Error::Saml(latchkey_saml::Error::SignatureInvalid) => true,
        Error::Saml(latchkey_saml::Error::Xml(latchkey_xmlsec::Error::Signature(e))) => matches!(
            e,
            S::BadSignature | S::KeyRefused(_) | S::NoKeyForAlgorithm { .. }
        ),
        _ => false,
    }
}

/// Decodes a `SAMLResponse` POST value (base64, size-capped) into the Response XML.
pub fn decode_post(saml_response: &str) -> Result<String, Error> {
    let message = post::decode(
        MessageKind::Response,
        saml_response,
        None,
        &BindingLimits::default(),
    )?;
    Ok(message.xml)
}
