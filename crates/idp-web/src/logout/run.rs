//! Telling a logout's applications, all at once, one hidden frame each.
//!
//! Once the IdP session has ended, every other application of the session with a
//! front-channel endpoint becomes a *hop*: a record parked under its own fresh key. The
//! browser gets one page with a frame per hop (`/saml/slo/frame/{key}`), which sends that
//! application its LogoutRequest with the key as RelayState; the application's answer
//! comes back to `/saml/slo` inside the same frame and records the hop's outcome under the
//! key. The page moves on to `/saml/slo/done/{run}` after [`FRAME_WAIT_SECONDS`] (a
//! `Refresh` header: no script needed), or earlier once a static script sees every frame
//! back on our status page. The done page reads each hop's records: confirmed, failed
//! (answered, but not a trusted success), no answer (asked, never came back: down, an
//! error page, too slow) or not reached (its frame never loaded). So an application that
//! is down or broken holds up no other one, which the old one-hop-at-a-time chain did.
//!
//! The frames' application pages load in a cross-site frame, where an application's
//! `SameSite` cookies do not come along: an application must find the session from the
//! request's NameID and SessionIndex (Shibboleth, mellon and our toolkit do), and one that
//! refuses to be framed is listed as not answering.
//!
//! # Security
//! * The page's CSP lets frames load only from ourselves and the origins of *these*
//!   applications' logout endpoints; every other page keeps `frame-src 'none'`. Only our
//!   frame and status pages may be framed, and only by ourselves (`frame-ancestors 'self'`).
//! * Every record is taken when used: a frame asks once, an answer counts once, a done page
//!   shows once, and what is left is taken there, so a late answer changes nothing.
//! * Keys are 256-bit random capabilities stored hashed per kind; a hop's key names
//!   nothing but that hop.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use latchkey_idp::apps::{Application, Binding, Endpoint};
use latchkey_idp::audit::Actor;
use latchkey_idp::error::Error;
use latchkey_idp::ids::AppId;
use latchkey_idp::session::{ParkOwner, Parkable, SessionApp, fresh_token};
use latchkey_idp::sso::SsoError;
use latchkey_idp::sso::logout as checks;
use latchkey_idp::sso::request::REQUEST_LIMITS;
use latchkey_saml::assertion::{NameId, name_id_format};
use latchkey_saml::binding::{MessageKind, redirect};
use latchkey_saml::inbound::Inbound;
use latchkey_saml::logout::{LogoutRequest, LogoutResponse, reason};
use latchkey_saml::status::{Status, code};
use latchkey_xmlsec::dsig::{self, SignOptions};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::super::html::render;
use super::super::login::continue_key;
use super::super::pages::{LogoutDonePage, LogoutFramesPage, LogoutStatusPage, OutcomeGroup};
use super::super::{WebError, WebState};

/// The most applications one logout tells: a bound on the page even if the session table
/// were to hold something absurd.
const MAX_CHAIN: usize = 64;

/// How long the page waits for the frames before moving on by itself. Applications answer
/// a LogoutRequest in well under a second; one that takes longer is listed as not
/// answering rather than holding the user.
pub const FRAME_WAIT_SECONDS: u32 = 5;

/// The script that moves the page on once every frame is back (served from
/// `/static/logout.js`, so the page's CSP allows `'self'` scripts and nothing inline).
const SCRIPT: &str = "\
(function () {\n\
  var done = document.getElementById('slo-done');\n\
  if (!done) { return; }\n\
  var frames = document.querySelectorAll('iframe[data-slo]');\n\
  function back(f) {\n\
    try {\n\
      var d = f.contentDocument;\n\
      return !!(d && d.querySelector('meta[name=\"latchkey-slo\"]'));\n\
    } catch (e) { return false; }\n\
  }\n\
  var timer = setInterval(function () {\n\
    for (var i = 0; i < frames.length; i++) { if (!back(frames[i])) { return; } }\n\
    clearInterval(timer);\n\
    window.location.replace(done.href);\n\
  }, 250);\n\
})();\n";

/// A logout about to be told to the session's applications.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LogoutChain {
    /// The SessionIndex of the ended session.
    pub session_index: String,
    /// The applications to tell (each at most once).
    pub remaining: Vec<ChainEntry>,
    /// Whether the browser's IdP session was ended by this logout.
    pub session_ended: bool,
    /// Applications already signed out (the initiator), for the final page.
    pub signed_out: Vec<String>,
    /// The application that asked for the logout (SP-initiated), answered last.
    pub initiator: Option<Initiator>,
}

/// One application of a logout.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChainEntry {
    /// The application.
    pub app: AppId,
    /// The NameID it was given.
    pub name_id: String,
    /// That NameID's format.
    pub name_id_format: String,
}

/// The application whose LogoutRequest started the logout.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Initiator {
    /// The application.
    pub app: AppId,
    /// Its request's ID, echoed as InResponseTo.
    pub request_id: String,
    /// Its RelayState, returned untouched.
    pub relay_state: Option<String>,
}

impl LogoutChain {
    /// A logout of the applications a session signed in to, once that session has ended.
    pub fn new(session_index: String, apps: Vec<SessionApp>) -> Self {
        let mut remaining: Vec<ChainEntry> = Vec::new();
        for a in apps {
            if remaining.len() < MAX_CHAIN && !remaining.iter().any(|e| e.app == a.app) {
                remaining.push(ChainEntry {
                    app: a.app,
                    name_id: a.name_id,
                    name_id_format: a.name_id_format,
                });
            }
        }
        LogoutChain {
            session_index,
            remaining,
            session_ended: true,
            ..LogoutChain::default()
        }
    }
}

/// A logout whose frames are out, parked until its done page.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LogoutRun {
    session_ended: bool,
    initiator: Option<Initiator>,
    signed_out: Vec<String>,
    without_slo: Vec<String>,
    hops: Vec<HopRef>,
}

impl Parkable for LogoutRun {
    const KIND: &'static str = "slo-run";
}

/// A hop as the run knows it: the application's name and the hop's key.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct HopRef {
    name: String,
    key: String,
}

/// A hop not yet asked: what its LogoutRequest will say.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Hop {
    app: AppId,
    name: String,
    name_id: String,
    name_id_format: String,
    session_index: String,
}

impl Parkable for Hop {
    const KIND: &'static str = "slo-hop";
}

/// A hop asked, waiting for the answer to `request_id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct HopSent {
    app: AppId,
    name: String,
    request_id: String,
}

impl Parkable for HopSent {
    const KIND: &'static str = "slo-sent";
}

/// A hop answered.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct HopOutcome {
    confirmed: bool,
}

impl Parkable for HopOutcome {
    const KIND: &'static str = "slo-outcome";
}

/// What became of one application, on the final page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Confirmed,
    Failed,
    NoAnswer,
    NotReached,
}

/// The registered single-logout endpoint, if it is one we can use from the browser.
fn front_channel(app: &Application) -> Option<&Endpoint> {
    app.settings
        .slo
        .as_ref()
        .filter(|e| matches!(e.binding, Binding::HttpRedirect | Binding::HttpPost))
}

/// Starts telling the logout's applications: the frames page, or, when there is no one to
/// tell, the end of the logout at once.
/// The run takes its place among the parked first (counted against `owner`), and only then
/// are its hops parked under their keys, so a refused run leaves nothing behind.
pub(crate) async fn next(
    state: &WebState,
    chain: LogoutChain,
    owner: &ParkOwner,
) -> Result<Response, WebError> {
    let now = state.store().now();
    let parked = state.parked();
    let initiator = chain.initiator.as_ref().map(|i| i.app);
    let mut run = LogoutRun {
        session_ended: chain.session_ended,
        initiator: chain.initiator,
        signed_out: chain.signed_out,
        without_slo: Vec::new(),
        hops: Vec::new(),
    };
    let mut origins: Vec<String> = Vec::new();
    let mut parked_hops = Vec::new();
    for entry in chain.remaining {
        if Some(entry.app) == initiator {
            continue;
        }
        let app = match state.store().apps().get(entry.app).await {
            Ok(app) => app,
            Err(Error::UnknownApplication { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        let Some(endpoint) = front_channel(&app) else {
            run.without_slo.push(app.settings.name.clone());
            continue;
        };
        if let Ok(url) = url::Url::parse(&endpoint.url) {
            let origin = url.origin().ascii_serialization();
            if url.origin().is_tuple() && !origins.contains(&origin) {
                origins.push(origin);
            }
        }
        let key = fresh_token();
        let hop = Hop {
            app: app.id,
            name: app.settings.name.clone(),
            name_id: entry.name_id,
            name_id_format: entry.name_id_format,
            session_index: chain.session_index.clone(),
        };
        run.hops.push(HopRef {
            name: hop.name.clone(),
            key: key.to_string(),
        });
        parked_hops.push((key, hop));
    }
    if run.hops.is_empty() {
        return finish(state, run, Vec::new()).await;
    }
    let run_key = parked.park(&run, owner, now).await?;
    for (key, hop) in &parked_hops {
        parked.park_under(key, hop, now).await?;
    }
    frames_page(&run_key, &run.hops, &origins)
}

/// The page with one frame per application.
fn frames_page(run_key: &str, hops: &[HopRef], origins: &[String]) -> Result<Response, WebError> {
    let done = format!("/saml/slo/done/{run_key}");
    let html = render(&LogoutFramesPage {
        title: "Signing out",
        hops: hops
            .iter()
            .map(|h| (h.name.as_str(), h.key.as_str()))
            .collect(),
        done: &done,
        wait_seconds: FRAME_WAIT_SECONDS,
    })?;
    let frames = std::iter::once("'self'".to_owned())
        .chain(origins.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; \
         frame-src {frames}; child-src {frames}; form-action 'self'; frame-ancestors 'none'; \
         base-uri 'none'"
    );
    let mut response = html.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_str(&csp).map_err(|e| build(e.to_string()))?,
    );
    headers.insert(
        header::REFRESH,
        HeaderValue::from_str(&format!("{FRAME_WAIT_SECONDS};url={done}"))
            .map_err(|e| build(e.to_string()))?,
    );
    Ok(response)
}

/// GET /static/logout.js
pub async fn slo_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        SCRIPT,
    )
        .into_response()
}

/// GET /saml/slo/frame/{key}: one application's LogoutRequest, inside its frame.
pub async fn slo_frame(
    State(state): State<WebState>,
    key: Result<Path<String>, PathRejection>,
) -> Response {
    let key = key.ok().and_then(|Path(k)| continue_key(Some(&k)));
    let Some(key) = key else {
        return status_page(None, "This sign-out request is no longer known.");
    };
    match ask(&state, &key).await {
        Ok(response) => frameable(response),
        Err(e) => {
            tracing::warn!(error = %e, "single logout: an application could not be asked");
            status_page(None, "This application could not be asked to sign you out.")
        }
    }
}

/// Sends the hop under `key` its LogoutRequest, once.
async fn ask(state: &WebState, key: &str) -> Result<Response, WebError> {
    let now = state.store().now();
    let parked = state.parked();
    let Some((hop, _)) = parked.peek::<Hop>(key, now).await? else {
        return Ok(status_page(None, "This application was already asked."));
    };
    if !parked.take::<Hop>(key).await? {
        return Ok(status_page(None, "This application was already asked."));
    }
    let app = state.store().apps().get(hop.app).await?;
    let Some(endpoint) = front_channel(&app).cloned() else {
        return Ok(status_page(
            Some(&hop.name),
            "no longer has a single-logout endpoint.",
        ));
    };
    let mut name_id = NameId::new(hop.name_id.clone(), &hop.name_id_format);
    if hop.name_id_format == name_id_format::PERSISTENT
        || hop.name_id_format == name_id_format::TRANSIENT
    {
        name_id.name_qualifier = Some(state.settings().entity_id.clone());
        name_id.sp_name_qualifier = Some(app.settings.entity_id.clone());
    }
    let request = LogoutRequest {
        id: latchkey_saml::ids::new_id().map_err(saml_build)?,
        issue_instant: now,
        destination: Some(endpoint.url.clone()),
        issuer: Some(state.settings().entity_id.clone()),
        name_id,
        session_indexes: vec![hop.session_index.clone()],
        not_on_or_after: Some(now + time::Duration::minutes(5)),
        reason: Some(reason::USER.into()),
    };
    let sent = HopSent {
        app: app.id,
        name: hop.name,
        request_id: request.id.clone(),
    };
    parked.park_under(key, &sent, now).await?;
    tracing::info!(app = %app.settings.entity_id, "single logout: asking the application");
    let xml = request.to_xml().map_err(saml_build)?;
    send(
        state,
        &endpoint,
        MessageKind::Request,
        &xml,
        &request.id,
        Some(key),
    )
}

/// Lets our frame page (an auto-POST) be framed by our own frames page, and nothing else.
fn frameable(mut response: Response) -> Response {
    let headers = response.headers_mut();
    if let Some(csp) = headers
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.replace("frame-ancestors 'none'", "frame-ancestors 'self'"))
        && let Ok(v) = HeaderValue::from_str(&csp)
    {
        headers.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    headers.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    response
}

/// The small page a frame ends on: what became of one application. Its marker tells the
/// frames page's script that this frame is back.
fn status_page(name: Option<&str>, text: &str) -> Response {
    let page = render(&LogoutStatusPage {
        title: "Sign-out",
        name,
        text,
    });
    frameable_page(page.into_response())
}

fn frameable_page(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; frame-ancestors 'self'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    response
}

/// An application's LogoutResponse (in its frame): the hop named by RelayState records
/// whether it is a trusted success.
pub(super) async fn on_response(state: &WebState, message: &Inbound) -> Result<Response, WebError> {
    let Some(key) = continue_key(message.relay_state()) else {
        return Ok(status_page(None, "This sign-out answer was not expected."));
    };
    let now = state.store().now();
    let parked = state.parked();
    let Some((sent, _)) = parked.peek::<HopSent>(&key, now).await? else {
        return Ok(status_page(
            None,
            "This sign-out answer was not expected, or came too late.",
        ));
    };
    if !parked.take::<HopSent>(&key).await? {
        return Ok(status_page(
            None,
            "This sign-out answer was already counted.",
        ));
    }
    let verdict = match state.store().apps().get(sent.app).await {
        Ok(app) => checks::check_response(state.settings(), &app, message, &sent.request_id, now),
        Err(e) => Err(e.to_string()),
    };
    let confirmed = match verdict {
        Ok(confirmed) => confirmed,
        Err(refusal) => {
            tracing::warn!(
                code = latchkey_idp::error::PageCode::SloResponseRefused.as_str(),
                app = %sent.app,
                reason = %refusal,
                "single logout: an application's LogoutResponse was not trusted"
            );
            state
                .metrics()
                .failure(latchkey_idp::error::PageCode::SloResponseRefused);
            state
                .audit(
                    &Actor::new(format!("app:{}", sent.app)),
                    "logout.response_refused",
                    "app",
                    sent.app.to_string(),
                    sent.name.clone(),
                    json!({ "reason": refusal, "in_response_to": sent.request_id }),
                )
                .await?;
            false
        }
    };
    parked
        .park_under(&key, &HopOutcome { confirmed }, now)
        .await?;
    Ok(status_page(
        Some(&sent.name),
        if confirmed {
            "signed you out."
        } else {
            "did not confirm the sign-out."
        },
    ))
}

/// GET /saml/slo/done/{run}: what became of each application, then the end of the logout.
pub async fn slo_done(
    State(state): State<WebState>,
    key: Result<Path<String>, PathRejection>,
) -> Result<Response, WebError> {
    let key = key.ok().and_then(|Path(k)| continue_key(Some(&k)));
    let Some(key) = key else {
        return Ok(signed_out_page(&LogoutChain::default()));
    };
    let now = state.store().now();
    let parked = state.parked();
    let Some((run, _)) = parked.peek::<LogoutRun>(&key, now).await? else {
        return Ok(signed_out_page(&LogoutChain::default()));
    };
    if !parked.take::<LogoutRun>(&key).await? {
        return Ok(signed_out_page(&LogoutChain::default()));
    }
    let mut outcomes = Vec::with_capacity(run.hops.len());
    for hop in &run.hops {
        let outcome = match parked.peek::<HopOutcome>(&hop.key, now).await? {
            Some((o, _)) if o.confirmed => Outcome::Confirmed,
            Some(_) => Outcome::Failed,
            None if parked.peek::<Hop>(&hop.key, now).await?.is_some() => Outcome::NotReached,
            None => Outcome::NoAnswer,
        };
        // Whatever is left is taken: a late answer finds nothing to count.
        parked.take::<Hop>(&hop.key).await?;
        parked.take::<HopSent>(&hop.key).await?;
        parked.take::<HopOutcome>(&hop.key).await?;
        outcomes.push((hop.name.clone(), outcome));
    }
    let names = |wanted: Outcome| -> Vec<&str> {
        outcomes
            .iter()
            .filter(|(_, o)| *o == wanted)
            .map(|(n, _)| n.as_str())
            .collect()
    };
    state
        .audit(
            &Actor::system(),
            "logout.propagated",
            "session",
            String::new(),
            String::new(),
            json!({
                "initiator": run.initiator.as_ref().map(|i| i.app.to_string()),
                "confirmed": names(Outcome::Confirmed),
                "failed": names(Outcome::Failed),
                "no_answer": names(Outcome::NoAnswer),
                "not_reached": names(Outcome::NotReached),
                "without_slo": run.without_slo,
            }),
        )
        .await?;
    finish(&state, run, outcomes).await
}

fn build(e: String) -> WebError {
    WebError::Sso(SsoError::Build(e))
}

fn saml_build(e: latchkey_saml::Error) -> WebError {
    build(e.to_string())
}

/// Sends a logout message over the endpoint's binding, signed with the IdP's key (over the
/// query for Redirect, enveloped for POST).
fn send(
    state: &WebState,
    endpoint: &Endpoint,
    kind: MessageKind,
    xml: &str,
    id: &str,
    relay_state: Option<&str>,
) -> Result<Response, WebError> {
    let keys = state.keys().current().map_err(SsoError::from)?;
    if endpoint.binding == Binding::HttpPost {
        let signed = dsig::sign(
            xml,
            id,
            &keys.key,
            Some(&keys.certificate),
            &SignOptions::default(),
        )
        .map_err(|e| build(e.to_string()))?;
        return super::super::saml::auto_post(&endpoint.url, kind, &signed, relay_state);
    }
    let query = redirect::encode_signed(
        kind,
        xml,
        relay_state,
        &keys.key,
        keys.key.default_algorithm(),
        &REQUEST_LIMITS,
    )
    .map_err(saml_build)?;
    Ok(Redirect::to(&redirect::url(&endpoint.url, &query)).into_response())
}

/// The end of a logout: the initiator's LogoutResponse (PartialLogout unless every
/// application confirmed), or the signed-out page.
async fn finish(
    state: &WebState,
    run: LogoutRun,
    outcomes: Vec<(String, Outcome)>,
) -> Result<Response, WebError> {
    let page = || final_page(&run, &outcomes);
    let Some(initiator) = &run.initiator else {
        return Ok(page());
    };
    let app = match state.store().apps().get(initiator.app).await {
        Ok(app) => app,
        Err(Error::UnknownApplication { .. }) => return Ok(page()),
        Err(e) => return Err(e.into()),
    };
    let Some(endpoint) = front_channel(&app).cloned() else {
        return Ok(page());
    };
    let all_confirmed = outcomes.iter().all(|(_, o)| *o == Outcome::Confirmed);
    let status = if !run.session_ended {
        // Nothing the request named was found, so nothing was ended: not a Success.
        Status::failure(
            code::REQUESTER,
            Some(code::UNKNOWN_PRINCIPAL),
            Some("no session named by the request was found"),
        )
    } else if all_confirmed && run.without_slo.is_empty() {
        Status::success()
    } else {
        Status {
            code: code::SUCCESS.into(),
            sub_code: Some(code::PARTIAL_LOGOUT.into()),
            message: None,
        }
    };
    let answer = LogoutResponse {
        id: latchkey_saml::ids::new_id().map_err(saml_build)?,
        in_response_to: Some(initiator.request_id.clone()),
        issue_instant: state.store().now(),
        destination: Some(endpoint.url.clone()),
        issuer: Some(state.settings().entity_id.clone()),
        status,
    };
    let xml = answer.to_xml().map_err(saml_build)?;
    send(
        state,
        &endpoint,
        MessageKind::Response,
        &xml,
        &answer.id,
        initiator.relay_state.as_deref(),
    )
}

/// The page at the end of a logout with nothing to report (no session, or nothing to tell).
pub(crate) fn signed_out_page(chain: &LogoutChain) -> Response {
    let run = LogoutRun {
        session_ended: chain.session_ended,
        initiator: chain.initiator.clone(),
        signed_out: chain.signed_out.clone(),
        without_slo: Vec::new(),
        hops: Vec::new(),
    };
    final_page(&run, &[])
}

/// The page at the end of a logout: each application, and what became of it.
fn final_page(run: &LogoutRun, outcomes: &[(String, Outcome)]) -> Response {
    let of = |wanted: Outcome| -> Vec<&str> {
        outcomes
            .iter()
            .filter(|(_, o)| *o == wanted)
            .map(|(n, _)| n.as_str())
            .collect()
    };
    let signed_out = run
        .signed_out
        .iter()
        .map(String::as_str)
        .chain(of(Outcome::Confirmed))
        .collect();
    let group = |title, names| OutcomeGroup { title, names };
    render(&LogoutDonePage {
        title: "Signed out",
        ended: run.session_ended || run.initiator.is_none(),
        groups: vec![
            group("Signed out of:", signed_out),
            group(
                "These applications answered but did not confirm the sign-out:",
                of(Outcome::Failed),
            ),
            group("These applications did not answer:", of(Outcome::NoAnswer)),
            group(
                "These applications were not reached:",
                of(Outcome::NotReached),
            ),
            group(
                "These applications do not support single logout:",
                run.without_slo.iter().map(String::as_str).collect(),
            ),
        ],
    })
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_page_may_be_framed_by_us_only() {
        let framed = frameable(
            (
                [(
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
                )],
                "x",
            )
                .into_response(),
        );
        let csp = framed.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(csp.contains("frame-ancestors 'self'"), "{csp}");
        assert!(!csp.contains("'none';  "), "{csp}");
        assert_eq!(framed.headers()[header::X_FRAME_OPTIONS], "SAMEORIGIN");
    }
}
