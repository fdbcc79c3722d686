//! Qualified names as written in the source text.
//!
//! C14N outputs the prefixes the author chose, but roxmltree keeps only expanded names
//! (namespace URI plus local name). Looking a prefix up by URI is ambiguous when two
//! prefixes name the same URI, so the qualified name is read back from the source at
//! the position roxmltree recorded, and checked against the local name it parsed.

use crate::tree::{Attribute, Node};

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
        // roxmltree's local name borrows from this very spot of the input, so the
        // address check is exact (and cheap); the byte comparison covers the rest.
        let same = found_local.len() == local.len()
            && (std::ptr::eq(found_local.as_ptr(), local.as_ptr()) || found_local == local);
        if !same || found_local.is_empty() {
            return Err(C14nError::SourceMismatch);
        }
        Ok(QName { qname, prefix })
    }
}

/// The element's qualified name: it follows the `<` at the start of the node's range
/// and runs to whitespace, `/` or `>`.
pub(super) fn element<'i>(text: &'i str, node: Node<'_, '_>) -> Result<QName<'i>, C14nError> {
    let rest = text
        .get(node.range().start..)
        .and_then(|s| s.strip_prefix('<'))
        .ok_or(C14nError::SourceMismatch)?;
    let end = rest
        .bytes()
        .position(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'/' | b'>'))
        .unwrap_or(rest.len());
    let qname = rest.get(..end).ok_or(C14nError::SourceMismatch)?;
    QName::split(qname, node.tag_name().name())
}

/// The attribute's qualified name, from the range roxmltree recorded for it. (That
/// range is wrong for names over 64 KiB; the local-name check then refuses.)
pub(super) fn attribute<'i>(
    text: &'i str,
    attr: &Attribute<'_, '_>,
) -> Result<QName<'i>, C14nError> {
    let qname = text
        .get(attr.range_qname())
        .ok_or(C14nError::SourceMismatch)?;
    QName::split(qname, attr.name())
}
