//! The admin REST API under `/api/v1`: the CLI's directory and application commands
//! over HTTP, as JSON, for automation (Terraform, scripts, HR feeds).
//!
//! - Every endpoint but `/api/v1/openapi.json` needs `Authorization: Bearer <token>`,
//!   a token made with `latchkey token create` ([`ApiTokens`]).
//! - Every failure answers in one JSON shape, mapped in [`error`].
//! - Each write is one store transaction: a refused request changes nothing, and every
//!   change is in the audit log under `api:<token id>`.
//! - The OpenAPI document is generated from the handlers and types below, so it cannot
//!   drift from the code.
//!
//! ```no_run
//! # async fn demo(store: latchkey_idp::Store) -> std::io::Result<()> {
//! let app = latchkey_idp_web::api::router(latchkey_idp_web::api::ApiState::new(store));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
//! axum::serve(listener, app).await
//! # }
//! ```

pub mod apps;
pub mod audit;
pub mod error;
mod etag;
pub mod extract;
pub mod groups;
pub mod invitations;
pub mod mfa;
pub mod page;
pub mod roles;
pub mod scim;

pub mod users;

use axum::Router;
use axum::routing::{get, post, put};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

pub use error::{ApiError, ErrorBody};
pub use latchkey_idp::tokens::{ApiTokens, IssuedToken, TokenInfo};

use latchkey_idp::store::Store;

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct ApiState {
    store: Store,
    /// `[server] base_url`, which invitation links are made under.
    base_url: String,
    /// How long invitations live by default.
    enrollment: latchkey_idp::config::EnrollmentConfig,
    /// Where invitation mail goes (sends nothing without `[smtp]`).
    mailer: latchkey_idp::mail::Mailer,
    /// The KEK that seals SCIM tokens; without it, setting a SCIM connection answers
    /// `internal`.
    sealing_kek: Option<std::sync::Arc<latchkey_idp::keys::Kek>>,
    /// Wrong tokens per client network ([`crate::bearer`]).
    bearer: crate::bearer::BearerGuard,
}

impl ApiState {
    /// State over an open store, with no mail and links relative to `/` until
    /// [`ApiState::with_enrollment`] says otherwise.
    pub fn new(store: Store) -> Self {
        ApiState {
            store,
            base_url: String::new(),
            enrollment: latchkey_idp::config::EnrollmentConfig::default(),
            mailer: latchkey_idp::mail::Mailer::disabled(),
            sealing_kek: None,
            bearer: crate::bearer::BearerGuard::default(),
        }
    }

    /// Wrong tokens are throttled per client network as `guard` says (the server's
    /// settings; default [`latchkey_idp::session::ThrottlePolicy::BEARER_TOKEN`], the
    /// socket peer as the client).
    pub fn with_bearer_guard(mut self, guard: crate::bearer::BearerGuard) -> Self {
        self.bearer = guard;
        self
    }

    /// SCIM tokens set through the API are sealed with `kek`.
    pub fn with_sealing_kek(mut self, kek: std::sync::Arc<latchkey_idp::keys::Kek>) -> Self {
        self.sealing_kek = Some(kek);
        self
    }

    /// Invitation links under `base_url`, living `enrollment`'s times, mailed by `mailer`.
    pub fn with_enrollment(
        mut self,
        base_url: &str,
        enrollment: latchkey_idp::config::EnrollmentConfig,
        mailer: latchkey_idp::mail::Mailer,
    ) -> Self {
        self.base_url = base_url.to_owned();
        self.enrollment = enrollment;
        self.mailer = mailer;
        self
    }
}

/// The generated OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Latchkey admin API", description = "Directory and application administration."),
    paths(
        users::list, users::create, users::get, users::update, users::delete,
        users::suspend, users::resume, users::set_password, users::groups, invitations::create,
        groups::list, groups::create, groups::get, groups::update, groups::delete,
        groups::members, groups::add_member, groups::remove_member,
        apps::list, apps::create, apps::create_from_template, apps::create_from_metadata,
        apps::get, apps::replace,
        apps::delete, apps::groups, apps::assign, apps::unassign,
        apps::templates, apps::template,
        audit::list,
        mfa::list_factors, mfa::reset_factors, mfa::require_for_user, mfa::set_group,
        mfa::set_app,
        scim::get, scim::set, scim::delete, scim::user_pending,
        roles::list, roles::grant_user, roles::revoke_user, roles::grant_group, roles::revoke_group,
    ),
    components(schemas(ErrorBody, page::PageInfo)),
    modifiers(&BearerAuth),
    tags(
        (name = "users", description = "Directory users"),
        (name = "groups", description = "Groups and membership"),
        (name = "apps", description = "Service providers, access groups and connector templates"),
        (name = "audit", description = "The audit log"),
        (name = "roles", description = "Console roles granted to users and groups"),
    )
)]
#[derive(Debug)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A token from `latchkey token create`: scope `api` for everything here, `api_read` for GET only (anything else is a 403 `token_read_only`)"))
                    .build(),
            ),
        );
    }
}

/// The API's router, paths included (`/api/v1/...`); merge it into the server's.
pub fn router(state: ApiState) -> Router {
    let protected = Router::new()
        .route("/users", get(users::list).post(users::create))
        .route(
            "/users/{user}",
            get(users::get).patch(users::update).delete(users::delete),
        )
        .route("/users/{user}/suspend", post(users::suspend))
        .route("/users/{user}/resume", post(users::resume))
        .route("/users/{user}/password", put(users::set_password))
        .route("/users/{user}/groups", get(users::groups))
        .route("/users/{user}/provisioning", get(scim::user_pending))
        .route(
            "/users/{user}/factors",
            get(mfa::list_factors).delete(mfa::reset_factors),
        )
        .route("/users/{user}/mfa", put(mfa::require_for_user))
        .route("/groups/{group}/mfa", put(mfa::set_group))
        .route("/apps/{app}/mfa", put(mfa::set_app))
        .route("/users/{user}/invitations", post(invitations::create))
        .route("/groups", get(groups::list).post(groups::create))
        .route(
            "/groups/{group}",
            get(groups::get)
                .patch(groups::update)
                .delete(groups::delete),
        )
        .route("/groups/{group}/members", get(groups::members))
        .route(
            "/groups/{group}/members/{user}",
            put(groups::add_member).delete(groups::remove_member),
        )
        .route("/apps", get(apps::list).post(apps::create))
        .route("/apps/from-template", post(apps::create_from_template))
        .route("/apps/from-metadata", post(apps::create_from_metadata))
        .route(
            "/apps/{app}",
            get(apps::get).put(apps::replace).delete(apps::delete),
        )
        .route("/apps/{app}/groups", get(apps::groups))
        .route(
            "/apps/{app}/scim",
            get(scim::get).put(scim::set).delete(scim::delete),
        )
        .route(
            "/apps/{app}/groups/{group}",
            put(apps::assign).delete(apps::unassign),
        )
        .route("/templates", get(apps::templates))
        .route("/templates/{name}", get(apps::template))
        .route("/audit", get(audit::list))
        .route("/roles", get(roles::list))
        .route(
            "/roles/{role}/users/{user}",
            put(roles::grant_user).delete(roles::revoke_user),
        )
        .route(
            "/roles/{role}/groups/{group}",
            put(roles::grant_group).delete(roles::revoke_group),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            extract::require_token,
        ))
        // Outside the token check: a network past its wrong tokens is refused unread.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            bearer_gate,
        ));
    let v1 = Router::new()
        .route("/openapi.json", get(openapi_json))
        .merge(protected)
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::from_fn(crate::headers::api))
        .with_state(state);
    Router::new().nest("/api/v1", v1)
}

async fn bearer_gate(
    axum::extract::State(state): axum::extract::State<ApiState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    crate::bearer::gate(
        &state.store,
        &state.bearer,
        crate::bearer::Surface::Api,
        req,
        next,
    )
    .await
}

async fn openapi_json() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}
