//! The changes an admin makes on an application's page: its settings (NameID, attribute
//! release, signing and encryption, ACS and logout endpoints, the SP's certificates, the tile,
//! the slug) through
//! [`Apps::update`](latchkey_idp::apps::Apps::update) as `latchkey app set` and
//! `PUT /api/v1/apps/{app}` do; its access policy (assigned groups, a second factor) through
//! [`Apps::assign`](latchkey_idp::apps::Apps::assign) and
//! [`MfaPolicy::set_app`]. Each is audited with the person's name by the call that makes
//! it; a refused one gives the page back with the field named and nothing written.

use super::users::GroupForm;
use crate::extract::PathSegment;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::app_new::Problem;
use super::apps::{self, Notice};
use super::forms::{FieldError, csrf_form, drawn_from, field_error};
use super::{Operator, Refusal, admit};
use crate::WebState;
use crate::extract::{CsrfForm, CsrfToken, SessionCookie};
use latchkey_idp::apps::{
    AcsEndpoint, Application, AttributeMapping, Binding, Endpoint, NameIdFormat, NewApplication,
};
use latchkey_idp::console::Permission;
use latchkey_idp::mfa::policy::{AppMfa, MfaPolicy, class_name};

/// The settings form, as shown and as posted (checkboxes: present means on).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct EditForm {
    csrf: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub slug: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub icon_url: String,
    #[serde(default)]
    pub name_id_format: String,
    #[serde(default)]
    pub name_id_source: String,
    /// One mapping a line, in the CLI's and the API's text form.
    #[serde(default)]
    pub attributes: String,
    #[serde(default)]
    pub sign_response: Option<String>,
    #[serde(default)]
    pub sign_assertion: Option<String>,
    #[serde(default)]
    pub authn_requests_signed: Option<String>,
    #[serde(default)]
    pub encrypt_assertion: Option<String>,
    /// PEM; empty forgets it.
    #[serde(default)]
    pub encryption_cert: String,
    /// ACS URLs, one a line; the first is the default. The endpoint fields below are left
    /// as they are when the post does not carry them (the page always does).
    #[serde(default)]
    pub acs_url: Option<String>,
    /// The single-logout URL; empty: none.
    #[serde(default)]
    pub slo_url: Option<String>,
    /// `redirect` or `post`.
    #[serde(default)]
    pub slo_binding: String,
    /// The SP's signing certificates, PEM, one after the other; empty: none.
    #[serde(default)]
    pub signing_cert: Option<String>,
    /// The [`NewApplication::version`] the form was drawn from.
    #[serde(default)]
    pub seen: String,
}

/// The application's MFA policy.
#[derive(Debug, Deserialize)]
pub(crate) struct MfaForm {
    csrf: Option<String>,
    #[serde(default)]
    require_mfa: Option<String>,
    #[serde(default)]
    mfa_class: String,
}

csrf_form!(EditForm, MfaForm);

fn on(b: bool) -> Option<String> {
    b.then(|| "on".to_owned())
}

impl From<&NewApplication> for EditForm {
    fn from(s: &NewApplication) -> Self {
        EditForm {
            csrf: None,
            name: s.name.clone(),
            slug: s.slug.clone(),
            description: s.tile.description.clone().unwrap_or_default(),
            icon_url: s.tile.icon_url.clone().unwrap_or_default(),
            name_id_format: s.name_id.format.uri().to_owned(),
            name_id_source: s.name_id.source.to_string(),
            attributes: s
                .attributes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
            sign_response: on(s.sign_response),
            sign_assertion: on(s.sign_assertion),
            authn_requests_signed: on(s.authn_requests_signed),
            encrypt_assertion: on(s.encrypt_assertion),
            encryption_cert: s.encryption_cert.clone().unwrap_or_default(),
            acs_url: Some({
                let mut acs: Vec<&AcsEndpoint> = s.acs.iter().collect();
                acs.sort_by_key(|e| (!e.is_default, e.index));
                acs.iter()
                    .map(|e| e.url.as_str())
                    .collect::<Vec<_>>()
                    .join("\n")
            }),
            slo_url: Some(s.slo.as_ref().map(|e| e.url.clone()).unwrap_or_default()),
            slo_binding: match s.slo.as_ref().map(|e| e.binding) {
                Some(Binding::HttpPost) => "post".to_owned(),
                _ => "redirect".to_owned(),
            },
            signing_cert: Some(s.signing_certs.join("\n")),
            seen: s.version(),
        }
    }
}

fn optional(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

impl EditForm {
    /// The ACS URLs as the form shows them.
    pub fn acs_text(&self) -> &str {
        self.acs_url.as_deref().unwrap_or_default()
    }

    /// The logout URL as the form shows it.
    pub fn slo_text(&self) -> &str {
        self.slo_url.as_deref().unwrap_or_default()
    }

    /// The signing certificates as the form shows them.
    pub fn signing_text(&self) -> &str {
        self.signing_cert.as_deref().unwrap_or_default()
    }

    /// The NameID format choices, for the select.
    pub fn formats(&self) -> Vec<(&'static str, bool)> {
        [
            NameIdFormat::Persistent,
            NameIdFormat::Transient,
            NameIdFormat::EmailAddress,
            NameIdFormat::Unspecified,
        ]
        .into_iter()
        .map(|f| (f.uri(), f.uri() == self.name_id_format))
        .collect()
    }

    /// Writes the form over a copy of the settings; the registry then checks the result as
    /// it checks a new application.
    fn apply(&self, s: &mut NewApplication) -> latchkey_idp::Result<()> {
        s.name = self.name.trim().to_owned();
        s.slug = self.slug.trim().to_owned();
        s.tile.description = optional(&self.description);
        s.tile.icon_url = optional(&self.icon_url);
        s.name_id.format = NameIdFormat::parse(&self.name_id_format)?;
        s.name_id.source = self.name_id_source.parse()?;
        s.attributes = self
            .attributes
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| {
                l.parse::<AttributeMapping>()
                    .map_err(|e| latchkey_idp::Error::InvalidField {
                        field: "attributes",
                        reason: format!("{l:?}: {e}"),
                    })
            })
            .collect::<Result<_, _>>()?;
        s.sign_response = self.sign_response.is_some();
        s.sign_assertion = self.sign_assertion.is_some();
        s.authn_requests_signed = self.authn_requests_signed.is_some();
        s.encrypt_assertion = self.encrypt_assertion.is_some();
        let cert = optional(&self.encryption_cert);
        if cert.is_none() {
            s.encryption_methods.clear();
        }
        s.encryption_cert = cert;
        if let Some(lines) = &self.acs_url {
            s.acs = acs_endpoints(lines, &s.acs);
        }
        if let Some(slo) = &self.slo_url {
            s.slo = match optional(slo) {
                Some(url) => Some(Endpoint {
                    url,
                    binding: match self.slo_binding.trim() {
                        "" => Binding::HttpRedirect,
                        chosen => Binding::parse(chosen).map_err(|e| {
                            latchkey_idp::Error::InvalidField {
                                field: "slo_binding",
                                reason: e.to_string(),
                            }
                        })?,
                    },
                }),
                None => None,
            };
        }
        if let Some(pem) = &self.signing_cert {
            s.signing_certs = pem_blocks(pem);
        }
        Ok(())
    }
}

/// The ACS endpoints `lines` name, the first the default. A URL the application already had
/// keeps its index and binding (SPs may ask for an endpoint by index); a new one takes the
/// next free index and HTTP-POST. The registry then checks every URL.
fn acs_endpoints(lines: &str, before: &[AcsEndpoint]) -> Vec<AcsEndpoint> {
    let mut next = before
        .iter()
        .map(|e| e.index)
        .max()
        .map_or(0, |m| m.saturating_add(1));
    // A URL typed twice is one endpoint, not two with the same index.
    let mut seen = std::collections::HashSet::new();
    lines
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && seen.insert(*l))
        .enumerate()
        .map(|(i, url)| {
            let mut endpoint = match before.iter().find(|e| e.url == url) {
                Some(e) => e.clone(),
                None => {
                    let e = AcsEndpoint {
                        url: url.to_owned(),
                        binding: Binding::HttpPost,
                        index: next,
                        is_default: false,
                    };
                    next = next.saturating_add(1);
                    e
                }
            };
            endpoint.is_default = i == 0;
            endpoint
        })
        .collect()
}

/// The PEM blocks of `text`, each whole (the registry checks that each is a certificate).
fn pem_blocks(text: &str) -> Vec<String> {
    const END: &str = "-----END CERTIFICATE-----";
    let mut blocks = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        match rest.find(END) {
            Some(at) => {
                let (block, tail) = rest.split_at(at + END.len());
                blocks.push(block.trim().to_owned());
                rest = tail.trim();
            }
            None => {
                blocks.push(rest.to_owned());
                break;
            }
        }
    }
    blocks
}

pub(crate) fn problem(err: latchkey_idp::Error) -> Result<Problem, Refusal> {
    use latchkey_idp::Error as E;
    let field = match &err {
        E::DuplicateEntityId { .. } => "entity_id",
        E::AlreadyAssigned { .. } | E::NotAssigned { .. } => "group",
        _ => return Ok(field_error(err)?.into()),
    };
    Ok(FieldError {
        field,
        message: err.to_string(),
    }
    .into())
}

pub(crate) fn back(app: &Application) -> Response {
    Redirect::to(&format!("/admin/apps/{}", app.id)).into_response()
}

pub(crate) async fn refused(
    state: &WebState,
    op: &Operator,
    csrf: CsrfToken,
    app: Application,
    error: Problem,
) -> Result<Response, Refusal> {
    tracing::info!(app = %app.settings.entity_id, field = %error.field, reason = %error.message,
        "console: application change refused");
    apps::page(
        state,
        op,
        csrf,
        app,
        Notice::default(),
        Some(error),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

/// POST /admin/apps/{id}: the settings.
pub(crate) async fn edit(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
    PathSegment(id): PathSegment,
    CsrfForm(form): CsrfForm<EditForm>,
) -> Result<Response, Refusal> {
    let op = admit(&state, &cookie, &uri, Permission::WriteApps).await?;
    let app = apps::load(&state, &id).await?;
    // The form is written over the settings as they are in the change's transaction; a
    // form drawn before someone else's change is refused, and drawn again with it.
    let result = state
        .store()
        .apps()
        .update_if(
            &op.actor(),
            app.id,
            |now| drawn_from(&form.seen, now),
            |s| form.apply(s),
        )
        .await;
    match result {
        Ok(updated) => Ok(back(&updated)),
        Err(e @ latchkey_idp::Error::ChangedSince { .. }) => {
            let error = problem(e)?;
            tracing::info!(app = %app.settings.entity_id, "console: application changed since its page was drawn");
            let now = apps::load(&state, &id).await?;
            apps::page(
                &state,
                &op,
                csrf,
                now,
                Notice::default(),
                Some(error),
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(e) => {
            let error = problem(e)?;
            tracing::info!(app = %app.settings.entity_id, field = %error.field,
                "console: application change refused");
            apps::page_with(
                &state,
                &op,
                csrf,
                app,
                form,
                Notice::default(),
                Some(error),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

async fn access(
    state: &WebState,
    cookie: &SessionCookie,
    uri: &Uri,
    csrf: CsrfToken,
    id: &str,
    group: &str,
    assign: bool,
) -> Result<Response, Refusal> {
    let op = admit(state, cookie, uri, Permission::WriteApps).await?;
    let app = apps::load(state, id).await?;
    let store = state.store();
    let result = match store.groups().lookup(group.trim()).await {
        Ok(g) if assign => store.apps().assign(&op.actor(), app.id, g.id).await,
        Ok(g) => store.apps().unassign(&op.actor(), app.id, g.id).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(back(&app)),
        Err(e) => {
            let error = problem(e)?;
            refused(state, &op, csrf, app, error).await
        }
    }
}

/// POST /admin/apps/{id}/access: let a group's members use it.
pub(crate) async fn assign(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
    PathSegment(id): PathSegment,
    CsrfForm(form): CsrfForm<GroupForm>,
) -> Result<Response, Refusal> {
    access(&state, &cookie, &uri, csrf, &id, &form.group, true).await
}

/// POST /admin/apps/{id}/access/remove
pub(crate) async fn unassign(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
    PathSegment(id): PathSegment,
    CsrfForm(form): CsrfForm<GroupForm>,
) -> Result<Response, Refusal> {
    access(&state, &cookie, &uri, csrf, &id, &form.group, false).await
}

/// POST /admin/apps/{id}/mfa: whether every sign-in needs a second factor, and the class
/// its assertions state.
pub(crate) async fn mfa(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
    PathSegment(id): PathSegment,
    CsrfForm(form): CsrfForm<MfaForm>,
) -> Result<Response, Refusal> {
    let op = admit(&state, &cookie, &uri, Permission::WriteApps).await?;
    let app = apps::load(&state, &id).await?;
    let Some(mfa_class) = class_name::parse(form.mfa_class.trim()) else {
        let error = Problem {
            field: "mfa_class".into(),
            message: format!(
                "{:?} is not a class: refeds or mobile_two_factor",
                form.mfa_class
            ),
        };
        return refused(&state, &op, csrf, app, error).await;
    };
    let policy = MfaPolicy::new(state.store());
    let to = AppMfa {
        require_mfa: form.require_mfa.is_some(),
        mfa_class,
    };
    if policy.app(app.id).await? != to {
        policy.set_app(&op.actor(), &app, to).await?;
    }
    Ok(back(&app))
}
