//! The sign-in front door under bursts: throttling that holds under concurrency (on both
//! backends and across two nodes), the trusted-browser cookie, the bounded hash pool, and
//! who may read `/metrics`.

use axum::http::{HeaderMap, StatusCode, header};
use latchkey_idp::Clock;
use latchkey_idp::config::PasswordConfig;
use latchkey_idp::session::{Throttle, ThrottlePolicy};

use super::bursts::*;
use super::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_guesses_for_one_account_evaluate_only_the_limit_sqlite() {
    let idp = idp_with(|c| c.trust_forwarded_for = true).await;
    one_account_burst(&idp, std::slice::from_ref(&idp.router), &[&idp.store]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_spray_from_one_address_evaluates_only_the_address_limit() {
    // A queue long enough for the whole burst: this test is about the throttle alone.
    let passwords = PasswordConfig {
        max_queued: 1000,
        ..cheap_passwords()
    };
    let idp = idp_with_passwords(passwords, |c| c.trust_forwarded_for = true).await;
    let before = hashes(&idp.store);
    let results = burst(
        std::slice::from_ref(&idp.router),
        100,
        |i| format!("user{i}"),
        |_| Some("203.0.113.50".into()),
        "wrong password",
    )
    .await;
    let limit = usize::try_from(ThrottlePolicy::ADDRESS.free).unwrap();
    assert_eq!(count(&results, StatusCode::UNAUTHORIZED), limit);
    assert_eq!(count(&results, StatusCode::TOO_MANY_REQUESTS), 100 - limit);
    assert_eq!(hashes(&idp.store) - before, u64::try_from(limit).unwrap());
    // A refused attempt is not counted: the slots taken before the refusing key went back,
    // so bob (another name, another address) is untouched.
    let (status, _) = post_login(
        idp.router.clone(),
        "bob".into(),
        PASSWORD.into(),
        Some("192.0.2.1".into()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}

fn device_cookie(headers: &HeaderMap) -> String {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with("latchkey_device="))
        .expect("a device cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_trusted_browser_keeps_its_owner_in_while_an_attacker_locks_the_account() {
    let idp = idp_with(|c| c.trust_forwarded_for = true).await;
    let sign_in = |user: &str, pw: &str, addr: &str, cookie: Option<String>| {
        post_login(
            idp.router.clone(),
            user.into(),
            pw.into(),
            Some(addr.into()),
            cookie,
        )
    };
    // Alice signs in at her desk: her browser becomes trusted for alice.
    let (status, headers) = sign_in("alice", PASSWORD, "10.0.0.1", None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let alice_device = device_cookie(&headers);
    assert!(
        headers
            .get_all(header::SET_COOKIE)
            .iter()
            .any(|c| c.to_str().unwrap().contains("Max-Age=15552000"))
    );
    let (_, headers) = sign_in("bob", PASSWORD, "10.0.0.2", None).await;
    let bob_device = device_cookie(&headers);

    // An attacker guesses from a new address each time: the pair and address keys never
    // fill, the account key does.
    let free = ThrottlePolicy::ACCOUNT.free;
    for i in 0..free + 5 {
        let (status, _) = sign_in("alice", "guess", &format!("198.51.100.{i}"), None).await;
        let want = if i < free {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        assert_eq!(status, want, "guess {i}");
    }
    // Alice in a new browser (no device cookie) is throttled like everyone else...
    let (status, _) = sign_in("alice", PASSWORD, "192.0.2.10", None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // ...a forged cookie, or bob's, gives nothing...
    let mut forged = alice_device.clone();
    forged.pop();
    forged.push(if alice_device.ends_with('A') {
        'B'
    } else {
        'A'
    });
    let (status, _) = sign_in("alice", PASSWORD, "192.0.2.10", Some(forged)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let (status, _) = sign_in("alice", PASSWORD, "192.0.2.10", Some(bob_device)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // ...but her trusted browser gets in, from anywhere.
    let (status, _) = sign_in("alice", PASSWORD, "192.0.2.10", Some(alice_device.clone())).await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    // The trusted browser's own failures count against it alone.
    let (_, headers) = sign_in("alice", PASSWORD, "10.0.0.1", Some(alice_device)).await;
    let device = device_cookie(&headers);
    let own = ThrottlePolicy::DEVICE.free;
    for _ in 0..own {
        let (status, _) = sign_in("alice", "typo", "10.0.0.1", Some(device.clone())).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _) = sign_in("alice", PASSWORD, "10.0.0.1", Some(device)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);

    // The janitor's purge forgets runs that ended, never a block still in force.
    let throttle = Throttle::new(&idp.store);
    throttle.purge(idp.clock.now()).await.unwrap();
    let (status, _) = sign_in("alice", PASSWORD, "192.0.2.10", None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let later = idp.clock.now() + time::Duration::hours(1);
    assert!(throttle.purge(later).await.unwrap() > 0);
    let (status, _) = sign_in("alice", PASSWORD, "192.0.2.10", None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}

/// Back-off on the IdP's clock, with no sleeping: a block holds to its last second, when it
/// ends exactly one attempt is admitted, and that attempt's failure blocks the key again for
/// twice as long.
#[tokio::test]
async fn when_a_block_ends_one_attempt_is_admitted_and_its_failure_doubles_the_block() {
    let idp = idp_with(|c| c.trust_forwarded_for = true).await;
    let sign_in = |password: &str| {
        post_login(
            idp.router.clone(),
            "alice".into(),
            password.into(),
            Some("203.0.113.5".into()),
            None,
        )
    };
    let retry_after = |headers: &HeaderMap| -> i64 {
        headers[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    let policy = ThrottlePolicy::PAIR;
    let second = time::Duration::seconds(1);
    for _ in 0..policy.free {
        assert_eq!(sign_in("typo").await.0, StatusCode::UNAUTHORIZED);
    }
    let first = policy.block_after(policy.free).unwrap();
    let doubled = policy.block_after(policy.free + 1).unwrap();
    assert_eq!(doubled, first * 2);

    // Blocked, even for the right password, until the last second of the block.
    let (status, headers) = sign_in(PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after(&headers), first.whole_seconds());
    idp.clock.advance(first - second);
    let (status, headers) = sign_in(PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after(&headers), 1);

    // The block is over: one attempt is admitted (and fails); the next is refused at once,
    // for twice as long.
    idp.clock.advance(second);
    assert_eq!(sign_in("typo").await.0, StatusCode::UNAUTHORIZED);
    let (status, headers) = sign_in(PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after(&headers), doubled.whole_seconds());
    idp.clock.advance(doubled - second);
    assert_eq!(sign_in(PASSWORD).await.0, StatusCode::TOO_MANY_REQUESTS);
    idp.clock.advance(second);
    assert_eq!(sign_in(PASSWORD).await.0, StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_never_runs_more_hashes_than_the_bound_and_the_excess_get_503() {
    // A hash slow enough (in a debug build) that the burst piles up behind the bound.
    let passwords = PasswordConfig {
        memory_kib: 2048,
        iterations: 2,
        parallelism: 1,
        max_concurrent: 2,
        max_queued: 4,
        ..PasswordConfig::default()
    };
    let idp = idp_with_passwords(passwords, |c| c.trust_forwarded_for = true).await;
    let before = idp.store.hashing().stats();
    let results = burst(
        std::slice::from_ref(&idp.router),
        200,
        |i| format!("user{i}"),
        |i| Some(format!("10.1.{}.{}", i / 200, i % 200)),
        "wrong password",
    )
    .await;
    let stats = idp.store.hashing().stats();
    let busy = count(&results, StatusCode::SERVICE_UNAVAILABLE);
    let checked = count(&results, StatusCode::UNAUTHORIZED);
    assert_eq!(busy + checked, 200, "only 401 and 503");
    assert!(busy > 0, "the excess is refused");
    assert!(checked >= 2, "the bound's worth is checked");
    assert!(stats.peak <= 2, "peak {} hashes at once", stats.peak);
    assert_eq!(
        stats.completed - before.completed,
        u64::try_from(checked).unwrap()
    );
    assert_eq!(stats.refused - before.refused, u64::try_from(busy).unwrap());
    for (status, headers) in &results {
        if *status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(headers[header::RETRY_AFTER], "2");
        }
    }
    // Refused attempts leave no rows behind: only the checked ones' runs remain (a pair,
    // an account and an address key each), however large the refused part of the burst.
    let runs = Throttle::new(&idp.store).runs().await.unwrap();
    assert_eq!(runs, i64::try_from(3 * checked).unwrap(), "{busy} refused");
    // A refused attempt was never a guess: its throttle slots went back.
    let (status, _) = post_login(
        idp.router.clone(),
        "alice".into(),
        PASSWORD.into(),
        Some("10.1.0.0".into()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let mut b = Browser::new(&idp);
    let metrics = b.metrics().await.body;
    assert!(metrics.contains("latchkey_password_hash_concurrency_limit 2"));
    assert!(metrics.contains(&format!("latchkey_password_hash_refused_total {busy}")));
}

#[tokio::test]
async fn metrics_need_an_allowed_address_or_the_token() {
    let proxied = idp_with(|c| c.trust_forwarded_for = true).await;
    let mut b = Browser::new(&proxied);
    b.address = Some("203.0.113.9".into());
    assert_eq!(b.get("/metrics").await.status, StatusCode::FORBIDDEN);
    b.address = Some("127.0.0.1".into());
    assert_eq!(b.get("/metrics").await.status, StatusCode::OK);
    b.address = Some("203.0.113.9".into());
    assert_eq!(b.metrics().await.status, StatusCode::OK);
    // Without the proxy setting, a forged header is not believed (and in-process requests
    // have no peer address at all).
    let plain = idp().await;
    let mut b = Browser::new(&plain);
    b.address = Some("127.0.0.1".into());
    assert_eq!(b.get("/metrics").await.status, StatusCode::FORBIDDEN);
}

/// Anyone can have an AuthnRequest parked (an application's request needs no session), so
/// one network gets `parked_per_network` places: the next request is answered 429
/// `WEB-THROTTLED` with `Retry-After`, and nothing of it is kept, not even its ID: the same
/// request from another network is parked and, once its user signs in, answered.
#[tokio::test]
async fn parked_sign_ins_are_capped_per_network() {
    let idp = idp_with(|c| {
        c.trust_forwarded_for = true;
        c.parked_per_network = 2;
        c.parked_max = 10;
    })
    .await;
    let mut office = Browser::new(&idp);
    office.address = Some("203.0.113.9".into());
    for _ in 0..2 {
        let page = office.get(&redirect_uri(&authn_request(SP), None)).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        assert!(page.location().starts_with("/saml/continue/"));
    }
    let refused = authn_request(SP);
    let page = office.get(&redirect_uri(&refused, None)).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "{}", page.body);
    assert_eq!(page.error_code(), Some("WEB-THROTTLED"));
    assert_eq!(page.headers[header::RETRY_AFTER], "30");
    // Its ID was not used up: from elsewhere it parks, and is answered after the sign-in.
    let mut home = Browser::new(&idp);
    home.address = Some("198.51.100.20".into());
    let parked = home.get(&redirect_uri(&refused, None)).await;
    assert_eq!(parked.status, StatusCode::SEE_OTHER, "{}", parked.body);
    let cont = continue_key(parked.location());
    let signed_in = home.login("alice", PASSWORD, Some(&cont)).await;
    let answer = home.follow(signed_in).await;
    assert!(
        answer.saml_response().contains(&refused.id),
        "{}",
        answer.body
    );
}

/// A LogoutRequest by POST is parked across the same-site hop, under the same caps; one
/// refused its place is not used up, so the application can send it again from elsewhere.
#[tokio::test]
async fn a_logout_request_refused_a_place_keeps_its_id() {
    use super::slo_cases::{logout_request, signed_post};
    let idp = idp_with(|c| {
        c.trust_forwarded_for = true;
        c.parked_per_network = 1;
        c.parked_max = 10;
    })
    .await;
    let signed = || {
        let request = logout_request(
            SIGNED_SP,
            "alice@example.org",
            "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
        );
        signed_post(&request, &idp.sp_key)
    };
    let mut office = Browser::new(&idp);
    office.address = Some("203.0.113.9".into());
    let first = office
        .post("/saml/slo", &[("SAMLRequest", &signed())])
        .await;
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.body);
    assert!(first.location().starts_with("/saml/slo/continue/"));
    let refused = signed();
    let page = office.post("/saml/slo", &[("SAMLRequest", &refused)]).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "{}", page.body);
    assert_eq!(page.error_code(), Some("WEB-THROTTLED"));
    let mut home = Browser::new(&idp);
    home.address = Some("198.51.100.20".into());
    let parked = home.post("/saml/slo", &[("SAMLRequest", &refused)]).await;
    assert_eq!(parked.status, StatusCode::SEE_OTHER, "{}", parked.body);
    // Used now: a second arrival is a replay, and leaves no parked request behind.
    let mut third = Browser::new(&idp);
    third.address = Some("192.0.2.77".into());
    let again = third.post("/saml/slo", &[("SAMLRequest", &refused)]).await;
    assert_eq!(again.error_code(), Some("SLO-REPLAYED"), "{}", again.body);
    let fourth = third.post("/saml/slo", &[("SAMLRequest", &signed())]).await;
    assert_eq!(fourth.status, StatusCode::SEE_OTHER, "{}", fourth.body);
}

/// A request the IdP answers with an error Status before anyone signs in is an audit line,
/// and anyone can send one: one network gets `REFUSED_REQUEST.free` such answers, then 429
/// `WEB-THROTTLED` with no answer and no line, while another network is still answered.
#[tokio::test]
async fn refused_requests_from_one_network_are_throttled() {
    use latchkey_idp::session::ThrottlePolicy;
    use latchkey_saml::authn_request::NameIdPolicy;
    let idp = idp_with(|c| c.trust_forwarded_for = true).await;
    let refusable = || {
        let mut request = authn_request(SP);
        request.name_id_policy = Some(NameIdPolicy {
            format: Some("urn:oasis:names:tc:SAML:2.0:nameid-format:kerberos".into()),
            sp_name_qualifier: None,
            allow_create: Some(true),
        });
        request
    };
    let free = usize::try_from(ThrottlePolicy::REFUSED_REQUEST.free).unwrap();
    let mut noisy = Browser::new(&idp);
    noisy.address = Some("2001:db8:9:9::1".into());
    for i in 0..free {
        // Its addresses rotate within one /64: one network.
        noisy.address = Some(format!("2001:db8:9:9::{:x}", i + 1));
        let page = noisy.get(&redirect_uri(&refusable(), None)).await;
        assert_eq!(page.status, StatusCode::OK, "refusal {i}: {}", page.body);
    }
    assert_eq!(audit_actions(&idp, "sso.refused").await.len(), free);
    let page = noisy.get(&redirect_uri(&refusable(), None)).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "{}", page.body);
    assert_eq!(page.error_code(), Some("WEB-THROTTLED"));
    assert!(page.headers.contains_key(header::RETRY_AFTER));
    assert_eq!(audit_actions(&idp, "sso.refused").await.len(), free);
    // A passive request with no session is refused only once it comes back from its park:
    // the same slot, so parking and continuing does not get round it.
    let mut passive = authn_request(SP);
    passive.is_passive = true;
    let parked = noisy.get(&redirect_uri(&passive, None)).await;
    assert_eq!(parked.status, StatusCode::SEE_OTHER, "{}", parked.body);
    let page = noisy.get(parked.location()).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "{}", page.body);
    assert_eq!(audit_actions(&idp, "sso.refused").await.len(), free);
    // Requests that are not refused are not held up, nor are other networks.
    let fine = noisy.get(&redirect_uri(&authn_request(SP), None)).await;
    assert_eq!(fine.status, StatusCode::SEE_OTHER, "{}", fine.body);
    let mut other = Browser::new(&idp);
    other.address = Some("198.51.100.30".into());
    let page = other.get(&redirect_uri(&refusable(), None)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(audit_actions(&idp, "sso.refused").await.len(), free + 1);
}

/// Junk at every door anyone can knock on: bad percent-encoding and UTF-8, repeated
/// parameters, a deflate bomb, oversized bodies, queries, tokens and cookies. Each is a
/// clear 4xx with a code (or the plain page the route always shows), never a 500 or a panic.
#[tokio::test]
async fn junk_at_the_front_door_is_a_clear_4xx() {
    use axum::body::Body;
    use axum::http::{Method, Request};
    use base64::Engine;
    use std::io::Write;
    // Passkeys on (a base URL that can be a relying party), so their endpoints are tried.
    let idp = idp_with(|c| c.base_url = super::webauthn::ORIGIN.into()).await;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let pct = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    // 16 MiB of zeros deflate to about 16 KiB (a URI holds 64 KiB): inflating it all
    // would cost 16 MiB.
    let bomb = {
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..16 {
            enc.write_all(&zeros).unwrap();
        }
        pct(&b64(&enc.finish().unwrap()))
    };
    let big = "A".repeat(300 * 1024);
    let form = "application/x-www-form-urlencoded";
    let json = "application/json";
    let key = "k".repeat(43);
    // (method, URI, content type and body, other headers)
    type Case<'a> = (
        Method,
        String,
        Option<(&'a str, Vec<u8>)>,
        Vec<(&'a str, String)>,
    );
    let cases: Vec<Case> = vec![
        (
            Method::GET,
            "/saml/sso?SAMLRequest=%ZZ".into(),
            None,
            vec![],
        ),
        (
            Method::GET,
            "/saml/sso?SAMLRequest=%C3%28".into(),
            None,
            vec![],
        ),
        (
            Method::GET,
            "/saml/sso?SAMLRequest=a&SAMLRequest=b".into(),
            None,
            vec![],
        ),
        (
            Method::GET,
            format!("/saml/sso?SAMLRequest={bomb}"),
            None,
            vec![],
        ),
        (
            Method::GET,
            format!("/saml/sso?SAMLRequest={}", &big[..60 * 1024]),
            None,
            vec![],
        ),
        (
            Method::GET,
            format!("/saml/sso?{}", "x=1&".repeat(15_000)),
            None,
            vec![],
        ),
        (Method::GET, "/saml/sso".into(), None, vec![]),
        (
            Method::POST,
            "/saml/sso".into(),
            Some((form, b"SAMLRequest=%ZZ".to_vec())),
            vec![],
        ),
        (
            Method::POST,
            "/saml/sso".into(),
            Some((form, b"SAMLRequest=a&SAMLRequest=b".to_vec())),
            vec![],
        ),
        (
            Method::POST,
            "/saml/sso".into(),
            Some((form, vec![b'S', 0xff, 0xfe, b'='])),
            vec![],
        ),
        (
            Method::POST,
            "/saml/sso".into(),
            Some((form, format!("SAMLRequest={big}").into_bytes())),
            vec![],
        ),
        (
            Method::POST,
            "/saml/sso".into(),
            Some(("text/plain", b"SAMLRequest=x".to_vec())),
            vec![],
        ),
        (
            Method::GET,
            format!("/saml/slo?SAMLRequest={bomb}"),
            None,
            vec![],
        ),
        (
            Method::GET,
            "/saml/slo?SAMLRequest=%C3%28&SigAlg=x".into(),
            None,
            vec![],
        ),
        (
            Method::POST,
            "/saml/slo".into(),
            Some((form, format!("SAMLRequest={big}").into_bytes())),
            vec![],
        ),
        (
            Method::POST,
            "/saml/slo".into(),
            Some((form, b"SAMLResponse=%%%".to_vec())),
            vec![],
        ),
        (Method::GET, "/saml/continue/x".into(), None, vec![]),
        (Method::GET, format!("/saml/continue/{key}"), None, vec![]),
        (Method::GET, "/saml/continue/%FF%FE".into(), None, vec![]),
        (
            Method::GET,
            format!("/saml/slo/continue/{key}"),
            None,
            vec![],
        ),
        (Method::GET, "/saml/slo/frame/%FF".into(), None, vec![]),
        (
            Method::GET,
            format!("/saml/slo/done/{}", "d".repeat(5000)),
            None,
            vec![],
        ),
        (Method::GET, "/saml/init/%FF".into(), None, vec![]),
        (
            Method::GET,
            "/login?continue=%FF&to=%00".into(),
            None,
            vec![],
        ),
        (
            Method::POST,
            "/login".into(),
            Some((form, format!("username=a&password={big}").into_bytes())),
            vec![],
        ),
        (
            Method::POST,
            "/login".into(),
            Some((form, vec![0xff, 0xfe])),
            vec![],
        ),
        (
            Method::POST,
            "/login".into(),
            Some(("text/plain", b"username=a".to_vec())),
            vec![],
        ),
        (Method::POST, "/login".into(), None, vec![]),
        (
            Method::POST,
            "/login/mfa".into(),
            Some((form, b"code=1".to_vec())),
            vec![],
        ),
        (Method::GET, "/invite/%FF".into(), None, vec![]),
        (
            Method::POST,
            "/invite/%FF".into(),
            Some((form, b"password=a".to_vec())),
            vec![],
        ),
        (Method::GET, "/reset/%FF".into(), None, vec![]),
        (
            Method::POST,
            "/reset/%FF".into(),
            Some((form, b"password=a".to_vec())),
            vec![],
        ),
        (Method::GET, "/saml/slo/continue/%FF".into(), None, vec![]),
        (Method::GET, "/saml/slo/done/%FF".into(), None, vec![]),
        (
            Method::POST,
            "/saml/init/%FF".into(),
            Some((form, b"csrf=a".to_vec())),
            vec![],
        ),
        (
            Method::POST,
            "/account/factors/%FF/rename".into(),
            Some((form, b"name=a".to_vec())),
            vec![],
        ),
        (
            Method::POST,
            "/webauthn/credentials/%FF".into(),
            Some((json, b"{}".to_vec())),
            vec![],
        ),
        (Method::GET, "/admin/users/%FF".into(), None, vec![]),
        (
            Method::GET,
            "/api/v1/users/%FF".into(),
            None,
            vec![("authorization", "Bearer x".into())],
        ),
        (
            Method::GET,
            "/scim/v2/Users/%FF".into(),
            None,
            vec![("authorization", "Bearer x".into())],
        ),
        (
            Method::GET,
            format!("/invite/{}", "t".repeat(10_000)),
            None,
            vec![],
        ),
        (
            Method::POST,
            "/invite/x".into(),
            Some((form, b"password=a".to_vec())),
            vec![],
        ),
        (
            Method::GET,
            format!("/reset/{}", "t".repeat(10_000)),
            None,
            vec![],
        ),
        (
            Method::POST,
            "/reset".into(),
            Some((form, b"name=a".to_vec())),
            vec![],
        ),
        (
            Method::POST,
            "/webauthn/login/start".into(),
            Some((json, big.clone().into_bytes())),
            vec![],
        ),
        (
            Method::POST,
            "/webauthn/login/finish".into(),
            Some((json, b"{\"handle\":1}".to_vec())),
            vec![],
        ),
        (
            Method::GET,
            "/static/..%2F..%2Fetc%2Fpasswd".into(),
            None,
            vec![],
        ),
        (
            Method::GET,
            "/portal".into(),
            None,
            vec![(
                "cookie",
                format!("latchkey_session={}", "s".repeat(16 * 1024)),
            )],
        ),
        (
            Method::GET,
            "/portal".into(),
            None,
            vec![("cookie", "latchkey_session=a; ".repeat(500))],
        ),
        (
            Method::GET,
            "/api/v1/users".into(),
            None,
            vec![("authorization", "Bearer lk_nope".into())],
        ),
        (
            Method::GET,
            "/api/v1/users".into(),
            None,
            vec![("authorization", format!("Bearer lk_{}", "a".repeat(80)))],
        ),
        (
            Method::POST,
            "/api/v1/users".into(),
            Some((json, big.clone().into_bytes())),
            vec![("authorization", "Bearer x".into())],
        ),
        (
            Method::GET,
            "/scim/v2/Users".into(),
            None,
            vec![("authorization", "Bearer x".into())],
        ),
        (
            Method::POST,
            "/scim/v2/Users".into(),
            Some(("application/scim+json", big.clone().into_bytes())),
            vec![],
        ),
    ];
    let mut unclear = Vec::new();
    for (method, uri, body, headers) in cases {
        let mut request = Request::builder().method(method.clone()).uri(uri.as_str());
        for (name, value) in &headers {
            request = request.header(*name, value.as_str());
        }
        let request = match body {
            Some((content_type, bytes)) => request
                .header(header::CONTENT_TYPE, content_type)
                .body(Body::from(bytes)),
            None => request.body(Body::empty()),
        }
        .unwrap();
        let response = tower::ServiceExt::oneshot(idp.router.clone(), request)
            .await
            .unwrap();
        let status = response.status();
        let text = body_text(response).await;
        let shown: String = uri.chars().take(60).collect();
        let clear = status.is_client_error() || status.is_redirection() || status == StatusCode::OK;
        let coded = !status.is_client_error()
            || ["Error code", "\"code\"", "\"status\""]
                .iter()
                .any(|marker| text.contains(marker));
        if !(clear && coded) {
            unclear.push(format!("{method} {shown}: {status} {text:.200}"));
        }
    }
    assert!(unclear.is_empty(), "{unclear:#?}");

    // With passkeys off, their endpoints are not there: 404, not a server fault.
    let off = super::support::idp().await;
    let mut b = Browser::new(&off);
    for uri in ["/webauthn/login/start", "/webauthn/login/finish"] {
        let page = b
            .send(
                Request::post(uri)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from("{\"handle\":1}"))
                    .unwrap(),
            )
            .await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{uri}: {}", page.body);
        assert_eq!(page.error_code(), Some("WEB-NOT-FOUND"), "{uri}");
    }
}

/// What a parked request holds is bounded: an AuthnRequest anyone can send (unsigned, for an
/// application that does not require signing) with a 20,000-character ID, or subject, would
/// otherwise be held as it is, a parked row and a replay record tens of KiB each, under
/// caps counted in rows. It is refused 413 `SSO-DECODE`, nothing parked or recorded; its
/// ID, resent short, parks as usual.
#[tokio::test]
async fn an_authn_request_too_large_to_hold_is_refused_before_it_is_parked() {
    use latchkey_saml::authn_request::RequestedSubject;
    // One place per network: were either refused request parked, the last would be 429.
    let idp = idp_with(|c| {
        c.trust_forwarded_for = true;
        c.parked_per_network = 1;
    })
    .await;
    let mut b = Browser::new(&idp);
    b.address = Some("203.0.113.70".into());
    let mut long_id = authn_request(SP);
    long_id.id = format!("_{}", "a".repeat(20_000));
    let mut long_subject = authn_request(SP);
    long_subject.subject = Some(RequestedSubject::NameId(latchkey_saml::assertion::NameId {
        value: format!("{}@example.org", "a".repeat(20_000)),
        format: None,
        name_qualifier: None,
        sp_name_qualifier: None,
    }));
    for request in [&long_id, &long_subject] {
        let page = b.get(&redirect_uri(request, None)).await;
        assert_eq!(page.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", page.body);
        assert_eq!(page.error_code(), Some("SSO-DECODE"));
    }
    let page = b.get(&redirect_uri(&authn_request(SP), None)).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
}

/// A form past the route's body limit says so: 413 `WEB-TOO-LARGE`, not a malformed form;
/// a body that is not a form is still 400 `WEB-FORM`.
#[tokio::test]
async fn a_form_past_the_body_limit_is_too_large_not_malformed() {
    use axum::body::Body;
    use axum::http::Request;
    let idp = super::support::idp().await;
    let mut b = Browser::new(&idp);
    let post = |content_type: &str, body: Vec<u8>| {
        Request::post("/login")
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .unwrap()
    };
    let form = "application/x-www-form-urlencoded";
    let big = format!("username=a&password={}", "A".repeat(300 * 1024));
    let page = b.send(post(form, big.into_bytes())).await;
    assert_eq!(page.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", page.body);
    assert_eq!(page.error_code(), Some("WEB-TOO-LARGE"));
    let page = b.send(post("text/plain", b"username=a".to_vec())).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert_eq!(page.error_code(), Some("WEB-FORM"));
}
