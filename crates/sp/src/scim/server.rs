//! The SCIM endpoints over axum: `router` serves a [`ScimService`] under whatever prefix the
//! application nests it at (`/scim/v2` by convention).
//!
//! The routes and their HTTP plumbing are `latchkey_scim::server`, shared with the IdP's
//! SCIM server; this is the backend they run on. Every route needs a configured bearer
//! token (401 otherwise). A body larger than `latchkey_scim::MAX_BODY_BYTES` is refused
//! with 413 before it is parsed, and at most [`MAX_IN_FLIGHT`] requests are served at once
//! (503 with `Retry-After` past that), so a token holder cannot make the application buffer
//! or queue without bound.

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, header};
use axum::response::Response;
use latchkey_scim::Patched;
use latchkey_scim::http::{self, InFlight};
use latchkey_scim::list::Projection;
use latchkey_scim::server::{Backend, Kind};
use serde_json::Value;
use time::OffsetDateTime;

use super::ScimError;
use super::list::ListQuery;
use super::service::{Actor, Resource, ScimService};

/// The most SCIM requests served at once.
pub const MAX_IN_FLIGHT: usize = 16;

/// Where the endpoints get the time.
pub type Now = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

struct Server {
    service: ScimService,
    now: Now,
    in_flight: InFlight,
}

/// The SCIM routes for `service`, to nest under the SCIM base path.
pub fn router(service: ScimService, now: Now) -> Router {
    latchkey_scim::server::router(Arc::new(Server {
        service,
        now,
        in_flight: InFlight::new(MAX_IN_FLIGHT),
    }))
}

impl Backend for Server {
    type Caller = Actor;

    fn in_flight(&self) -> &InFlight {
        &self.in_flight
    }

    fn base_url(&self) -> &str {
        self.service.base_url()
    }

    async fn authenticate(&self, headers: &HeaderMap) -> Result<Actor, Response> {
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        self.service
            .authenticate(authorization)
            .ok_or_else(http::unauthorized)
    }

    async fn list(&self, kind: Kind, query: &ListQuery) -> Result<Value, ScimError> {
        match kind {
            Kind::User => self.service.list_users(query).await,
            Kind::Group => self.service.list_groups(query).await,
        }
    }

    async fn get(
        &self,
        kind: Kind,
        id: &str,
        _projection: &Projection,
    ) -> Result<Resource, ScimError> {
        match kind {
            Kind::User => self.service.get_user(id).await,
            Kind::Group => self.service.get_group(id).await,
        }
    }

    async fn create(&self, actor: &Actor, kind: Kind, body: &Value) -> Result<Resource, ScimError> {
        let now = (self.now)();
        match kind {
            Kind::User => self.service.create_user(actor, body, now).await,
            Kind::Group => self.service.create_group(actor, body, now).await,
        }
    }

    async fn replace(
        &self,
        actor: &Actor,
        kind: Kind,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<Resource, ScimError> {
        let now = (self.now)();
        match kind {
            Kind::User => {
                self.service
                    .replace_user(actor, id, body, if_match, now)
                    .await
            }
            Kind::Group => {
                self.service
                    .replace_group(actor, id, body, if_match, now)
                    .await
            }
        }
    }

    async fn patch(
        &self,
        actor: &Actor,
        kind: Kind,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<Patched, ScimError> {
        let now = (self.now)();
        let patched = match kind {
            Kind::User => {
                self.service
                    .patch_user(actor, id, body, if_match, now)
                    .await
            }
            Kind::Group => {
                self.service
                    .patch_group(actor, id, body, if_match, now)
                    .await
            }
        };
        patched.map(Patched::Resource)
    }

    async fn delete(
        &self,
        actor: &Actor,
        kind: Kind,
        id: &str,
        if_match: Option<&str>,
    ) -> Result<(), ScimError> {
        let now = (self.now)();
        match kind {
            Kind::User => self.service.delete_user(actor, id, if_match, now).await,
            Kind::Group => self.service.delete_group(actor, id, if_match, now).await,
        }
    }
}
