//! The HTML pages, one function each.

use std::fmt::Write;

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
use crate::html::{esc, page, refresh_page};
use crate::session::Session;

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// `/` for an anonymous visitor.
pub(crate) fn signed_out(kind: AppKind) -> String {
    let intro = match kind {
        AppKind::Wiki => {
            "Members of <code>engineering</code> or any <code>wiki-*</code> group can read; \
             <code>wiki-editors</code> edit and <code>wiki-admins</code> administer."
        }
        AppKind::Helpdesk => {
            "Everyone can open requests; members of the <code>support</code> department \
             are agents."
        }
    };
    let body = format!(
        "<section class=\"card\"><h1>Welcome</h1><p>You are not signed in. Accounts here \
         are created just in time from your Latchkey login.</p><p>{intro}</p>\
         <p><a class=\"button\" href=\"/login\">Sign in with Latchkey</a></p></section>"
    );
    page("Welcome", kind.title(), &body)
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
    let mut body = String::new();
    let _ = write!(
        body,
        "<section class=\"card ok\"><h1>Signed in as {}</h1>\
         <p>Role: <span class=\"role\">{}</span></p>\
         <p>This account was <strong>{}</strong>.</p>\
         <p class=\"muted\">Operation <code>{}</code></p>\
         <form method=\"post\" action=\"/logout\"><button type=\"submit\">Sign out</button></form>\
         </section>",
        esc(&name),
        esc(&role),
        esc(&session.provisioning),
        session.operation_id,
    );
    body.push_str("<section class=\"card\"><h2>Your account</h2>");
    body.push_str(&account_table(account));
    body.push_str("</section><section class=\"card\"><h2>Your Latchkey login</h2><table>");
    let login = &session.login;
    for (k, v) in [
        ("Issuer", login.issuer.as_str()),
        ("NameID", login.name_id.as_str()),
        (
            "NameID format",
            login.name_id_format.as_deref().unwrap_or("unspecified"),
        ),
        (
            "Session index",
            login.session_index.as_deref().unwrap_or(""),
        ),
        ("Assertion ID", login.assertion_id.as_str()),
    ] {
        let _ = write!(body, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
    }
    for (name, values) in &login.attributes {
        let _ = write!(
            body,
            "<tr><th>{}</th><td>{}</td></tr>",
            esc(name),
            esc(&values.join(", "))
        );
    }
    body.push_str("</table></section>");
    page("Home", kind.title(), &body)
}

fn account_table(a: &Account) -> String {
    let mut t = String::from("<table>");
    let _ = write!(t, "<tr><th>ID</th><td><code>{}</code></td></tr>", a.id);
    for (k, v) in &a.fields {
        let _ = write!(t, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
    }
    let roles: Vec<&str> = a.roles.keys().map(String::as_str).collect();
    let _ = write!(
        t,
        "<tr><th>roles</th><td>{}</td></tr><tr><th>created</th><td>{}</td></tr>\
         <tr><th>updated</th><td>{}</td></tr></table>",
        esc(&roles.join(", ")),
        rfc3339(a.created_at),
        rfc3339(a.updated_at)
    );
    t
}

/// `/admin`: accounts JIT created, and the latest audit events.
pub(crate) fn admin(kind: AppKind, accounts: &[Account], audit: &[AuditEvent]) -> String {
    let mut body = String::from(
        "<section class=\"card\"><h1>Accounts created by JIT</h1><table>\
         <tr><th>ID</th><th>Identity</th><th>Fields</th><th>Roles</th><th>Created</th><th>Updated</th></tr>",
    );
    for a in accounts
        .iter()
        .filter(|a| a.provisioned_by == ProvisionedBy::Jit)
    {
        let fields: Vec<String> = a.fields.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        let roles: Vec<&str> = a.roles.keys().map(String::as_str).collect();
        let _ = write!(
            body,
            "<tr><td><code>{}</code></td><td class=\"wrap\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            a.id,
            esc(a.identity.as_ref().map_or("", |i| i.key.as_str())),
            esc(&fields.join("; ")),
            esc(&roles.join(", ")),
            rfc3339(a.created_at),
            rfc3339(a.updated_at),
        );
    }
    body.push_str(
        "</table></section><section class=\"card\"><h2>Audit log</h2><table>\
                   <tr><th>When</th><th>Event</th><th>Operation</th><th>Detail</th></tr>",
    );
    for e in audit.iter().rev() {
        let detail = match &e.plan.action {
            latchkey_sp::jit::PlanAction::Refuse(r) => r.to_string(),
            _ => e.account_id.map(|id| id.to_string()).unwrap_or_default(),
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            rfc3339(e.at),
            esc(e.kind.as_str()),
            e.operation_id,
            esc(&detail)
        );
    }
    body.push_str("</table></section>");
    page("Admin", kind.title(), &body)
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
    let mut body = String::new();
    let _ = write!(
        body,
        "<section class=\"card error\"><h1>{}</h1><p>{}</p>\
         <p>Error code: <code class=\"code\">{}</code></p>\
         <p>Operation ID: <code class=\"operation\">{}</code></p>",
        esc(title),
        esc(explanation),
        esc(code.as_str()),
        operation_id
    );
    body.push_str(
        "<p class=\"muted\">Quote the operation ID to your administrator: it is in this \
         app's log and audit trail.</p><p><a class=\"button\" href=\"/login\">Try again</a> \
         <a href=\"/\">Home</a></p></section>",
    );
    page(title, kind.title(), &body)
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
        (_, Demo(DemoCode::Internal)) => {
            "This application failed. Quote the operation ID below to your administrator."
        }
        _ => "The sign-in was refused.",
    }
}

/// The hop to the IdP after `POST /logout`: this app's session has already ended.
pub(crate) fn leaving(kind: AppKind, idp_url: &str) -> String {
    let body = format!(
        "<section class=\"card\"><h1>Signing out</h1><p>You are signed out of the {}. \
         Signing you out of Latchkey and your other applications…</p></section>",
        esc(kind.name())
    );
    refresh_page("Signing out", kind.title(), idp_url, &body)
}

/// The end of a single logout this app started: the IdP's verified answer.
pub(crate) fn signed_out_everywhere(kind: AppKind, outcome: &LogoutOutcome) -> String {
    let body = match outcome {
        LogoutOutcome::Complete => format!(
            "<section class=\"card ok\"><h1>You are signed out</h1><p>You are signed out of \
             the {} and of Latchkey, and Latchkey signed you out of your other \
             applications.</p>",
            esc(kind.name())
        ),
        LogoutOutcome::Partial { status } => format!(
            "<section class=\"card error\"><h1>You are signed out here</h1><p>You are signed \
             out of the {} and of Latchkey, but not every application confirmed it signed you \
             out (<code>{}</code>). Close the browser to be sure.</p>",
            esc(kind.name()),
            esc(status)
        ),
    };
    let body =
        format!("{body}<p><a class=\"button\" href=\"/login\">Sign in again</a></p></section>");
    page("Signed out", kind.title(), &body)
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
