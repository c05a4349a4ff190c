//! Key derivation for IKE SAs and Child SAs (RFC 7296 2.13-2.18, RFC 9370 2.2.4).

use super::prf::{Prf, SecretBytes};

/// SKEYSEED = prf(Ni | Nr, g^ir) (RFC 7296 2.14).
pub fn skeyseed(prf: Prf, ni: &[u8], nr: &[u8], shared_secret: &[u8]) -> SecretBytes {
    let mut key = zeroize::Zeroizing::new(Vec::with_capacity(ni.len() + nr.len()));
    key.extend_from_slice(ni);
    key.extend_from_slice(nr);
    prf.compute(&key, &[shared_secret])
}

/// SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr): for an IKE SA rekey (RFC 7296 2.18) and for
/// each additional key exchange, with SK(n) in place of g^ir (RFC 9370 2.2.4).
pub fn skeyseed_from_sk_d(prf: Prf, sk_d: &[u8], shared_secret: &[u8], ni: &[u8], nr: &[u8]) -> SecretBytes {
    prf.compute(sk_d, &[shared_secret, ni, nr])
}

/// The lengths of an IKE SA's keys, set by its transforms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyLengths {
    /// The PRF, which also sets the lengths of SK_d, SK_pi and SK_pr.
    pub prf: Prf,
    /// SK_ei and SK_er, salt included for AES-GCM (RFC 5282 7.1).
    pub encryption: usize,
    /// SK_ai and SK_ar, zero for AEAD.
    pub integrity: usize,
}

/// The seven keys of an IKE SA.
#[derive(Debug)]
pub struct IkeSaKeys {
    /// Keys Child SAs and rekeys.
    pub sk_d: SecretBytes,
    /// Integrity, initiator to responder.
    pub sk_ai: SecretBytes,
    /// Integrity, responder to initiator.
    pub sk_ar: SecretBytes,
    /// Encryption, initiator to responder.
    pub sk_ei: SecretBytes,
    /// Encryption, responder to initiator.
    pub sk_er: SecretBytes,
    /// The initiator's AUTH key.
    pub sk_pi: SecretBytes,
    /// The responder's AUTH key.
    pub sk_pr: SecretBytes,
}

impl IkeSaKeys {
    /// {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr).
    pub fn derive(lengths: KeyLengths, skeyseed: &[u8], ni: &[u8], nr: &[u8], spi_i: u64, spi_r: u64) -> Self {
        let prf_len = lengths.prf.output_len();
        let total = 3 * prf_len + 2 * lengths.integrity + 2 * lengths.encryption;
        let material = lengths
            .prf
            .plus(skeyseed, &[ni, nr, &spi_i.to_be_bytes(), &spi_r.to_be_bytes()], total)
            .expect("IKE SA keys are far under 255 PRF blocks");
        let (i, e) = (lengths.integrity, lengths.encryption);
        let [sk_d, sk_ai, sk_ar, sk_ei, sk_er, sk_pi, sk_pr] =
            split(&material, [prf_len, i, i, e, e, prf_len, prf_len]);
        Self { sk_d, sk_ai, sk_ar, sk_ei, sk_er, sk_pi, sk_pr }
    }
}

/// Cut `material` into keys of the given lengths, in order.
fn split<const N: usize>(material: &[u8], lengths: [usize; N]) -> [SecretBytes; N] {
    let mut rest = material;
    lengths.map(|n| {
        let (key, tail) = rest.split_at(n);
        rest = tail;
        zeroize::Zeroizing::new(key.to_vec())
    })
}

/// The keys of one direction of a Child SA.
#[derive(Debug)]
pub struct DirectionKeys {
    /// The encryption key (with the salt for AES-GCM).
    pub encryption: SecretBytes,
    /// The integrity key, empty for AES-GCM.
    pub integrity: SecretBytes,
}

/// The keys of a Child SA, initiator-to-responder first (RFC 7296 2.17): each direction takes
/// its encryption key, then its integrity key, from KEYMAT.
pub fn child_keys(
    prf: Prf,
    sk_d: &[u8],
    shared_secrets: &[&[u8]],
    nonces: (&[u8], &[u8]),
    encryption_len: usize,
    integrity_len: usize,
) -> (DirectionKeys, DirectionKeys) {
    let (ni, nr) = nonces;
    let keymat = child_keymat(prf, sk_d, shared_secrets, ni, nr, 2 * (encryption_len + integrity_len));
    let [ei, ii, er, ir] = split(&keymat, [encryption_len, integrity_len, encryption_len, integrity_len]);
    (DirectionKeys { encryption: ei, integrity: ii }, DirectionKeys { encryption: er, integrity: ir })
}

/// KEYMAT = prf+(SK_d, [g^ir (new) | ...] | Ni | Nr): `len` bytes for a Child SA, with the shared
/// secrets of its key exchanges if it had any (RFC 7296 2.17, RFC 9370 2.2.4).
pub fn child_keymat(prf: Prf, sk_d: &[u8], shared_secrets: &[&[u8]], ni: &[u8], nr: &[u8], len: usize) -> SecretBytes {
    let mut seed: Vec<&[u8]> = shared_secrets.to_vec();
    seed.extend([ni, nr]);
    prf.plus(sk_d, &seed, len).expect("Child SA keys are far under 255 PRF blocks")
}
