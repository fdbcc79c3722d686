//! What differs between the two apps (contract, roles, wording), and the state they share.

use latchkey_sp::ServiceProvider;
use latchkey_sp::StoreError;
use latchkey_sp::idp::IdpTrust;
use latchkey_sp::jit::{Contract, JitEngine, Outcome, PlanAction, Provisioned};
use latchkey_sp::replay::SqlReplayCache;
use latchkey_sp::scim::service::ScimService;
use latchkey_sp::settings::AuditSettings;
use latchkey_sp::store::{AuditPurge, Database, SqlAccountStore};
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

use crate::DemoError;
use crate::config::DemoConfig;
use crate::session::Sessions;

/// Which demo app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppKind {
    /// Keyed on the e-mail NameID; reader/editor/admin from groups.
    Wiki,
    /// Keyed on a persistent NameID; agent when the department is support.
    Helpdesk,
}

/// The wiki's JIT contract: e-mail NameID, roles from groups, everyone else refused.
pub const WIKI_CONTRACT: &str = r#"
identity = { source = "name_id", format = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress" }
deny_when_no_role = true

[[fields]]
attribute = "email"
field = "email"
ownership = "idp"

[[fields]]
attribute = "displayName"
field = "display_name"
ownership = "idp"

[[fields]]
attribute = "givenName"
field = "given_name"
ownership = "idp"

[[fields]]
attribute = "sn"
field = "surname"
ownership = "idp"

[[roles]]
grant = "admin"
when = { attribute = "groups", contains = "wiki-admins" }

[[roles]]
grant = "editor"
when = { attribute = "groups", contains = "wiki-editors" }

[[roles]]
grant = "reader"
when = { attribute = "groups", contains = "engineering" }

[[roles]]
grant = "reader"
when = { attribute = "groups", prefix = "wiki-" }
"#;

/// The helpdesk's JIT contract: persistent NameID, name and department required, agents
/// from the support department, everyone else a requester.
pub const HELPDESK_CONTRACT: &str = r#"
identity = { source = "persistent_name_id" }
default_role = "requester"

[[fields]]
attribute = "givenName"
field = "given_name"
ownership = "idp"
required = true

[[fields]]
attribute = "sn"
field = "surname"
ownership = "idp"
required = true

[[fields]]
attribute = "department"
field = "department"
ownership = "idp"
required = true

[[fields]]
attribute = "email"
field = "email"
ownership = "idp"

[[roles]]
grant = "agent"
when = { attribute = "department", equals = "support" }
"#;

impl AppKind {
    /// The short name (`wiki`, `helpdesk`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Wiki => "wiki",
            Self::Helpdesk => "helpdesk",
        }
    }

    /// The title shown on pages.
    pub fn title(self) -> &'static str {
        match self {
            Self::Wiki => "Latchkey Wiki",
            Self::Helpdesk => "Latchkey Helpdesk",
        }
    }

    /// The built-in contract text.
    pub fn contract_toml(self) -> &'static str {
        match self {
            Self::Wiki => WIKI_CONTRACT,
            Self::Helpdesk => HELPDESK_CONTRACT,
        }
    }

    /// Roles from most to least powerful; the first one held is the one shown.
    pub fn role_order(self) -> &'static [&'static str] {
        match self {
            Self::Wiki => &["admin", "editor", "reader"],
            Self::Helpdesk => &["agent", "requester"],
        }
    }

    /// The role that may open the admin page.
    pub fn admin_role(self) -> &'static str {
        match self {
            Self::Wiki => "admin",
            Self::Helpdesk => "agent",
        }
    }

    /// The SCIM attribute holding what the app's contract keys accounts on: the wiki keys on
    /// the e-mail NameID, the helpdesk on a persistent one (SCIM's `externalId`).
    pub fn scim_name_id(self) -> &'static str {
        match self {
            Self::Wiki => "emails",
            Self::Helpdesk => "externalId",
        }
    }

    /// The session cookie's name. Distinct per app: browsers do not separate cookies by port,
    /// so two apps on one host would otherwise overwrite each other's session.
    pub fn cookie_name(self) -> &'static str {
        match self {
            Self::Wiki => "latchkey_wiki_session",
            Self::Helpdesk => "latchkey_helpdesk_session",
        }
    }

    /// The shown role among `roles`.
    pub fn primary_role<'a>(self, roles: impl IntoIterator<Item = &'a String>) -> Option<String> {
        let held: Vec<&String> = roles.into_iter().collect();
        self.role_order()
            .iter()
            .find(|r| held.iter().any(|h| h.as_str() == **r))
            .map(|r| (*r).to_owned())
            .or_else(|| held.first().map(|r| (*r).clone()))
    }

    /// "created just now from your Latchkey login", "updated: role editor -> admin", ...
    pub fn describe(self, p: &Provisioned) -> String {
        match (&p.outcome, &p.plan.action) {
            (Outcome::Created, _) => "created just now from your Latchkey login".to_owned(),
            (Outcome::Linked, _) => "linked by e-mail to an existing local account".to_owned(),
            (Outcome::Unchanged, _) => "up to date: nothing changed at this login".to_owned(),
            (
                Outcome::Updated,
                PlanAction::Update {
                    field_changes,
                    roles_added,
                    roles_removed,
                    ..
                },
            ) => {
                let now_roles: Vec<&String> = p.account.roles.keys().collect();
                let before: Vec<String> = now_roles
                    .iter()
                    .filter(|r| !roles_added.contains(r.as_str()))
                    .map(|r| (*r).clone())
                    .chain(roles_removed.iter().cloned())
                    .collect();
                let mut parts = Vec::new();
                let old = self.primary_role(before.iter());
                let new = self.primary_role(now_roles.iter().copied());
                if old != new {
                    parts.push(format!(
                        "role {} -> {}",
                        old.as_deref().unwrap_or("none"),
                        new.as_deref().unwrap_or("none")
                    ));
                }
                for c in field_changes {
                    parts.push(format!(
                        "{} {} -> {}",
                        c.field.replace('_', " "),
                        c.old.as_deref().unwrap_or("(none)"),
                        c.new.as_deref().unwrap_or("(none)")
                    ));
                }
                if parts.is_empty() {
                    parts.push("roles adjusted".to_owned());
                }
                format!("updated: {}", parts.join("; "))
            }
            (Outcome::Updated, _) => "updated".to_owned(),
        }
    }
}

/// Where "now" comes from: the system clock, or a fixed instant for tests.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    /// The wall clock.
    System,
    /// Always this instant.
    Fixed(OffsetDateTime),
}

impl Clock {
    /// The current time.
    #[allow(clippy::disallowed_methods)] // the demo's one read of the wall clock
    pub fn now(self) -> OffsetDateTime {
        match self {
            Self::System => OffsetDateTime::now_utc(),
            Self::Fixed(t) => t,
        }
    }
}

/// One running demo app.
#[derive(Debug)]
pub struct DemoApp {
    kind: AppKind,
    sp: ServiceProvider,
    engine: JitEngine<SqlAccountStore>,
    replay: SqlReplayCache,
    pub(crate) sessions: Arc<Sessions>,
    scim: Option<ScimService>,
    clock: Clock,
    secure_cookies: bool,
    trust_forwarded_for: bool,
    audit: AuditSettings,
    /// The last database probe of `/readyz` and when it ran ([`DemoApp::database_check`]).
    probe: tokio::sync::Mutex<Option<(Instant, &'static str)>>,
    /// What `/readyz` last found (database, IdP metadata), so that its log says a state once,
    /// when it begins ([`DemoApp::readiness_changed`]).
    ready_said: latchkey_sp::health::LastFinding<(&'static str, &'static str)>,
}

/// How long `/readyz` waits for the database to take a login's transaction: well inside a
/// load balancer's probe timeout, and far below the pool's and SQLite's 30 s.
const READY_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// A probe result younger than this is reused, so that however often `/readyz` is called
/// (it is public) it costs the database at most one probe a second; concurrent calls wait
/// for the one probe in flight.
const READY_PROBE_REUSE: Duration = Duration::from_secs(1);

impl DemoApp {
    /// Opens the app's database (creating an empty one) and builds its SP.
    pub async fn open(
        kind: AppKind,
        config: &DemoConfig,
        idp: IdpTrust,
        clock: Clock,
    ) -> Result<Self, DemoError> {
        let db = Database::connect(&config.database_url())
            .await
            .map_err(latchkey_sp::Error::from)?;
        Self::with_database(kind, config, idp, clock, db)
    }

    /// Builds the app over an already connected database (tests use an in-memory one).
    pub fn with_database(
        kind: AppKind,
        config: &DemoConfig,
        idp: IdpTrust,
        clock: Clock,
        db: Database,
    ) -> Result<Self, DemoError> {
        let contract = match &config.sp.provisioning {
            Some(c) => c.clone(),
            None => Contract::from_toml(kind.contract_toml()).map_err(latchkey_sp::Error::from)?,
        };
        let key = config.sp.load_key().map_err(latchkey_sp::Error::from)?;
        // Outstanding logins live in the app's database, so a restart between the redirect to
        // the IdP and its answer does not break the login.
        let idp_entity_id = idp.entity_id.clone();
        let sp = ServiceProvider::with_database(&config.sp, key, idp, db.clone())?;
        let engine = JitEngine::new(contract, SqlAccountStore::new(db.clone()))
            .unchanged_logins(config.sp.audit.unchanged_logins);
        let sessions = Arc::new(Sessions::new());
        let scim = match &config.sp.scim {
            Some(settings) => {
                let base = config
                    .sp
                    .acs_url
                    .strip_suffix("/saml/acs")
                    .unwrap_or(&config.sp.acs_url);
                let ended = sessions.clone();
                let service = ScimService::new(
                    engine.clone(),
                    settings,
                    &idp_entity_id,
                    &format!("{base}/scim/v2"),
                )
                .map_err(latchkey_sp::Error::from)?
                .on_deactivate(Arc::new(move |account| {
                    u64::try_from(ended.end_for_account(account)).unwrap_or(u64::MAX)
                }));
                Some(service)
            }
            None => None,
        };
        Ok(Self {
            kind,
            sp,
            engine,
            replay: SqlReplayCache::new(db),
            sessions,
            scim,
            clock,
            secure_cookies: config.secure_cookies(),
            trust_forwarded_for: config.trust_forwarded_for,
            audit: config.sp.audit,
            probe: tokio::sync::Mutex::new(None),
            ready_said: latchkey_sp::health::LastFinding::default(),
        })
    }

    /// Which app this is.
    pub fn kind(&self) -> AppKind {
        self.kind
    }

    /// The SP.
    pub fn sp(&self) -> &ServiceProvider {
        &self.sp
    }

    /// The JIT engine.
    pub fn engine(&self) -> &JitEngine<SqlAccountStore> {
        &self.engine
    }

    /// The account store.
    pub fn store(&self) -> &SqlAccountStore {
        self.engine.store()
    }

    /// The replay cache.
    pub fn replay(&self) -> &SqlReplayCache {
        &self.replay
    }

    /// The SCIM server, when the configuration has `[sp.scim]`.
    pub fn scim(&self) -> Option<&ScimService> {
        self.scim.as_ref()
    }

    /// Where the SCIM endpoints get the time.
    pub(crate) fn clock(&self) -> Clock {
        self.clock
    }

    /// The current time.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Deletes the audit events older than `[sp.audit] retain_days` as of the app's clock,
    /// and records the purge (`audit.purged`); `None` when the app keeps every event (the
    /// default). [`crate::run`] calls it every ten minutes.
    pub async fn purge_audit(&self) -> Result<Option<AuditPurge>, StoreError> {
        self.store()
            .apply_audit_retention(&self.audit, self.now())
            .await
    }

    /// `"ok"` when the database takes a login's transaction within a bounded time
    /// ([`latchkey_sp::store::Database::probe`]), else the code of why not
    /// ([`latchkey_sp::health::ReadyCode`]; the error itself is logged): `/readyz`'s
    /// `database` check. A result less than a second old is reused.
    pub(crate) async fn database_check(&self) -> &'static str {
        let mut last = self.probe.lock().await;
        if let Some((at, outcome)) = last.as_ref()
            && at.elapsed() < READY_PROBE_REUSE
        {
            return outcome;
        }
        let outcome = match self.store().database().probe(READY_PROBE_TIMEOUT).await {
            Ok(()) => "ok",
            Err(e) => {
                let code = latchkey_sp::health::ReadyCode::for_probe(&e);
                tracing::warn!(app = self.kind().name(), %code, error = %e, "database probe failed");
                code.as_str()
            }
        };
        *last = Some((Instant::now(), outcome));
        outcome
    }

    /// Whether `/readyz` finds `checks` (database, IdP metadata) other than the last call did,
    /// and what that call found: it logs a state when it begins, not at every call (anyone
    /// may call it, as often as they like).
    pub(crate) fn readiness_changed(
        &self,
        checks: (&'static str, &'static str),
    ) -> Option<Option<(&'static str, &'static str)>> {
        self.ready_said.changed(checks)
    }

    pub(crate) fn secure_cookies(&self) -> bool {
        self.secure_cookies
    }

    /// The browser's address as the login-start bounds count it: the socket peer, or the
    /// believed proxy's last `X-Forwarded-For` hop.
    pub(crate) fn client_address(
        &self,
        headers: &axum::http::HeaderMap,
        peer: Option<std::net::IpAddr>,
    ) -> Option<String> {
        latchkey_sp::network::client_address(
            headers
                .get_all("x-forwarded-for")
                .iter()
                .map(|v| v.to_str().unwrap_or_default()),
            peer,
            self.trust_forwarded_for,
        )
    }
}
