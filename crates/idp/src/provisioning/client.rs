//! SCIM 2.0 requests to one application's server, over reqwest (rustls).
//!
//! Bounded like the metadata fetch of the SP toolkit (`latchkey_sp::fetch`): a timeout per
//! request, and a response read chunk by chunk up to a cap, so a hostile or broken server
//! can hold neither a worker nor its memory. Redirects are not followed: a bearer token goes
//! only to the URL the admin gave.

use std::time::Duration;

use latchkey_scim::{CONTENT_TYPE, GROUP_SCHEMA, LIST_SCHEMA, PATCH_OP_SCHEMA};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::error::Error;

/// Limits of the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSettings {
    /// The whole of one request, connection included.
    pub timeout: Duration,
    /// The largest response body read.
    pub max_body: usize,
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            timeout: Duration::from_secs(10),
            max_body: 4 * 1024 * 1024,
        }
    }
}

/// How a SCIM request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No answer: connection refused, TLS, timeout.
    #[error("SCIM {method} {url}: {detail}")]
    Transport {
        /// The method.
        method: String,
        /// The URL.
        url: String,
        /// reqwest's words.
        detail: String,
    },
    /// An answer with a status the request does not expect.
    #[error("SCIM {method} {url}: HTTP {status}: {detail}")]
    Status {
        /// The method.
        method: String,
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
        /// The server's `detail` (or the start of its body).
        detail: String,
    },
    /// An answer that is not the JSON it should be (or is over the size cap).
    #[error("SCIM {method} {url}: {detail}")]
    Malformed {
        /// The method.
        method: String,
        /// The URL.
        url: String,
        /// What was wrong.
        detail: String,
    },
}

/// A user as listed by the application.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteUser {
    /// Its id at the application.
    pub id: String,
    /// Its `userName`.
    pub user_name: String,
    /// The whole resource.
    pub resource: Value,
}

impl RemoteUser {
    fn from_resource(resource: Value) -> Option<RemoteUser> {
        Some(RemoteUser {
            id: resource.get("id")?.as_str()?.to_owned(),
            user_name: resource.get("userName")?.as_str()?.to_owned(),
            resource,
        })
    }

    /// Its `active` (absent counts as active, as RFC 7643 leaves it to the server).
    pub fn active(&self) -> bool {
        self.resource
            .get("active")
            .and_then(Value::as_bool)
            .unwrap_or(true)
    }
}

/// What creating a user gave.
#[derive(Debug)]
pub enum Created {
    /// The new user's id.
    Id(String),
    /// 409: a user with that `userName` exists.
    Exists,
}

/// One page of users.
#[derive(Debug)]
pub struct UserPage {
    /// The users on it.
    pub users: Vec<RemoteUser>,
    /// `totalResults`.
    pub total: u64,
}

/// The HTTP side shared by every application's client: one connection pool and one TLS
/// configuration, built once (building them reads the trust roots, which costs more than a
/// request on loopback).
#[derive(Debug, Clone)]
pub struct Http {
    http: reqwest::Client,
    max_body: usize,
}

impl Http {
    /// The shared client with `settings`' limits.
    pub fn new(settings: &ClientSettings) -> Result<Http, Error> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::invalid("scim_url", e.to_string()))?;
        Ok(Http {
            http,
            max_body: settings.max_body,
        })
    }

    /// A client for `base` (a checked base URL) with its token.
    pub fn client(&self, base: &str, token: Zeroizing<String>) -> ScimClient {
        ScimClient {
            http: self.http.clone(),
            base: base.trim_end_matches('/').to_owned(),
            token,
            max_body: self.max_body,
        }
    }
}

/// A client for one application's SCIM base URL, holding its token.
#[derive(Clone)]
pub struct ScimClient {
    http: reqwest::Client,
    base: String,
    token: Zeroizing<String>,
    max_body: usize,
}

impl std::fmt::Debug for ScimClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScimClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl ScimClient {
    /// A client for `base` (a checked base URL, no trailing slash).
    pub fn new(
        base: &str,
        token: Zeroizing<String>,
        settings: &ClientSettings,
    ) -> Result<ScimClient, Error> {
        Ok(Http::new(settings)?.client(base, token))
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The user with this `userName`, if the application has one.
    pub async fn find_by_user_name(
        &self,
        user_name: &str,
    ) -> Result<Option<RemoteUser>, ClientError> {
        let filter = format!("userName eq {}", Value::String(user_name.to_owned()));
        let url = self.url("/Users");
        let (status, body) = self
            .send(
                Method::GET,
                &url,
                Some(&[("filter", filter.as_str()), ("count", "2")]),
                None,
            )
            .await?;
        expect(&Method::GET, &url, status, &body, &[StatusCode::OK])?;
        let page = self.page_of(&url, body)?;
        Ok(page
            .users
            .into_iter()
            .find(|u| u.user_name.eq_ignore_ascii_case(user_name)))
    }

    /// `GET /Users` from `start` (1-based), up to `count`.
    pub async fn list(&self, start: u64, count: u32) -> Result<UserPage, ClientError> {
        let url = self.url("/Users");
        let (start, count) = (start.to_string(), count.to_string());
        let (status, body) = self
            .send(
                Method::GET,
                &url,
                Some(&[("startIndex", start.as_str()), ("count", count.as_str())]),
                None,
            )
            .await?;
        expect(&Method::GET, &url, status, &body, &[StatusCode::OK])?;
        self.page_of(&url, body)
    }

    /// `POST /Users`.
    pub async fn create(&self, resource: &Value) -> Result<Created, ClientError> {
        let url = self.url("/Users");
        let (status, body) = self.send(Method::POST, &url, None, Some(resource)).await?;
        if status == StatusCode::CONFLICT {
            return Ok(Created::Exists);
        }
        expect(
            &Method::POST,
            &url,
            status,
            &body,
            &[StatusCode::CREATED, StatusCode::OK],
        )?;
        let id = body
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed(&Method::POST, &url, "the created user has no id"))?;
        Ok(Created::Id(id.to_owned()))
    }

    /// `PUT /Users/{id}`; `false` when the application has no such user.
    pub async fn replace(&self, id: &str, resource: &Value) -> Result<bool, ClientError> {
        let url = self.user_url(id);
        let mut resource = resource.clone();
        if let Some(map) = resource.as_object_mut() {
            map.insert("id".into(), Value::String(id.to_owned()));
        }
        let (status, body) = self.send(Method::PUT, &url, None, Some(&resource)).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(false);
        }
        expect(&Method::PUT, &url, status, &body, &[StatusCode::OK])?;
        Ok(true)
    }

    /// `PATCH /Users/{id}` setting `active` to false; `false` when there is no such user.
    pub async fn deactivate(&self, id: &str) -> Result<bool, ClientError> {
        let url = self.user_url(id);
        self.patch_replace(&url, "active", json!(false), &[StatusCode::NOT_FOUND])
            .await
    }

    /// One PATCH `replace` of `path` at `url`: `Ok(false)` when the answer is one of
    /// `declined` (the caller's way of saying "not done, nothing wrong").
    async fn patch_replace(
        &self,
        url: &str,
        path: &str,
        value: serde_json::Value,
        declined: &[StatusCode],
    ) -> Result<bool, ClientError> {
        let patch = json!({
            "schemas": [PATCH_OP_SCHEMA],
            "Operations": [{ "op": "replace", "path": path, "value": value }],
        });
        let (status, body) = self.send(Method::PATCH, url, None, Some(&patch)).await?;
        if declined.contains(&status) {
            return Ok(false);
        }
        expect(
            &Method::PATCH,
            url,
            status,
            &body,
            &[StatusCode::OK, StatusCode::NO_CONTENT],
        )?;
        Ok(true)
    }

    /// `DELETE /Users/{id}`; a user already gone counts as deleted.
    pub async fn delete(&self, id: &str) -> Result<(), ClientError> {
        let url = self.user_url(id);
        let (status, body) = self.send(Method::DELETE, &url, None, None).await?;
        expect(
            &Method::DELETE,
            &url,
            status,
            &body,
            &[
                StatusCode::NO_CONTENT,
                StatusCode::OK,
                StatusCode::NOT_FOUND,
            ],
        )
    }

    /// The groups (id, displayName) the user `member` is in: `GET /Groups` filtered on
    /// `members.value`.
    pub async fn groups_of(&self, member: &str) -> Result<Vec<(String, String)>, ClientError> {
        let filter = format!("members.value eq {}", Value::String(member.to_owned()));
        self.groups_where(&filter).await
    }

    /// The group with this `displayName`, if any: (id, displayName).
    pub async fn find_group(&self, name: &str) -> Result<Option<(String, String)>, ClientError> {
        let filter = format!("displayName eq {}", Value::String(name.to_owned()));
        Ok(self.groups_where(&filter).await?.into_iter().next())
    }

    async fn groups_where(&self, filter: &str) -> Result<Vec<(String, String)>, ClientError> {
        let url = self.url("/Groups");
        let (status, body) = self
            .send(
                Method::GET,
                &url,
                Some(&[
                    ("filter", filter),
                    ("count", "200"),
                    ("attributes", "displayName"),
                ]),
                None,
            )
            .await?;
        expect(&Method::GET, &url, status, &body, &[StatusCode::OK])?;
        Ok(body
            .get("Resources")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(|g| {
                        Some((
                            g.get("id")?.as_str()?.to_owned(),
                            g.get("displayName")?.as_str()?.to_owned(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// `POST /Groups` with one member.
    pub async fn create_group(&self, name: &str, member: &str) -> Result<(), ClientError> {
        let url = self.url("/Groups");
        let group = json!({
            "schemas": [GROUP_SCHEMA],
            "displayName": name,
            "members": [{ "value": member }],
        });
        let (status, body) = self.send(Method::POST, &url, None, Some(&group)).await?;
        expect(
            &Method::POST,
            &url,
            status,
            &body,
            &[StatusCode::CREATED, StatusCode::OK],
        )
    }

    /// `PATCH /Groups/{id}` replacing its `displayName`. `false` when the application
    /// refuses the name as taken (`409`) or no longer has the group (`404`): the caller then
    /// moves members as it would without a rename.
    pub async fn rename_group(&self, id: &str, name: &str) -> Result<bool, ClientError> {
        let url = self.group_url(id);
        let declined = [StatusCode::CONFLICT, StatusCode::NOT_FOUND];
        self.patch_replace(&url, "displayName", json!(name), &declined)
            .await
    }

    /// Adds (or removes) `member` to (from) the group `id` with one PATCH.
    pub async fn set_member(
        &self,
        id: &str,
        member: &str,
        present: bool,
    ) -> Result<(), ClientError> {
        let url = self.group_url(id);
        let operation = if present {
            json!({ "op": "add", "path": "members", "value": [{ "value": member }] })
        } else {
            json!({
                "op": "remove",
                "path": format!("members[value eq {}]", Value::String(member.to_owned())),
            })
        };
        let patch = json!({ "schemas": [PATCH_OP_SCHEMA], "Operations": [operation] });
        let (status, body) = self.send(Method::PATCH, &url, None, Some(&patch)).await?;
        expect(
            &Method::PATCH,
            &url,
            status,
            &body,
            &[StatusCode::OK, StatusCode::NO_CONTENT],
        )
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn group_url(&self, id: &str) -> String {
        // The id is the server's; keep it inside one path segment.
        let mut url = self.url("/Groups/");
        url.extend(url::form_urlencoded::byte_serialize(id.as_bytes()));
        url
    }

    fn user_url(&self, id: &str) -> String {
        // The id is the server's; keep it inside one path segment.
        let mut url = self.url("/Users/");
        url.extend(url::form_urlencoded::byte_serialize(id.as_bytes()));
        url
    }

    fn page_of(&self, url: &str, body: Value) -> Result<UserPage, ClientError> {
        let schemas_ok = body
            .get("schemas")
            .and_then(Value::as_array)
            .is_some_and(|s| s.iter().any(|v| v == LIST_SCHEMA));
        if !schemas_ok {
            return Err(malformed(&Method::GET, url, "not a SCIM ListResponse"));
        }
        let total = body
            .get("totalResults")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let users = body
            .get("Resources")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .cloned()
                    .filter_map(RemoteUser::from_resource)
                    .collect()
            })
            .unwrap_or_default();
        Ok(UserPage { users, total })
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        query: Option<&[(&str, &str)]>,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), ClientError> {
        let fail = |detail: String| ClientError::Transport {
            method: method.to_string(),
            url: url.to_owned(),
            detail,
        };
        let mut target = url::Url::parse(url).map_err(|e| fail(e.to_string()))?;
        if let Some(query) = query {
            target.query_pairs_mut().extend_pairs(query);
        }
        let mut request = self
            .http
            .request(method.clone(), target)
            .bearer_auth(self.token.as_str())
            .header(reqwest::header::ACCEPT, CONTENT_TYPE);
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
                .body(body.to_string());
        }
        let mut response = request.send().await.map_err(|e| fail(error_text(&e)))?;
        let status = response.status();
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| fail(error_text(&e)))? {
            if bytes.len() + chunk.len() > self.max_body {
                return Err(malformed(
                    &method,
                    url,
                    &format!("answer larger than {} bytes", self.max_body),
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok((status, Value::Null));
        }
        match serde_json::from_slice(&bytes) {
            Ok(value) => Ok((status, value)),
            // An error page in HTML: the status says enough, the body goes to the detail.
            Err(_) if !status.is_success() => Ok((
                status,
                Value::String(String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into()),
            )),
            Err(e) => Err(malformed(&method, url, &format!("not JSON: {e}"))),
        }
    }
}

fn expect(
    method: &Method,
    url: &str,
    status: StatusCode,
    body: &Value,
    wanted: &[StatusCode],
) -> Result<(), ClientError> {
    if wanted.contains(&status) {
        return Ok(());
    }
    let detail = match body {
        Value::String(s) => s.clone(),
        other => other
            .get("detail")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_default(),
    };
    Err(ClientError::Status {
        method: method.to_string(),
        url: url.to_owned(),
        status: status.as_u16(),
        detail: super::clip(&detail),
    })
}

fn malformed(method: &Method, url: &str, detail: &str) -> ClientError {
    ClientError::Malformed {
        method: method.to_string(),
        url: url.to_owned(),
        detail: detail.to_owned(),
    }
}

/// reqwest's error with its causes (its own `Display` says only "error sending request").
fn error_text(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
