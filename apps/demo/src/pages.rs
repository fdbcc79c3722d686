//! The HTML pages: one template (`templates/*.html`) and one function each.

use askama::Template;
use latchkey_sp::jit::RefusalCode;
use latchkey_sp::latchkey_saml::Code as SamlCode;
use latchkey_sp::logout::LogoutOutcome;
use latchkey_sp::store::{Account, AuditEvent, ProvisionedBy};
use latchkey_sp::{Code as SpCode, ToolkitCode};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::DemoCode;
use crate::app::AppKind;
use crate::html::render;
use crate::session::Session;

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

#[derive(Template)]
#[template(path = "signed_out.html")]
struct SignedOutPage {
    title: &'static str,
    app_title: &'static str,
    wiki: bool,
}

/// `/` for an anonymous visitor.
pub(crate) fn signed_out(kind: AppKind) -> String {
    render(&SignedOutPage {
        title: "Welcome",
        app_title: kind.title(),
        wiki: matches!(kind, AppKind::Wiki),
    })
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage<'a> {
    title: &'static str,
    app_title: &'static str,
    name: String,
    role: String,
    provisioning: &'a str,
    operation_id: String,
    account_id: String,
    fields: Vec<(&'a str, &'a str)>,
    roles: String,
    created: String,
    updated: String,
    login: Vec<(&'a str, String)>,
}

/// `/` for a signed-in visitor.
pub(crate) fn home(kind: AppKind, session: &Session, account: &Account) -> String {
    let role = kind
        .primary_role(account.roles.keys())
        .unwrap_or_else(|| "none".to_owned());
    let name = account
        .fields
        .get("display_name")
        .cloned()
        .or_else(|| {
            match (
                account.fields.get("given_name"),
                account.fields.get("surname"),
            ) {
                (Some(g), Some(s)) => Some(format!("{g} {s}")),
                _ => None,
            }
        })
        .unwrap_or_else(|| session.login.name_id.clone());
    let l = &session.login;
    let mut login: Vec<(&str, String)> = vec![
        ("Issuer", l.issuer.clone()),
        ("NameID", l.name_id.clone()),
        (
            "NameID format",
            l.name_id_format
                .clone()
                .unwrap_or_else(|| "unspecified".to_owned()),
        ),
        ("Session index", l.session_index.clone().unwrap_or_default()),
        ("Assertion ID", l.assertion_id.clone()),
    ];
    for (attribute, values) in &l.attributes {
        login.push((attribute.as_str(), values.join(", ")));
    }
    let roles: Vec<&str> = account.roles.keys().map(String::as_str).collect();
    render(&HomePage {
        title: "Home",
        app_title: kind.title(),
        name,
        role,
        provisioning: &session.provisioning,
        operation_id: session.operation_id.to_string(),
        account_id: account.id.to_string(),
        fields: account
            .fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect(),
        roles: roles.join(", "),
        created: rfc3339(account.created_at),
        updated: rfc3339(account.updated_at),
        login,
    })
}

/// One row of the admin page's account table.
struct AccountRow {
    id: String,
    identity: String,
    fields: String,
    roles: String,
    status: &'static str,
    created: String,
    updated: String,
    /// Where the latest change shown in the audit table came from.
    last_change: String,
}

/// One row of the admin page's audit table.
struct EventRow {
    at: String,
    kind: &'static str,
    source: String,
    operation_id: String,
    detail: String,
}

/// Where an audit event's change came from: a person's login, a SCIM client (by its token's
/// name), or single logout.
fn source(e: &AuditEvent) -> String {
    let kind = e.kind.as_str();
    if kind.starts_with("scim.") {
        format!("SCIM ({})", e.actor.as_deref().unwrap_or("unknown token"))
    } else if kind.starts_with("slo.") {
        "single logout".to_owned()
    } else {
        "JIT login".to_owned()
    }
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    title: &'static str,
    app_title: &'static str,
    accounts: Vec<AccountRow>,
    events: Vec<EventRow>,
}

/// `/admin`: accounts provisioned from Latchkey (by JIT logins or SCIM), and the latest audit
/// events with where each came from.
pub(crate) fn admin(kind: AppKind, accounts: &[Account], audit: &[AuditEvent]) -> String {
    let accounts = accounts
        .iter()
        .filter(|a| a.provisioned_by == ProvisionedBy::Jit)
        .map(|a| {
            let fields: Vec<String> = a.fields.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            let roles: Vec<&str> = a.roles.keys().map(String::as_str).collect();
            AccountRow {
                id: a.id.to_string(),
                identity: a
                    .identity
                    .as_ref()
                    .map_or_else(String::new, |i| i.key.clone()),
                fields: fields.join("; "),
                roles: roles.join(", "),
                status: if a.active { "active" } else { "disabled" },
                created: rfc3339(a.created_at),
                updated: rfc3339(a.updated_at),
                last_change: audit
                    .iter()
                    .rev()
                    .find(|e| e.account_id == Some(a.id))
                    .map_or_else(|| "-".to_owned(), source),
            }
        })
        .collect();
    let events = audit
        .iter()
        .rev()
        .map(|e| EventRow {
            at: rfc3339(e.at),
            kind: e.kind.as_str(),
            source: source(e),
            operation_id: e.operation_id.to_string(),
            detail: match &e.plan.action {
                latchkey_sp::jit::PlanAction::Refuse(r) => r.to_string(),
                _ => e.account_id.map(|id| id.to_string()).unwrap_or_default(),
            },
        })
        .collect();
    render(&AdminPage {
        title: "Admin",
        app_title: kind.title(),
        accounts,
        events,
    })
}

/// What a demo page shows as its code: the SP toolkit's, or the demo's own.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PageCode {
    Sp(SpCode),
    Demo(DemoCode),
}

impl PageCode {
    fn as_str(self) -> &'static str {
        match self {
            PageCode::Sp(c) => c.as_str(),
            PageCode::Demo(c) => c.as_str(),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    app_title: &'static str,
    explanation: &'a str,
    code: &'static str,
    operation_id: String,
}

/// An error page: what happened in words, the code, and the operation ID to quote. Never
/// the rule's detail (which element, which ID, what digest): that is for the log and the
/// audit trail under the same operation ID, not for whoever sent the message.
pub(crate) fn error(
    kind: AppKind,
    title: &str,
    code: PageCode,
    explanation: &str,
    operation_id: Uuid,
) -> String {
    render(&ErrorPage {
        title,
        app_title: kind.title(),
        explanation,
        code: code.as_str(),
        operation_id: operation_id.to_string(),
    })
}

/// The SAML codes that mean "not signed by the IdP we trust".
fn is_signature(code: SamlCode) -> bool {
    use SamlCode as S;
    matches!(
        code,
        S::SignatureInvalid
            | S::DigestMismatch
            | S::NotSigned
            | S::SignatureRefused
            | S::NoKeyForAlgorithm
            | S::KeyRefused
            | S::AlgorithmNotAllowed
            | S::IncompleteRedirectSignature
    )
}

/// The SAML codes that mean "not a well-formed message".
fn is_malformed(code: SamlCode) -> bool {
    use SamlCode as S;
    matches!(
        code,
        S::XmlRefused
            | S::UnexpectedElement
            | S::MissingElement
            | S::DuplicateElement
            | S::MissingAttribute
            | S::InvalidValue
            | S::NotTextOnly
            | S::InvalidDatetime
            | S::InvalidDuration
            | S::MissingParameter
            | S::DuplicateParameter
            | S::AmbiguousMessage
            | S::Base64Invalid
            | S::UrlEncodingInvalid
            | S::EncodedTooLarge
            | S::DecodedTooLarge
            | S::InflateFailed
            | S::NotUtf8
            | S::RelayStateTooLong
            | S::UnsupportedVersion
    )
}

/// The sentence shown for a refusal code.
pub(crate) fn explain(kind: AppKind, code: PageCode) -> &'static str {
    use PageCode::{Demo, Sp};
    use SamlCode as S;
    use SpCode::{Jit, Saml, Toolkit};
    match (kind, code) {
        (AppKind::Wiki, Sp(Jit(RefusalCode::NoMatchingRole))) => {
            "Your Latchkey account is not in a group that gives access to the wiki \
             (engineering, or any wiki-* group). Ask an administrator to add you."
        }
        (_, Sp(Jit(RefusalCode::NoMatchingRole))) => {
            "None of your groups gives access to this application."
        }
        (_, Sp(Jit(RefusalCode::RequiredAttributeMissing))) => {
            "Latchkey did not send a piece of information this application needs. Ask an \
             administrator to complete your profile, quoting the operation ID."
        }
        (_, Sp(Saml(s))) if is_signature(s) => {
            "The sign-in response was not signed by the identity provider this application trusts."
        }
        (_, Sp(Saml(S::AudienceMismatch | S::AudienceMissing))) => {
            "The sign-in response was issued for another application."
        }
        (_, Sp(Saml(S::Expired | S::ConfirmationExpired | S::SessionExpired)))
        | (_, Sp(Toolkit(ToolkitCode::AssertionExpired))) => {
            "The sign-in response has expired. Sign in again."
        }
        (_, Sp(Saml(S::NotYetValid | S::ConfirmationNotYetValid))) => {
            "The sign-in response is not valid yet: the clocks of this application and the \
             identity provider disagree."
        }
        (_, Sp(Toolkit(ToolkitCode::AssertionReplayed))) => {
            "This sign-in response was already used once."
        }
        (_, Sp(Saml(S::UnsolicitedNotAllowed))) => {
            "This application only accepts sign-ins that it started. Use its Sign in button."
        }
        (_, Sp(Saml(S::InResponseToMismatch))) => {
            "The sign-in response answers a request this application does not know (or \
             already used). Sign in again from this application."
        }
        (_, Sp(Toolkit(ToolkitCode::RequestExpired))) => {
            "The sign-in took too long. Sign in again."
        }
        (_, Sp(Saml(S::IssuerMismatch | S::IssuerFormat))) => {
            "The sign-in response came from an unknown identity provider."
        }
        (_, Sp(Saml(S::DestinationMismatch | S::RecipientMismatch))) => {
            "The sign-in response was addressed to another URL."
        }
        (_, Sp(Saml(S::StatusNotSuccess))) => "The identity provider did not sign you in.",
        (_, Sp(Saml(s))) if is_malformed(s) => "The sign-in response is malformed.",
        (AppKind::Wiki, Demo(DemoCode::AdminRoleRequired)) => {
            "The admin page is for accounts with the wiki's admin role."
        }
        (AppKind::Helpdesk, Demo(DemoCode::AdminRoleRequired)) => {
            "The admin page is for accounts with the helpdesk's agent role."
        }
        (_, Sp(Toolkit(ToolkitCode::StoreBusy | ToolkitCode::TooManyPendingRequests))) => {
            "Too many people are signing in at this moment. Try again in a few seconds."
        }
        (_, Sp(Toolkit(ToolkitCode::TooManyPendingFromClient))) => {
            "Too many sign-ins were started from your network and not finished. Wait a few \
             minutes and try again."
        }
        (_, Demo(DemoCode::Internal)) => {
            "This application failed. Quote the operation ID below to your administrator."
        }
        _ => "The sign-in was refused.",
    }
}

#[derive(Template)]
#[template(path = "leaving.html")]
struct LeavingPage<'a> {
    title: &'static str,
    app_title: &'static str,
    app_name: &'static str,
    url: &'a str,
}

/// The hop to the IdP after `POST /logout`: this app's session has already ended.
///
/// A meta refresh, not a redirect: it answers a form POST whose next hop is another site,
/// and browsers apply the posting page's CSP `form-action 'self'` to redirects after the
/// POST, so a 303 to the IdP could be blocked, while a refresh is a new navigation.
pub(crate) fn leaving(kind: AppKind, idp_url: &str) -> String {
    render(&LeavingPage {
        title: "Signing out",
        app_title: kind.title(),
        app_name: kind.name(),
        url: idp_url,
    })
}

#[derive(Template)]
#[template(path = "signed_out_everywhere.html")]
struct SignedOutEverywherePage<'a> {
    title: &'static str,
    app_title: &'static str,
    app_name: &'static str,
    /// The IdP's status when not every application confirmed.
    partial: Option<&'a str>,
}

/// The end of a single logout this app started: the IdP's verified answer.
pub(crate) fn signed_out_everywhere(kind: AppKind, outcome: &LogoutOutcome) -> String {
    render(&SignedOutEverywherePage {
        title: "Signed out",
        app_title: kind.title(),
        app_name: kind.name(),
        partial: match outcome {
            LogoutOutcome::Complete => None,
            LogoutOutcome::Partial { status } => Some(status.as_str()),
        },
    })
}

/// The sentence shown for a refused logout message.
pub(crate) fn explain_logout(code: SpCode) -> &'static str {
    use SamlCode as S;
    use SpCode::{Saml, Toolkit};
    match code {
        Toolkit(ToolkitCode::LogoutReplayed) => "This sign-out request was already used once.",
        Toolkit(ToolkitCode::LogoutUnknownRequest) | Saml(S::InResponseToMismatch) => {
            "This sign-out answer is for a request this application does not know (or already \
             used). You are signed out of this application."
        }
        Toolkit(ToolkitCode::LogoutNotConfigured) => {
            "Single logout is not set up for this application."
        }
        Saml(s) if is_signature(s) => {
            "The sign-out message was not signed by the identity provider this application \
             trusts. Nothing was signed out."
        }
        Saml(S::LogoutExpired | S::LogoutNotYetValid) => {
            "The sign-out message is too old, or the clocks disagree. Nothing was signed out."
        }
        _ => "The sign-out message was refused. Nothing was signed out.",
    }
}
