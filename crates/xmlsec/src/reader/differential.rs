//! The reader against roxmltree 0.21 with the checks the reader made on its tree before
//! it had its own parser: whatever we accept, that pair accepts and reads the same way.
//!
//! Shared, word for word, by the reader's tests (`cargo test` replays every corpus
//! through it) and the `reader_differential` fuzz target, which includes this file;
//! hence the `latchkey_xmlsec::` paths (the crate names itself so in `lib.rs`).
#![allow(clippy::panic)]

use latchkey_xmlsec::reader::{self, Limits};
use latchkey_xmlsec::tree;

/// Parses `data` with both readers. `Ok(true)`: both accepted and built the same tree;
/// `Ok(false)`: we refused (whatever roxmltree did); `Err`: the readers disagree in a way
/// that must never happen (we accept what the old reader refused, or read it
/// differently).
pub fn check(data: &[u8], limits: &Limits) -> Result<bool, String> {
    let ours = reader::parse_bytes(data, limits);
    let Ok(ours) = ours else {
        return Ok(false);
    };
    let text = ours.input_text();
    let theirs = old_reader(text, limits)
        .map_err(|e| format!("we accept what roxmltree with the old checks refuses: {e}"))?;
    compare(ours.tree(), &theirs)?;
    Ok(true)
}

/// The `reader_differential` fuzz target's body: a disagreement is a crash.
#[allow(dead_code)] // only the fuzz target calls it; the tests call `check`
pub fn fuzz(data: &[u8]) {
    if let Err(e) = check(data, &fuzz_limits()) {
        panic!("reader differential: {e}");
    }
}

/// The fuzz target's limits: small enough that random inputs reach each of them.
pub fn fuzz_limits() -> Limits {
    Limits {
        max_bytes: 256 * 1024,
        max_nodes: 20_000,
        max_depth: 16,
        max_attributes: 16,
        max_name_len: 64,
        max_text_len: 4096,
    }
}

/// The reader as it was: a DOCTYPE scan, roxmltree, then the limit and content checks
/// on its tree (the text is what our reader parsed: size checked, UTF-8, BOM removed).
pub fn old_reader<'a>(text: &'a str, limits: &Limits) -> Result<roxmltree::Document<'a>, String> {
    if find_doctype(text).is_some() {
        return Err("DOCTYPE".into());
    }
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: limits.max_nodes,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, options).map_err(|e| e.to_string())?;
    old_checks(&doc, limits)?;
    Ok(doc)
}

fn find_doctype(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    text.match_indices("<!").map(|(at, _)| at).find(|&at| {
        bytes
            .get(at + 2..at + 9)
            .is_some_and(|w| w.eq_ignore_ascii_case(b"doctype"))
    })
}

fn has_lone_cr(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    (0..bytes.len()).any(|i| bytes.get(i) == Some(&b'\r') && bytes.get(i + 1) != Some(&b'\n'))
}

fn old_checks(doc: &roxmltree::Document<'_>, limits: &Limits) -> Result<(), String> {
    let mut depth: Vec<u32> = Vec::with_capacity(doc.descendants().len());
    for node in doc.descendants() {
        let parent_depth = node
            .parent()
            .and_then(|p| depth.get(p.id().get_usize()).copied())
            .unwrap_or(0);
        let d = parent_depth + u32::from(node.is_element());
        depth.push(d);
        if node.is_element() {
            if d as usize > limits.max_depth {
                return Err("too deep".into());
            }
            let inherited = node.parent_element().map_or(0, |p| p.namespaces().len());
            let own_ns = node.namespaces().len().saturating_sub(inherited);
            if node.attributes().len() + own_ns > limits.max_attributes {
                return Err("too many attributes".into());
            }
            let long_name = node.tag_name().name().len() > limits.max_name_len
                || (own_ns > 0
                    && node
                        .namespaces()
                        .any(|ns| ns.name().map_or(0, str::len) > limits.max_name_len))
                || node
                    .attributes()
                    .any(|a| a.name().len() > limits.max_name_len);
            if long_name {
                return Err("name too long".into());
            }
            if node
                .attributes()
                .any(|a| a.value().len() > limits.max_text_len)
            {
                return Err("value too long".into());
            }
        } else if let Some(pi) = node.pi() {
            if pi.target.eq_ignore_ascii_case("xml") {
                return Err("PI named xml".into());
            }
        } else if let Some(t) = node.text() {
            if t.len() > limits.max_text_len {
                return Err("text too long".into());
            }
            if node.is_text() && doc.input_text().get(node.range()).is_some_and(has_lone_cr) {
                return Err("lone CR".into());
            }
        }
    }
    Ok(())
}

fn compare(ours: &tree::Document<'_>, theirs: &roxmltree::Document<'_>) -> Result<(), String> {
    let (a, b) = (ours.descendants(), theirs.descendants());
    if a.len() != b.len() {
        return Err(format!("{} nodes against {}", a.len(), b.len()));
    }
    for (x, y) in a.zip(b) {
        compare_node(x, y).map_err(|e| format!("node {}: {e}", x.id().get()))?;
    }
    Ok(())
}

fn compare_node(x: tree::Node<'_, '_>, y: roxmltree::Node<'_, '_>) -> Result<(), String> {
    let kind = |t: roxmltree::NodeType| match t {
        roxmltree::NodeType::Root => tree::NodeType::Root,
        roxmltree::NodeType::Element => tree::NodeType::Element,
        roxmltree::NodeType::PI => tree::NodeType::PI,
        roxmltree::NodeType::Comment => tree::NodeType::Comment,
        roxmltree::NodeType::Text => tree::NodeType::Text,
    };
    same("kind", x.node_type(), kind(y.node_type()))?;
    same("id", x.id().get_usize(), y.id().get_usize())?;
    same("range", x.range(), y.range())?;
    let id = |n: Option<tree::Node<'_, '_>>| n.map(|n| n.id().get_usize());
    let rid = |n: Option<roxmltree::Node<'_, '_>>| n.map(|n| n.id().get_usize());
    same("parent", id(x.parent()), rid(y.parent()))?;
    same(
        "previous sibling",
        id(x.prev_sibling()),
        rid(y.prev_sibling()),
    )?;
    same("next sibling", id(x.next_sibling()), rid(y.next_sibling()))?;
    same("first child", id(x.first_child()), rid(y.first_child()))?;
    same("last child", id(x.last_child()), rid(y.last_child()))?;
    same("subtree size", x.descendants().len(), y.descendants().len())?;
    same("text", x.text(), y.text())?;
    same(
        "PI",
        x.pi().map(|p| (p.target, p.value)),
        y.pi().map(|p| (p.target, p.value)),
    )?;
    if !x.is_element() {
        return Ok(());
    }
    same("name", x.tag_name().name(), y.tag_name().name())?;
    same(
        "namespace",
        x.tag_name().namespace(),
        y.tag_name().namespace(),
    )?;
    let text = x.document().input_text();
    let expected = if x.prefix().is_empty() {
        x.tag_name().name().to_owned()
    } else {
        format!("{}:{}", x.prefix(), x.tag_name().name())
    };
    let written = text
        .get(x.range().start + 1..)
        .and_then(|s| s.get(..expected.len()));
    same("qname as written", written, Some(expected.as_str()))?;
    same("qname", x.qname(), expected.as_str())?;
    let xs: Vec<_> = x.namespaces().map(|n| (n.name(), n.uri())).collect();
    let ys: Vec<_> = y.namespaces().map(|n| (n.name(), n.uri())).collect();
    same("namespaces", xs, ys)?;
    same(
        "attribute count",
        x.attributes().len(),
        y.attributes().len(),
    )?;
    for (a, b) in x.attributes().zip(y.attributes()) {
        same("attribute name", a.name(), b.name())?;
        same("attribute namespace", a.namespace(), b.namespace())?;
        same("attribute value", a.value(), b.value())?;
        same("attribute range", a.range(), b.range())?;
        same("attribute qname range", a.range_qname(), b.range_qname())?;
        same("attribute value range", a.range_value(), b.range_value())?;
        let qname = text.get(a.range_qname()).unwrap_or_default();
        let expected = if a.prefix().is_empty() {
            a.name().to_owned()
        } else {
            format!("{}:{}", a.prefix(), a.name())
        };
        same("attribute qname", qname, expected.as_str())?;
    }
    Ok(())
}

fn same<T: PartialEq + std::fmt::Debug>(what: &str, ours: T, theirs: T) -> Result<(), String> {
    if ours == theirs {
        Ok(())
    } else {
        Err(format!("{what}: ours {ours:?}, roxmltree {theirs:?}"))
    }
}
