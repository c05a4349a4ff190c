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
