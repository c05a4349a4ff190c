//! One IEEE 802.1Q VLAN tag, as it follows the MAC addresses of an Ethernet frame whose ethertype
//! is 0x8100: the view covers the tag control information and the encapsulated ethertype.
//!
//! ```text
//! +-------+---+-----------------------+-------------------------------+
//! |  PCP  |DEI|        VLAN ID        |      encapsulated ethertype   |
//! +-------+---+-----------------------+-------------------------------+
//!    3      1           12                          16 bits
//! ```

use byteorder::{ByteOrder, NetworkEndian};

use super::{Error, Result};

/// An 802.1Q tag and the payload after it.
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

mod field {
    pub type Field = core::ops::Range<usize>;
    pub const TCI: Field = 0..2;
    pub const ETHERTYPE: Field = 2..4;
    pub const PAYLOAD: usize = 4;
}

/// The tag's length (after the Ethernet header's 0x8100).
pub const HEADER_LEN: usize = field::PAYLOAD;

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wrap a buffer, checking that the tag fits.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Check that the tag fits in the buffer.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error)
        } else {
            Ok(())
        }
    }

    /// Give the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The VLAN identifier (12 bits).
    pub fn vlan_id(&self) -> u16 {
        NetworkEndian::read_u16(&self.buffer.as_ref()[field::TCI]) & 0x0fff
    }

    /// The priority code point (3 bits).
    pub fn priority(&self) -> u8 {
        (NetworkEndian::read_u16(&self.buffer.as_ref()[field::TCI]) >> 13) as u8
    }

    /// The drop eligible indicator.
    pub fn drop_eligible(&self) -> bool {
        NetworkEndian::read_u16(&self.buffer.as_ref()[field::TCI]) & 0x1000 != 0
    }

    /// The ethertype of the payload.
    pub fn ethertype(&self) -> u16 {
        NetworkEndian::read_u16(&self.buffer.as_ref()[field::ETHERTYPE])
    }

    /// The payload after the tag.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set the tag control information.
    pub fn set_tci(&mut self, priority: u8, drop_eligible: bool, vlan_id: u16) {
        let tci = ((priority as u16 & 0x7) << 13) | if drop_eligible { 0x1000 } else { 0 } | (vlan_id & 0x0fff);
        NetworkEndian::write_u16(&mut self.buffer.as_mut()[field::TCI], tci);
    }

    /// Set the ethertype of the payload.
    pub fn set_ethertype(&mut self, value: u16) {
        NetworkEndian::write_u16(&mut self.buffer.as_mut()[field::ETHERTYPE], value);
    }
}

/// The parsed form of a tag.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct Repr {
    pub priority: u8,
    pub drop_eligible: bool,
    pub vlan_id: u16,
    pub ethertype: u16,
}

impl Repr {
    /// Parse a tag.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        packet.check_len()?;
        Ok(Repr {
            priority: packet.priority(),
            drop_eligible: packet.drop_eligible(),
            vlan_id: packet.vlan_id(),
            ethertype: packet.ethertype(),
        })
    }

    /// The tag's length.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Write the tag.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_tci(self.priority, self.drop_eligible, self.vlan_id);
        packet.set_ethertype(self.ethertype);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_emit() {
        // PCP 5, DEI 1, VID 0x123, IPv4 inside.
        let bytes = [0xb1u8, 0x23, 0x08, 0x00, 0x45];
        let p = Packet::new_checked(&bytes[..]).unwrap();
        let repr = Repr::parse(&p).unwrap();
        assert_eq!(repr, Repr { priority: 5, drop_eligible: true, vlan_id: 0x123, ethertype: 0x0800 });
        assert_eq!(p.payload(), &[0x45]);
        let mut out = [0u8; 4];
        repr.emit(&mut Packet::new_unchecked(&mut out[..]));
        assert_eq!(out, bytes[..4]);
    }

    #[test]
    fn truncated_tag_is_rejected() {
        assert_eq!(Packet::new_checked(&[0x00u8, 0x01, 0x08][..]), Err(Error));
    }
}
