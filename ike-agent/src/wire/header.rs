//! The IKE header (RFC 7296 3.1).
//!
//! ```text
//!                      1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       IKE SA Initiator's SPI                  |
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       IKE SA Responder's SPI                  |
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Next Payload | MjVer | MnVer | Exchange Type |     Flags     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                          Message ID                           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                            Length                             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use super::codec::{put_u32, DecodeError, Reader};
use super::registry::{ExchangeType, PayloadType};

/// The IKE header's length.
pub const HEADER_LEN: usize = 28;

/// The only major version this crate speaks.
pub const MAJOR_VERSION: u8 = 2;

/// The header's flags octet, kept whole so that bits with no meaning here are carried unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags(pub u8);

impl Flags {
    /// Set by the original initiator of the IKE SA.
    pub const INITIATOR: u8 = 0x08;
    /// Set by a sender that could speak a higher major version.
    pub const VERSION: u8 = 0x10;
    /// Set in a response.
    pub const RESPONSE: u8 = 0x20;

    /// Whether the sender is the IKE SA's original initiator.
    pub fn initiator(self) -> bool {
        self.0 & Self::INITIATOR != 0
    }

    /// Whether the message is a response.
    pub fn response(self) -> bool {
        self.0 & Self::RESPONSE != 0
    }
}

/// A parsed IKE header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The initiator's IKE SPI.
    pub spi_i: u64,
    /// The responder's IKE SPI (zero in the first request).
    pub spi_r: u64,
    /// The type of the first payload.
    pub next_payload: PayloadType,
    /// The minor version (the major one is always 2 once parsed).
    pub minor_version: u8,
    /// The exchange this message belongs to.
    pub exchange: ExchangeType,
    /// Initiator, version and response flags.
    pub flags: Flags,
    /// The message ID.
    pub message_id: u32,
    /// The total length of the message, header included.
    pub length: u32,
}

impl Header {
    /// Read a header; a major version other than 2 is refused (the caller answers
    /// INVALID_MAJOR_VERSION or drops the message).
    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let spi_i = r.u64("IKE header")?;
        let spi_r = r.u64("IKE header")?;
        let next_payload = PayloadType(r.u8("IKE header")?);
        let version = r.u8("IKE header")?;
        let (major, minor_version) = (version >> 4, version & 0x0f);
        if major != MAJOR_VERSION {
            return Err(DecodeError::UnsupportedMajorVersion { major, minor: minor_version });
        }
        let exchange = ExchangeType(r.u8("IKE header")?);
        let flags = Flags(r.u8("IKE header")?);
        let message_id = r.u32("IKE header")?;
        let length = r.u32("IKE header")?;
        Ok(Self { spi_i, spi_r, next_payload, minor_version, exchange, flags, message_id, length })
    }

    /// Append the header as it stands (the caller fills `length` in, or patches it afterwards).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.spi_i.to_be_bytes());
        out.extend_from_slice(&self.spi_r.to_be_bytes());
        out.push(self.next_payload.0);
        out.push((MAJOR_VERSION << 4) | (self.minor_version & 0x0f));
        out.push(self.exchange.0);
        out.push(self.flags.0);
        put_u32(out, self.message_id);
        put_u32(out, self.length);
    }
}
