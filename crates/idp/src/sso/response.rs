//! Building the Response: NameID and attributes per the application's settings, the
//! assertion's conditions, and the signatures the application asked for.
//!
//! The assertion is signed first and embedded as signed text; the Response is then signed
//! around it. Exclusive canonicalization makes the assertion's signature independent of the
//! envelope it ends up in.

use latchkey_saml::assertion::{Assertion, Attribute, NameId};
use latchkey_saml::profile::idp::{self as profile, Issuance, ResponseTarget};
use latchkey_saml::response::Response;
use latchkey_saml::status::Status;
use latchkey_xmlsec::crypto::{Certificate, KeyKind};
use latchkey_xmlsec::dsig::{self, SignOptions};
use time::OffsetDateTime;

use super::grant::Grant;
use super::keys::SigningMaterial;
use super::{PendingRequest, SsoError};
use crate::apps::{Application, NameIdFormat, NameIdSource};
use crate::config::ServerSettings;
use crate::directory::User;
use crate::session::Session;
use crate::store::Store;

/// A built success Response and what the audit log records about it.
#[derive(Debug, Clone)]
pub struct IssuedResponse {
    /// The signed Response XML.
    pub xml: String,
    /// The NameID sent.
    pub name_id: NameId,
    /// The names of the attributes sent (never their values).
    pub attribute_names: Vec<String>,
    /// The assertion's ID.
    pub assertion_id: String,
}

/// The NameID the application is configured to receive for this user.
async fn name_id_for(
    store: &Store,
    settings: &ServerSettings,
    app: &Application,
    user: &User,
    grant: &Grant,
    pending: &PendingRequest,
    purpose: Purpose,
) -> Result<NameId, SsoError> {
    let policy = &app.settings.name_id;
    // A format the request asked for, other than the app's own, is made from what it
    // means rather than from the app's source.
    let requested = pending
        .name_id_format
        .as_deref()
        .filter(|f| *f != policy.format.uri())
        .and_then(|f| NameIdFormat::parse(f).ok());
    if let Some(format) = requested {
        // Checked when the request came (`accept_authn_request`); again here for a
        // format asked for through the request's Subject.
        if !app.settings.allows_name_id_format(format) {
            return Err(SsoError::NameIdPolicy(
                "the application is not allowed NameIDs of the requested format".into(),
            ));
        }
        let value = match format {
            NameIdFormat::Transient => {
                latchkey_saml::ids::new_id().map_err(|e| SsoError::Build(e.to_string()))?
            }
            // The address is personal data: sent as a NameID only to an application the
            // admin already releases it to, so asking for the format reveals nothing the
            // release policy withholds.
            NameIdFormat::EmailAddress if !releases_email(app) => {
                return Err(SsoError::NameIdPolicy(
                    "the application is not released the e-mail address".into(),
                ));
            }
            NameIdFormat::EmailAddress if !user.email.is_empty() => user.email.clone(),
            NameIdFormat::EmailAddress => {
                return Err(SsoError::NameIdPolicy(
                    "the user has no e-mail address".into(),
                ));
            }
            NameIdFormat::Persistent => match &grant.pairwise {
                Some(known) => known.clone(),
                None if pending.allow_create == Some(false) => {
                    return Err(SsoError::NameIdPolicy(
                        "no persistent identifier exists yet and AllowCreate is false".into(),
                    ));
                }
                None if purpose == Purpose::Preview => PAIRWISE_NOT_YET.to_owned(),
                None => store.apps().persistent_name_id(user.id, app.id).await?,
            },
            NameIdFormat::Unspecified => user.username.clone(),
        };
        return Ok(qualified(
            NameId::new(value, format.uri()),
            format,
            settings,
            app,
        ));
    }
    let value = match (&policy.format, &policy.source) {
        // A transient identifier is fresh every time, whatever the source says.
        (NameIdFormat::Transient, _) => {
            latchkey_saml::ids::new_id().map_err(|e| SsoError::Build(e.to_string()))?
        }
        (_, NameIdSource::Pairwise) => match &grant.pairwise {
            Some(known) => known.clone(),
            None if purpose == Purpose::Preview => PAIRWISE_NOT_YET.to_owned(),
            None => store.apps().persistent_name_id(user.id, app.id).await?,
        },
        (_, NameIdSource::Email) => user.email.clone(),
        (_, NameIdSource::Username) => user.username.clone(),
        (_, NameIdSource::Attribute(key)) => user
            .attributes
            .get(key)
            .and_then(|v| v.values().into_iter().find(|s| !s.is_empty()))
            .ok_or_else(|| SsoError::NameIdUnavailable(format!("attribute {key:?} is empty")))?,
    };
    Ok(qualified(
        NameId::new(value, policy.format.uri()),
        policy.format,
        settings,
        app,
    ))
}

/// Whether the admin releases the user's e-mail address to `app` (as its NameID source or
/// in an attribute).
fn releases_email(app: &Application) -> bool {
    use crate::apps::{AttributeSource, UserField};
    app.settings.name_id.source == NameIdSource::Email
        || app
            .settings
            .attributes
            .iter()
            .any(|a| a.source == AttributeSource::Field(UserField::Email))
}

/// Persistent and transient identifiers are scoped to this IdP and that SP.
fn qualified(
    mut name_id: NameId,
    format: NameIdFormat,
    settings: &ServerSettings,
    app: &Application,
) -> NameId {
    if matches!(format, NameIdFormat::Persistent | NameIdFormat::Transient) {
        name_id.name_qualifier = Some(settings.entity_id.clone());
        name_id.sp_name_qualifier = Some(app.settings.entity_id.clone());
    }
    name_id
}

/// Whether a persistent pairwise identifier not allocated yet is made now (a sign-in) or
/// only described (a preview, which must write nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A real answer: allocate.
    Issue,
    /// The console's preview: leave the store as it is.
    Preview,
}

/// What a preview shows as the NameID of a user whose pairwise identifier does not exist
/// yet: it is made at the first real sign-in, and random, so no value can be shown before.
pub const PAIRWISE_NOT_YET: &str = "(a new pairwise identifier, made at the first sign-in)";

/// The subject and attributes of an assertion, before it becomes XML.
#[derive(Debug, Clone)]
pub(crate) struct Content {
    pub name_id: NameId,
    pub attributes: Vec<Attribute>,
}

/// The NameID and the released attributes for `user` at `app`: what every assertion (and
/// the console's preview of one) says about the user.
pub(crate) async fn content(
    store: &Store,
    settings: &ServerSettings,
    app: &Application,
    user: &User,
    grant: &Grant,
    pending: &PendingRequest,
    purpose: Purpose,
) -> Result<Content, SsoError> {
    let name_id = name_id_for(store, settings, app, user, grant, pending, purpose).await?;
    if pending
        .subject
        .as_ref()
        .is_some_and(|wanted| *wanted != name_id.value)
    {
        return Err(SsoError::SubjectMismatch);
    }
    let groups = &grant.groups;
    let attributes: Vec<Attribute> = app
        .settings
        .attributes
        .iter()
        .filter_map(|m| {
            let values = m.values(user, groups);
            (!values.is_empty()).then(|| Attribute {
                name: m.name.clone(),
                name_format: Some(m.name_format.uri().to_string()),
                friendly_name: m.friendly_name.clone(),
                values,
            })
        })
        .collect();
    Ok(Content {
        name_id,
        attributes,
    })
}

/// The unsigned assertion: `content` about `session`'s authentication, stating `class`,
/// for `pending`'s ACS.
pub(crate) fn assertion(
    settings: &ServerSettings,
    app: &Application,
    session: &Session,
    pending: &PendingRequest,
    content: Content,
    class: &'static str,
    now: OffsetDateTime,
) -> Result<Assertion, SsoError> {
    let issuance = Issuance {
        name_id: content.name_id,
        session_index: session.session_index.clone(),
        authn_instant: session.authn_at,
        authn_context_class_ref: class.to_owned(),
        session_not_on_or_after: Some(session.expires_at),
        attributes: content.attributes,
    };
    profile::assertion(
        &settings.entity_id,
        settings.assertion_validity,
        &target(app, pending),
        issuance,
        now,
    )
    .map_err(|e| SsoError::Build(e.to_string()))
}

/// Where `pending`'s answer goes, and to whom.
fn target(app: &Application, pending: &PendingRequest) -> ResponseTarget {
    ResponseTarget {
        sp_entity_id: app.settings.entity_id.clone(),
        acs_url: pending.acs_url.clone(),
        in_response_to: pending.request_id.clone(),
    }
}

/// Builds and signs a success Response for `session`'s user, who holds `grant` (the
/// caller has applied its access policy).
#[allow(clippy::too_many_arguments)]
pub async fn success(
    store: &Store,
    settings: &ServerSettings,
    keys: &SigningMaterial,
    app: &Application,
    session: &Session,
    grant: &Grant,
    pending: &PendingRequest,
    now: OffsetDateTime,
) -> Result<IssuedResponse, SsoError> {
    // Fail before any work (and any pairwise ID) if the certificate is unusable.
    let encrypt_to = encryption_certificate(app)?;
    // What happened in this session, as the request asked to hear it; a session that does
    // not meet it gets no assertion (the caller steps up or answers NoAuthnContext first:
    // super::authn::gate).
    let class = match super::authn::gate(settings, session, grant, pending) {
        super::authn::Gate::Issue { class } => class,
        _ => return Err(SsoError::AuthnContext),
    };
    let content = content(
        store,
        settings,
        app,
        &session.user,
        grant,
        pending,
        Purpose::Issue,
    )
    .await?;
    let name_id = content.name_id.clone();
    let attribute_names = content.attributes.iter().map(|a| a.name.clone()).collect();
    let assertion = assertion(settings, app, session, pending, content, class, now)?;
    let build = |e: latchkey_saml::Error| SsoError::Build(e.to_string());
    let assertion_id = assertion.id.clone();
    // An encrypted assertion is always signed: the SP can then check it on its own after
    // decrypting, whatever the Response's signature (and an unsigned Response around
    // unsigned CBC ciphertext would be refused anyway).
    let assertion_xml = if app.settings.sign_assertion || encrypt_to.is_some() {
        assertion
            .to_signed_xml(&keys.key, Some(&keys.certificate))
            .map_err(build)?
    } else {
        assertion.write().map_err(build)?
    };
    let envelope = envelope(settings, pending, Status::success(), now)?;
    let mut xml = match &encrypt_to {
        None => envelope.to_xml_with(&assertion_xml).map_err(build)?,
        Some(cert) => {
            // The best of what the application advertised that we allow, else AES-256-GCM
            // under RSA-OAEP (MGF1, SHA-1), which every SAML stack reads.
            let options = app.settings.encrypt_options();
            let encrypted = latchkey_saml::encryption::encrypt_assertion(
                assertion_xml.as_str(),
                cert,
                &options,
            )
            .map_err(build)?;
            envelope.to_xml_encrypted(&encrypted).map_err(build)?
        }
    };
    if app.settings.sign_response {
        xml = sign(&xml, &envelope.id, keys)?;
    }
    Ok(IssuedResponse {
        xml,
        name_id,
        attribute_names,
        assertion_id,
    })
}

/// The certificate to encrypt assertions to, when the application asks for encryption.
///
/// An application that asks for encryption without a usable certificate (none, or not an
/// RSA key, which is all XML Encryption's key transport can use) gets an error page,
/// never a clear assertion.
pub(crate) fn encryption_certificate(app: &Application) -> Result<Option<Certificate>, SsoError> {
    if !app.settings.encrypt_assertion {
        return Ok(None);
    }
    let pem = app
        .settings
        .encryption_cert
        .as_deref()
        .ok_or(SsoError::EncryptionUnsupported)?;
    let cert = Certificate::from_pem(pem)
        .map_err(|e| SsoError::Build(format!("the application's encryption certificate: {e}")))?;
    if !matches!(cert.verifying_key().kind(), KeyKind::Rsa { .. }) {
        return Err(SsoError::EncryptionUnsupported);
    }
    Ok(Some(cert))
}

/// Builds and signs a Response that refuses the request with `status` (NoPassive,
/// InvalidNameIDPolicy...). It is always signed: it carries no assertion to sign instead.
pub fn failure(
    settings: &ServerSettings,
    keys: &SigningMaterial,
    pending: &PendingRequest,
    status: Status,
    now: OffsetDateTime,
) -> Result<String, SsoError> {
    let envelope = envelope(settings, pending, status, now)?;
    let xml = envelope
        .to_xml(None)
        .map_err(|e| SsoError::Build(e.to_string()))?;
    sign(&xml, &envelope.id, keys)
}

fn envelope(
    settings: &ServerSettings,
    pending: &PendingRequest,
    status: Status,
    now: OffsetDateTime,
) -> Result<Response, SsoError> {
    profile::envelope(
        &settings.entity_id,
        &pending.acs_url,
        pending.request_id.as_deref(),
        status,
        now,
    )
    .map_err(|e| SsoError::Build(e.to_string()))
}

fn sign(xml: &str, id: &str, keys: &SigningMaterial) -> Result<String, SsoError> {
    dsig::sign(
        xml,
        id,
        &keys.key,
        Some(&keys.certificate),
        &SignOptions::default(),
    )
    .map_err(|e| SsoError::Build(e.to_string()))
}
