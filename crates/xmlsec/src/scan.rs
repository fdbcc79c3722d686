//! Skipping runs of ordinary bytes eight at a time, for the reader's tokenizer and the
//! C14N writer: most of a SAML message is base64, URIs and IDs, in which neither finds
//! anything to do.
//!
//! Each test says exactly whether a word holds a byte of interest (no false negatives;
//! a borrow across bytes can only flag more), so callers finish each run byte by byte.

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Whether any byte of `x` equals `c`.
#[inline(always)]
fn has(x: u64, c: u8) -> bool {
    let y = x ^ (LO * u64::from(c));
    (y.wrapping_sub(LO) & !y & HI) != 0
}

/// Whether any byte of `x` is below 0x20 (a control, or tab, LF, CR).
#[inline(always)]
fn has_control(x: u64) -> bool {
    (x.wrapping_sub(LO * 0x20) & !x & HI) != 0
}

#[inline(always)]
fn word(b: &[u8], i: usize) -> Option<u64> {
    let chunk = b.get(i..i + 8)?;
    let mut w = [0u8; 8];
    w.copy_from_slice(chunk);
    Some(u64::from_le_bytes(w))
}

/// From `i`, skips whole words of printable ASCII holding none of `stops`; returns
/// where the first word that might hold something begins (or the last, partial one).
#[inline(always)]
pub(crate) fn skip_ascii<const N: usize>(b: &[u8], mut i: usize, stops: [u8; N]) -> usize {
    while let Some(x) = word(b, i) {
        if x & HI != 0 || has_control(x) || stops.iter().any(|&c| has(x, c)) {
            break;
        }
        i += 8;
    }
    i
}

/// As [`skip_ascii`], but non-ASCII bytes do not stop it (they are ordinary to a writer).
#[inline(always)]
pub(crate) fn skip_utf8<const N: usize>(b: &[u8], mut i: usize, stops: [u8; N]) -> usize {
    while let Some(x) = word(b, i) {
        if has_control(x) || stops.iter().any(|&c| has(x, c)) {
            break;
        }
        i += 8;
    }
    i
}

/// Byte equality for the short strings names and namespace URIs are, a word at a time,
/// without the call into libc's `memcmp` that `==` makes: the readers compare a name or
/// URI a few hundred times per message, and that call was a tenth of their time.
#[inline]
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n >= 8 {
        let mut i = 0;
        while i + 8 < n {
            if word(a, i) != word(b, i) {
                return false;
            }
            i += 8;
        }
        // The last word overlaps the one before: no byte-by-byte tail.
        return word(a, n - 8) == word(b, n - 8);
    }
    if n >= 4 {
        return half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4);
    }
    a.iter().zip(b).all(|(x, y)| x == y)
}

#[inline(always)]
fn half(b: &[u8], i: usize) -> Option<u32> {
    let chunk = b.get(i..i + 4)?;
    let mut w = [0u8; 4];
    w.copy_from_slice(chunk);
    Some(u32::from_le_bytes(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_at_the_word_holding_a_stop_or_a_control() {
        let text = b"abcdefgh12345678abc<efgh";
        assert_eq!(skip_ascii(text, 0, [b'<']), 16);
        assert_eq!(skip_ascii(b"abcdefgh\tbcdefgh", 0, [b'<']), 8);
        assert_eq!(skip_ascii("abcdefghé1234567".as_bytes(), 0, [b'<']), 8);
        // é is two bytes: three whole words pass, the 25th byte is left over.
        assert_eq!(
            skip_utf8("abcdefghé1234567xxxxxxxx".as_bytes(), 0, [b'<']),
            24
        );
        // A partial last word is left to the caller.
        assert_eq!(skip_ascii(b"abcdefghabc", 0, [b'<']), 8);
    }

    #[test]
    fn same_is_byte_equality() {
        let words = [
            "",
            "a",
            "ab",
            "saml",
            "Issuer",
            "abcdefgh",
            "abcdefgi",
            "bbcdefgh",
            "abcdefghi",
            "abcdefghj",
            "urn:oasis:names:tc:SAML:2.0:assertion",
            "urn:oasis:names:tc:SAML:2.0:assertioN",
            "urn:oasis:names:tc:SAML:2.0:protocol",
        ];
        for a in words {
            for b in words {
                assert_eq!(same(a.as_bytes(), b.as_bytes()), a == b, "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn finds_every_stop_in_every_position() {
        for stop in [b'<', b'&', b'"', b'\'', b'>'] {
            for at in 0..8 {
                let mut w = *b"abcdefgh";
                w[at] = stop;
                assert_eq!(skip_ascii(&w, 0, [b'<', b'&', b'"', b'\'', b'>']), 0);
                let mut c = *b"abcdefgh";
                c[at] = [0u8, 1, 9, 10, 13, 31, 0x7f - 0x60, 0x1f][at];
                assert_eq!(skip_utf8(&c, 0, [b'<']), 0, "{c:?}");
            }
        }
        assert_eq!(skip_ascii(b" ~!#$%()", 0, [b'<']), 8);
    }
}
