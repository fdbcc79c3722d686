//! Why a WebAuthn ceremony was refused, with a stable code for pages, JSON and tests.

use webauthn_rs::prelude::WebauthnError as CrateError;

latchkey_saml::stable_codes! {
    /// What a refused WebAuthn request answers (`{"code": ...}`) and logs.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Code {
        /// The body is not the JSON, base64url or CBOR a WebAuthn response is made of, or is too large.
        Malformed = "WEBAUTHN-MALFORMED",
        /// The ceremony is unknown, expired or already answered (a replayed response).
        Challenge = "WEBAUTHN-CHALLENGE",
        /// The response was made for another origin or RP ID.
        WrongRelyingParty = "WEBAUTHN-WRONG-RP",
        /// The response does not verify (signature, challenge, user verification).
        Refused = "WEBAUTHN-REFUSED",
        /// The key's signature counter did not go up since its last recorded use: the key may
        /// have been copied. Refused and audited (`webauthn.counter_regression`).
        CounterRegression = "WEBAUTHN-COUNTER-REGRESSION",
        /// The credential is not enrolled (for this user), or its user cannot sign in.
        UnknownCredential = "WEBAUTHN-UNKNOWN-CREDENTIAL",
        /// The credential is already enrolled.
        Duplicate = "WEBAUTHN-DUPLICATE",
        /// Too many ceremonies under way, or credentials enrolled; try again later.
        TooMany = "WEBAUTHN-TOO-MANY",
        /// Too many failed sign-ins; try again later.
        Throttled = "WEBAUTHN-THROTTLED",
        /// A credential name that is empty or too long.
        BadName = "WEBAUTHN-BAD-NAME",
        /// The request needs a signed-in session (enrolment, managing credentials) or a password checked first.
        SignInRequired = "WEBAUTHN-SIGN-IN-REQUIRED",
        /// Adding or removing a key of an account that has a second factor needs a session that used one: step up first.
        StepUpRequired = "WEBAUTHN-STEP-UP",
        /// The database turned the request away for other writers (a deadlock, a
        /// serialization failure, SQLite busy) or had no free connection; nothing was done:
        /// try again after `Retry-After`.
        Busy = "WEBAUTHN-BUSY",
        /// The server failed; the log has the detail under the operation ID.
        Internal = "WEBAUTHN-INTERNAL",
    }
}

/// A refused or failed WebAuthn operation.
#[derive(Debug, thiserror::Error)]
pub enum WebauthnError {
    /// The input is not a WebAuthn response we can read.
    #[error("malformed WebAuthn input: {0}")]
    Malformed(String),
    /// No live ceremony under this handle (never started, expired, or already finished).
    #[error("unknown, expired or already answered WebAuthn challenge")]
    Challenge,
    /// `webauthn-rs` refused the response.
    #[error("WebAuthn verification failed: {0}")]
    Verify(#[from] CrateError),
    /// A verified assertion whose signature counter is not greater than the stored one
    /// (either being non-zero): WebAuthn's sign of a possibly cloned authenticator.
    #[error(
        "signature counter {presented} not above the stored {stored}: possibly a cloned authenticator"
    )]
    CounterRegression {
        /// The counter recorded at the credential's last use.
        stored: u32,
        /// The counter this assertion carries.
        presented: u32,
    },
    /// The credential is not enrolled, not this user's, or its user may not sign in.
    #[error("credential not enrolled for a user who may sign in")]
    UnknownCredential,
    /// The credential ID is already enrolled (by this or another user).
    #[error("credential already enrolled")]
    Duplicate,
    /// A cap was reached.
    #[error("too many {0}")]
    TooMany(&'static str),
    /// Too many ceremonies under way (for this client, its IPv6 /48, or in all); nothing
    /// was stored. Ceremonies end when answered or expired: come back after the given
    /// seconds.
    #[error("too many {what}; retry in {retry_after_seconds} s")]
    Busy {
        /// Which cap, for the log line.
        what: &'static str,
        /// When to try again.
        retry_after_seconds: u64,
    },
    /// The throttle refused the attempt before anything was verified.
    #[error("throttled; retry in {retry_after_seconds} s")]
    Throttled {
        /// When to try again.
        retry_after_seconds: u64,
    },
    /// The credential name is not acceptable.
    #[error("credential name: {0}")]
    BadName(&'static str),
    /// The account has a second factor and this session did not use one: adding or
    /// removing a key needs a step-up first.
    #[error("this session must step up with a second factor first")]
    StepUpRequired,
    /// The `[webauthn]` configuration cannot make a relying party.
    #[error("[webauthn] configuration: {0}")]
    Config(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::Error),
}

impl WebauthnError {
    /// The stable code of this refusal.
    pub fn code(&self) -> Code {
        match self {
            WebauthnError::Malformed(_) => Code::Malformed,
            WebauthnError::Challenge => Code::Challenge,
            WebauthnError::Verify(e) => match e {
                CrateError::InvalidRPOrigin | CrateError::InvalidRPIDHash => {
                    Code::WrongRelyingParty
                }
                CrateError::ParseBase64Failure(_)
                | CrateError::ParseCBORFailure(_)
                | CrateError::ParseJSONFailure(_)
                | CrateError::ParseNOMFailure
                | CrateError::ParseInsufficientBytesAvailable
                | CrateError::InvalidClientDataType
                | CrateError::COSEKeyInvalidCBORValue
                | CrateError::COSEKeyInvalidType
                | CrateError::MissingAttestationCredentialData
                | CrateError::AttestationStatementMapInvalid => Code::Malformed,
                CrateError::CredentialNotFound => Code::UnknownCredential,
                CrateError::CredentialPossibleCompromise => Code::CounterRegression,
                _ => Code::Refused,
            },
            WebauthnError::UnknownCredential => Code::UnknownCredential,
            WebauthnError::CounterRegression { .. } => Code::CounterRegression,
            WebauthnError::Duplicate => Code::Duplicate,
            WebauthnError::TooMany(_) | WebauthnError::Busy { .. } => Code::TooMany,
            WebauthnError::Throttled { .. } => Code::Throttled,
            WebauthnError::BadName(_) => Code::BadName,
            WebauthnError::StepUpRequired => Code::StepUpRequired,
            WebauthnError::Store(crate::Error::Busy { .. }) => Code::Busy,
            WebauthnError::Config(_) | WebauthnError::Store(_) => Code::Internal,
        }
    }

    /// When to try again, for a refusal that says so: a throttle, a cap on ceremonies, or
    /// a database busy with other writes ([`crate::Error::Busy`]).
    pub fn retry_after_seconds(&self) -> Option<u64> {
        match self {
            WebauthnError::Throttled {
                retry_after_seconds,
            }
            | WebauthnError::Busy {
                retry_after_seconds,
                ..
            }
            | WebauthnError::Store(crate::Error::Busy {
                retry_after_seconds,
                ..
            }) => Some(*retry_after_seconds),
            _ => None,
        }
    }

    /// Whether this refusal counts as a failed sign-in guess (it was verified and failed),
    /// as opposed to a request we never got to check. A counter that did not go up counts
    /// too: its signature verified, but it may be a copy's.
    pub fn is_guess(&self) -> bool {
        matches!(
            self,
            WebauthnError::Verify(_)
                | WebauthnError::UnknownCredential
                | WebauthnError::CounterRegression { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write the database turned away for another (a deadlock, 40001, SQLite busy) or a
    /// full pool is `WEBAUTHN-BUSY` with its wait, never `WEBAUTHN-INTERNAL` (a 500), and
    /// no guess for the throttle.
    #[test]
    fn a_busy_database_is_busy_not_internal() {
        for (what, wait) in [
            (crate::error::DATABASE_CONTENDED, 1),
            (crate::error::DATABASE_POOL_EXHAUSTED, 5),
        ] {
            let e = WebauthnError::from(crate::Error::Busy {
                what,
                retry_after_seconds: wait,
            });
            assert_eq!(e.code(), Code::Busy, "{e}");
            assert_eq!(e.retry_after_seconds(), Some(wait));
            assert!(!e.is_guess());
        }
        let other = WebauthnError::from(crate::Error::corrupt("x", "y"));
        assert_eq!(other.code(), Code::Internal);
        assert_eq!(other.retry_after_seconds(), None);
    }
}
