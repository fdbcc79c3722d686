//! Field rules for directory entries. Parse, don't validate: callers get the cleaned value.

use crate::error::{Error, Result};

/// Longest username accepted.
pub const MAX_USERNAME: usize = 64;
/// Longest e-mail address accepted (RFC 5321 path limit).
pub const MAX_EMAIL: usize = 254;
/// Longest display-style name (given, family, display, group names).
pub const MAX_NAME: usize = 256;
/// Longest custom attribute key.
pub const MAX_ATTRIBUTE_KEY: usize = 128;
/// Longest single custom attribute value.
pub const MAX_ATTRIBUTE_VALUE: usize = 4096;
/// Most values in one list-valued custom attribute.
pub const MAX_ATTRIBUTE_VALUES: usize = 256;

/// A username: 1-64 characters, ASCII letters, digits and `. _ - @ +`, not starting with `-`
/// (so it can never be mistaken for a command-line flag).
///
/// # Security
/// ASCII only: with Unicode letters, `аlice` (Cyrillic а) and `alice` would be two accounts
/// that look identical in every log, portal and SP.
pub fn username(raw: &str) -> Result<String> {
    let value = raw.trim();
    let field = "username";
    if value.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if value.chars().count() > MAX_USERNAME {
        return Err(Error::invalid(
            field,
            format!("{value:?} is longer than {MAX_USERNAME} characters"),
        ));
    }
    if value.starts_with('-') {
        return Err(Error::invalid(
            field,
            format!("{value:?} must not start with '-'"),
        ));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '+')))
    {
        return Err(Error::invalid(
            field,
            format!("{value:?} contains {bad:?}; allowed are ASCII letters, digits and . _ - @ +"),
        ));
    }
    Ok(value.to_string())
}

/// An e-mail address: `local@domain` with a dotted domain of letters, digits and hyphens.
/// Deliberately stricter than RFC 5322 (no quoted local parts, no comments) and ASCII only
/// (internationalised domains in their `xn--` form): these addresses end up in SAML
/// assertions and in other systems' account keys, and look-alike letters must not make two
/// addresses that read the same.
pub fn email(raw: &str) -> Result<String> {
    let value = raw.trim();
    let field = "email";
    let bad = |why: &str| {
        Error::invalid(
            field,
            format!("{value:?} is not a valid e-mail address: {why}"),
        )
    };
    if value.len() > MAX_EMAIL {
        return Err(bad("too long"));
    }
    let Some((local, domain)) = value.rsplit_once('@') else {
        return Err(bad("missing '@'"));
    };
    if local.is_empty() || local.len() > 64 {
        return Err(bad("local part must be 1-64 characters"));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(bad("misplaced '.' in the local part"));
    }
    if !local
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c))
    {
        return Err(bad("unexpected character in the local part"));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err(bad("the domain needs a dot"));
    }
    for label in labels {
        if label.is_empty()
            || label.len() > 63
            || label.starts_with('-')
            || label.ends_with('-')
            || !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(bad("malformed domain"));
        }
    }
    Ok(value.to_string())
}

/// An optional human name: trimmed, empty means absent, no control characters.
pub fn optional_name(field: &'static str, raw: Option<&str>) -> Result<Option<String>> {
    let Some(value) = raw.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    name(field, value).map(Some)
}

/// A required human name (group names, application names).
pub fn name(field: &'static str, raw: &str) -> Result<String> {
    let value = raw.trim();
    if value.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if value.chars().count() > MAX_NAME {
        return Err(Error::invalid(
            field,
            format!("longer than {MAX_NAME} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(
            field,
            format!("{value:?} contains control characters"),
        ));
    }
    Ok(value.to_string())
}

/// A custom attribute key: ASCII letters, digits and `_ - . :`, as it will appear in
/// attribute mappings and CSV headers.
pub fn attribute_key(raw: &str) -> Result<String> {
    let field = "attribute name";
    if raw.is_empty() || raw.len() > MAX_ATTRIBUTE_KEY {
        return Err(Error::invalid(
            field,
            format!("{raw:?} must be 1-{MAX_ATTRIBUTE_KEY} characters"),
        ));
    }
    if !raw
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
    {
        return Err(Error::invalid(
            field,
            format!("{raw:?} may only contain ASCII letters, digits and _ - . :"),
        ));
    }
    Ok(raw.to_string())
}

/// One custom attribute value: bounded, no control characters other than none at all.
pub fn attribute_value(key: &str, raw: &str) -> Result<()> {
    if raw.len() > MAX_ATTRIBUTE_VALUE || raw.chars().any(char::is_control) {
        return Err(Error::invalid(
            "attribute value",
            format!(
                "value of {key:?} must be at most {MAX_ATTRIBUTE_VALUE} bytes without control characters"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert_eq!(username(" alice ").unwrap(), "alice");
        assert!(username("al ice").is_err());
        assert!(username("-rf").is_err());
        assert!(username("").is_err());
        assert!(username(&"a".repeat(65)).is_err());
        assert!(username("jorg.o'brien").is_err());
        assert!(username("jorg.obrien").is_ok());
        // Look-alikes: Cyrillic а and a German umlaut.
        assert!(username("\u{430}lice").is_err());
        assert!(username("jörg").is_err());
    }

    #[test]
    fn emails() {
        assert!(email("alice@example.org").is_ok());
        assert!(email("a.b+tag@sub.example.org").is_ok());
        assert!(email("alice@xn--bcher-kva.example").is_ok());
        for bad in [
            "alice",
            "alice@",
            "@example.org",
            "alice@example",
            "al ice@example.org",
            "alice@exa_mple.org",
            "alice@-example.org",
            "a..b@example.org",
            "alice@example..org",
            "\u{430}lice@example.org",
            "alice@b\u{fc}cher.example",
        ] {
            let err = email(bad).unwrap_err();
            assert!(
                matches!(err, Error::InvalidField { field: "email", .. }),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn names_and_attributes() {
        assert_eq!(optional_name("given_name", Some("  ")).unwrap(), None);
        assert!(name("group", "a\u{7}b").is_err());
        assert!(attribute_key("department").is_ok());
        assert!(attribute_key("dept name").is_err());
        assert!(attribute_value("k", "line\nbreak").is_err());
    }
}
