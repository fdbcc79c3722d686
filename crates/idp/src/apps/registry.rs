//! Storing, finding, changing and removing applications, and their access policy.

use std::sync::Arc;

use sqlx::AnyConnection;
use sqlx::{Any, Executor};

use super::SpMetadata;
use super::cache::{AppKey, AppsVersion};
use super::model::{Application, NameIdFormat, NewApplication};
use super::{pairwise, rules};
use crate::audit::{self, Actor, Change};
use crate::directory::{Group, User, UserStatus};
use crate::error::{Error, Result};
use crate::ids::{AppId, GroupId, UserId};
use crate::store::{self, Store, flag, timestamp, to_flag};

#[derive(sqlx::FromRow)]
struct AppRow {
    id: String,
    entity_id: String,
    name: String,
    slug: String,
    acs_endpoints: String,
    slo_endpoint: Option<String>,
    signing_certs: String,
    encryption_cert: Option<String>,
    encryption_methods: String,
    name_id_format: String,
    name_id_source: String,
    name_id_formats: String,
    attribute_mappings: String,
    sign_response: i64,
    sign_assertion: i64,
    encrypt_assertion: i64,
    tile_description: Option<String>,
    tile_icon_url: Option<String>,
    default_relay_state: Option<String>,
    tile_visible: i64,
    tile_login_url: Option<String>,
    authn_requests_signed: i64,
    allow_unsigned_logout: i64,
    launch_without_confirmation: i64,
    created_at: String,
    updated_at: String,
}

macro_rules! select_apps {
    ($tail:literal) => {
        select_apps!("", $tail)
    };
    ($more:expr, $tail:literal) => {
        concat!(
            "SELECT a.id, a.entity_id, a.name, a.slug, a.acs_endpoints, a.slo_endpoint, a.signing_certs, \
             a.encryption_cert, a.encryption_methods, a.name_id_format, a.name_id_source, a.name_id_formats, a.attribute_mappings, \
             a.sign_response, a.sign_assertion, a.encrypt_assertion, a.tile_description, \
             a.tile_icon_url, a.default_relay_state, a.tile_visible, a.tile_login_url, a.authn_requests_signed, \
             a.allow_unsigned_logout, a.launch_without_confirmation, a.created_at, \
             a.updated_at",
            $more,
            " FROM applications a ",
            $tail
        )
    };
}

/// The applications' version as a column (`apps_version`), for statements that must read it
/// with what they read (one statement is one snapshot on both backends).
macro_rules! apps_version_column {
    () => {
        "(SELECT v.version FROM apps_version v WHERE v.id = 1) AS apps_version"
    };
}
pub(crate) use apps_version_column;

/// An application row with the applications' version it was read at.
#[derive(sqlx::FromRow)]
struct VersionedAppRow {
    #[sqlx(flatten)]
    app: AppRow,
    apps_version: i64,
}

fn json<T: serde::de::DeserializeOwned>(what: &'static str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| Error::corrupt(what, e))
}

fn to_json<T: serde::Serialize>(what: &'static str, value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::corrupt(what, e))
}

impl AppRow {
    fn into_app(self) -> Result<Application> {
        let format = NameIdFormat::parse(&self.name_id_format)
            .map_err(|e| Error::corrupt("applications.name_id_format", e))?;
        let source = self
            .name_id_source
            .parse()
            .map_err(|e| Error::corrupt("applications.name_id_source", e))?;
        let name_id_formats =
            json::<Vec<String>>("applications.name_id_formats", &self.name_id_formats)?
                .iter()
                .map(|f| NameIdFormat::parse(f))
                .collect::<Result<Vec<_>>>()
                .map_err(|e| Error::corrupt("applications.name_id_formats", e))?;
        Ok(Application {
            id: AppId::from_db(&self.id)?,
            settings: NewApplication {
                entity_id: self.entity_id,
                name: self.name,
                slug: self.slug,
                acs: json("applications.acs_endpoints", &self.acs_endpoints)?,
                slo: self
                    .slo_endpoint
                    .map(|s| json("applications.slo_endpoint", &s))
                    .transpose()?,
                signing_certs: json("applications.signing_certs", &self.signing_certs)?,
                authn_requests_signed: flag(self.authn_requests_signed),
                allow_unsigned_logout: flag(self.allow_unsigned_logout),
                launch_without_confirmation: flag(self.launch_without_confirmation),
                encryption_cert: self.encryption_cert,
                encryption_methods: json(
                    "applications.encryption_methods",
                    &self.encryption_methods,
                )?,
                name_id: super::NameIdPolicy { format, source },
                name_id_formats,
                attributes: json("applications.attribute_mappings", &self.attribute_mappings)?,
                sign_response: flag(self.sign_response),
                sign_assertion: flag(self.sign_assertion),
                encrypt_assertion: flag(self.encrypt_assertion),
                tile: super::Tile {
                    description: self.tile_description,
                    icon_url: self.tile_icon_url,
                    default_relay_state: self.default_relay_state,
                    visible: flag(self.tile_visible),
                    login_url: self.tile_login_url,
                },
            },
            created_at: timestamp::parse("applications.created_at", &self.created_at)?,
            updated_at: timestamp::parse("applications.updated_at", &self.updated_at)?,
        })
    }
}

pub(crate) async fn fetch<'e, E>(exec: E, id: AppId) -> Result<Option<Application>>
where
    E: Executor<'e, Database = Any>,
{
    let row: Option<AppRow> = sqlx::query_as(select_apps!("WHERE a.id = $1"))
        .bind(id.to_db())
        .fetch_optional(exec)
        .await?;
    row.map(AppRow::into_app).transpose()
}

/// Loads one application for a change that rewrites its definition from what it read,
/// holding the row's lock until the transaction ends (PostgreSQL; SQLite's write transaction
/// holds the whole database): read without it, an edit committed meanwhile (an admin
/// requiring signed AuthnRequests while a metadata refresh runs) would be written back over.
async fn fetch_for_update(conn: &mut AnyConnection, id: AppId) -> Result<Option<Application>> {
    if store::Backend::of(conn) == store::Backend::Postgres {
        sqlx::query("SELECT 1 FROM applications WHERE id = $1 FOR NO KEY UPDATE")
            .bind(id.to_db())
            .execute(&mut *conn)
            .await?;
    }
    fetch(conn, id).await
}

/// The application `key` names and the applications' version, in one statement: a copy kept
/// at that version is exactly the row.
async fn fetch_versioned(
    store: &Store,
    key: AppKey<'_>,
) -> Result<Option<(Application, AppsVersion)>> {
    let query = match key {
        AppKey::Id(id) => sqlx::query_as::<_, VersionedAppRow>(select_apps!(
            concat!(", ", apps_version_column!()),
            "WHERE a.id = $1"
        ))
        .bind(id.to_db()),
        AppKey::EntityId(entity_id) => sqlx::query_as(select_apps!(
            concat!(", ", apps_version_column!()),
            "WHERE a.entity_id = $1"
        ))
        .bind(entity_id.to_owned()),
        AppKey::Slug(slug) => sqlx::query_as(select_apps!(
            concat!(", ", apps_version_column!()),
            "WHERE a.slug = $1"
        ))
        .bind(slug.to_owned()),
    };
    let row = query.fetch_optional(store.pool()).await?;
    row.map(|row| Ok((row.app.into_app()?, AppsVersion(row.apps_version))))
        .transpose()
}

/// The applications' version now.
async fn current_version(store: &Store) -> Result<AppsVersion> {
    let version: i64 = sqlx::query_scalar("SELECT version FROM apps_version WHERE id = 1")
        .fetch_one(store.pool())
        .await?;
    Ok(AppsVersion(version))
}

/// Where a sign-in takes its application from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppRead {
    /// This node's copy when it has one (to be confirmed, see [`SignInApp::unconfirmed`]).
    Cached,
    /// The database (after a copy turned out stale).
    Fresh,
}

/// The application a sign-in answers for.
#[derive(Debug, Clone)]
pub struct SignInApp {
    /// The application.
    pub app: Arc<Application>,
    /// Set when `app` is this node's copy, read at this version: no answer may rely on it
    /// before the version is confirmed as still current ([`Apps::confirm`],
    /// [`Apps::confirm_now`]); when it is not, the request is decided again from
    /// [`AppRead::Fresh`].
    pub unconfirmed: Option<AppsVersion>,
}

async fn fetch_by_entity_id<'e, E>(exec: E, entity_id: &str) -> Result<Option<Application>>
where
    E: Executor<'e, Database = Any>,
{
    let row: Option<AppRow> = sqlx::query_as(select_apps!("WHERE a.entity_id = $1"))
        .bind(entity_id)
        .fetch_optional(exec)
        .await?;
    row.map(AppRow::into_app).transpose()
}

fn duplicate(err: Error, entity_id: &str) -> Error {
    if store::is_unique_violation(&err, "entity_id") {
        Error::DuplicateEntityId {
            entity_id: entity_id.to_string(),
        }
    } else {
        err
    }
}

/// Binds and writes every column of an application row (insert or full update).
async fn write(
    conn: &mut AnyConnection,
    insert: bool,
    id: AppId,
    app: &NewApplication,
    now: &str,
) -> Result<()> {
    let sql = if insert {
        "INSERT INTO applications (id, entity_id, name, acs_endpoints, slo_endpoint, \
         signing_certs, encryption_cert, name_id_format, name_id_source, attribute_mappings, \
         sign_response, sign_assertion, encrypt_assertion, tile_description, tile_icon_url, \
         default_relay_state, tile_visible, created_at, updated_at, encryption_methods, \
         tile_login_url, authn_requests_signed, allow_unsigned_logout, launch_without_confirmation, \
         slug, name_id_formats) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $18, \
         $19, $20, $21, $22, $23, $24, $25)"
    } else {
        "UPDATE applications SET entity_id = $2, name = $3, acs_endpoints = $4, \
         slo_endpoint = $5, signing_certs = $6, encryption_cert = $7, name_id_format = $8, \
         name_id_source = $9, attribute_mappings = $10, sign_response = $11, \
         sign_assertion = $12, encrypt_assertion = $13, tile_description = $14, \
         tile_icon_url = $15, default_relay_state = $16, tile_visible = $17, updated_at = $18, \
         encryption_methods = $19, tile_login_url = $20, authn_requests_signed = $21, \
         allow_unsigned_logout = $22, launch_without_confirmation = $23, slug = $24, \
         name_id_formats = $25 WHERE id = $1"
    };
    sqlx::query(sql)
        .bind(id.to_db())
        .bind(&app.entity_id)
        .bind(&app.name)
        .bind(to_json("applications.acs_endpoints", &app.acs)?)
        .bind(
            app.slo
                .as_ref()
                .map(|s| to_json("applications.slo_endpoint", s))
                .transpose()?,
        )
        .bind(to_json("applications.signing_certs", &app.signing_certs)?)
        .bind(app.encryption_cert.clone())
        .bind(app.name_id.format.uri())
        .bind(app.name_id.source.to_string())
        .bind(to_json("applications.attribute_mappings", &app.attributes)?)
        .bind(to_flag(app.sign_response))
        .bind(to_flag(app.sign_assertion))
        .bind(to_flag(app.encrypt_assertion))
        .bind(app.tile.description.clone())
        .bind(app.tile.icon_url.clone())
        .bind(app.tile.default_relay_state.clone())
        .bind(to_flag(app.tile.visible))
        .bind(now)
        .bind(to_json(
            "applications.encryption_methods",
            &app.encryption_methods,
        )?)
        .bind(app.tile.login_url.clone())
        .bind(to_flag(app.authn_requests_signed))
        .bind(to_flag(app.allow_unsigned_logout))
        .bind(to_flag(app.launch_without_confirmation))
        .bind(&app.slug)
        .bind(to_json(
            "applications.name_id_formats",
            &app.name_id_formats
                .iter()
                .map(|f| f.uri())
                .collect::<Vec<_>>(),
        )?)
        .execute(conn)
        .await
        .map_err(|e| duplicate(e.into(), &app.entity_id))?;
    Ok(())
}

async fn fetch_by_slug<'e, E>(exec: E, slug: &str) -> Result<Option<Application>>
where
    E: Executor<'e, Database = Any>,
{
    let row: Option<AppRow> = sqlx::query_as(select_apps!("WHERE a.slug = $1"))
        .bind(slug)
        .fetch_optional(exec)
        .await?;
    row.map(AppRow::into_app).transpose()
}

/// Gives `app` a slug: the one it has when it is free (refused when another application has
/// it), else (empty) its name's, with `-2`, `-3`... until one is free.
async fn settle_slug(
    conn: &mut AnyConnection,
    app: &mut NewApplication,
    except: Option<AppId>,
) -> Result<()> {
    let taken = |found: Option<Application>| found.is_some_and(|a| Some(a.id) != except);
    if !app.slug.is_empty() {
        if taken(fetch_by_slug(&mut *conn, &app.slug).await?) {
            return Err(Error::invalid(
                "slug",
                format!("{:?} is another application's", app.slug),
            ));
        }
        return Ok(());
    }
    let base = rules::derive_slug(&app.name);
    for n in 1..=1000u32 {
        let candidate = if n == 1 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        if !taken(fetch_by_slug(&mut *conn, &candidate).await?) {
            app.slug = candidate;
            return Ok(());
        }
    }
    Err(Error::invalid("slug", format!("no free slug for {base:?}")))
}

/// Remembers where an application's metadata was read and until when it is valid.
async fn record_metadata(
    conn: &mut AnyConnection,
    app: AppId,
    metadata: &SpMetadata,
    source: &str,
    now: time::OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO app_metadata (app_id, source, valid_until, read_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (app_id) DO UPDATE SET source = excluded.source, \
         valid_until = excluded.valid_until, read_at = excluded.read_at",
    )
    .bind(app.to_db())
    .bind(source)
    .bind(metadata.valid_until.map(timestamp::format))
    .bind(timestamp::format(now))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn ensure_entity_id_free(
    conn: &mut AnyConnection,
    entity_id: &str,
    except: Option<AppId>,
) -> Result<()> {
    match fetch_by_entity_id(conn, entity_id).await? {
        Some(other) if Some(other.id) != except => Err(Error::DuplicateEntityId {
            entity_id: entity_id.to_string(),
        }),
        _ => Ok(()),
    }
}

/// The top-level fields of two definitions that differ, as (before, after) objects.
fn changed_fields(
    before: &NewApplication,
    after: &NewApplication,
) -> (
    serde_json::Map<String, serde_json::Value>,
    serde_json::Map<String, serde_json::Value>,
) {
    let object = |app: &NewApplication| match audit::snapshot(app) {
        Some(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let (before, after) = (object(before), object(after));
    let mut old = serde_json::Map::new();
    let mut new = serde_json::Map::new();
    for (key, value) in &after {
        if before.get(key) != Some(value) {
            old.insert(key.clone(), before.get(key).cloned().unwrap_or_default());
            new.insert(key.clone(), value.clone());
        }
    }
    (old, new)
}

fn app_change(
    action: &'static str,
    app: &Application,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> Change {
    Change {
        action,
        target_kind: "app",
        target_id: app.id.to_string(),
        target_name: app.settings.entity_id.clone(),
        before,
        after,
    }
}

/// Registered applications.
#[derive(Debug, Clone, Copy)]
pub struct Apps<'s> {
    store: &'s Store,
}

impl<'s> Apps<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Apps { store }
    }

    /// Registers an application; refuses an entity ID that is already registered.
    pub async fn create(&self, actor: &Actor, new: NewApplication) -> Result<Application> {
        self.create_with(actor, new, None).await
    }

    /// Registers an application made from its SP's metadata (read from `source`), and
    /// remembers until when that metadata is valid: the console's dashboard warns before
    /// it goes stale. One transaction, one `app.create` event.
    pub async fn create_from_metadata(
        &self,
        actor: &Actor,
        new: NewApplication,
        metadata: &SpMetadata,
        source: &str,
    ) -> Result<Application> {
        self.create_with(actor, new, Some((metadata, source))).await
    }

    async fn create_with(
        &self,
        actor: &Actor,
        new: NewApplication,
        metadata: Option<(&SpMetadata, &str)>,
    ) -> Result<Application> {
        let mut settings = rules::check(new)?;
        let mut tx = self.store.begin().await?;
        let conn = store::conn(&mut tx);
        ensure_entity_id_free(conn, &settings.entity_id, None).await?;
        settle_slug(conn, &mut settings, None).await?;
        let now = self.store.now();
        let app = Application {
            id: AppId::new_random(),
            settings,
            created_at: now,
            updated_at: now,
        };
        write(conn, true, app.id, &app.settings, &timestamp::format(now)).await?;
        if let Some((metadata, source)) = metadata {
            record_metadata(conn, app.id, metadata, source, now).await?;
        }
        audit::record(
            conn,
            actor,
            now,
            app_change("app.create", &app, None, audit::snapshot(&app)),
        )
        .await?;
        store::commit(tx).await?;
        Ok(app)
    }

    /// The application with this ID.
    pub async fn get(&self, id: AppId) -> Result<Application> {
        fetch(self.store.pool(), id)
            .await?
            .ok_or_else(|| Error::UnknownApplication {
                app: id.to_string(),
            })
    }

    /// The application `key` names, for a sign-in: with [`AppRead::Cached`] this node's
    /// copy if it has one (unconfirmed), else read now, at the version read with it, and
    /// kept as the copy.
    pub async fn for_sign_in(&self, key: AppKey<'_>, read: AppRead) -> Result<Option<SignInApp>> {
        let cache = self.store.apps_cache();
        if read == AppRead::Cached
            && let Some((app, version)) = cache.get(key)
        {
            return Ok(Some(SignInApp {
                app,
                unconfirmed: Some(version),
            }));
        }
        let Some((app, version)) = fetch_versioned(self.store, key).await? else {
            return Ok(None);
        };
        let app = Arc::new(app);
        cache.put(&app, version);
        Ok(Some(SignInApp {
            app,
            unconfirmed: None,
        }))
    }

    /// Whether an application read at `unconfirmed` (none: read fresh) may be relied on, the
    /// applications being at `current` (as the sign-in's statement read it,
    /// [`crate::sso::grant::resume`]). When not, this node's copies are dropped.
    pub fn confirm(&self, unconfirmed: Option<AppsVersion>, current: AppsVersion) -> bool {
        self.store.apps_cache().seen(current);
        unconfirmed.is_none_or(|v| v == current)
    }

    /// [`Apps::confirm`] for an answer that does not read the session's statement (a
    /// refusal, a parked request, a confirmation page): reads the version now, and only
    /// when `unconfirmed` is set.
    pub async fn confirm_now(&self, unconfirmed: Option<AppsVersion>) -> Result<bool> {
        if unconfirmed.is_none() {
            return Ok(true);
        }
        let current = current_version(self.store).await?;
        Ok(self.confirm(unconfirmed, current))
    }

    /// The applications' version now: it moves with every change to any application.
    pub async fn version(&self) -> Result<AppsVersion> {
        current_version(self.store).await
    }

    /// The application with this entity ID, if registered (the SSO path's lookup).
    pub async fn find_by_entity_id(&self, entity_id: &str) -> Result<Option<Application>> {
        fetch_by_entity_id(self.store.pool(), entity_id).await
    }

    /// The application with this entity ID; an unregistered one is an error.
    pub async fn get_by_entity_id(&self, entity_id: &str) -> Result<Application> {
        self.find_by_entity_id(entity_id)
            .await?
            .ok_or_else(|| Error::UnknownApplication {
                app: entity_id.to_string(),
            })
    }

    /// The application with this slug, if any.
    pub async fn find_by_slug(&self, slug: &str) -> Result<Option<Application>> {
        fetch_by_slug(self.store.pool(), slug).await
    }

    /// Resolves what an admin typed: an entity ID, an internal ID, a slug, or a unique name.
    pub async fn lookup(&self, reference: &str) -> Result<Application> {
        if let Some(app) = self.find_by_entity_id(reference).await? {
            return Ok(app);
        }
        if let Some(app) = self.find_by_slug(reference).await? {
            return Ok(app);
        }
        if let Ok(id) = reference.parse::<AppId>()
            && let Some(app) = fetch(self.store.pool(), id).await?
        {
            return Ok(app);
        }
        let named: Vec<Application> = self
            .list()
            .await?
            .into_iter()
            .filter(|a| a.settings.name.eq_ignore_ascii_case(reference))
            .collect();
        match <[Application; 1]>::try_from(named) {
            Ok([app]) => Ok(app),
            Err(_) => Err(Error::UnknownApplication {
                app: reference.to_string(),
            }),
        }
    }

    /// All applications, ordered by name.
    pub async fn list(&self) -> Result<Vec<Application>> {
        let rows: Vec<AppRow> = sqlx::query_as(select_apps!("ORDER BY a.name, a.entity_id"))
            .fetch_all(self.store.pool())
            .await?;
        rows.into_iter().map(AppRow::into_app).collect()
    }

    /// Changes an application: `edit` adjusts a copy of its definition, which is then checked
    /// like a new one. A change that alters nothing records nothing.
    pub async fn update(
        &self,
        actor: &Actor,
        id: AppId,
        edit: impl FnOnce(&mut NewApplication),
    ) -> Result<Application> {
        self.update_if(
            actor,
            id,
            |_| true,
            |settings| {
                edit(settings);
                Ok(())
            },
        )
        .await
    }

    /// [`Apps::update`] from what a client saw (a console form, an API `If-Match`): unless
    /// `admits` the definition's current [`NewApplication::version`], nothing is written
    /// ([`Error::ChangedSince`]); `edit` may refuse.
    pub async fn update_if(
        &self,
        actor: &Actor,
        id: AppId,
        admits: impl FnOnce(&str) -> bool,
        edit: impl FnOnce(&mut NewApplication) -> Result<()>,
    ) -> Result<Application> {
        let (app, _) = self
            .change(actor, id, admits, edit, |before, after| {
                app_change(
                    "app.update",
                    after,
                    audit::snapshot(before),
                    audit::snapshot(after),
                )
            })
            .await?;
        Ok(app)
    }

    /// Refreshes an application from its SP's metadata, read again from `source` (an SP
    /// rolling its keys or moving its ACS publishes that in its metadata): what
    /// [`SpMetadata::apply_to`] replaces, nothing else. A refresh that changes something is
    /// recorded as `app.metadata_refresh` with only the fields that changed (and the source);
    /// one that changes nothing records nothing and returns `None`.
    pub async fn refresh_metadata(
        &self,
        actor: &Actor,
        id: AppId,
        metadata: &SpMetadata,
        source: &str,
    ) -> Result<Option<Application>> {
        let (app, changed) = self
            .change(
                actor,
                id,
                |_| true,
                |settings| {
                    metadata.apply_to(settings);
                    Ok(())
                },
                |before, after| {
                    let (mut old, mut new) = changed_fields(&before.settings, &after.settings);
                    old.insert("source".into(), source.into());
                    new.insert("source".into(), source.into());
                    app_change(
                        "app.metadata_refresh",
                        after,
                        Some(old.into()),
                        Some(new.into()),
                    )
                },
            )
            .await?;
        // The metadata's validity moves with every read, changed endpoints or not.
        let mut conn = self.store.pool().acquire().await?;
        record_metadata(&mut conn, id, metadata, source, self.store.now()).await?;
        Ok(changed.then_some(app))
    }

    /// One audited change of an application: `edit` adjusts a copy of its definition, which
    /// is checked like a new one and, if it differs, stored with the event `record` makes
    /// of the states before and after. Returns the application and whether it changed.
    async fn change(
        &self,
        actor: &Actor,
        id: AppId,
        admits: impl FnOnce(&str) -> bool,
        edit: impl FnOnce(&mut NewApplication) -> Result<()>,
        record: impl FnOnce(&Application, &Application) -> Change,
    ) -> Result<(Application, bool)> {
        let mut tx = self.store.begin().await?;
        let conn = store::conn(&mut tx);
        let before =
            fetch_for_update(&mut *conn, id)
                .await?
                .ok_or_else(|| Error::UnknownApplication {
                    app: id.to_string(),
                })?;
        if !admits(&before.settings.version()) {
            return Err(Error::ChangedSince {
                what: "application",
            });
        }
        let mut settings = before.settings.clone();
        edit(&mut settings)?;
        let mut settings = rules::check(settings)?;
        if settings.slug.is_empty() {
            settings.slug = before.settings.slug.clone();
        }
        if settings == before.settings {
            return Ok((before, false));
        }
        ensure_entity_id_free(conn, &settings.entity_id, Some(id)).await?;
        settle_slug(conn, &mut settings, Some(id)).await?;
        let now = self.store.now();
        write(conn, false, id, &settings, &timestamp::format(now)).await?;
        let after = Application {
            settings,
            updated_at: now,
            ..before.clone()
        };
        audit::record(conn, actor, now, record(&before, &after)).await?;
        store::commit(tx).await?;
        Ok((after, true))
    }

    /// Removes an application with its access policy and pairwise NameIDs.
    pub async fn delete(&self, actor: &Actor, id: AppId) -> Result<()> {
        let mut tx = self.store.begin().await?;
        let conn = store::conn(&mut tx);
        let app = fetch(&mut *conn, id)
            .await?
            .ok_or_else(|| Error::UnknownApplication {
                app: id.to_string(),
            })?;
        sqlx::query("DELETE FROM applications WHERE id = $1")
            .bind(id.to_db())
            .execute(&mut *conn)
            .await?;
        audit::record(
            conn,
            actor,
            self.store.now(),
            app_change("app.delete", &app, audit::snapshot(&app), None),
        )
        .await?;
        store::commit(tx).await
    }

    /// Lets a group's members use the application.
    pub async fn assign(&self, actor: &Actor, app: AppId, group: GroupId) -> Result<()> {
        self.access_change(actor, app, group, true).await
    }

    /// Stops a group's members using the application (unless another assigned group has them).
    pub async fn unassign(&self, actor: &Actor, app: AppId, group: GroupId) -> Result<()> {
        self.access_change(actor, app, group, false).await
    }

    async fn access_change(
        &self,
        actor: &Actor,
        app: AppId,
        group: GroupId,
        assign: bool,
    ) -> Result<()> {
        let mut tx = self.store.begin().await?;
        let conn = store::conn(&mut tx);
        // Under the application's lock, so two changes of one assignment at once see each
        // other: one goes, the other is told it is already (not) assigned.
        let app =
            fetch_for_update(&mut *conn, app)
                .await?
                .ok_or_else(|| Error::UnknownApplication {
                    app: app.to_string(),
                })?;
        let group = self.store.groups_in(conn, group).await?;
        let now = self.store.now();
        let present: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM app_access WHERE app_id = $1 AND group_id = $2")
                .bind(app.id.to_db())
                .bind(group.id.to_db())
                .fetch_optional(&mut *conn)
                .await?;
        let names = || (app.settings.entity_id.clone(), group.name.clone());
        let entry = serde_json::json!({ "group": group.name, "group_id": group.id });
        let change = if assign {
            if present.is_some() {
                let (app, group) = names();
                return Err(Error::AlreadyAssigned { app, group });
            }
            sqlx::query("INSERT INTO app_access (app_id, group_id, added_at) VALUES ($1, $2, $3)")
                .bind(app.id.to_db())
                .bind(group.id.to_db())
                .bind(timestamp::format(now))
                .execute(&mut *conn)
                .await?;
            app_change("app.assign", &app, None, Some(entry))
        } else {
            if present.is_none() {
                let (app, group) = names();
                return Err(Error::NotAssigned { app, group });
            }
            sqlx::query("DELETE FROM app_access WHERE app_id = $1 AND group_id = $2")
                .bind(app.id.to_db())
                .bind(group.id.to_db())
                .execute(&mut *conn)
                .await?;
            app_change("app.unassign", &app, Some(entry), None)
        };
        let reason = if assign { "app.assign" } else { "app.unassign" };
        crate::provisioning::outbox::access_changed(&mut *conn, app.id, group.id, reason, now)
            .await?;
        audit::record(conn, actor, now, change).await?;
        store::commit(tx).await?;
        self.store.wake_outbox();
        Ok(())
    }

    /// The groups whose members may use the application.
    pub async fn access_groups(&self, app: AppId) -> Result<Vec<Group>> {
        crate::directory::groups_with_access(self.store.pool(), app).await
    }

    /// Whether the user may use the application: active, and in at least one assigned group.
    pub async fn may_access(&self, app: AppId, user: &User) -> Result<bool> {
        if user.status != UserStatus::Active {
            return Ok(false);
        }
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM app_access x JOIN group_members m ON m.group_id = x.group_id \
             WHERE x.app_id = $1 AND m.user_id = $2 LIMIT 1",
        )
        .bind(app.to_db())
        .bind(user.id.to_db())
        .fetch_optional(self.store.pool())
        .await?;
        Ok(found.is_some())
    }

    /// The applications a user may use (for the portal), ordered by name; empty for a
    /// suspended user.
    pub async fn for_user(&self, user: &User) -> Result<Vec<Application>> {
        if user.status != UserStatus::Active {
            return Ok(Vec::new());
        }
        let rows: Vec<AppRow> = sqlx::query_as(select_apps!(
            "WHERE a.id IN (SELECT x.app_id FROM app_access x \
             JOIN group_members m ON m.group_id = x.group_id WHERE m.user_id = $1) \
             ORDER BY a.name, a.entity_id"
        ))
        .bind(user.id.to_db())
        .fetch_all(self.store.pool())
        .await?;
        rows.into_iter().map(AppRow::into_app).collect()
    }

    /// The applications a group opens (its members may use them), ordered by name: one
    /// statement, for the console's group page.
    pub async fn opened_by_group(&self, group: GroupId) -> Result<Vec<Application>> {
        let rows: Vec<AppRow> = sqlx::query_as(select_apps!(
            "WHERE a.id IN (SELECT x.app_id FROM app_access x WHERE x.group_id = $1) \
             ORDER BY a.name, a.entity_id"
        ))
        .bind(group.to_db())
        .fetch_all(self.store.pool())
        .await?;
        rows.into_iter().map(AppRow::into_app).collect()
    }

    /// The user's persistent pairwise NameID at this application, created on first use.
    pub async fn persistent_name_id(&self, user: UserId, app: AppId) -> Result<String> {
        pairwise::get_or_create(self.store, user, app).await
    }

    /// The user behind a persistent NameID previously issued to this application.
    pub async fn user_for_name_id(&self, app: AppId, name_id: &str) -> Result<Option<UserId>> {
        pairwise::resolve(self.store, app, name_id).await
    }
}

impl Store {
    /// Loads a group inside a transaction, as an [`Error::UnknownGroup`] when missing.
    pub(crate) async fn groups_in(&self, conn: &mut AnyConnection, id: GroupId) -> Result<Group> {
        crate::directory::fetch_group(conn, id)
            .await?
            .ok_or_else(|| Error::UnknownGroup {
                name: id.to_string(),
            })
    }
}
