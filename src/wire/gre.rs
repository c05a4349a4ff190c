//! GRE header view (RFC 2784, with the key and sequence number extensions of RFC 2890).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |C| |K|S| Reserved0       | Ver |         Protocol Type         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |      Checksum (optional)      |       Reserved1 (Optional)    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         Key (optional)                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                 Sequence Number (Optional)                    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! `new_checked` checks only that the header the flags announce fits in the buffer; the version
//! and the reserved bits are the caller's decision (a receiver drops what it does not implement).

use byteorder::{ByteOrder, NetworkEndian};

use super::{checksum, Error, Result};

/// A GRE header and its payload.
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

mod field {
    pub type Field = core::ops::Range<usize>;
    pub const FLAGS_VERSION: Field = 0..2;
    pub const PROTOCOL: Field = 2..4;
    /// The checksum, present when C is set.
    pub const CHECKSUM: Field = 4..6;
}

/// The checksum-present flag.
const FLAG_C: u16 = 0x8000;
/// The key-present flag (RFC 2890).
const FLAG_K: u16 = 0x2000;
/// The sequence-number-present flag (RFC 2890).
const FLAG_S: u16 = 0x1000;
/// Bits 1, 4 and 5 of Reserved0: RFC 2784 says a receiver discards a packet with any of bits 1-5
/// set unless it implements RFC 1701 (routing, strict source route); bits 2 and 3 are K and S.
const RESERVED_MUST_BE_ZERO: u16 = 0x4000 | 0x0800 | 0x0400;
const VERSION_MASK: u16 = 0x0007;

/// The length of the mandatory part of the header.
pub const BASE_HEADER_LEN: usize = 4;

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wrap a buffer, checking that the whole header its flags announce fits.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Check that the header, with its optional fields, fits in the buffer.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < BASE_HEADER_LEN || len < self.header_len() {
            Err(Error)
        } else {
            Ok(())
        }
    }

    /// Give the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    fn flags_version(&self) -> u16 {
        NetworkEndian::read_u16(&self.buffer.as_ref()[field::FLAGS_VERSION])
    }

    /// Whether the checksum field is present.
    #[inline]
    pub fn checksum_present(&self) -> bool {
        self.flags_version() & FLAG_C != 0
    }

    /// Whether the key field is present.
    #[inline]
    pub fn key_present(&self) -> bool {
        self.flags_version() & FLAG_K != 0
    }

    /// Whether the sequence number field is present.
    #[inline]
    pub fn sequence_present(&self) -> bool {
        self.flags_version() & FLAG_S != 0
    }

    /// Whether any reserved bit a receiver must see as zero is set.
    #[inline]
    pub fn reserved_bits_set(&self) -> bool {
        self.flags_version() & RESERVED_MUST_BE_ZERO != 0
    }

    /// The version field (0 for GRE; 1 is PPTP's enhanced GRE).
    #[inline]
    pub fn version(&self) -> u8 {
        (self.flags_version() & VERSION_MASK) as u8
    }

    /// The protocol type of the payload (an ethertype).
    #[inline]
    pub fn protocol(&self) -> u16 {
        NetworkEndian::read_u16(&self.buffer.as_ref()[field::PROTOCOL])
    }

    /// The header length the flags announce.
    #[inline]
    pub fn header_len(&self) -> usize {
        let flags = self.flags_version();
        BASE_HEADER_LEN
            + if flags & FLAG_C != 0 { 4 } else { 0 }
            + if flags & FLAG_K != 0 { 4 } else { 0 }
            + if flags & FLAG_S != 0 { 4 } else { 0 }
    }

    /// The checksum field, if present.
    pub fn checksum(&self) -> Option<u16> {
        self.checksum_present().then(|| NetworkEndian::read_u16(&self.buffer.as_ref()[field::CHECKSUM]))
    }

    /// The key, if present.
    pub fn key(&self) -> Option<u32> {
        let at = BASE_HEADER_LEN + if self.checksum_present() { 4 } else { 0 };
        self.key_present().then(|| NetworkEndian::read_u32(&self.buffer.as_ref()[at..at + 4]))
    }

    /// The sequence number, if present.
    pub fn sequence_number(&self) -> Option<u32> {
        let at = self.header_len() - 4;
        self.sequence_present().then(|| NetworkEndian::read_u32(&self.buffer.as_ref()[at..at + 4]))
    }

    /// Whether the checksum over header and payload is right (true when no checksum is present).
    pub fn verify_checksum(&self) -> bool {
        !self.checksum_present() || checksum::data(self.buffer.as_ref()) == !0
    }

    /// The payload after the header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set the flags for the optional fields and the version; clears every reserved bit.
    pub fn set_flags_version(&mut self, checksum: bool, key: bool, sequence: bool, version: u8) {
        let flags = if checksum { FLAG_C } else { 0 }
            | if key { FLAG_K } else { 0 }
            | if sequence { FLAG_S } else { 0 }
            | (version as u16 & VERSION_MASK);
        NetworkEndian::write_u16(&mut self.buffer.as_mut()[field::FLAGS_VERSION], flags);
    }

    /// Set the protocol type.
    pub fn set_protocol(&mut self, value: u16) {
        NetworkEndian::write_u16(&mut self.buffer.as_mut()[field::PROTOCOL], value);
    }

    /// Set the key (the flag must say it is present).
    pub fn set_key(&mut self, value: u32) {
        let at = BASE_HEADER_LEN + if self.checksum_present() { 4 } else { 0 };
        NetworkEndian::write_u32(&mut self.buffer.as_mut()[at..at + 4], value);
    }

    /// Set the sequence number (the flag must say it is present).
    pub fn set_sequence_number(&mut self, value: u32) {
        let at = self.header_len() - 4;
        NetworkEndian::write_u32(&mut self.buffer.as_mut()[at..at + 4], value);
    }

    /// Compute and write the checksum over the header and payload (the flag must say it is present).
    pub fn fill_checksum(&mut self) {
        let buf = self.buffer.as_mut();
        buf[4..8].fill(0);
        let sum = !checksum::data(buf);
        NetworkEndian::write_u16(&mut buf[field::CHECKSUM], sum);
    }

    /// The payload after the header, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let at = self.header_len();
        &mut self.buffer.as_mut()[at..]
    }
}

/// The parsed form of a GRE header.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct Repr {
    /// Payload protocol (ethertype).
    pub protocol: u16,
    /// Whether a checksum is (to be) present.
    pub checksum: bool,
    pub key: Option<u32>,
    pub sequence_number: Option<u32>,
}

impl Repr {
    /// Parse a GRE header: version 0 with no reserved bit set, checksum right where present.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        packet.check_len()?;
        if packet.version() != 0 || packet.reserved_bits_set() || !packet.verify_checksum() {
            return Err(Error);
        }
        Ok(Repr {
            protocol: packet.protocol(),
            checksum: packet.checksum_present(),
            key: packet.key(),
            sequence_number: packet.sequence_number(),
        })
    }

    /// The header length of this representation.
    pub fn buffer_len(&self) -> usize {
        BASE_HEADER_LEN
            + if self.checksum { 4 } else { 0 }
            + if self.key.is_some() { 4 } else { 0 }
            + if self.sequence_number.is_some() { 4 } else { 0 }
    }

    /// Write the header; the checksum, where present, is left for [`Packet::fill_checksum`] once
    /// the payload is in place.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_flags_version(self.checksum, self.key.is_some(), self.sequence_number.is_some(), 0);
        packet.set_protocol(self.protocol);
        if self.checksum {
            packet.buffer.as_mut()[4..8].fill(0);
        }
        if let Some(key) = self.key {
            packet.set_key(key);
        }
        if let Some(seq) = self.sequence_number {
            packet.set_sequence_number(seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // GRE header with no options carrying IPv4 (RFC 2784 section 2.1).
    static PLAIN: [u8; 6] = [0x00, 0x00, 0x08, 0x00, 0xaa, 0xbb];

    #[test]
    fn plain_header() {
        let p = Packet::new_checked(&PLAIN[..]).unwrap();
        assert_eq!(p.header_len(), 4);
        assert_eq!(p.version(), 0);
        assert_eq!(p.protocol(), 0x0800);
        assert_eq!(p.checksum(), None);
        assert_eq!(p.key(), None);
        assert_eq!(p.sequence_number(), None);
        assert!(p.verify_checksum());
        assert_eq!(p.payload(), &[0xaa, 0xbb]);
    }

    #[test]
    fn all_options_round_trip() {
        let repr = Repr { protocol: 0x86dd, checksum: true, key: Some(0x0102_0304), sequence_number: Some(7) };
        let mut buf = vec![0u8; repr.buffer_len() + 3];
        buf[repr.buffer_len()..].copy_from_slice(&[1, 2, 3]);
        let mut p = Packet::new_unchecked(&mut buf[..]);
        repr.emit(&mut p);
        p.fill_checksum();
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.header_len(), 16);
        assert!(p.verify_checksum());
        assert_eq!(Repr::parse(&p).unwrap(), repr);
        assert_eq!(p.payload(), &[1, 2, 3]);
    }

    #[test]
    fn truncated_headers_are_rejected() {
        assert_eq!(Packet::new_checked(&[0u8, 0, 8][..]), Err(Error));
        // C, K and S announce 16 bytes of header; 15 are there.
        let mut buf = [0u8; 15];
        buf[0] = 0xb0;
        assert_eq!(Packet::new_checked(&buf[..]), Err(Error));
    }

    #[test]
    fn bad_checksum_version_and_reserved_bits_fail_parse() {
        let repr = Repr { protocol: 0x0800, checksum: true, key: None, sequence_number: None };
        let mut buf = [0u8; 8 + 4];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        repr.emit(&mut p);
        p.fill_checksum();
        buf[10] ^= 1;
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert!(!p.verify_checksum());
        assert_eq!(Repr::parse(&p), Err(Error));

        let version1 = [0x00u8, 0x01, 0x88, 0x0b];
        let p = Packet::new_checked(&version1[..]).unwrap();
        assert_eq!(p.version(), 1);
        assert_eq!(Repr::parse(&p), Err(Error));

        for bit in [0x40u8, 0x08, 0x04] {
            let routing = [bit, 0x00, 0x08, 0x00];
            let p = Packet::new_checked(&routing[..]).unwrap();
            assert!(p.reserved_bits_set(), "{bit:#x}");
            assert_eq!(Repr::parse(&p), Err(Error));
        }
    }

    #[test]
    fn key_without_checksum_sits_after_base() {
        let buf = [0x20u8, 0x00, 0x08, 0x00, 0xde, 0xad, 0xbe, 0xef, 0x45];
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.key(), Some(0xdead_beef));
        assert_eq!(p.payload(), &[0x45]);
    }
}
