//! `/scim/v2`: the IdP's SCIM 2.0 server, the directory fed from outside (an HR system or
//! another IdP). The domain is [`latchkey_idp::scim::ScimDirectory`]; this is the backend
//! the routes every SCIM server here shares (`latchkey_scim::server`) run on.
//!
//! - Every route needs a live token of scope `scim` (`latchkey token create NAME --scope
//!   scim`); an admin API token gets the same 401 as an unknown one, and a SCIM token gets
//!   401 on `/api/v1`.
//! - A request presenting a token first takes its client network's slot of the bearer-token
//!   throttle ([`crate::bearer`]): past `[server] bad_tokens_per_network` wrong tokens it is
//!   refused (429, `Retry-After`) without its token being looked up.
//! - A slot among [`MAX_IN_FLIGHT`] is taken in one atomic step before the token is even
//!   looked up (503 with `Retry-After` past it), and a body over
//!   `latchkey_scim::MAX_BODY_BYTES` is refused with 413 before it is read past the limit.

use std::sync::Arc;

use axum::Router;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::Value;

use crate::bearer::{BearerGuard, Surface};
use latchkey_idp::Store;
use latchkey_idp::scim::ScimDirectory;
use latchkey_idp::tokens::TokenInfo;
use latchkey_scim::ScimError;
use latchkey_scim::http::{self as scim_http, InFlight};
use latchkey_scim::list::{ListQuery, Projection};
use latchkey_scim::schema::{self, USER_TYPE};
use latchkey_scim::server::{self as routes, Backend, Kind};
use latchkey_scim::{Patched, Resource};

/// The most SCIM requests served at once (each holds a database connection for a while).
pub const MAX_IN_FLIGHT: usize = 16;

struct Server {
    directory: ScimDirectory,
    in_flight: InFlight,
}

/// The SCIM routes under `/scim/v2`, resources located under `base_url` + `/scim/v2`, wrong
/// tokens throttled by the default [`BearerGuard`].
pub fn router(store: Store, base_url: &str) -> Router {
    router_with(store, base_url, BearerGuard::default())
}

/// [`router`], wrong tokens throttled per client network as `guard` says (the server's
/// settings): a network past them is refused (429) before its token is looked up.
pub fn router_with(store: Store, base_url: &str, guard: BearerGuard) -> Router {
    let base = format!("{}/scim/v2", base_url.trim_end_matches('/'));
    let gate_store = store.clone();
    let v2 = routes::router(Arc::new(Server {
        directory: ScimDirectory::new(store, base),
        in_flight: InFlight::new(MAX_IN_FLIGHT),
    }))
    .route_layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let (store, guard) = (gate_store.clone(), guard.clone());
            async move { crate::bearer::gate(&store, &guard, Surface::Scim, req, next).await }
        },
    ))
    .layer(axum::middleware::from_fn(crate::headers::api));
    Router::new().nest("/scim/v2", v2)
}

impl Backend for Server {
    type Caller = TokenInfo;

    fn in_flight(&self) -> &InFlight {
        &self.in_flight
    }

    fn base_url(&self) -> &str {
        self.directory.base_url()
    }

    async fn authenticate(&self, headers: &HeaderMap) -> Result<TokenInfo, Response> {
        let Some(presented) = scim_http::bearer(headers) else {
            return Err(scim_http::unauthorized());
        };
        match self.directory.authenticate(presented).await {
            Ok(Some(token)) => Ok(token),
            Ok(None) => Err(scim_http::unauthorized()),
            Err(e) => Err(scim_http::error(&e)),
        }
    }

    async fn list(&self, kind: Kind, query: &ListQuery) -> Result<Value, ScimError> {
        match kind {
            Kind::User => self.directory.list_users(query).await,
            Kind::Group => self.directory.list_groups(query).await,
        }
    }

    async fn get(
        &self,
        kind: Kind,
        id: &str,
        projection: &Projection,
    ) -> Result<Resource, ScimError> {
        match kind {
            Kind::User => self.directory.get_user(id).await,
            Kind::Group => {
                self.directory
                    .get_group(id, projection.returns("members"))
                    .await
            }
        }
    }

    async fn create(
        &self,
        token: &TokenInfo,
        kind: Kind,
        body: &Value,
    ) -> Result<Resource, ScimError> {
        match kind {
            Kind::User => self.directory.create_user(token, body).await,
            Kind::Group => self.directory.create_group(token, body).await,
        }
    }

    async fn replace(
        &self,
        token: &TokenInfo,
        kind: Kind,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<Resource, ScimError> {
        match kind {
            Kind::User => self.directory.replace_user(token, id, body, if_match).await,
            Kind::Group => {
                self.directory
                    .replace_group(token, id, body, if_match)
                    .await
            }
        }
    }

    async fn patch(
        &self,
        token: &TokenInfo,
        kind: Kind,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<Patched, ScimError> {
        match kind {
            Kind::User => self
                .directory
                .patch_user(token, id, body, if_match)
                .await
                .map(Patched::Resource),
            Kind::Group => self.directory.patch_group(token, id, body, if_match).await,
        }
    }

    async fn delete(
        &self,
        token: &TokenInfo,
        kind: Kind,
        id: &str,
        if_match: Option<&str>,
    ) -> Result<(), ScimError> {
        match kind {
            Kind::User => self.directory.delete_user(token, id, if_match).await,
            Kind::Group => self.directory.delete_group(token, id, if_match).await,
        }
    }

    /// A directory user needs an e-mail address, so `emails` (and its `value`) is required
    /// here, which RFC 7643 leaves optional.
    fn schema(&self, sc: &schema::Schema) -> Value {
        let mut json = schema::schema_json(sc, self.base_url());
        if sc.id == USER_TYPE.schema.id {
            schema::mark_required(&mut json, "emails", Some("value"));
        }
        json
    }
}
