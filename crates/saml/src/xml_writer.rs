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

use crate::error::{Error, Result};

/// Builds one XML document (or fragment) into a string.
#[derive(Debug, Default)]
pub(crate) struct XmlWriter {
    out: String,
    open: Vec<&'static str>,
    in_start_tag: bool,
    error: Option<Error>,
}

impl XmlWriter {
    pub(crate) fn new() -> Self {
        Self::default()
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
        self.out.push(' ');
        self.out.push_str(name);
        self.out.push_str("=\"");
        self.escape(value, true);
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
        self.escape(value, false);
        self
    }

    /// Closes the innermost open element (`/>` when it is empty).
    pub(crate) fn end(&mut self) -> &mut Self {
        let Some(name) = self.open.pop() else {
            debug_assert!(false, "end() with no open element");
            return self;
        };
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
        if self.in_start_tag {
            self.out.push('>');
            self.in_start_tag = false;
        }
    }

    fn escape(&mut self, value: &str, in_attribute: bool) {
        for c in value.chars() {
            match c {
                '&' => self.out.push_str("&amp;"),
                '<' => self.out.push_str("&lt;"),
                '>' => self.out.push_str("&gt;"),
                '\r' => self.out.push_str("&#xD;"),
                '"' if in_attribute => self.out.push_str("&quot;"),
                '\t' if in_attribute => self.out.push_str("&#x9;"),
                '\n' if in_attribute => self.out.push_str("&#xA;"),
                '\t' | '\n' => self.out.push(c),
                c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {
                    if self.error.is_none() {
                        self.error = Some(Error::UnrepresentableChar(c as u32));
                    }
                }
                c => self.out.push(c),
            }
        }
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
    }
}
