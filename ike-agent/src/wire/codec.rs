//! The byte reader every payload parser reads through, and the writer helpers they emit with.
//!
//! A `Reader` never reads past its slice: each length field of the message is turned into a
//! sub-reader of exactly that many bytes, and a parser that leaves bytes unread in a sub-reader is an
//! error, so a length that disagrees with its contents is always caught.

use std::fmt;

/// Why a message could not be decoded; each variant names the exact violation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// `what` needs `needed` more bytes, but only `left` remain.
    Truncated { what: &'static str, needed: usize, left: usize },
    /// The length field of `what` says `length`, which is under its own fixed part.
    LengthTooSmall { what: &'static str, length: usize },
    /// `count` bytes follow the end of `what`.
    TrailingBytes { what: &'static str, count: usize },
    /// The IKE header's major version is `major`, not 2.
    UnsupportedMajorVersion { major: u8, minor: u8 },
    /// The IKE header's length field says `declared`, the datagram holds `actual`.
    MessageLengthMismatch { declared: u32, actual: usize },
    /// `what` declares `declared` entries but holds `found`.
    CountMismatch { what: &'static str, declared: usize, found: usize },
    /// The "last substructure" field of `what` is `value`, where `expected` belongs.
    BadSubstructureMarker { what: &'static str, value: u8, expected: u8 },
    /// A Nonce of `length` bytes, outside the 16 to 256 that RFC 7296 3.9 allows.
    NonceLength { length: usize },
    /// A traffic selector of type `ts_type` with a selector length of `length`.
    SelectorLength { ts_type: u8, length: usize },
    /// A Delete payload for protocol `protocol` with SPI size `spi_size`.
    DeleteSpiSize { protocol: u8, spi_size: u8 },
    /// An Encrypted and Authenticated payload that is not the last payload of its message.
    EncryptedNotLast,
    /// A fragment numbered `number` of `total` (RFC 7383 2.5: 1 <= number <= total).
    FragmentNumber { number: u16, total: u16 },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { what, needed, left } => {
                write!(f, "{what} truncated: needs {needed} bytes, {left} left")
            }
            Self::LengthTooSmall { what, length } => write!(f, "{what} length {length} is under its fixed part"),
            Self::TrailingBytes { what, count } => write!(f, "{count} bytes after the end of {what}"),
            Self::UnsupportedMajorVersion { major, minor } => write!(f, "IKE version {major}.{minor}, not 2"),
            Self::MessageLengthMismatch { declared, actual } => {
                write!(f, "IKE header says {declared} bytes, the datagram holds {actual}")
            }
            Self::CountMismatch { what, declared, found } => {
                write!(f, "{what} declares {declared} entries, holds {found}")
            }
            Self::BadSubstructureMarker { what, value, expected } => {
                write!(f, "{what} has last-substructure {value}, expected {expected}")
            }
            Self::NonceLength { length } => write!(f, "nonce of {length} bytes (16 to 256 allowed)"),
            Self::SelectorLength { ts_type, length } => {
                write!(f, "traffic selector type {ts_type} with length {length}")
            }
            Self::DeleteSpiSize { protocol, spi_size } => {
                write!(f, "Delete for protocol {protocol} with SPI size {spi_size}")
            }
            Self::EncryptedNotLast => write!(f, "Encrypted payload is not the last payload"),
            Self::FragmentNumber { number, total } => write!(f, "fragment {number} of {total}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// A payload or message too long for its 16- or 32-bit length field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLong {
    /// What was being encoded.
    pub what: &'static str,
    /// Its length in bytes.
    pub length: usize,
}

impl fmt::Display for TooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {} bytes does not fit its length field", self.what, self.length)
    }
}

impl std::error::Error for TooLong {}

/// A cursor over a byte slice that never reads past its end.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    /// Read `buf` from its start.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, offset: 0 }
    }

    /// The bytes not read yet.
    pub fn left(&self) -> usize {
        self.buf.len() - self.offset
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.left() == 0
    }

    /// How many bytes have been read.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Take the next `n` bytes of `what`.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if n > self.left() {
            return Err(DecodeError::Truncated { what, needed: n, left: self.left() });
        }
        let bytes = &self.buf[self.offset..self.offset + n];
        self.offset += n;
        Ok(bytes)
    }

    /// Take everything that is left.
    pub fn rest(&mut self) -> &'a [u8] {
        let bytes = &self.buf[self.offset..];
        self.offset = self.buf.len();
        bytes
    }

    /// A reader over the next `n` bytes, which this reader skips.
    pub fn sub(&mut self, n: usize, what: &'static str) -> Result<Reader<'a>, DecodeError> {
        self.take(n, what).map(Reader::new)
    }

    /// Read one byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }

    /// Read a big-endian u16.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// Read a big-endian u32.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Read a big-endian u64.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        let b = self.take(8, what)?;
        let mut word = [0; 8];
        word.copy_from_slice(b);
        Ok(u64::from_be_bytes(word))
    }

    /// Read a fixed-size array.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    /// Fail unless every byte has been read.
    pub fn expect_end(&self, what: &'static str) -> Result<(), DecodeError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes { what, count: self.left() })
        }
    }
}

/// Append a big-endian u16.
pub fn put_u16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_be_bytes());
}

/// Append a big-endian u32.
pub fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_be_bytes());
}

/// Reserve a 16-bit length at `at` (already written as zero), then fill it with the bytes written
/// since `start`.
pub fn patch_u16_length(out: &mut [u8], at: usize, start: usize, what: &'static str) -> Result<(), TooLong> {
    let length = out.len() - start;
    let value = u16::try_from(length).map_err(|_| TooLong { what, length })?;
    out[at..at + 2].copy_from_slice(&value.to_be_bytes());
    Ok(())
}
