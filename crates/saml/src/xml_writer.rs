//! A small streaming XML writer that escapes every value it is given.
//!
//! Messages are built with this rather than with `format!` so that no value (a NameID, an
//! attribute value, a URL) can ever break out of its text node or attribute. Element and
//! attribute names are `&'static str`: they come from this crate, never from input.
//!
//! Escaping follows what canonical XML produces, so a document we write and sign
//! canonicalizes to the same characters a peer reads: in text `&`, `<`, `>` and CR are
//! escaped; in attribute values also `"`, tab and LF (which a parser would otherwise
//! normalize to spaces).
//!
//! [`XmlWriter::canonical`] goes the rest of the way: attributes in C14N order (namespace
//! declarations, then by name), empty elements as start and end tag, `>` left as is in
//! attribute values. What it writes is then its own exclusive canonical form, so an
//! assertion can be digested as written, without being parsed and canonicalized again.

use crate::error::{Error, Result};

/// Builds one XML document (or fragment) into a string.
#[derive(Debug, Default)]
pub(crate) struct XmlWriter {
    out: String,
    open: Vec<&'static str>,
    in_start_tag: bool,
    error: Option<Error>,
    canonical: bool,
    /// In canonical mode, the open start tag's attributes (name, escaped value as a
    /// range of `pending_values`), written in C14N order when the tag closes.
    pending: Vec<(&'static str, std::ops::Range<usize>)>,
    pending_values: String,
}

impl XmlWriter {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// A writer whose output is its own exclusive canonical form (C14N 1.0 without
    /// comments), for unprefixed attributes and namespace declarations on the elements
    /// that use them, which is all this crate writes.
    pub(crate) fn canonical() -> Self {
        Self {
            canonical: true,
            ..Self::default()
        }
    }

    /// Bytes written so far (an offset into the finished document).
    pub(crate) fn len(&self) -> usize {
        self.out.len()
    }

    /// Opens an element: `<name`. Attributes may follow until content or `end`.
    pub(crate) fn start(&mut self, name: &'static str) -> &mut Self {
        self.close_start_tag();
        self.out.push('<');
        self.out.push_str(name);
        self.open.push(name);
        self.in_start_tag = true;
        self
    }

    /// Adds an attribute to the element just opened.
    pub(crate) fn attr(&mut self, name: &'static str, value: &str) -> &mut Self {
        debug_assert!(self.in_start_tag, "attribute {name} outside a start tag");
        if self.canonical {
            debug_assert!(
                name.starts_with("xmlns") || !name.contains(':'),
                "canonical mode orders unprefixed attributes only: {name}"
            );
            let start = self.pending_values.len();
            escape_into(&mut self.pending_values, value, true, true, &mut self.error);
            self.pending.push((name, start..self.pending_values.len()));
            return self;
        }
        self.out.push(' ');
        self.out.push_str(name);
        self.out.push_str("=\"");
        escape_into(&mut self.out, value, true, false, &mut self.error);
        self.out.push('"');
        self
    }

    /// Adds an attribute when `value` is present.
    pub(crate) fn opt_attr(&mut self, name: &'static str, value: Option<&str>) -> &mut Self {
        if let Some(v) = value {
            self.attr(name, v);
        }
        self
    }

    /// Adds escaped text content.
    pub(crate) fn text(&mut self, value: &str) -> &mut Self {
        self.close_start_tag();
        escape_into(&mut self.out, value, false, self.canonical, &mut self.error);
        self
    }

    /// Closes the innermost open element (`/>` when it is empty, but in canonical mode).
    pub(crate) fn end(&mut self) -> &mut Self {
        let Some(name) = self.open.pop() else {
            debug_assert!(false, "end() with no open element");
            return self;
        };
        if self.canonical {
            self.close_start_tag();
        }
        if self.in_start_tag {
            self.out.push_str("/>");
            self.in_start_tag = false;
        } else {
            self.out.push_str("</");
            self.out.push_str(name);
            self.out.push('>');
        }
        self
    }

    /// `<name>text</name>`.
    pub(crate) fn text_element(&mut self, name: &'static str, value: &str) -> &mut Self {
        self.start(name).text(value).end()
    }

    /// Inserts markup verbatim. Only for well-formed elements this crate produced (an
    /// already-signed assertion being placed in a Response), never for input.
    pub(crate) fn raw_element(&mut self, xml: &str) -> &mut Self {
        self.close_start_tag();
        self.out.push_str(xml);
        self
    }

    /// The document, or the first unrepresentable character met.
    pub(crate) fn finish(mut self) -> Result<String> {
        self.close_start_tag();
        debug_assert!(self.open.is_empty(), "unclosed elements: {:?}", self.open);
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.out),
        }
    }

    fn close_start_tag(&mut self) {
        if !self.in_start_tag {
            return;
        }
        if self.canonical {
            // C14N order: namespace declarations first (by prefix; `xmlns` before
            // `xmlns:a`), then attributes by (namespace URI, local name), which for
            // unprefixed attributes is by name.
            self.pending.sort_by(|(a, _), (b, _)| {
                (!is_namespace_declaration(a), a).cmp(&(!is_namespace_declaration(b), b))
            });
            for (name, value) in self.pending.drain(..) {
                self.out.push(' ');
                self.out.push_str(name);
                self.out.push_str("=\"");
                self.out
                    .push_str(self.pending_values.get(value).unwrap_or_default());
                self.out.push('"');
            }
            self.pending_values.clear();
        }
        self.out.push('>');
        self.in_start_tag = false;
    }
}

fn is_namespace_declaration(name: &str) -> bool {
    name == "xmlns" || name.starts_with("xmlns:")
}

/// Escapes `value` into `out` as canonical XML writes it; `>` in an attribute value is
/// escaped too unless `canonical` (C14N leaves it, and parsers accept it either way).
///
/// Runs of characters that need nothing are copied whole: most values (IDs, URLs, names)
/// have no character to escape, and this is on every assertion's path.
fn escape_into(
    out: &mut String,
    value: &str,
    in_attribute: bool,
    canonical: bool,
    error: &mut Option<Error>,
) {
    let bytes = value.as_bytes();
    let mut copied = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !MAY_NEED_ESCAPING[usize::from(b)] {
            continue;
        }
        let replacement = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' if in_attribute && canonical => continue,
            b'>' => "&gt;",
            b'\r' => "&#xD;",
            b'"' if in_attribute => "&quot;",
            b'\t' if in_attribute => "&#x9;",
            b'\n' if in_attribute => "&#xA;",
            b'\t' | b'\n' => continue,
            // U+FFFE and U+FFFF are EF BF BE and EF BF BF in UTF-8.
            0xEF if matches!(bytes.get(i + 1..i + 3), Some([0xBF, 0xBE | 0xBF])) => {
                unrepresentable(error, value, i);
                ""
            }
            0..0x20 => {
                unrepresentable(error, value, i);
                ""
            }
            _ => continue,
        };
        out.push_str(value.get(copied..i).unwrap_or_default());
        out.push_str(replacement);
        copied = if b == 0xEF { i + 3 } else { i + 1 };
    }
    out.push_str(value.get(copied..).unwrap_or_default());
}

/// The bytes [`escape_into`] has to look at: controls, `&<>"`, and the lead byte of
/// U+FFFE/U+FFFF. One table lookup per byte keeps the scan of plain text cheap.
const MAY_NEED_ESCAPING: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'&' as usize] = true;
    table[b'<' as usize] = true;
    table[b'>' as usize] = true;
    table[b'"' as usize] = true;
    table[0xEF] = true;
    table
};

/// Records the first character XML 1.0 cannot carry (at byte `at` of `value`).
fn unrepresentable(error: &mut Option<Error>, value: &str, at: usize) {
    if error.is_none() {
        let c = value
            .get(at..)
            .and_then(|r| r.chars().next())
            .unwrap_or('\0');
        *error = Some(Error::UnrepresentableChar(c as u32));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_xmlsec::reader::{Limits, parse};
    use proptest::strategy::Strategy as _;

    #[test]
    fn escapes_text_and_attributes() {
        let mut w = XmlWriter::new();
        w.start("a")
            .attr("v", "x\"<&>\t\n\r'y")
            .text("1 < 2 & 3 > 2\r\n]]>")
            .start("b")
            .end()
            .end();
        let xml = w.finish().unwrap();
        assert_eq!(
            xml,
            "<a v=\"x&quot;&lt;&amp;&gt;&#x9;&#xA;&#xD;'y\">1 &lt; 2 &amp; 3 &gt; 2&#xD;\n]]&gt;<b/></a>"
        );
        // A parser reads back exactly the values that were written.
        let doc = parse(&xml, &Limits::default()).unwrap();
        let root = doc.root_element();
        assert_eq!(root.attribute("v"), Some("x\"<&>\t\n\r'y"));
        assert_eq!(root.text(), Some("1 < 2 & 3 > 2\r\n]]>"));
    }

    #[test]
    fn injection_attempts_stay_inside_their_node() {
        let evil = "\"/><injected a=\"";
        let mut w = XmlWriter::new();
        w.start("a").attr("v", evil).text("</a><injected/>").end();
        let xml = w.finish().unwrap();
        let doc = parse(&xml, &Limits::default()).unwrap();
        assert_eq!(doc.root_element().children().count(), 1);
        assert_eq!(doc.root_element().attribute("v"), Some(evil));
    }

    #[test]
    fn refuses_unrepresentable_characters() {
        for bad in ["a\u{0}b", "\u{1}", "\u{1b}[31m", "\u{FFFF}", "x\u{FFFE}"] {
            let mut w = XmlWriter::new();
            w.text_element("a", bad);
            assert!(
                matches!(w.finish(), Err(Error::UnrepresentableChar(_))),
                "{bad:?}"
            );
            let mut w = XmlWriter::new();
            w.start("a").attr("v", bad).end();
            assert!(
                matches!(w.finish(), Err(Error::UnrepresentableChar(_))),
                "{bad:?}"
            );
        }
        let mut w = XmlWriter::new();
        w.text_element("a", "tab\tand\nnewline, émoji 🎉");
        assert_eq!(w.finish().unwrap(), "<a>tab\tand\nnewline, émoji 🎉</a>");
    }

    /// Characters XML 1.0 can carry (minus surrogates, which `char` excludes).
    fn xml_char() -> impl proptest::strategy::Strategy<Value = char> {
        proptest::prop_oneof![
            proptest::char::range('\u{20}', '\u{7e}'),
            proptest::sample::select(vec!['\t', '\n', '\r', '&', '<', '>', '"', '\'']),
            proptest::char::range('\u{a0}', '\u{fffd}'),
            proptest::char::range('\u{10000}', '\u{10ffff}'),
        ]
    }

    proptest::proptest! {
        #[test]
        fn any_value_reads_back_exactly(
            value in proptest::collection::vec(xml_char(), 0..64)
                .prop_map(|v| v.into_iter().collect::<String>()),
        ) {
            use proptest::prelude::*;
            let mut w = XmlWriter::new();
            w.start("a").attr("v", &value).start("t").text(&value).end().end();
            let xml = w.finish().unwrap();
            let doc = parse(&xml, &Limits::default()).unwrap();
            let root = doc.root_element();
            prop_assert_eq!(root.attribute("v"), Some(value.as_str()));
            let t = root.first_element_child().unwrap();
            let text: String = t.children().filter_map(|c| c.text()).collect();
            prop_assert_eq!(text, value);
        }

        /// The canonical writer's output is its own exclusive C14N, whatever the values
        /// and whatever order the attributes come in, and it reads back the same values.
        #[test]
        fn the_canonical_writer_writes_canonical_xml(
            values in proptest::collection::vec(
                proptest::collection::vec(xml_char(), 0..24)
                    .prop_map(|v| v.into_iter().collect::<String>()),
                4,
            ),
            order in proptest::sample::subsequence(vec![0usize, 1, 2, 3], 4).prop_shuffle(),
            empty in proptest::bool::ANY,
        ) {
            use latchkey_xmlsec::c14n::{self, Algorithm};
            use proptest::prelude::*;
            const NAMES: [&str; 4] = ["Version", "ID", "IssueInstant", "Name"];
            let mut w = XmlWriter::canonical();
            w.start("p:a");
            for &i in &order {
                w.attr(NAMES[i], &values[i]);
            }
            w.attr("xmlns:p", "urn:example:p");
            w.start("p:b").attr("Z", &values[0]).attr("A", &values[1]);
            if !empty {
                w.text(&values[2]);
            }
            w.end().start("p:c").end().end();
            let xml = w.finish().unwrap();
            let doc = parse(&xml, &Limits::default()).unwrap();
            let root = doc.root_element();
            let canonical = c14n::canonicalize_to_vec(
                root,
                Algorithm::EXCLUSIVE,
                &c14n::Options::default(),
                None,
            )
            .unwrap();
            prop_assert_eq!(String::from_utf8(canonical).unwrap(), xml.clone());
            for (i, name) in NAMES.iter().enumerate() {
                prop_assert_eq!(root.attribute(*name), Some(values[i].as_str()));
            }
        }
    }
}
