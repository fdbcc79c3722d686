//! Which namespace declarations are already in effect in the output.
//!
//! Both C14N flavours render a declaration only when the nearest output ancestor does
//! not already render the same prefix with the same URI. Keeping a stack of what was
//! actually rendered (one level per open element) answers that question without
//! looking at the input tree's ancestors, so it works the same for a whole document,
//! an apex subtree, and a subtree with an excluded element cut out.

use super::C14nError;
use crate::scan;

/// Declarations rendered by the currently open output elements.
#[derive(Debug, Default)]
pub(super) struct Rendered<'a> {
    /// `(prefix, uri)` in the order rendered; the default namespace has prefix `""`.
    entries: Vec<(&'a str, &'a str)>,
    /// `entries.len()` when each open element started.
    levels: Vec<usize>,
}

impl<'a> Rendered<'a> {
    pub(super) fn with_capacity(levels: usize) -> Self {
        Rendered {
            entries: Vec::with_capacity(levels),
            levels: Vec::with_capacity(levels),
        }
    }

    /// The URI the output currently binds `prefix` to. Before anything is rendered the
    /// default namespace is empty (no namespace) and every other prefix is unbound.
    pub(super) fn lookup(&self, prefix: &str) -> Option<&'a str> {
        self.entries
            .iter()
            .rev()
            .find(|(p, _)| scan::same(p.as_bytes(), prefix.as_bytes()))
            .map(|&(_, uri)| uri)
            .or(if prefix.is_empty() { Some("") } else { None })
    }

    /// Whether declaring `prefix` as `uri` on the next element would change anything.
    pub(super) fn is_new(&self, prefix: &str, uri: &str) -> bool {
        // Both strings usually come from the same parsed namespace: compare addresses
        // before bytes.
        self.lookup(prefix)
            .is_none_or(|r| !(std::ptr::eq(r, uri) || scan::same(r.as_bytes(), uri.as_bytes())))
    }

    /// Opens an element level and records what it renders.
    pub(super) fn push_level(&mut self, rendered: &[(&'a str, &'a str)]) {
        self.levels.push(self.entries.len());
        self.entries.extend_from_slice(rendered);
    }

    /// Closes the innermost element level.
    pub(super) fn pop_level(&mut self) {
        if let Some(len) = self.levels.pop() {
            self.entries.truncate(len);
        }
    }
}

/// C14N 1.0 §2.1 and libxml2: a document with a relative namespace URI cannot be
/// canonicalized. An empty URI on a prefix (`xmlns:p=""`, a Namespaces 1.1
/// undeclaration) has no C14N 1.0 rendering either, so it fails too rather than
/// being guessed at.
pub(super) fn check_uri(prefix: Option<&str>, uri: &str) -> Result<(), C14nError> {
    if uri.is_empty() {
        return match prefix {
            Some(p) => Err(C14nError::EmptyPrefixedNamespace {
                prefix: p.to_owned(),
            }),
            None => Ok(()),
        };
    }
    if is_absolute_uri(uri) {
        Ok(())
    } else {
        Err(C14nError::RelativeNamespaceUri {
            uri: uri.to_owned(),
        })
    }
}

/// RFC 3986 `scheme ":"` at the start, and none of the ASCII characters a URI can never
/// hold (controls, space, `"<>\^`{|}`). Non-ASCII is let through: namespace names are
/// often IRIs. One pass, one table lookup a byte: every element that declares a
/// namespace has all of its namespaces in scope checked.
fn is_absolute_uri(uri: &str) -> bool {
    let b = uri.as_bytes();
    if !b.first().is_some_and(u8::is_ascii_alphabetic) {
        return false;
    }
    let scheme_end = b
        .iter()
        .position(|&c| !(c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.')))
        .unwrap_or(b.len());
    b.get(scheme_end) == Some(&b':') && !b.iter().any(|&c| NOT_IN_URI[usize::from(c)])
}

/// The ASCII characters a URI can never hold.
static NOT_IN_URI: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b <= b' '
            || matches!(
                b,
                b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}' | 0x7f
            );
        i += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_namespace_starts_empty() {
        let mut r = Rendered::default();
        assert_eq!(r.lookup(""), Some(""));
        assert_eq!(r.lookup("p"), None);
        assert!(!r.is_new("", ""));
        assert!(r.is_new("p", "urn:p"));
        r.push_level(&[("", "urn:d"), ("p", "urn:p")]);
        assert!(r.is_new("", ""));
        assert!(!r.is_new("p", "urn:p"));
        r.push_level(&[("p", "urn:q")]);
        assert_eq!(r.lookup("p"), Some("urn:q"));
        r.pop_level();
        assert_eq!(r.lookup("p"), Some("urn:p"));
        r.pop_level();
        r.pop_level();
        assert_eq!(r.lookup(""), Some(""));
    }

    /// The definition `is_absolute_uri` implements in one pass: the scheme is what
    /// precedes the first `:`.
    fn absolute_by_definition(uri: &str) -> bool {
        let Some((scheme, _)) = uri.split_once(':') else {
            return false;
        };
        let mut chars = scheme.bytes();
        chars.next().is_some_and(|b| b.is_ascii_alphabetic())
            && chars.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
            && !uri.bytes().any(|b| {
                b <= b' '
                    || matches!(
                        b,
                        b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}' | 0x7f
                    )
            })
    }

    #[test]
    fn absolute_uri_matches_its_definition() {
        // Every character in every position of a few shapes, so each byte meets the
        // scheme scan, the colon test and the forbidden-byte table.
        let mut checked = 0;
        for c in (0u32..0x250).filter_map(char::from_u32) {
            for shape in [
                "{c}",
                "a{c}",
                "a{c}:x",
                "a:{c}",
                "a+.-{c}:b",
                "{c}a:b",
                "urn:x{c}y",
            ] {
                let uri = shape.replace("{c}", c.encode_utf8(&mut [0; 4]));
                assert_eq!(
                    is_absolute_uri(&uri),
                    absolute_by_definition(&uri),
                    "{uri:?}"
                );
                checked += 1;
            }
        }
        assert!(checked > 4000);
    }

    #[test]
    fn uri_checks() {
        assert!(check_uri(None, "").is_ok());
        assert!(check_uri(Some("p"), "urn:x").is_ok());
        assert!(check_uri(Some("p"), "http://example.com/a?b#c").is_ok());
        assert!(check_uri(Some("p"), "foo:bar").is_ok());
        assert!(check_uri(Some("p"), "urn:ünï").is_ok());
        assert!(matches!(
            check_uri(Some("p"), ""),
            Err(C14nError::EmptyPrefixedNamespace { .. })
        ));
        for bad in [
            "rel", "a/b:c", ":x", "1a:b", "urn:a b", "urn:<x>", "urn:a\"b",
        ] {
            assert!(
                matches!(
                    check_uri(None, bad),
                    Err(C14nError::RelativeNamespaceUri { .. })
                ),
                "{bad}"
            );
        }
    }
}
