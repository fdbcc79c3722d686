//! What a new password must be: at least `[password] min_length` characters (12 by
//! default), at most [`super::MAX_LENGTH`] bytes, and not one of the 10,000 most common
//! passwords (`common-passwords.txt` beside this file; its provenance is in the README
//! there). Applied wherever a password is *set* (`user add`, `user passwd`, the admin API,
//! an invitation, a reset) and never when one is checked at sign-in: an old password that
//! predates the policy still signs in.
//!
//! [`strength`] is advice, not a rule: a zxcvbn score and its feedback, for a page or the
//! CLI to show while the user chooses.

use std::collections::HashSet;
use std::sync::LazyLock;

use serde::Serialize;

use super::{MAX_LENGTH, Password};
use crate::config::PasswordConfig;
use crate::error::{Error, Result};

/// The bundled list, one lower-case password a line, most common first.
const COMMON: &str = include_str!("common-passwords.txt");

static COMMON_SET: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| COMMON.lines().filter(|l| !l.is_empty()).collect());

/// Which rule a refused password broke; the [`Error::PasswordRefused`] it comes in has the
/// stable code of the rule, so a page can say which without reading the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordRule {
    /// Fewer characters than `min_length` (Unicode scalar values, not bytes).
    TooShort {
        /// The configured minimum.
        min: usize,
    },
    /// More than [`MAX_LENGTH`] bytes: the hasher is not made to chew megabytes.
    TooLong {
        /// The limit in bytes.
        max: usize,
    },
    /// One of the bundled most common passwords (compared case-insensitively).
    Common,
}

impl std::fmt::Display for PasswordRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PasswordRule::TooShort { min } => write!(f, "must be at least {min} characters"),
            PasswordRule::TooLong { max } => write!(f, "must be at most {max} bytes"),
            PasswordRule::Common => {
                f.write_str("is one of the 10,000 most common passwords; choose another")
            }
        }
    }
}

/// Whether a password is in the bundled list (case-insensitive, surrounding space ignored).
pub fn is_common(password: &Password) -> bool {
    let folded = password.expose().trim().to_lowercase();
    COMMON_SET.contains(folded.as_str())
}

/// Checks the rules every new password must meet; cheap, so it runs before any hashing.
pub fn check(config: &PasswordConfig, password: &Password) -> Result<()> {
    let min = config.min_length();
    if password.expose().chars().count() < min {
        return Err(Error::PasswordRefused {
            rule: PasswordRule::TooShort { min },
        });
    }
    if password.expose().len() > MAX_LENGTH {
        return Err(Error::PasswordRefused {
            rule: PasswordRule::TooLong { max: MAX_LENGTH },
        });
    }
    if is_common(password) {
        return Err(Error::PasswordRefused {
            rule: PasswordRule::Common,
        });
    }
    Ok(())
}

/// How guessable a password looks, for the person choosing it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StrengthHint {
    /// zxcvbn's score: 0 (guessed in under 10^3 tries) to 4 (more than 10^10).
    pub score: u8,
    /// What is wrong with it, if zxcvbn found something ("This is similar to a commonly
    /// used password.").
    pub warning: Option<String>,
    /// How to do better.
    pub suggestions: Vec<String>,
}

/// zxcvbn works in time that grows with the length; past this many characters the rest
/// adds nothing to the estimate that the first part did not, so only these are scored.
const STRENGTH_CHARS: usize = 100;

/// zxcvbn's estimate for `password`, with `user_inputs` (the username, e-mail address,
/// names) counted as words an attacker knows.
pub fn strength(password: &Password, user_inputs: &[&str]) -> StrengthHint {
    let head: String = password.expose().chars().take(STRENGTH_CHARS).collect();
    let estimate = zxcvbn::zxcvbn(&head, user_inputs);
    let feedback = estimate.feedback();
    StrengthHint {
        score: u8::from(estimate.score()),
        warning: feedback.and_then(|f| f.warning()).map(|w| w.to_string()),
        suggestions: feedback
            .map(|f| f.suggestions().iter().map(ToString::to_string).collect())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(config: &PasswordConfig, pw: &str) -> Option<PasswordRule> {
        match check(config, &Password::new(pw)) {
            Ok(()) => None,
            Err(Error::PasswordRefused { rule }) => Some(rule),
            Err(other) => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn the_list_holds_ten_thousand_and_the_usual_suspects() {
        assert_eq!(COMMON_SET.len(), 10_000);
        for pw in ["password", "123456", "qwerty", "letmein", "trustno1"] {
            assert!(is_common(&Password::new(pw)), "{pw}");
        }
        assert!(is_common(&Password::new(" PassWord ")));
        assert!(!is_common(&Password::new("violet staple hinge")));
    }

    #[test]
    fn twelve_characters_by_default_counted_as_characters_not_bytes() {
        let config = PasswordConfig::default();
        assert_eq!(
            refused(&config, "eleven chars"[..11].as_ref()),
            Some(PasswordRule::TooShort { min: 12 })
        );
        assert_eq!(refused(&config, "twelve chars"), None);
        // 11 characters, 22 bytes: still too short.
        assert_eq!(
            refused(&config, "ééééééééééé"),
            Some(PasswordRule::TooShort { min: 12 })
        );
        assert_eq!(
            refused(&config, &"x".repeat(MAX_LENGTH + 1)),
            Some(PasswordRule::TooLong { max: MAX_LENGTH })
        );
    }

    #[test]
    fn a_common_password_is_refused_even_where_the_length_would_allow_it() {
        let config = PasswordConfig {
            min_length: 6,
            ..PasswordConfig::default()
        };
        assert_eq!(refused(&config, "dragon"), Some(PasswordRule::Common));
        assert_eq!(refused(&config, "Dragon"), Some(PasswordRule::Common));
        assert_eq!(refused(&config, "drag0n-fly"), None);
        // A long entry of the list is refused at the default length too.
        let long = COMMON
            .lines()
            .find(|l| l.chars().count() >= 12)
            .expect("the list has long entries");
        assert_eq!(
            refused(&PasswordConfig::default(), long),
            Some(PasswordRule::Common)
        );
    }

    #[test]
    fn strength_tells_a_keyboard_walk_from_a_passphrase() {
        let weak = strength(&Password::new("qwertyuiop12"), &[]);
        assert!(weak.score <= 1, "{weak:?}");
        assert!(weak.warning.is_some());
        let strong = strength(&Password::new("violet staple hinge orbit"), &[]);
        assert_eq!(strong.score, 4, "{strong:?}");
        let own = strength(&Password::new("alice-example"), &["alice", "example"]);
        assert!(own.score < strong.score);
    }
}
