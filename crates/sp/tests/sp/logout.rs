//! Single logout at the SP: SP-initiated (our signed LogoutRequest, the IdP's answer checked
//! against the pending request) and IdP-initiated (the IdP's request checked, used once,
//! answered signed), each profile rule broken on its own.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use base64::Engine;
use latchkey_saml::assertion::{NameId, name_id_format};
use latchkey_saml::authn_request::binding_uri;
use latchkey_saml::binding::{BindingLimits, MessageKind, post, redirect};
use latchkey_saml::logout::{LogoutRequest, LogoutResponse};
use latchkey_saml::metadata::{MetadataOptions, parse_metadata};
use latchkey_saml::status::{Status, code};
use latchkey_sp::acs::SamlLogin;
use latchkey_sp::idp::IdpTrust;
use latchkey_sp::logout::{LogoutOutcome, SloForm, SloMessage, SloReceived};
use latchkey_sp::replay::MemoryReplayCache;
use latchkey_sp::settings::{SpConfig, SpKey};
use latchkey_sp::{Error, ServiceProvider};
use latchkey_xmlsec::crypto::{SignatureAlgorithm, SigningKey};
use latchkey_xmlsec::dsig::{self, SignOptions};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::support::keys::{Pair, pair};

const IDP: &str = "https://idp.example.org";
const IDP_SLO: &str = "https://idp.example.org/saml/slo";
const SP: &str = "https://app.example.com/saml/metadata";
const SP_SLO: &str = "https://app.example.com/saml/slo";
const NOW: OffsetDateTime = datetime!(2026-11-28 15:00:00 UTC);

fn idp_key() -> &'static Pair {
    static K: OnceLock<Pair> = OnceLock::new();
    K.get_or_init(pair)
}

fn sp_key() -> &'static Pair {
    static K: OnceLock<Pair> = OnceLock::new();
    K.get_or_init(pair)
}

fn rogue_key() -> &'static Pair {
    static K: OnceLock<Pair> = OnceLock::new();
    K.get_or_init(pair)
}

/// The IdP's metadata, written out by hand so the test does not depend on our generator.
fn idp_metadata(with_slo: bool) -> String {
    let cert = base64::engine::general_purpose::STANDARD.encode(idp_key().cert.der());
    let slo = if with_slo {
        format!(
            r#"<md:SingleLogoutService Binding="{}" Location="{IDP_SLO}"/>"#,
            binding_uri::HTTP_REDIRECT
        )
    } else {
        String::new()
    };
    format!(
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{IDP}">
<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
{slo}
<md:SingleSignOnService Binding="{}" Location="{IDP}/saml/sso"/>
</md:IDPSSODescriptor>
</md:EntityDescriptor>"#,
        binding_uri::HTTP_REDIRECT
    )
}

fn config(slo: bool) -> SpConfig {
    let slo = if slo {
        format!("slo_url = \"{SP_SLO}\"\n")
    } else {
        String::new()
    };
    SpConfig::from_toml(
        &format!(
            "entity_id = \"{SP}\"\nacs_url = \"https://app.example.com/saml/acs\"\n{slo}\
             [idp]\nmetadata_file = \"idp.xml\"\n"
        ),
        Path::new("/etc/app"),
    )
    .unwrap()
}

fn key() -> SpKey {
    SpKey {
        key: SigningKey::from_pem(&sp_key().key_pem).unwrap(),
        certificate: sp_key().cert.clone(),
        sign_requests: false,
    }
}

fn sp_with(slo: bool, key: Option<SpKey>, idp_slo: bool) -> ServiceProvider {
    let idp = IdpTrust::from_metadata(&idp_metadata(idp_slo), None, NOW).unwrap();
    ServiceProvider::new(&config(slo), key, idp).unwrap()
}

fn sp() -> ServiceProvider {
    sp_with(true, Some(key()), true)
}

fn login() -> SamlLogin {
    SamlLogin {
        issuer: IDP.into(),
        name_id: "alice-7f3a".into(),
        name_id_format: Some(name_id_format::PERSISTENT.into()),
        session_index: Some("_idp-session-1".into()),
        assertion_id: "_a1".into(),
        authn_instant: NOW - Duration::minutes(30),
        authn_context_class_ref: None,
        session_not_on_or_after: None,
        attributes: BTreeMap::new(),
    }
}

fn idp_signed_query(kind: MessageKind, xml: &str, relay: Option<&str>, key: &SigningKey) -> String {
    redirect::encode_signed(
        kind,
        xml,
        relay,
        key,
        SignatureAlgorithm::EcdsaSha256,
        &BindingLimits::default(),
    )
    .unwrap()
}

fn idp_response(in_response_to: &str) -> LogoutResponse {
    LogoutResponse {
        id: latchkey_saml::ids::new_id().unwrap(),
        in_response_to: Some(in_response_to.into()),
        issue_instant: NOW - Duration::seconds(2),
        destination: Some(SP_SLO.into()),
        issuer: Some(IDP.into()),
        status: Status::success(),
    }
}

fn idp_request() -> LogoutRequest {
    LogoutRequest {
        id: latchkey_saml::ids::new_id().unwrap(),
        issue_instant: NOW - Duration::seconds(2),
        destination: Some(SP_SLO.into()),
        issuer: Some(IDP.into()),
        name_id: NameId::new("alice-7f3a", name_id_format::PERSISTENT),
        session_indexes: vec!["_idp-session-1".into()],
        not_on_or_after: Some(NOW + Duration::minutes(5)),
        reason: None,
    }
}

async fn receive(
    sp: &ServiceProvider,
    query: &str,
    cache: &MemoryReplayCache,
) -> Result<SloReceived, Error> {
    sp.receive_logout(SloMessage::Redirect(query), cache, NOW)
        .await
}

fn code_of(r: Result<SloReceived, Error>) -> &'static str {
    match r {
        Ok(got) => panic!("accepted: {got:?}"),
        Err(e) => e.code().as_str(),
    }
}

// ---------------------------------------------------------------------------------------
// SP-initiated

#[tokio::test]
async fn sp_initiated_logout_round_trip() {
    let sp = sp();
    let started = sp
        .start_logout(&login(), Some("/pages/1"), NOW)
        .await
        .unwrap();
    let (endpoint, query) = started.url.split_once('?').unwrap();
    assert_eq!(endpoint, IDP_SLO);
    let message = redirect::decode(query, &BindingLimits::default()).unwrap();
    assert_eq!(message.kind, MessageKind::Request);
    assert_eq!(
        message.relay_state.as_deref(),
        Some(started.relay_state.as_str())
    );
    // Signed with our key, whatever sign_requests says (the profile requires it).
    assert_eq!(
        message.verify(
            &[sp_key().cert.verifying_key().clone()],
            &[SignatureAlgorithm::EcdsaSha256]
        ),
        Ok(SignatureAlgorithm::EcdsaSha256)
    );
    let request = LogoutRequest::parse(&message.xml).unwrap();
    assert_eq!(request.id, started.request.request_id);
    assert_eq!(request.issuer.as_deref(), Some(SP));
    assert_eq!(request.destination.as_deref(), Some(IDP_SLO));
    assert_eq!(request.name_id.value, "alice-7f3a");
    assert_eq!(
        request.name_id.format.as_deref(),
        Some(name_id_format::PERSISTENT)
    );
    assert_eq!(request.session_indexes, vec!["_idp-session-1".to_owned()]);
    assert!(request.not_on_or_after.unwrap() > NOW);
    assert_eq!(sp.pending().count().await.unwrap(), 1);

    let cache = MemoryReplayCache::new(100);
    let answer = idp_signed_query(
        MessageKind::Response,
        &idp_response(&request.id).to_xml().unwrap(),
        Some(&started.relay_state),
        &idp_key().key,
    );
    match receive(&sp, &answer, &cache).await.unwrap() {
        SloReceived::Response(done) => {
            assert_eq!(done.outcome, LogoutOutcome::Complete);
            assert_eq!(done.return_to.as_deref(), Some("/pages/1"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sp.pending().count().await.unwrap(), 0);
    // The same answer again finds no request: each is honoured once.
    assert_eq!(
        code_of(receive(&sp, &answer, &cache).await),
        "LOGOUT_UNKNOWN_REQUEST"
    );
}

#[tokio::test]
async fn partial_logout_is_reported() {
    let sp = sp();
    let started = sp.start_logout(&login(), None, NOW).await.unwrap();
    let mut response = idp_response(&started.request.request_id);
    response.status = Status::failure(code::SUCCESS, Some(code::PARTIAL_LOGOUT), None);
    let answer = idp_signed_query(
        MessageKind::Response,
        &response.to_xml().unwrap(),
        Some(&started.relay_state),
        &idp_key().key,
    );
    match receive(&sp, &answer, &MemoryReplayCache::new(10))
        .await
        .unwrap()
    {
        SloReceived::Response(done) => assert_eq!(
            done.outcome,
            LogoutOutcome::Partial {
                status: code::PARTIAL_LOGOUT.into()
            }
        ),
        other => panic!("{other:?}"),
    }
}

/// Starts a logout, lets `edit` break the IdP's answer, and returns the refusal's code.
async fn refused_answer(
    edit: impl FnOnce(&mut LogoutResponse),
    signer: &SigningKey,
    relay: Option<&str>,
) -> &'static str {
    let sp = sp();
    let started = sp.start_logout(&login(), None, NOW).await.unwrap();
    let mut response = idp_response(&started.request.request_id);
    edit(&mut response);
    let answer = idp_signed_query(
        MessageKind::Response,
        &response.to_xml().unwrap(),
        Some(relay.unwrap_or(&started.relay_state)),
        signer,
    );
    code_of(receive(&sp, &answer, &MemoryReplayCache::new(10)).await)
}

#[tokio::test]
async fn logout_response_rules() {
    let idp = &idp_key().key;
    assert_eq!(
        refused_answer(|_| {}, &rogue_key().key, None).await,
        "SIGNATURE_INVALID"
    );
    assert_eq!(
        refused_answer(
            |r| r.issuer = Some("https://evil.example".into()),
            idp,
            None
        )
        .await,
        "LOGOUT_ISSUER_MISMATCH"
    );
    assert_eq!(
        refused_answer(
            |r| r.destination = Some("https://evil.example/slo".into()),
            idp,
            None
        )
        .await,
        "LOGOUT_DESTINATION_MISMATCH"
    );
    assert_eq!(
        refused_answer(|r| r.in_response_to = Some("_not-ours".into()), idp, None).await,
        "IN_RESPONSE_TO_MISMATCH"
    );
    assert_eq!(
        refused_answer(|_| {}, idp, Some("0123456789abcdef0123456789abcdef")).await,
        "LOGOUT_UNKNOWN_REQUEST"
    );
    assert_eq!(
        refused_answer(|r| r.issue_instant = NOW - Duration::minutes(10), idp, None).await,
        "LOGOUT_EXPIRED"
    );
    assert_eq!(
        refused_answer(|r| r.issue_instant = NOW + Duration::minutes(3), idp, None).await,
        "LOGOUT_NOT_YET_VALID"
    );
}

#[tokio::test]
async fn unsigned_logout_response_is_refused() {
    let sp = sp();
    let started = sp.start_logout(&login(), None, NOW).await.unwrap();
    let answer = redirect::encode(
        MessageKind::Response,
        &idp_response(&started.request.request_id).to_xml().unwrap(),
        Some(&started.relay_state),
        &BindingLimits::default(),
    )
    .unwrap();
    assert_eq!(
        code_of(receive(&sp, &answer, &MemoryReplayCache::new(10)).await),
        "NOT_SIGNED"
    );
}

#[tokio::test]
async fn logout_needs_our_endpoint_our_key_and_the_idps_endpoint() {
    let no_key = sp_with(true, None, true);
    let e = no_key.start_logout(&login(), None, NOW).await.unwrap_err();
    assert_eq!(e.code().as_str(), "LOGOUT_NOT_CONFIGURED");
    assert!(e.is_internal());
    let no_idp_slo = sp_with(true, Some(key()), false);
    assert_eq!(
        no_idp_slo
            .start_logout(&login(), None, NOW)
            .await
            .unwrap_err()
            .code()
            .as_str(),
        "LOGOUT_NOT_CONFIGURED"
    );
    let no_slo = sp_with(false, Some(key()), true);
    assert_eq!(
        no_slo
            .start_logout(&login(), None, NOW)
            .await
            .unwrap_err()
            .code()
            .as_str(),
        "LOGOUT_NOT_CONFIGURED"
    );
    // Nothing was remembered for logouts that could not start.
    assert_eq!(no_key.pending().count().await.unwrap(), 0);
}

#[tokio::test]
async fn metadata_advertises_single_logout() {
    let xml = sp().metadata_xml().unwrap();
    let md = parse_metadata(&xml, &MetadataOptions::default()).unwrap();
    let entity = md.find(SP).unwrap();
    let slo = &entity.sp.as_ref().unwrap().slo_services;
    let bindings: Vec<&str> = slo.iter().map(|e| e.binding.as_str()).collect();
    assert_eq!(
        bindings,
        [binding_uri::HTTP_REDIRECT, binding_uri::HTTP_POST]
    );
    assert!(slo.iter().all(|e| e.location == SP_SLO));
    let without = sp_with(false, Some(key()), true).metadata_xml().unwrap();
    assert!(!without.contains("SingleLogoutService"), "{without}");
}

// ---------------------------------------------------------------------------------------
// IdP-initiated

#[tokio::test]
async fn idp_initiated_logout_is_checked_used_once_and_answered_signed() {
    let sp = sp();
    let cache = MemoryReplayCache::new(100);
    let request = idp_request();
    let query = idp_signed_query(
        MessageKind::Request,
        &request.to_xml().unwrap(),
        Some("idp-chain-key"),
        &idp_key().key,
    );
    let accepted = match receive(&sp, &query, &cache).await.unwrap() {
        SloReceived::Request(r) => r,
        other => panic!("{other:?}"),
    };
    assert!(accepted.matches(&login()));
    let mut other_session = login();
    other_session.session_index = Some("_another".into());
    assert!(!accepted.matches(&other_session));
    assert_eq!(accepted.session_indexes(), ["_idp-session-1".to_owned()]);

    let url = sp.answer_logout(&accepted, NOW).unwrap();
    let (endpoint, q) = url.split_once('?').unwrap();
    assert_eq!(endpoint, IDP_SLO);
    let message = redirect::decode(q, &BindingLimits::default()).unwrap();
    assert_eq!(message.kind, MessageKind::Response);
    assert_eq!(message.relay_state.as_deref(), Some("idp-chain-key"));
    message
        .verify(
            &[sp_key().cert.verifying_key().clone()],
            &[SignatureAlgorithm::EcdsaSha256],
        )
        .unwrap();
    let response = LogoutResponse::parse(&message.xml).unwrap();
    assert_eq!(
        response.in_response_to.as_deref(),
        Some(request.id.as_str())
    );
    assert_eq!(response.destination.as_deref(), Some(IDP_SLO));
    assert_eq!(response.issuer.as_deref(), Some(SP));
    assert!(response.status.is_success());

    // The same request again is a replay.
    assert_eq!(
        code_of(receive(&sp, &query, &cache).await),
        "LOGOUT_REPLAYED"
    );
    // A fresh request from the IdP still works.
    let fresh = idp_signed_query(
        MessageKind::Request,
        &idp_request().to_xml().unwrap(),
        None,
        &idp_key().key,
    );
    assert!(matches!(
        receive(&sp, &fresh, &cache).await,
        Ok(SloReceived::Request(_))
    ));
}

async fn refused_request(
    edit: impl FnOnce(&mut LogoutRequest),
    signer: &SigningKey,
) -> &'static str {
    let mut request = idp_request();
    edit(&mut request);
    let query = idp_signed_query(
        MessageKind::Request,
        &request.to_xml().unwrap(),
        None,
        signer,
    );
    let cache = MemoryReplayCache::new(10);
    let code = code_of(receive(&sp(), &query, &cache).await);
    assert!(cache.is_empty(), "a refused request is not recorded");
    code
}

#[tokio::test]
async fn idp_logout_request_rules() {
    let idp = &idp_key().key;
    assert_eq!(
        refused_request(|_| {}, &rogue_key().key).await,
        "SIGNATURE_INVALID"
    );
    assert_eq!(
        refused_request(|r| r.issuer = Some("https://evil.example".into()), idp).await,
        "LOGOUT_ISSUER_MISMATCH"
    );
    assert_eq!(
        refused_request(
            |r| r.destination = Some("https://other.example/slo".into()),
            idp
        )
        .await,
        "LOGOUT_DESTINATION_MISMATCH"
    );
    assert_eq!(
        refused_request(|r| r.destination = None, idp).await,
        "LOGOUT_DESTINATION_MISMATCH"
    );
    assert_eq!(
        refused_request(
            |r| r.not_on_or_after = Some(NOW - Duration::minutes(2)),
            idp
        )
        .await,
        "LOGOUT_EXPIRED"
    );
    assert_eq!(
        refused_request(
            |r| {
                r.issue_instant = NOW - Duration::minutes(10);
                r.not_on_or_after = None;
            },
            idp
        )
        .await,
        "LOGOUT_EXPIRED"
    );
    assert_eq!(
        refused_request(|r| r.issue_instant = NOW + Duration::minutes(3), idp).await,
        "LOGOUT_NOT_YET_VALID"
    );
}

#[tokio::test]
async fn unsigned_idp_logout_request_is_refused() {
    let query = redirect::encode(
        MessageKind::Request,
        &idp_request().to_xml().unwrap(),
        None,
        &BindingLimits::default(),
    )
    .unwrap();
    assert_eq!(
        code_of(receive(&sp(), &query, &MemoryReplayCache::new(10)).await),
        "NOT_SIGNED"
    );
}

#[tokio::test]
async fn a_response_sent_as_a_request_is_refused_by_name() {
    let xml = idp_response("_x").to_xml().unwrap();
    let query = idp_signed_query(MessageKind::Request, &xml, None, &idp_key().key);
    assert_eq!(
        code_of(receive(&sp(), &query, &MemoryReplayCache::new(10)).await),
        "LOGOUT_UNEXPECTED_MESSAGE"
    );
}

fn enveloped(request: &LogoutRequest, signer: Option<&SigningKey>) -> SloForm {
    let xml = request.to_xml().unwrap();
    let xml = match signer {
        Some(k) => dsig::sign(&xml, &request.id, k, None, &SignOptions::default()).unwrap(),
        None => xml,
    };
    SloForm {
        saml_request: Some(post::encode(&xml)),
        saml_response: None,
        relay_state: Some("post-state".into()),
    }
}

#[tokio::test]
async fn idp_logout_request_over_post() {
    let sp = sp();
    let cache = MemoryReplayCache::new(10);
    let request = idp_request();
    let form = enveloped(&request, Some(&idp_key().key));
    let accepted = match sp
        .receive_logout(SloMessage::Post(&form), &cache, NOW)
        .await
        .unwrap()
    {
        SloReceived::Request(r) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(accepted.request().id, request.id);
    assert!(accepted.matches(&login()));
    assert_eq!(
        sp.receive_logout(SloMessage::Post(&form), &cache, NOW)
            .await
            .unwrap_err()
            .code()
            .as_str(),
        "LOGOUT_REPLAYED"
    );
    for (form, code) in [
        (enveloped(&idp_request(), None), "NOT_SIGNED"),
        (
            enveloped(&idp_request(), Some(&rogue_key().key)),
            "SIGNATURE_INVALID",
        ),
        (SloForm::default(), "MISSING_PARAMETER"),
    ] {
        assert_eq!(
            sp.receive_logout(SloMessage::Post(&form), &cache, NOW)
                .await
                .unwrap_err()
                .code()
                .as_str(),
            code
        );
    }
    // A signed request whose Issuer is not the IdP is refused even though the IdP's key
    // signed it.
    let mut wrong = idp_request();
    wrong.issuer = Some("https://evil.example".into());
    let form = enveloped(&wrong, Some(&idp_key().key));
    assert_eq!(
        sp.receive_logout(SloMessage::Post(&form), &cache, NOW)
            .await
            .unwrap_err()
            .code()
            .as_str(),
        "LOGOUT_ISSUER_MISMATCH"
    );
}

/// With the SP database, the node that answers the IdP's LogoutResponse need not be the
/// one that started the logout, and the pending request is honoured once across both.
#[tokio::test]
async fn the_pending_logout_is_shared_through_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("sp.db").display());
    let node = || async {
        let db = latchkey_sp::store::Database::connect(&url).await.unwrap();
        let idp = IdpTrust::from_metadata(&idp_metadata(true), None, NOW).unwrap();
        ServiceProvider::with_database(&config(true), Some(key()), idp, db).unwrap()
    };
    let (first, second) = (node().await, node().await);
    let started = first.start_logout(&login(), None, NOW).await.unwrap();
    let answer = idp_signed_query(
        MessageKind::Response,
        &idp_response(&started.request.request_id).to_xml().unwrap(),
        Some(&started.relay_state),
        &idp_key().key,
    );
    let cache = MemoryReplayCache::new(10);
    assert!(matches!(
        receive(&second, &answer, &cache).await,
        Ok(SloReceived::Response(_))
    ));
    assert_eq!(
        code_of(receive(&first, &answer, &cache).await),
        "LOGOUT_UNKNOWN_REQUEST"
    );
}

// ---------------------------------------------------------------------------------------
// The audit trail (`logout::start` / `receive` / `answer`)

mod audited {
    use super::*;
    use latchkey_sp::jit::PlanAction;
    use latchkey_sp::logout::{self, LogoutFailure};
    use latchkey_sp::store::{AuditEvent, AuditKind, LogoutRecord};
    use uuid::Uuid;

    use crate::support::{Db, Fixture, fixture};

    fn record(event: &AuditEvent) -> &LogoutRecord {
        match &event.plan.action {
            PlanAction::Logout(record) => {
                assert_eq!(record.kind(), event.kind);
                assert_eq!(event.plan.identity, None);
                record
            }
            other => panic!("not a logout event: {other:?}"),
        }
    }

    async fn log(fx: &Fixture) -> Vec<AuditEvent> {
        fx.store.audit_log(100).await.unwrap()
    }

    /// The event written under `operation_id`, checking it is the only one written since the
    /// log had `before` events. (Events of one millisecond come back in no set order.)
    async fn new_event(fx: &Fixture, before: usize, operation_id: Uuid) -> AuditEvent {
        let events = log(fx).await;
        assert_eq!(events.len(), before + 1, "{events:#?}");
        let mut mine = events
            .into_iter()
            .filter(|e| e.operation_id == operation_id);
        let event = mine.next().expect("an event under the operation ID");
        assert!(mine.next().is_none());
        event
    }

    fn refused_code(event: &AuditEvent) -> &str {
        match record(event) {
            LogoutRecord::Refused { code, detail } => {
                assert!(!detail.is_empty());
                code
            }
            other => panic!("{other:?}"),
        }
    }

    fn failure<T: std::fmt::Debug>(r: Result<T, LogoutFailure>) -> LogoutFailure {
        match r {
            Ok(got) => panic!("accepted: {got:?}"),
            Err(f) => f,
        }
    }

    #[tokio::test]
    async fn sp_initiated_logout_is_audited_started_then_completed() {
        let fx = fixture(Db::Sqlite).await;
        let sp = sp();
        let account = Uuid::new_v4();
        let started = logout::start(&sp, &fx.store, &login(), Some(account), Some("/p"), NOW)
            .await
            .unwrap();
        let event = new_event(&fx, 0, started.operation_id).await;
        assert_eq!(event.kind, AuditKind::LogoutStarted);
        assert_eq!(event.account_id, Some(account));
        assert_eq!(event.idp_entity_id, IDP);
        assert_eq!(event.session_index.as_deref(), Some("_idp-session-1"));
        assert_eq!(event.at, NOW);
        assert_eq!(
            record(&event),
            &LogoutRecord::Started {
                request_id: started.redirect.request.request_id.clone(),
                name_id: "alice-7f3a".into(),
                session_index: Some("_idp-session-1".into()),
            }
        );

        let answer = idp_signed_query(
            MessageKind::Response,
            &idp_response(&started.redirect.request.request_id)
                .to_xml()
                .unwrap(),
            Some(&started.redirect.relay_state),
            &idp_key().key,
        );
        let cache = MemoryReplayCache::new(10);
        let got = logout::receive(&sp, &cache, &fx.store, SloMessage::Redirect(&answer), NOW)
            .await
            .unwrap();
        match &got.received {
            SloReceived::Response(done) => {
                assert_eq!(done.outcome, LogoutOutcome::Complete);
                assert_eq!(done.request_id, started.redirect.request.request_id);
            }
            other => panic!("{other:?}"),
        }
        let event = new_event(&fx, 1, got.operation_id).await;
        assert_eq!(event.kind, AuditKind::LogoutCompleted);
        assert_ne!(got.operation_id, started.operation_id);
        assert_eq!(
            record(&event),
            &LogoutRecord::Completed {
                request_id: started.redirect.request.request_id.clone()
            }
        );

        // The same answer again is refused, and the refusal is audited with its code under
        // the operation ID the error page shows.
        let refused = failure(
            logout::receive(&sp, &cache, &fx.store, SloMessage::Redirect(&answer), NOW).await,
        );
        assert_eq!(refused.code().as_str(), "LOGOUT_UNKNOWN_REQUEST");
        let event = new_event(&fx, 2, refused.operation_id).await;
        assert_eq!(event.kind, AuditKind::LogoutRefused);
        assert_eq!(event.account_id, None);
        assert_eq!(refused_code(&event), "LOGOUT_UNKNOWN_REQUEST");
    }

    #[tokio::test]
    async fn a_partial_logout_is_audited_with_the_idps_status() {
        let fx = fixture(Db::Sqlite).await;
        let sp = sp();
        let started = logout::start(&sp, &fx.store, &login(), None, None, NOW)
            .await
            .unwrap();
        let mut response = idp_response(&started.redirect.request.request_id);
        response.status = Status::failure(code::SUCCESS, Some(code::PARTIAL_LOGOUT), None);
        let answer = idp_signed_query(
            MessageKind::Response,
            &response.to_xml().unwrap(),
            Some(&started.redirect.relay_state),
            &idp_key().key,
        );
        let cache = MemoryReplayCache::new(10);
        let got = logout::receive(&sp, &cache, &fx.store, SloMessage::Redirect(&answer), NOW)
            .await
            .unwrap();
        let event = new_event(&fx, 1, got.operation_id).await;
        assert_eq!(event.kind, AuditKind::LogoutPartial);
        assert_eq!(
            record(&event),
            &LogoutRecord::Partial {
                request_id: started.redirect.request.request_id.clone(),
                status: code::PARTIAL_LOGOUT.into(),
            }
        );
    }

    #[tokio::test]
    async fn idp_initiated_logout_is_audited_with_the_sessions_ended() {
        let fx = fixture(Db::Sqlite).await;
        let sp = sp();
        let cache = MemoryReplayCache::new(10);
        let request = idp_request();
        let query = idp_signed_query(
            MessageKind::Request,
            &request.to_xml().unwrap(),
            Some("chain"),
            &idp_key().key,
        );
        let got = logout::receive(&sp, &cache, &fx.store, SloMessage::Redirect(&query), NOW)
            .await
            .unwrap();
        let SloReceived::Request(accepted) = &got.received else {
            panic!("{:?}", got.received);
        };
        // Nothing is audited until the application says what it ended.
        assert!(log(&fx).await.is_empty());
        let url = logout::answer(&sp, &fx.store, accepted, 2, got.operation_id, NOW)
            .await
            .unwrap();
        assert!(url.starts_with(&format!("{IDP_SLO}?")), "{url}");
        let event = new_event(&fx, 0, got.operation_id).await;
        assert_eq!(event.kind, AuditKind::LogoutReceived);
        assert_eq!(event.session_index.as_deref(), Some("_idp-session-1"));
        assert_eq!(
            record(&event),
            &LogoutRecord::Received {
                request_id: request.id.clone(),
                name_id: "alice-7f3a".into(),
                session_indexes: vec!["_idp-session-1".into()],
                sessions_ended: 2,
            }
        );

        // A replay and a forgery are refused and audited, each with its code.
        let replayed = failure(
            logout::receive(&sp, &cache, &fx.store, SloMessage::Redirect(&query), NOW).await,
        );
        assert_eq!(replayed.code().as_str(), "LOGOUT_REPLAYED");
        let event = new_event(&fx, 1, replayed.operation_id).await;
        assert_eq!(refused_code(&event), "LOGOUT_REPLAYED");

        let forged = idp_signed_query(
            MessageKind::Request,
            &idp_request().to_xml().unwrap(),
            None,
            &rogue_key().key,
        );
        let forged_refusal = failure(
            logout::receive(&sp, &cache, &fx.store, SloMessage::Redirect(&forged), NOW).await,
        );
        assert_eq!(forged_refusal.code().as_str(), "SIGNATURE_INVALID");
        let event = new_event(&fx, 2, forged_refusal.operation_id).await;
        assert_eq!(event.kind, AuditKind::LogoutRefused);
        assert_eq!(refused_code(&event), "SIGNATURE_INVALID");
        let posted = failure(
            logout::receive(
                &sp,
                &cache,
                &fx.store,
                SloMessage::Post(&SloForm::default()),
                NOW,
            )
            .await,
        );
        let event = new_event(&fx, 3, posted.operation_id).await;
        assert_eq!(refused_code(&event), posted.code().as_str());
    }

    #[tokio::test]
    async fn a_logout_that_cannot_start_or_cannot_be_audited_is_not_started() {
        let fx = fixture(Db::Sqlite).await;
        let no_key = sp_with(true, None, true);
        let f = failure(logout::start(&no_key, &fx.store, &login(), None, None, NOW).await);
        assert_eq!(f.code().as_str(), "LOGOUT_NOT_CONFIGURED");
        assert!(
            log(&fx).await.is_empty(),
            "nothing started, nothing audited"
        );

        // With the audit log unreachable the person is not sent to the IdP.
        let sp = sp();
        fx.store.database().pool().close().await;
        let f = failure(logout::start(&sp, &fx.store, &login(), None, None, NOW).await);
        assert_eq!(f.code().as_str(), "STORE_FAILED");
    }
}
