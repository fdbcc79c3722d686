//! Message and assertion IDs.
//!
//! An ID must be unguessable (SAML core §1.3.4: a collision or a guess lets an attacker
//! replay or correlate messages) and must be an `xs:ID`, that is an NCName: it may not
//! start with a digit, which a bare hex string often would. We use `_` followed by 40
//! lower-case hex digits (160 bits from the operating system's CSPRNG).

use crate::error::{Error, Result};

/// Number of random bytes in an ID: 160 bits, above SAML's 128-bit minimum.
const ID_BYTES: usize = 20;

/// Makes a fresh ID such as `_3f9c…` (41 characters).
pub fn new_id() -> Result<String> {
    let mut bytes = [0u8; ID_BYTES];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| Error::Random)?;
    let mut id = String::with_capacity(1 + 2 * ID_BYTES);
    id.push('_');
    for b in bytes {
        id.push(hex_digit(b >> 4));
        id.push(hex_digit(b & 0x0f));
    }
    Ok(id)
}

fn hex_digit(n: u8) -> char {
    char::from(if n < 10 { b'0' + n } else { b'a' + n - 10 })
}

/// Whether `s` is an NCName, the lexical space of `xs:ID`, restricted to ASCII.
///
/// Restricting to ASCII refuses some legal IDs but none that any implementation we know
/// of produces, and it keeps odd Unicode out of references and logs.
pub fn is_ncname(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_ncnames_and_distinct() {
        let a = new_id().unwrap();
        let b = new_id().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 41);
        assert!(is_ncname(&a));
        assert!(a.starts_with('_'));
        assert!(
            a[1..]
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }

    #[test]
    fn ncname_rules() {
        assert!(is_ncname("_abc-1.2"));
        assert!(is_ncname("id-abc"));
        assert!(!is_ncname(""));
        assert!(!is_ncname("1abc"));
        assert!(!is_ncname("-abc"));
        assert!(!is_ncname("a:b"));
        assert!(!is_ncname("a'b"));
        assert!(!is_ncname("a b"));
    }
}
