//! The one hardened entry point for reading XML in Latchkey.
//!
//! Every parser in the project goes through [`parse`] (or [`parse_bytes`]), so the
//! defences live in one place. The tokenizer and tree builder are our own (`parser`),
//! one pass that checks as it reads:
//!
//! * any DOCTYPE is refused, wherever `<!DOCTYPE` appears (even in a comment), so there
//!   are no DTDs, no entity declarations, no external entities (XXE) and no entity
//!   expansion;
//! * the input size is capped before parsing; node count, depth, attributes per
//!   element, name lengths and text lengths are capped while parsing, before any
//!   caller can walk the tree.
//!
//! Parsing and every walk of the tree are iterative: nesting depth costs heap, never
//! stack.
//!
//! # Agreement with roxmltree
//! The reader used roxmltree 0.21 until 2026-12 and its tree API is roxmltree's
//! ([`crate::tree`]). A parser differential is how signature-wrapping bypasses are
//! made, so the differential tests (`reader/differential_tests.rs`, the
//! `reader_differential` fuzz target) hold this: whatever we accept, roxmltree with the
//! old reader's checks accepts too and builds the same tree (node kinds, names,
//! prefixes, attributes in order with namespace and value, namespaces in scope,
//! text, comments, PIs, ranges). We refuse more, and only these (each has a test):
//!
//! * a lone carriage return anywhere in character data (the old checks looked only at
//!   the first piece of a merged text node, so one in a CDATA section, or in text after
//!   one, passed and became a line feed);
//! * a character reference to a surrogate or to a code point above U+10FFFF
//!   (roxmltree reads it as U+FFFD), or a reference over 31 characters between `&` and `;`;
//! * a processing instruction whose target is not followed by whitespace or `?>`
//!   (`<?a"b?>`);
//! * an XML declaration that is not `version="1.x"`, an EncName and `yes`/`no`
//!   (roxmltree accepted any values there);
//! * `xmlns` declared twice on one element, `xmlns:xml` given twice, `xmlns:xmlns`
//!   declared, and a prefixed attribute named `xmlns` (`p:xmlns`), which roxmltree
//!   took for a default namespace declaration;
//! * a name that starts with a colon (`:a`), which roxmltree reads as the unprefixed
//!   `a` (found by the `reader_differential` fuzz target in its first seconds);
//! * a byte-order mark after the one the reader strips;
//! * an element over [`Limits::max_attributes`] once every namespace declaration written
//!   on it is counted (the old count left out a redeclared inherited prefix).
//!
//! # Security
//! Only UTF-8 is accepted (a leading BOM is skipped). Anything else is refused rather
//! than guessed at, because two readers that decode differently can disagree on what
//! was signed.

mod parser;

#[cfg(test)]
mod differential;
#[cfg(test)]
mod differential_tests;

use std::fmt;

use crate::error::Error;
use crate::tree;
use parser::Fail;

/// Limits applied to every document. The defaults suit SAML protocol messages; metadata
/// aggregates need [`Limits::metadata`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted input, in bytes, checked before parsing.
    pub max_bytes: usize,
    /// Deepest element nesting (the root element is depth 1).
    pub max_depth: usize,
    /// Most nodes of any kind (elements, text, comments, PIs) in the document.
    pub max_nodes: u32,
    /// Most attributes plus namespace declarations on one element.
    pub max_attributes: usize,
    /// Longest element or attribute name (prefix included), in bytes.
    pub max_name_len: usize,
    /// Longest single text node or attribute value, in bytes.
    pub max_text_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 2 * 1024 * 1024,
            max_depth: 64,
            max_nodes: 100_000,
            max_attributes: 128,
            max_name_len: 512,
            max_text_len: 1024 * 1024,
        }
    }
}

impl Limits {
    /// Limits for SAML metadata, where federation aggregates run to tens of megabytes.
    pub fn metadata() -> Self {
        Self {
            max_bytes: 128 * 1024 * 1024,
            max_nodes: 20_000_000,
            ..Self::default()
        }
    }
}

/// A position in the source text, 1-based, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line, starting at 1.
    pub line: u32,
    /// Column in characters, starting at 1.
    pub col: u32,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

impl From<crate::tree::TextPos> for Position {
    fn from(p: crate::tree::TextPos) -> Self {
        Self {
            line: p.row,
            col: p.col,
        }
    }
}

/// Why the reader refused a document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The input is larger than [`Limits::max_bytes`]; it was not parsed.
    #[error("document is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// Size of the input.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The input is not UTF-8.
    #[error("document is not valid UTF-8 (at byte {at})")]
    NotUtf8 {
        /// Byte offset of the first invalid sequence.
        at: usize,
    },
    /// A DOCTYPE was present. DTDs are never processed: they are how XXE and entity
    /// expansion attacks get in.
    #[error("DOCTYPE/DTD is not allowed (at {0})")]
    DtdForbidden(Position),
    /// More nodes than [`Limits::max_nodes`].
    #[error("document has more than {limit} nodes")]
    TooManyNodes {
        /// The limit in force.
        limit: u32,
    },
    /// Elements nested deeper than [`Limits::max_depth`].
    #[error("elements nested deeper than {limit} (at {at})")]
    TooDeep {
        /// The limit in force.
        limit: usize,
        /// Where the too-deep element starts.
        at: Position,
    },
    /// An element carries more attributes than [`Limits::max_attributes`].
    #[error("element has more than {limit} attributes (at {at})")]
    TooManyAttributes {
        /// The limit in force.
        limit: usize,
        /// Where the element starts.
        at: Position,
    },
    /// A name longer than [`Limits::max_name_len`].
    #[error("name longer than {limit} bytes (at {at})")]
    NameTooLong {
        /// The limit in force.
        limit: usize,
        /// Where the name's node starts.
        at: Position,
    },
    /// A text node or attribute value longer than [`Limits::max_text_len`].
    #[error("text longer than {limit} bytes (at {at})")]
    TextTooLong {
        /// The limit in force.
        limit: usize,
        /// Where the text's node starts.
        at: Position,
    },
    /// A carriage return not followed by a line feed, in text content. XML turns it into a
    /// line feed, but
    /// roxmltree keeps it as CR next to a character or entity reference, so canonical bytes
    /// (and the text read from them) would differ from every other implementation's.
    /// Refusing it keeps us from disagreeing with a signer about what was signed.
    #[error("lone carriage return (not part of CR LF) at {0}")]
    LoneCarriageReturn(Position),
    /// A processing instruction named `xml` (in any case). The name is reserved; roxmltree
    /// takes a malformed XML declaration such as `<?xml&amp; ...?>` for such a PI, which
    /// would then be canonicalized into bytes that no parser accepts.
    #[error("processing instruction with the reserved target \"xml\" at {0}")]
    ReservedPiTarget(Position),
    /// The text is not well-formed XML (or uses namespaces wrongly).
    #[error("malformed XML: {message}")]
    Malformed {
        /// The parser's description, with its position.
        message: String,
    },
}

/// A document that passed every check of the hardened reader.
///
/// Holding one is proof that the text went through [`parse`]; the canonicalizer and the
/// signature verifier take this type, never a bare tree.
pub struct Document<'input> {
    doc: tree::Document<'input>,
}

impl fmt::Debug for Document<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Document")
            .field("root", &self.doc.root_element().tag_name())
            .finish_non_exhaustive()
    }
}

impl<'input> Document<'input> {
    /// The parsed tree.
    pub fn tree(&self) -> &tree::Document<'input> {
        &self.doc
    }

    /// The document element.
    pub fn root_element<'a>(&'a self) -> tree::Node<'a, 'input> {
        self.doc.root_element()
    }

    /// The source text (after BOM removal).
    pub fn input_text(&self) -> &'input str {
        self.doc.input_text()
    }

    /// The 1-based line and column where `node` starts, for error messages.
    pub fn position(&self, node: tree::Node<'_, '_>) -> Position {
        self.doc.text_pos_at(node.range().start).into()
    }
}

/// Decodes bytes as UTF-8 (skipping a BOM) without parsing, enforcing the size limit.
pub fn decode_utf8<'a>(bytes: &'a [u8], limits: &Limits) -> Result<&'a str, Error> {
    if bytes.len() > limits.max_bytes {
        return Err(ReadError::TooLarge {
            size: bytes.len(),
            limit: limits.max_bytes,
        }
        .into());
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        ReadError::NotUtf8 {
            at: e.valid_up_to(),
        }
        .into()
    })
}

/// Parses bytes: [`decode_utf8`] then [`parse`].
pub fn parse_bytes<'a>(bytes: &'a [u8], limits: &Limits) -> Result<Document<'a>, Error> {
    parse(decode_utf8(bytes, limits)?, limits)
}

/// Parses `text` with the DTD ban and every limit in `limits`.
pub fn parse<'a>(text: &'a str, limits: &Limits) -> Result<Document<'a>, Error> {
    if text.len() > limits.max_bytes {
        return Err(ReadError::TooLarge {
            size: text.len(),
            limit: limits.max_bytes,
        }
        .into());
    }
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let doc = parser::parse(text, limits).map_err(|fail| read_error(text, limits, fail))?;
    Ok(Document { doc })
}

fn read_error(text: &str, limits: &Limits, fail: Fail) -> ReadError {
    let at = |byte| position_of(text, byte);
    match fail {
        Fail::Malformed(what, byte) => ReadError::Malformed {
            message: format!("{what} at {}", at(byte)),
        },
        Fail::Dtd(byte) => ReadError::DtdForbidden(at(byte)),
        Fail::TooManyNodes => ReadError::TooManyNodes {
            limit: limits.max_nodes,
        },
        Fail::TooDeep(byte) => ReadError::TooDeep {
            limit: limits.max_depth,
            at: at(byte),
        },
        Fail::TooManyAttributes(byte) => ReadError::TooManyAttributes {
            limit: limits.max_attributes,
            at: at(byte),
        },
        Fail::NameTooLong(byte) => ReadError::NameTooLong {
            limit: limits.max_name_len,
            at: at(byte),
        },
        Fail::TextTooLong(byte) => ReadError::TextTooLong {
            limit: limits.max_text_len,
            at: at(byte),
        },
        Fail::LoneCr(byte) => ReadError::LoneCarriageReturn(at(byte)),
        Fail::ReservedPi(byte) => ReadError::ReservedPiTarget(at(byte)),
    }
}

fn position_of(text: &str, byte: usize) -> Position {
    let before = text.get(..byte).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Position {
        line: u32::try_from(line).unwrap_or(u32::MAX),
        col: u32::try_from(col).unwrap_or(u32::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_err(text: &str, limits: &Limits) -> ReadError {
        match parse(text, limits) {
            Err(Error::Read(e)) => e,
            other => panic!("expected a read error, got {other:?}"),
        }
    }

    #[test]
    fn parses_plain_document() {
        let doc = parse("<a xmlns='urn:x'><b c='1'>t</b></a>", &Limits::default()).unwrap();
        assert_eq!(doc.root_element().tag_name().name(), "a");
        assert_eq!(doc.root_element().tag_name().namespace(), Some("urn:x"));
    }

    #[test]
    fn refuses_any_doctype_even_empty() {
        let e = read_err("<!DOCTYPE a>\n<a/>", &Limits::default());
        assert!(matches!(e, ReadError::DtdForbidden(p) if p.line == 1));
        let e = read_err(
            "<?xml version='1.0'?>\n<!DOCTYPE a [<!ENTITY x 'y'>]><a>&x;</a>",
            &Limits::default(),
        );
        assert!(matches!(e, ReadError::DtdForbidden(p) if p.line == 2));
    }

    #[test]
    fn refuses_xxe_and_billion_laughs() {
        let xxe = r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"#;
        assert!(matches!(
            read_err(xxe, &Limits::default()),
            ReadError::DtdForbidden(_)
        ));
        let lol = r#"<!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><l>&b;</l>"#;
        assert!(matches!(
            read_err(lol, &Limits::default()),
            ReadError::DtdForbidden(_)
        ));
    }

    #[test]
    fn undeclared_entity_is_malformed() {
        assert!(matches!(
            read_err("<a>&foo;</a>", &Limits::default()),
            ReadError::Malformed { .. }
        ));
    }

    #[test]
    fn size_limit_checked_before_parsing() {
        let limits = Limits {
            max_bytes: 10,
            ..Limits::default()
        };
        assert_eq!(
            read_err("<a>0123456789</a>", &limits),
            ReadError::TooLarge {
                size: 17,
                limit: 10
            }
        );
    }

    #[test]
    fn depth_limit_is_enforced_without_recursion() {
        let n = 100_000;
        let text = format!("{}{}", "<a>".repeat(n), "</a>".repeat(n));
        let limits = Limits {
            max_nodes: 1_000_000,
            ..Limits::default()
        };
        assert!(matches!(
            read_err(&text, &limits),
            ReadError::TooDeep { limit: 64, .. }
        ));
        let ok = format!("{}{}", "<a>".repeat(64), "</a>".repeat(64));
        assert!(parse(&ok, &Limits::default()).is_ok());
        let deep = format!("{}{}", "<a>".repeat(65), "</a>".repeat(65));
        assert!(matches!(
            read_err(&deep, &Limits::default()),
            ReadError::TooDeep { .. }
        ));
    }

    #[test]
    fn node_limit() {
        let limits = Limits {
            max_nodes: 10,
            ..Limits::default()
        };
        let text = format!("<r>{}</r>", "<a/>".repeat(20));
        assert_eq!(
            read_err(&text, &limits),
            ReadError::TooManyNodes { limit: 10 }
        );
    }

    #[test]
    fn attribute_limit_counts_namespace_declarations() {
        let limits = Limits {
            max_attributes: 3,
            ..Limits::default()
        };
        assert!(parse("<a x='1' y='2' xmlns:p='urn:p'/>", &limits).is_ok());
        assert!(matches!(
            read_err("<a x='1' y='2' xmlns:p='urn:p' xmlns:q='urn:q'/>", &limits),
            ReadError::TooManyAttributes { limit: 3, .. }
        ));
    }

    #[test]
    fn name_and_text_limits() {
        let limits = Limits {
            max_name_len: 8,
            max_text_len: 5,
            ..Limits::default()
        };
        assert!(matches!(
            read_err("<averylongname/>", &limits),
            ReadError::NameTooLong { .. }
        ));
        assert!(matches!(
            read_err("<a b='123456'/>", &limits),
            ReadError::TextTooLong { .. }
        ));
        assert!(matches!(
            read_err("<a>123456</a>", &limits),
            ReadError::TextTooLong { .. }
        ));
    }

    #[test]
    fn bom_and_utf8() {
        let doc = parse_bytes(b"\xEF\xBB\xBF<a/>", &Limits::default()).unwrap();
        assert_eq!(doc.root_element().tag_name().name(), "a");
        assert!(matches!(
            parse_bytes(b"<a>\xFF</a>", &Limits::default()),
            Err(Error::Read(ReadError::NotUtf8 { at: 3 }))
        ));
    }

    #[test]
    fn lone_carriage_return_is_refused_crlf_is_not() {
        for text in [
            "<a>x\r&amp;y</a>",
            "<a>x&amp;\r</a>",
            "<a>x\ry</a>",
            "<a><b/>\r</a>",
        ] {
            assert!(
                matches!(
                    read_err(text, &Limits::default()),
                    ReadError::LoneCarriageReturn(_)
                ),
                "{text:?}"
            );
        }
        let doc = parse("<a>x\r\n&amp;y&#13;</a>", &Limits::default()).unwrap();
        assert_eq!(doc.root_element().text(), Some("x\n&y\r"));
        // Attribute values are normalized correctly (CR becomes a space), so they pass.
        let doc = parse("<a b='x\ry'/>", &Limits::default()).unwrap();
        assert_eq!(doc.root_element().attribute("b"), Some("x y"));
    }

    #[test]
    fn reserved_pi_target_is_refused() {
        for text in ["<?xml&amp; version='1.0'?><a/>", "<a><?XmL x?></a>"] {
            assert!(
                matches!(
                    read_err(text, &Limits::default()),
                    ReadError::ReservedPiTarget(_)
                ),
                "{text:?}"
            );
        }
        assert!(
            parse(
                "<?xml version='1.0'?><a><?xml-stylesheet x?></a>",
                &Limits::default()
            )
            .is_ok()
        );
    }

    #[test]
    fn malformed_reports_position() {
        let e = read_err("<a>\n<b></a>", &Limits::default());
        let ReadError::Malformed { message } = e else {
            panic!()
        };
        assert!(message.contains("2:"), "{message}");
    }
}
