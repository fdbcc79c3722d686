//! What a Reference URI may point at, and ID lookup.
//!
//! IDs are matched by attribute name (SAML declares `ID` in a schema we never load), so
//! the names in force come from the caller. Uniqueness is checked across all of them,
//! and across namespaced attributes with the same local name, because a verifier and a
//! consumer that disagree about which element an ID names is the whole of signature
//! wrapping.

use crate::tree::Node;

use super::SignatureError;

/// A same-document reference target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Target<'u> {
    /// `URI=""`: the document (without comments).
    WholeDocument,
    /// `URI="#id"`: the element with this ID.
    Id(&'u str),
}

/// Accepts `""` and bare-name `#id` only.
pub(super) fn parse_uri(uri: &str) -> Result<Target<'_>, SignatureError> {
    if uri.is_empty() {
        return Ok(Target::WholeDocument);
    }
    match uri.strip_prefix('#') {
        Some(id) if is_bare_name(id) => Ok(Target::Id(id)),
        _ => Err(SignatureError::UnsupportedUri {
            uri: uri.to_owned(),
        }),
    }
}

/// A bare name: letters, digits, `.`, `-`, `_`. Looser than an XML NCName (a leading
/// digit is accepted, as xmlsec1 does, because real IdPs emit such IDs) but it rules out
/// everything that matters: XPointer and `element()` syntax, quotes, colons, whitespace.
pub(crate) fn is_bare_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | '\u{B7}'))
}

/// The element's own ID: the first unqualified attribute among `names` that it carries.
pub(super) fn element_id<'a>(node: Node<'a, '_>, names: &[String]) -> Option<&'a str> {
    names.iter().find_map(|n| node.attribute(n.as_str()))
}

/// Every element carrying `id` in an attribute whose local name is in `names`
/// (qualified or not). An element carrying it twice is listed twice.
pub(super) fn id_occurrences<'a, 'i>(
    doc: &'a crate::tree::Document<'i>,
    id: &str,
    names: &[String],
) -> Vec<Node<'a, 'i>> {
    let mut found = Vec::new();
    for node in doc.descendants().filter(Node::is_element) {
        for attr in node.attributes() {
            if attr.value() == id && names.iter().any(|n| n == attr.name()) {
                found.push(node);
            }
        }
    }
    found
}

/// How many times `id` occurs as [`id_occurrences`] lists them, without the list: the
/// check every verification makes.
pub(super) fn id_count(doc: &crate::tree::Document<'_>, id: &str, names: &[String]) -> usize {
    // Every element's attributes, in one list: no walk over the nodes needed.
    doc.attrs
        .iter()
        .filter(|a| a.value.len() == id.len() && *a.value == *id)
        .filter(|a| names.iter().any(|n| n == a.local))
        .count()
}

/// The one element carrying `id`; none or several is an error.
pub(super) fn unique_element_by_id<'a, 'i>(
    doc: &'a crate::tree::Document<'i>,
    id: &str,
    names: &[String],
) -> Result<Node<'a, 'i>, SignatureError> {
    let found = id_occurrences(doc, id, names);
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(SignatureError::IdNotFound { id: id.to_owned() }),
        more => Err(SignatureError::DuplicateId {
            id: id.to_owned(),
            count: more.len(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bare_names_and_empty() {
        assert_eq!(parse_uri(""), Ok(Target::WholeDocument));
        assert_eq!(parse_uri("#_abc-1.2"), Ok(Target::Id("_abc-1.2")));
        assert_eq!(parse_uri("#11111"), Ok(Target::Id("11111")));
        for bad in [
            "#xpointer(id('a'))",
            "#xpointer(/)",
            "#element(/1/3)",
            "#",
            "#a b",
            "#a:b",
            "t't",
            "#t't",
            "http://example.com/#a",
            "a",
        ] {
            assert!(parse_uri(bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn duplicates_counted_across_names_and_namespaces() {
        let names = vec!["ID".to_owned(), "Id".to_owned()];
        let read = crate::reader::parse(
            r#"<r xmlns:x="urn:x"><a ID="k"/><b Id="k"/><c x:ID="j"/><d ID="j"/><e ID="m"/></r>"#,
            &crate::reader::Limits::default(),
        )
        .unwrap();
        let doc = read.tree();
        assert_eq!(id_occurrences(doc, "k", &names).len(), 2);
        assert_eq!(id_occurrences(doc, "j", &names).len(), 2);
        for (id, n) in [("k", 2), ("j", 2), ("m", 1), ("x", 0)] {
            assert_eq!(id_count(doc, id, &names), n, "{id}");
        }
        assert!(matches!(
            unique_element_by_id(doc, "k", &names),
            Err(SignatureError::DuplicateId { count: 2, .. })
        ));
        assert_eq!(
            unique_element_by_id(doc, "m", &names)
                .unwrap()
                .tag_name()
                .name(),
            "e"
        );
        assert!(matches!(
            unique_element_by_id(doc, "zz", &names),
            Err(SignatureError::IdNotFound { .. })
        ));
    }
}
