//! The SP toolkit's SCIM server, without HTTP: users and groups over the account store, every
//! user write going through the JIT engine's one provisioning path.
//!
//! # How a SCIM user becomes an account
//! A User resource is turned into the [`LoginFacts`] a login would bring: the NameID is the
//! SCIM attribute [`ScimSettings::name_id`] names (`userName` by default) under the configured
//! IdP, and each SAML attribute the contract reads is taken from a SCIM path (defaults in
//! [`DEFAULT_ATTRIBUTES`], e.g. `email` from the primary e-mail, `groups` from the names of
//! the SCIM groups the user is in). The contract then maps, plans and applies exactly as for
//! a login (field ownership, managed roles, refusals), in one transaction with the SCIM
//! columns and an audit event naming the token. So a later SAML login of the same person
//! finds the same account, and a group change pushed by SCIM moves managed roles as a login
//! with the new groups would.
//!
//! Two contract rules are read differently, because SCIM provisions ahead of any login:
//! `on_first_login = "refuse"` does not stop SCIM from creating the account (that is the
//! pre-provisioning the setting exists for), and `deny_when_no_role` refuses the login, not
//! the account: a user pushed before its groups is created with no role.
//!
//! `active: false` disables the account (its logins are refused with `ACCOUNT_DISABLED`) and
//! calls the application's deactivation hook, which ends its sessions. `DELETE` follows the
//! contract's `deprovision`: disable the account and detach it from SCIM, or delete it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::error::ScimError;
use super::filter::AttrPath;
use super::list::ListQuery;
use super::patch;
use super::schema::{GROUP_TYPE, USER_TYPE};
use super::{MAX_PAGE, if_match_admits};
use crate::error::{Error, SettingsError, StoreError};
use crate::jit::engine::Step;
use crate::jit::{
    Contract, Deprovision, IdentitySource, JitEngine, LoginFacts, NAMEID_FORMAT_PERSISTENT,
    Outcome, PlanAction, ProvisioningPlan, RefusalCode, ScimRecord,
};
use crate::store::{
    AccountStore, AccountTx, AuditEvent, AuditKind, Backend, SqlAccountStore, SqlAccountTx,
    from_millis, millis,
};

/// How long a SCIM delete (`deprovision = "delete"`) is remembered against logins that
/// authenticated before it ([`crate::jit::RefusalCode::AccountDeleted`]): past the lifetime
/// of any assertion issued before it (minutes: the IdP's are valid for five) and of a login in
/// flight (seconds), with a wide margin. A login authenticated before the delete but
/// processed later than this would create the account again.
pub const DELETED_IDENTITY_LIFETIME: time::Duration = time::Duration::hours(1);

/// Records the identity of account `$1` as deleted at `$2`, remembered until `$3`.
const REMEMBER_DELETED_IDENTITY: &str = "INSERT INTO sp_deleted_identities (idp_entity_id, \
    identity_key, deleted_at, expires_at) SELECT idp_entity_id, identity_key, $2, $3 \
    FROM sp_accounts WHERE id = $1 AND idp_entity_id IS NOT NULL AND identity_key IS NOT NULL \
    ON CONFLICT (idp_entity_id, identity_key) DO UPDATE SET deleted_at = excluded.deleted_at, \
    expires_at = excluded.expires_at";

/// Forgets the deletes no longer remembered at `$1`.
const PURGE_DELETED_IDENTITIES: &str = "DELETE FROM sp_deleted_identities WHERE expires_at <= $1";

/// The SAML attribute names a SCIM user feeds by default, and the SCIM path each is read
/// from. A multi-valued complex attribute named without a sub-attribute (`emails`) gives its
/// primary value, or its first. `[scim.attributes]` adds to these or replaces one.
pub const DEFAULT_ATTRIBUTES: &[(&str, &str)] = &[
    ("email", "emails"),
    ("mail", "emails"),
    ("displayName", "displayName"),
    ("cn", "displayName"),
    ("givenName", "name.givenName"),
    ("sn", "name.familyName"),
    ("uid", "userName"),
    ("title", "title"),
    ("groups", "groups.display"),
    (
        "department",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
    ),
    (
        "employeeNumber",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
    ),
];

/// `[scim]` in the SP settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScimSettings {
    /// The bearer tokens SCIM clients use.
    pub tokens: Vec<TokenSettings>,
    /// The SCIM base URL, for `meta.location`. Default: `/scim/v2` beside the ACS URL.
    #[serde(default)]
    pub base_url: Option<String>,
    /// The IdP whose identities SCIM writes (the SCIM client is that IdP, or feeds it).
    /// Default: the `[idp]` entity ID.
    #[serde(default)]
    pub idp_entity_id: Option<String>,
    /// The SCIM path holding the NameID value accounts are keyed by.
    #[serde(default = "default_name_id")]
    pub name_id: String,
    /// SAML attribute name to SCIM path, over [`DEFAULT_ATTRIBUTES`].
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

fn default_name_id() -> String {
    "userName".to_owned()
}

/// One bearer token: a name for the audit log, and the token's SHA-256 (hex). The token
/// itself is never stored.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    /// The name audited as the actor of its writes.
    pub name: String,
    /// Hex SHA-256 of the token.
    pub sha256: String,
}

impl fmt::Debug for TokenSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSettings")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The SHA-256 (hex) to configure for `token`.
pub fn token_sha256(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Who is calling: the name of the token presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(pub String);

pub use latchkey_scim::Resource;

/// Called with the account ID when SCIM disables or deletes an account; returns how many
/// sessions the application ended.
pub type DeactivationHook = Arc<dyn Fn(Uuid) -> u64 + Send + Sync>;

/// A SCIM server over an application's account store and JIT engine.
#[derive(Clone)]
pub struct ScimService {
    engine: JitEngine<SqlAccountStore>,
    contract: Contract,
    idp_entity_id: String,
    base_url: String,
    name_id: AttrPath,
    attributes: Vec<(String, AttrPath)>,
    tokens: Vec<(String, [u8; 32])>,
    on_deactivate: Option<DeactivationHook>,
    max_filtered_users: usize,
}

impl fmt::Debug for ScimService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScimService")
            .field("base_url", &self.base_url)
            .field("idp_entity_id", &self.idp_entity_id)
            .finish_non_exhaustive()
    }
}

fn resolve_path(text: &str) -> Result<AttrPath, SettingsError> {
    let mut path = AttrPath::parse(text).ok_or_else(|| SettingsError::Invalid {
        setting: "scim.attributes",
        detail: format!("`{text}` is not a SCIM path"),
    })?;
    path.resolve_in(&USER_TYPE)
        .ok_or_else(|| SettingsError::Invalid {
            setting: "scim.attributes",
            detail: format!("`{text}` names no User attribute"),
        })?;
    Ok(path)
}

impl ScimService {
    /// A server for `engine`'s accounts. `default_idp` and `default_base` are used when the
    /// settings do not name the IdP or the base URL.
    pub fn new(
        engine: JitEngine<SqlAccountStore>,
        settings: &ScimSettings,
        default_idp: &str,
        default_base: &str,
    ) -> Result<Self, SettingsError> {
        let mut tokens = Vec::with_capacity(settings.tokens.len());
        for t in &settings.tokens {
            let mut hash = [0u8; 32];
            hex::decode_to_slice(t.sha256.trim(), &mut hash).map_err(|_| {
                SettingsError::Invalid {
                    setting: "scim.tokens",
                    detail: format!("token `{}`: sha256 must be 64 hex digits", t.name),
                }
            })?;
            if t.name.is_empty() {
                return Err(SettingsError::Invalid {
                    setting: "scim.tokens",
                    detail: "a token needs a name".to_owned(),
                });
            }
            tokens.push((t.name.clone(), hash));
        }
        let mut attributes: BTreeMap<String, String> = DEFAULT_ATTRIBUTES
            .iter()
            .map(|(a, p)| ((*a).to_owned(), (*p).to_owned()))
            .collect();
        attributes.extend(settings.attributes.clone());
        let attributes = attributes
            .into_iter()
            .map(|(a, p)| Ok((a, resolve_path(&p)?)))
            .collect::<Result<Vec<_>, SettingsError>>()?;
        Ok(Self {
            contract: scim_contract(engine.contract()),
            engine,
            idp_entity_id: settings
                .idp_entity_id
                .clone()
                .unwrap_or_else(|| default_idp.to_owned()),
            base_url: settings
                .base_url
                .clone()
                .unwrap_or_else(|| default_base.to_owned())
                .trim_end_matches('/')
                .to_owned(),
            name_id: resolve_path(&settings.name_id)?,
            attributes,
            tokens,
            on_deactivate: None,
            max_filtered_users: MAX_FILTERED_USERS,
        })
    }

    /// Lowers or raises [`MAX_FILTERED_USERS`], the most users a filter other than
    /// `userName eq`, or a sort, is evaluated over.
    pub fn max_filtered_users(mut self, limit: usize) -> Self {
        self.max_filtered_users = limit;
        self
    }

    /// Sets the hook that ends an account's sessions when SCIM disables or deletes it.
    pub fn on_deactivate(mut self, hook: DeactivationHook) -> Self {
        self.on_deactivate = Some(hook);
        self
    }

    /// The base URL resources are located under.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The token's actor, if `authorization` is `Bearer <a configured token>`. Every
    /// configured hash is compared, in constant time, whatever matches.
    pub fn authenticate(&self, authorization: Option<&str>) -> Option<Actor> {
        let token = authorization?
            .strip_prefix("Bearer ")
            .or_else(|| authorization?.strip_prefix("bearer "))?
            .trim();
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for (name, hash) in &self.tokens {
            if bool::from(hash.ct_eq(&digest)) {
                found = Some(Actor(name.clone()));
            }
        }
        found
    }

    fn store(&self) -> &SqlAccountStore {
        self.engine.store()
    }

    // ---- users -------------------------------------------------------------------------

    /// `GET /Users/{id}`.
    pub async fn get_user(&self, id: &str) -> Result<Resource, ScimError> {
        let id = parse_id(id, "User")?;
        let mut tx = self.store().begin().await.map_err(store_failed)?;
        let row = load_user(&mut tx, id).await?;
        let groups = user_groups(&mut tx, id).await?;
        Ok(self.render_user(&row, &groups))
    }

    /// `GET /Users`.
    ///
    /// Bounded whatever the application's size: `userName eq "..."`, what a provisioning
    /// client asks before it creates a user, is answered from the unique index; a listing
    /// without filter or sort (a client paging through every user to reconcile) is cut in
    /// SQL, with only the page's group memberships read; any other filter or a sort is
    /// evaluated over the rendered users, which is refused (`tooMany`) past
    /// [`MAX_FILTERED_USERS`] users (or [`Self::max_filtered_users`]) rather than loading
    /// them all.
    pub async fn list_users(&self, query: &ListQuery) -> Result<Value, ScimError> {
        let pool = self.store().database().pool();
        let by_name = query
            .filter
            .as_ref()
            .and_then(|f| f.as_simple_eq())
            .and_then(|(path, value)| {
                (path.uri.is_none() && path.attr == "userName" && path.sub.is_none())
                    .then(|| value.to_lowercase())
            });
        if let Some(name) = by_name {
            let rows = sqlx::query(USER_BY_NAME)
                .bind(name)
                .fetch_all(pool)
                .await
                .map_err(store_internal)?;
            let resources = self.render_users(&rows).await?;
            return Ok(query.respond(resources));
        }
        let total: i64 = sqlx::query_scalar(COUNT_USERS)
            .fetch_one(pool)
            .await
            .map_err(store_internal)?;
        let total = usize::try_from(total).unwrap_or(0);
        if query.filter.is_none() && query.sort_by.is_none() {
            let rows = sqlx::query(USERS_PAGE)
                .bind(i64::try_from(query.count).unwrap_or(i64::MAX))
                .bind(i64::try_from(query.start_index - 1).unwrap_or(i64::MAX))
                .fetch_all(pool)
                .await
                .map_err(store_internal)?;
            let resources = self.render_users(&rows).await?;
            return Ok(query.respond_page(total, resources));
        }
        if total > self.max_filtered_users {
            return Err(ScimError::too_many(format!(
                "a filter other than `userName eq`, or a sort, is evaluated over every user, \
                 and this application has {total} (at most {})",
                self.max_filtered_users
            )));
        }
        let rows = sqlx::query(ALL_USERS)
            .fetch_all(pool)
            .await
            .map_err(store_internal)?;
        let resources = self.render_users(&rows).await?;
        Ok(query.respond(resources))
    }

    /// Renders user rows with their groups, reading the memberships of these accounts only.
    async fn render_users(&self, rows: &[AnyRow]) -> Result<Vec<Value>, ScimError> {
        let users = rows
            .iter()
            .map(UserRow::from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let mut by_account: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        let pool = self.store().database().pool();
        // Bounded IN lists: a page is at most MAX_PAGE users, the filtered path at most
        // MAX_FILTERED_USERS, read in chunks.
        for chunk in users.chunks(MAX_PAGE) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT m.account_id AS account_id, g.id AS id, g.resource AS resource \
                 FROM sp_scim_members m JOIN sp_scim_groups g ON g.id = m.group_id \
                 WHERE m.account_id IN ({}) ORDER BY g.id",
                marks.join(", ")
            );
            let mut statement = sqlx::query(sqlx::AssertSqlSafe(sql));
            for user in chunk {
                statement = statement.bind(user.id.to_string());
            }
            let memberships = statement.fetch_all(pool).await.map_err(store_internal)?;
            for m in &memberships {
                let account: String = m.try_get("account_id").map_err(store_internal)?;
                by_account.entry(account).or_default().push(group_ref(m)?);
            }
        }
        Ok(users
            .iter()
            .map(|user| {
                let groups = by_account.remove(&user.id.to_string()).unwrap_or_default();
                self.render_user(user, &groups).json
            })
            .collect())
    }

    /// The provisioning plan a `POST /Users` of `body` would apply, computed against the
    /// store and the contract as the write would, and not applied nor audited: the dry run.
    pub async fn plan_user(
        &self,
        body: &Value,
        now: OffsetDateTime,
    ) -> Result<ProvisioningPlan, ScimError> {
        let resource = USER_TYPE.check(body, true)?;
        let facts = self.facts(&resource, &[])?;
        let mut tx = self.store().begin().await.map_err(store_failed)?;
        let step = self
            .engine
            .provision(&self.contract, &mut tx, &facts, now)
            .await
            .map_err(engine_error)?;
        // Dropping the transaction rolls back whatever the plan wrote.
        drop(tx);
        Ok(match step {
            Step::Refused { plan, .. } | Step::Done { plan, .. } => plan,
        })
    }

    /// `POST /Users`.
    pub async fn create_user(
        &self,
        actor: &Actor,
        body: &Value,
        now: OffsetDateTime,
    ) -> Result<Resource, ScimError> {
        let resource = USER_TYPE.check(body, true)?;
        self.write_user(actor, None, resource, None, now).await
    }

    /// `PUT /Users/{id}`.
    pub async fn replace_user(
        &self,
        actor: &Actor,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Resource, ScimError> {
        let id = parse_id(id, "User")?;
        let resource = USER_TYPE.check(body, true)?;
        self.write_user(actor, Some(id), resource, if_match, now)
            .await
    }

    /// `PATCH /Users/{id}`.
    pub async fn patch_user(
        &self,
        actor: &Actor,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Resource, ScimError> {
        let id = parse_id(id, "User")?;
        let ops = patch::parse_request(body)?;
        // Read the current resource, patch it, check it; the write re-reads it under lock
        // and compares versions, so a change in between is a 412, never a lost update.
        let mut tx = self.store().begin().await.map_err(store_failed)?;
        let row = load_user(&mut tx, id).await?;
        drop(tx);
        check_version(if_match, row.version)?;
        let patched = patch::apply(&row.resource, &ops, &USER_TYPE)?;
        let resource = USER_TYPE.check(&patched, false)?;
        let expected = row.version.to_string();
        self.write_user(
            actor,
            Some(id),
            resource,
            Some(&format!("W/\"{expected}\"")),
            now,
        )
        .await
    }

    /// `DELETE /Users/{id}`: disables the account (detached from SCIM) or deletes it, as the
    /// contract's `deprovision` says.
    pub async fn delete_user(
        &self,
        actor: &Actor,
        id: &str,
        if_match: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<(), ScimError> {
        let id = parse_id(id, "User")?;
        let mut tx = self.store().begin().await.map_err(store_failed)?;
        let row = load_user(&mut tx, id).await?;
        check_version(if_match, row.version)?;
        let (kind, record) = match self.contract.deprovision() {
            Deprovision::Disable => {
                sqlx::query(
                    "UPDATE sp_accounts SET active = 0, scim_resource = NULL, \
                     scim_user_name = NULL, scim_version = scim_version + 1, updated_at = $2 \
                     WHERE id = $1",
                )
                .bind(id.to_string())
                .bind(millis(now))
                .execute(&mut *tx.tx)
                .await
                .map_err(store_internal)?;
                sqlx::query("DELETE FROM sp_scim_members WHERE account_id = $1")
                    .bind(id.to_string())
                    .execute(&mut *tx.tx)
                    .await
                    .map_err(store_internal)?;
                (
                    AuditKind::ScimDeleted,
                    ScimRecord::Deactivated { account_id: id },
                )
            }
            Deprovision::Delete => {
                // Remembered with the delete, in its transaction, so that a login in flight
                // across it (authenticated before, written after) is refused rather than
                // creating the account again; the expired records go with it.
                sqlx::query(PURGE_DELETED_IDENTITIES)
                    .bind(millis(now))
                    .execute(&mut *tx.tx)
                    .await
                    .map_err(store_internal)?;
                sqlx::query(REMEMBER_DELETED_IDENTITY)
                    .bind(id.to_string())
                    .bind(millis(now))
                    .bind(millis(now + DELETED_IDENTITY_LIFETIME))
                    .execute(&mut *tx.tx)
                    .await
                    .map_err(store_internal)?;
                sqlx::query("DELETE FROM sp_accounts WHERE id = $1")
                    .bind(id.to_string())
                    .execute(&mut *tx.tx)
                    .await
                    .map_err(store_internal)?;
                (
                    AuditKind::ScimDeleted,
                    ScimRecord::Deleted { account_id: id },
                )
            }
        };
        let operation_id = crate::ids::random_uuid();
        let plan = ProvisioningPlan {
            identity: None,
            action: PlanAction::Scim(record),
        };
        self.audit(&mut tx, actor, operation_id, kind, Some(id), plan, now)
            .await?;
        tx.commit().await.map_err(store_failed)?;
        tracing::info!(%operation_id, account = %id, actor = %actor.0, "SCIM deleted user");
        self.deactivated(id);
        Ok(())
    }

    fn deactivated(&self, id: Uuid) {
        if let Some(hook) = &self.on_deactivate {
            let ended = hook(id);
            tracing::info!(account = %id, sessions_ended = ended, "SCIM ended the account's sessions");
        }
    }

    /// Creates (`id` `None`) or replaces a user, in one transaction.
    async fn write_user(
        &self,
        actor: &Actor,
        id: Option<Uuid>,
        resource: Value,
        if_match: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Resource, ScimError> {
        let user_name = resource
            .get("userName")
            .and_then(Value::as_str)
            .map(str::to_lowercase)
            .ok_or_else(|| ScimError::invalid_value("`userName` is required"))?;
        let active = resource
            .get("active")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        // `active` stays in the resource as the client wrote it (absent means enabled); the
        // column is what logins and the application read.
        let stored = resource.clone();
        let operation_id = crate::ids::random_uuid();
        let mut tx = self.store().begin().await.map_err(store_failed)?;
        let previous = match id {
            Some(id) => {
                let row = load_user(&mut tx, id).await?;
                check_version(if_match, row.version)?;
                Some(row)
            }
            None => None,
        };
        refuse_taken(
            &mut tx,
            "SELECT id FROM sp_accounts WHERE scim_user_name = $1",
            &user_name,
            id,
            || format!("userName `{user_name}` belongs to another user"),
        )
        .await?;
        let groups = match id {
            Some(id) => user_groups(&mut tx, id).await?,
            None => Vec::new(),
        };
        let facts = self.facts(&resource, &groups)?;
        if let Some(previous) = &previous {
            self.move_identity(&mut tx, previous.id, &facts).await?;
            // Plan as for an enabled account; `active` is written after.
            set_active(&mut tx, previous.id, true).await?;
        } else if let Ok(mapped) = self.contract.map(&facts)
            && let Some(existing) = tx
                .find_by_identity(&mapped.identity)
                .await
                .map_err(store_failed)?
            && !existing.active
        {
            // Creating a user SCIM deleted (and so disabled) before re-enables its account:
            // the client provisions it again, as when a person is re-assigned.
            set_active(&mut tx, existing.id, true).await?;
        }
        let step = self
            .engine
            .provision(&self.contract, &mut tx, &facts, now)
            .await
            .map_err(engine_error)?;
        let (account, outcome, plan) = match step {
            Step::Refused {
                plan,
                refusal,
                account_id,
            } => {
                drop(tx);
                return Err(self
                    .refused(actor, operation_id, account_id, plan, refusal, now)
                    .await);
            }
            Step::Done {
                account,
                outcome,
                plan,
            } => (account, outcome, plan),
        };
        if let Some(previous) = &previous
            && previous.id != account.id
        {
            return Err(ScimError::uniqueness(
                "the new identity belongs to another account",
            ));
        }
        let version = match &previous {
            Some(p) => p.version + 1,
            None => {
                // An identity whose account SCIM already manages cannot be created twice; one
                // JIT made (a person who signed in first) is taken over.
                let managed: Option<Option<String>> =
                    sqlx::query("SELECT scim_resource FROM sp_accounts WHERE id = $1")
                        .bind(account.id.to_string())
                        .fetch_optional(&mut *tx.tx)
                        .await
                        .map_err(store_internal)?
                        .map(|r| r.try_get("scim_resource"))
                        .transpose()
                        .map_err(store_internal)?;
                if managed.flatten().is_some() {
                    return Err(ScimError::uniqueness(
                        "a user with this identity already exists",
                    ));
                }
                1
            }
        };
        let text = serde_json::to_string(&stored).map_err(|e| internal(e.to_string()))?;
        sqlx::query(
            "UPDATE sp_accounts SET scim_resource = $2, scim_user_name = $3, scim_version = $4, \
             active = $5, updated_at = $6 WHERE id = $1",
        )
        .bind(account.id.to_string())
        .bind(text)
        .bind(user_name)
        .bind(version)
        .bind(i64::from(active))
        .bind(millis(now))
        .execute(&mut *tx.tx)
        .await
        .map_err(store_internal)?;
        let was_active = previous.as_ref().is_none_or(|p| p.active);
        let kind = if !active && was_active {
            AuditKind::ScimDisabled
        } else if previous.is_none() {
            AuditKind::ScimCreated
        } else {
            AuditKind::ScimUpdated
        };
        self.audit(
            &mut tx,
            actor,
            operation_id,
            kind,
            Some(account.id),
            plan,
            now,
        )
        .await?;
        let row = load_user(&mut tx, account.id).await?;
        tx.commit().await.map_err(store_failed)?;
        tracing::info!(
            %operation_id, account = %account.id, actor = %actor.0, kind = kind.as_str(),
            created = outcome == Outcome::Created, "SCIM user write"
        );
        if !active {
            self.deactivated(account.id);
        }
        Ok(self.render_user(&row, &groups))
    }

    /// When a replace changes the NameID source (a renamed userName), the account keeps its
    /// ID and follows: its identity key is moved, unless another account holds the new one.
    async fn move_identity(
        &self,
        tx: &mut SqlAccountTx,
        account_id: Uuid,
        facts: &LoginFacts,
    ) -> Result<(), ScimError> {
        let mapped = match self.contract.map(facts) {
            Ok(m) => m,
            // The refusal is reported by the plan that follows.
            Err(_) => return Ok(()),
        };
        if let Some(holder) = tx
            .find_by_identity(&mapped.identity)
            .await
            .map_err(store_failed)?
        {
            if holder.id != account_id {
                return Err(ScimError::uniqueness(
                    "the new identity belongs to another account",
                ));
            }
            return Ok(());
        }
        sqlx::query("UPDATE sp_accounts SET idp_entity_id = $2, identity_key = $3 WHERE id = $1")
            .bind(account_id.to_string())
            .bind(mapped.identity.idp_entity_id.clone())
            .bind(mapped.identity.key.clone())
            .execute(&mut *tx.tx)
            .await
            .map_err(store_internal)?;
        Ok(())
    }

    /// Audits a refused write in its own transaction and returns the SCIM error for it.
    async fn refused(
        &self,
        actor: &Actor,
        operation_id: Uuid,
        account_id: Option<Uuid>,
        plan: ProvisioningPlan,
        refusal: crate::jit::Refusal,
        now: OffsetDateTime,
    ) -> ScimError {
        tracing::warn!(%operation_id, code = refusal.code.as_str(), detail = %refusal.detail, actor = %actor.0, "SCIM write refused");
        let audited = async {
            let mut tx = self.store().begin().await.map_err(store_failed)?;
            self.audit(
                &mut tx,
                actor,
                operation_id,
                AuditKind::ScimRefused,
                account_id,
                plan,
                now,
            )
            .await?;
            tx.commit().await.map_err(store_failed)
        };
        if let Err(e) = audited.await {
            return e;
        }
        let detail = format!(
            "refused by the provisioning contract: {} (operation {operation_id})",
            refusal.code.as_str()
        );
        match refusal.code {
            RefusalCode::EmailBelongsToOtherAccount
            | RefusalCode::EmailBelongsToUnlinkedAccount => ScimError::uniqueness(detail),
            _ => ScimError::invalid_value(detail),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn audit(
        &self,
        tx: &mut SqlAccountTx,
        actor: &Actor,
        operation_id: Uuid,
        kind: AuditKind,
        account_id: Option<Uuid>,
        plan: ProvisioningPlan,
        now: OffsetDateTime,
    ) -> Result<(), ScimError> {
        let event = AuditEvent {
            id: AuditEvent::id_at(now),
            operation_id,
            at: now,
            kind,
            account_id,
            idp_entity_id: self.idp_entity_id.clone(),
            identity_key: plan.identity.as_ref().map(|i| i.key.clone()),
            session_index: None,
            actor: Some(actor.0.clone()),
            plan,
        };
        tx.append_audit(&event).await.map_err(store_failed)
    }

    /// What a login of this SCIM user would assert.
    fn facts(
        &self,
        resource: &Value,
        groups: &[(String, String)],
    ) -> Result<LoginFacts, ScimError> {
        let mut full = resource.clone();
        if let Some(map) = full.as_object_mut() {
            map.insert(
                "groups".to_owned(),
                Value::Array(
                    groups
                        .iter()
                        .map(|(id, name)| json!({"value": id, "display": name}))
                        .collect(),
                ),
            );
        }
        let name_id = scim_values(&full, &self.name_id)
            .into_iter()
            .next()
            .ok_or_else(|| {
                ScimError::invalid_value(format!(
                    "`{}` is required: it is the user's identity",
                    self.name_id.attr
                ))
            })?;
        let name_id_format = match self.contract.identity() {
            IdentitySource::PersistentNameId => Some(NAMEID_FORMAT_PERSISTENT.to_owned()),
            IdentitySource::NameId { format } => Some(format.clone()),
            IdentitySource::Attribute { .. } => None,
        };
        let attributes = self
            .attributes
            .iter()
            .map(|(name, path)| (name.clone(), scim_values(&full, path)))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        Ok(LoginFacts {
            idp_entity_id: self.idp_entity_id.clone(),
            name_id,
            name_id_format,
            session_index: None,
            attributes,
            authn_instant: None,
        })
    }

    fn render_user(&self, row: &UserRow, groups: &[(String, String)]) -> Resource {
        let mut json = row.resource.clone();
        if let Some(map) = json.as_object_mut() {
            map.insert("id".to_owned(), Value::from(row.id.to_string()));
            if !row.active {
                map.insert("active".to_owned(), Value::Bool(false));
            }
            if !groups.is_empty() {
                map.insert(
                    "groups".to_owned(),
                    Value::Array(
                        groups
                            .iter()
                            .map(|(id, name)| {
                                json!({
                                    "value": id,
                                    "display": name,
                                    "$ref": format!("{}/Groups/{id}", self.base_url),
                                    "type": "direct",
                                })
                            })
                            .collect(),
                    ),
                );
            }
        }
        self.with_meta(
            json,
            "User",
            row.id,
            row.created_at,
            row.updated_at,
            row.version,
        )
    }

    // ---- groups ------------------------------------------------------------------------

    /// `GET /Groups/{id}`.
    pub async fn get_group(&self, id: &str) -> Result<Resource, ScimError> {
        let id = parse_id(id, "Group")?;
        let mut tx = self.store().begin().await.map_err(store_failed)?;
        let row = load_group(&mut tx, id).await?;
        let members = group_members(&mut tx, id).await?;
        Ok(self.render_group(&row, &members))
    }

    /// `GET /Groups`.
    pub async fn list_groups(&self, query: &ListQuery) -> Result<Value, ScimError> {
        let pool = self.store().database().pool();
        let rows = sqlx::query(ALL_GROUPS)
            .fetch_all(pool)
            .await
            .map_err(store_internal)?;
        let members = sqlx::query(
            "SELECT m.group_id AS group_id, a.id AS id, a.scim_resource AS scim_resource \
             FROM sp_scim_members m JOIN sp_accounts a ON a.id = m.account_id",
        )
        .fetch_all(pool)
        .await
        .map_err(store_internal)?;
        let mut by_group: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for m in &members {
            let group: String = m.try_get("group_id").map_err(store_internal)?;
            by_group.entry(group).or_default().push(member_ref(m)?);
        }
        let mut resources = Vec::with_capacity(rows.len());
        for row in &rows {
            let group = GroupRow::from_row(row)?;
            let members = by_group
                .get(&group.id.to_string())
                .cloned()
                .unwrap_or_default();
            resources.push(self.render_group(&group, &members).json);
        }
        Ok(query.respond(resources))
    }

    /// `POST /Groups`.
    pub async fn create_group(
        &self,
        actor: &Actor,
        body: &Value,
        now: OffsetDateTime,
    ) -> Result<Resource, ScimError> {
        let resource = GROUP_TYPE.check(body, true)?;
        self.write_group(actor, None, resource, None, now).await
    }

    /// `PUT /Groups/{id}`.
    pub async fn replace_group(
        &self,
        actor: &Actor,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Resource, ScimError> {
        let id = parse_id(id, "Group")?;
        let resource = GROUP_TYPE.check(body, true)?;
        self.write_group(actor, Some(id), resource, if_match, now)
            .await
    }

    /// `PATCH /Groups/{id}`.
    pub async fn patch_group(
        &self,
        actor: &Actor,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Resource, ScimError> {
        let id = parse_id(id, "Group")?;
        let ops = patch::parse_request(body)?;
        let mut tx = self.store().begin().await.map_err(store_failed)?;
        let row = load_group(&mut tx, id).await?;
        let members = group_members(&mut tx, id).await?;
        drop(tx);
        check_version(if_match, row.version)?;
        let current = self.render_group(&row, &members).json;
        let patched = patch::apply(&current, &ops, &GROUP_TYPE)?;
        let resource = GROUP_TYPE.check(&patched, false)?;
        let expected = format!("W/\"{}\"", row.version);
        self.write_group(actor, Some(id), resource, Some(&expected), now)
            .await
    }

    /// `DELETE /Groups/{id}`: the group goes, and its members' managed roles follow.
    pub async fn delete_group(
        &self,
        actor: &Actor,
        id: &str,
        if_match: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<(), ScimError> {
        let id = parse_id(id, "Group")?;
        let operation_id = crate::ids::random_uuid();
        let mut tx = self.store().begin().await.map_err(store_failed)?;
        let row = load_group(&mut tx, id).await?;
        check_version(if_match, row.version)?;
        let members: BTreeSet<Uuid> = member_ids(&mut tx, id).await?;
        sqlx::query("DELETE FROM sp_scim_groups WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx.tx)
            .await
            .map_err(store_internal)?;
        for account in &members {
            self.reprovision(&mut tx, actor, operation_id, *account, now)
                .await?;
        }
        let record = ScimRecord::Group {
            group_id: id,
            display_name: row.display_name(),
            operation: "deleted".to_owned(),
            members_added: BTreeSet::new(),
            members_removed: members,
        };
        self.audit_group(&mut tx, actor, operation_id, record, now)
            .await?;
        tx.commit().await.map_err(store_failed)?;
        tracing::info!(%operation_id, group = %id, actor = %actor.0, "SCIM deleted group");
        Ok(())
    }

    async fn write_group(
        &self,
        actor: &Actor,
        id: Option<Uuid>,
        resource: Value,
        if_match: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Resource, ScimError> {
        let display_name = resource
            .get("displayName")
            .and_then(Value::as_str)
            .ok_or_else(|| ScimError::invalid_value("`displayName` is required"))?
            .to_owned();
        let name_key = display_name.to_lowercase();
        let mut wanted = BTreeSet::new();
        for m in resource
            .get("members")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let value = m.get("value").and_then(Value::as_str).unwrap_or_default();
            let member = Uuid::parse_str(value).map_err(|_| {
                ScimError::invalid_value(format!("member `{value}` is not a user of this server"))
            })?;
            wanted.insert(member);
        }
        // Members are kept as the client wrote them (display, type, $ref) beside the
        // relational copy that roles are computed from.
        let text = serde_json::to_string(&resource).map_err(|e| internal(e.to_string()))?;
        let operation_id = crate::ids::random_uuid();
        let mut tx = self.store().begin().await.map_err(store_failed)?;
        refuse_taken(
            &mut tx,
            "SELECT id FROM sp_scim_groups WHERE name_key = $1",
            &name_key,
            id,
            || format!("displayName `{display_name}` belongs to another group"),
        )
        .await?;
        for member in &wanted {
            let exists = sqlx::query(
                "SELECT id FROM sp_accounts WHERE id = $1 AND scim_resource IS NOT NULL",
            )
            .bind(member.to_string())
            .fetch_optional(&mut *tx.tx)
            .await
            .map_err(store_internal)?;
            if exists.is_none() {
                return Err(ScimError::invalid_value(format!(
                    "member `{member}` is not a user of this server"
                )));
            }
        }
        let (group_id, current, renamed, operation, write) = match id {
            Some(id) => {
                let row = load_group(&mut tx, id).await?;
                check_version(if_match, row.version)?;
                let current = member_ids(&mut tx, id).await?;
                let renamed = row.display_name() != display_name;
                (id, current, renamed, "updated", UPDATE_GROUP)
            }
            None => (
                Uuid::new_v4(),
                BTreeSet::new(),
                false,
                "created",
                INSERT_GROUP,
            ),
        };
        sqlx::query(write)
            .bind(group_id.to_string())
            .bind(name_key)
            .bind(text)
            .bind(millis(now))
            .execute(&mut *tx.tx)
            .await
            .map_err(store_internal)?;
        let added: BTreeSet<Uuid> = wanted.difference(&current).copied().collect();
        let removed: BTreeSet<Uuid> = current.difference(&wanted).copied().collect();
        for a in &added {
            sqlx::query("INSERT INTO sp_scim_members (group_id, account_id) VALUES ($1, $2)")
                .bind(group_id.to_string())
                .bind(a.to_string())
                .execute(&mut *tx.tx)
                .await
                .map_err(store_internal)?;
        }
        for r in &removed {
            sqlx::query("DELETE FROM sp_scim_members WHERE group_id = $1 AND account_id = $2")
                .bind(group_id.to_string())
                .bind(r.to_string())
                .execute(&mut *tx.tx)
                .await
                .map_err(store_internal)?;
        }
        // A renamed group changes what every member asserts as `groups`.
        let touched: BTreeSet<Uuid> = if renamed {
            wanted.union(&removed).copied().collect()
        } else {
            added.union(&removed).copied().collect()
        };
        for account in &touched {
            self.reprovision(&mut tx, actor, operation_id, *account, now)
                .await?;
        }
        let record = ScimRecord::Group {
            group_id,
            display_name,
            operation: operation.to_owned(),
            members_added: added,
            members_removed: removed,
        };
        self.audit_group(&mut tx, actor, operation_id, record, now)
            .await?;
        let row = load_group(&mut tx, group_id).await?;
        let members = group_members(&mut tx, group_id).await?;
        tx.commit().await.map_err(store_failed)?;
        tracing::info!(%operation_id, group = %group_id, actor = %actor.0, operation, "SCIM group write");
        Ok(self.render_group(&row, &members))
    }

    /// Provisions a member again after its groups changed, in the group write's transaction.
    async fn reprovision(
        &self,
        tx: &mut SqlAccountTx,
        actor: &Actor,
        operation_id: Uuid,
        account_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<(), ScimError> {
        let row = match load_user(tx, account_id).await {
            Ok(row) => row,
            // A member SCIM no longer manages keeps what it has.
            Err(e) if e.status == 404 => return Ok(()),
            Err(e) => return Err(e),
        };
        let groups = user_groups(tx, account_id).await?;
        let facts = self.facts(&row.resource, &groups)?;
        set_active(tx, account_id, true).await?;
        let step = self
            .engine
            .provision(&self.contract, tx, &facts, now)
            .await
            .map_err(engine_error)?;
        set_active(tx, account_id, row.active).await?;
        match step {
            Step::Refused { refusal, .. } => Err(ScimError::invalid_value(format!(
                "member {account_id}: refused by the provisioning contract: {}",
                refusal.code.as_str()
            ))),
            Step::Done { outcome, plan, .. } => {
                if outcome != Outcome::Unchanged {
                    self.audit(
                        tx,
                        actor,
                        operation_id,
                        AuditKind::ScimUpdated,
                        Some(account_id),
                        plan,
                        now,
                    )
                    .await?;
                }
                Ok(())
            }
        }
    }

    async fn audit_group(
        &self,
        tx: &mut SqlAccountTx,
        actor: &Actor,
        operation_id: Uuid,
        record: ScimRecord,
        now: OffsetDateTime,
    ) -> Result<(), ScimError> {
        let plan = ProvisioningPlan {
            identity: None,
            action: PlanAction::Scim(record),
        };
        self.audit(
            tx,
            actor,
            operation_id,
            AuditKind::ScimGroup,
            None,
            plan,
            now,
        )
        .await
    }

    fn render_group(&self, row: &GroupRow, members: &[(String, String)]) -> Resource {
        let mut json = row.resource.clone();
        if let Some(map) = json.as_object_mut() {
            map.insert("id".to_owned(), Value::from(row.id.to_string()));
            // The members as written, less those no longer members (a user deleted since),
            // plus any the client did not describe.
            let mut shown: Vec<Value> = map
                .get("members")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|m| {
                    let value = m.get("value").and_then(Value::as_str);
                    members.iter().any(|(id, _)| Some(id.as_str()) == value)
                })
                .cloned()
                .collect();
            for (id, name) in members {
                if !shown
                    .iter()
                    .any(|m| m.get("value").and_then(Value::as_str) == Some(id.as_str()))
                {
                    shown.push(json!({
                        "value": id,
                        "display": name,
                        "$ref": format!("{}/Users/{id}", self.base_url),
                        "type": "User",
                    }));
                }
            }
            if shown.is_empty() {
                map.remove("members");
            } else {
                map.insert("members".to_owned(), Value::Array(shown));
            }
        }
        self.with_meta(
            json,
            "Group",
            row.id,
            row.created_at,
            row.updated_at,
            row.version,
        )
    }

    /// `json` (a resource of `kind`, `User` or `Group`) with its `meta` (RFC 7643 3.1): its
    /// type, times, ETag and location, `{base}/{kind}s/{id}`.
    fn with_meta(
        &self,
        mut json: Value,
        kind: &str,
        id: Uuid,
        created: OffsetDateTime,
        modified: OffsetDateTime,
        version: i64,
    ) -> Resource {
        if let Some(map) = json.as_object_mut() {
            let time = |t: OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
            let meta = json!({
                "resourceType": kind,
                "created": time(created),
                "lastModified": time(modified),
                "location": format!("{}/{kind}s/{id}", self.base_url),
                "version": super::etag(version),
            });
            map.insert("meta".to_owned(), meta);
        }
        Resource { json, version }
    }
}

/// The contract as SCIM applies it (see the module documentation).
fn scim_contract(contract: &Contract) -> Contract {
    contract.for_scim()
}

/// The string values `path` reaches; a multi-valued complex attribute without a
/// sub-attribute gives its primary value, or its first.
fn scim_values(resource: &Value, path: &AttrPath) -> Vec<String> {
    let base = match &path.uri {
        Some(uri) => resource.get(uri.as_str()),
        None => Some(resource),
    };
    let top = base.and_then(|b| b.get(path.attr.as_str()));
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match (top, &path.sub) {
        (Some(Value::Array(items)), None) => items
            .iter()
            .find(|i| i.get("primary") == Some(&Value::Bool(true)))
            .or_else(|| items.first())
            .and_then(|i| i.get("value").or(Some(i)))
            .and_then(text)
            .into_iter()
            .collect(),
        _ => path.values(resource).into_iter().filter_map(text).collect(),
    }
}

fn parse_id(id: &str, what: &str) -> Result<Uuid, ScimError> {
    Uuid::parse_str(id).map_err(|_| ScimError::not_found(what))
}

fn check_version(if_match: Option<&str>, version: i64) -> Result<(), ScimError> {
    match if_match {
        Some(header) if !if_match_admits(header, version) => Err(ScimError::precondition_failed()),
        _ => Ok(()),
    }
}

fn internal(e: impl fmt::Display) -> ScimError {
    let operation_id = crate::ids::random_uuid();
    tracing::error!(%operation_id, error = %e, "SCIM store failure");
    ScimError::status(500, format!("internal error (operation {operation_id})"))
}

/// A database error; one of the store's unique indexes on a name, address or identity
/// refusing a write ([`crate::store::is_value_taken`], the store's one rule) is the
/// uniqueness conflict a concurrent write of the same value caused, not an outage.
fn store_internal(e: sqlx::Error) -> ScimError {
    if crate::store::is_value_taken(&e) {
        return ScimError::uniqueness("another resource took this name or identity meanwhile");
    }
    store_failed(StoreError::from(e))
}

/// A store error: contention ([`StoreError::is_busy`]) is a 503 the client retries (with
/// `Retry-After`), anything else a 500.
fn store_failed(e: StoreError) -> ScimError {
    if e.is_busy() {
        return busy(&e);
    }
    internal(e)
}

fn engine_error(e: Error) -> ScimError {
    if e.is_busy() {
        return busy(&e);
    }
    internal(e)
}

/// 503: nothing was written, and the same request may succeed a moment later.
fn busy(e: &dyn fmt::Display) -> ScimError {
    tracing::warn!(error = %e, "SCIM request turned away: the store is busy");
    ScimError::status(503, "the application's store is busy; retry shortly")
}

macro_rules! user_columns {
    () => {
        "SELECT id, scim_resource, active, scim_version, created_at, updated_at FROM sp_accounts "
    };
}
macro_rules! group_columns {
    () => {
        "SELECT id, resource, version, created_at, updated_at FROM sp_scim_groups "
    };
}
const ALL_USERS: &str = concat!(
    user_columns!(),
    "WHERE scim_resource IS NOT NULL ORDER BY created_at, id"
);
const USER_BY_NAME: &str = concat!(user_columns!(), "WHERE scim_user_name = $1");
const USERS_PAGE: &str = concat!(
    user_columns!(),
    "WHERE scim_resource IS NOT NULL ORDER BY created_at, id LIMIT $1 OFFSET $2"
);
const COUNT_USERS: &str = "SELECT COUNT(*) FROM sp_accounts WHERE scim_resource IS NOT NULL";

/// The most users a filter other than `userName eq`, or a sort, is evaluated over by default:
/// past it such a listing is refused with `tooMany` (RFC 7644 section 3.12) instead of
/// rendering every user in memory.
pub const MAX_FILTERED_USERS: usize = 10_000;
const USER_BY_ID: &str = concat!(
    user_columns!(),
    "WHERE id = $1 AND scim_resource IS NOT NULL"
);
const USER_BY_ID_LOCKED: &str = concat!(
    user_columns!(),
    "WHERE id = $1 AND scim_resource IS NOT NULL FOR UPDATE"
);
const ALL_GROUPS: &str = concat!(group_columns!(), "ORDER BY created_at, id");
const GROUP_BY_ID: &str = concat!(group_columns!(), "WHERE id = $1");
const GROUP_BY_ID_LOCKED: &str = concat!(group_columns!(), "WHERE id = $1 FOR UPDATE");
/// A group's row rewritten, or a new one, from `$1` id, `$2` name key, `$3` resource and
/// `$4` the time.
const UPDATE_GROUP: &str = "UPDATE sp_scim_groups SET name_key = $2, resource = $3, \
                            updated_at = $4, version = version + 1 WHERE id = $1";
const INSERT_GROUP: &str = "INSERT INTO sp_scim_groups (id, name_key, resource, created_at, \
                            updated_at, version) VALUES ($1, $2, $3, $4, $4, 1)";

struct UserRow {
    id: Uuid,
    resource: Value,
    active: bool,
    version: i64,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

fn corrupt(table: &'static str, detail: impl fmt::Display) -> ScimError {
    internal(StoreError::Corrupt {
        table,
        detail: detail.to_string(),
    })
}

impl UserRow {
    fn from_row(row: &AnyRow) -> Result<Self, ScimError> {
        const T: &str = "sp_accounts";
        let id: String = row.try_get("id").map_err(store_internal)?;
        let resource: Option<String> = row.try_get("scim_resource").map_err(store_internal)?;
        let resource = resource.ok_or_else(|| ScimError::not_found("User"))?;
        Ok(Self {
            id: Uuid::parse_str(&id).map_err(|e| corrupt(T, e))?,
            resource: serde_json::from_str(&resource).map_err(|e| corrupt(T, e))?,
            active: row.try_get::<i64, _>("active").map_err(store_internal)? != 0,
            version: row.try_get("scim_version").map_err(store_internal)?,
            created_at: from_millis(T, row.try_get("created_at").map_err(store_internal)?)
                .map_err(store_failed)?,
            updated_at: from_millis(T, row.try_get("updated_at").map_err(store_internal)?)
                .map_err(store_failed)?,
        })
    }
}

struct GroupRow {
    id: Uuid,
    resource: Value,
    version: i64,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl GroupRow {
    fn from_row(row: &AnyRow) -> Result<Self, ScimError> {
        const T: &str = "sp_scim_groups";
        let id: String = row.try_get("id").map_err(store_internal)?;
        let resource: String = row.try_get("resource").map_err(store_internal)?;
        Ok(Self {
            id: Uuid::parse_str(&id).map_err(|e| corrupt(T, e))?,
            resource: serde_json::from_str(&resource).map_err(|e| corrupt(T, e))?,
            version: row.try_get("version").map_err(store_internal)?,
            created_at: from_millis(T, row.try_get("created_at").map_err(store_internal)?)
                .map_err(store_failed)?,
            updated_at: from_millis(T, row.try_get("updated_at").map_err(store_internal)?)
                .map_err(store_failed)?,
        })
    }

    fn display_name(&self) -> String {
        self.resource
            .get("displayName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    }
}

/// The SCIM user `id`, locked for the transaction on PostgreSQL.
async fn load_user(tx: &mut SqlAccountTx, id: Uuid) -> Result<UserRow, ScimError> {
    let sql = if tx.backend == Backend::Postgres {
        USER_BY_ID_LOCKED
    } else {
        USER_BY_ID
    };
    let row = sqlx::query(sql)
        .bind(id.to_string())
        .fetch_optional(&mut *tx.tx)
        .await
        .map_err(store_internal)?
        .ok_or_else(|| ScimError::not_found("User"))?;
    UserRow::from_row(&row)
}

async fn load_group(tx: &mut SqlAccountTx, id: Uuid) -> Result<GroupRow, ScimError> {
    let sql = if tx.backend == Backend::Postgres {
        GROUP_BY_ID_LOCKED
    } else {
        GROUP_BY_ID
    };
    let row = sqlx::query(sql)
        .bind(id.to_string())
        .fetch_optional(&mut *tx.tx)
        .await
        .map_err(store_internal)?
        .ok_or_else(|| ScimError::not_found("Group"))?;
    GroupRow::from_row(&row)
}

/// `(group id, displayName)` of a membership row.
fn group_ref(row: &AnyRow) -> Result<(String, String), ScimError> {
    let id: String = row.try_get("id").map_err(store_internal)?;
    let resource: String = row.try_get("resource").map_err(store_internal)?;
    let resource: Value =
        serde_json::from_str(&resource).map_err(|e| corrupt("sp_scim_groups", e))?;
    let name = resource
        .get("displayName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Ok((id, name))
}

/// `(account id, userName)` of a membership row.
fn member_ref(row: &AnyRow) -> Result<(String, String), ScimError> {
    let id: String = row.try_get("id").map_err(store_internal)?;
    let resource: Option<String> = row.try_get("scim_resource").map_err(store_internal)?;
    let name = resource
        .and_then(|r| serde_json::from_str::<Value>(&r).ok())
        .and_then(|r| r.get("userName").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default();
    Ok((id, name))
}

async fn user_groups(tx: &mut SqlAccountTx, id: Uuid) -> Result<Vec<(String, String)>, ScimError> {
    let sql = "SELECT g.id AS id, g.resource AS resource FROM sp_scim_members m \
               JOIN sp_scim_groups g ON g.id = m.group_id WHERE m.account_id = $1 ORDER BY g.id";
    refs(tx, sql, id, group_ref).await
}

async fn group_members(
    tx: &mut SqlAccountTx,
    id: Uuid,
) -> Result<Vec<(String, String)>, ScimError> {
    let sql = "SELECT a.id AS id, a.scim_resource AS scim_resource FROM sp_scim_members m \
               JOIN sp_accounts a ON a.id = m.account_id WHERE m.group_id = $1 ORDER BY a.id";
    refs(tx, sql, id, member_ref).await
}

/// The `(id, name)` of each row `sql` finds for `id` (its `$1`), by `row_ref`.
async fn refs(
    tx: &mut SqlAccountTx,
    sql: &'static str,
    id: Uuid,
    row_ref: fn(&AnyRow) -> Result<(String, String), ScimError>,
) -> Result<Vec<(String, String)>, ScimError> {
    let rows = sqlx::query(sql)
        .bind(id.to_string())
        .fetch_all(&mut *tx.tx)
        .await
        .map_err(store_internal)?;
    rows.iter().map(row_ref).collect()
}

/// Refuses (409 `uniqueness`, saying `taken`) a name that `select` (`SELECT id ... WHERE`
/// its unique key `= $1`) finds on another row than `id`, the one being written.
async fn refuse_taken(
    tx: &mut SqlAccountTx,
    select: &'static str,
    key: &str,
    id: Option<Uuid>,
    taken: impl FnOnce() -> String,
) -> Result<(), ScimError> {
    let other: Option<String> = sqlx::query(select)
        .bind(key.to_owned())
        .fetch_optional(&mut *tx.tx)
        .await
        .map_err(store_internal)?
        .map(|r| r.try_get("id"))
        .transpose()
        .map_err(store_internal)?;
    match other {
        Some(other) if id.is_none_or(|id| id.to_string() != other) => {
            Err(ScimError::uniqueness(taken()))
        }
        _ => Ok(()),
    }
}

async fn member_ids(tx: &mut SqlAccountTx, id: Uuid) -> Result<BTreeSet<Uuid>, ScimError> {
    Ok(group_members(tx, id)
        .await?
        .into_iter()
        .filter_map(|(id, _)| Uuid::parse_str(&id).ok())
        .collect())
}

async fn set_active(tx: &mut SqlAccountTx, id: Uuid, active: bool) -> Result<(), ScimError> {
    sqlx::query("UPDATE sp_accounts SET active = $2 WHERE id = $1")
        .bind(id.to_string())
        .bind(i64::from(active))
        .execute(&mut *tx.tx)
        .await
        .map_err(store_internal)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code

    use super::*;

    /// Contention is a 503 the client retries; any other store failure a 500.
    #[test]
    fn a_busy_store_is_503_and_a_failed_one_500() {
        assert_eq!(store_failed(StoreError::Busy(1024)).status, 503);
        assert_eq!(
            store_failed(StoreError::Database(sqlx::Error::PoolTimedOut)).status,
            503
        );
        assert_eq!(engine_error(Error::Store(StoreError::Busy(1))).status, 503);
        assert_eq!(
            store_failed(StoreError::Inconsistent("a row vanished".into())).status,
            500
        );
    }

    async fn refused(db: &crate::store::Database, sql: &'static str) -> sqlx::Error {
        sqlx::query(sql).execute(db.pool()).await.unwrap_err()
    }

    /// A write refused by a unique index on a name or identity answers 409 `uniqueness`;
    /// any other refused constraint (a primary key here) is the server's fault (500), not a
    /// conflict the client caused: the store's rule, not "any unique violation".
    #[tokio::test]
    async fn only_a_taken_name_or_identity_is_a_uniqueness_conflict() {
        let db = crate::store::Database::connect("sqlite::memory:")
            .await
            .unwrap();
        let group = "INSERT INTO sp_scim_groups (id, name_key, resource, created_at, \
                     updated_at, version) VALUES ('g1', 'staff', '{}', 0, 0, 1)";
        sqlx::query(group).execute(db.pool()).await.unwrap();

        let same_name = refused(
            &db,
            "INSERT INTO sp_scim_groups (id, name_key, resource, created_at, updated_at, \
             version) VALUES ('g2', 'staff', '{}', 0, 0, 1)",
        )
        .await;
        let answer = store_internal(same_name);
        assert_eq!(
            (answer.status, answer.scim_type),
            (409, Some(crate::scim::ScimType::Uniqueness))
        );

        let same_key = refused(
            &db,
            "INSERT INTO sp_scim_groups (id, name_key, resource, created_at, updated_at, \
             version) VALUES ('g1', 'other', '{}', 0, 0, 1)",
        )
        .await;
        assert!(same_key.as_database_error().unwrap().is_unique_violation());
        let answer = store_internal(same_key);
        assert_eq!((answer.status, answer.scim_type), (500, None));
    }
}
