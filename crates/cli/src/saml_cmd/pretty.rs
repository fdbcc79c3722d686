//! An indenting printer over the hardened reader's tree, for display only.
//!
//! Whitespace between elements is dropped and re-made as indentation, and the text of
//! mixed content is trimmed, so the output is for reading: its bytes no longer match any
//! signature. Names keep the prefixes the author wrote (read back from the source, as
//! C14N does), every value is escaped again, and the walk uses an explicit stack, so
//! no document nests deep enough to exhaust ours.

use std::fmt::Write as _;

use latchkey_xmlsec::reader::Document;
use latchkey_xmlsec::tree::{Node, NodeType};

const INDENT: &str = "  ";

enum Step<'a, 'i> {
    Enter(Node<'a, 'i>, usize),
    Close(Node<'a, 'i>, usize),
}

/// The document as indented XML.
pub fn pretty(doc: &Document<'_>) -> String {
    let source = doc.input_text();
    let mut out = String::new();
    let mut stack = vec![Step::Enter(doc.tree().root(), 0)];
    while let Some(step) = stack.pop() {
        match step {
            Step::Close(node, depth) => {
                indent(&mut out, depth);
                let _ = writeln!(out, "</{}>", element_name(source, node));
            }
            Step::Enter(node, depth) => match node.node_type() {
                NodeType::Root => {
                    let children: Vec<_> = significant_children(node).collect();
                    stack.extend(children.into_iter().rev().map(|c| Step::Enter(c, 0)));
                }
                NodeType::Element => {
                    indent(&mut out, depth);
                    start_tag(&mut out, source, node);
                    let children: Vec<_> = significant_children(node).collect();
                    if children.is_empty() {
                        out.push_str("/>\n");
                    } else if children.iter().all(Node::is_text) {
                        out.push('>');
                        for c in &children {
                            escape_text(&mut out, c.text().unwrap_or_default());
                        }
                        let _ = writeln!(out, "</{}>", element_name(source, node));
                    } else {
                        out.push_str(">\n");
                        stack.push(Step::Close(node, depth));
                        stack.extend(
                            children
                                .into_iter()
                                .rev()
                                .map(|c| Step::Enter(c, depth + 1)),
                        );
                    }
                }
                NodeType::Text => {
                    indent(&mut out, depth);
                    escape_text(&mut out, node.text().unwrap_or_default().trim());
                    out.push('\n');
                }
                NodeType::Comment => {
                    indent(&mut out, depth);
                    let _ = writeln!(out, "<!--{}-->", node.text().unwrap_or_default());
                }
                NodeType::PI => {
                    indent(&mut out, depth);
                    if let Some(pi) = node.pi() {
                        match pi.value {
                            Some(v) => {
                                let _ = writeln!(out, "<?{} {v}?>", pi.target);
                            }
                            None => {
                                let _ = writeln!(out, "<?{}?>", pi.target);
                            }
                        }
                    }
                }
            },
        }
    }
    out
}

/// Children worth a line: whitespace-only text between elements is layout, not content.
fn significant_children<'a, 'i>(node: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children()
        .filter(|c| !(c.is_text() && c.text().is_some_and(|t| t.trim().is_empty())))
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str(INDENT);
    }
}

fn start_tag(out: &mut String, source: &str, node: Node<'_, '_>) {
    out.push('<');
    out.push_str(&element_name(source, node));
    // Declarations: the bindings in scope here that the parent did not have.
    let parent = node.parent_element();
    let inherited = |name: Option<&str>, uri: &str| {
        parent.is_some_and(|p| {
            p.namespaces()
                .any(|ns| ns.name() == name && ns.uri() == uri)
        })
    };
    for ns in node.namespaces() {
        if ns.name() == Some("xml") || inherited(ns.name(), ns.uri()) {
            continue;
        }
        match ns.name() {
            Some(prefix) => {
                let _ = write!(out, " xmlns:{prefix}=\"");
            }
            None => out.push_str(" xmlns=\""),
        }
        escape_attr(out, ns.uri());
        out.push('"');
    }
    let had_default = parent.is_some_and(|p| p.namespaces().any(|ns| ns.name().is_none()));
    if had_default && !node.namespaces().any(|ns| ns.name().is_none()) {
        out.push_str(" xmlns=\"\"");
    }
    for attr in node.attributes() {
        let name = source
            .get(attr.range_qname())
            .filter(|q| q.ends_with(attr.name()))
            .map_or_else(
                || qualify(node, attr.namespace(), attr.name()),
                str::to_owned,
            );
        let _ = write!(out, " {name}=\"");
        escape_attr(out, attr.value());
        out.push('"');
    }
}

/// The element's name as written: it follows the `<` where the node starts.
fn element_name(source: &str, node: Node<'_, '_>) -> String {
    let local = node.tag_name().name();
    source
        .get(node.range().start..)
        .and_then(|s| s.strip_prefix('<'))
        .map(|rest| {
            let end = rest
                .find(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>')
                .unwrap_or(rest.len());
            rest.get(..end).unwrap_or_default()
        })
        .filter(|q| q.ends_with(local))
        .map_or_else(
            || qualify(node, node.tag_name().namespace(), local),
            str::to_owned,
        )
}

/// A name rebuilt from the namespace bindings, when the source cannot be read back.
fn qualify(node: Node<'_, '_>, namespace: Option<&str>, local: &str) -> String {
    match namespace.and_then(|uri| node.lookup_prefix(uri)) {
        Some(prefix) if !prefix.is_empty() => format!("{prefix}:{local}"),
        _ => local.to_owned(),
    }
}

fn escape_text(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

fn escape_attr(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use latchkey_xmlsec::reader::{self, Limits};

    use super::pretty;

    fn round(xml: &str) -> String {
        pretty(&reader::parse(xml, &Limits::default()).unwrap())
    }

    #[test]
    fn indents_and_keeps_prefixes_and_declarations() {
        let out = round(
            r#"<p:a xmlns:p="urn:p" xmlns="urn:d" k="v"><b><p:c>t</p:c><d/></b><!--n--></p:a>"#,
        );
        assert_eq!(
            out,
            "<p:a xmlns:p=\"urn:p\" xmlns=\"urn:d\" k=\"v\">\n  <b>\n    <p:c>t</p:c>\n    <d/>\n  </b>\n  <!--n-->\n</p:a>\n"
        );
    }

    #[test]
    fn escapes_text_and_attributes_again() {
        let out = round("<a v=\"&quot;&lt;&amp;&#10;\">&lt;x&gt; &amp; y</a>");
        assert_eq!(out, "<a v=\"&quot;&lt;&amp;&#10;\">&lt;x&gt; &amp; y</a>\n");
        // What is printed reads back as the same values.
        let again = reader::parse(&out, &Limits::default()).unwrap();
        let root = again.root_element();
        assert_eq!(root.attribute("v"), Some("\"<&\n"));
        assert_eq!(root.text(), Some("<x> & y"));
    }

    #[test]
    fn undeclares_the_default_namespace() {
        let out = round(r#"<a xmlns="urn:d"><b xmlns=""/></a>"#);
        assert_eq!(out, "<a xmlns=\"urn:d\">\n  <b xmlns=\"\"/>\n</a>\n");
    }

    #[test]
    fn deep_nesting_is_walked_without_recursion() {
        // Far deeper than the reader allows by default; a recursive printer would need a
        // stack frame per level.
        let depth = 3_000;
        let xml = format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth));
        let limits = Limits {
            max_depth: depth + 1,
            ..Limits::default()
        };
        let out = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || pretty(&reader::parse(&xml, &limits).unwrap()))
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(out.lines().count(), 2 * depth - 1);
        assert!(out.ends_with("\n</a>\n"));
    }
}
