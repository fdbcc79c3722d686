//! `/api/v1/apps` (registered service providers, their access groups) and
//! `/api/v1/templates` (the connector catalogue). An `{app}` segment is an ID or an
//! entity ID (percent-encoded, as entity IDs are usually URLs).
//!
//! Attribute mappings travel in the registry's compact text form
//! (`NAME[@FORMAT]=SOURCE[|FILTER]`, e.g. `mail@uri=email`), the same one the CLI takes.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::ApiState;
use super::error::{ApiError, ErrorBody};
use super::etag::{self, IfMatch};
use super::extract::{ApiJson, ApiPath, ApiQuery, Caller};
use super::groups::GroupDto;
use super::page::{self, PageInfo};
use latchkey_idp::apps::{
    AcsEndpoint, Application, AttributeMapping, Binding, Endpoint, MetadataImportError,
    NameIdFormat, NameIdPolicy, NameIdSource, NewApplication, SpMetadata, SpMetadataOptions, Tile,
};
use latchkey_idp::catalog::{self, Template};

/// An AssertionConsumerService endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcsDto {
    /// Absolute http(s) URL.
    pub url: String,
    /// `post` (default), `artifact`, or a binding URN. Output is always the URN.
    #[serde(default)]
    pub binding: Option<String>,
    /// Index an AuthnRequest may name (default: position in the list).
    #[serde(default)]
    pub index: Option<u16>,
    /// Used when a request names no endpoint (default: the first one).
    #[serde(default)]
    pub is_default: Option<bool>,
}

/// A single-logout endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointDto {
    /// Absolute http(s) URL.
    pub url: String,
    /// `redirect`, `post`, `soap`, or a binding URN.
    pub binding: String,
}

/// The portal tile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TileDto {
    /// One line under the name.
    pub description: Option<String>,
    /// Absolute http(s) URL of an icon.
    pub icon_url: Option<String>,
    /// RelayState for IdP-initiated sign-in (at most 80 bytes).
    pub default_relay_state: Option<String>,
    /// Whether the tile is shown (default true).
    #[serde(default = "yes")]
    pub visible: bool,
    /// The application's own sign-in start page: the tile links there (SP-initiated)
    /// instead of to `/saml/init/{id}`. `https://`, or `http://` on a loopback host.
    #[serde(default)]
    pub login_url: Option<String>,
}

fn yes() -> bool {
    true
}

/// An application's definition, as sent to create or replace one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppInput {
    /// The SP's SAML entity ID (unique).
    pub entity_id: String,
    /// Name shown to admins and on the portal.
    pub name: String,
    /// Short unique name for launch links (`/saml/init/{slug}`): lower-case letters,
    /// digits and hyphens. Omitted: derived from the name on create, kept on replace.
    #[serde(default)]
    pub slug: Option<String>,
    /// Where assertions may be sent (at least one).
    pub acs: Vec<AcsDto>,
    /// Single-logout endpoint.
    #[serde(default)]
    pub slo: Option<EndpointDto>,
    /// PEM certificates the SP signs its messages with (AuthnRequests, logout messages).
    #[serde(default)]
    pub signing_certs: Vec<String>,
    /// The SP signs its AuthnRequests (default true): with a signing certificate, an
    /// unsigned AuthnRequest is then refused.
    #[serde(default = "yes")]
    pub authn_requests_signed: bool,
    /// Legacy opt-in (default false): believe the SP's unsigned LogoutRequests and
    /// LogoutResponses. An unsigned LogoutRequest then ends at most the browser's own
    /// session, and only when it signed in to this SP under the NameID it names.
    #[serde(default)]
    pub allow_unsigned_logout: bool,
    /// Opt-out (default false): IdP-initiated launch (`/saml/init/{app}`) from another
    /// site's link issues at once instead of asking the user to confirm (login-CSRF
    /// protection).
    #[serde(default)]
    pub launch_without_confirmation: bool,
    /// PEM certificate to encrypt assertions to.
    #[serde(default)]
    pub encryption_cert: Option<String>,
    /// Algorithm URIs the SP advertises for that certificate (`md:EncryptionMethod`), in
    /// its order; assertions use the best of them we allow (AES-GCM/CBC, RSA-OAEP), and
    /// AES-256-GCM under RSA-OAEP when none is usable or none is given.
    #[serde(default)]
    pub encryption_methods: Vec<String>,
    /// `persistent` (default), `transient`, `email`, `unspecified` or a format URN.
    #[serde(default)]
    pub name_id_format: Option<String>,
    /// `pairwise` (default), `email`, `username` or `attr:NAME`.
    #[serde(default)]
    pub name_id_source: Option<String>,
    /// The NameID formats an AuthnRequest may ask for (each `persistent`, `transient`,
    /// `email`, `unspecified` or a format URN; output as URNs). A request for another is
    /// answered `InvalidNameIDPolicy`. Empty (default): any format this IdP makes. When
    /// set it must include `name_id_format`.
    #[serde(default)]
    pub name_id_formats: Vec<String>,
    /// Released attributes, each `NAME[@FORMAT]=SOURCE[|FILTER]`.
    #[serde(default)]
    pub attributes: Vec<String>,
    /// Sign the `<Response>` (default true).
    #[serde(default = "yes")]
    pub sign_response: bool,
    /// Sign the `<Assertion>` (default true).
    #[serde(default = "yes")]
    pub sign_assertion: bool,
    /// Encrypt the assertion to `encryption_cert` (default false).
    #[serde(default)]
    pub encrypt_assertion: bool,
    /// Portal tile.
    #[serde(default)]
    pub tile: Option<TileDto>,
}

/// A registered application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AppDto {
    /// Internal ID.
    pub id: Uuid,
    /// Its definition (bindings and formats as URNs, mappings in text form).
    #[serde(flatten)]
    pub settings: AppInput,
    /// Registration time (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last change (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<&NewApplication> for AppInput {
    fn from(s: &NewApplication) -> Self {
        AppInput {
            entity_id: s.entity_id.clone(),
            name: s.name.clone(),
            slug: Some(s.slug.clone()),
            acs: s
                .acs
                .iter()
                .map(|e| AcsDto {
                    url: e.url.clone(),
                    binding: Some(e.binding.uri().to_owned()),
                    index: Some(e.index),
                    is_default: Some(e.is_default),
                })
                .collect(),
            slo: s.slo.as_ref().map(|e| EndpointDto {
                url: e.url.clone(),
                binding: e.binding.uri().to_owned(),
            }),
            signing_certs: s.signing_certs.clone(),
            authn_requests_signed: s.authn_requests_signed,
            allow_unsigned_logout: s.allow_unsigned_logout,
            launch_without_confirmation: s.launch_without_confirmation,
            encryption_cert: s.encryption_cert.clone(),
            encryption_methods: s.encryption_methods.clone(),
            name_id_format: Some(s.name_id.format.uri().to_owned()),
            name_id_source: Some(s.name_id.source.to_string()),
            name_id_formats: s
                .name_id_formats
                .iter()
                .map(|f| f.uri().to_owned())
                .collect(),
            attributes: s.attributes.iter().map(ToString::to_string).collect(),
            sign_response: s.sign_response,
            sign_assertion: s.sign_assertion,
            encrypt_assertion: s.encrypt_assertion,
            tile: Some(TileDto {
                description: s.tile.description.clone(),
                icon_url: s.tile.icon_url.clone(),
                default_relay_state: s.tile.default_relay_state.clone(),
                visible: s.tile.visible,
                login_url: s.tile.login_url.clone(),
            }),
        }
    }
}

impl From<Application> for AppDto {
    fn from(a: Application) -> Self {
        AppDto {
            id: a.id.0,
            settings: AppInput::from(&a.settings),
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

impl AppInput {
    /// Parses every field; the registry then applies its own rules on create/update.
    fn into_new(self) -> Result<NewApplication, ApiError> {
        let mut acs = Vec::with_capacity(self.acs.len());
        let has_default = self.acs.iter().any(|e| e.is_default == Some(true));
        for (i, e) in self.acs.into_iter().enumerate() {
            let index = match e.index {
                Some(n) => n,
                None => u16::try_from(i)
                    .map_err(|_| ApiError::invalid("acs", "too many ACS endpoints"))?,
            };
            acs.push(AcsEndpoint {
                url: e.url,
                binding: e
                    .binding
                    .as_deref()
                    .map(Binding::parse)
                    .transpose()?
                    .unwrap_or(Binding::HttpPost),
                index,
                is_default: e.is_default.unwrap_or(!has_default && i == 0),
            });
        }
        let slo = self
            .slo
            .map(|e| -> Result<Endpoint, ApiError> {
                Ok(Endpoint {
                    url: e.url,
                    binding: Binding::parse(&e.binding)?,
                })
            })
            .transpose()?;
        let defaults = NameIdPolicy::default();
        let name_id = NameIdPolicy {
            format: self
                .name_id_format
                .as_deref()
                .map(NameIdFormat::parse)
                .transpose()?
                .unwrap_or(defaults.format),
            source: self
                .name_id_source
                .as_deref()
                .map(str::parse::<NameIdSource>)
                .transpose()?
                .unwrap_or(defaults.source),
        };
        let name_id_formats = self
            .name_id_formats
            .iter()
            .map(|f| {
                NameIdFormat::parse(f)
                    .map_err(|e| ApiError::invalid("name_id_formats", e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let attributes = self
            .attributes
            .iter()
            .map(|a| a.parse::<AttributeMapping>())
            .collect::<Result<Vec<_>, _>>()?;
        let tile = match self.tile {
            None => Tile::default(),
            Some(t) => Tile {
                description: t.description,
                icon_url: t.icon_url,
                default_relay_state: t.default_relay_state,
                visible: t.visible,
                login_url: t.login_url,
            },
        };
        Ok(NewApplication {
            entity_id: self.entity_id,
            name: self.name,
            slug: self.slug.unwrap_or_default(),
            acs,
            slo,
            signing_certs: self.signing_certs,
            authn_requests_signed: self.authn_requests_signed,
            allow_unsigned_logout: self.allow_unsigned_logout,
            launch_without_confirmation: self.launch_without_confirmation,
            encryption_cert: self.encryption_cert,
            encryption_methods: self.encryption_methods,
            name_id,
            name_id_formats,
            attributes,
            sign_response: self.sign_response,
            sign_assertion: self.sign_assertion,
            encrypt_assertion: self.encrypt_assertion,
            tile,
        })
    }
}

/// One page of applications.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AppPage {
    /// The applications on this page, ordered by name.
    pub items: Vec<AppDto>,
    /// Position of the page.
    pub page: PageInfo,
}

/// Filters for listing applications.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AppListQuery {
    /// Substring of name or entity ID (case-insensitive).
    pub q: Option<String>,
    /// Page size (1-500, default 50).
    pub limit: Option<u32>,
    /// Index of the first item (default 0).
    pub offset: Option<u64>,
}

/// Registers an application from a catalogue template.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateFromTemplate {
    /// Template name, e.g. `gitlab`.
    pub template: String,
    /// Values for the template's URL placeholders, e.g. `{"gitlab_host": "git.example.org"}`.
    #[serde(default)]
    pub placeholders: BTreeMap<String, String>,
    /// Name to show instead of the template's.
    #[serde(default)]
    pub name: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/apps", operation_id = "apps_list", tag = "apps", params(AppListQuery),
    responses((status = 200, description = "OK", body = AppPage), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody), (status = 422, description = "A field is invalid; `field` names it", body = ErrorBody)),
    security(("bearer" = [])))]
/// Lists applications, filtered and paged.
pub async fn list(
    State(state): State<ApiState>,
    ApiQuery(q): ApiQuery<AppListQuery>,
) -> Result<axum::Json<AppPage>, ApiError> {
    page::limit(q.limit)?;
    let mut apps = state.store.apps().list().await?;
    apps.retain(|a| page::matches(&q.q, &[Some(&a.settings.name), Some(&a.settings.entity_id)]));
    let (items, page) = page::paginate(apps, q.limit, q.offset)?;
    Ok(axum::Json(AppPage {
        items: items.into_iter().map(AppDto::from).collect(),
        page,
    }))
}

#[utoipa::path(post, path = "/api/v1/apps", operation_id = "apps_create", tag = "apps", request_body = AppInput,
    responses((status = 201, description = "Created", body = AppDto), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody),
        (status = 409, description = "Conflicts with the object's current state or another object", body = ErrorBody), (status = 422, description = "A field is invalid; `field` names it", body = ErrorBody)),
    security(("bearer" = [])))]
/// Registers an application.
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<AppInput>,
) -> Result<(StatusCode, axum::Json<AppDto>), ApiError> {
    let app = state
        .store
        .apps()
        .create(&caller.actor(), body.into_new()?)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(app.into())))
}

#[utoipa::path(post, path = "/api/v1/apps/from-template", operation_id = "apps_create_from_template", tag = "apps", request_body = CreateFromTemplate,
    responses((status = 201, description = "Created", body = AppDto), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody), (status = 404, description = "No such object", body = ErrorBody),
        (status = 409, description = "Conflicts with the object's current state or another object", body = ErrorBody), (status = 422, description = "A field is invalid; `field` names it", body = ErrorBody)),
    security(("bearer" = [])))]
/// Registers an application from a connector template and its placeholder values.
pub async fn create_from_template(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateFromTemplate>,
) -> Result<(StatusCode, axum::Json<AppDto>), ApiError> {
    let template = catalog::get(&body.template)?;
    let values: Vec<(&str, &str)> = body
        .placeholders
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut new = template.application(&values)?;
    if let Some(name) = body.name {
        new.name = name;
    }
    let app = state.store.apps().create(&caller.actor(), new).await?;
    Ok((StatusCode::CREATED, axum::Json(app.into())))
}

/// Registers an application from the SP's SAML metadata (the XML text; the caller fetches
/// it). The metadata supplies entity ID, endpoints and certificates; a template, when
/// named, supplies attribute release and NameID policy.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateFromMetadata {
    /// The metadata document: an EntityDescriptor, or an EntitiesDescriptor aggregate.
    pub metadata: String,
    /// Which SP to register from an aggregate.
    #[serde(default)]
    pub entity_id: Option<String>,
    /// Catalogue template for attribute release and NameID policy, e.g. `gitlab`.
    #[serde(default)]
    pub template: Option<String>,
    /// Name to show instead of the metadata's or the template's.
    #[serde(default)]
    pub name: Option<String>,
    /// Accept metadata whose `validUntil` has passed.
    #[serde(default)]
    pub allow_expired: bool,
}

/// The registered application and what the metadata held that was left out.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedFromMetadata {
    /// The application.
    pub app: AppDto,
    /// Endpoints, keys or formats that were not used, and why.
    pub warnings: Vec<String>,
}

impl From<MetadataImportError> for ApiError {
    fn from(err: MetadataImportError) -> Self {
        ApiError::new(err.code(), err.to_string()).with_field(err.field())
    }
}

#[utoipa::path(post, path = "/api/v1/apps/from-metadata", operation_id = "apps_create_from_metadata", tag = "apps", request_body = CreateFromMetadata,
    responses((status = 201, description = "Created", body = CreatedFromMetadata), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody),
        (status = 404, description = "No such object", body = ErrorBody), (status = 409, description = "Conflicts with the object's current state or another object", body = ErrorBody), (status = 422, description = "A field is invalid; `field` names it", body = ErrorBody)),
    security(("bearer" = [])))]
/// Registers an application from SP metadata, optionally with a connector template.
pub async fn create_from_metadata(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateFromMetadata>,
) -> Result<(StatusCode, axum::Json<CreatedFromMetadata>), ApiError> {
    let template = body.template.as_deref().map(catalog::get).transpose()?;
    let options = SpMetadataOptions {
        entity_id: body.entity_id,
        allow_expired: body.allow_expired,
        ..SpMetadataOptions::new(state.store.now())
    };
    let metadata = SpMetadata::parse(&body.metadata, &options)?;
    let mut new = metadata.application(template.as_ref());
    if let Some(name) = body.name {
        new.name = name;
    }
    let mismatches = metadata.mismatches(&new);
    let app = state
        .store
        .apps()
        .create_from_metadata(&caller.actor(), new, &metadata, "the API (from-metadata)")
        .await?;
    let warnings = metadata
        .warnings
        .iter()
        .chain(&mismatches)
        .map(ToString::to_string)
        .collect();
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedFromMetadata {
            app: app.into(),
            warnings,
        }),
    ))
}

#[utoipa::path(get, path = "/api/v1/apps/{app}", operation_id = "apps_get", tag = "apps",
    params(("app" = String, Path, description = "ID or entity ID")),
    responses((status = 200, description = "OK", body = AppDto), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody), (status = 404, description = "No such object", body = ErrorBody)),
    security(("bearer" = [])))]
/// Shows one application. Its `ETag` names this version of its definition, for `If-Match`
/// on a replace.
pub async fn get(
    State(state): State<ApiState>,
    ApiPath(app): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let app = state.store.apps().lookup(&app).await?;
    Ok((
        etag::of(&app.settings.version()),
        axum::Json(AppDto::from(app)),
    ))
}

#[utoipa::path(put, path = "/api/v1/apps/{app}", operation_id = "apps_replace", tag = "apps", request_body = AppInput,
    params(("app" = String, Path, description = "ID or entity ID"), ("If-Match" = Option<String>, Header, description = "The `ETag` of the definition this replaces")),
    responses((status = 200, description = "OK", body = AppDto), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody), (status = 404, description = "No such object", body = ErrorBody),
        (status = 409, description = "Conflicts with the object's current state or another object", body = ErrorBody), (status = 412, description = "`If-Match` names another version: the application changed since it was read; nothing was written", body = ErrorBody), (status = 422, description = "A field is invalid; `field` names it", body = ErrorBody)),
    security(("bearer" = [])))]
/// Replaces an application's definition (its ID, access groups and pairwise NameIDs stay).
/// With `If-Match` (the `ETag` of a read), only if nobody changed it since (a metadata
/// refresh, another admin): else 412 `changed_since` and nothing is written.
pub async fn replace(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(app): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<AppInput>,
) -> Result<impl IntoResponse, ApiError> {
    let new = body.into_new()?;
    let if_match = IfMatch::of(&headers);
    let apps = state.store.apps();
    let id = apps.lookup(&app).await?.id;
    let updated = apps
        .update_if(
            &caller.actor(),
            id,
            |now| if_match.admits(now),
            |s| {
                *s = new;
                Ok(())
            },
        )
        .await?;
    Ok((
        etag::of(&updated.settings.version()),
        axum::Json(AppDto::from(updated)),
    ))
}

#[utoipa::path(delete, path = "/api/v1/apps/{app}", operation_id = "apps_delete", tag = "apps",
    params(("app" = String, Path, description = "ID or entity ID")),
    responses((status = 204, description = "Done; no body"), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody), (status = 404, description = "No such object", body = ErrorBody)),
    security(("bearer" = [])))]
/// Removes an application with its access policy and pairwise NameIDs.
pub async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(app): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let apps = state.store.apps();
    let id = apps.lookup(&app).await?.id;
    apps.delete(&caller.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/apps/{app}/groups", operation_id = "apps_groups", tag = "apps",
    params(("app" = String, Path, description = "ID or entity ID")),
    responses((status = 200, description = "OK", body = Vec<GroupDto>), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody), (status = 404, description = "No such object", body = ErrorBody)),
    security(("bearer" = [])))]
/// The groups whose members may use the application.
pub async fn groups(
    State(state): State<ApiState>,
    ApiPath(app): ApiPath<String>,
) -> Result<axum::Json<Vec<GroupDto>>, ApiError> {
    let apps = state.store.apps();
    let id = apps.lookup(&app).await?.id;
    let groups = apps.access_groups(id).await?;
    Ok(axum::Json(groups.into_iter().map(GroupDto::from).collect()))
}

#[utoipa::path(put, path = "/api/v1/apps/{app}/groups/{group}", operation_id = "apps_assign", tag = "apps",
    params(("app" = String, Path, description = "ID or entity ID"), ("group" = String, Path, description = "ID or name")),
    responses((status = 204, description = "Done; no body"), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody), (status = 404, description = "No such object", body = ErrorBody),
        (status = 409, description = "Conflicts with the object's current state or another object", body = ErrorBody)),
    security(("bearer" = [])))]
/// Grants a group access to the application.
pub async fn assign(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath((app, group)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let app = state.store.apps().lookup(&app).await?.id;
    let group = state.store.groups().lookup(&group).await?.id;
    state
        .store
        .apps()
        .assign(&caller.actor(), app, group)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/apps/{app}/groups/{group}", operation_id = "apps_unassign", tag = "apps",
    params(("app" = String, Path, description = "ID or entity ID"), ("group" = String, Path, description = "ID or name")),
    responses((status = 204, description = "Done; no body"), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody), (status = 404, description = "No such object", body = ErrorBody),
        (status = 409, description = "Conflicts with the object's current state or another object", body = ErrorBody)),
    security(("bearer" = [])))]
/// Withdraws a group's access to the application.
pub async fn unassign(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath((app, group)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let app = state.store.apps().lookup(&app).await?.id;
    let group = state.store.groups().lookup(&group).await?.id;
    state
        .store
        .apps()
        .unassign(&caller.actor(), app, group)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A connector template, summarised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TemplateDto {
    /// Key to pass as `template`.
    pub name: String,
    /// Human name.
    pub display_name: String,
    /// Vendor document the values come from.
    pub docs: String,
    /// NameID format URN.
    pub name_id_format: String,
    /// NameID source.
    pub name_id_source: String,
    /// ACS URL pattern with `{placeholders}`.
    pub acs_url: Option<String>,
    /// Entity ID pattern with `{placeholders}`.
    pub entity_id: Option<String>,
    /// Pattern of the application's sign-in page (the tile's login URL), where the vendor
    /// documents one.
    pub login_url: Option<String>,
    /// Placeholders to give when creating from the template.
    pub placeholders: Vec<String>,
    /// Released attributes in text form.
    pub attributes: Vec<String>,
    /// Attributes the application requires.
    pub required_attributes: Vec<String>,
    /// Settings to make on the application's side, as `name = value`.
    pub sp_settings: Vec<String>,
    /// What the application needs of a user to let them in (groups, attributes).
    pub expects: String,
    /// Caveats.
    pub notes: String,
}

impl From<Template> for TemplateDto {
    fn from(t: Template) -> Self {
        TemplateDto {
            placeholders: t.placeholders().into_iter().collect(),
            name_id_format: t.name_id.format.uri().to_owned(),
            name_id_source: t.name_id.source.to_string(),
            acs_url: t.acs_url.as_ref().map(|p| p.as_str().to_owned()),
            entity_id: t.entity_id.as_ref().map(|p| p.as_str().to_owned()),
            login_url: t.login_url.as_ref().map(|p| p.as_str().to_owned()),
            attributes: t.attributes.iter().map(ToString::to_string).collect(),
            sp_settings: t
                .sp_settings
                .iter()
                .map(|s| format!("{} = {}", s.name, s.value))
                .collect(),
            name: t.name,
            display_name: t.display_name,
            docs: t.docs,
            required_attributes: t.required_attributes,
            expects: t.expects,
            notes: t.notes,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/templates", operation_id = "apps_templates", tag = "apps",
    responses((status = 200, description = "OK", body = Vec<TemplateDto>), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody)),
    security(("bearer" = [])))]
/// The connector catalogue.
pub async fn templates() -> Result<axum::Json<Vec<TemplateDto>>, ApiError> {
    let all = catalog::templates()?;
    Ok(axum::Json(all.into_iter().map(TemplateDto::from).collect()))
}

#[utoipa::path(get, path = "/api/v1/templates/{name}", operation_id = "apps_template", tag = "apps",
    params(("name" = String, Path, description = "Template name")),
    responses((status = 200, description = "OK", body = TemplateDto), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody), (status = 404, description = "No such object", body = ErrorBody)),
    security(("bearer" = [])))]
/// One connector template.
pub async fn template(ApiPath(name): ApiPath<String>) -> Result<axum::Json<TemplateDto>, ApiError> {
    Ok(axum::Json(catalog::get(&name)?.into()))
}
