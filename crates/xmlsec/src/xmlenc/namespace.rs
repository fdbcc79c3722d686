//! Keeping an encrypted element's namespace context intact across encryption.
//!
//! The plaintext of an encrypted element is its bytes alone, cut out of the document it
//! lived in. If it used a prefix that an ancestor declared, the cut-out text is not
//! well-formed XML on its own. Both directions therefore copy the inherited
//! declarations onto the element's start tag: the set of namespaces in scope for the
//! element, and so every canonical form of it, stays exactly what it was in context.
//! A signature inside the element survives, under inclusive and exclusive C14N alike
//! (an `InclusiveNamespaces` prefix list included), because C14N sees namespace nodes
//! in scope, not where they were declared.

use crate::tree::Node;

const XML_PREFIX: &str = "xml";

/// Namespace declarations (`prefix` `""` for the default namespace) in scope for
/// `element` that its own start tag does not make, in a stable order.
pub(super) fn inherited<'a>(element: Node<'a, '_>, text: &str) -> Vec<(&'a str, &'a str)> {
    let own = declared_prefixes(text, element.range().start);
    let mut out: Vec<(&str, &str)> = element
        .namespaces()
        .map(|ns| (ns.name().unwrap_or(""), ns.uri()))
        .filter(|(prefix, _)| *prefix != XML_PREFIX && !own.contains(prefix))
        .collect();
    out.sort_unstable();
    out.dedup_by(|a, b| a.0 == b.0);
    out
}

/// `element_text` (one element's source, starting at its `<`) with `declarations` added
/// to its start tag, right after the element name. `None` if the text does not start
/// with a start tag.
pub(super) fn with_declarations(
    element_text: &str,
    declarations: &[(&str, &str)],
) -> Option<String> {
    let rest = element_text.strip_prefix('<')?;
    let name_len = rest
        .bytes()
        .position(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'/' | b'>'))?;
    let split = name_len.checked_add(1)?;
    let (head, tail) = (element_text.get(..split)?, element_text.get(split..)?);
    let mut out = String::with_capacity(element_text.len() + 64 * declarations.len());
    out.push_str(head);
    for (prefix, uri) in declarations {
        out.push_str(" xmlns");
        if !prefix.is_empty() {
            out.push(':');
            out.push_str(prefix);
        }
        out.push_str("=\"");
        push_attribute_value(&mut out, uri);
        out.push('"');
    }
    out.push_str(tail);
    Some(out)
}

/// Escapes an attribute value so that it reads back exactly (whitespace included:
/// attribute value normalization would otherwise turn a tab into a space).
pub(super) fn push_attribute_value(out: &mut String, value: &str) {
    for c in value.chars() {
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

/// The prefixes (`""` for the default namespace) declared in the start tag at `start`.
/// The text is known to be well-formed (it was parsed), so a plain scan of
/// `name = "value"` pairs suffices; anything unexpected ends the scan.
fn declared_prefixes(text: &str, start: usize) -> Vec<&str> {
    let mut found = Vec::new();
    let Some(tag) = text.get(start..).and_then(|t| t.strip_prefix('<')) else {
        return found;
    };
    let is_space = |c: char| matches!(c, ' ' | '\t' | '\r' | '\n');
    // Skip the element name.
    let mut rest = tag.trim_start_matches(|c: char| !is_space(c) && c != '/' && c != '>');
    loop {
        rest = rest.trim_start_matches(is_space);
        if rest.is_empty() || rest.starts_with('>') || rest.starts_with('/') {
            return found;
        }
        let Some(eq) = rest.find('=') else {
            return found;
        };
        let name = rest
            .get(..eq)
            .unwrap_or_default()
            .trim_end_matches(is_space);
        rest = rest
            .get(eq + 1..)
            .unwrap_or_default()
            .trim_start_matches(is_space);
        let Some(quote) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            return found;
        };
        let Some(close) = rest.get(1..).and_then(|r| r.find(quote)) else {
            return found;
        };
        rest = rest.get(close + 2..).unwrap_or_default();
        if name == "xmlns" {
            found.push("");
        } else if let Some(prefix) = name.strip_prefix("xmlns:") {
            found.push(prefix);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::{Limits, parse};

    #[test]
    fn inherited_declarations_exclude_the_elements_own() {
        let xml = "<r xmlns='urn:d' xmlns:a='urn:a' xmlns:b='urn:b'>\
                   <a:x xmlns:b = \"urn:b\" c='1' xmlns:c='urn:c'/></r>";
        let doc = parse(xml, &Limits::default()).unwrap();
        let x = doc.root_element().first_element_child().unwrap();
        assert_eq!(inherited(x, xml), vec![("", "urn:d"), ("a", "urn:a")]);
    }

    #[test]
    fn declarations_go_after_the_name_and_escape_their_values() {
        let out = with_declarations("<a:x b='1'/>", &[("a", "urn:a&\"\t")]).unwrap();
        assert_eq!(out, "<a:x xmlns:a=\"urn:a&amp;&quot;&#9;\" b='1'/>");
        assert_eq!(
            with_declarations("<x>t</x>", &[("", "u")]).unwrap(),
            "<x xmlns=\"u\">t</x>"
        );
        assert!(with_declarations("x", &[]).is_none());
    }
}
