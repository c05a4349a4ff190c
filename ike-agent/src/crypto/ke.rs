//! Key exchange methods: MODP groups 5 and 14, ECP-384 (group 20, RFC 5903) and ML-KEM-768/1024
//! as additional key exchanges (RFC 9370, transform IDs 36 and 37).
//!
//! The responder side is one call (`respond`): it takes the initiator's value and returns ours and
//! the shared secret. The initiator side (`initiate`, then `PendingKe::finish`) serves our own
//! initiator in tests and load generation. Every peer value is validated before use: its exact
//! length, and then the group's own check (RFC 6989; the point on the curve; the ML-KEM key's
//! encoding).

use aws_lc_rs::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey, ECDH_P384};
use aws_lc_rs::kem::{Ciphertext, DecapsulationKey, EncapsulationKey, ML_KEM_1024, ML_KEM_768};
use aws_lc_rs::rand;
use zeroize::Zeroizing;

use super::modp::{ModpGroup, ModpSecret};
use super::prf::SecretBytes;
use crate::wire::KeMethod;

/// A key exchange method this responder accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyExchangeMethod {
    /// Group 5.
    Modp1536,
    /// Group 14.
    Modp2048,
    /// Group 20.
    Ecp384,
    /// ML-KEM-768, only as an additional key exchange.
    MlKem768,
    /// ML-KEM-1024, only as an additional key exchange.
    MlKem1024,
}

/// Why a key exchange failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeError {
    /// The peer's value is `got` bytes long, the method's are `expected`.
    Length { expected: usize, got: usize },
    /// The peer's value has the right length but is not a valid value of the method.
    InvalidValue,
    /// The crypto library failed.
    Library,
}

impl std::fmt::Display for KeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Length { expected, got } => write!(f, "key exchange value of {got} bytes, expected {expected}"),
            Self::InvalidValue => f.write_str("key exchange value is not valid for its method"),
            Self::Library => f.write_str("key exchange failed in the crypto library"),
        }
    }
}

impl std::error::Error for KeError {}

/// The ECP-384 public value is x | y (RFC 5903 7), without the 0x04 of SEC 1's encoding.
const ECP384_VALUE_LEN: usize = 96;
/// SEC 1's marker of an uncompressed point.
const SEC1_UNCOMPRESSED: u8 = 0x04;

impl KeyExchangeMethod {
    /// The method for a transform ID, if it is one this responder accepts.
    pub fn from_id(id: KeMethod) -> Option<Self> {
        match id {
            KeMethod::MODP_1536 => Some(Self::Modp1536),
            KeMethod::MODP_2048 => Some(Self::Modp2048),
            KeMethod::ECP_384 => Some(Self::Ecp384),
            KeMethod::ML_KEM_768 => Some(Self::MlKem768),
            KeMethod::ML_KEM_1024 => Some(Self::MlKem1024),
            _ => None,
        }
    }

    /// The transform ID.
    pub fn id(self) -> KeMethod {
        match self {
            Self::Modp1536 => KeMethod::MODP_1536,
            Self::Modp2048 => KeMethod::MODP_2048,
            Self::Ecp384 => KeMethod::ECP_384,
            Self::MlKem768 => KeMethod::ML_KEM_768,
            Self::MlKem1024 => KeMethod::ML_KEM_1024,
        }
    }

    /// Whether the method is a KEM, allowed only as an additional key exchange (RFC 9370).
    pub fn is_kem(self) -> bool {
        matches!(self, Self::MlKem768 | Self::MlKem1024)
    }

    /// The length of the initiator's KE data (an ML-KEM encapsulation key).
    pub fn initiator_value_len(self) -> usize {
        match self {
            Self::Modp1536 => ModpGroup::Modp1536.value_len(),
            Self::Modp2048 => ModpGroup::Modp2048.value_len(),
            Self::Ecp384 => ECP384_VALUE_LEN,
            Self::MlKem768 => 1184,
            Self::MlKem1024 => 1568,
        }
    }

    /// The length of the responder's KE data (an ML-KEM ciphertext).
    pub fn responder_value_len(self) -> usize {
        match self {
            Self::MlKem768 => 1088,
            Self::MlKem1024 => 1568,
            other => other.initiator_value_len(),
        }
    }

    /// As responder: our KE data and the shared secret, from the initiator's KE data.
    pub fn respond(self, initiator_value: &[u8]) -> Result<(Vec<u8>, SecretBytes), KeError> {
        check_len(self.initiator_value_len(), initiator_value)?;
        match self {
            Self::Modp1536 | Self::Modp2048 | Self::Ecp384 => {
                let (pending, ours) = self.initiate()?;
                let shared = pending.finish(initiator_value)?;
                Ok((ours, shared))
            }
            Self::MlKem768 | Self::MlKem1024 => {
                let algorithm = if self == Self::MlKem768 { &ML_KEM_768 } else { &ML_KEM_1024 };
                let key = EncapsulationKey::new(algorithm, initiator_value).map_err(|_| KeError::InvalidValue)?;
                // aws-lc checks the key's encoding (FIPS 203 7.2, coefficients below q) when it
                // encapsulates: a failure there is the peer's value.
                let (ciphertext, shared) = key.encapsulate().map_err(|_| KeError::InvalidValue)?;
                Ok((ciphertext.as_ref().to_vec(), Zeroizing::new(shared.as_ref().to_vec())))
            }
        }
    }

    /// As initiator: a fresh private value and our KE data.
    pub fn initiate(self) -> Result<(PendingKe, Vec<u8>), KeError> {
        match self {
            Self::Modp1536 | Self::Modp2048 => {
                let group = if self == Self::Modp1536 { ModpGroup::Modp1536 } else { ModpGroup::Modp2048 };
                let mut random = Zeroizing::new([0u8; 32]);
                rand::fill(random.as_mut()).map_err(|_| KeError::Library)?;
                let secret = ModpSecret::from_random(&random);
                let value = group.public_value(&secret);
                Ok((PendingKe(Pending::Modp(group, secret)), value))
            }
            Self::Ecp384 => {
                let private = EphemeralPrivateKey::generate(&ECDH_P384, &rand::SystemRandom::new())
                    .map_err(|_| KeError::Library)?;
                let public = private.compute_public_key().map_err(|_| KeError::Library)?;
                // aws-lc-rs gives SEC 1 (0x04 | x | y); IKE sends x | y.
                let value = public.as_ref().get(1..).ok_or(KeError::Library)?.to_vec();
                Ok((PendingKe(Pending::Ecp384(private)), value))
            }
            Self::MlKem768 | Self::MlKem1024 => {
                let algorithm = if self == Self::MlKem768 { &ML_KEM_768 } else { &ML_KEM_1024 };
                let key = DecapsulationKey::generate(algorithm).map_err(|_| KeError::Library)?;
                let value = key.encapsulation_key().map_err(|_| KeError::Library)?;
                let value = value.key_bytes().map_err(|_| KeError::Library)?.as_ref().to_vec();
                Ok((PendingKe(Pending::MlKem(self, key)), value))
            }
        }
    }
}

fn check_len(expected: usize, value: &[u8]) -> Result<(), KeError> {
    if value.len() == expected {
        Ok(())
    } else {
        Err(KeError::Length { expected, got: value.len() })
    }
}

/// An initiator's private value, waiting for the responder's KE data.
#[derive(Debug)]
pub struct PendingKe(Pending);

enum Pending {
    Modp(ModpGroup, ModpSecret),
    Ecp384(EphemeralPrivateKey),
    MlKem(KeyExchangeMethod, DecapsulationKey<aws_lc_rs::kem::AlgorithmId>),
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Modp(ModpGroup::Modp1536, _) => "Modp1536(..)",
            Self::Modp(ModpGroup::Modp2048, _) => "Modp2048(..)",
            Self::Ecp384(_) => "Ecp384(..)",
            Self::MlKem(..) => "MlKem(..)",
        })
    }
}

impl PendingKe {
    /// The shared secret, from the peer's KE data.
    pub fn finish(self, peer_value: &[u8]) -> Result<SecretBytes, KeError> {
        match self.0 {
            Pending::Modp(group, secret) => {
                check_len(group.value_len(), peer_value)?;
                group.shared_secret(&secret, peer_value).map_err(|_| KeError::InvalidValue)
            }
            Pending::Ecp384(private) => {
                check_len(ECP384_VALUE_LEN, peer_value)?;
                let mut point = Vec::with_capacity(1 + ECP384_VALUE_LEN);
                point.push(SEC1_UNCOMPRESSED);
                point.extend_from_slice(peer_value);
                // aws-lc refuses a point that is not on the curve (RFC 6989 2.3).
                agreement::agree_ephemeral(
                    private,
                    UnparsedPublicKey::new(&ECDH_P384, &point),
                    KeError::InvalidValue,
                    |x| Ok(Zeroizing::new(x.to_vec())),
                )
            }
            Pending::MlKem(method, key) => {
                check_len(method.responder_value_len(), peer_value)?;
                let shared = key.decapsulate(Ciphertext::from(peer_value)).map_err(|_| KeError::InvalidValue)?;
                Ok(Zeroizing::new(shared.as_ref().to_vec()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [KeyExchangeMethod; 5] = [
        KeyExchangeMethod::Modp1536,
        KeyExchangeMethod::Modp2048,
        KeyExchangeMethod::Ecp384,
        KeyExchangeMethod::MlKem768,
        KeyExchangeMethod::MlKem1024,
    ];

    #[test]
    fn initiator_and_responder_agree_for_every_method() {
        for method in ALL {
            let (pending, initiator_value) = method.initiate().unwrap();
            assert_eq!(initiator_value.len(), method.initiator_value_len(), "{method:?}");
            let (responder_value, responder_secret) = method.respond(&initiator_value).unwrap();
            assert_eq!(responder_value.len(), method.responder_value_len(), "{method:?}");
            let initiator_secret = pending.finish(&responder_value).unwrap();
            assert_eq!(*initiator_secret, *responder_secret, "{method:?}");
            assert_eq!(KeyExchangeMethod::from_id(method.id()), Some(method));
        }
    }

    #[test]
    fn values_of_the_wrong_length_are_refused() {
        for method in ALL {
            let short = vec![1u8; method.initiator_value_len() - 1];
            let expected = KeError::Length { expected: method.initiator_value_len(), got: short.len() };
            assert_eq!(method.respond(&short).map(|_| ()), Err(expected), "{method:?}");
        }
    }

    #[test]
    fn a_point_off_the_curve_is_refused() {
        let (_, mut value) = KeyExchangeMethod::Ecp384.initiate().unwrap();
        value[95] ^= 1;
        assert_eq!(KeyExchangeMethod::Ecp384.respond(&value).map(|_| ()), Err(KeError::InvalidValue));
        assert_eq!(KeyExchangeMethod::Modp2048.respond(&[0; 256]).map(|_| ()), Err(KeError::InvalidValue));
    }

    #[test]
    fn an_ml_kem_key_with_coefficients_out_of_range_is_refused() {
        // FIPS 203 7.2: every 12-bit coefficient of the encapsulation key must be below q = 3329.
        let value = vec![0xff; KeyExchangeMethod::MlKem768.initiator_value_len()];
        assert_eq!(KeyExchangeMethod::MlKem768.respond(&value).map(|_| ()), Err(KeError::InvalidValue));
    }
}
