//! Qualified names as written in the source text.
//!
//! C14N outputs the prefixes the author chose, but roxmltree keeps only expanded names
//! (namespace URI plus local name). Looking a prefix up by URI is ambiguous when two
//! prefixes name the same URI, so the qualified name is read back from the source at
//! the position roxmltree recorded, and checked against the local name it parsed.

use roxmltree::{Attribute, Node};

use super::C14nError;

/// A qualified name and the split into prefix (`""` when unprefixed) and local part.
#[derive(Debug, Clone, Copy)]
pub(super) struct QName<'i> {
    pub(super) qname: &'i str,
    pub(super) prefix: &'i str,
}

impl<'i> QName<'i> {
    fn split(qname: &'i str, local: &str) -> Result<Self, C14nError> {
        let (prefix, found_local) = qname.split_once(':').unwrap_or(("", qname));
        if found_local != local || found_local.is_empty() {
            return Err(C14nError::SourceMismatch);
        }
        Ok(QName { qname, prefix })
    }
}

/// The element's qualified name: it follows the `<` at the start of the node's range.
pub(super) fn element<'i>(text: &'i str, node: Node<'_, '_>) -> Result<QName<'i>, C14nError> {
    let rest = text
        .get(node.range().start..)
        .and_then(|s| s.strip_prefix('<'))
        .ok_or(C14nError::SourceMismatch)?;
    let end = rest
        .find([' ', '\t', '\r', '\n', '/', '>'])
        .unwrap_or(rest.len());
    let qname = rest.get(..end).ok_or(C14nError::SourceMismatch)?;
    QName::split(qname, node.tag_name().name())
}

/// The attribute's qualified name: its range starts at the name, which runs up to `=`
/// or whitespace.
pub(super) fn attribute<'i>(
    text: &'i str,
    attr: &Attribute<'_, '_>,
) -> Result<QName<'i>, C14nError> {
    let rest = text
        .get(attr.range().start..)
        .ok_or(C14nError::SourceMismatch)?;
    let end = rest
        .find([' ', '\t', '\r', '\n', '='])
        .unwrap_or(rest.len());
    let qname = rest.get(..end).ok_or(C14nError::SourceMismatch)?;
    QName::split(qname, attr.name())
}
