//! The load generator: simulated browsers (a session or CSRF cookie each) that repeat one
//! flow against the server, and the latency statistics of a run.
//!
//! Each flow checks what a browser would get, so an error page never counts as a success:
//! SSO ends in a 200 auto-POST page carrying a `SAMLResponse`, a sign-in in a 303 setting the
//! session cookie.

use latchkey_idp::{Clock as _, SystemClock};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use latchkey_saml::authn_request::AuthnRequest;
use latchkey_saml::binding::{BindingLimits, MessageKind, redirect};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Client, StatusCode};

use super::server::{self, APP_ENTITY_ID, BenchServer};

/// What a client repeats.
#[derive(Debug, Clone, Copy)]
pub enum Flow {
    /// GET /saml/init/{app}, then the continuation.
    IdpInitiated,
    /// GET /saml/sso?SAMLRequest=<fresh AuthnRequest>, then the continuation.
    SpInitiated,
    /// POST /login with the right password.
    Login,
    /// POST /login, then POST /login/mfa with a fresh TOTP code (`[mfa] required`).
    LoginTotp,
}

impl Flow {
    /// Its name in a report.
    pub fn name(self) -> &'static str {
        match self {
            Flow::IdpInitiated => "idp-init",
            Flow::SpInitiated => "sp-init",
            Flow::Login => "login",
            Flow::LoginTotp => "login+totp",
        }
    }
}

/// One simulated browser.
#[derive(Clone)]
pub struct BenchClient {
    http: Client,
    base: String,
    app_id: String,
    /// The `Cookie` header it sends.
    cookie: String,
    /// The CSRF token for its login form, and the account it signs in as.
    login: Option<(String, String, String)>,
    /// For [`Flow::LoginTotp`]: the accounts with an authenticator app, shared by all.
    totp: Option<Arc<TotpAccounts>>,
}

/// Accounts with a TOTP app, shared by the clients. Each sign-in takes the next account and
/// a code for a step of it not used before (the IdP accepts a step once): the current one,
/// else the next (one step of skew). Enough accounts that none comes round twice within a
/// step keep every code fresh.
pub struct TotpAccounts {
    accounts: Vec<TotpAccount>,
    next: AtomicUsize,
}

/// One seeded account and its authenticator app (in [`TotpAccounts`], account number `i`
/// is at position `i`).
pub struct TotpAccount {
    /// The account's number (see [`server::username`]).
    pub index: usize,
    /// The app.
    pub app: totp_rs::TOTP,
    /// The last 30-second step whose code was used (enrolment uses one).
    pub last_step: AtomicI64,
}

impl TotpAccounts {
    /// Shared accounts.
    pub fn new(accounts: Vec<TotpAccount>) -> Arc<TotpAccounts> {
        Arc::new(TotpAccounts {
            accounts,
            next: AtomicUsize::new(0),
        })
    }

    /// The next account to sign in as (its position here is its number).
    fn next_account(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed) % self.accounts.len().max(1)
    }

    /// A code of account `who` for a step it has not used.
    fn code(&self, who: usize) -> anyhow::Result<String> {
        let Some(account) = self.accounts.get(who) else {
            bail!("no TOTP account {who}");
        };
        let now = SystemClock.now().unix_timestamp() / 30;
        let mut last = account.last_step.load(Ordering::Relaxed);
        let step = loop {
            let step = now.max(last + 1);
            if step > now + 1 {
                bail!(
                    "no fresh code for account {}: too few accounts (--users) for this rate",
                    account.index
                );
            }
            match account.last_step.compare_exchange(
                last,
                step,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break step,
                Err(seen) => last = seen,
            }
        };
        let at = u64::try_from(step * 30).unwrap_or(0);
        Ok(account.app.generate(at))
    }
}

/// The outcome of a run.
#[derive(Debug, Default)]
pub struct Stats {
    /// Latency of every successful flow, sorted.
    pub latencies: Vec<Duration>,
    /// Failed flows.
    pub errors: u64,
    /// The first failure, to say what went wrong.
    pub first_error: Option<String>,
    /// Wall time of the run.
    pub wall: Duration,
}

impl Stats {
    /// The `q` quantile (0..1) of the latencies; zero when there are none.
    pub fn percentile(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let last = self.latencies.len() - 1;
        let i = ((q * self.latencies.len() as f64) as usize).min(last);
        self.latencies.get(i).copied().unwrap_or_default()
    }
}

pub(super) fn http() -> anyhow::Result<Client> {
    Ok(Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()?)
}

/// The server to drive, the application to sign in to and the account to sign in as.
#[derive(Debug, Clone)]
pub struct Site {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The application's ID (`/saml/init/{app}`); its entity ID must be [`APP_ENTITY_ID`]
    /// for the SP-initiated flow.
    pub app_id: String,
    /// Login name.
    pub user: String,
    /// Its password.
    pub password: String,
}

/// `n` clients, each signed in (through the login form, as a browser) with its own session,
/// all as the site's account.
pub async fn sign_in_all(site: &Site, n: usize) -> anyhow::Result<Vec<BenchClient>> {
    let http = http()?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (csrf_cookie, token) = csrf(&http, &site.base).await?;
        let session = post_login(
            &http,
            &site.base,
            &csrf_cookie,
            &token,
            &site.user,
            &site.password,
        )
        .await
        .with_context(|| format!("signing in client {i}"))?;
        out.push(BenchClient {
            http: http.clone(),
            base: site.base.clone(),
            app_id: site.app_id.clone(),
            cookie: format!("latchkey_session={session}"),
            login: None,
            totp: None,
        });
    }
    Ok(out)
}

/// `n` clients holding a login form (CSRF cookie and token), signing in as the seeded
/// accounts in turn.
pub async fn login_clients(
    server: &BenchServer,
    n: usize,
    users: usize,
    totp: Option<Arc<TotpAccounts>>,
) -> anyhow::Result<Vec<BenchClient>> {
    let http = http()?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (csrf_cookie, token) = csrf(&http, server.base()).await?;
        let who = i % users.max(1);
        out.push(BenchClient {
            http: http.clone(),
            base: server.base().to_owned(),
            app_id: server.app_id().to_owned(),
            cookie: format!("latchkey_csrf={csrf_cookie}"),
            login: Some((token, server::username(who), server::password(who))),
            totp: totp.clone(),
        });
    }
    Ok(out)
}

/// A client per session token (sessions made outside HTTP).
pub fn with_sessions(server: &BenchServer, tokens: &[String]) -> anyhow::Result<Vec<BenchClient>> {
    let http = http()?;
    Ok(tokens
        .iter()
        .map(|t| BenchClient {
            http: http.clone(),
            base: server.base().to_owned(),
            app_id: server.app_id().to_owned(),
            cookie: format!("latchkey_session={t}"),
            login: None,
            totp: None,
        })
        .collect())
}

/// Every client repeats `flow` until `duration` has passed or `max` flows were started.
pub async fn drive(clients: &[BenchClient], flow: Flow, duration: Duration, max: u64) -> Stats {
    let started = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(clients.len());
    for c in clients {
        let c = c.clone();
        let started = started.clone();
        tasks.push(tokio::spawn(async move {
            let mut stats = Stats::default();
            while Instant::now() < deadline && started.fetch_add(1, Ordering::Relaxed) < max {
                let t = Instant::now();
                match c.once(flow).await {
                    Ok(()) => stats.latencies.push(t.elapsed()),
                    Err(e) => {
                        stats.errors += 1;
                        stats.first_error.get_or_insert_with(|| format!("{e:#}"));
                    }
                }
            }
            stats
        }));
    }
    let mut all = Stats::default();
    for t in tasks {
        match t.await {
            Ok(s) => merge(&mut all, s),
            Err(e) => {
                all.errors += 1;
                all.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    all.wall = start.elapsed();
    all.latencies.sort_unstable();
    all
}

/// Each client runs `flow` once, `concurrency` at a time.
pub async fn once_each(clients: &[BenchClient], flow: Flow, concurrency: usize) -> Stats {
    let mut all = Stats::default();
    let start = Instant::now();
    for chunk in clients.chunks(concurrency.max(1)) {
        let mut tasks = Vec::with_capacity(chunk.len());
        for c in chunk {
            let c = c.clone();
            tasks.push(tokio::spawn(async move {
                let t = Instant::now();
                c.once(flow).await.map(|()| t.elapsed())
            }));
        }
        for t in tasks {
            match t.await {
                Ok(Ok(d)) => all.latencies.push(d),
                Ok(Err(e)) => {
                    all.errors += 1;
                    all.first_error.get_or_insert_with(|| format!("{e:#}"));
                }
                Err(e) => {
                    all.errors += 1;
                    all.first_error.get_or_insert_with(|| e.to_string());
                }
            }
        }
    }
    all.wall = start.elapsed();
    all.latencies.sort_unstable();
    all
}

fn merge(all: &mut Stats, s: Stats) {
    all.latencies.extend(s.latencies);
    all.errors += s.errors;
    if all.first_error.is_none() {
        all.first_error = s.first_error;
    }
}

impl BenchClient {
    async fn once(&self, flow: Flow) -> anyhow::Result<()> {
        match flow {
            Flow::IdpInitiated => {
                let url = format!("{}/saml/init/{}", self.base, self.app_id);
                self.sso(&url, Some("same-origin")).await
            }
            Flow::SpInitiated => {
                let sso = format!("{}/saml/sso", self.base);
                let request = AuthnRequest::new(APP_ENTITY_ID, &sso, SystemClock.now())?;
                let query = redirect::encode(
                    MessageKind::Request,
                    &request.to_xml()?,
                    None,
                    &BindingLimits::default(),
                )?;
                self.sso(&format!("{sso}?{query}"), None).await
            }
            Flow::Login => {
                let Some((token, user, password)) = &self.login else {
                    bail!("this client has no login form");
                };
                post_login(
                    &self.http,
                    &self.base,
                    self.cookie_value(),
                    token,
                    user,
                    password,
                )
                .await
                .map(|_| ())
            }
            Flow::LoginTotp => {
                let (Some((token, _, _)), Some(accounts)) = (&self.login, &self.totp) else {
                    bail!("this client has no login form or no TOTP accounts");
                };
                let who = accounts.next_account();
                let csrf_cookie = self.cookie_value();
                let session = post_login(
                    &self.http,
                    &self.base,
                    csrf_cookie,
                    token,
                    &server::username(who),
                    &server::password(who),
                )
                .await?;
                // Only a password that got through spends a code.
                let code = accounts.code(who)?;
                let r = self
                    .http
                    .post(format!("{}/login/mfa", self.base))
                    .header(
                        COOKIE,
                        format!("latchkey_csrf={csrf_cookie}; latchkey_session={session}"),
                    )
                    .form(&[
                        ("csrf", token.as_str()),
                        ("method", "totp"),
                        ("code", &code),
                    ])
                    .send()
                    .await?;
                let to = r
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                if r.status() != StatusCode::SEE_OTHER || to != "/portal" {
                    bail!("POST /login/mfa answered {} (to {to:?})", r.status());
                }
                Ok(())
            }
        }
    }

    fn cookie_value(&self) -> &str {
        self.cookie.split_once('=').map_or("", |(_, v)| v)
    }

    /// The start URL answers the auto-POST page at once (a live session, no ForceAuthn),
    /// or 303 to the continuation, which answers it; both count as one flow.
    /// `fetch_site`: the `Sec-Fetch-Site` a browser would send (a portal tile click is
    /// `same-origin`; the IdP asks before launching from anywhere else).
    async fn sso(&self, start: &str, fetch_site: Option<&str>) -> anyhow::Result<()> {
        let mut request = self.http.get(start).header(COOKIE, &self.cookie);
        if let Some(site) = fetch_site {
            request = request.header("sec-fetch-site", site);
        }
        let r = request.send().await?;
        let r = match r.status() {
            StatusCode::OK => r,
            StatusCode::SEE_OTHER => {
                let next = r
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .context("303 without Location")?;
                if !next.starts_with("/saml/continue/") {
                    bail!("{start} sent the browser to {next}");
                }
                self.http
                    .get(format!("{}{next}", self.base))
                    .header(COOKIE, &self.cookie)
                    .send()
                    .await?
            }
            other => bail!("{start} answered {other}"),
        };
        let status = r.status();
        let body = r.text().await?;
        if status != StatusCode::OK || !body.contains("name=\"SAMLResponse\"") {
            bail!(
                "the sign-in answered {status} without a SAMLResponse form: {}",
                body.chars().take(200).collect::<String>()
            );
        }
        Ok(())
    }
}

/// GET /login: the anti-forgery cookie and the token repeated in the form.
async fn csrf(http: &Client, base: &str) -> anyhow::Result<(String, String)> {
    let r = http.get(format!("{base}/login")).send().await?;
    let cookie = set_cookie(&r, "latchkey_csrf").context("GET /login set no CSRF cookie")?;
    let body = r.text().await?;
    let token = form_token(&body).context("no CSRF token in the login form")?;
    Ok((cookie, token))
}

/// The value of the form's hidden `csrf` input.
fn form_token(body: &str) -> Option<String> {
    body.split_once("name=\"csrf\" value=\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(t, _)| t.to_owned())
}

/// POST /login; returns the new session token.
async fn post_login(
    http: &Client,
    base: &str,
    csrf_cookie: &str,
    token: &str,
    user: &str,
    password: &str,
) -> anyhow::Result<String> {
    let r = http
        .post(format!("{base}/login"))
        .header(COOKIE, format!("latchkey_csrf={csrf_cookie}"))
        .form(&[("csrf", token), ("username", user), ("password", password)])
        .send()
        .await?;
    if r.status() != StatusCode::SEE_OTHER {
        bail!("POST /login answered {}", r.status());
    }
    set_cookie(&r, "latchkey_session").context("POST /login set no session cookie")
}

fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers().get_all(SET_COOKIE).iter().find_map(|v| {
        let text = v.to_str().ok()?;
        let (pair, _) = text.split_once(';').unwrap_or((text, ""));
        let (k, v) = pair.split_once('=')?;
        (k.trim() == name).then(|| v.trim().to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_index_the_sorted_latencies() {
        let stats = Stats {
            latencies: (1..=100).map(Duration::from_millis).collect(),
            ..Stats::default()
        };
        assert_eq!(stats.percentile(0.50), Duration::from_millis(51));
        assert_eq!(stats.percentile(0.99), Duration::from_millis(100));
        assert_eq!(stats.percentile(1.0), Duration::from_millis(100));
        assert_eq!(Stats::default().percentile(0.99), Duration::ZERO);
    }

    #[test]
    fn a_totp_account_never_gets_a_step_twice() {
        let now = SystemClock.now().unix_timestamp() / 30;
        let app = totp_rs::TOTP::new_unchecked(
            totp_rs::Algorithm::SHA1,
            6,
            0,
            30,
            vec![7; 20],
            None,
            String::new(),
        );
        let expected = app.generate(u64::try_from((now + 1) * 30).unwrap());
        let accounts = TotpAccounts::new(vec![TotpAccount {
            index: 0,
            app,
            last_step: AtomicI64::new(now),
        }]);
        // Enrolment used the current step: the next one (one step of skew) is left, once.
        assert_eq!(accounts.code(0).unwrap(), expected);
        assert!(accounts.code(0).is_err());
        assert!(accounts.code(1).is_err());
        assert_eq!(accounts.next_account(), 0);
    }

    #[test]
    fn the_csrf_token_is_read_from_the_hidden_input() {
        let page = "<form method=\"post\" action=\"/login\">\n\
                    <input type=\"hidden\" name=\"csrf\" value=\"abc-_123\">\n";
        assert_eq!(form_token(page).as_deref(), Some("abc-_123"));
        assert_eq!(form_token("<form></form>"), None);
    }
}
