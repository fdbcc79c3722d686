//! Byte-level output rules of C14N: which characters become references in text and in
//! attribute values, and the line-end normalization that comments and PIs still need.
//!
//! Each writer copies the longest run of plain bytes in one `extend_from_slice`, so the
//! common case (no special characters) costs one scan and one copy.

use crate::scan;

/// Character data: `&`, `<`, `>` and CR are escaped (C14N 1.0 §2.3, "Text Nodes").
pub(super) fn text(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let plain = scan::skip_utf8(bytes, 0, [b'&', b'<', b'>']);
    escape(out, bytes, plain, &TEXT_SPECIAL, |b| match b {
        b'&' => Some(b"&amp;"),
        b'<' => Some(b"&lt;"),
        b'>' => Some(b"&gt;"),
        b'\r' => Some(b"&#xD;"),
        _ => None,
    });
}

/// Attribute values and namespace URIs: `&`, `<`, `"` and the three whitespace
/// characters that attribute-value normalization would otherwise fold into spaces.
pub(super) fn attribute(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let plain = scan::skip_utf8(bytes, 0, [b'&', b'<', b'"']);
    escape(out, bytes, plain, &ATTRIBUTE_SPECIAL, |b| match b {
        b'&' => Some(b"&amp;"),
        b'<' => Some(b"&lt;"),
        b'"' => Some(b"&quot;"),
        b'\t' => Some(b"&#x9;"),
        b'\n' => Some(b"&#xA;"),
        b'\r' => Some(b"&#xD;"),
        _ => None,
    });
}

/// Comment and PI content, which the parser hands over raw: XML line-end handling
/// (CRLF and lone CR become LF) still applies to them, and nothing is escaped.
pub(super) fn raw_with_line_ends(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes.get(i) == Some(&b'\r') {
            out.extend_from_slice(bytes.get(start..i).unwrap_or_default());
            out.push(b'\n');
            i += if bytes.get(i + 1) == Some(&b'\n') {
                2
            } else {
                1
            };
            start = i;
        } else {
            i += 1;
        }
    }
    out.extend_from_slice(bytes.get(start..).unwrap_or_default());
}

/// The bytes each writer replaces, as a table: one load per byte instead of a chain of
/// comparisons.
const fn special(bytes: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < bytes.len() {
        t[bytes[i] as usize] = true;
        i += 1;
    }
    t
}

static TEXT_SPECIAL: [bool; 256] = special(b"&<>\r");
static ATTRIBUTE_SPECIAL: [bool; 256] = special(b"&<\"\t\n\r");

/// Writes `bytes` with `replacement` applied to the bytes `special` marks; the first
/// `plain` bytes are known to need none (a word scan found nothing there).
#[inline]
fn escape(
    out: &mut Vec<u8>,
    bytes: &[u8],
    plain: usize,
    special: &[bool; 256],
    replacement: impl Fn(u8) -> Option<&'static [u8]>,
) {
    let mut start = 0;
    let rest = bytes.get(plain..).unwrap_or_default();
    for (i, &b) in rest.iter().enumerate() {
        if !special[usize::from(b)] {
            continue;
        }
        let i = i + plain;
        if let Some(rep) = replacement(b) {
            out.extend_from_slice(bytes.get(start..i).unwrap_or_default());
            out.extend_from_slice(rep);
            start = i + 1;
        }
    }
    out.extend_from_slice(bytes.get(start..).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(f: fn(&mut Vec<u8>, &str), s: &str) -> String {
        let mut out = Vec::new();
        f(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_escapes() {
        assert_eq!(
            run(text, "a&b<c>d\re\"f'\t\n"),
            "a&amp;b&lt;c&gt;d&#xD;e\"f'\t\n"
        );
        assert_eq!(run(text, ""), "");
        assert_eq!(run(text, "ünï"), "ünï");
    }

    #[test]
    fn attribute_escapes() {
        assert_eq!(
            run(attribute, "a&b<c>d\"e'\t\n\r"),
            "a&amp;b&lt;c>d&quot;e'&#x9;&#xA;&#xD;"
        );
    }

    #[test]
    fn line_ends() {
        assert_eq!(
            run(raw_with_line_ends, "a\r\nb\rc\n\r\r\nd\r"),
            "a\nb\nc\n\n\nd\n"
        );
        assert_eq!(run(raw_with_line_ends, "<&>"), "<&>");
    }
}
