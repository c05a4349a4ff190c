//! The Encrypted and Authenticated payload (SK, RFC 7296 3.14) and its fragment form (SKF,
//! RFC 7383 2.5), carried opaque: the crypto suite splits the body into IV, ciphertext and ICV,
//! and the inner payloads are parsed once it has decrypted them.
//!
//! SK:
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Next Payload  |C|  RESERVED   |         Payload Length        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                     Initialization Vector                     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                    Encrypted IKE Payloads                     ~
//! +               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |               |             Padding (0-255 octets)            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                                               |  Pad Length   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                    Integrity Checksum Data                    ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! SKF adds, before the IV:
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |        Fragment Number        |        Total Fragments        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! The Next Payload field of either names the first inner payload (only in fragment 1 for SKF).

use super::codec::{put_u16, DecodeError, Reader};
use super::registry::PayloadType;

/// An SK payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encrypted {
    /// The type of the first encrypted payload.
    pub first_inner: PayloadType,
    /// IV, ciphertext (with padding and pad length) and ICV.
    pub body: Vec<u8>,
}

impl Encrypted {
    /// Read the payload body.
    pub fn read(first_inner: PayloadType, r: &mut Reader<'_>) -> Self {
        Self { first_inner, body: r.rest().to_vec() }
    }

    /// Append the payload body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.body);
    }
}

/// An SKF payload: one fragment of an SK payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedFragment {
    /// The type of the first encrypted payload in fragment 1, NONE in the others.
    pub first_inner: PayloadType,
    /// This fragment's number, from 1.
    pub number: u16,
    /// How many fragments the message was cut into.
    pub total: u16,
    /// IV, ciphertext and ICV of this fragment.
    pub body: Vec<u8>,
}

/// The length of the fragment numbers before an SKF payload's IV.
pub const FRAGMENT_NUMBERS_LEN: usize = 4;

impl EncryptedFragment {
    /// Read the payload body; a fragment number of 0 or above the total is refused.
    pub fn read(first_inner: PayloadType, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let number = r.u16("SKF payload")?;
        let total = r.u16("SKF payload")?;
        if number == 0 || number > total {
            return Err(DecodeError::FragmentNumber { number, total });
        }
        Ok(Self { first_inner, number, total, body: r.rest().to_vec() })
    }

    /// Append the payload body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_u16(out, self.number);
        put_u16(out, self.total);
        out.extend_from_slice(&self.body);
    }
}
