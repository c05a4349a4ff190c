//! Secret bytes (pre-shared keys, SA keys): wiped from memory when dropped, and never shown by
//! `Debug` or serialisation, so that no log line, error or `anygate check` output carries one.

use std::fmt;

use serde::{Serialize, Serializer};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Bytes that must not be shown or left behind in memory.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Take ownership of secret bytes.
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret(bytes)
    }

    /// Parse hexadecimal (an optional `0x`, pairs of digits, `:` between bytes allowed). The text
    /// is not echoed in errors.
    pub fn from_hex(text: &str) -> Result<Secret, &'static str> {
        let t = text.trim();
        let t = t.strip_prefix("0x").unwrap_or(t);
        let digits: Vec<u8> = t.bytes().filter(|b| *b != b':').collect();
        if digits.len() % 2 != 0 {
            return Err("an odd number of hexadecimal digits");
        }
        let mut out = Vec::with_capacity(digits.len() / 2);
        for pair in digits.chunks_exact(2) {
            let hi = (pair[0] as char).to_digit(16).ok_or("not hexadecimal")?;
            let lo = (pair[1] as char).to_digit(16).ok_or("not hexadecimal")?;
            out.push((hi * 16 + lo) as u8);
        }
        Ok(Secret(out))
    }

    /// The secret bytes, for the code that keys a cipher with them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<redacted, {} bytes>)", self.0.len())
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_parses_and_nothing_shows_the_bytes() {
        let s = Secret::from_hex("0x00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff").unwrap();
        assert_eq!(s.expose()[15], 0xff);
        assert_eq!(s.len(), 16);
        assert!(!format!("{s:?}").contains("ff"));
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"<redacted>\"");
        assert!(Secret::from_hex("abc").is_err());
        assert!(Secret::from_hex("zz").is_err());
    }
}
