//! Finite-field Diffie-Hellman over the MODP groups 5 (1536 bits, RFC 3526 2) and 14 (2048 bits,
//! RFC 3526 3), in constant time with crypto-bigint.
//!
//! The private exponent is 256 bits, over twice the strength of either group (RFC 3526 8); the
//! exponentiation runs in time independent of its value. A peer's public value y is accepted only
//! if 1 < y < p-1 (RFC 6989 2.1: with these safe primes, that also rules out small subgroups).

use crypto_bigint::modular::{MontyForm, MontyParams};
use crypto_bigint::{Encoding, Odd, Uint, U1536, U2048, U256};
use zeroize::{Zeroize, Zeroizing};

use super::prf::SecretBytes;

/// The group 5 prime: 2^1536 - 2^1472 - 1 + 2^64 * { [2^1406 pi] + 741804 }.
const PRIME_1536: U1536 = U1536::from_be_hex(concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD",
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F",
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA237327FFFFFFFFFFFFFFFF",
));

/// The group 14 prime: 2^2048 - 2^1984 - 1 + 2^64 * { [2^1918 pi] + 124476 }.
const PRIME_2048: U2048 = U2048::from_be_hex(concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD",
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F",
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510",
    "15728E5A8AACAA68FFFFFFFFFFFFFFFF",
));

/// The private exponent's length in bits.
const EXPONENT_BITS: u32 = 256;

/// A MODP group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModpGroup {
    /// Group 5.
    Modp1536,
    /// Group 14.
    Modp2048,
}

/// Why a peer's public value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModpError {
    /// Not exactly the prime's length.
    Length,
    /// Outside 1 < y < p-1.
    OutOfRange,
}

/// A private exponent, wiped on drop.
pub struct ModpSecret(U256);

impl std::fmt::Debug for ModpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ModpSecret(..)")
    }
}

impl Drop for ModpSecret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ModpSecret {
    /// An exponent from 32 random bytes.
    pub fn from_random(bytes: &[u8; 32]) -> Self {
        Self(U256::from_be_slice(bytes))
    }
}

impl ModpGroup {
    /// The length of public values and of the shared secret, in bytes.
    pub fn value_len(self) -> usize {
        match self {
            Self::Modp1536 => 192,
            Self::Modp2048 => 256,
        }
    }

    /// g^x mod p, big-endian, padded to the prime's length.
    pub fn public_value(self, secret: &ModpSecret) -> Vec<u8> {
        match self {
            Self::Modp1536 => power(PRIME_1536, Uint::from_u8(2), &secret.0).to_be_bytes().to_vec(),
            Self::Modp2048 => power(PRIME_2048, Uint::from_u8(2), &secret.0).to_be_bytes().to_vec(),
        }
    }

    /// y^x mod p for the peer's public value y, padded to the prime's length (RFC 7296 2.14).
    pub fn shared_secret(self, secret: &ModpSecret, peer: &[u8]) -> Result<SecretBytes, ModpError> {
        if peer.len() != self.value_len() {
            return Err(ModpError::Length);
        }
        match self {
            Self::Modp1536 => shared(PRIME_1536, U1536::from_be_slice(peer), &secret.0),
            Self::Modp2048 => shared(PRIME_2048, U2048::from_be_slice(peer), &secret.0),
        }
    }
}

fn power<const LIMBS: usize>(prime: Uint<LIMBS>, base: Uint<LIMBS>, exponent: &U256) -> Uint<LIMBS> {
    let params = MontyParams::new_vartime(Odd::new(prime).expect("the MODP primes are odd"));
    MontyForm::new(&base, params).pow_bounded_exp(exponent, EXPONENT_BITS).retrieve()
}

fn shared<const LIMBS: usize>(prime: Uint<LIMBS>, peer: Uint<LIMBS>, exponent: &U256) -> Result<SecretBytes, ModpError>
where
    Uint<LIMBS>: Encoding,
{
    // The range check concerns a public value: it need not be constant time.
    let p_minus_1 = prime.wrapping_sub(&Uint::ONE);
    if peer <= Uint::ONE || peer >= p_minus_1 {
        return Err(ModpError::OutOfRange);
    }
    let mut value = power(prime, peer, exponent);
    let bytes = Zeroizing::new(value.to_be_bytes().as_ref().to_vec());
    value.zeroize();
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_agree_and_values_are_padded() {
        for group in [ModpGroup::Modp1536, ModpGroup::Modp2048] {
            let a = ModpSecret::from_random(&[0x11; 32]);
            let b = ModpSecret::from_random(&[0x7f; 32]);
            let (ya, yb) = (group.public_value(&a), group.public_value(&b));
            assert_eq!((ya.len(), yb.len()), (group.value_len(), group.value_len()));
            assert_eq!(*group.shared_secret(&a, &yb).unwrap(), *group.shared_secret(&b, &ya).unwrap());
        }
    }

    #[test]
    fn exponent_one_gives_the_generator() {
        let mut one = [0; 32];
        one[31] = 1;
        let public = ModpGroup::Modp2048.public_value(&ModpSecret::from_random(&one));
        assert_eq!(public[255], 2);
        assert!(public[..255].iter().all(|b| *b == 0));
    }

    #[test]
    fn degenerate_public_values_are_refused() {
        let group = ModpGroup::Modp2048;
        let secret = ModpSecret::from_random(&[0x42; 32]);
        let mut value = vec![0u8; 256];
        assert_eq!(group.shared_secret(&secret, &value), Err(ModpError::OutOfRange), "0");
        value[255] = 1;
        assert_eq!(group.shared_secret(&secret, &value), Err(ModpError::OutOfRange), "1");
        let p_minus_1 = PRIME_2048.wrapping_sub(&Uint::ONE).to_be_bytes();
        assert_eq!(group.shared_secret(&secret, &p_minus_1), Err(ModpError::OutOfRange), "p-1");
        assert_eq!(group.shared_secret(&secret, &PRIME_2048.to_be_bytes()), Err(ModpError::OutOfRange), "p");
        assert_eq!(group.shared_secret(&secret, &[0xff; 256]), Err(ModpError::OutOfRange), "above p");
        assert_eq!(group.shared_secret(&secret, &[2; 255]), Err(ModpError::Length));
        value[255] = 2;
        assert!(group.shared_secret(&secret, &value).is_ok(), "2 is a valid public value");
    }
}
