//! Which `AuthnContextClassRef` an assertion may state, and whether a
//! `RequestedAuthnContext` can be met (SAML core §3.3.2.2.1): pure, so every `Comparison`
//! is tested without an IdP.
//!
//! # The order of classes
//! The IdP ranks the classes it knows; anything else is *unknown* and never satisfiable
//! (we cannot claim, nor compare against, a class whose meaning we do not know):
//!
//! | rank | classes |
//! |---|---|
//! | 1 | `Password` |
//! | 2 | `PasswordProtectedTransport` |
//! | 3 | `MobileTwoFactorContract`, REFEDS MFA (`https://refeds.org/profile/mfa`): equal |
//!
//! `unspecified` asks for nothing in particular: under `exact` and `minimum` any class we
//! can state meets it; under `better` anything ranked; under `maximum` nothing (no class is
//! weaker than "unspecified").
//!
//! # What a session can state
//! [`Strength`] says what happened: a password alone, over HTTPS or not, or a password and
//! a second factor. A session may state its own class or a weaker one it also meets (a
//! multi-factor sign-in over HTTPS also was a password over a protected transport), never a
//! stronger one. [`decide`] answers: issue now with this class, a second factor in the same
//! session would meet the request (step-up), or nothing can (`NoAuthnContext`).

use crate::assertion::authn_context::{
    MOBILE_TWO_FACTOR_CONTRACT, PASSWORD, PASSWORD_PROTECTED_TRANSPORT, REFEDS_MFA, UNSPECIFIED,
};
use crate::authn_request::{Comparison, RequestedAuthnContext};

/// The rank of a class in the documented order (module docs); `None` for a class we do
/// not know and `Some(0)` for `unspecified`.
pub fn rank(class: &str) -> Option<u8> {
    match class.trim() {
        UNSPECIFIED => Some(0),
        PASSWORD => Some(1),
        PASSWORD_PROTECTED_TRANSPORT => Some(2),
        MOBILE_TWO_FACTOR_CONTRACT | REFEDS_MFA => Some(3),
        _ => None,
    }
}

/// Which multi-factor class an application is told by default (its choice; REFEDS MFA
/// unless it was set up for `MobileTwoFactorContract`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MfaClass {
    /// `https://refeds.org/profile/mfa`.
    #[default]
    RefedsMfa,
    /// `urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract`.
    MobileTwoFactorContract,
}

impl MfaClass {
    /// The class URI.
    pub fn uri(self) -> &'static str {
        match self {
            MfaClass::RefedsMfa => REFEDS_MFA,
            MfaClass::MobileTwoFactorContract => MOBILE_TWO_FACTOR_CONTRACT,
        }
    }
}

/// What the session's authentication was, as far as the class is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Strength {
    /// The IdP's pages are served over HTTPS (its public URL is `https://`).
    pub protected_transport: bool,
    /// A second, distinct factor was presented in this session.
    pub multi_factor: bool,
    /// Which multi-factor class this application is told when it does not ask for one.
    pub mfa_class: MfaClass,
}

impl Strength {
    /// The class an assertion states when the request asks for none: the strongest this
    /// session meets.
    pub fn default_class(&self) -> &'static str {
        if self.multi_factor {
            self.mfa_class.uri()
        } else {
            self.password_class()
        }
    }

    fn password_class(&self) -> &'static str {
        if self.protected_transport {
            PASSWORD_PROTECTED_TRANSPORT
        } else {
            PASSWORD
        }
    }

    /// Every class this session may truthfully state, strongest first (the preferred MFA
    /// class before the other one).
    pub fn statable(&self) -> Vec<&'static str> {
        let mut out = Vec::with_capacity(4);
        if self.multi_factor {
            out.push(self.mfa_class.uri());
            out.push(match self.mfa_class {
                MfaClass::RefedsMfa => MOBILE_TWO_FACTOR_CONTRACT,
                MfaClass::MobileTwoFactorContract => REFEDS_MFA,
            });
        }
        if self.protected_transport {
            out.push(PASSWORD_PROTECTED_TRANSPORT);
        }
        out.push(PASSWORD);
        out
    }

    /// The same session after a second factor.
    pub fn stepped_up(self) -> Strength {
        Strength {
            multi_factor: true,
            ..self
        }
    }
}

/// What to do with a request for this session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextDecision {
    /// Issue the assertion stating this class.
    Satisfied(&'static str),
    /// The session does not meet the request, but a second factor in the same session
    /// would: step up, then decide again.
    StepUp,
    /// No authentication this IdP offers meets the request: answer `Responder` with the
    /// sub-status `NoAuthnContext`, never a weaker assertion.
    Unsatisfiable,
}

/// Decides a request (or its absence) for a session of this strength.
pub fn decide(requested: Option<&RequestedAuthnContext>, strength: Strength) -> ContextDecision {
    if let Some(class) = choose(requested, strength) {
        return ContextDecision::Satisfied(class);
    }
    if !strength.multi_factor && choose(requested, strength.stepped_up()).is_some() {
        return ContextDecision::StepUp;
    }
    ContextDecision::Unsatisfiable
}

/// The class to state, if this session meets the request.
fn choose(requested: Option<&RequestedAuthnContext>, strength: Strength) -> Option<&'static str> {
    let Some(requested) = requested.filter(|r| !r.class_refs.is_empty()) else {
        return Some(strength.default_class());
    };
    let statable = strength.statable();
    let ranked = |c: &&'static str| rank(c).map(|r| (*c, r));
    match requested.comparison {
        // The first listed class (in the SP's order of preference) we can state as is.
        Comparison::Exact => requested.class_refs.iter().find_map(|wanted| {
            let wanted = wanted.trim();
            if wanted == UNSPECIFIED {
                return Some(strength.default_class());
            }
            statable.iter().copied().find(|c| *c == wanted)
        }),
        // At least as strong as one of them: the strongest we can state, if it is.
        Comparison::Minimum => {
            let floor = requested.class_refs.iter().filter_map(|c| rank(c)).min()?;
            statable
                .iter()
                .filter_map(ranked)
                .find(|(_, r)| *r >= floor)
                .map(|(c, _)| c)
        }
        // Stronger than every one of them (the known ones: an unknown class cannot be
        // compared, and if all are unknown nothing is satisfiable).
        Comparison::Better => {
            let ceiling = requested.class_refs.iter().filter_map(|c| rank(c)).max()?;
            statable
                .iter()
                .filter_map(ranked)
                .find(|(_, r)| *r > ceiling)
                .map(|(c, _)| c)
        }
        // As strong as possible without exceeding the strongest of them.
        Comparison::Maximum => {
            let ceiling = requested.class_refs.iter().filter_map(|c| rank(c)).max()?;
            statable
                .iter()
                .filter_map(ranked)
                .find(|(_, r)| *r <= ceiling && *r > 0)
                .map(|(c, _)| c)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HTTPS: Strength = Strength {
        protected_transport: true,
        multi_factor: false,
        mfa_class: MfaClass::RefedsMfa,
    };

    fn req(comparison: Comparison, classes: &[&str]) -> RequestedAuthnContext {
        RequestedAuthnContext {
            comparison,
            class_refs: classes.iter().map(|c| (*c).to_owned()).collect(),
        }
    }

    fn d(comparison: Comparison, classes: &[&str], s: Strength) -> ContextDecision {
        decide(Some(&req(comparison, classes)), s)
    }

    use ContextDecision::{Satisfied, StepUp, Unsatisfiable};

    #[test]
    fn without_a_request_the_session_states_what_happened() {
        assert_eq!(decide(None, HTTPS), Satisfied(PASSWORD_PROTECTED_TRANSPORT));
        let http = Strength {
            protected_transport: false,
            ..HTTPS
        };
        assert_eq!(decide(None, http), Satisfied(PASSWORD));
        assert_eq!(decide(None, HTTPS.stepped_up()), Satisfied(REFEDS_MFA));
        let mobile = Strength {
            mfa_class: MfaClass::MobileTwoFactorContract,
            ..HTTPS.stepped_up()
        };
        assert_eq!(decide(None, mobile), Satisfied(MOBILE_TWO_FACTOR_CONTRACT));
        // An empty list asks for nothing.
        assert_eq!(
            d(Comparison::Exact, &[], HTTPS),
            Satisfied(PASSWORD_PROTECTED_TRANSPORT)
        );
    }

    #[test]
    fn exact_states_a_listed_class_steps_up_for_mfa_and_refuses_the_unknown() {
        assert_eq!(
            d(Comparison::Exact, &[PASSWORD_PROTECTED_TRANSPORT], HTTPS),
            Satisfied(PASSWORD_PROTECTED_TRANSPORT)
        );
        // A weaker class that is also true of the session.
        assert_eq!(
            d(Comparison::Exact, &[PASSWORD], HTTPS),
            Satisfied(PASSWORD)
        );
        assert_eq!(d(Comparison::Exact, &[REFEDS_MFA], HTTPS), StepUp);
        assert_eq!(
            d(Comparison::Exact, &[REFEDS_MFA], HTTPS.stepped_up()),
            Satisfied(REFEDS_MFA)
        );
        // The other MFA class is stated when it is the one asked for.
        assert_eq!(
            d(
                Comparison::Exact,
                &[MOBILE_TWO_FACTOR_CONTRACT],
                HTTPS.stepped_up()
            ),
            Satisfied(MOBILE_TWO_FACTOR_CONTRACT)
        );
        // The SP's order of preference.
        assert_eq!(
            d(
                Comparison::Exact,
                &[REFEDS_MFA, PASSWORD],
                HTTPS.stepped_up()
            ),
            Satisfied(REFEDS_MFA)
        );
        assert_eq!(
            d(
                Comparison::Exact,
                &["urn:example:retina-scan"],
                HTTPS.stepped_up()
            ),
            Unsatisfiable
        );
        // Plain http cannot be made a protected transport by any factor.
        let http = Strength {
            protected_transport: false,
            ..HTTPS
        };
        assert_eq!(
            d(Comparison::Exact, &[PASSWORD_PROTECTED_TRANSPORT], http),
            Unsatisfiable
        );
        assert_eq!(
            d(Comparison::Exact, &[UNSPECIFIED], HTTPS),
            Satisfied(PASSWORD_PROTECTED_TRANSPORT)
        );
    }

    #[test]
    fn minimum_states_the_strongest_class_if_it_reaches_the_weakest_listed() {
        assert_eq!(
            d(Comparison::Minimum, &[PASSWORD], HTTPS),
            Satisfied(PASSWORD_PROTECTED_TRANSPORT)
        );
        assert_eq!(d(Comparison::Minimum, &[REFEDS_MFA], HTTPS), StepUp);
        assert_eq!(
            d(
                Comparison::Minimum,
                &[MOBILE_TWO_FACTOR_CONTRACT],
                HTTPS.stepped_up()
            ),
            Satisfied(REFEDS_MFA)
        );
        assert_eq!(
            d(Comparison::Minimum, &[REFEDS_MFA, PASSWORD], HTTPS),
            Satisfied(PASSWORD_PROTECTED_TRANSPORT)
        );
        assert_eq!(
            d(Comparison::Minimum, &["urn:x:unknown"], HTTPS),
            Unsatisfiable
        );
    }

    #[test]
    fn better_needs_a_class_stronger_than_every_listed_one() {
        assert_eq!(
            d(Comparison::Better, &[PASSWORD], HTTPS),
            Satisfied(PASSWORD_PROTECTED_TRANSPORT)
        );
        assert_eq!(
            d(Comparison::Better, &[PASSWORD_PROTECTED_TRANSPORT], HTTPS),
            StepUp
        );
        assert_eq!(
            d(
                Comparison::Better,
                &[PASSWORD_PROTECTED_TRANSPORT],
                HTTPS.stepped_up()
            ),
            Satisfied(REFEDS_MFA)
        );
        // Nothing is stronger than MFA here.
        assert_eq!(
            d(Comparison::Better, &[REFEDS_MFA], HTTPS.stepped_up()),
            Unsatisfiable
        );
        assert_eq!(
            d(Comparison::Better, &[PASSWORD, REFEDS_MFA], HTTPS),
            Unsatisfiable
        );
        assert_eq!(
            d(Comparison::Better, &["urn:x:unknown"], HTTPS),
            Unsatisfiable
        );
    }

    #[test]
    fn maximum_states_the_strongest_class_not_above_the_strongest_listed() {
        assert_eq!(
            d(
                Comparison::Maximum,
                &[PASSWORD_PROTECTED_TRANSPORT],
                HTTPS.stepped_up()
            ),
            Satisfied(PASSWORD_PROTECTED_TRANSPORT)
        );
        assert_eq!(
            d(Comparison::Maximum, &[PASSWORD], HTTPS.stepped_up()),
            Satisfied(PASSWORD)
        );
        assert_eq!(
            d(Comparison::Maximum, &[REFEDS_MFA], HTTPS),
            Satisfied(PASSWORD_PROTECTED_TRANSPORT)
        );
        assert_eq!(d(Comparison::Maximum, &[UNSPECIFIED], HTTPS), Unsatisfiable);
        assert_eq!(
            d(Comparison::Maximum, &["urn:x:unknown"], HTTPS),
            Unsatisfiable
        );
    }

    #[test]
    fn ranks_follow_the_documented_order() {
        assert!(rank(PASSWORD) < rank(PASSWORD_PROTECTED_TRANSPORT));
        assert!(rank(PASSWORD_PROTECTED_TRANSPORT) < rank(REFEDS_MFA));
        assert_eq!(rank(REFEDS_MFA), rank(MOBILE_TWO_FACTOR_CONTRACT));
        assert_eq!(rank(" https://refeds.org/profile/mfa "), rank(REFEDS_MFA));
        assert_eq!(rank("urn:x:unknown"), None);
    }
}
