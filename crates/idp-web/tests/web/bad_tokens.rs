//! Wrong bearer tokens, throttled per client network on both surfaces that take one (the
//! admin API and `/scim/v2`): past `[server] bad_tokens_per_network` the network's requests
//! are refused (429, `Retry-After`) before their token is looked up, until the window has
//! passed; other networks are not held up; a burst gets no more than the limit looked up.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode, header};
use latchkey_idp::config::ServerSettings;
use latchkey_idp::config::server::ServerConfig;
use latchkey_idp::tokens::{ApiTokens, TokenScope};
use latchkey_idp::{Actor, ManualClock};
use latchkey_idp_web::Metrics;
use latchkey_idp_web::api::{self, ApiState};
use latchkey_idp_web::bearer::BearerGuard;
use serde_json::Value;
use time::Duration;
use tower::ServiceExt;

use crate::support::TestStore;

crate::on_both_backends!(
    wrong_api_tokens_from_one_network_are_refused_unread_until_the_window_passes,
    wrong_scim_tokens_from_one_network_are_refused_unread_until_the_window_passes,
    a_burst_of_wrong_tokens_gets_no_more_than_the_limit_looked_up,
    a_known_good_token_is_still_checked_and_forgotten_once_revoked,
);

const GUESSER: &str = "198.51.100.7";
const OTHER: &str = "192.0.2.1";
const WINDOW_SECONDS: u32 = 60;

struct Door {
    router: Router,
    clock: ManualClock,
    metrics: Metrics,
    api_token: String,
    scim_token: String,
    _t: TestStore,
}

/// Both surfaces on one store under a manual clock, wrong tokens limited to `limit` a
/// network per minute, the refusals counted in `metrics`.
async fn door(t: TestStore, limit: u32) -> Door {
    let clock = ManualClock::starting_now();
    let store = t.store.clone().with_clock(clock.clone());
    let tokens = ApiTokens::new(&store);
    let (_, api) = tokens
        .create(&Actor::cli("tester"), "terraform")
        .await
        .unwrap();
    let (_, scim) = tokens
        .create_scoped(&Actor::cli("tester"), "hr-feed", TokenScope::Scim)
        .await
        .unwrap();
    let settings = ServerSettings::check(ServerConfig {
        bad_tokens_per_network: limit,
        bad_tokens_window_seconds: WINDOW_SECONDS,
        ..ServerConfig::default()
    })
    .unwrap();
    let guard = BearerGuard::new(&settings);
    let metrics = Metrics::default();
    metrics.count_bearer(guard.stats());
    let router =
        latchkey_idp_web::scim::router_with(store.clone(), "https://idp.test", guard.clone())
            .merge(api::router(ApiState::new(store).with_bearer_guard(guard)));
    Door {
        router,
        clock,
        metrics,
        api_token: api.expose().to_owned(),
        scim_token: scim.expose().to_owned(),
        _t: t,
    }
}

/// `token` with its last character changed: well-formed, found by its id, wrong secret.
fn wrong(token: &str) -> String {
    let last = if token.ends_with('0') { '1' } else { '0' };
    format!("{}{last}", &token[..token.len() - 1])
}

async fn send(
    router: &Router,
    uri: &str,
    token: &str,
    from: &str,
) -> (StatusCode, HeaderMap, Value) {
    let mut req = Request::get(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let peer = SocketAddr::new(from.parse().unwrap(), 40_000);
    req.extensions_mut().insert(ConnectInfo(peer));
    let resp = router.clone().oneshot(req).await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, body)
}

fn retry_after(headers: &HeaderMap) -> i64 {
    headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn counted(d: &Door, surface: &str, reason: &str) -> u64 {
    let series = format!(
        "latchkey_bearer_tokens_refused_total{{surface=\"{surface}\",reason=\"{reason}\"}} "
    );
    let text = d.metrics.render();
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
        .parse()
        .unwrap()
}

/// The path both scenarios run on one surface: three wrong tokens are looked up and
/// refused 401; the fourth request, even with the right token, is 429 unread; another
/// network's right token still goes through; after the window the network's right token
/// does too, and its next wrong ones count afresh.
async fn scenario(d: &Door, surface: &str, uri: &str, right: &str, throttled: impl Fn(&Value)) {
    for bad in [wrong(right), "lk_nonsense".to_owned(), wrong(right)] {
        let (status, _, _) = send(&d.router, uri, &bad, GUESSER).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{surface}: {bad}");
    }
    // The right token is not even looked up: the network is refused whatever it sends.
    let (status, headers, body) = send(&d.router, uri, right, GUESSER).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{surface}: {body}");
    let wait = retry_after(&headers);
    assert!((1..=i64::from(WINDOW_SECONDS)).contains(&wait), "{wait}");
    throttled(&body);
    // Another address of the same IPv4 network is another network; its right token works.
    let (status, _, body) = send(&d.router, uri, right, OTHER).await;
    assert_eq!(status, StatusCode::OK, "{surface}: {body}");
    assert_eq!(counted(d, surface, "wrong"), 3);
    assert_eq!(counted(d, surface, "throttled"), 1);

    // Having worked, the right token is known good: it goes through from the refused
    // network too (a guesser beside an integration cannot shut it out), while a wrong one
    // is still refused unread until the window ends, and looked up (401) once it has.
    let (status, _, body) = send(&d.router, uri, right, GUESSER).await;
    assert_eq!(status, StatusCode::OK, "{surface}: {body}");
    d.clock.advance(Duration::seconds(wait - 1));
    let (status, _, _) = send(&d.router, uri, &wrong(right), GUESSER).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{surface}");
    d.clock.advance(Duration::seconds(1));
    let (status, _, _) = send(&d.router, uri, &wrong(right), GUESSER).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{surface}");
    assert_eq!(counted(d, surface, "wrong"), 4);
    assert_eq!(counted(d, surface, "throttled"), 2);
}

/// A known-good token is still checked on every request: revoked, it is refused at once,
/// and from then on it takes the network's slot like any wrong token. Its mark lasts
/// `KNOWN_GOOD_FOR`: after that, a token that works takes (and gives back) a slot again.
async fn a_known_good_token_is_still_checked_and_forgotten_once_revoked(t: TestStore) {
    let d = door(t, 3).await;
    let uri = "/api/v1/users";
    let right = d.api_token.clone();
    let (status, _, body) = send(&d.router, uri, &right, GUESSER).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Three wrong tokens fill the network's slots; the known token still goes through.
    for _ in 0..3 {
        let (status, _, _) = send(&d.router, uri, &wrong(&right), GUESSER).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _, body) = send(&d.router, uri, &right, GUESSER).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Past its mark's life it takes a slot again: once wrong ones fill the network's
    // slots (the window after the first has passed), it is refused unread with them.
    d.clock
        .advance(latchkey_idp_web::bearer::KNOWN_GOOD_FOR + Duration::seconds(1));
    for _ in 0..3 {
        let (status, _, _) = send(&d.router, uri, &wrong(&right), GUESSER).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _, _) = send(&d.router, uri, &right, GUESSER).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // From another network it works (and is known again); revoked, it is refused at once,
    // then counted as wrong: the network's slots fill and it is refused unread.
    let (status, _, body) = send(&d.router, uri, &right, OTHER).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    ApiTokens::new(&d._t.store)
        .revoke(&Actor::cli("tester"), "terraform")
        .await
        .unwrap();
    let (status, _, _) = send(&d.router, uri, &right, OTHER).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "revoked, refused at once");
    for _ in 0..3 {
        let (status, _, _) = send(&d.router, uri, &right, OTHER).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _, _) = send(&d.router, uri, &right, OTHER).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "forgotten: it takes slots"
    );
}

async fn wrong_api_tokens_from_one_network_are_refused_unread_until_the_window_passes(
    t: TestStore,
) {
    let d = door(t, 3).await;
    let right = d.api_token.clone();
    scenario(&d, "api", "/api/v1/users", &right, |body| {
        assert_eq!(body["error"], "throttled", "{body}");
    })
    .await;
    assert_eq!(counted(&d, "scim", "wrong"), 0);
}

async fn wrong_scim_tokens_from_one_network_are_refused_unread_until_the_window_passes(
    t: TestStore,
) {
    let d = door(t, 3).await;
    let right = d.scim_token.clone();
    scenario(&d, "scim", "/scim/v2/Users", &right, |body| {
        assert_eq!(body["status"], "429", "{body}");
    })
    .await;
    assert_eq!(counted(&d, "api", "wrong"), 0);
}

/// 40 wrong tokens at once from one network, half to each surface, against a limit of 10:
/// each request takes its slot in one atomic statement before its token is looked up, so
/// exactly 10 are looked up (401) and 30 refused unread (429), whichever surface they hit.
async fn a_burst_of_wrong_tokens_gets_no_more_than_the_limit_looked_up(t: TestStore) {
    let d = door(t, 10).await;
    let mut burst = tokio::task::JoinSet::new();
    for i in 0..40 {
        let router = d.router.clone();
        let (uri, token) = if i % 2 == 0 {
            ("/api/v1/users", wrong(&d.api_token))
        } else {
            ("/scim/v2/Users", wrong(&d.scim_token))
        };
        burst.spawn(async move { send(&router, uri, &token, GUESSER).await.0 });
    }
    let (mut looked_up, mut refused) = (0, 0);
    while let Some(status) = burst.join_next().await {
        match status.unwrap() {
            StatusCode::UNAUTHORIZED => looked_up += 1,
            StatusCode::TOO_MANY_REQUESTS => refused += 1,
            other => panic!("{other}"),
        }
    }
    assert_eq!((looked_up, refused), (10, 30));
    let wrong_total = counted(&d, "api", "wrong") + counted(&d, "scim", "wrong");
    let throttled_total = counted(&d, "api", "throttled") + counted(&d, "scim", "throttled");
    assert_eq!((wrong_total, throttled_total), (10, 30));
    // The right token from another network is not held up by the burst.
    let (status, _, body) = send(&d.router, "/api/v1/users", &d.api_token, OTHER).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
