//! The SP toolkit without HTTP: settings, IdP trust from metadata (and key rollover), login
//! start (signed requests, RelayState, open-redirect defence), the ACS states and audited
//! rejections.

use std::path::Path;

use latchkey_saml::authn_request::{AuthnRequest, binding_uri};
use latchkey_saml::binding::{BindingLimits, redirect};
use latchkey_saml::metadata::{MetadataOptions, parse_metadata};
use latchkey_sp::acs;
use latchkey_sp::binding::BrowserBinding;
use latchkey_sp::idp::IdpTrust;
use latchkey_sp::jit::{Contract, JitEngine, PlanAction};
use latchkey_sp::login::local_path;
use latchkey_sp::replay::{MemoryReplayCache, SqlReplayCache};
use latchkey_sp::settings::{SpConfig, UnchangedLogins};
use latchkey_sp::store::{AuditKind, Database, SqlAccountStore};
use latchkey_sp::{Error, MetadataError, ServiceProvider, SettingsError};
use latchkey_xmlsec::crypto::{SignatureAlgorithm, SigningKey};
use time::Duration;

pub(crate) use crate::support::toolkit::*;

// ----- settings -----

#[test]
fn settings_resolve_paths_and_defaults() {
    let c = config("[key]\nprivate_key_file = \"k.pem\"\ncertificate_file = \"/abs/c.pem\"");
    assert_eq!(c.clock_skew(), Duration::seconds(60));
    assert_eq!(c.request_lifetime(), Duration::minutes(10));
    assert!(!c.allow_idp_initiated);
    let key = c.key.as_ref().unwrap();
    assert_eq!(key.private_key_file, Path::new("/etc/app/k.pem"));
    assert_eq!(key.certificate_file, Path::new("/abs/c.pem"));
    assert!(key.sign_requests);
    assert_eq!(
        c.idp.metadata_file.as_deref(),
        Some(Path::new("/etc/app/idp.xml"))
    );
    assert!(
        !c.signature_algorithms()
            .unwrap()
            .contains(&SignatureAlgorithm::RsaSha1)
    );
}

/// IdP metadata is where the SP gets the keys it trusts: fetched over plain HTTP from
/// another host, anyone on the path could swap them and sign in as anyone. `http://` is
/// kept for the IdP on this machine (the demo and tests), nowhere else.
#[test]
fn a_metadata_url_is_https_unless_it_names_this_machine() {
    let source = |url: &str| {
        SpConfig::from_toml(
            &format!(
                "entity_id = \"{SP}\"\nacs_url = \"{ACS}\"\n[idp]\nmetadata_url = \"{url}\"\n"
            ),
            Path::new("/"),
        )
        .map(|_| ())
    };
    for ok in [
        "https://idp.example.org/saml/metadata",
        "http://127.0.0.1:8080/saml/metadata",
        "http://127.9.9.9/saml/metadata",
        "http://localhost:8080/saml/metadata",
        "http://LOCALHOST/saml/metadata",
        "http://[::1]:8080/saml/metadata",
        "http://localhost",
    ] {
        assert!(source(ok).is_ok(), "{ok}");
    }
    for refused in [
        "http://idp.example.org/saml/metadata",
        "http://10.0.0.5:8080/saml/metadata",
        "http://127.0.0.1.evil.example/saml/metadata",
        "http://localhost.evil.example/",
        "http://localhost@evil.example/",
        "http://evil.example/?x=127.0.0.1",
        "http://[::2]/",
        "http://[::1/",
        "HTTP://idp.example.org/",
        "ftp://127.0.0.1/",
    ] {
        assert!(
            matches!(
                source(refused),
                Err(SettingsError::Invalid {
                    setting: "idp.metadata_url",
                    ..
                })
            ),
            "{refused}"
        );
    }
}

#[test]
fn settings_refusals_name_the_setting() {
    let parse = |text: &str| SpConfig::from_toml(text, Path::new("/")).unwrap_err();
    let base = format!("entity_id = \"{SP}\"\nacs_url = \"{ACS}\"\n");
    assert!(matches!(
        parse(&format!("{base}[idp]\n")),
        SettingsError::MetadataSource
    ));
    assert!(matches!(
        parse(&format!(
            "{base}[idp]\nmetadata_file = \"a\"\nmetadata_url = \"https://x\"\n"
        )),
        SettingsError::MetadataSource
    ));
    assert!(matches!(
        parse(&format!(
            "{base}signature_algorithms = [\"rsa-md5\"]\n[idp]\nmetadata_file = \"a\"\n"
        )),
        SettingsError::UnknownAlgorithm(a) if a == "rsa-md5"
    ));
    assert!(matches!(
        parse(&format!(
            "{base}colour = \"blue\"\n[idp]\nmetadata_file = \"a\"\n"
        )),
        SettingsError::Parse(_)
    ));
    assert!(matches!(
        parse("entity_id = \"x\"\nacs_url = \"ftp://x\"\n[idp]\nmetadata_file = \"a\"\n"),
        SettingsError::Invalid {
            setting: "acs_url",
            ..
        }
    ));
}

/// `[audit] retain_days`: 0 (keep every event) unless set, a retention in days when set, and
/// no more than a hundred years.
#[test]
fn audit_retention_is_read_in_days_and_bounded() {
    let parse = |audit: &str| {
        SpConfig::from_toml(
            &format!(
                "entity_id = \"{SP}\"\nacs_url = \"{ACS}\"\n[idp]\nmetadata_file = \"a\"\n{audit}"
            ),
            Path::new("/"),
        )
    };
    assert_eq!(parse("").unwrap().audit.retention(), None);
    assert_eq!(
        parse("[audit]\nretain_days = 0\n")
            .unwrap()
            .audit
            .retention(),
        None
    );
    assert_eq!(
        parse("[audit]\nretain_days = 90\n")
            .unwrap()
            .audit
            .retention(),
        Some(time::Duration::days(90))
    );
    assert!(parse("[audit]\nretain_days = 36500\n").is_ok());
    assert!(matches!(
        parse("[audit]\nretain_days = 36501\n").unwrap_err(),
        SettingsError::Invalid {
            setting: "audit.retain_days",
            ..
        }
    ));
    assert!(matches!(
        parse("[audit]\nretain_weeks = 1\n").unwrap_err(),
        SettingsError::Parse(_)
    ));
}

/// `[audit] unchanged_logins`: recorded unless set to `log_only`; nothing else is accepted.
#[test]
fn unchanged_logins_are_recorded_unless_set_to_log_only() {
    let parse = |audit: &str| {
        SpConfig::from_toml(
            &format!(
                "entity_id = \"{SP}\"\nacs_url = \"{ACS}\"\n[idp]\nmetadata_file = \"a\"\n{audit}"
            ),
            Path::new("/"),
        )
    };
    let policy = |audit: &str| parse(audit).unwrap().audit.unchanged_logins;
    assert_eq!(policy(""), UnchangedLogins::Record);
    assert_eq!(
        policy("[audit]\nunchanged_logins = \"record\"\n"),
        UnchangedLogins::Record
    );
    let log_only = policy("[audit]\nunchanged_logins = \"log_only\"\n");
    assert_eq!(log_only, UnchangedLogins::LogOnly);
    assert_eq!(log_only.as_str(), "log_only");
    assert!(matches!(
        parse("[audit]\nunchanged_logins = \"skip\"\n").unwrap_err(),
        SettingsError::Parse(_)
    ));
}

#[test]
fn key_must_match_its_certificate() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("k.pem"), &old_key().key_pem).unwrap();
    std::fs::write(dir.path().join("c.pem"), &new_key().cert_pem).unwrap();
    std::fs::write(dir.path().join("good.pem"), &old_key().cert_pem).unwrap();
    let text = |cert: &str| {
        format!(
            "entity_id = \"{SP}\"\nacs_url = \"{ACS}\"\n[idp]\nmetadata_file = \"i\"\n\
             [key]\nprivate_key_file = \"k.pem\"\ncertificate_file = \"{cert}\"\n"
        )
    };
    let bad = SpConfig::from_toml(&text("c.pem"), dir.path()).unwrap();
    assert!(matches!(
        bad.load_key(),
        Err(SettingsError::KeyCertificateMismatch)
    ));
    let good = SpConfig::from_toml(&text("good.pem"), dir.path()).unwrap();
    assert!(good.load_key().unwrap().is_some());
}

// ----- IdP trust -----

#[test]
fn idp_trust_reads_keys_endpoint_and_refresh() {
    let t = trust(&[&old_key().cert, &new_key().cert]);
    assert_eq!(t.entity_id, IDP);
    assert_eq!(t.sso_url, SSO);
    assert_eq!(t.keys.len(), 2);
    assert!(t.want_authn_requests_signed);
    assert_eq!(t.refresh_interval(Duration::hours(1)), Duration::hours(2));
    let mut short = t.clone();
    short.cache_duration = Some(Duration::seconds(1));
    assert_eq!(
        short.refresh_interval(Duration::hours(1)),
        Duration::minutes(1)
    );
}

#[test]
fn idp_trust_refusals() {
    let none = idp_entity(IDP, &[]).to_xml().unwrap();
    assert!(matches!(
        IdpTrust::from_metadata(&none, None, NOW),
        Err(MetadataError::NoSigningKey(_))
    ));
    let mut no_redirect = idp_entity(IDP, &[&old_key().cert]);
    if let Some(idp) = no_redirect.idp.as_mut() {
        idp.sso_services[0].binding = binding_uri::HTTP_POST.into();
    }
    assert!(matches!(
        IdpTrust::from_metadata(&no_redirect.to_xml().unwrap(), None, NOW),
        Err(MetadataError::NoRedirectEndpoint(_))
    ));
    let other = idp_entity(IDP, &[&old_key().cert]).to_xml().unwrap();
    assert!(matches!(
        IdpTrust::from_metadata(&other, Some("https://someone.else"), NOW),
        Err(MetadataError::NoIdp(_))
    ));
    let mut expired = idp_entity(IDP, &[&old_key().cert]);
    expired.valid_until = Some(NOW - Duration::days(1));
    assert!(matches!(
        IdpTrust::from_metadata(&expired.to_xml().unwrap(), None, NOW),
        Err(MetadataError::Parse(_))
    ));
}

#[test]
fn key_rollover_breaks_nothing() {
    let cfg = config("allow_idp_initiated = true");
    let sp = ServiceProvider::new(&cfg, None, trust(&[&old_key().cert])).unwrap();
    let check = |id: &str, key: &SigningKey| {
        sp.verify_xml(&response(None, id, key), None, None, NOW)
            .map(|_| ())
            .map_err(|e| e.code().as_str())
    };
    // Before: only the old key is published. A response signed by the new key is refused.
    assert_eq!(check("_x1", &new_key().key), Err("SIGNATURE_INVALID"));
    // The IdP publishes both keys and the refreshed metadata is swapped in: both pass.
    sp.set_idp(trust(&[&old_key().cert, &new_key().cert]));
    assert_eq!(check("_x2", &old_key().key), Ok(()));
    assert_eq!(check("_x3", &new_key().key), Ok(()));
    // The old key is withdrawn: only the new one passes.
    sp.set_idp(trust(&[&new_key().cert]));
    assert_eq!(check("_x4", &old_key().key), Err("SIGNATURE_INVALID"));
    assert_eq!(check("_x5", &new_key().key), Ok(()));
}

// ----- login start -----

#[tokio::test]
async fn login_start_stores_the_request_under_relay_state() {
    let sp = sp(&[&old_key().cert]);
    let login = sp.start_login(Some("/pages/42"), NOW).await.unwrap();
    let (endpoint, query) = login.url.split_once('?').unwrap();
    assert_eq!(endpoint, SSO);
    let message = redirect::decode(query, &BindingLimits::default()).unwrap();
    assert!(!message.is_signed());
    assert_eq!(
        message.relay_state.as_deref(),
        Some(login.relay_state.as_str())
    );
    assert!(login.relay_state.len() <= 80);
    let request = AuthnRequest::parse(&message.xml).unwrap();
    assert_eq!(request.id, login.request.request_id);
    assert_eq!(request.issuer.as_deref(), Some(SP));
    assert_eq!(request.assertion_consumer_service_url.as_deref(), Some(ACS));
    assert_eq!(
        request.protocol_binding.as_deref(),
        Some(binding_uri::HTTP_POST)
    );
    assert_eq!(login.request.return_to.as_deref(), Some("/pages/42"));
    assert_eq!(login.request.expires_at, NOW + Duration::minutes(10));
    assert_eq!(sp.pending().count().await.unwrap(), 1);
    // The browser's binding value is in its cookie, never in a debug print.
    let (_, value) = login
        .set_cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap();
    assert_eq!(value.len(), 64);
    assert!(!format!("{login:?}").contains(value), "{login:?}");
    // Two logins never share a RelayState.
    let second = sp.start_login(None, NOW).await.unwrap();
    assert_ne!(second.relay_state, login.relay_state);
}

#[tokio::test]
async fn login_start_signs_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("k.pem"), &new_key().key_pem).unwrap();
    std::fs::write(dir.path().join("c.pem"), &new_key().cert_pem).unwrap();
    let cfg = SpConfig::from_toml(
        &format!(
            "entity_id = \"{SP}\"\nacs_url = \"{ACS}\"\n[idp]\nmetadata_file = \"i\"\n\
             [key]\nprivate_key_file = \"k.pem\"\ncertificate_file = \"c.pem\"\n"
        ),
        dir.path(),
    )
    .unwrap();
    let sp =
        ServiceProvider::new(&cfg, cfg.load_key().unwrap(), trust(&[&old_key().cert])).unwrap();
    let login = sp.start_login(None, NOW).await.unwrap();
    let message = redirect::decode(
        login.url.split_once('?').unwrap().1,
        &BindingLimits::default(),
    )
    .unwrap();
    assert!(message.is_signed());
    let alg = message
        .verify(
            std::slice::from_ref(new_key().key.verifying_key()),
            &[SignatureAlgorithm::EcdsaSha256],
        )
        .unwrap();
    assert_eq!(alg, SignatureAlgorithm::EcdsaSha256);
    // Our metadata publishes that certificate and says requests are signed.
    let md = parse_metadata(&sp.metadata_xml().unwrap(), &MetadataOptions::default()).unwrap();
    let entity = md.find(SP).unwrap();
    let role = entity.sp.as_ref().unwrap();
    assert!(role.authn_requests_signed);
    assert_eq!(entity.sp_signing_keys().len(), 1);
    assert_eq!(role.acs(None).unwrap().location, ACS);
}

/// Anyone can start a login, and its `return_to` is held with the pending request until the
/// IdP answers: a path longer than any page of ours (a URL holds 64 KiB) is not kept, and
/// the login starts all the same, returning to the home page.
#[tokio::test]
async fn a_return_to_longer_than_a_page_is_not_held() {
    use latchkey_sp::login::MAX_RETURN_TO;
    let sp = sp(&[&old_key().cert]);
    let longest = format!("/{}", "a".repeat(MAX_RETURN_TO - 1));
    assert_eq!(local_path(&longest).as_deref(), Some(longest.as_str()));
    let long = format!("/{}", "a".repeat(60_000));
    assert_eq!(local_path(&long), None);
    let login = sp.start_login(Some(&long), NOW).await.unwrap();
    assert_eq!(login.request.return_to, None);
}

#[test]
fn return_to_must_be_local() {
    assert_eq!(local_path("/a/b?c=d").as_deref(), Some("/a/b?c=d"));
    // Kept as a valid Location value: a space or non-ASCII character is percent-encoded.
    assert_eq!(local_path("/wiki/Café").as_deref(), Some("/wiki/Caf%C3%A9"));
    assert_eq!(local_path("/a b").as_deref(), Some("/a%20b"));
    assert_eq!(
        local_path("/\u{ff0f}evil").as_deref(),
        Some("/%EF%BC%8Fevil")
    );
    for bad in [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil",
        "javascript:x",
        "",
        "/a\nb",
        "/\r\nSet-Cookie: x=1",
        "/\t/evil.example",
    ] {
        assert_eq!(local_path(bad), None, "{bad:?}");
    }
}

#[tokio::test]
async fn an_expired_request_is_refused() {
    let sp = sp(&[&old_key().cert]);
    let login = sp.start_login(None, NOW).await.unwrap();
    let later = NOW + Duration::minutes(11);
    let xml = response(Some(&login.request.request_id), "_late", &old_key().key);
    let err = sp
        .verify_response(&form(&xml, Some(&login.relay_state)), &login.browser, later)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RequestExpired), "{err:?}");
    assert_eq!(err.code().as_str(), "REQUEST_EXPIRED");
}

// ----- the ACS chain -----

#[tokio::test]
async fn acs_chain_creates_then_refuses_a_replay_and_audits_it() {
    let sp = sp(&[&old_key().cert]);
    let db = Database::connect("sqlite::memory:").await.unwrap();
    let engine = JitEngine::new(
        Contract::from_toml(CONTRACT).unwrap(),
        SqlAccountStore::new(db),
    );
    let replay = MemoryReplayCache::new(100);
    let login = sp.start_login(None, NOW).await.unwrap();
    let xml = response(Some(&login.request.request_id), "_once", &old_key().key);

    // Dry run first: the typestate chain down to a plan, nothing written.
    let accepted = sp
        .verify_xml(&xml, Some(&login.request.request_id), None, NOW)
        .unwrap()
        .accept(&MemoryReplayCache::new(1), NOW)
        .await
        .unwrap();
    // JIT sees when the person authenticated: a SCIM delete since refuses the login.
    assert_eq!(accepted.facts().authn_instant, Some(NOW));
    assert!(matches!(
        accepted.plan(&engine, NOW).await.unwrap().action,
        PlanAction::Create { .. }
    ));
    assert!(engine.store().accounts().await.unwrap().is_empty());

    let done = acs::run(
        &sp,
        &form(&xml, Some(&login.relay_state)),
        &login.browser,
        &replay,
        &engine,
        NOW,
    )
    .await
    .unwrap();
    assert_eq!(done.login.name_id, "p-1");
    assert_eq!(done.login.assertion_id, "_once");
    assert_eq!(engine.store().accounts().await.unwrap().len(), 1);

    // The same assertion again (IdP-initiated allowed so only the replay rule can refuse).
    let open = ServiceProvider::new(
        &config("allow_idp_initiated = true"),
        None,
        trust(&[&old_key().cert]),
    )
    .unwrap();
    let unsolicited = response(None, "_twice", &old_key().key);
    acs::run(
        &open,
        &form(&unsolicited, None),
        &BrowserBinding::none(),
        &replay,
        &engine,
        NOW,
    )
    .await
    .unwrap();
    let failure = acs::run(
        &open,
        &form(&unsolicited, None),
        &BrowserBinding::none(),
        &replay,
        &engine,
        NOW,
    )
    .await
    .unwrap_err();
    assert_eq!(failure.code().as_str(), "ASSERTION_REPLAYED");
    let audit = engine.store().audit_log(10).await.unwrap();
    let event = audit
        .iter()
        .find(|e| e.operation_id == failure.operation_id)
        .unwrap();
    assert_eq!(event.kind, AuditKind::Rejected);
    assert_eq!(event.account_id, None);
    match &event.plan.action {
        PlanAction::Refuse(r) => assert!(r.detail.starts_with("ASSERTION_REPLAYED: "), "{r}"),
        other => panic!("{other:?}"),
    }
}

/// Anyone can post to the ACS, and each refused Response was an audit row: a flood of junk
/// posted at once is audited up to the minute's bound, the last of them saying so, the rest
/// only logged; the next minute audits again.
#[tokio::test]
async fn refused_responses_are_audited_up_to_a_bound_a_minute() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("sp.db").display());
    let db = Database::connect(&url).await.unwrap();
    let sp = ServiceProvider::new(
        &config("allow_idp_initiated = true"),
        None,
        trust(&[&old_key().cert]),
    )
    .unwrap();
    let replay = SqlReplayCache::new(db.clone());
    let engine = std::sync::Arc::new(JitEngine::new(
        Contract::from_toml(CONTRACT).unwrap(),
        SqlAccountStore::new(db),
    ));
    let bound = latchkey_sp::refusals::AUDITED_PER_MINUTE;
    let junk = latchkey_sp::provider::AcsForm {
        saml_response: "not base64!".to_owned(),
        relay_state: None,
    };
    let mut posts = tokio::task::JoinSet::new();
    for _ in 0..bound + 30 {
        let (sp, replay, engine, junk) = (sp.clone(), replay.clone(), engine.clone(), junk.clone());
        posts.spawn(async move {
            acs::run(&sp, &junk, &BrowserBinding::none(), &replay, &engine, NOW).await
        });
    }
    let mut failures = Vec::new();
    while let Some(done) = posts.join_next().await {
        failures.push(done.unwrap().unwrap_err());
    }
    assert_eq!(failures.len() as u64, bound + 30);
    let log = engine.store().audit_log(1_000).await.unwrap();
    assert_eq!(log.len() as u64, bound);
    assert!(log.iter().all(|e| e.kind == AuditKind::Rejected));
    let last = |e: &latchkey_sp::store::AuditEvent| match &e.plan.action {
        PlanAction::Refuse(r) => r.detail.contains("only logged"),
        other => panic!("{other:?}"),
    };
    assert_eq!(log.iter().filter(|e| last(e)).count(), 1);
    // Every refusal was answered with its own operation ID, audited or not.
    let mut ids: Vec<_> = failures.iter().map(|f| f.operation_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len() as u64, bound + 30);

    // A minute later the bound starts again.
    let later = NOW + Duration::minutes(1);
    let failure = acs::run(&sp, &junk, &BrowserBinding::none(), &replay, &engine, later)
        .await
        .unwrap_err();
    let log = engine.store().audit_log(1_000).await.unwrap();
    assert_eq!(log.len() as u64, bound + 1);
    assert_eq!(log[log.len() - 1].operation_id, failure.operation_id);
    assert!(!last(&log[log.len() - 1]));
}

#[tokio::test]
async fn only_clones_of_one_database_are_the_same_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("sp.db").display());
    let db = Database::connect(&url).await.unwrap();
    assert!(db.same_as(&db.clone()));
    let other = Database::connect(&url).await.unwrap();
    assert!(!db.same_as(&other));
    // Not joined, the replay cache and the login still work together, each on its own.
    let open = ServiceProvider::new(
        &config("allow_idp_initiated = true"),
        None,
        trust(&[&old_key().cert]),
    )
    .unwrap();
    let replay = SqlReplayCache::new(other);
    let engine = JitEngine::new(
        Contract::from_toml(CONTRACT).unwrap(),
        SqlAccountStore::new(db),
    );
    let first = form(&response(None, "_apart", &old_key().key), None);
    acs::run(
        &open,
        &first,
        &BrowserBinding::none(),
        &replay,
        &engine,
        NOW,
    )
    .await
    .unwrap();
    let failure = acs::run(
        &open,
        &first,
        &BrowserBinding::none(),
        &replay,
        &engine,
        NOW,
    )
    .await
    .unwrap_err();
    assert_eq!(failure.code().as_str(), "ASSERTION_REPLAYED");
    assert_eq!(replay.count_entries().await.unwrap(), 1);
}

/// The login binding with the pending requests in memory (the SQL store's case is in
/// `backends::toolkit`, on both databases).
#[tokio::test]
async fn the_memory_pending_store_binds_a_login_to_its_browser() {
    let db = Database::connect("sqlite::memory:").await.unwrap();
    crate::backends::toolkit::a_login_is_answered_only_from_the_browser_that_started_it(
        sp(&[&old_key().cert]),
        SqlAccountStore::new(db),
        latchkey_sp::replay::MemoryReplayCache::new(100),
    )
    .await;
}

/// `GET /login` through the axum helper: the redirect carries the binding cookie (a fresh
/// value for a browser without one, the browser's own otherwise), `HttpOnly`, for the whole
/// site, as long as a login may take, and sent cross-site (`SameSite=None; Secure`, under the
/// `__Host-` prefix on an https SP).
#[tokio::test]
async fn the_login_redirect_sets_the_binding_cookie() {
    use axum::http::{HeaderMap, HeaderValue, header};
    let sp = sp(&[&old_key().cert]);
    let set_cookie = |r: &axum::response::Response| {
        let all: Vec<&str> = r
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(all.len(), 1, "{all:?}");
        all[0].to_owned()
    };
    let first = latchkey_sp::web::login_response(&sp, None, &HeaderMap::new(), None, NOW)
        .await
        .unwrap();
    assert_eq!(first.status(), axum::http::StatusCode::SEE_OTHER);
    let cookie = set_cookie(&first);
    let (pair, attributes) = cookie.split_once("; ").unwrap();
    let (name, value) = pair.split_once('=').unwrap();
    assert_eq!(name, "__Host-latchkey_login");
    assert_eq!(value.len(), 64);
    assert_eq!(
        attributes,
        "Path=/; Max-Age=600; HttpOnly; Secure; SameSite=None"
    );
    // The browser comes back with it (among its other cookies): the value is reused.
    let mut headers = HeaderMap::new();
    headers.insert(
        header::COOKIE,
        HeaderValue::from_str(&format!("session=x; {pair}")).unwrap(),
    );
    let again = latchkey_sp::web::login_response(&sp, None, &headers, None, NOW)
        .await
        .unwrap();
    assert_eq!(set_cookie(&again), cookie);
    // Another browser gets another value; the plain-http name is not this SP's.
    headers.insert(
        header::COOKIE,
        HeaderValue::from_str(&format!("latchkey_login={value}")).unwrap(),
    );
    let other = latchkey_sp::web::login_response(&sp, None, &headers, None, NOW)
        .await
        .unwrap();
    assert_ne!(set_cookie(&other), cookie);
}

#[tokio::test]
async fn pending_requests_in_sql_are_shared_between_nodes() {
    let db = Database::connect("sqlite::memory:").await.unwrap();
    let cfg = config("");
    let node_a =
        ServiceProvider::with_database(&cfg, None, trust(&[&old_key().cert]), db.clone()).unwrap();
    let node_b = ServiceProvider::with_database(&cfg, None, trust(&[&old_key().cert]), db).unwrap();
    let login = node_a.start_login(Some("/x"), NOW).await.unwrap();
    assert_eq!(node_b.pending().count().await.unwrap(), 1);
    let xml = response(Some(&login.request.request_id), "_shared", &old_key().key);
    let verified = node_b
        .verify_response(&form(&xml, Some(&login.relay_state)), &login.browser, NOW)
        .await
        .unwrap();
    assert_eq!(
        verified.subject().in_response_to.as_deref(),
        Some(login.request.request_id.as_str())
    );
    // Taken: the same RelayState is not honoured again, on either node.
    assert_eq!(node_a.pending().count().await.unwrap(), 0);
    let again = node_a
        .verify_response(&form(&xml, Some(&login.relay_state)), &login.browser, NOW)
        .await
        .unwrap_err();
    assert_eq!(again.code().as_str(), "IN_RESPONSE_TO_MISMATCH");
    // Expired requests are refused as such.
    let late = node_a.start_login(None, NOW).await.unwrap();
    let err = node_b
        .verify_response(
            &form(
                &response(Some(&late.request.request_id), "_late2", &old_key().key),
                Some(&late.relay_state),
            ),
            &late.browser,
            NOW + Duration::hours(1),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code().as_str(), "REQUEST_EXPIRED");
}

/// A network's count follows its requests: a finished login (taken, even too late) and a
/// pruned one each give its place back, and to that network only.
/// In memory as in SQL: the /64s of one /48 together hold at most
/// `PENDING_PER_WIDE_NETWORK`, and a finished login gives the /48 its place back.
#[test]
fn memory_pending_store_bounds_the_64s_of_one_48_together() {
    use latchkey_sp::login::{
        PENDING_PER_NETWORK, PENDING_PER_WIDE_NETWORK, PendingRequest, PendingRequests,
    };
    let store = PendingRequests::new(10_000);
    let request = || PendingRequest {
        request_id: "_r".into(),
        return_to: None,
        expires_at: NOW + Duration::minutes(5),
        browser: None,
    };
    let per_64 = PENDING_PER_NETWORK / 2;
    let mut keys = Vec::new();
    for i in 0..(PENDING_PER_WIDE_NETWORK / per_64) {
        for j in 0..per_64 {
            let client = format!("2001:db8:5:{:x}::{:x}", i + 1, j + 1);
            keys.push(store.insert(request(), Some(&client), NOW).unwrap());
        }
    }
    let fresh_64 = "2001:db8:5:ffff::1";
    assert!(matches!(
        store.insert(request(), Some(fresh_64), NOW),
        Err(Error::TooManyPendingFromClient(PENDING_PER_WIDE_NETWORK))
    ));
    store.insert(request(), Some("2001:db8:6::1"), NOW).unwrap();
    assert!(store.take(&keys[0], NOW).unwrap().is_some());
    store.insert(request(), Some(fresh_64), NOW).unwrap();
    assert!(store.insert(request(), Some(fresh_64), NOW).is_err());
}

#[test]
fn memory_pending_store_gives_a_network_its_places_back() {
    use latchkey_sp::login::{PENDING_PER_NETWORK, PendingRequest, PendingRequests};
    let store = PendingRequests::new(10_000);
    let request = |expires_at| PendingRequest {
        request_id: "_r".into(),
        return_to: None,
        expires_at,
        browser: None,
    };
    let office = "198.51.100.7";
    let full = |store: &PendingRequests, at| {
        matches!(
            store.insert(request(at + Duration::minutes(5)), Some(office), at),
            Err(Error::TooManyPendingFromClient(_))
        )
    };
    let mut keys = Vec::new();
    for i in 0..PENDING_PER_NETWORK {
        // The first one expires early.
        let expires = NOW + Duration::minutes(if i == 0 { 1 } else { 10 });
        keys.push(store.insert(request(expires), Some(office), NOW).unwrap());
    }
    assert!(full(&store, NOW));
    assert!(store.take(&keys[1], NOW).unwrap().is_some());
    assert!(!full(&store, NOW), "a finished login gives its place back");
    assert!(full(&store, NOW));
    let late = NOW + Duration::minutes(2);
    assert!(matches!(
        store.take(&keys[0], late),
        Err(Error::RequestExpired)
    ));
    assert!(!full(&store, late), "so does one taken too late");
    assert!(full(&store, late));
    // Another network shares none of it.
    store
        .insert(
            request(late + Duration::minutes(5)),
            Some("203.0.113.1"),
            late,
        )
        .unwrap();
    // Once all of the office's have expired, it has its whole share again.
    let much_later = NOW + Duration::hours(1);
    for _ in 0..PENDING_PER_NETWORK {
        assert!(!full(&store, much_later));
    }
    assert!(full(&store, much_later));
}

#[test]
fn memory_pending_store_is_bounded_and_prunes_expired() {
    use latchkey_sp::login::{PendingRequest, PendingRequests};
    let store = PendingRequests::new(2);
    let request = |expires_at| PendingRequest {
        request_id: "_r".into(),
        return_to: None,
        expires_at,
        browser: None,
    };
    store
        .insert(request(NOW + Duration::minutes(1)), None, NOW)
        .unwrap();
    store
        .insert(request(NOW + Duration::minutes(10)), None, NOW)
        .unwrap();
    assert!(matches!(
        store.insert(request(NOW + Duration::minutes(10)), None, NOW),
        Err(Error::TooManyPendingRequests(2))
    ));
    // Once the first has expired there is room again.
    let later = NOW + Duration::minutes(2);
    store
        .insert(request(later + Duration::minutes(10)), None, later)
        .unwrap();
    assert_eq!(store.len(), 2);
    // One client's network gets at most its share, others are still served.
    let store = PendingRequests::new(1_000);
    for i in 0..latchkey_sp::login::PENDING_PER_NETWORK {
        let client = format!("2001:db8:5:5::{:x}", i + 1);
        store
            .insert(request(NOW + Duration::minutes(10)), Some(&client), NOW)
            .unwrap();
    }
    assert!(matches!(
        store.insert(
            request(NOW + Duration::minutes(10)),
            Some("2001:db8:5:5:ff::1"),
            NOW
        ),
        Err(Error::TooManyPendingFromClient(_))
    ));
    store
        .insert(
            request(NOW + Duration::minutes(10)),
            Some("203.0.113.1"),
            NOW,
        )
        .unwrap();
    // Expired ones make room for that network again.
    let later = NOW + Duration::minutes(11);
    store
        .insert(
            request(later + Duration::minutes(10)),
            Some("2001:db8:5:5::1"),
            later,
        )
        .unwrap();
}
