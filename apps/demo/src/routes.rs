//! The routes, and the one place errors become responses.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::connect_info::ConnectInfo;
use axum::extract::rejection::FormRejection;
use axum::extract::{Extension, Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use latchkey_sp::AcsForm;
use latchkey_sp::acs;
use latchkey_sp::binding::BrowserBinding;
use latchkey_sp::logout::{self, LogoutFailure, SloForm, SloMessage, SloReceived};
use latchkey_sp::store::Account;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::DemoCode;
use crate::app::{AppKind, DemoApp};
use crate::pages::{self, PageCode, rfc3339};
use crate::session::{Session, cookie_value};

type AppState = Arc<DemoApp>;

/// The app's router: every route, and security headers on every response.
pub fn router(app: Arc<DemoApp>) -> Router {
    let scim = app.scim().cloned().map(|service| {
        let clock = app.clock();
        latchkey_sp::scim::server::router(service, Arc::new(move || clock.now()))
    });
    let pages = Router::new()
        .route("/", get(home))
        .route("/login", get(login))
        .route("/saml/metadata", get(metadata))
        .route("/saml/acs", post(acs_post))
        .route("/saml/slo", get(slo_get).post(slo_post))
        .route("/whoami", get(whoami))
        .route("/readyz", get(readyz))
        .route("/admin", get(admin))
        .route("/logout", post(logout))
        .route("/static/{file}", get(crate::html::static_file));
    let routes = match scim {
        Some(scim) => pages.nest("/scim/v2", scim.with_state(())),
        None => pages,
    };
    routes
        .layer(axum::middleware::map_response(security_headers))
        .with_state(app)
}

async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // For browsers that predate CSP's frame-ancestors.
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// An error shown to the person: a page with the code and operation ID (also logged).
struct PageError {
    status: StatusCode,
    title: &'static str,
    code: PageCode,
    operation_id: Uuid,
}

impl PageError {
    fn from_sp(kind: AppKind, error: &latchkey_sp::Error, operation_id: Uuid) -> Response {
        if error.is_busy() {
            // At its bound the toolkit turned the login away without using the assertion up;
            // the browser may post it again in a moment.
            let mut page = PageError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                title: "Too busy to sign you in",
                code: PageCode::Sp(error.code()),
                operation_id,
            }
            .render(kind);
            page.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return page;
        }
        if error.is_throttled() {
            // This browser's network has too many logins under way; others are served.
            let mut page = PageError {
                status: StatusCode::TOO_MANY_REQUESTS,
                title: "Too many sign-ins",
                code: PageCode::Sp(error.code()),
                operation_id,
            }
            .render(kind);
            page.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            return page;
        }
        let status = if error.is_internal() {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::FORBIDDEN
        };
        PageError {
            status,
            title: "Sign-in refused",
            code: PageCode::Sp(error.code()),
            operation_id,
        }
        .render(kind)
    }

    fn render(self, kind: AppKind) -> Response {
        let html = pages::error(
            kind,
            self.title,
            self.code,
            pages::explain(kind, self.code),
            self.operation_id,
        );
        (self.status, no_store(), Html(html)).into_response()
    }
}

fn internal(app: &DemoApp, error: &dyn std::fmt::Display) -> Response {
    let operation_id = Uuid::new_v4();
    tracing::error!(%operation_id, %error, "demo app error");
    PageError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        title: "Something went wrong",
        code: PageCode::Demo(DemoCode::Internal),
        operation_id,
    }
    .render(app.kind())
}

fn no_store() -> [(header::HeaderName, HeaderValue); 1] {
    [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))]
}

/// The session and its current account, if the browser has a live one.
async fn current(
    app: &DemoApp,
    headers: &HeaderMap,
) -> Result<Option<(Session, Account)>, Response> {
    let Some(id) = session_id(app, headers) else {
        return Ok(None);
    };
    let Some(session) = app.sessions.get(id, app.now()) else {
        return Ok(None);
    };
    match app.store().account(session.account_id).await {
        // SCIM ends a disabled account's sessions at once; this also covers a disable made
        // through another node or while the hook could not run.
        Ok(Some(account)) if !account.active => {
            app.sessions.remove(id);
            Ok(None)
        }
        Ok(Some(account)) => Ok(Some((session, account))),
        Ok(None) => Ok(None),
        Err(e) => Err(internal(app, &e)),
    }
}

fn session_id<'h>(app: &DemoApp, headers: &'h HeaderMap) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| cookie_value(v, app.kind().cookie_name()))
}

async fn home(State(app): State<AppState>, headers: HeaderMap) -> Response {
    match current(&app, &headers).await {
        Ok(Some((session, account))) => (
            no_store(),
            Html(pages::home(app.kind(), &session, &account)),
        )
            .into_response(),
        Ok(None) => Html(pages::signed_out(app.kind())).into_response(),
        Err(r) => r,
    }
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    return_to: Option<String>,
}

async fn login(
    State(app): State<AppState>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let client = app.client_address(&headers, connect.map(|c| c.0.0.ip()));
    match latchkey_sp::web::login_response(
        app.sp(),
        client.as_deref(),
        &headers,
        q.return_to.as_deref(),
        app.now(),
    )
    .await
    {
        Ok(r) => r,
        Err(e) => {
            let operation_id = Uuid::new_v4();
            tracing::error!(%operation_id, code = e.code().as_str(), error = %e, "cannot start login");
            PageError::from_sp(app.kind(), &e, operation_id)
        }
    }
}

async fn metadata(State(app): State<AppState>) -> Response {
    match latchkey_sp::web::metadata_response(app.sp()) {
        Ok(r) => r,
        Err(e) => internal(&app, &e),
    }
}

async fn acs_post(
    State(app): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<AcsForm>, FormRejection>,
) -> Response {
    let now = app.now();
    let form = match form {
        Ok(Form(f)) => f,
        Err(rejection) => {
            let operation_id = Uuid::new_v4();
            let error = latchkey_sp::Error::Saml(
                latchkey_sp::latchkey_saml::Error::MissingParameter("SAMLResponse"),
            );
            tracing::warn!(%operation_id, code = error.code().as_str(), %rejection, "ACS form refused");
            if let Err(e) =
                acs::audit_rejection(app.sp(), app.store(), operation_id, &error, now).await
            {
                tracing::error!(%operation_id, error = %e, "could not audit the refusal");
            }
            return PageError {
                status: StatusCode::BAD_REQUEST,
                title: "Sign-in refused",
                code: PageCode::Sp(error.code()),
                operation_id,
            }
            .render(app.kind());
        }
    };
    let browser = BrowserBinding::from_headers(&headers);
    let done = match acs::run(app.sp(), &form, &browser, app.replay(), app.engine(), now).await {
        Ok(done) => done,
        Err(failure) => {
            return PageError::from_sp(app.kind(), &failure.error, failure.operation_id);
        }
    };
    let provisioning = app.kind().describe(&done.provisioned);
    let operation_id = done.provisioned.operation_id;
    tracing::info!(
        %operation_id,
        app = app.kind().name(),
        account = %done.provisioned.account.id,
        provisioning = %provisioning,
        "signed in"
    );
    let id = app.sessions.create(
        Session {
            login: done.login,
            account_id: done.provisioned.account.id,
            provisioning,
            operation_id,
            expires_at: now,
        },
        now,
    );
    let cookie = format!(
        "{}={id}; Path=/; HttpOnly; SameSite=Lax{}",
        app.kind().cookie_name(),
        if app.secure_cookies() { "; Secure" } else { "" }
    );
    let location = done.return_to.unwrap_or_else(|| "/".to_owned());
    let (Ok(cookie), Ok(location)) = (
        HeaderValue::from_str(&cookie),
        HeaderValue::from_str(&location),
    ) else {
        return internal(&app, &"session cookie or location is not a header value");
    };
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, cookie),
            (header::LOCATION, location),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response()
}

/// Whether the app can log anyone in, for a load balancer or an orchestrator, in the IdP's
/// `/readyz` shape: `{"ready": bool, "checks": {name: "ok" | code}, ...}`, 200 when ready,
/// 503 when not. `database` counts (it takes a login's transaction within 2 s; a result
/// under a second old is reused, so calls cannot load it), and so does `idp_metadata` (the
/// trusted IdP metadata expired: every login would be refused); `metadata_refresh` is
/// reported but does not count (refreshes failing while the keys trusted still work:
/// taking the app out would not bring the IdP back). `metadata` is the toolkit's
/// [`latchkey_sp::health::MetadataStatus::public`]. Anyone may ask, so a check that fails
/// shows only its code ([`latchkey_sp::health::ReadyCode`]); why is in the log.
async fn readyz(State(app): State<AppState>) -> Response {
    let database = app.database_check().await;
    let status = app.sp().metadata_status(app.now());
    let idp_metadata = match status.code() {
        Some(code) if !status.can_log_in() => code.as_str(),
        _ => "ok",
    };
    let ready = database == "ok" && idp_metadata == "ok";
    let metadata_refresh = match status.consecutive_failures {
        0 => "ok",
        _ => latchkey_sp::health::ReadyCode::MetadataFetchFailed.as_str(),
    };
    // Said when it changes, not at every call. The refresher logs each failed refresh with
    // its error (`latchkey_sp::fetch`).
    if let Some(before) = app.readiness_changed((database, idp_metadata)) {
        if !ready {
            tracing::warn!(
                app = app.kind().name(),
                %database,
                %idp_metadata,
                metadata = %status.detail,
                "not ready"
            );
        } else if before.is_some() {
            tracing::info!(app = app.kind().name(), "ready again");
        }
    }
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "ready": ready,
        "checks": {
            "database": database,
            "idp_metadata": idp_metadata,
            "metadata_refresh": metadata_refresh,
        },
        "metadata": status.public(),
    });
    (code, no_store(), Json(body)).into_response()
}

async fn whoami(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let body = match current(&app, &headers).await {
        Ok(Some((session, account))) => whoami_json(&app, &session, &account),
        Ok(None) => json!({ "authenticated": false, "account": null }),
        Err(r) => return r,
    };
    (no_store(), Json(body)).into_response()
}

fn whoami_json(app: &DemoApp, session: &Session, account: &Account) -> Value {
    let login = &session.login;
    let roles: Vec<&String> = account.roles.keys().collect();
    json!({
        "authenticated": true,
        "app": app.kind().name(),
        "issuer": login.issuer,
        "name_id": login.name_id,
        "name_id_format": login.name_id_format,
        "session_index": login.session_index,
        "assertion_id": login.assertion_id,
        "authn_instant": rfc3339(login.authn_instant),
        "authn_context_class_ref": login.authn_context_class_ref,
        "attributes": login.attributes,
        "provisioning": session.provisioning,
        "operation_id": session.operation_id,
        "account": {
            "id": account.id,
            "identity": account.identity.as_ref().map(|i| &i.key),
            "fields": account.fields,
            "roles": roles,
            "role": app.kind().primary_role(account.roles.keys()),
            "provisioned_by": account.provisioned_by,
            "created_at": rfc3339(account.created_at),
            "updated_at": rfc3339(account.updated_at),
        },
    })
}

async fn admin(
    State(app): State<AppState>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
) -> Response {
    let (_, account) = match current(&app, &headers).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            let client = app.client_address(&headers, connect.map(|c| c.0.0.ip()));
            return latchkey_sp::web::login_response(
                app.sp(),
                client.as_deref(),
                &headers,
                Some("/admin"),
                app.now(),
            )
            .await
            .unwrap_or_else(|e| {
                let operation_id = Uuid::new_v4();
                tracing::error!(%operation_id, code = e.code().as_str(), error = %e, "cannot start login");
                PageError::from_sp(app.kind(), &e, operation_id)
            });
        }
        Err(r) => return r,
    };
    if !account.roles.contains_key(app.kind().admin_role()) {
        let operation_id = Uuid::new_v4();
        tracing::warn!(
            %operation_id,
            account = %account.id,
            needs = app.kind().admin_role(),
            "admin page refused"
        );
        return PageError {
            status: StatusCode::FORBIDDEN,
            title: "Not allowed",
            code: PageCode::Demo(DemoCode::AdminRoleRequired),
            operation_id,
        }
        .render(app.kind());
    }
    let accounts = match app.store().accounts().await {
        Ok(a) => a,
        Err(e) => return internal(&app, &e),
    };
    let audit = match app.store().audit_log(50).await {
        Ok(a) => a,
        Err(e) => return internal(&app, &e),
    };
    (
        no_store(),
        Html(pages::admin(app.kind(), &accounts, &audit)),
    )
        .into_response()
}

/// Whether a POST comes from one of this app's own pages, by what the browser says of where
/// it started: `Sec-Fetch-Site`, or, from a browser that does not send it, `Origin` against
/// `Host`. A request with neither is no cross-site form (a script or a test client).
fn from_our_pages(headers: &HeaderMap) -> bool {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        return matches!(site, "same-origin" | "none");
    }
    match text(header::ORIGIN) {
        None => true,
        Some(origin) => origin
            .split_once("://")
            .is_some_and(|(_, host)| Some(host) == text(header::HOST)),
    }
}

/// Ends this browser's session here at once (the person asked to leave, whatever the IdP
/// answers), then starts single logout through the IdP when the session came from a login
/// with it. The hop to the IdP is a refresh page, not a 303: this answers a form POST.
async fn logout(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if !from_our_pages(&headers) {
        // A form on another site: sign nobody out, clear no cookie (the browser would apply
        // the clearing `Set-Cookie` of a cross-site navigation), go home.
        tracing::warn!(
            app = app.kind().name(),
            "sign-out refused: the form was posted from another site"
        );
        return (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, HeaderValue::from_static("/"))],
        )
            .into_response();
    }
    let ended = session_id(&app, &headers).and_then(|id| app.sessions.remove(id));
    let clear = format!(
        "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0",
        app.kind().cookie_name()
    );
    let cookie = match HeaderValue::from_str(&clear) {
        Ok(cookie) => cookie,
        Err(e) => return internal(&app, &e),
    };
    if let Some(session) = ended {
        match logout::start(
            app.sp(),
            app.store(),
            &session.login,
            Some(session.account_id),
            Some("/"),
            app.now(),
        )
        .await
        {
            Ok(started) => {
                tracing::info!(
                    app = app.kind().name(),
                    operation_id = %started.operation_id,
                    request = %started.redirect.request.request_id,
                    "signed out here; single logout through the IdP"
                );
                return (
                    [
                        (header::SET_COOKIE, cookie),
                        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                    ],
                    Html(pages::leaving(app.kind(), &started.redirect.url)),
                )
                    .into_response();
            }
            // Logged by `logout::start`; the person is signed out here all the same.
            Err(failure) => tracing::warn!(
                code = failure.code().as_str(),
                operation_id = %failure.operation_id,
                "single logout not started; signed out of this app only"
            ),
        }
    }
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, cookie),
            (header::LOCATION, HeaderValue::from_static("/")),
        ],
    )
        .into_response()
}

/// `GET /saml/slo`: a logout message over HTTP-Redirect (the raw query is what was signed).
async fn slo_get(State(app): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    single_logout(&app, SloMessage::Redirect(&query), false).await
}

/// `POST /saml/slo`: a logout message over HTTP-POST.
async fn slo_post(
    State(app): State<AppState>,
    form: Result<Form<SloForm>, FormRejection>,
) -> Response {
    // An unreadable form is handled as an empty one: the toolkit names what is missing.
    let form = form.map(|Form(f)| f).unwrap_or_default();
    single_logout(&app, SloMessage::Post(&form), true).await
}

/// The IdP's LogoutRequest ends every session of ours it names and is answered through the
/// browser; the IdP's answer to our own request ends with the signed-out page.
async fn single_logout(app: &DemoApp, message: SloMessage<'_>, after_form: bool) -> Response {
    let now = app.now();
    let received = match logout::receive(app.sp(), app.replay(), app.store(), message, now).await {
        Ok(received) => received,
        Err(failure) => return logout_refused(app, &failure),
    };
    match received.received {
        SloReceived::Response(done) => {
            tracing::info!(app = app.kind().name(), outcome = ?done.outcome, "single logout done");
            (
                no_store(),
                Html(pages::signed_out_everywhere(app.kind(), &done.outcome)),
            )
                .into_response()
        }
        SloReceived::Request(request) => {
            let ended = app.sessions.end_matching(|login| request.matches(login));
            let answered = logout::answer(
                app.sp(),
                app.store(),
                &request,
                ended,
                received.operation_id,
                now,
            )
            .await;
            let url = match answered {
                Ok(url) => url,
                Err(failure) => return logout_refused(app, &failure),
            };
            if after_form {
                (no_store(), Html(pages::leaving(app.kind(), &url))).into_response()
            } else {
                latchkey_sp::web::see_other(&url).unwrap_or_else(|error| {
                    logout_refused(
                        app,
                        &LogoutFailure {
                            error,
                            operation_id: received.operation_id,
                        },
                    )
                })
            }
        }
    }
}

/// The page for a refused logout message; the toolkit has logged it (and audited it as
/// `slo.refused`) under the operation ID the page shows.
fn logout_refused(app: &DemoApp, failure: &LogoutFailure) -> Response {
    let error = &failure.error;
    let status = if error.is_internal() {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::BAD_REQUEST
    };
    let html = pages::error(
        app.kind(),
        "Sign-out refused",
        PageCode::Sp(error.code()),
        pages::explain_logout(error.code()),
        failure.operation_id,
    );
    (status, no_store(), Html(html)).into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;

    use super::*;

    async fn page(response: Response) -> (StatusCode, HeaderMap, String) {
        let status = response.status();
        let headers = response.headers().clone();
        let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, headers, String::from_utf8(body.to_vec()).unwrap())
    }

    /// A login the toolkit turned away at one of its bounds is answered 503 with
    /// `Retry-After` (the browser may post again in a moment), its code and operation ID on
    /// the page; one turned away because its network started too many is a 429; a refused
    /// login is a 403 with no such promise.
    #[tokio::test]
    async fn a_busy_toolkit_is_503_a_crowded_network_429_and_a_refusal_403() {
        let id = Uuid::new_v4();
        for busy in [
            latchkey_sp::Error::TooManyPendingRequests(10_000),
            latchkey_sp::Error::Store(latchkey_sp::StoreError::Busy(1_024)),
        ] {
            let (status, headers, body) = page(PageError::from_sp(AppKind::Wiki, &busy, id)).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{busy}");
            assert_eq!(headers[header::RETRY_AFTER], "1");
            assert!(body.contains(busy.code().as_str()), "{body}");
            assert!(body.contains(&id.to_string()), "{body}");
            assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        }
        let crowded = latchkey_sp::Error::TooManyPendingFromClient(200);
        let (status, headers, body) = page(PageError::from_sp(AppKind::Wiki, &crowded, id)).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers[header::RETRY_AFTER], "60");
        assert!(body.contains("TOO_MANY_PENDING_FROM_CLIENT"), "{body}");
        let expired = latchkey_sp::Error::RequestExpired;
        let (status, headers, body) =
            page(PageError::from_sp(AppKind::Helpdesk, &expired, id)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(!headers.contains_key(header::RETRY_AFTER));
        assert!(body.contains(expired.code().as_str()), "{body}");
    }
}
