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

/// An unqualified attribute, required. Borrowed from the document: callers copy only
/// what they keep (a Version or an instant is checked and dropped).
pub(crate) fn required_attr<'a>(
    node: Node<'a, '_>,
    element: &'static str,
    attribute: &'static str,
) -> Result<&'a str> {
    node.attribute(attribute)
        .ok_or_else(|| missing_attribute(element, attribute))
}

/// An unqualified attribute, optional.
pub(crate) fn optional_attr(node: Node<'_, '_>, attribute: &str) -> Option<String> {
    node.attribute(attribute).map(str::to_owned)
}

/// An `xs:dateTime` attribute, optional.
pub(crate) fn datetime_attr(node: Node<'_, '_>, attribute: &str) -> Result<Option<OffsetDateTime>> {
    node.attribute(attribute).map(parse_datetime).transpose()
}

/// An `xs:dateTime` attribute, required.
pub(crate) fn required_datetime(
    node: Node<'_, '_>,
    element: &'static str,
    attribute: &'static str,
) -> Result<OffsetDateTime> {
    parse_datetime(required_attr(node, element, attribute)?)
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
