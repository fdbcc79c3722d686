//! A test IdP (key, certificate, metadata), response building, and request helpers.

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use latchkey_demo_apps::{AppKind, Clock, DemoApp, DemoConfig, router};
use latchkey_saml::assertion::{
    Assertion, Attribute, AuthnStatement, BEARER, Conditions, NameId, Subject, SubjectConfirmation,
    SubjectConfirmationData, authn_context, name_id_format,
};
use latchkey_saml::authn_request::{AuthnRequest, binding_uri};
use latchkey_saml::binding::{BindingLimits, redirect};
use latchkey_saml::metadata::{
    Endpoint, EntityDescriptor, IdpSsoDescriptor, KeyDescriptor, KeyUse,
};
use latchkey_saml::response::Response;
use latchkey_saml::status::Status;
use latchkey_sp::idp::IdpTrust;
use latchkey_sp::store::Database;
use latchkey_xmlsec::crypto::{Certificate, SigningKey};
use latchkey_xmlsec::dsig::{self, SignOptions};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use tower::ServiceExt;

pub const IDP: &str = "https://idp.latchkey.test";
pub const SSO: &str = "https://idp.latchkey.test/saml/sso";
pub const NOW: OffsetDateTime = datetime!(2026-11-28 15:00:00 UTC);
pub const EMAIL_FORMAT: &str = name_id_format::EMAIL;

/// A key pair with its self-signed certificate, as PEM and as our types.
pub struct KeyPair {
    pub key: SigningKey,
    pub cert: Certificate,
    /// Read by the pysaml2 test (`tests/oracles`), which builds this module too.
    #[allow(dead_code)]
    pub key_pem: String,
    #[allow(dead_code)]
    pub cert_pem: String,
}

fn make_key(name: &str) -> KeyPair {
    let pair = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
        .unwrap();
    let cert = rcgen::CertificateParams::new(vec![format!("{name}.latchkey.test")])
        .unwrap()
        .self_signed(&pair)
        .unwrap();
    KeyPair {
        key: SigningKey::from_pem(&pair.serialize_pem()).unwrap(),
        cert: Certificate::from_der(cert.der()).unwrap(),
        key_pem: pair.serialize_pem(),
        cert_pem: cert.pem(),
    }
}

/// The test IdP's key.
pub fn idp_key() -> &'static KeyPair {
    static K: OnceLock<KeyPair> = OnceLock::new();
    K.get_or_init(|| make_key("idp"))
}

/// A key the app does not trust.
pub fn rogue_key() -> &'static KeyPair {
    static K: OnceLock<KeyPair> = OnceLock::new();
    K.get_or_init(|| make_key("rogue"))
}

/// IdP metadata listing `certs` as signing certificates.
pub fn idp_metadata_xml(certs: &[&Certificate]) -> String {
    idp_metadata_xml_until(certs, None)
}

/// [`idp_metadata_xml`] with a `validUntil`.
pub fn idp_metadata_xml_until(
    certs: &[&Certificate],
    valid_until: Option<OffsetDateTime>,
) -> String {
    let mut e = EntityDescriptor::new(IDP);
    e.valid_until = valid_until;
    e.idp = Some(IdpSsoDescriptor {
        want_authn_requests_signed: false,
        keys: vec![KeyDescriptor {
            key_use: Some(KeyUse::Signing),
            certificates: certs.iter().map(|c| (*c).clone()).collect(),
            encryption_methods: Vec::new(),
        }],
        name_id_formats: vec![],
        sso_services: vec![Endpoint {
            binding: binding_uri::HTTP_REDIRECT.into(),
            location: SSO.into(),
            response_location: None,
        }],
        slo_services: vec![],
    });
    e.to_xml().unwrap()
}

/// A running app under test.
pub struct TestApp {
    pub app: Arc<DemoApp>,
    pub router: Router,
    pub entity_id: String,
    pub acs: String,
    /// The test browser's login binding cookie (`name=value`), as the login start set it:
    /// [`send`] presents it with every request, as a browser does.
    pub browser: Jar,
}

/// One browser's login binding cookie.
#[derive(Default)]
pub struct Jar(std::sync::Mutex<Option<String>>);

impl Jar {
    /// The cookie held (`name=value`), if any.
    pub fn cookie(&self) -> Option<String> {
        self.0.lock().unwrap().clone()
    }

    fn keep(&self, set_cookie: &str) {
        let pair = set_cookie.split(';').next().unwrap();
        if pair.starts_with("__Host-latchkey_login=") || pair.starts_with("latchkey_login=") {
            *self.0.lock().unwrap() = Some(pair.to_owned());
        }
    }
}

pub fn config_toml(kind: AppKind, extra: &str) -> String {
    let host = kind.name();
    format!(
        r#"
listen = "127.0.0.1:0"
database = "unused.sqlite"

[sp]
entity_id = "https://{host}.latchkey.test/saml/metadata"
acs_url = "https://{host}.latchkey.test/saml/acs"
{extra}

[sp.idp]
metadata_file = "idp.xml"
"#
    )
}

/// An app with an empty in-memory database, trusting the test IdP, at [`NOW`].
pub async fn app(kind: AppKind, extra_sp_settings: &str) -> TestApp {
    app_at(kind, extra_sp_settings, Clock::Fixed(NOW)).await
}

/// The same, with the given clock.
pub async fn app_at(kind: AppKind, extra_sp_settings: &str, clock: Clock) -> TestApp {
    app_from(kind, &config_toml(kind, extra_sp_settings), clock).await
}

/// The same, from a whole configuration file's text.
pub async fn app_from(kind: AppKind, config_toml: &str, clock: Clock) -> TestApp {
    let config = DemoConfig::from_toml(config_toml, std::path::Path::new("/nonexistent")).unwrap();
    let idp =
        IdpTrust::from_metadata(&idp_metadata_xml(&[&idp_key().cert]), None, clock.now()).unwrap();
    let db = Database::connect("sqlite::memory:").await.unwrap();
    let app = Arc::new(DemoApp::with_database(kind, &config, idp, clock, db).unwrap());
    TestApp {
        router: router(app.clone()),
        entity_id: config.sp.entity_id.clone(),
        acs: config.sp.acs_url.clone(),
        app,
        browser: Jar::default(),
    }
}

/// One login as the IdP would assert it.
#[derive(Clone)]
pub struct Login {
    pub name_id: String,
    pub format: String,
    pub attributes: Vec<(String, Vec<String>)>,
    pub in_response_to: Option<String>,
    pub audience: Option<String>,
    pub not_on_or_after: OffsetDateTime,
    pub assertion_id: String,
    pub signer: &'static SigningKey,
}

impl Login {
    pub fn new(name_id: &str, format: &str, attributes: &[(&str, &[&str])]) -> Self {
        Self {
            name_id: name_id.into(),
            format: format.into(),
            attributes: attributes
                .iter()
                .map(|(n, v)| ((*n).to_owned(), v.iter().map(|s| (*s).to_owned()).collect()))
                .collect(),
            in_response_to: None,
            audience: None,
            not_on_or_after: NOW + Duration::minutes(5),
            assertion_id: format!("_a{}", uuid_like()),
            signer: &idp_key().key,
        }
    }

    /// The signed Response XML for `t`.
    pub fn response_xml(&self, t: &TestApp) -> String {
        let audience = self.audience.clone().unwrap_or_else(|| t.entity_id.clone());
        let assertion = Assertion {
            id: self.assertion_id.clone(),
            issue_instant: NOW - Duration::seconds(5),
            issuer: IDP.into(),
            subject: Some(Subject {
                name_id: Some(NameId::new(&self.name_id, &self.format)),
                confirmations: vec![SubjectConfirmation {
                    method: BEARER.into(),
                    data: Some(SubjectConfirmationData {
                        not_before: None,
                        not_on_or_after: Some(self.not_on_or_after),
                        recipient: Some(t.acs.clone()),
                        in_response_to: self.in_response_to.clone(),
                        address: None,
                    }),
                }],
            }),
            conditions: Some(Conditions {
                not_before: Some(NOW - Duration::seconds(30)),
                not_on_or_after: Some(self.not_on_or_after),
                audience_restrictions: vec![vec![audience]],
                one_time_use: false,
            }),
            authn_statements: vec![AuthnStatement {
                authn_instant: NOW - Duration::seconds(10),
                session_index: Some("_session-1".into()),
                session_not_on_or_after: Some(NOW + Duration::hours(8)),
                authn_context_class_ref: Some(authn_context::PASSWORD_PROTECTED_TRANSPORT.into()),
            }],
            attributes: self
                .attributes
                .iter()
                .map(|(n, v)| Attribute {
                    name: n.clone(),
                    name_format: None,
                    friendly_name: None,
                    values: v.clone(),
                })
                .collect(),
        };
        let signed = dsig::sign(
            &assertion.to_xml().unwrap(),
            &self.assertion_id,
            self.signer,
            None,
            &SignOptions::default(),
        )
        .unwrap();
        Response {
            id: format!("_r{}", uuid_like()),
            in_response_to: self.in_response_to.clone(),
            issue_instant: NOW - Duration::seconds(5),
            destination: Some(t.acs.clone()),
            issuer: Some(IDP.into()),
            status: Status::success(),
        }
        .to_xml(Some(&signed))
        .unwrap()
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    format!("{:08}", N.fetch_add(1, Ordering::Relaxed))
}

/// A finished HTTP exchange.
pub struct Reply {
    pub status: StatusCode,
    pub location: Option<String>,
    pub set_cookie: Option<String>,
    /// Every `Set-Cookie`.
    pub set_cookies: Vec<String>,
    /// `Cache-Control`, if set.
    pub cache_control: Option<String>,
    pub body: String,
}

impl Reply {
    /// `name=value` of the session cookie that was set.
    pub fn cookie(&self) -> String {
        self.set_cookie
            .as_deref()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned()
    }

    /// The error code shown on an error page.
    pub fn error_code(&self) -> &str {
        between(&self.body, "<code class=\"code\">", "</code>")
    }

    /// The operation ID shown on an error page.
    pub fn operation_id(&self) -> &str {
        between(&self.body, "<code class=\"operation\">", "</code>")
    }
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in {text}"))
        + start.len();
    let len = text[from..].find(end).unwrap();
    &text[from..from + len]
}

/// Sends `request` from the test browser: with its login binding cookie, keeping the one a
/// response sets.
pub async fn send(t: &TestApp, mut request: Request<Body>) -> Reply {
    if let Some(cookie) = t.browser.cookie() {
        request
            .headers_mut()
            .append(header::COOKIE, cookie.parse().unwrap());
    }
    let reply = send_from_elsewhere(t, request).await;
    for set in &reply.set_cookies {
        t.browser.keep(set);
    }
    reply
}

/// Sends `request` as it is, from a browser other than the test browser (which keeps nothing
/// of the response).
pub async fn send_from_elsewhere(t: &TestApp, request: Request<Body>) -> Reply {
    let response = t.router.clone().oneshot(request).await.unwrap();
    let header = |name| {
        response
            .headers()
            .get(name)
            .map(|v: &axum::http::HeaderValue| v.to_str().unwrap().to_owned())
    };
    let location = header(header::LOCATION);
    let set_cookies: Vec<String> = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let set_cookie = set_cookies.first().cloned();
    let cache_control = header(header::CACHE_CONTROL);
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    Reply {
        status,
        location,
        set_cookie,
        set_cookies,
        cache_control,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

pub async fn get(t: &TestApp, path: &str, cookie: Option<&str>) -> Reply {
    let mut r = Request::get(path);
    if let Some(c) = cookie {
        r = r.header(header::COOKIE, c);
    }
    send(t, r.body(Body::empty()).unwrap()).await
}

/// Starts a login through `GET /login` and decodes the redirect: (RelayState, request ID).
pub async fn start_login(t: &TestApp) -> (String, String) {
    let reply = get(t, "/login", None).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    let location = reply.location.unwrap();
    let (endpoint, query) = location.split_once('?').unwrap();
    assert_eq!(endpoint, SSO);
    let message = redirect::decode(query, &BindingLimits::default()).unwrap();
    let request = AuthnRequest::parse(&message.xml).unwrap();
    assert_eq!(
        request.assertion_consumer_service_url.as_deref(),
        Some(t.acs.as_str())
    );
    (message.relay_state.unwrap(), request.id)
}

fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// POSTs a Response XML to the ACS as the browser would.
pub async fn post_acs(t: &TestApp, xml: &str, relay_state: Option<&str>) -> Reply {
    send(t, acs_request(xml, relay_state, None)).await
}

/// POSTs a Response XML to the ACS from another browser than the test browser, one that
/// presents `cookie` (a `Cookie` header value), if any.
pub async fn post_acs_from_elsewhere(
    t: &TestApp,
    xml: &str,
    relay_state: Option<&str>,
    cookie: Option<&str>,
) -> Reply {
    send_from_elsewhere(t, acs_request(xml, relay_state, cookie)).await
}

fn acs_request(xml: &str, relay_state: Option<&str>, cookie: Option<&str>) -> Request<Body> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(xml);
    let mut body = format!("SAMLResponse={}", form_encode(&b64));
    if let Some(r) = relay_state {
        body.push_str(&format!("&RelayState={}", form_encode(r)));
    }
    let mut request = Request::post("/saml/acs")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        request = request.header(header::COOKIE, c);
    }
    request.body(Body::from(body)).unwrap()
}

/// A full SP-initiated login: returns the ACS reply.
pub async fn sp_initiated(t: &TestApp, mut login: Login) -> Reply {
    let (relay, request_id) = start_login(t).await;
    login.in_response_to = Some(request_id);
    post_acs(t, &login.response_xml(t), Some(&relay)).await
}

/// `/whoami` as JSON.
pub async fn whoami(t: &TestApp, cookie: Option<&str>) -> serde_json::Value {
    let reply = get(t, "/whoami", cookie).await;
    assert_eq!(reply.status, StatusCode::OK);
    serde_json::from_str(&reply.body).unwrap()
}

/// Asserts the reply is an error page with `code`, that no account exists, and that the audit
/// log holds an event with the page's operation ID.
pub async fn assert_refused(t: &TestApp, reply: &Reply, code: &str) {
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    assert_eq!(reply.error_code(), code, "{}", reply.body);
    assert!(reply.set_cookie.is_none());
    let op = reply.operation_id().to_owned();
    assert_eq!(op.len(), 36, "operation ID {op}");
    assert!(t.app.store().accounts().await.unwrap().is_empty());
    let audit = t.app.store().audit_log(100).await.unwrap();
    let event = audit
        .iter()
        .find(|e| e.operation_id.to_string() == op)
        .unwrap_or_else(|| panic!("no audit event for operation {op}: {audit:?}"));
    // The rule's detail is in the audit event, and not on the page the sender sees.
    let detail = refusal_detail(event);
    assert!(!detail.is_empty(), "{event:?}");
    assert!(
        !reply.body.contains(&escape_html(detail)),
        "the page shows the detail {detail:?}: {}",
        reply.body
    );
    assert!(!reply.body.contains("Detail"), "{}", reply.body);
}

/// The detail of a refusal's audit event (what the rule found).
pub fn refusal_detail(event: &latchkey_sp::store::AuditEvent) -> &str {
    match &event.plan.action {
        latchkey_sp::jit::PlanAction::Refuse(r) => &r.detail,
        other => panic!("not a refusal: {other:?}"),
    }
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
}
