//! The pseudorandom functions of IKE SAs (HMAC-SHA2-256/384/512, RFC 4868) and prf+ (RFC 7296 2.13).
//!
//! Every output is key material: it is returned zeroizing and never printed.

use aws_lc_rs::hmac;
use zeroize::Zeroizing;

use crate::wire::PrfId;

/// A negotiated PRF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prf {
    /// PRF_HMAC_SHA2_256.
    HmacSha256,
    /// PRF_HMAC_SHA2_384.
    HmacSha384,
    /// PRF_HMAC_SHA2_512.
    HmacSha512,
}

/// Key material that is wiped when dropped.
pub type SecretBytes = Zeroizing<Vec<u8>>;

/// prf+ stops after 255 blocks: its counter is one octet (RFC 7296 2.13).
const MAX_BLOCKS: usize = 255;

impl Prf {
    /// The PRF for a transform ID, if it is one this responder accepts.
    pub fn from_id(id: PrfId) -> Option<Self> {
        match id {
            PrfId::HMAC_SHA2_256 => Some(Self::HmacSha256),
            PrfId::HMAC_SHA2_384 => Some(Self::HmacSha384),
            PrfId::HMAC_SHA2_512 => Some(Self::HmacSha512),
            _ => None,
        }
    }

    /// The transform ID.
    pub fn id(self) -> PrfId {
        match self {
            Self::HmacSha256 => PrfId::HMAC_SHA2_256,
            Self::HmacSha384 => PrfId::HMAC_SHA2_384,
            Self::HmacSha512 => PrfId::HMAC_SHA2_512,
        }
    }

    fn algorithm(self) -> hmac::Algorithm {
        match self {
            Self::HmacSha256 => hmac::HMAC_SHA256,
            Self::HmacSha384 => hmac::HMAC_SHA384,
            Self::HmacSha512 => hmac::HMAC_SHA512,
        }
    }

    /// The output length, which is also the length of SK_d, SK_pi and SK_pr (RFC 7296 2.14).
    pub fn output_len(self) -> usize {
        match self {
            Self::HmacSha256 => 32,
            Self::HmacSha384 => 48,
            Self::HmacSha512 => 64,
        }
    }

    /// prf(key, data).
    pub fn compute(self, key: &[u8], data: &[&[u8]]) -> SecretBytes {
        let key = hmac::Key::new(self.algorithm(), key);
        let mut context = hmac::Context::with_key(&key);
        for part in data {
            context.update(part);
        }
        Zeroizing::new(context.sign().as_ref().to_vec())
    }

    /// prf+(key, seed), `len` bytes of it: T1 | T2 | ... with Tn = prf(key, Tn-1 | seed | n).
    ///
    /// Returns `None` past 255 blocks, which no suite here comes near.
    pub fn plus(self, key: &[u8], seed: &[&[u8]], len: usize) -> Option<SecretBytes> {
        if len > MAX_BLOCKS * self.output_len() {
            return None;
        }
        let key = hmac::Key::new(self.algorithm(), key);
        let mut out = Zeroizing::new(Vec::with_capacity(len + self.output_len()));
        let mut previous: Option<hmac::Tag> = None;
        let mut counter = 1u8;
        while out.len() < len {
            let mut context = hmac::Context::with_key(&key);
            if let Some(tag) = &previous {
                context.update(tag.as_ref());
            }
            for part in seed {
                context.update(part);
            }
            context.update(&[counter]);
            let tag = context.sign();
            out.extend_from_slice(tag.as_ref());
            previous = Some(tag);
            counter = counter.wrapping_add(1);
        }
        out.truncate(len);
        Some(out)
    }
}
