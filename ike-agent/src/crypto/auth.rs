//! Pre-shared-key authentication (RFC 7296 2.15).
//!
//! ```text
//! AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)
//! InitiatorSignedOctets = RealMessage1 | NonceRData | prf(SK_pi, RestOfInitIDPayload)
//! ResponderSignedOctets = RealMessage2 | NonceIData | prf(SK_pr, RestOfRespIDPayload)
//! ```
//! With IKE_INTERMEDIATE exchanges, their IntAuth value follows the MACed ID (RFC 9242 3.3.2).

use aws_lc_rs::constant_time;

use super::prf::{Prf, SecretBytes};

/// The pad RFC 7296 2.15 mixes into the pre-shared key.
const KEY_PAD: &[u8] = b"Key Pad for IKEv2";

/// What one side signs: its first message as sent, the other side's nonce, its own SK_p and the
/// body of its ID payload (after the generic header), and the IntAuth chain if there was one.
#[derive(Debug, Clone, Copy)]
pub struct SignedOctets<'a> {
    /// IKE_SA_INIT request (initiator) or response (responder), every byte as sent.
    pub real_message: &'a [u8],
    /// The other side's nonce data.
    pub peer_nonce: &'a [u8],
    /// SK_pi (initiator) or SK_pr (responder).
    pub sk_p: &'a [u8],
    /// The ID payload's body: ID type, reserved bytes and data.
    pub id_body: &'a [u8],
    /// IntAuth of the IKE_INTERMEDIATE exchanges, empty without them.
    pub int_auth: &'a [u8],
}

/// The AUTH data for `octets` under the pre-shared key `psk`.
pub fn psk_auth(prf: Prf, psk: &[u8], octets: &SignedOctets<'_>) -> SecretBytes {
    let padded_key = prf.compute(psk, &[KEY_PAD]);
    let maced_id = prf.compute(octets.sk_p, &[octets.id_body]);
    prf.compute(&padded_key, &[octets.real_message, octets.peer_nonce, &maced_id, octets.int_auth])
}

/// Whether `received` is the AUTH data for `octets`, compared in constant time.
pub fn verify_psk_auth(prf: Prf, psk: &[u8], octets: &SignedOctets<'_>, received: &[u8]) -> bool {
    constant_time::verify_slices_are_equal(&psk_auth(prf, psk, octets), received).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_is_the_rfc_formula_and_any_change_breaks_it() {
        let prf = Prf::HmacSha256;
        let octets = SignedOctets {
            real_message: b"message one",
            peer_nonce: &[9; 32],
            sk_p: &[5; 32],
            id_body: b"\x03\0\0\0ipsec@t.a.example",
            int_auth: &[],
        };
        // Spelled out once by hand, from RFC 7296 2.15.
        let key = prf.compute(b"secret", &[b"Key Pad for IKEv2"]);
        let maced = prf.compute(&[5; 32], &[b"\x03\0\0\0ipsec@t.a.example"]);
        let expected = prf.compute(&key, &[b"message one", &[9; 32], &maced]);
        assert_eq!(*psk_auth(prf, b"secret", &octets), *expected);
        assert!(verify_psk_auth(prf, b"secret", &octets, &expected));
        assert!(!verify_psk_auth(prf, b"Secret", &octets, &expected));
        assert!(!verify_psk_auth(
            prf,
            b"secret",
            &SignedOctets { id_body: b"\x02\0\0\0t.a.example", ..octets },
            &expected
        ));
        assert!(!verify_psk_auth(prf, b"secret", &octets, &expected[..31]));
    }
}
