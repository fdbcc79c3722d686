//! Checks shared by every SAML element reader: which element a node is, its children
//! (with duplicates refused), and typed attribute values.
//!
//! Readers walk the tree they are handed and never search the document by name, so that
//! what they read is always inside the element they were given (a verified one, for
//! assertions).

use std::borrow::Cow;

use latchkey_xmlsec::tree::Node;
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::time::parse_datetime;

/// Whether `node` is the element `{ns}local`. Out of line: one copy of the name and
/// namespace comparison serves every reader, instead of one inlined per call site.
#[inline(never)]
pub(crate) fn is(node: Node<'_, '_>, ns: &str, local: &str) -> bool {
    node.has_tag_name((ns, local))
}

/// Refuses a node that is not `{ns}local`.
pub(crate) fn expect(node: Node<'_, '_>, ns: &str, local: &str, shown: &'static str) -> Result<()> {
    if is(node, ns, local) {
        Ok(())
    } else {
        Err(unexpected(node, shown))
    }
}

// The error constructors below are `#[cold]` and out of line, so that a reader's checks,
// which an accepted message passes, stay dense in the instruction cache: a validation
// runs more code than the L1 instruction cache holds.

#[cold]
#[inline(never)]
fn unexpected(node: Node<'_, '_>, expected: &'static str) -> Error {
    Error::UnexpectedElement {
        expected,
        found: describe(node),
    }
}

#[cold]
#[inline(never)]
pub(crate) fn duplicate(parent: &'static str, child: &'static str) -> Error {
    Error::DuplicateElement { parent, child }
}

#[cold]
#[inline(never)]
pub(crate) fn missing(parent: &'static str, child: &'static str) -> Error {
    Error::MissingElement { parent, child }
}

#[cold]
#[inline(never)]
fn missing_attribute(element: &'static str, attribute: &'static str) -> Error {
    Error::MissingAttribute { element, attribute }
}

#[cold]
#[inline(never)]
fn not_text_only(element: &'static str) -> Error {
    Error::NotTextOnly(element)
}

/// A value of the wrong type, copied into the error.
#[cold]
#[inline(never)]
pub(crate) fn invalid_value(element: &'static str, attribute: &'static str, value: &str) -> Error {
    Error::InvalidValue {
        element,
        attribute,
        value: value.to_owned(),
    }
}

/// A Version other than 2.0, copied into the error.
#[cold]
#[inline(never)]
pub(crate) fn unsupported_version(version: &str) -> Error {
    Error::UnsupportedVersion(version.to_owned())
}

/// `{namespace}local` of a node, for error messages.
#[cold]
#[inline(never)]
pub(crate) fn describe(node: Node<'_, '_>) -> String {
    if !node.is_element() {
        return format!("{:?} node", node.node_type());
    }
    match node.tag_name().namespace() {
        Some(ns) => format!("{{{ns}}}{}", node.tag_name().name()),
        None => node.tag_name().name().to_owned(),
    }
}

/// Child elements named `{ns}local`, in document order.
pub(crate) fn children<'a, 'i: 'a>(
    node: Node<'a, 'i>,
    ns: &'a str,
    local: &'a str,
) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    node.children().filter(move |c| is(*c, ns, local))
}

/// The one child `{ns}local`, if present; two are refused.
pub(crate) fn optional_child<'a, 'i>(
    node: Node<'a, 'i>,
    ns: &str,
    local: &str,
    parent: &'static str,
    child: &'static str,
) -> Result<Option<Node<'a, 'i>>> {
    let mut found = node.children().filter(|c| is(*c, ns, local));
    let first = found.next();
    if found.next().is_some() {
        return Err(duplicate(parent, child));
    }
    Ok(first)
}

/// The one child `{ns}local`; absent or repeated is refused.
pub(crate) fn required_child<'a, 'i>(
    node: Node<'a, 'i>,
    ns: &str,
    local: &str,
    parent: &'static str,
    child: &'static str,
) -> Result<Node<'a, 'i>> {
    optional_child(node, ns, local, parent, child)?.ok_or_else(|| missing(parent, child))
}

// The attribute helpers below are out of line: each inlined `Node::attribute` call was its
// own copy of the attribute walk, and a validation runs some twenty of them once each, so
// their code, not their instructions, is what it paid for (BENCHMARKS.md, "validation's
// code footprint").

/// Several unqualified attributes in one walk of the element's attributes: `found[i]` is
/// what `node.attribute(names[i])` returns, the first attribute whose local name is
/// `names[i]`, as [`Node::attribute`] matches a name without a namespace. `names` are
/// distinct; `found` is as long as `names` and starts all `None`.
#[inline(never)]
pub(crate) fn attributes<'a>(node: Node<'a, '_>, names: &[&str], found: &mut [Option<&'a str>]) {
    for a in node.attributes() {
        let local = a.name();
        for (name, slot) in names.iter().zip(found.iter_mut()) {
            if local == *name {
                if slot.is_none() {
                    *slot = Some(a.value());
                }
                break;
            }
        }
    }
}

/// An unqualified attribute, optional: [`Node::attribute`], out of line.
#[inline(never)]
pub(crate) fn attribute<'a>(node: Node<'a, '_>, attribute: &str) -> Option<&'a str> {
    node.attribute(attribute)
}

/// A required attribute's value, found by [`attribute`] or [`attributes`].
pub(crate) fn required<'a>(
    value: Option<&'a str>,
    element: &'static str,
    attribute: &'static str,
) -> Result<&'a str> {
    value.ok_or_else(|| missing_attribute(element, attribute))
}

/// An optional value, copied. Out of line: one copy of the allocation and the copy.
#[inline(never)]
pub(crate) fn owned(value: Option<&str>) -> Option<String> {
    value.map(str::to_owned)
}

/// An optional `xs:dateTime` value.
#[inline(never)]
pub(crate) fn datetime(value: Option<&str>) -> Result<Option<OffsetDateTime>> {
    value.map(parse_datetime).transpose()
}

/// An unqualified attribute, required. Borrowed from the document: callers copy only
/// what they keep (a Version or an instant is checked and dropped).
pub(crate) fn required_attr<'a>(
    node: Node<'a, '_>,
    element: &'static str,
    attribute: &'static str,
) -> Result<&'a str> {
    required(self::attribute(node, attribute), element, attribute)
}

/// An unqualified attribute, optional.
pub(crate) fn optional_attr(node: Node<'_, '_>, attribute: &str) -> Option<String> {
    owned(self::attribute(node, attribute))
}

/// An `xs:dateTime` attribute, optional.
pub(crate) fn datetime_attr(node: Node<'_, '_>, attribute: &str) -> Result<Option<OffsetDateTime>> {
    datetime(self::attribute(node, attribute))
}

/// An `xs:boolean` attribute, optional.
pub(crate) fn bool_attr(
    node: Node<'_, '_>,
    element: &'static str,
    attribute: &'static str,
) -> Result<Option<bool>> {
    match node.attribute(attribute).map(str::trim) {
        None => Ok(None),
        Some("true" | "1") => Ok(Some(true)),
        Some("false" | "0") => Ok(Some(false)),
        Some(other) => Err(invalid_value(element, attribute, other)),
    }
}

/// An `xs:unsignedShort` attribute, optional.
pub(crate) fn u16_attr(
    node: Node<'_, '_>,
    element: &'static str,
    attribute: &'static str,
) -> Result<Option<u16>> {
    node.attribute(attribute)
        .map(|v| {
            v.trim()
                .parse::<u16>()
                .map_err(|_| invalid_value(element, attribute, v))
        })
        .transpose()
}

/// The text of an element that must hold text only. Text nodes are joined and comments
/// skipped, so a comment spliced into a signed value (which canonicalization drops from
/// the digest) cannot truncate what we read; child elements are refused.
pub(crate) fn text_only(node: Node<'_, '_>, element: &'static str) -> Result<String> {
    Ok(joined_text(node, element)?.into_owned())
}

/// [`text_only`] borrowed from the document when the element holds one text node (the
/// usual case), so the caller copies the value once, at its final length.
pub(crate) fn joined_text<'a>(node: Node<'a, '_>, element: &'static str) -> Result<Cow<'a, str>> {
    let mut out = Cow::Borrowed("");
    for c in node.children() {
        if c.is_element() {
            return Err(not_text_only(element));
        }
        if c.is_text() {
            append(&mut out, c.text().unwrap_or_default());
        }
    }
    Ok(out)
}

fn append<'a>(out: &mut Cow<'a, str>, text: &'a str) {
    if out.is_empty() {
        *out = Cow::Borrowed(text);
    } else {
        out.to_mut().push_str(text);
    }
}

/// Like [`text_only`], with surrounding whitespace removed: for `xs:anyURI` values such
/// as Issuer and Audience, whose schema type collapses whitespace.
pub(crate) fn uri_text(node: Node<'_, '_>, element: &'static str) -> Result<String> {
    Ok(uri_text_ref(node, element)?.into_owned())
}

/// [`uri_text`] borrowed from the document when the element holds one text node, for
/// values a rule compares and drops. Out of line: one copy serves both.
#[inline(never)]
pub(crate) fn uri_text_ref<'a>(node: Node<'a, '_>, element: &'static str) -> Result<Cow<'a, str>> {
    Ok(match joined_text(node, element)? {
        Cow::Borrowed(text) => Cow::Borrowed(text.trim()),
        Cow::Owned(text) => Cow::Owned(text.trim().to_owned()),
    })
}

/// All descendant text, comments skipped: for attribute values, which may wrap their
/// value in an element (eduPersonTargetedID carries a NameID).
pub(crate) fn deep_text(node: Node<'_, '_>) -> String {
    let mut out = Cow::Borrowed("");
    for d in node.descendants().filter(|d| d.is_text()) {
        append(&mut out, d.text().unwrap_or_default());
    }
    out.into_owned()
}

/// Children of one element sorted by name in a single walk, for readers that take
/// several kinds of child: each `optional_child` would walk them all again.
/// [`OneChild::get`] keeps `optional_child`'s rule (a second one is refused).
#[derive(Clone, Copy)]
pub(crate) struct OneChild<'a, 'i> {
    first: Option<Node<'a, 'i>>,
    repeated: bool,
}

impl<'a, 'i> OneChild<'a, 'i> {
    pub(crate) const NONE: Self = OneChild {
        first: None,
        repeated: false,
    };

    pub(crate) fn put(&mut self, node: Node<'a, 'i>) {
        if self.first.is_some() {
            self.repeated = true;
        } else {
            self.first = Some(node);
        }
    }

    /// The first child of its kind, however many there were.
    pub(crate) fn first(self) -> Option<Node<'a, 'i>> {
        self.first
    }

    /// The child, if there was one; two are refused as [`optional_child`] does.
    pub(crate) fn get(
        self,
        parent: &'static str,
        child: &'static str,
    ) -> Result<Option<Node<'a, 'i>>> {
        if self.repeated {
            return Err(duplicate(parent, child));
        }
        Ok(self.first)
    }
}

#[cfg(test)]
mod tests {
    use latchkey_xmlsec::reader::{Limits, parse};

    use super::*;

    /// The one-walk lookup finds, for every name, what `Node::attribute` finds: the first
    /// attribute of that local name whatever its namespace, an empty value as empty, and
    /// nothing on a node that is not an element.
    #[test]
    fn attributes_in_one_walk_find_what_attribute_finds() {
        let docs = [
            r#"<e xmlns:x="urn:x" x:ID="first" ID="second" Version="2.0" Format="" Name="n" x:Name="m"/>"#,
            r#"<e ID="a" Version="1.1" NameQualifier="q">text<c Name="child"/></e>"#,
            r#"<e/>"#,
        ];
        let lists: [&[&str]; 4] = [
            &["ID", "Version", "Format"],
            &["Name", "ID", "Missing", "NameQualifier", "Version"],
            &["Version"],
            &["Format", "Name"],
        ];
        for xml in docs {
            let doc = parse(xml, &Limits::default()).unwrap();
            let root = doc.root_element();
            let mut nodes = vec![root];
            nodes.extend(root.children());
            for node in nodes {
                for names in lists {
                    let mut found = vec![None; names.len()];
                    attributes(node, names, &mut found);
                    let expected: Vec<_> = names.iter().map(|n| node.attribute(*n)).collect();
                    assert_eq!(found, expected, "{xml}: {names:?}");
                    for (name, value) in names.iter().zip(&found) {
                        assert_eq!(attribute(node, name), *value);
                    }
                }
            }
        }
        // The first of two attributes with one local name wins, as in `Node::attribute`.
        let doc = parse(docs[0], &Limits::default()).unwrap();
        let mut found = [None; 2];
        attributes(doc.root_element(), &["ID", "Name"], &mut found);
        assert_eq!(found, [Some("first"), Some("n")]);
    }
}
