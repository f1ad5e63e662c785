//! base64url without padding (RFC 7515 §2 "Base64url Encoding", RFC 4648 §5).

use base64ct::{Base64, Base64UrlUnpadded, Encoding};

/// Encodes bytes as base64url without `=` padding.
#[must_use]
pub fn encode(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

/// Decodes base64url without padding; refuses padding, other alphabets, whitespace and
/// non-canonical trailing bits.
///
/// # Errors
/// [`base64ct::Error`] on any deviation.
pub fn decode(text: &str) -> Result<Vec<u8>, base64ct::Error> {
    Base64UrlUnpadded::decode_vec(text)
}

/// Decodes standard padded base64 (RFC 4648 §4), as found inside PEM bodies.
///
/// # Errors
/// [`base64ct::Error`] on invalid input.
pub fn decode_std(text: &str) -> Result<Vec<u8>, base64ct::Error> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    Base64::decode_vec(&compact)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rfc4648_vectors_in_url_alphabet() {
        // RFC 4648 §10 test vectors, padding removed.
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(encode(plain.as_bytes()), enc);
            assert_eq!(decode(enc).unwrap(), plain.as_bytes());
        }
        assert_eq!(encode(&[0xfb, 0xff]), "-_8");
        assert!(decode("Zg==").is_err());
        assert!(decode("+/8").is_err());
        assert!(decode("Zh").is_err(), "non-canonical trailing bits");
    }
}
