//! Protection of the Encrypted payload (SK, RFC 7296 3.14): AES-GCM with a 16-byte ICV (RFC 5282)
//! or AES-CBC-256 with HMAC-SHA2-256-128 (RFC 4868).
//!
//! `open` checks the ICV before it decrypts anything and hands back the inner payload chain only
//! when the padding is sound; `seal` builds a whole message around an inner payload chain, and
//! `seal_fragment` one fragment of it (RFC 7383: each fragment has its own IV and ICV). The
//! associated data (AEAD) or the integrity-checked bytes (CBC) are the message from its first byte
//! to the IV, so the header and the SK payload's own header are authenticated too.

use aws_lc_rs::aead::{self, Aad, LessSafeKey, UnboundKey, AES_128_GCM, AES_256_GCM};
use aws_lc_rs::cipher::{
    DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext, UnboundCipherKey, AES_256,
};
use aws_lc_rs::{constant_time, hmac, rand};
use zeroize::Zeroizing;

use super::keys::{IkeSaKeys, KeyLengths};
use super::prf::{Prf, SecretBytes};
use crate::wire::header::HEADER_LEN;
use crate::wire::payload::GENERIC_HEADER_LEN;
use crate::wire::sk::FRAGMENT_NUMBERS_LEN;
use crate::wire::{EncrId, Header, IntegId, PayloadType};

/// The encryption (and integrity) of an IKE SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IkeCipher {
    /// ENCR_AES_GCM_16 with a 128- or 256-bit key (16 or 32 bytes).
    AesGcm16 { key_bytes: usize },
    /// ENCR_AES_CBC with a 256-bit key and AUTH_HMAC_SHA2_256_128.
    AesCbc256HmacSha256,
}

/// The ICV length of both suites.
const ICV_LEN: usize = 16;
/// The salt that RFC 5282 takes from the end of each SK_e.
const GCM_SALT_LEN: usize = 4;
/// The explicit IV of AES-GCM in IKE (RFC 5282 3.1).
const GCM_IV_LEN: usize = 8;
/// The AES block, which is also the CBC IV.
const AES_BLOCK: usize = 16;

/// Why an SK payload could not be opened or sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkError {
    /// The body is shorter than its IV and ICV, or not a whole number of blocks.
    Length,
    /// The ICV does not match: the message is dropped without an answer (RFC 7296 2.21.2).
    Integrity,
    /// The pad length points before the start of the plaintext.
    Padding,
    /// The message would be longer than its length fields allow.
    TooLong,
    /// The crypto library failed.
    Library,
}

impl IkeCipher {
    /// The suite for an ENCR transform (with its key length) and, for CBC, an INTEG transform.
    pub fn from_transforms(encr: EncrId, key_bits: Option<u16>, integ: Option<IntegId>) -> Option<Self> {
        match (encr, key_bits, integ) {
            (EncrId::AES_GCM_16, Some(128), None | Some(IntegId::NONE)) => Some(Self::AesGcm16 { key_bytes: 16 }),
            (EncrId::AES_GCM_16, Some(256), None | Some(IntegId::NONE)) => Some(Self::AesGcm16 { key_bytes: 32 }),
            (EncrId::AES_CBC, Some(256), Some(IntegId::HMAC_SHA2_256_128)) => Some(Self::AesCbc256HmacSha256),
            _ => None,
        }
    }

    /// The key lengths this suite and `prf` give an IKE SA.
    pub fn key_lengths(self, prf: Prf) -> KeyLengths {
        match self {
            Self::AesGcm16 { key_bytes } => KeyLengths { prf, encryption: key_bytes + GCM_SALT_LEN, integrity: 0 },
            Self::AesCbc256HmacSha256 => KeyLengths { prf, encryption: 32, integrity: 32 },
        }
    }

    fn iv_len(self) -> usize {
        match self {
            Self::AesGcm16 { .. } => GCM_IV_LEN,
            Self::AesCbc256HmacSha256 => AES_BLOCK,
        }
    }
}

/// The keys of one direction.
enum DirectionKey {
    Gcm { key: LessSafeKey, salt: [u8; GCM_SALT_LEN] },
    Cbc { key: SecretBytes, mac: Box<hmac::Key> },
}

impl DirectionKey {
    fn new(cipher: IkeCipher, encryption: &[u8], integrity: &[u8]) -> Result<Self, SkError> {
        match cipher {
            IkeCipher::AesGcm16 { key_bytes } => {
                let algorithm = if key_bytes == 16 { &AES_128_GCM } else { &AES_256_GCM };
                let (key, salt) = encryption.split_at(key_bytes);
                let key = UnboundKey::new(algorithm, key).map_err(|_| SkError::Library)?;
                let salt = salt.try_into().map_err(|_| SkError::Library)?;
                Ok(Self::Gcm { key: LessSafeKey::new(key), salt })
            }
            IkeCipher::AesCbc256HmacSha256 => Ok(Self::Cbc {
                key: Zeroizing::new(encryption.to_vec()),
                mac: Box::new(hmac::Key::new(hmac::HMAC_SHA256, integrity)),
            }),
        }
    }
}

/// The SK protection of one IKE SA, from one side's point of view.
pub struct SkProtection {
    cipher: IkeCipher,
    outbound: DirectionKey,
    inbound: DirectionKey,
    /// The next explicit GCM IV: a counter, so that no IV repeats under a key (RFC 5282 3.1).
    next_gcm_iv: u64,
}

impl std::fmt::Debug for SkProtection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SkProtection").field("cipher", &self.cipher).finish_non_exhaustive()
    }
}

impl SkProtection {
    /// The responder's side: it seals with SK_er / SK_ar and opens with SK_ei / SK_ai.
    pub fn responder(cipher: IkeCipher, keys: &IkeSaKeys) -> Result<Self, SkError> {
        Self::new(cipher, (&keys.sk_er, &keys.sk_ar), (&keys.sk_ei, &keys.sk_ai))
    }

    /// The initiator's side: it seals with SK_ei / SK_ai and opens with SK_er / SK_ar.
    pub fn initiator(cipher: IkeCipher, keys: &IkeSaKeys) -> Result<Self, SkError> {
        Self::new(cipher, (&keys.sk_ei, &keys.sk_ai), (&keys.sk_er, &keys.sk_ar))
    }

    fn new(cipher: IkeCipher, outbound: (&[u8], &[u8]), inbound: (&[u8], &[u8])) -> Result<Self, SkError> {
        let mut start = [0u8; 8];
        rand::fill(&mut start).map_err(|_| SkError::Library)?;
        Ok(Self {
            cipher,
            outbound: DirectionKey::new(cipher, outbound.0, outbound.1)?,
            inbound: DirectionKey::new(cipher, inbound.0, inbound.1)?,
            next_gcm_iv: u64::from_be_bytes(start),
        })
    }

    /// The suite.
    pub fn cipher(&self) -> IkeCipher {
        self.cipher
    }

    /// Check and decrypt the protected body at the end of `datagram`, whose IV starts at
    /// `body_start` (after the SK payload header, or after SKF's fragment numbers); return the
    /// plaintext inner payloads, without padding.
    pub fn open(&self, datagram: &[u8], body_start: usize) -> Result<SecretBytes, SkError> {
        let iv_len = self.cipher.iv_len();
        if datagram.len() < body_start + iv_len + ICV_LEN + 1 {
            return Err(SkError::Length);
        }
        let (authenticated, icv) = datagram.split_at(datagram.len() - ICV_LEN);
        let iv = &authenticated[body_start..body_start + iv_len];
        // Ciphertext and ICV; the ICV is cut off once checked.
        let mut plaintext = Zeroizing::new(datagram[body_start + iv_len..].to_vec());
        match &self.inbound {
            DirectionKey::Gcm { key, salt } => {
                let aad = Aad::from(&datagram[..body_start]);
                let len =
                    key.open_in_place(gcm_nonce(salt, iv), aad, &mut plaintext).map_err(|_| SkError::Integrity)?.len();
                plaintext.truncate(len);
            }
            DirectionKey::Cbc { key, mac } => {
                let expected = hmac::sign(mac, authenticated);
                constant_time::verify_slices_are_equal(&expected.as_ref()[..ICV_LEN], icv)
                    .map_err(|_| SkError::Integrity)?;
                let ciphertext_len = plaintext.len() - ICV_LEN;
                plaintext.truncate(ciphertext_len);
                if plaintext.len() % AES_BLOCK != 0 {
                    return Err(SkError::Length);
                }
                let key = UnboundCipherKey::new(&AES_256, key).map_err(|_| SkError::Library)?;
                let key = DecryptingKey::cbc(key).map_err(|_| SkError::Library)?;
                let mut block = [0u8; AES_BLOCK];
                block.copy_from_slice(iv);
                key.decrypt(&mut plaintext, DecryptionContext::Iv128(block.into())).map_err(|_| SkError::Length)?;
            }
        }
        let pad_len = usize::from(*plaintext.last().ok_or(SkError::Padding)?);
        let inner_len = plaintext.len().checked_sub(pad_len + 1).ok_or(SkError::Padding)?;
        plaintext.truncate(inner_len);
        Ok(plaintext)
    }

    /// A whole message: `header` (its first payload and length filled in) and one SK payload
    /// holding the inner payload chain `inner`, whose first payload is `first_inner`.
    pub fn seal(&mut self, header: &Header, first_inner: PayloadType, inner: &[u8]) -> Result<Vec<u8>, SkError> {
        self.seal_payload(header, PayloadType::SK, first_inner, &[], inner)
    }

    /// One fragment of a message (RFC 7383 2.5): `header` and one SKF payload, number `number`
    /// of `total`, holding `chunk` of the inner payload chain. Only fragment 1 names the first
    /// inner payload.
    pub fn seal_fragment(
        &mut self,
        header: &Header,
        first_inner: PayloadType,
        (number, total): (u16, u16),
        chunk: &[u8],
    ) -> Result<Vec<u8>, SkError> {
        let first_inner = if number == 1 { first_inner } else { PayloadType::NONE };
        let mut numbers = [0u8; FRAGMENT_NUMBERS_LEN];
        numbers[..2].copy_from_slice(&number.to_be_bytes());
        numbers[2..].copy_from_slice(&total.to_be_bytes());
        self.seal_payload(header, PayloadType::SKF, first_inner, &numbers, chunk)
    }

    /// The length of a message holding an inner payload chain of `inner_len` bytes in one SK
    /// payload.
    pub fn sealed_len(&self, inner_len: usize) -> usize {
        HEADER_LEN + GENERIC_HEADER_LEN + self.cipher.iv_len() + inner_len + self.pad_len(inner_len) + 1 + ICV_LEN
    }

    /// The most bytes of an inner payload chain that one fragment of at most `message_len` bytes
    /// carries; 0 when not even one fits.
    pub fn fragment_capacity(&self, message_len: usize) -> usize {
        let overhead = HEADER_LEN + GENERIC_HEADER_LEN + FRAGMENT_NUMBERS_LEN + self.cipher.iv_len() + ICV_LEN;
        let room = message_len.saturating_sub(overhead);
        match self.cipher {
            // The pad length byte follows the chunk.
            IkeCipher::AesGcm16 { .. } => room.saturating_sub(1),
            // Chunk, padding and pad length fill whole blocks; no padding at all at best.
            IkeCipher::AesCbc256HmacSha256 => (room / AES_BLOCK * AES_BLOCK).saturating_sub(1),
        }
    }

    fn pad_len(&self, inner_len: usize) -> usize {
        match self.cipher {
            IkeCipher::AesGcm16 { .. } => 0,
            IkeCipher::AesCbc256HmacSha256 => (AES_BLOCK - (inner_len + 1) % AES_BLOCK) % AES_BLOCK,
        }
    }

    /// `header`, then one SK or SKF payload (`kind`) whose body is `prefix` (SKF's fragment
    /// numbers), the IV, `inner` encrypted, and the ICV.
    fn seal_payload(
        &mut self,
        header: &Header,
        kind: PayloadType,
        first_inner: PayloadType,
        prefix: &[u8],
        inner: &[u8],
    ) -> Result<Vec<u8>, SkError> {
        let iv_len = self.cipher.iv_len();
        let pad_len = self.pad_len(inner.len());
        let encrypted_len = inner.len() + pad_len + 1;
        let payload_len = GENERIC_HEADER_LEN + prefix.len() + iv_len + encrypted_len + ICV_LEN;
        let total = HEADER_LEN + payload_len;
        let mut header = *header;
        header.next_payload = kind;
        header.length = u32::try_from(total).map_err(|_| SkError::TooLong)?;
        let mut out = Vec::with_capacity(total);
        header.encode(&mut out);
        out.extend_from_slice(&[first_inner.0, 0]);
        out.extend_from_slice(&u16::try_from(payload_len).map_err(|_| SkError::TooLong)?.to_be_bytes());
        out.extend_from_slice(prefix);
        let body_start = out.len();
        let mut plaintext = Zeroizing::new(Vec::with_capacity(encrypted_len));
        plaintext.extend_from_slice(inner);
        plaintext.resize(inner.len() + pad_len, 0);
        plaintext.push(u8::try_from(pad_len).map_err(|_| SkError::Library)?);
        match &self.outbound {
            DirectionKey::Gcm { key, salt } => {
                let iv = self.next_gcm_iv.to_be_bytes();
                self.next_gcm_iv = self.next_gcm_iv.wrapping_add(1);
                out.extend_from_slice(&iv);
                let tag = key
                    .seal_in_place_separate_tag(gcm_nonce(salt, &iv), Aad::from(&out[..body_start]), &mut plaintext)
                    .map_err(|_| SkError::Library)?;
                out.extend_from_slice(&plaintext);
                out.extend_from_slice(tag.as_ref());
            }
            DirectionKey::Cbc { key, mac } => {
                let mut iv = [0u8; AES_BLOCK];
                rand::fill(&mut iv).map_err(|_| SkError::Library)?;
                out.extend_from_slice(&iv);
                let key = UnboundCipherKey::new(&AES_256, key).map_err(|_| SkError::Library)?;
                let key = EncryptingKey::cbc(key).map_err(|_| SkError::Library)?;
                key.less_safe_encrypt(&mut plaintext, EncryptionContext::Iv128(iv.into()))
                    .map_err(|_| SkError::Library)?;
                out.extend_from_slice(&plaintext);
                let tag = hmac::sign(mac, &out);
                out.extend_from_slice(&tag.as_ref()[..ICV_LEN]);
            }
        }
        Ok(out)
    }
}

fn gcm_nonce(salt: &[u8; GCM_SALT_LEN], iv: &[u8]) -> aead::Nonce {
    let mut nonce = [0u8; GCM_SALT_LEN + GCM_IV_LEN];
    nonce[..GCM_SALT_LEN].copy_from_slice(salt);
    nonce[GCM_SALT_LEN..].copy_from_slice(iv);
    aead::Nonce::assume_unique_for_key(nonce)
}
