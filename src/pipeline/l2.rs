//! The Ethernet layer: checks the frame is for this port, removes its header (and VLAN tag), and
//! dispatches ARP, IPv4 and IPv6. ARP requests for our addresses are answered here, in place.

use std::net::Ipv4Addr;

use super::{ipv4, ipv6, Context, DropReason, PacketBuf, PuntReason, Verdict};
use crate::wire::{vlan, ArpOperation, ArpPacket, ETHERTYPE_VLAN};

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_ARP: u16 = 0x0806;

/// The length of an Ethernet header, with one 802.1Q tag or without.
#[inline(always)]
pub fn header_len(vlan: Option<u16>) -> usize {
    if vlan.is_some() {
        18
    } else {
        14
    }
}

/// Write an Ethernet header (with an 802.1Q tag when `vlan` is given) at the start of `out`, which
/// holds at least [`header_len`] bytes. The one writer of L2 headers: forwarded packets, replies
/// made in place, and the slow path's requests.
#[inline(always)]
pub fn write_header(out: &mut [u8], dst: [u8; 6], src: [u8; 6], vlan: Option<u16>, ethertype: u16) {
    out[0..6].copy_from_slice(&dst);
    out[6..12].copy_from_slice(&src);
    match vlan {
        Some(v) => {
            out[12..14].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
            out[14..16].copy_from_slice(&v.to_be_bytes());
            out[16..18].copy_from_slice(&ethertype.to_be_bytes());
        }
        None => out[12..14].copy_from_slice(&ethertype.to_be_bytes()),
    }
}

/// A MAC address as the low 48 bits of a little-endian word: how neighbors keep theirs, so that
/// an untagged header is written with [`Ipv4HeaderWords`] in two stores.
#[inline(always)]
pub fn mac_word(mac: [u8; 6]) -> u64 {
    let mut word = [0u8; 8];
    word[..6].copy_from_slice(&mac);
    u64::from_le_bytes(word)
}

/// The MAC address that [`mac_word`] made `word` of.
#[inline(always)]
pub fn word_mac(word: u64) -> [u8; 6] {
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&word.to_le_bytes()[..6]);
    mac
}

/// An untagged IPv4 frame's Ethernet header from one port, ready for two overlapping 64-bit
/// stores: bytes 0..8 are the destination's [`mac_word`] with `source_head` (the source MAC's
/// first two bytes, in the top 16 bits) merged in, bytes 6..14 are `tail` (the source MAC and the
/// EtherType). Written field by field from the MAC bytes, the header took five stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4HeaderWords {
    source_head: u64,
    tail: u64,
}

impl Ipv4HeaderWords {
    pub fn new(src: [u8; 6]) -> Ipv4HeaderWords {
        // The EtherType's bytes, big-endian on the wire, in the word's top 16 bits.
        let ethertype = u64::from(u16::from_le_bytes(ETHERTYPE_IPV4.to_be_bytes())) << 48;
        Ipv4HeaderWords { source_head: mac_word(src) << 48, tail: mac_word(src) | ethertype }
    }

    /// The source MAC address.
    #[inline(always)]
    pub fn source(&self) -> [u8; 6] {
        word_mac(self.tail)
    }

    /// Write the header toward the neighbor whose [`mac_word`] is `dst` into `out`'s first 14
    /// bytes.
    #[inline(always)]
    pub fn write<const N: usize>(&self, out: &mut [u8; N], dst: u64) {
        if let Some(head) = out.first_chunk_mut::<8>() {
            *head = (dst | self.source_head).to_le_bytes();
        }
        if let Some(tail) = out.get_mut(6..).and_then(|t| t.first_chunk_mut::<8>()) {
            *tail = self.tail.to_le_bytes();
        }
    }
}

/// Put an Ethernet header in front of the packet; false (and unchanged) without the headroom.
#[inline(always)]
pub fn prepend_header<P: PacketBuf>(
    pkt: &mut P,
    dst: [u8; 6],
    src: [u8; 6],
    vlan: Option<u16>,
    ethertype: u16,
) -> bool {
    if !pkt.prepend(header_len(vlan)) {
        return false;
    }
    write_header(pkt.data_mut(), dst, src, vlan, ethertype);
    true
}

/// Handle a received frame.
#[inline(always)]
pub fn input<P: PacketBuf>(pkt: &mut P, port: u16, cx: &mut Context<'_>) -> Verdict {
    let info = &cx.tables.ports[port as usize];
    let data = pkt.data();
    if data.len() < 14 {
        return Verdict::Drop(DropReason::EthernetTruncated);
    }
    // A unicast frame for another station (ports may be promiscuous): not ours to route.
    if data[0] & 1 == 0 && data[0..6] != info.mac {
        return Verdict::Drop(DropReason::NotOurMac);
    }
    let mut ethertype = u16::from_be_bytes([data[12], data[13]]);
    let mut header_len = 14;
    if ethertype == ETHERTYPE_VLAN {
        let Ok(tag) = vlan::Packet::new_checked(&data[14..]) else {
            return Verdict::Drop(DropReason::EthernetTruncated);
        };
        if info.vlan != Some(tag.vlan_id()) {
            return Verdict::Drop(DropReason::VlanMismatch);
        }
        ethertype = tag.ethertype();
        header_len = 18;
    } else if info.vlan.is_some() {
        return Verdict::Drop(DropReason::VlanMismatch);
    }
    match ethertype {
        ETHERTYPE_IPV4 => {
            pkt.adj(header_len);
            ipv4::input(pkt, port, cx)
        }
        ETHERTYPE_IPV6 => {
            pkt.adj(header_len);
            ipv6::input(pkt, port, cx)
        }
        ETHERTYPE_ARP => arp(pkt, port, header_len, cx),
        _ => Verdict::Drop(DropReason::UnsupportedEthertype),
    }
}

/// Answer an ARP request for one of our addresses in place; hand what teaches us a neighbor's
/// MAC (replies, and requests from neighbors) to the slow path.
fn arp<P: PacketBuf>(pkt: &mut P, port: u16, l2_len: usize, cx: &mut Context<'_>) -> Verdict {
    let info = &cx.tables.ports[port as usize];
    let our_mac = info.mac;
    let Ok(arp) = ArpPacket::new_checked(&pkt.data()[l2_len..]) else {
        return Verdict::Drop(DropReason::ArpMalformed);
    };
    // IPv4 over Ethernet only: hardware 1, protocol 0x0800, lengths 6 and 4.
    if arp.hardware_len() != 6 || arp.protocol_len() != 4 || arp.protocol_type() != crate::wire::EthernetProtocol::Ipv4
    {
        return Verdict::Drop(DropReason::ArpMalformed);
    }
    let target = Ipv4Addr::from(<[u8; 4]>::try_from(arp.target_protocol_addr()).unwrap_or_default());
    let sender = Ipv4Addr::from(<[u8; 4]>::try_from(arp.source_protocol_addr()).unwrap_or_default());
    let sender_mac: [u8; 6] = arp.source_hardware_addr().try_into().unwrap_or_default();
    let op = arp.operation();
    let for_us = info.ipv4.is_some_and(|n| n.addr() == target) || cx.tables.is_local_v4(target);
    match op {
        ArpOperation::Request if for_us => {
            // The reply goes back to the asker; the slow path learns the asker from it too, but
            // only a reply or a request to us is worth learning from (RFC 826's merge rule).
            let data = pkt.data_mut();
            data[0..6].copy_from_slice(&sender_mac);
            data[6..12].copy_from_slice(&our_mac);
            let mut reply = ArpPacket::new_unchecked(&mut data[l2_len..]);
            reply.set_operation(ArpOperation::Reply);
            reply.set_target_hardware_addr(&sender_mac);
            reply.set_target_protocol_addr(&sender.octets());
            reply.set_source_hardware_addr(&our_mac);
            reply.set_source_protocol_addr(&target.octets());
            Verdict::Forward(port)
        }
        ArpOperation::Reply if for_us => {
            // Punted packets start at their L3 header.
            pkt.adj(l2_len);
            Verdict::Punt(PuntReason::Neighbor)
        }
        ArpOperation::Request | ArpOperation::Reply => Verdict::Drop(DropReason::ArpNotForUs),
        _ => Verdict::Drop(DropReason::ArpMalformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_words_write_what_write_header_writes() {
        let (dst, src) = ([0x02, 0x11, 0x22, 0x33, 0x44, 0x55], [0x0a, 0xbb, 0xcc, 0xdd, 0xee, 0xf1]);
        let mut expected = [0x5au8; 34];
        write_header(&mut expected, dst, src, None, ETHERTYPE_IPV4);
        let mut frame = [0x5au8; 34];
        let words = Ipv4HeaderWords::new(src);
        words.write(&mut frame, mac_word(dst));
        assert_eq!(frame, expected, "the header, and nothing after it");
        assert_eq!(words.source(), src);
        assert_eq!(word_mac(mac_word(dst)), dst);
        assert_eq!(mac_word(dst) >> 48, 0);
    }
}
