//! ESP transforms: the encryption and integrity algorithms a Child SA uses, named as strongSwan
//! names ESP proposals (`aes128gcm16`, `aes256-sha256`, `null-sha1`), with the key lengths each
//! needs.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// The cipher of an ESP SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encryption {
    /// AES-GCM with a 16-byte ICV (RFC 4106): the key is followed by a 4-byte salt.
    AesGcm16 { key_bytes: usize },
    /// AES-CBC (RFC 3602), with a separate integrity algorithm.
    AesCbc { key_bytes: usize },
    /// No encryption (RFC 2410), with a separate integrity algorithm; only where a tunnel allows it.
    Null,
}

/// The integrity algorithm of an ESP SA that is not AEAD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Integrity {
    /// Provided by the AEAD cipher.
    Aead,
    /// HMAC-SHA2-256 truncated to 128 bits (RFC 4868).
    HmacSha256_128,
    /// HMAC-SHA1 truncated to 96 bits (RFC 2404).
    HmacSha1_96,
}

/// An ESP transform: cipher and integrity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Transform {
    pub encryption: Encryption,
    pub integrity: Integrity,
}

impl Transform {
    /// Bytes of encryption key material (with the salt for GCM).
    pub fn encryption_key_len(&self) -> usize {
        match self.encryption {
            Encryption::AesGcm16 { key_bytes } => key_bytes + 4,
            Encryption::AesCbc { key_bytes } => key_bytes,
            Encryption::Null => 0,
        }
    }

    /// Bytes of integrity key material.
    pub fn integrity_key_len(&self) -> usize {
        match self.integrity {
            Integrity::Aead => 0,
            Integrity::HmacSha256_128 => 32,
            Integrity::HmacSha1_96 => 20,
        }
    }

    /// Bytes of the IV carried in each packet.
    pub fn iv_len(&self) -> usize {
        match self.encryption {
            Encryption::AesGcm16 { .. } => 8,
            Encryption::AesCbc { .. } => 16,
            Encryption::Null => 0,
        }
    }

    /// Bytes of the ICV at the end of each packet.
    pub fn icv_len(&self) -> usize {
        match self.integrity {
            Integrity::Aead | Integrity::HmacSha256_128 => 16,
            Integrity::HmacSha1_96 => 12,
        }
    }

    /// The block the encrypted part (payload, padding, trailer) is padded to: a power of two, so
    /// that the fast path rounds with a mask rather than a division.
    pub fn block_len(&self) -> usize {
        match self.encryption {
            Encryption::AesCbc { .. } => 16,
            // RFC 4303 2.4: the trailer ends on a 4-byte boundary.
            Encryption::AesGcm16 { .. } | Encryption::Null => 4,
        }
    }

    /// Whether the transform leaves the payload readable.
    pub fn is_null(&self) -> bool {
        self.encryption == Encryption::Null
    }
}

impl fmt::Display for Transform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cipher = match self.encryption {
            Encryption::AesGcm16 { key_bytes } => return write!(f, "aes{}gcm16", key_bytes * 8),
            Encryption::AesCbc { key_bytes } => format!("aes{}", key_bytes * 8),
            Encryption::Null => "null".to_string(),
        };
        let integrity = match self.integrity {
            Integrity::Aead => "",
            Integrity::HmacSha256_128 => "-sha256",
            Integrity::HmacSha1_96 => "-sha1",
        };
        write!(f, "{cipher}{integrity}")
    }
}

impl Serialize for Transform {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Every transform by name, as they are written in a configuration.
pub const NAMES: &[&str] = &[
    "aes128gcm16",
    "aes256gcm16",
    "aes128-sha256",
    "aes256-sha256",
    "aes128-sha1",
    "aes256-sha1",
    "null-sha256",
    "null-sha1",
];

impl FromStr for Transform {
    type Err = String;

    fn from_str(text: &str) -> Result<Transform, String> {
        let t = text.trim().to_ascii_lowercase();
        if t.ends_with("-esn") || t.contains("-esn-") {
            return Err(format!("{text:?}: extended sequence numbers are not supported"));
        }
        let t = t.strip_suffix("-noesn").unwrap_or(&t);
        let aead = |key_bytes| Transform { encryption: Encryption::AesGcm16 { key_bytes }, integrity: Integrity::Aead };
        let with = |encryption, integrity| Transform { encryption, integrity };
        let found = match t {
            "aes128gcm16" | "aes128gcm128" => aead(16),
            "aes256gcm16" | "aes256gcm128" => aead(32),
            "aes128-sha256" => with(Encryption::AesCbc { key_bytes: 16 }, Integrity::HmacSha256_128),
            "aes256-sha256" => with(Encryption::AesCbc { key_bytes: 32 }, Integrity::HmacSha256_128),
            "aes128-sha1" => with(Encryption::AesCbc { key_bytes: 16 }, Integrity::HmacSha1_96),
            "aes256-sha1" => with(Encryption::AesCbc { key_bytes: 32 }, Integrity::HmacSha1_96),
            "null-sha256" => with(Encryption::Null, Integrity::HmacSha256_128),
            "null-sha1" => with(Encryption::Null, Integrity::HmacSha1_96),
            _ => return Err(format!("{text:?} is not a supported ESP transform (one of {})", NAMES.join(", "))),
        };
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_and_prints_back() {
        for name in NAMES {
            let t: Transform = name.parse().unwrap();
            assert_eq!(&t.to_string(), name);
        }
        let gcm: Transform = "aes256gcm16".parse().unwrap();
        assert_eq!((gcm.encryption_key_len(), gcm.integrity_key_len(), gcm.iv_len(), gcm.icv_len()), (36, 0, 8, 16));
        let cbc: Transform = "aes128-sha1".parse().unwrap();
        assert_eq!((cbc.encryption_key_len(), cbc.integrity_key_len(), cbc.iv_len(), cbc.icv_len()), (16, 20, 16, 12));
    }

    #[test]
    fn esn_and_unknown_names_are_refused() {
        assert!("aes128gcm16-esn".parse::<Transform>().unwrap_err().contains("extended sequence"));
        assert!("aes128gcm16-noesn".parse::<Transform>().is_ok());
        assert!("3des-md5".parse::<Transform>().unwrap_err().contains("not a supported"));
    }
}
