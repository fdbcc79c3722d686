//! The content ciphers, in the byte layouts XML Encryption gives them.
//!
//! * GCM (XML-Enc 1.1 §5.2.4): `IV (12 bytes) || ciphertext || tag (16 bytes)`, no AAD.
//! * CBC (XML-Enc 1.0 §5.2): `IV (16 bytes) || ciphertext`, padded so that the last
//!   byte is the pad length (1 to 16) and the other pad bytes are arbitrary. That is
//!   not PKCS#7: xmlsec fills the pad with random bytes, so only the last byte may be
//!   checked. We write PKCS#7 padding, which is one valid choice of those bytes.

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, RandomizedNonceKey, UnboundKey};
use aws_lc_rs::cipher::{
    AES_128, AES_256, DecryptingKey, DecryptionContext, EncryptingKey, UnboundCipherKey,
};
use aws_lc_rs::iv::FixedLength;
use zeroize::Zeroizing;

use super::algorithm::DataAlgorithm;

const GCM_IV_LEN: usize = 12;
const GCM_TAG_LEN: usize = 16;
const BLOCK: usize = 16;

/// Encrypts `plaintext` with a fresh random IV. `None` if the key has the wrong length
/// or the random generator fails.
pub(super) fn encrypt(algorithm: DataAlgorithm, key: &[u8], plaintext: &[u8]) -> Option<Vec<u8>> {
    if key.len() != algorithm.key_len() {
        return None;
    }
    match algorithm {
        DataAlgorithm::Aes128Gcm | DataAlgorithm::Aes256Gcm => {
            let aead_alg = gcm_algorithm(algorithm);
            let sealer = RandomizedNonceKey::new(aead_alg, key).ok()?;
            let mut body = plaintext.to_vec();
            let nonce = sealer
                .seal_in_place_append_tag(Aad::empty(), &mut body)
                .ok()?;
            let mut out = Vec::with_capacity(GCM_IV_LEN + body.len());
            out.extend_from_slice(nonce.as_ref());
            out.extend_from_slice(&body);
            Some(out)
        }
        DataAlgorithm::Aes128Cbc | DataAlgorithm::Aes256Cbc => {
            let unbound = UnboundCipherKey::new(cbc_algorithm(algorithm), key).ok()?;
            let encrypting = EncryptingKey::cbc(unbound).ok()?;
            let pad = BLOCK - plaintext.len() % BLOCK;
            let mut body = Vec::with_capacity(plaintext.len() + pad);
            body.extend_from_slice(plaintext);
            // `pad` is 1..=16, so it fits a byte.
            body.resize(plaintext.len() + pad, u8::try_from(pad).ok()?);
            let context = encrypting.encrypt(&mut body).ok()?;
            let iv: &[u8] = (&context).try_into().ok()?;
            let mut out = Vec::with_capacity(iv.len() + body.len());
            out.extend_from_slice(iv);
            out.extend_from_slice(&body);
            Some(out)
        }
    }
}

/// Decrypts a CipherValue. `None` on every failure (key length, ciphertext length, tag,
/// padding), with no reason given.
pub(super) fn decrypt(
    algorithm: DataAlgorithm,
    key: &[u8],
    data: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    if key.len() != algorithm.key_len() {
        return None;
    }
    match algorithm {
        DataAlgorithm::Aes128Gcm | DataAlgorithm::Aes256Gcm => {
            if data.len() < GCM_IV_LEN + GCM_TAG_LEN {
                return None;
            }
            let (iv, body) = data.split_at(GCM_IV_LEN);
            let nonce = Nonce::try_assume_unique_for_key(iv).ok()?;
            let opener = LessSafeKey::new(UnboundKey::new(gcm_algorithm(algorithm), key).ok()?);
            let mut buf = Zeroizing::new(body.to_vec());
            let len = opener
                .open_in_place(nonce, Aad::empty(), &mut buf)
                .ok()?
                .len();
            buf.truncate(len);
            Some(buf)
        }
        DataAlgorithm::Aes128Cbc | DataAlgorithm::Aes256Cbc => {
            // At least the IV and one block, and whole blocks only.
            if data.len() < 2 * BLOCK || !data.len().is_multiple_of(BLOCK) {
                return None;
            }
            let (iv, body) = data.split_at(BLOCK);
            let iv: [u8; BLOCK] = iv.try_into().ok()?;
            let unbound = UnboundCipherKey::new(cbc_algorithm(algorithm), key).ok()?;
            let decrypting = DecryptingKey::cbc(unbound).ok()?;
            let mut buf = Zeroizing::new(body.to_vec());
            let len = decrypting
                .decrypt(&mut buf, DecryptionContext::Iv128(FixedLength::from(iv)))
                .ok()?
                .len();
            let pad = usize::from(*buf.get(len.checked_sub(1)?)?);
            if pad == 0 || pad > BLOCK {
                return None;
            }
            buf.truncate(len - pad);
            Some(buf)
        }
    }
}

fn gcm_algorithm(algorithm: DataAlgorithm) -> &'static aead::Algorithm {
    if algorithm.key_len() == 16 {
        &aead::AES_128_GCM
    } else {
        &aead::AES_256_GCM
    }
}

fn cbc_algorithm(algorithm: DataAlgorithm) -> &'static aws_lc_rs::cipher::Algorithm {
    if algorithm.key_len() == 16 {
        &AES_128
    } else {
        &AES_256
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_round_trips_and_refuses_a_wrong_key_length() {
        for alg in DataAlgorithm::ALL {
            let key = vec![7u8; alg.key_len()];
            for len in [0usize, 1, 15, 16, 17, 100] {
                let plain = vec![0x5Au8; len];
                let ct = encrypt(alg, &key, &plain).unwrap();
                assert_eq!(decrypt(alg, &key, &ct).unwrap().as_slice(), &plain[..]);
            }
            assert!(encrypt(alg, &[1u8; 24], b"x").is_none());
            assert!(decrypt(alg, &[1u8; 24], &[0u8; 64]).is_none());
        }
    }

    #[test]
    fn cbc_accepts_random_padding_bytes_but_checks_the_length_byte() {
        let key = [3u8; 16];
        let unbound = UnboundCipherKey::new(&AES_128, &key).unwrap();
        let enc = EncryptingKey::cbc(unbound).unwrap();
        // "hello" + 10 arbitrary bytes + length 11 (ISO 10126 style, as xmlsec writes).
        let mut block = b"hello\x91\x02\x33\xF4\x05\x66\x07\x88\x09\xAA\x0B".to_vec();
        let ctx = enc.encrypt(&mut block).unwrap();
        let iv: &[u8] = (&ctx).try_into().unwrap();
        let data = [iv, &block].concat();
        assert_eq!(
            decrypt(DataAlgorithm::Aes128Cbc, &key, &data)
                .unwrap()
                .as_slice(),
            b"hello"
        );
        for bad_len in [0u8, 17, 255] {
            let mut block = [0u8; 16];
            block[15] = bad_len;
            let unbound = UnboundCipherKey::new(&AES_128, &key).unwrap();
            let ctx = EncryptingKey::cbc(unbound)
                .unwrap()
                .encrypt(&mut block)
                .unwrap();
            let iv: &[u8] = (&ctx).try_into().unwrap();
            let data = [iv, &block].concat();
            assert!(decrypt(DataAlgorithm::Aes128Cbc, &key, &data).is_none());
        }
    }

    #[test]
    fn gcm_refuses_any_changed_byte_and_short_input() {
        let key = [9u8; 32];
        let ct = encrypt(DataAlgorithm::Aes256Gcm, &key, b"attack at dawn").unwrap();
        for i in 0..ct.len() {
            let mut bad = ct.clone();
            bad[i] ^= 1;
            assert!(
                decrypt(DataAlgorithm::Aes256Gcm, &key, &bad).is_none(),
                "byte {i}"
            );
        }
        assert!(decrypt(DataAlgorithm::Aes256Gcm, &key, &ct[..27]).is_none());
    }
}
