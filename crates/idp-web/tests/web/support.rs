//! A seeded IdP behind its router, a browser with a cookie jar, and an SP that checks the
//! Responses it receives with latchkey-saml's profile validation.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use base64::Engine;
use latchkey_idp::Store;
use latchkey_idp::apps::{Application, NewApplication};
use latchkey_idp::config::PasswordConfig;
use latchkey_idp::config::{ServerConfig, ServerSettings};
use latchkey_idp::directory::{NewGroup, NewUser, User};
use latchkey_idp::keys::{Kek, KekSource, KeyAlgorithm, KeyStore};
use latchkey_idp::password::Password;
use latchkey_idp::sso::IdpKeys;
use latchkey_idp::{Actor, Clock, ManualClock, SystemClock};
use latchkey_idp_web::{self as web, WebState};
use latchkey_saml::authn_request::AuthnRequest;
use latchkey_saml::binding::{BindingLimits, MessageKind, redirect};
use latchkey_saml::metadata::{MetadataOptions, parse_metadata};
use latchkey_saml::profile::{AuthenticatedSubject, SpSettings, validate_response};
use latchkey_xmlsec::crypto::{SigningKey, VerifyingKey};
use tower::ServiceExt;

pub const BASE: &str = "http://127.0.0.1:8080";
pub const SSO: &str = "http://127.0.0.1:8080/saml/sso";
pub const SP: &str = "https://sp.example.com";
pub const SP_ACS: &str = "https://sp.example.com/acs";
pub const SIGNED_SP: &str = "https://signed.example.net";
pub const SIGNED_ACS: &str = "https://signed.example.net/saml/acs";
pub const PASSWORD: &str = "correct horse battery";
/// The `[server] metrics_token` of the IdP under test (in-process requests have no peer
/// address, so the loopback allowance does not apply to them).
pub const METRICS_TOKEN: &str = "test-metrics-token";

/// The IdP under test and what was seeded into it.
pub struct Idp {
    pub router: Router,
    pub store: Store,
    pub settings: ServerSettings,
    pub alice: User,
    pub bob: User,
    pub app: Application,
    pub signed_app: Application,
    /// The key the signed app signs its requests with.
    pub sp_key: SigningKey,
    pub idp_keys: Vec<VerifyingKey>,
    pub key_dir: std::path::PathBuf,
    /// The database URL, for a second node or a second connection on the same store.
    pub url: String,
    /// The IdP's clock: it starts at the wall clock's time and stands still until a test
    /// moves it on.
    pub clock: ManualClock,
    /// The key that seals TOTP secrets in this IdP (base64; [`Idp::kek`] opens it).
    pub kek_base64: String,
    _dir: tempfile::TempDir,
}

pub async fn idp() -> Idp {
    idp_with(|_| {}).await
}

/// An IdP with alice (in `staff`, which may use both apps) and bob (in no group).
pub async fn idp_with(edit: impl FnOnce(&mut ServerConfig)) -> Idp {
    let dir = tempfile::tempdir().unwrap();
    let url = latchkey_idp::config::sqlite_url(&dir.path().join("latchkey.db"));
    build(dir, &url, edit).await
}

/// The same IdP on a fresh database of the throwaway PostgreSQL cluster.
pub async fn idp_postgres() -> Idp {
    idp_postgres_with(|_| {}).await
}

/// [`idp_postgres`] with edited settings.
pub async fn idp_postgres_with(edit: impl FnOnce(&mut ServerConfig)) -> Idp {
    let dir = tempfile::tempdir().unwrap();
    let url = crate::store_support::pg::fresh_database_url().await;
    build(dir, &url, edit).await
}

/// Argon2 parameters that make tests fast.
pub fn cheap_passwords() -> PasswordConfig {
    PasswordConfig {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
        ..PasswordConfig::default()
    }
}

async fn build(dir: tempfile::TempDir, url: &str, edit: impl FnOnce(&mut ServerConfig)) -> Idp {
    build_with(dir, url, cheap_passwords(), edit, |_| {}).await
}

/// An IdP (as [`idp`]) whose checked settings the test edits: what `latchkey serve` takes
/// from other sections than `[server]` (`[mfa] required`).
pub async fn idp_with_settings(edit: impl FnOnce(&mut ServerSettings)) -> Idp {
    let dir = tempfile::tempdir().unwrap();
    let url = latchkey_idp::config::sqlite_url(&dir.path().join("latchkey.db"));
    build_with(dir, &url, cheap_passwords(), |_| {}, edit).await
}

/// An IdP (as [`idp_with`]) whose password hashing is configured by the test.
pub async fn idp_with_passwords(
    passwords: PasswordConfig,
    edit: impl FnOnce(&mut ServerConfig),
) -> Idp {
    let dir = tempfile::tempdir().unwrap();
    let url = latchkey_idp::config::sqlite_url(&dir.path().join("latchkey.db"));
    build_with(dir, &url, passwords, edit, |_| {}).await
}

/// A second node of `idp`: its own store pool, hash pool and server state over the same
/// database and keys.
pub async fn second_node(idp: &Idp) -> (Router, Store) {
    let store = Store::open_url(&idp.url, 5, cheap_passwords())
        .await
        .unwrap()
        .with_clock(idp.clock.clone());
    let keys = IdpKeys::open(&idp.key_dir, KeyAlgorithm::EcdsaP256, idp.clock.now()).unwrap();
    let state =
        WebState::new(store.clone(), idp.settings.clone(), keys).with_sealing_kek(idp.kek());
    (web::router(state), store)
}

async fn build_with(
    dir: tempfile::TempDir,
    url: &str,
    passwords: PasswordConfig,
    edit: impl FnOnce(&mut ServerConfig),
    edit_settings: impl FnOnce(&mut ServerSettings),
) -> Idp {
    let clock = ManualClock::starting_now();
    let store = Store::open_url(url, 5, passwords)
        .await
        .unwrap()
        .with_clock(clock.clone());
    let admin = Actor::system();
    let mut new = NewUser::new("alice", "alice@example.org");
    new.given_name = Some("Alice".into());
    new.family_name = Some("Liddell".into());
    new.password = Some(Password::new(PASSWORD));
    let alice = store.users().create(&admin, new).await.unwrap();
    let mut new = NewUser::new("bob", "bob@example.org");
    new.password = Some(Password::new(PASSWORD));
    let bob = store.users().create(&admin, new).await.unwrap();
    let staff = store
        .groups()
        .create(&admin, NewGroup::new("staff"))
        .await
        .unwrap();
    store
        .groups()
        .add_member(&admin, staff.id, alice.id)
        .await
        .unwrap();

    let mut new = NewApplication::new(SP, "Wiki", SP_ACS);
    new.attributes = vec![
        "mail=email".parse().unwrap(),
        "memberOf@basic=groups".parse().unwrap(),
    ];
    new.tile.description = Some("The team wiki".into());
    new.tile.default_relay_state = Some("/welcome".into());
    let app = store.apps().create(&admin, new).await.unwrap();
    store.apps().assign(&admin, app.id, staff.id).await.unwrap();

    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["signed.example.net".into()])
        .unwrap()
        .self_signed(&pair)
        .unwrap();
    let sp_key = SigningKey::from_pem(&pair.serialize_pem()).unwrap();
    let mut new = NewApplication::new(SIGNED_SP, "Tracker", SIGNED_ACS);
    new.signing_certs = vec![cert.pem()];
    new.name_id = latchkey_idp::apps::NameIdPolicy {
        format: latchkey_idp::apps::NameIdFormat::EmailAddress,
        source: latchkey_idp::apps::NameIdSource::Email,
    };
    new.sign_response = true;
    new.sign_assertion = false;
    let signed_app = store.apps().create(&admin, new).await.unwrap();
    store
        .apps()
        .assign(&admin, signed_app.id, staff.id)
        .await
        .unwrap();

    let mut raw = ServerConfig {
        base_url: BASE.into(),
        cookie_secure: false,
        metrics_token: Some(METRICS_TOKEN.into()),
        ..ServerConfig::default()
    };
    edit(&mut raw);
    let mut settings = ServerSettings::check(raw).unwrap();
    edit_settings(&mut settings);
    let key_dir = dir.path().join("keys");
    let keys = IdpKeys::open(&key_dir, KeyAlgorithm::EcdsaP256, clock.now()).unwrap();
    let kek = Kek::generate_base64();
    let state = WebState::new(store.clone(), settings.clone(), keys).with_sealing_kek(kek_of(&kek));
    let router = web::router(state);

    // The SP trusts the IdP key it read from the IdP's metadata, which it checked against
    // the certificate the admin handed over out of band (the key store's active cert).
    let active = KeyStore::open(&key_dir)
        .unwrap()
        .active()
        .unwrap()
        .certificate()
        .unwrap();
    let response = router
        .clone()
        .oneshot(Request::get("/saml/metadata").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let xml = body_text(response).await;
    let trusted = [active.verifying_key().clone()];
    let metadata = parse_metadata(
        &xml,
        &MetadataOptions {
            trusted_keys: &trusted,
            now: Some(clock.now()),
            ..MetadataOptions::default()
        },
    )
    .unwrap();
    let idp_keys = metadata.entities()[0].idp_signing_keys();
    assert!(!idp_keys.is_empty());

    Idp {
        router,
        store,
        settings,
        alice,
        bob,
        app,
        signed_app,
        sp_key,
        idp_keys,
        key_dir,
        url: url.to_owned(),
        clock,
        kek_base64: kek.to_string(),
        _dir: dir,
    }
}

fn kek_of(base64: &str) -> Kek {
    Kek::from_base64(base64, KekSource::Env).unwrap()
}

impl Idp {
    /// The key the server seals TOTP secrets with, for the domain calls of a test.
    pub fn kek(&self) -> Kek {
        kek_of(&self.kek_base64)
    }
}

pub async fn body_text(response: Response<Body>) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// A browser: a cookie jar in front of the router.
pub struct Browser<'a> {
    pub idp: &'a Idp,
    pub cookies: BTreeMap<String, String>,
    /// Sent as `X-Forwarded-For` (for an IdP with `trust_forwarded_for`): the client address.
    pub address: Option<String>,
    /// A 503 (busy) is an answer the test expects, not a server error.
    pub busy_ok: bool,
}

/// A response with its body read.
pub struct Page {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap())
            .unwrap_or_else(|| panic!("no Location; status {} body {}", self.status, self.body))
    }

    /// Where the browser goes next: a redirect's Location, or the target of a page that
    /// refreshes to it (what the IdP answers a form POST with when the next stop is
    /// off-site; see `web::logout::after_form`).
    pub fn hop(&self) -> String {
        if self.status == StatusCode::SEE_OTHER {
            return self.location().to_owned();
        }
        let marker = "http-equiv=\"refresh\" content=\"0;url=";
        let start =
            self.body.find(marker).unwrap_or_else(|| {
                panic!("no redirect; status {} body {}", self.status, self.body)
            }) + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        unescape(&self.body[start..end])
    }

    /// The value of a hidden form field.
    /// The single-logout frames a logout page holds (`/saml/slo/frame/...`), in order.
    pub fn slo_frames(&self) -> Vec<String> {
        self.body
            .split("<iframe data-slo src=\"")
            .skip(1)
            .map(|rest| unescape(&rest[..rest.find('"').unwrap()]))
            .collect()
    }

    /// Where a logout page moves on to by itself (its `Refresh` header), and after how long.
    pub fn slo_done(&self) -> (u32, String) {
        let refresh = self
            .headers
            .get(header::REFRESH)
            .unwrap_or_else(|| panic!("no Refresh; status {} body {}", self.status, self.body))
            .to_str()
            .unwrap();
        let (secs, url) = refresh.split_once(";url=").unwrap();
        (secs.parse().unwrap(), url.to_owned())
    }

    pub fn field(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker)? + marker.len();
        let end = self.body[start..].find('"')? + start;
        Some(unescape(&self.body[start..end]))
    }

    /// The error code an error page shows.
    pub fn error_code(&self) -> Option<&str> {
        let marker = "Error code: <code>";
        let start = self.body.find(marker)? + marker.len();
        let end = self.body[start..].find('<')? + start;
        Some(&self.body[start..end])
    }

    /// The operation ID an error page shows.
    pub fn operation_id(&self) -> Option<&str> {
        let marker = "Operation ID: <code>";
        let start = self.body.find(marker)? + marker.len();
        let end = self.body[start..].find('<')? + start;
        Some(&self.body[start..end])
    }

    /// The decoded SAMLResponse of an auto-POST page.
    pub fn saml_response(&self) -> String {
        let b64 = self
            .field("SAMLResponse")
            .unwrap_or_else(|| panic!("no SAMLResponse: {} {}", self.status, self.body));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        String::from_utf8(bytes).unwrap()
    }
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&amp;", "&")
        .replace("&#38;", "&")
}

impl<'a> Browser<'a> {
    pub fn new(idp: &'a Idp) -> Self {
        Browser {
            idp,
            cookies: BTreeMap::new(),
            address: None,
            busy_ok: false,
        }
    }

    pub async fn send(&mut self, request: Request<Body>) -> Page {
        self.send_with(request, true).await
    }

    /// A form POST from another site: `SameSite=Lax` cookies (all of ours) stay home.
    pub async fn cross_site_post(&mut self, uri: &str, fields: &[(&str, &str)]) -> Page {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let request = Request::post(uri)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        self.send_with(request, false).await
    }

    async fn send_with(&mut self, mut request: Request<Body>, cookies: bool) -> Page {
        // What a browser says of where a navigation starts: this helper's requests are
        // clicks on the IdP's own pages, unless they come from another site.
        if !request.headers().contains_key("sec-fetch-site") {
            let site = if cookies { "same-origin" } else { "cross-site" };
            request
                .headers_mut()
                .insert("sec-fetch-site", site.parse().unwrap());
        }
        if let Some(addr) = &self.address {
            request
                .headers_mut()
                .insert("x-forwarded-for", addr.parse().unwrap());
        }
        if cookies && !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            request
                .headers_mut()
                .insert(header::COOKIE, jar.join("; ").parse().unwrap());
        }
        let response = self.idp.router.clone().oneshot(request).await.unwrap();
        for set in response.headers().get_all(header::SET_COOKIE) {
            let text = set.to_str().unwrap();
            let (pair, attrs) = text.split_once(';').unwrap_or((text, ""));
            let (k, v) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), v.to_string());
            }
        }
        let status = response.status();
        let headers = response.headers().clone();
        let body = body_text(response).await;
        assert!(
            !status.is_server_error()
                || (self.busy_ok && status == StatusCode::SERVICE_UNAVAILABLE),
            "server error {status}: {body}"
        );
        Page {
            status,
            headers,
            body,
        }
    }

    /// `/metrics`, with the test IdP's bearer token.
    pub async fn metrics(&mut self) -> Page {
        self.send(
            Request::get("/metrics")
                .header(header::AUTHORIZATION, format!("Bearer {METRICS_TOKEN}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    pub async fn get(&mut self, uri: &str) -> Page {
        self.send(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    pub async fn post(&mut self, uri: &str, fields: &[(&str, &str)]) -> Page {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.send(
            Request::post(uri)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }

    /// Fills in and submits the login form (optionally continuing a parked request).
    pub async fn login(&mut self, username: &str, password: &str, cont: Option<&str>) -> Page {
        let uri = match cont {
            Some(k) => format!("/login?continue={k}"),
            None => "/login".into(),
        };
        let mut form = self.get(&uri).await;
        if form.status == StatusCode::SEE_OTHER {
            // Already signed in: the login page redirects, so take the token from a form
            // that is always there (signing in again must still work, for a new session).
            form = self.get("/logout").await;
        }
        assert_eq!(form.status, StatusCode::OK);
        let csrf = form.field("csrf").expect("csrf field");
        let mut fields = vec![
            ("username", username),
            ("password", password),
            ("csrf", csrf.as_str()),
        ];
        let cont_owned = form.field("continue");
        if let Some(k) = &cont_owned {
            fields.push(("continue", k.as_str()));
        }
        self.post("/login", &fields).await
    }

    /// GET, then follow redirects.
    pub async fn go(&mut self, uri: &str) -> Page {
        let first = self.get(uri).await;
        self.follow(first).await
    }

    /// Follows 303 redirects within the IdP until a page that is not one.
    pub async fn follow(&mut self, mut page: Page) -> Page {
        for _ in 0..10 {
            if page.status != StatusCode::SEE_OTHER {
                return page;
            }
            let next = page.location().to_owned();
            if next.starts_with("/login") {
                return page;
            }
            page = self.get(&next).await;
        }
        panic!("redirect loop");
    }
}

/// Gives `user` a new TOTP app (through the domain, at the IdP's time) and steps this
/// browser's session up with it at `/login/mfa`: what the console asks of a session
/// (`[console] require_mfa`). The sign-in uses the next step's code (within the allowed
/// skew), so the clock need not move; each call adds a factor (at most five per user).
pub async fn step_up_with_new_totp(b: &mut Browser<'_>, user: &User) {
    use latchkey_idp::mfa::totp::{Totp, TotpCheck};
    let idp = b.idp;
    let kek = idp.kek();
    let totp = Totp::new(&idp.store, &kek);
    let e = totp.begin(user, "console test", "test").await.unwrap();
    let app = app_for(&e.secret_base32);
    let now = idp.clock.now().unix_timestamp() as u64;
    let done = totp
        .confirm(
            &Actor::user(user.id),
            user,
            &e.factor_id,
            &app.generate(now),
            "127.0.0.1",
        )
        .await
        .unwrap();
    assert!(matches!(done, TotpCheck::Accepted { .. }), "{done:?}");
    let csrf = b.get("/logout").await.field("csrf").unwrap();
    let next = app.generate(now + 30);
    let page = b
        .post(
            "/login/mfa",
            &[("csrf", csrf.as_str()), ("code", next.as_str())],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
}

/// A fresh AuthnRequest from `issuer`, issued by the SP's own clock (the wall clock, where
/// the IdP's test clock starts).
pub fn authn_request(issuer: &str) -> AuthnRequest {
    AuthnRequest::new(issuer, SSO, SystemClock.now()).unwrap()
}

/// `/saml/sso?...` for an unsigned HTTP-Redirect request.
pub fn redirect_uri(request: &AuthnRequest, relay_state: Option<&str>) -> String {
    let query = redirect::encode(
        MessageKind::Request,
        &request.to_xml().unwrap(),
        relay_state,
        &BindingLimits::default(),
    )
    .unwrap();
    format!("/saml/sso?{query}")
}

/// `/saml/sso?...` for a signed HTTP-Redirect request.
pub fn signed_redirect_uri(request: &AuthnRequest, key: &SigningKey) -> String {
    let query = redirect::encode_signed(
        MessageKind::Request,
        &request.to_xml().unwrap(),
        Some("rs-1"),
        key,
        key.default_algorithm(),
        &BindingLimits::default(),
    )
    .unwrap();
    format!("/saml/sso?{query}")
}

/// What the SP does with a Response: the full Web SSO profile check.
pub fn sp_validate(
    idp: &Idp,
    entity_id: &str,
    acs: &str,
    xml: &str,
    request_id: Option<&str>,
) -> Result<AuthenticatedSubject, latchkey_saml::Error> {
    let mut settings = SpSettings::new(
        entity_id,
        acs,
        idp.settings.entity_id.clone(),
        idp.idp_keys.clone(),
    );
    settings.allow_unsolicited = request_id.is_none();
    validate_response(&settings, xml, request_id, idp.clock.now())
}

/// The key of a `/saml/continue/{key}` or `/login?continue={key}` location.
pub fn continue_key(location: &str) -> String {
    location.rsplit(['/', '=']).next().unwrap().to_string()
}

/// Audit events with this action.
pub async fn audit_actions(idp: &Idp, action: &str) -> Vec<latchkey_idp::audit::AuditEvent> {
    idp.store
        .audit()
        .list(&latchkey_idp::audit::AuditFilter {
            action: Some(action.into()),
            ..Default::default()
        })
        .await
        .unwrap()
}

/// Sets an application's legacy opt-in for unsigned logout messages.
pub async fn allow_unsigned_logout(idp: &Idp, app: latchkey_idp::ids::AppId) {
    idp.store
        .apps()
        .update(&latchkey_idp::Actor::system(), app, |a| {
            a.allow_unsigned_logout = true;
        })
        .await
        .unwrap();
}

/// Asserts that `page` auto-posts a Response answering `request_id` with the second-level
/// status `sub_code` (and no assertion).
pub fn assert_refused_with(
    idp: &Idp,
    sp: &str,
    acs: &str,
    page: &Page,
    request_id: &str,
    sub_code: &str,
) {
    let err = sp_validate(idp, sp, acs, &page.saml_response(), Some(request_id)).unwrap_err();
    assert!(
        matches!(err, latchkey_saml::Error::StatusNotSuccess { sub_code: Some(ref s), .. } if s == sub_code),
        "{err}"
    );
}

/// Rebuilds `idp`'s router over the same store, settings and keys, with its server state
/// changed by `edit` (a reset desk, a TOTP key).
pub fn rebuild(idp: &mut Idp, edit: impl FnOnce(WebState) -> WebState) {
    let keys = IdpKeys::open(&idp.key_dir, KeyAlgorithm::EcdsaP256, idp.clock.now()).unwrap();
    let state = edit(WebState::new(idp.store.clone(), idp.settings.clone(), keys));
    idp.router = web::router(state);
}

/// An authenticator app holding `secret` (base32, as the page shows it).
pub fn app_for(secret: &str) -> totp_rs::TOTP {
    let clean: String = secret.chars().filter(|c| !c.is_whitespace()).collect();
    totp_rs::TOTP::new_unchecked(
        totp_rs::Algorithm::SHA1,
        6,
        0,
        30,
        totp_rs::Secret::Encoded(clean).to_bytes().unwrap(),
        None,
        String::new(),
    )
}
