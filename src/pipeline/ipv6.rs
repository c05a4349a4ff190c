//! IPv6: checks a received packet, answers neighbor solicitations and echo requests for our
//! addresses, and routes the rest into a tunnel or out of a port (hop limit, MSS clamping, and
//! Packet Too Big where a tunnel's MTU is exceeded: IPv6 is never fragmented on the way).

use std::net::{IpAddr, Ipv6Addr};

use super::{emit_l2, flow_hash, icmp, mss, Context, DropReason, Origin, PacketBuf, PuntReason, Verdict};
use crate::tables::TunnelId;
use crate::wire::{IpProtocol, Ipv6Packet, IPV6_HEADER_LEN};

pub(crate) const ETHERTYPE: u16 = 0x86dd;

/// What the pipeline needs of a checked IPv6 header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub next_header: IpProtocol,
    pub hop_limit: u8,
}

fn check(data: &[u8], malformed: DropReason) -> Result<(Header, usize), DropReason> {
    let ip = Ipv6Packet::new_checked(data).map_err(|_| malformed)?;
    if ip.version() != 6 {
        return Err(malformed);
    }
    let h = Header { src: ip.src_addr(), dst: ip.dst_addr(), next_header: ip.next_header(), hop_limit: ip.hop_limit() };
    Ok((h, IPV6_HEADER_LEN + usize::from(ip.payload_len())))
}

/// Handle an IPv6 packet received on a port (L2 header already removed).
pub fn input<P: PacketBuf>(pkt: &mut P, port: u16, cx: &mut Context<'_>) -> Verdict {
    let (h, total) = match check(pkt.data(), DropReason::Ipv6Malformed) {
        Ok(v) => v,
        Err(r) => return Verdict::Drop(r),
    };
    pkt.truncate(total);
    if cx.tables.is_local_v6(h.dst) || is_solicited_node_of_ours(h.dst, cx) || h.dst == ALL_NODES {
        return local(pkt, port, &h, cx);
    }
    if h.src.is_multicast() || h.dst.is_multicast() || h.src.is_loopback() || h.dst.is_unspecified() {
        return Verdict::Drop(DropReason::Martian);
    }
    forward(pkt, &h, Origin::Internet, cx)
}

const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

fn is_solicited_node_of_ours(dst: Ipv6Addr, cx: &Context<'_>) -> bool {
    let s = dst.segments();
    s[0] == 0xff02 && s[5] == 1 && s[6] >> 8 == 0xff && {
        let low = dst.octets();
        cx.tables.ports.iter().filter_map(|p| p.ipv6).any(|n| n.addr().octets()[13..] == low[13..])
    }
}

fn local<P: PacketBuf>(pkt: &mut P, port: u16, h: &Header, cx: &mut Context<'_>) -> Verdict {
    if h.next_header != IpProtocol::Icmpv6 {
        return Verdict::Punt(PuntReason::HostBound);
    }
    let data = pkt.data();
    let Some(&kind) = data.get(IPV6_HEADER_LEN) else {
        return Verdict::Drop(DropReason::Ipv6Malformed);
    };
    match kind {
        // Neighbor solicitation for one of our addresses: answer in place.
        135 => neighbor_advertisement(pkt, port, h, cx),
        // Neighbor advertisements teach the slow path a neighbor's MAC.
        136 => Verdict::Punt(PuntReason::Neighbor),
        128 if cx.tables.is_local_v6(h.dst) => {
            echo_reply(pkt, h);
            let reply = Header { src: h.dst, dst: h.src, next_header: IpProtocol::Icmpv6, hop_limit: 64 };
            forward(pkt, &reply, Origin::Local, cx)
        }
        _ => Verdict::Punt(PuntReason::HostBound),
    }
}

fn echo_reply<P: PacketBuf>(pkt: &mut P, h: &Header) {
    let data = pkt.data_mut();
    data[7] = 64;
    data[8..24].copy_from_slice(&h.dst.octets());
    data[24..40].copy_from_slice(&h.src.octets());
    let icmp = &mut data[IPV6_HEADER_LEN..];
    icmp[0] = 129;
    crate::wire::Icmpv6Packet::new_unchecked(icmp).fill_checksum(&h.dst, &h.src);
}

/// Answer a neighbor solicitation (RFC 4861 7.2.4) for one of our addresses, in place, to the
/// MAC address the solicitation gave.
fn neighbor_advertisement<P: PacketBuf>(pkt: &mut P, port: u16, h: &Header, cx: &mut Context<'_>) -> Verdict {
    let data = pkt.data();
    // ICMPv6 header (4), reserved (4), target (16), then options.
    if data.len() < IPV6_HEADER_LEN + 24 || h.hop_limit != 255 {
        return Verdict::Drop(DropReason::Ipv6Malformed);
    }
    let target =
        Ipv6Addr::from(<[u8; 16]>::try_from(&data[IPV6_HEADER_LEN + 8..IPV6_HEADER_LEN + 24]).unwrap_or([0; 16]));
    let info = &cx.tables.ports[port as usize];
    if info.ipv6.is_none_or(|n| n.addr() != target) {
        return Verdict::Drop(DropReason::ArpNotForUs);
    }
    // The source link-layer address option (type 1) says where to answer.
    let mut at = IPV6_HEADER_LEN + 24;
    let mut asker_mac = None;
    while at + 8 <= data.len() {
        let (kind, len) = (data[at], usize::from(data[at + 1]) * 8);
        if len == 0 || at + len > data.len() {
            break;
        }
        if kind == 1 && len == 8 {
            asker_mac = <[u8; 6]>::try_from(&data[at + 2..at + 8]).ok();
        }
        at += len;
    }
    let Some(asker_mac) = asker_mac else {
        return Verdict::Punt(PuntReason::HostBound);
    };
    let (our_mac, vlan) = (info.mac, info.vlan);
    let dst = if h.src.is_unspecified() { ALL_NODES } else { h.src };
    pkt.truncate(IPV6_HEADER_LEN + 32);
    let data = pkt.data_mut();
    data[0..4].copy_from_slice(&0x6000_0000u32.to_be_bytes());
    data[4..6].copy_from_slice(&32u16.to_be_bytes());
    data[6] = 58;
    data[7] = 255;
    data[8..24].copy_from_slice(&target.octets());
    data[24..40].copy_from_slice(&dst.octets());
    let icmp = &mut data[IPV6_HEADER_LEN..];
    icmp[0] = 136;
    icmp[1] = 0;
    // Solicited and override (RFC 4861 4.4); router flag clear.
    icmp[4..8].copy_from_slice(&0x6000_0000u32.to_be_bytes());
    icmp[24] = 2;
    icmp[25] = 1;
    icmp[26..32].copy_from_slice(&our_mac);
    crate::wire::Icmpv6Packet::new_unchecked(icmp).fill_checksum(&target, &dst);
    if !super::l2::prepend_header(pkt, asker_mac, our_mac, vlan, ETHERTYPE) {
        return Verdict::Drop(DropReason::NoBufferRoom);
    }
    Verdict::Forward(port)
}

/// Route the IPv6 packet decapsulated from tunnel `id`.
pub(crate) fn from_tunnel<P: PacketBuf>(pkt: &mut P, id: TunnelId, cx: &mut Context<'_>) -> Verdict {
    let (h, total) = match check(pkt.data(), DropReason::InnerMalformed) {
        Ok(v) => v,
        Err(r) => return Verdict::Drop(r),
    };
    pkt.truncate(total);
    if h.dst.is_multicast() || h.src.is_multicast() || h.dst.is_loopback() || h.dst.is_unspecified() {
        return Verdict::Drop(DropReason::Martian);
    }
    forward(pkt, &h, Origin::Tunnel(id), cx)
}

/// Route an IPv6 packet (at the start of `pkt`, checked, trimmed to its length).
pub(crate) fn forward<P: PacketBuf>(pkt: &mut P, h: &Header, origin: Origin, cx: &mut Context<'_>) -> Verdict {
    if let Some(hops) = cx.tables.routes.lookup_v6(h.dst) {
        let tunnel = if hops.is_multipath() {
            hops.pick(flow_hash(IpAddr::V6(h.src), IpAddr::V6(h.dst), ports(pkt.data(), h)))
        } else {
            hops.pick(0)
        };
        return to_tunnel(pkt, h, tunnel, origin, cx);
    }
    match origin {
        Origin::Internet => Verdict::Drop(DropReason::NoRoute),
        Origin::Tunnel(_) | Origin::Local => to_port(pkt, h, origin, cx),
    }
}

fn ports(data: &[u8], h: &Header) -> u32 {
    match h.next_header {
        IpProtocol::Tcp | IpProtocol::Udp if data.len() >= IPV6_HEADER_LEN + 4 => {
            let p = &data[IPV6_HEADER_LEN..];
            u32::from_be_bytes([p[0], p[1], p[2], p[3]])
        }
        _ => 0,
    }
}

/// The source of ICMPv6 errors: the first IPv6 address of a port.
fn error_source(cx: &Context<'_>) -> Option<Ipv6Addr> {
    cx.tables.ports.iter().find_map(|p| p.ipv6.map(|n| n.addr()))
}

fn to_tunnel<P: PacketBuf>(pkt: &mut P, h: &Header, id: TunnelId, origin: Origin, cx: &mut Context<'_>) -> Verdict {
    let tunnel = cx.tables.tunnel(id);
    let (mtu, limit, slot) = (tunnel.mtu, tunnel.mss, tunnel.slot);
    if origin != Origin::Local {
        if h.hop_limit <= 1 {
            cx.local.counters.tunnel(slot).drops += 1;
            let from = error_source(cx);
            return icmp::error_v6(pkt, h, icmp::Error6::HopLimitExceeded, from, origin, cx);
        }
        pkt.data_mut()[7] -= 1;
    }
    if limit != 0 && h.next_header == IpProtocol::Tcp {
        // IPv6 headers are 20 bytes longer than IPv4's: the MSS that fits is 20 smaller.
        mss::clamp(&mut pkt.data_mut()[IPV6_HEADER_LEN..], limit.saturating_sub(20));
    }
    if pkt.len() > usize::from(mtu) {
        cx.local.counters.tunnel(slot).drops += 1;
        let from = error_source(cx);
        return icmp::error_v6(pkt, h, icmp::Error6::PacketTooBig(mtu), from, origin, cx);
    }
    super::tunnel_out(pkt, id, ETHERTYPE, cx)
}

fn to_port<P: PacketBuf>(pkt: &mut P, h: &Header, origin: Origin, cx: &mut Context<'_>) -> Verdict {
    if origin != Origin::Local {
        if h.hop_limit <= 1 {
            let from = error_source(cx);
            return icmp::error_v6(pkt, h, icmp::Error6::HopLimitExceeded, from, origin, cx);
        }
        pkt.data_mut()[7] -= 1;
    }
    if let Origin::Tunnel(t) = origin {
        let limit = cx.tables.tunnel(t).mss;
        if limit != 0 && h.next_header == IpProtocol::Tcp {
            mss::clamp(&mut pkt.data_mut()[IPV6_HEADER_LEN..], limit.saturating_sub(20));
        }
    }
    let Some(egress) = cx.tables.egress(IpAddr::V6(h.dst)) else {
        return Verdict::Drop(DropReason::NoEgress);
    };
    emit_l2(pkt, egress, ETHERTYPE, cx)
}
