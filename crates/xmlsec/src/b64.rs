//! Decoding the base64 that signatures and encrypted data carry (`ds:SignatureValue`,
//! `ds:DigestValue`, `xenc:CipherValue`): the standard alphabet, padded, with zero
//! trailing bits, which is what the `base64` crate's `STANDARD` engine accepts.
//!
//! Its own decoder rather than the crate's because every signature check decodes two
//! short values and the crate's general engine is several times this code: a validation
//! runs more code than the instruction cache holds, so each line it fetches costs time.
//! The tests hold it to the crate, acceptance and output, over many inputs. Whitespace is
//! the callers' concern (XML text drops it before decoding).

/// Each byte's six bits in the standard alphabet, or `INVALID` (the padding `=` too:
/// it is only read where the last quantum allows it).
const SEXTETS: [u8; 256] = {
    let mut table = [INVALID; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut i = 0;
    while i < alphabet.len() {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
};

const INVALID: u8 = 0x80;

/// Decodes `text`, or `None` when it is not canonical padded base64: a length that is not
/// a multiple of four, a byte outside the alphabet, padding anywhere but at the end (one
/// or two `=`), or bits set that the padding says are unused.
pub(crate) fn decode(text: &[u8]) -> Option<Vec<u8>> {
    let (quanta, []) = text.as_chunks::<4>() else {
        return None;
    };
    let Some((last, quanta)) = quanta.split_last() else {
        return Some(Vec::new());
    };
    // The validity of every symbol is checked once, after the loop.
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut seen = 0u8;
    for q in quanta {
        let [a, b, c, d] = q.map(|byte| SEXTETS[usize::from(byte)]);
        seen |= a | b | c | d;
        let v = u32::from(a) << 18 | u32::from(b) << 12 | u32::from(c) << 6 | u32::from(d);
        out.extend_from_slice(&v.to_be_bytes()[1..]);
    }
    if seen & INVALID != 0 {
        return None;
    }
    let padding = match last {
        [_, _, b'=', b'='] => 2,
        [_, _, _, b'='] => 1,
        _ => 0,
    };
    let mut v = 0u32;
    for (i, &byte) in last.iter().enumerate().take(4 - padding) {
        let s = SEXTETS[usize::from(byte)];
        if s & INVALID != 0 {
            return None;
        }
        v |= u32::from(s) << (18 - 6 * i);
    }
    // The bits below the last whole byte must be zero: otherwise two texts would decode
    // to the same bytes.
    if v & ((1 << (8 * padding)) - 1) != 0 {
        return None;
    }
    out.extend_from_slice(&v.to_be_bytes()[1..4 - padding]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::decode;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    fn same_as_crate(text: &[u8]) {
        assert_eq!(
            decode(text),
            STANDARD.decode(text).ok(),
            "{:?}",
            String::from_utf8_lossy(text)
        );
    }

    /// Every text of up to five bytes over an alphabet that holds each class of symbol:
    /// the ends of each range, the two specials, padding, and bytes the alphabet lacks.
    #[test]
    fn short_texts_exhaustively() {
        let symbols = b"AB/+=Pazg09-_ \n\x80";
        let mut text = Vec::new();
        for len in 0..=5u32 {
            for mut n in 0..symbols.len().pow(len) {
                text.clear();
                for _ in 0..len {
                    text.push(symbols[n % symbols.len()]);
                    n /= symbols.len();
                }
                same_as_crate(&text);
            }
        }
    }

    /// Every final quantum with one or two padding bytes and every one without, after a
    /// whole quantum: each trailing-bits case.
    #[test]
    fn every_final_quantum() {
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        for &a in alphabet {
            for &b in alphabet {
                same_as_crate(&[b'Q', b'U', b'J', b'D', a, b, b'=', b'=']);
                for &c in alphabet {
                    same_as_crate(&[a, b, c, b'=']);
                    same_as_crate(&[b'=', a, b, c]);
                    same_as_crate(&[a, b'=', b, c]);
                }
            }
        }
    }

    /// Encodings of random bytes, as they are and with one byte changed, inserted or
    /// removed somewhere.
    #[test]
    fn random_texts_and_their_mutations() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let bytes = b"AZaz09+/=-_ .\n\x00\xff";
        for _ in 0..20_000 {
            let len = (next() % 300) as usize;
            let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let encoded = STANDARD.encode(&data).into_bytes();
            assert_eq!(decode(&encoded), Some(data));
            if encoded.is_empty() {
                continue;
            }
            let at = (next() as usize) % encoded.len();
            let byte = bytes[(next() as usize) % bytes.len()];
            let mut changed = encoded.clone();
            changed[at] = byte;
            same_as_crate(&changed);
            let mut inserted = encoded.clone();
            inserted.insert(at, byte);
            same_as_crate(&inserted);
            let mut removed = encoded.clone();
            removed.remove(at);
            same_as_crate(&removed);
        }
    }
}
