//! The Web Browser SSO profile (SAML profiles §4.1). Here, the service provider's side:
//! one pure function from a Response to an authenticated subject, or to the rule it
//! broke. The identity provider's side (accepting an AuthnRequest) is in [`idp`].
//!
//! # Security
//! * Keys come from [`SpSettings::idp_keys`] only; KeyInfo in the message is never read.
//! * The assertion that is read is always reached through a verified element: the
//!   signed Assertion itself, or a direct child of the signed Response. It is never
//!   looked up again by name or ID in the document.
//! * Exactly one assertion is accepted, so there is never a choice of which to trust.
//! * An EncryptedAssertion is decrypted with [`SpSettings::decryption_keys`] only, and
//!   the decrypted assertion is then held to the same signature rule as a clear one: its
//!   own signature must verify, or the Response's signature (which covers the
//!   ciphertext) must have. Identity is read only from the decrypted, verified element.
//! * Every check names its rule in [`Error`], and the order of the checks is fixed:
//!   signatures first, so no rule reads unsigned content before the signature rules ran.

use latchkey_xmlsec::crypto::{DigestAlgorithm, SignatureAlgorithm, VerifyingKey};
use latchkey_xmlsec::dsig::Verified;
use latchkey_xmlsec::reader::{self, Limits};
use latchkey_xmlsec::tree::Node;
use time::{Duration, OffsetDateTime};

use crate::assertion::{
    Assertion, AssertionRef, AuthnStatement, BEARER, NameId, SubjectConfirmationDataRef,
    name_id_format, parse_assertion, read_assertion,
};
use crate::encryption::{
    DecryptOptions, DecryptionKey, decrypt_assertion, verify_decrypted_assertion,
};
use crate::error::{Error, Result};
use crate::inbound::{
    DIGEST_ALGORITHMS, PolicyRef, SIGNATURE_ALGORITHMS, SignaturePolicy, has_signature,
    verify_element_with,
};
use crate::ns::ASSERTION;
use crate::read;
use crate::response::parse_response;
use crate::status::StatusRef;

pub mod idp;
pub mod logout;

/// The largest clock skew honoured; larger settings are clamped to it, so a
/// misconfiguration cannot stretch an assertion's lifetime by hours.
pub const MAX_CLOCK_SKEW: Duration = Duration::minutes(5);

/// What the SP knows and trusts.
#[derive(Debug, Clone)]
pub struct SpSettings {
    /// Our entity ID: the audience the assertion must name.
    pub entity_id: String,
    /// Our ACS URLs: Destination and Recipient must be one of them.
    pub acs_urls: Vec<String>,
    /// The IdP's entity ID: both Issuers must equal it.
    pub idp_entity_id: String,
    /// The IdP's signing keys (from its metadata or configuration).
    pub idp_keys: Vec<VerifyingKey>,
    /// Signature algorithms accepted. RSA-SHA1 here also opts in to SHA-1 verification.
    pub signature_algorithms: Vec<SignatureAlgorithm>,
    /// Digest algorithms accepted.
    pub digest_algorithms: Vec<DigestAlgorithm>,
    /// Allowed clock difference with the IdP (default 60 s, at most [`MAX_CLOCK_SKEW`]).
    pub clock_skew: Duration,
    /// Accept IdP-initiated responses that answer no request of ours.
    pub allow_unsolicited: bool,
    /// Accept 1024-bit RSA keys (legacy IdPs only). Off by default.
    pub allow_rsa_1024: bool,
    /// Our private keys for EncryptedAssertions (the current one first, then any being
    /// rolled over). Empty by default: an EncryptedAssertion is then refused with
    /// [`Error::EncryptedAssertion`].
    pub decryption_keys: Vec<DecryptionKey>,
    /// Which content ciphers and key transports are accepted when decrypting (default:
    /// [`DecryptOptions::gcm_only`], AES-GCM under RSA-OAEP; RSA PKCS#1 v1.5 is refused
    /// whatever this says). AES-CBC is an opt-in (`DecryptOptions::default()`) for IdPs
    /// that cannot do GCM, and a risk: CBC carries no integrity, and a ciphertext that
    /// decrypts to a well-formed assertion takes measurably longer to refuse (its signature
    /// is checked) than one with bad padding, a timing oracle on the plaintext.
    pub decrypt_options: DecryptOptions,
}

impl SpSettings {
    /// Settings with the modern algorithm allow-list (no SHA-1), 60 s skew and no
    /// unsolicited responses.
    pub fn new(
        entity_id: impl Into<String>,
        acs_url: impl Into<String>,
        idp_entity_id: impl Into<String>,
        idp_keys: Vec<VerifyingKey>,
    ) -> Self {
        Self {
            entity_id: entity_id.into(),
            acs_urls: vec![acs_url.into()],
            idp_entity_id: idp_entity_id.into(),
            idp_keys,
            signature_algorithms: SIGNATURE_ALGORITHMS.to_vec(),
            digest_algorithms: DIGEST_ALGORITHMS.to_vec(),
            clock_skew: Duration::seconds(60),
            allow_unsolicited: false,
            allow_rsa_1024: false,
            decryption_keys: Vec::new(),
            decrypt_options: DecryptOptions::gcm_only(),
        }
    }

    fn skew(&self) -> Duration {
        self.clock_skew.clamp(Duration::ZERO, MAX_CLOCK_SKEW)
    }

    /// The allow-list and key policy every signature from the IdP is held to.
    pub fn signature_policy(&self) -> SignaturePolicy {
        SignaturePolicy {
            signature_algorithms: self.signature_algorithms.clone(),
            digest_algorithms: self.digest_algorithms.clone(),
            allow_rsa_1024: self.allow_rsa_1024,
        }
    }

    /// [`SpSettings::signature_policy`] borrowed: what a validation checks against,
    /// without copying the allow-lists.
    fn policy(&self) -> PolicyRef<'_> {
        PolicyRef {
            signature_algorithms: &self.signature_algorithms,
            digest_algorithms: &self.digest_algorithms,
            allow_rsa_1024: self.allow_rsa_1024,
        }
    }

    fn is_acs(&self, url: &str) -> bool {
        self.acs_urls.iter().any(|a| a == url)
    }
}

/// Who logged in, as the IdP asserted it in a verified assertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedSubject {
    /// The IdP's entity ID.
    pub issuer: String,
    /// The subject's NameID, with format and qualifiers.
    pub name_id: NameId,
    /// The IdP session, for single logout.
    pub session_index: Option<String>,
    /// When the subject authenticated.
    pub authn_instant: OffsetDateTime,
    /// How the subject authenticated.
    pub authn_context_class_ref: Option<String>,
    /// When the IdP wants our session to end.
    pub session_not_on_or_after: Option<OffsetDateTime>,
    /// The attributes, in document order.
    pub attributes: Vec<crate::assertion::Attribute>,
    /// The assertion's ID: with [`Self::issue_instant`], the key for the SP's replay cache.
    pub assertion_id: String,
    /// The assertion's IssueInstant, under the same signature as its ID: a second use of the
    /// assertion carries both unchanged, and an SP's cache ordered by it inserts at its end.
    pub issue_instant: OffsetDateTime,
    /// The Response's ID.
    pub response_id: String,
    /// The request this answers (None for IdP-initiated login).
    pub in_response_to: Option<String>,
    /// After this instant (skew included) the assertion can no longer be accepted, so a
    /// replay-cache entry for it may be dropped.
    pub replay_expiry: OffsetDateTime,
    /// The assertion asked not to be cached or reused (OneTimeUse).
    pub one_time_use: bool,
}

/// Validates a Response (XML text, already decoded from its binding) under the Web
/// Browser SSO profile. `request_id` is the ID of our outstanding AuthnRequest, or `None`
/// for an IdP-initiated response; `now` is the current time.
pub fn validate_response(
    settings: &SpSettings,
    xml: &str,
    request_id: Option<&str>,
    now: OffsetDateTime,
) -> Result<AuthenticatedSubject> {
    let doc = reader::parse(xml, &Limits::default())?;
    let root = doc.root_element();
    let policy = settings.policy();

    // Rule: signatures. The Response's, if present, must verify.
    let response_verified = if has_signature(root) {
        Some(verify_element_with(&doc, root, &settings.idp_keys, policy)?)
    } else {
        None
    };
    // Structure and Version of the envelope (read from the verified node when signed).
    let envelope_node = response_verified.as_ref().map_or(root, Verified::element);
    let parts = parse_response(envelope_node)?;

    // Rule: the Response's Issuer, when present, is the IdP; a signed Response must
    // carry one.
    match &parts.header.issuer {
        Some(i) => check_issuer(settings, i, envelope_node)?,
        None if response_verified.is_some() => return Err(issuer_mismatch(settings, "")),
        None => {}
    }
    // Rule: Destination names one of our ACS URLs; a signed Response must carry it.
    match parts.header.destination {
        Some(d) if !settings.is_acs(d) => return Err(destination_mismatch(d)),
        None if response_verified.is_some() => return Err(destination_mismatch("")),
        _ => {}
    }
    // Rule: Status is Success.
    if !parts.status.is_success() {
        return Err(status_not_success(parts.status));
    }
    // Rule: the Response answers our request (or is allowed to answer none).
    check_in_response_to(settings, request_id, parts.in_response_to)?;

    // Rule: exactly one assertion, in the clear or encrypted; an encrypted one only when
    // we hold a key for it.
    if !parts.encrypted_assertions.is_empty() && settings.decryption_keys.is_empty() {
        return Err(Error::EncryptedAssertion);
    }
    let response_signed = response_verified.is_some();
    let mut subject = match (
        parts.assertions.as_slice(),
        parts.encrypted_assertions.as_slice(),
    ) {
        ([clear], []) => clear_assertion(
            settings,
            policy,
            &doc,
            *clear,
            response_signed,
            request_id,
            now,
        )?,
        ([], [encrypted]) => {
            encrypted_assertion(settings, *encrypted, response_signed, request_id, now)?
        }
        (clear, encrypted) => return Err(Error::AssertionCount(clear.len() + encrypted.len())),
    };
    subject.response_id = parts.header.id.to_owned();
    subject.in_response_to = parts.in_response_to.map(str::to_owned);
    Ok(subject)
}

/// Rule: a clear assertion is covered by a verified signature, its own or the
/// Response's (`response_signed`: `node` was found among the verified Response's
/// children). An assertion signature that is present must verify even when the Response
/// is signed too. Then the assertion-level rules, on the verified element.
fn clear_assertion(
    settings: &SpSettings,
    policy: PolicyRef<'_>,
    doc: &reader::Document<'_>,
    node: Node<'_, '_>,
    response_signed: bool,
    request_id: Option<&str>,
    now: OffsetDateTime,
) -> Result<AuthenticatedSubject> {
    let verified = if has_signature(node) {
        Some(verify_element_with(doc, node, &settings.idp_keys, policy)?)
    } else {
        None
    };
    let node = match (&verified, response_signed) {
        (Some(v), _) => v.element(),
        (None, true) => node,
        (None, false) => return Err(Error::NotSigned),
    };
    accept_assertion(settings, node, request_id, now)
}

/// Rule: an EncryptedAssertion decrypts with one of our keys, and the assertion inside
/// is covered by a verified signature, its own or the Response's (`response_signed`:
/// `encrypted` was found among the verified Response's children, so that signature
/// covers the ciphertext). Then the assertion-level rules, on the decrypted element.
///
/// # Security
/// When the Response is not signed, the assertion's signature is always checked through
/// [`verify_decrypted_assertion`], which reports every failure after a CBC decryption
/// as a decryption failure. Nothing here branches on whether the decrypted text carries
/// a signature first: a distinct "not signed" answer would be the very oracle that rule
/// closes.
fn encrypted_assertion(
    settings: &SpSettings,
    encrypted: Node<'_, '_>,
    response_signed: bool,
    request_id: Option<&str>,
    now: OffsetDateTime,
) -> Result<AuthenticatedSubject> {
    let decrypted = decrypt_assertion(
        encrypted,
        &settings.decryption_keys,
        &settings.decrypt_options,
    )?;
    // `decrypt_assertion` parsed this same text under these same limits, so this cannot
    // fail; were it to, it must look like every other decryption failure.
    let doc = reader::parse(&decrypted.xml, &settings.decrypt_options.limits).map_err(|_| {
        Error::Xml(latchkey_xmlsec::xmlenc::EncryptionError::DecryptionFailed.into())
    })?;
    let verified = if !response_signed || has_signature(doc.root_element()) {
        Some(verify_decrypted_assertion(
            &doc,
            &decrypted,
            &settings.idp_keys,
            &settings.signature_policy(),
            response_signed,
        )?)
    } else {
        None
    };
    let node = match &verified {
        Some(v) => v.element(),
        // The Response's verified signature covers the ciphertext, so the plaintext is
        // the IdP's; `decrypt_assertion` checked it is one saml:Assertion.
        None => doc.root_element(),
    };
    accept_assertion(settings, node, request_id, now)
}

/// The assertion-level rules on an element already known to be covered by a verified
/// signature. Returns who logged in, with the Response's ID and InResponseTo left empty
/// for the caller: the assertion may come from a decrypted document that does not outlive
/// this call, while the caller holds the Response.
fn accept_assertion(
    settings: &SpSettings,
    node: Node<'_, '_>,
    request_id: Option<&str>,
    now: OffsetDateTime,
) -> Result<AuthenticatedSubject> {
    let assertion = read_assertion(node)?;
    let expiry = check_assertion(settings, &assertion, node, request_id, now)?;
    accepted(assertion, expiry)
}

impl Assertion {
    /// Reads an assertion from the element a signature verified. This, and
    /// [`validate_response`], are the only ways to read an assertion's content.
    pub fn from_verified(verified: &Verified<'_, '_>) -> Result<Assertion> {
        parse_assertion(verified.element())
    }
}

/// Rule: an Issuer equals the IdP's entity ID and has the entity format (or none).
fn check_issuer(settings: &SpSettings, issuer: &str, parent: Node<'_, '_>) -> Result<()> {
    let format = read::children(parent, ASSERTION, "Issuer")
        .next()
        .and_then(|n| n.attribute("Format"));
    if let Some(f) = format.map(str::trim)
        && f != name_id_format::ENTITY
    {
        return Err(issuer_format(f));
    }
    if issuer != settings.idp_entity_id {
        return Err(issuer_mismatch(settings, issuer));
    }
    Ok(())
}

// The refusals that copy what they found are `#[cold]` and out of line: an accepted
// Response never builds them, and their copies would otherwise sit among the rules'
// checks in the instruction cache.

#[cold]
#[inline(never)]
fn issuer_format(format: &str) -> Error {
    Error::IssuerFormat(format.to_owned())
}

#[cold]
#[inline(never)]
fn issuer_mismatch(settings: &SpSettings, found: &str) -> Error {
    Error::IssuerMismatch {
        expected: settings.idp_entity_id.clone(),
        found: found.to_owned(),
    }
}

#[cold]
#[inline(never)]
fn status_not_success(status: StatusRef<'_>) -> Error {
    let status = status.into_owned();
    Error::StatusNotSuccess {
        code: status.code,
        sub_code: status.sub_code,
        message: status.message,
    }
}

#[cold]
#[inline(never)]
fn destination_mismatch(found: &str) -> Error {
    Error::DestinationMismatch {
        found: found.to_owned(),
    }
}

#[cold]
#[inline(never)]
fn in_response_to_mismatch(expected: Option<&str>, found: Option<&str>) -> Error {
    Error::InResponseToMismatch {
        expected: expected.map(str::to_owned),
        found: found.map(str::to_owned),
    }
}

#[cold]
#[inline(never)]
fn recipient_mismatch(found: Option<&str>) -> Error {
    Error::RecipientMismatch {
        found: found.unwrap_or_default().to_owned(),
    }
}

#[cold]
#[inline(never)]
fn confirmation_method(method: &str) -> Error {
    Error::ConfirmationMethod(method.to_owned())
}

/// Rule: InResponseTo matches the outstanding request, or is absent for an allowed
/// unsolicited response.
fn check_in_response_to(
    settings: &SpSettings,
    request_id: Option<&str>,
    found: Option<&str>,
) -> Result<()> {
    match (request_id, found) {
        (Some(want), Some(got)) if want == got => Ok(()),
        (None, None) if settings.allow_unsolicited => Ok(()),
        (None, None) => Err(Error::UnsolicitedNotAllowed),
        (want, got) => Err(in_response_to_mismatch(want, got)),
    }
}

/// The assertion-level rules. Returns the replay expiry.
fn check_assertion(
    settings: &SpSettings,
    a: &AssertionRef<'_>,
    node: Node<'_, '_>,
    request_id: Option<&str>,
    now: OffsetDateTime,
) -> Result<OffsetDateTime> {
    let skew = settings.skew();
    check_issuer(settings, &a.issuer, node)?;
    let subject = a.subject.as_ref().ok_or(Error::SubjectMissing)?;
    if subject.name_id.is_none() {
        return Err(Error::SubjectMissing);
    }
    // Rule: bearer confirmation only, at least one, and one of them satisfied.
    if let Some(other) = subject.confirmations.iter().find(|c| c.method != BEARER) {
        return Err(confirmation_method(other.method));
    }
    let mut confirmation_expiry = None;
    let mut first_error = None;
    for c in &subject.confirmations {
        match check_bearer(settings, c.data.as_ref(), request_id, now, skew) {
            Ok(expiry) => {
                confirmation_expiry = Some(expiry);
                break;
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let confirmation_expiry = match (confirmation_expiry, first_error) {
        (Some(e), _) => e,
        (None, Some(err)) => return Err(err),
        (None, None) => return Err(Error::BearerConfirmationMissing),
    };
    // Rule: the validity window, with bounded skew.
    let conditions = a.conditions.as_ref().ok_or(Error::ConditionsMissing)?;
    if let Some(nb) = conditions.not_before
        && now + skew < nb
    {
        return Err(Error::NotYetValid);
    }
    let mut expiry = confirmation_expiry;
    if let Some(na) = conditions.not_on_or_after {
        if now - skew >= na {
            return Err(Error::Expired);
        }
        expiry = expiry.min(na + skew);
    }
    // Rule: every AudienceRestriction names us, and there is at least one.
    if conditions.audience_restrictions.is_empty() {
        return Err(Error::AudienceMissing);
    }
    if !conditions
        .audience_restrictions
        .iter()
        .all(|r| r.iter().any(|aud| **aud == *settings.entity_id))
    {
        return Err(Error::AudienceMismatch);
    }
    // Rule: an AuthnStatement, whose IdP session has not ended.
    let statement = a
        .authn_statements
        .first()
        .ok_or(Error::AuthnStatementMissing)?;
    if let Some(end) = statement.session_not_on_or_after
        && now - skew >= end
    {
        return Err(Error::SessionExpired);
    }
    Ok(expiry)
}

/// Rule: one bearer confirmation's data: Recipient, NotOnOrAfter, no NotBefore, and
/// InResponseTo. Returns its expiry (skew included).
fn check_bearer(
    settings: &SpSettings,
    data: Option<&SubjectConfirmationDataRef<'_>>,
    request_id: Option<&str>,
    now: OffsetDateTime,
    skew: Duration,
) -> Result<OffsetDateTime> {
    let Some(d) = data else {
        return Err(recipient_mismatch(None));
    };
    match d.recipient {
        Some(r) if settings.is_acs(r) => {}
        other => return Err(recipient_mismatch(other)),
    }
    let not_on_or_after = d.not_on_or_after.ok_or(Error::ConfirmationExpired)?;
    if now - skew >= not_on_or_after {
        return Err(Error::ConfirmationExpired);
    }
    // The profile forbids a NotBefore here (profiles §4.1.4.2), one already past too: the
    // confirmation's window is bounded by NotOnOrAfter alone.
    if d.not_before.is_some() {
        return Err(Error::ConfirmationNotYetValid);
    }
    match (request_id, d.in_response_to) {
        (Some(want), Some(got)) if want == got => {}
        (None, None) => {}
        (want, got) => return Err(in_response_to_mismatch(want, got)),
    }
    Ok(not_on_or_after + skew)
}

/// Who logged in, moved out of the assertion; the Response's ID and InResponseTo are the
/// caller's to fill in (see [`accept_assertion`]).
fn accepted(a: AssertionRef<'_>, replay_expiry: OffsetDateTime) -> Result<AuthenticatedSubject> {
    let name_id = a
        .subject
        .and_then(|s| s.name_id)
        .ok_or(Error::SubjectMissing)?;
    let Some(AuthnStatement {
        authn_instant,
        session_index,
        session_not_on_or_after,
        authn_context_class_ref,
    }) = a.authn_statements.into_iter().next()
    else {
        return Err(Error::AuthnStatementMissing);
    };
    Ok(AuthenticatedSubject {
        issuer: a.issuer.into_owned(),
        name_id,
        session_index,
        authn_instant,
        authn_context_class_ref,
        session_not_on_or_after,
        attributes: a.attributes,
        assertion_id: a.id.to_owned(),
        issue_instant: a.issue_instant,
        response_id: String::new(),
        in_response_to: None,
        replay_expiry,
        one_time_use: a.conditions.is_some_and(|c| c.one_time_use),
    })
}
