//! The Single Logout profile (SAML profiles §4.4): whether a LogoutRequest or
//! LogoutResponse from a peer may be acted on. Both sides (SP and IdP) use the same rules.
//!
//! # Security
//! The profile requires logout messages on the front-channel bindings to be signed
//! (§4.4.4.1, §4.4.4.2): otherwise anyone could end anyone's session. The caller verifies
//! the signature with the peer's keys (the binding decides how) and passes `signed`; an
//! unsigned message is refused here.

use time::{Duration, OffsetDateTime};

use crate::error::{Error, Result};
use crate::logout::{LogoutRequest, LogoutResponse};

/// Who we expect to hear from, and where.
#[derive(Debug, Clone)]
pub struct LogoutPeer {
    /// The peer's entity ID: the message's Issuer.
    pub entity_id: String,
    /// Our SingleLogoutService URLs: the message's Destination must be one of them.
    pub our_slo_urls: Vec<String>,
    /// Allowed clock difference (at most [`super::MAX_CLOCK_SKEW`]).
    pub clock_skew: Duration,
    /// How old a message may be (IssueInstant) when it arrives.
    pub max_age: Duration,
}

impl LogoutPeer {
    /// A peer with 60 s skew and a 5 minute maximum age.
    pub fn new(entity_id: impl Into<String>, our_slo_url: impl Into<String>) -> Self {
        Self {
            entity_id: entity_id.into(),
            our_slo_urls: vec![our_slo_url.into()],
            clock_skew: Duration::seconds(60),
            max_age: Duration::minutes(5),
        }
    }

    fn skew(&self) -> Duration {
        self.clock_skew.clamp(Duration::ZERO, super::MAX_CLOCK_SKEW)
    }

    fn check_common(
        &self,
        signed: bool,
        issuer: Option<&str>,
        destination: Option<&str>,
        issue_instant: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<()> {
        if !signed {
            return Err(Error::Unsigned);
        }
        if issuer != Some(self.entity_id.as_str()) {
            return Err(Error::LogoutIssuerMismatch {
                expected: self.entity_id.clone(),
                found: issuer.unwrap_or_default().to_owned(),
            });
        }
        // A signed front-channel message must carry its Destination (bindings §3.4.5.2).
        match destination {
            Some(d) if self.our_slo_urls.iter().any(|u| u == d) => {}
            other => {
                return Err(Error::LogoutDestinationMismatch {
                    found: other.unwrap_or_default().to_owned(),
                });
            }
        }
        let skew = self.skew();
        if issue_instant > now + skew {
            return Err(Error::LogoutNotYetValid);
        }
        if issue_instant + self.max_age + skew < now {
            return Err(Error::LogoutExpired);
        }
        Ok(())
    }

    /// Checks a LogoutRequest from this peer. On success the caller ends the sessions
    /// the request names (its NameID and SessionIndexes), after matching them against
    /// its own session records.
    pub fn check_request(
        &self,
        request: &LogoutRequest,
        signed: bool,
        now: OffsetDateTime,
    ) -> Result<()> {
        self.check_common(
            signed,
            request.issuer.as_deref(),
            request.destination.as_deref(),
            request.issue_instant,
            now,
        )?;
        if let Some(end) = request.not_on_or_after
            && now - self.skew() >= end
        {
            return Err(Error::LogoutExpired);
        }
        Ok(())
    }

    /// Checks a LogoutResponse from this peer to our request `request_id`. The status is
    /// returned in the response for the caller to report (Success or PartialLogout).
    pub fn check_response(
        &self,
        response: &LogoutResponse,
        request_id: &str,
        signed: bool,
        now: OffsetDateTime,
    ) -> Result<()> {
        self.check_common(
            signed,
            response.issuer.as_deref(),
            response.destination.as_deref(),
            response.issue_instant,
            now,
        )?;
        if response.in_response_to.as_deref() != Some(request_id) {
            return Err(Error::InResponseToMismatch {
                expected: Some(request_id.to_owned()),
                found: response.in_response_to.clone(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assertion::{NameId, name_id_format};
    use crate::status::Status;
    use time::macros::datetime;

    const IDP: &str = "https://idp.example.org";
    const SLO: &str = "https://sp.example.com/slo";
    const NOW: OffsetDateTime = datetime!(2026-11-28 14:00:00 UTC);

    fn request() -> LogoutRequest {
        LogoutRequest {
            id: "_l1".into(),
            issue_instant: NOW - Duration::seconds(5),
            destination: Some(SLO.into()),
            issuer: Some(IDP.into()),
            name_id: NameId::new("alice", name_id_format::PERSISTENT),
            session_indexes: vec!["_s1".into()],
            not_on_or_after: Some(NOW + Duration::minutes(1)),
            reason: None,
        }
    }

    fn response() -> LogoutResponse {
        LogoutResponse {
            id: "_lr1".into(),
            in_response_to: Some("_ours".into()),
            issue_instant: NOW - Duration::seconds(5),
            destination: Some(SLO.into()),
            issuer: Some(IDP.into()),
            status: Status::success(),
        }
    }

    fn peer() -> LogoutPeer {
        LogoutPeer::new(IDP, SLO)
    }

    #[test]
    fn valid_messages_pass() {
        assert_eq!(peer().check_request(&request(), true, NOW), Ok(()));
        assert_eq!(
            peer().check_response(&response(), "_ours", true, NOW),
            Ok(())
        );
    }

    #[test]
    fn must_be_signed() {
        assert_eq!(
            peer().check_request(&request(), false, NOW),
            Err(Error::Unsigned)
        );
        assert_eq!(
            peer().check_response(&response(), "_ours", false, NOW),
            Err(Error::Unsigned)
        );
    }

    #[test]
    fn issuer_and_destination() {
        let mut r = request();
        r.issuer = Some("https://evil.example".into());
        assert!(matches!(
            peer().check_request(&r, true, NOW),
            Err(Error::LogoutIssuerMismatch { .. })
        ));
        let mut r = request();
        r.destination = None;
        assert_eq!(
            peer().check_request(&r, true, NOW),
            Err(Error::LogoutDestinationMismatch {
                found: String::new()
            })
        );
    }

    #[test]
    fn time_rules() {
        let mut r = request();
        r.not_on_or_after = Some(NOW - Duration::seconds(61));
        assert_eq!(
            peer().check_request(&r, true, NOW),
            Err(Error::LogoutExpired)
        );
        let mut r = request();
        r.issue_instant = NOW - Duration::minutes(7);
        r.not_on_or_after = None;
        assert_eq!(
            peer().check_request(&r, true, NOW),
            Err(Error::LogoutExpired)
        );
        let mut r = request();
        r.issue_instant = NOW + Duration::minutes(2);
        assert_eq!(
            peer().check_request(&r, true, NOW),
            Err(Error::LogoutNotYetValid)
        );
    }

    #[test]
    fn response_answers_our_request() {
        assert_eq!(
            peer().check_response(&response(), "_another", true, NOW),
            Err(Error::InResponseToMismatch {
                expected: Some("_another".into()),
                found: Some("_ours".into())
            })
        );
    }
}
