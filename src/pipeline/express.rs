//! The express lane: the cases that are nearly all of a tunnel server's traffic, checked at
//! fixed offsets and rewritten in one pass.
//!
//! - GRE decapsulation: a GRE packet (no checksum, key or sequence) from a customer router, with
//!   an inner IPv4 packet for the internet, leaves the port toward a known neighbor;
//! - encapsulation: an IPv4 packet from the internet for a customer prefix routed into a GRE
//!   tunnel, within the tunnel's MTU, leaves toward the customer endpoint's known neighbor; into
//!   an IPsec tunnel, it gets its encryption job (or its drop) as from the full pipeline;
//! - ESP (raw, or in UDP) for one of our addresses: classified, its decryption job (or its drop
//!   or punt) as from the full pipeline;
//! - leaving a tunnel by a port ([`exit_to_port`], [`leave`]): the inner IPv4 packet of GRE
//!   here, and of ESP once decrypted (`esp::decrypt`).
//!
//! All have IPv4 headers without options, no fragment, a TTL that does not run out, no VLAN tag
//! on the port they arrive on. Everything else (any drop, punt, ICMP error, fragmentation, IPv6,
//! options, addresses of ours) is declined, and declined before anything is written: the packet
//! then goes through the full pipeline ([`super::l2::input`]) as if the express lane did not
//! exist. A packet the express lane takes gets exactly the full pipeline's verdict, bytes and
//! counters: a differential test and the pipeline fuzz target hold it to that.
//!
//! It exists for speed: the full pipeline walks the layers one function at a time, each with its
//! own checks, lookups and verdict; here one packet is a few loads, a handful of compares, one
//! tunnel or route lookup and one neighbor lookup, then its writes.

use std::net::{IpAddr, Ipv4Addr};

use super::{
    csum, esp, flow_hash, gre, ipv4, l2, mss, Arrival, Context, Counters, HeapPacket, Local, PacketBuf, RateLimiter,
    Verdict,
};
use crate::tables::{Egress, Neighbors, PortInfo, Tables, Tunnel, TunnelId, TunnelKind};
use crate::wire::IpProtocol;

/// Ethernet (14) and IPv4 without options (20).
const OUTER_IP_END: usize = 34;
/// Where a decapsulated packet's inner IPv4 header starts: after Ethernet, IPv4 and a bare GRE
/// header.
const INNER_START: usize = OUTER_IP_END + gre::OVERHEAD - 20;

const IP_PROTOCOL_TCP: u8 = 6;
const IP_PROTOCOL_UDP: u8 = 17;
const IP_PROTOCOL_GRE: u8 = 47;
const IP_PROTOCOL_ESP: u8 = 50;

/// A GRE packet's fixed fields after its outer IPv4 header, compared whole: the frame's bytes
/// 34..50 as a little-endian word, masked, against [`INNER_GRE`]: a bare GRE header (34, 35: no
/// checksum, key or sequence, version 0) with an IPv4 payload (36, 37), whose header has no
/// options (38) and is not a fragment (44, 45: anything but DF). Compared one by one, they took
/// 3 instructions more.
const INNER_MASK: u128 = u128::from_le_bytes([0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0x3f, 0xff, 0, 0, 0, 0]);
const INNER_GRE: u128 = u128::from_le_bytes([0, 0, 0x08, 0x00, 0x45, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

/// The 16 bytes at `at` of a fixed-size view as a little-endian word (0 past its end, which the
/// constant offsets of the callers never are).
#[inline(always)]
fn word128<const N: usize>(d: &[u8; N], at: usize) -> u128 {
    d.get(at..).and_then(|d| d.first_chunk::<16>()).map_or(0, |w| u128::from_le_bytes(*w))
}

#[inline(always)]
fn be16(d: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([d[at], d[at + 1]])
}

#[inline(always)]
fn addr(d: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(d[at], d[at + 1], d[at + 2], d[at + 3])
}

/// Whether `h` is an IPv4 header without options, not a fragment (DF may be set).
#[inline(always)]
fn plain_fixed_fields(h: &[u8; 20]) -> bool {
    h[0] == 0x45 && be16(h, 6) & 0x3fff == 0
}

/// Whether the IPv4 header `h` has a total length of at least `min_total` that fits in the
/// `room` bytes from its start, and a right checksum: the rest of a plain header's checks, after
/// [`plain_fixed_fields`] or the compares of whole words. Gives the total length.
#[inline(always)]
fn ipv4_length_and_checksum(h: &[u8; 20], room: usize, min_total: usize) -> Option<usize> {
    let total = usize::from(be16(h, 2));
    if total < min_total || total > room {
        return None;
    }
    csum::header_is_valid(h).then_some(total)
}

/// The 20 bytes at `at` of a fixed-size view (None only past its end, which the constant
/// offsets of the callers never are).
#[inline(always)]
fn header<const N: usize>(d: &[u8; N], at: usize) -> Option<&[u8; 20]> {
    d.get(at..)?.first_chunk::<20>()
}

/// The TTL decremented (the caller has checked that it is above 1) and a TCP SYN's MSS clamped
/// to `mss` (0: none), as the full pipeline's forwarding does, for the IPv4 packet `packet`.
#[inline(always)]
fn forwarded(packet: &mut [u8], mss: u16) {
    ipv4::decrement_ttl(packet);
    if mss != 0 {
        mss::clamp(&mut packet[20..], mss);
    }
}

/// Take a received frame in the express lane, or decline it untouched. Gives its verdict: sent
/// out of a port, or (into an IPsec tunnel) the encryption job or the drop that the full
/// pipeline would give it.
#[inline(always)]
pub fn forward<P: PacketBuf>(pkt: &mut P, arrival: Arrival, cx: &mut Context<'_>) -> Option<Verdict> {
    let port = arrival.port;
    let d = pkt.data();
    let head = d.first_chunk::<OUTER_IP_END>()?;
    // The port's MAC, and no VLAN on the port, in one compare; on a port the tables have.
    if PortInfo::express_key(head.first_chunk::<8>()?) != arrival.express_mac || be16(head, 12) != ipv4::ETHERTYPE {
        return None;
    }
    let h = header(head, 14)?;
    if !plain_fixed_fields(h) {
        return None;
    }
    let total = ipv4_length_and_checksum(h, d.len() - 14, 20)?;
    if h[9] == IP_PROTOCOL_GRE {
        return decapsulate(pkt, total, cx).map(Verdict::Forward);
    }
    // Whether the destination may be ours decides between the last two cases, once; in an
    // ordinary block it is not.
    let dst = addr(h, 16);
    let ordinary = cx.tables.routes.is_ordinary_v4(dst);
    if ordinary || !cx.tables.may_be_ours_v4(dst) {
        let (id, tunnel, mss) = customer_route(pkt.data(), port, total, ordinary, cx)?;
        if tunnel.kind == TunnelKind::Ipsec {
            // Routed, TTL and MSS done here; the SA is chosen and the crypto batched as for any
            // packet sent into the tunnel.
            pkt.adj(14);
            pkt.truncate(total);
            forwarded(pkt.data_mut(), mss);
            return Some(esp::encapsulate(pkt, id, ipv4::ETHERTYPE, cx));
        }
        // Sent as decapsulation's packets are: a port, made a verdict in one place, so that the
        // worker queues it without testing the verdict again (as a verdict from here it took 8
        // instructions more a packet).
        return encapsulate(pkt, tunnel, total, mss, cx).map(Verdict::Forward);
    }
    match h[9] {
        IP_PROTOCOL_ESP | IP_PROTOCOL_UDP => {
            let outer = ipv4::Header {
                len: 20,
                total,
                src: addr(h, 12),
                dst: addr(h, 16),
                protocol: h[9].into(),
                dont_frag: h[6] & 0x40 != 0,
                fragment: false,
                later_fragment: false,
            };
            esp_inbound(pkt, &outer, cx)
        }
        // Echo requests and the rest for our addresses: the full pipeline's.
        _ => None,
    }
}

/// ESP (raw, or any UDP: NAT-T and IKE) for one of our addresses (`outer` a plain IPv4 header):
/// classified by the same functions as in the full pipeline, whose verdict it gets.
#[inline(always)]
fn esp_inbound<P: PacketBuf>(pkt: &mut P, outer: &ipv4::Header, cx: &mut Context<'_>) -> Option<Verdict> {
    if !cx.tables.is_local_v4(outer.dst) {
        return None;
    }
    pkt.adj(14);
    pkt.truncate(outer.total);
    Some(if outer.protocol == IpProtocol::IpSecEsp {
        esp::input(pkt, outer, 20, cx)
    } else {
        esp::udp_input(pkt, outer, cx)
    })
}

/// How a packet that came out of a tunnel leaves by a port: checked, not yet written.
#[derive(Debug, Clone, Copy)]
pub struct PortExit {
    /// The inner packet's length.
    total: usize,
    /// The port and its L2 header.
    to: L2Exit,
    /// The MSS to clamp a TCP SYN to (0: none).
    mss: u16,
}

/// How IPv4 leaves by a port to a next hop whose MAC is known: the port, the next hop's MAC (a
/// [`l2::mac_word`]), and the port's L2 header words and VLAN. The default gateway's is found
/// once for a context ([`Context::new`]): neighbors change only between contexts.
#[derive(Debug, Clone, Copy)]
pub struct L2Exit {
    port: u16,
    dst: u64,
    src: l2::Ipv4HeaderWords,
    vlan: Option<u16>,
}

impl L2Exit {
    /// The exit to `egress`; None for an IPv6 next hop or one whose MAC is not known.
    #[inline(always)]
    pub fn find(tables: &Tables, neighbors: &Neighbors, egress: Egress) -> Option<L2Exit> {
        let IpAddr::V4(next_hop) = egress.next_hop else { return None };
        let dst = neighbors.get_v4_word(egress.port, next_hop)?;
        let out = tables.ports.get(usize::from(egress.port))?;
        Some(L2Exit { port: egress.port, dst, src: out.ipv4_header, vlan: out.vlan })
    }

    /// The exit to the default gateway ([`Tables::default_egress_v4`]).
    pub fn gateway_v4(tables: &Tables, neighbors: &Neighbors) -> Option<L2Exit> {
        L2Exit::find(tables, neighbors, tables.default_egress_v4()?)
    }
}

/// Whether the IPv4 packet whose header is `h`, with `room` bytes from its start, that came out
/// of a tunnel whose MSS is `tunnel_mss`, leaves by a port as the full pipeline's forwarding
/// would send it, with nothing else to do (not ours, not martian, no customer route, a TTL that
/// does not run out, a known neighbor). Reads only.
#[inline(always)]
pub fn exit_to_port(h: &[u8; 20], room: usize, tunnel_mss: u16, cx: &Context<'_>) -> Option<PortExit> {
    if !plain_fixed_fields(h) {
        return None;
    }
    exit_plain_to_port(h, room, tunnel_mss, cx)
}

/// [`exit_to_port`] for a header whose version, length and fragment fields were compared whole.
#[inline(always)]
fn exit_plain_to_port(h: &[u8; 20], room: usize, tunnel_mss: u16, cx: &Context<'_>) -> Option<PortExit> {
    let tables = cx.tables;
    // The inner packet ends within what carried it (padding after it is not counted).
    let total = ipv4_length_and_checksum(h, room, 20)?;
    let (src, dst) = (addr(h, 12), addr(h, 16));
    if h[8] <= 1 || ipv4::martian(src) {
        return None;
    }
    let mss = if h[9] == IP_PROTOCOL_TCP { tunnel_mss } else { 0 };
    let to = if tables.routes.is_ordinary_unrouted_v4(dst) {
        // Not ours, not martian, on no port's subnet, in no customer prefix (one load said so):
        // out of the default gateway, found once for the context.
        cx.gateway_v4?
    } else {
        if tables.may_be_ours_v4(dst) || ipv4::martian(dst) || tables.routes.lookup_v4(dst).is_some() {
            return None;
        }
        L2Exit::find(tables, &cx.local.neighbors, tables.egress(IpAddr::V4(dst))?)?
    };
    Some(PortExit { total, to, mss })
}

/// Send the packet whose IPv4 header starts at `at` out as `exit` says: what is before it
/// replaced by the L2 header, its TTL, MSS and length done. Declines (None, the packet as it
/// was) only where `at` is shorter than the L2 header and the headroom lacks the difference.
#[inline(always)]
pub fn leave<P: PacketBuf>(pkt: &mut P, at: usize, exit: PortExit) -> Option<u16> {
    // One branch on the VLAN, each side with its L2 header's length a constant: computed, it was
    // tested again for the header's writes.
    if exit.to.vlan.is_none() {
        leave_with::<P, 14>(pkt, at, exit)
    } else {
        leave_with::<P, 18>(pkt, at, exit)
    }
}

/// [`leave`] by an exit whose L2 header is `L2_LEN` bytes long.
#[inline(always)]
fn leave_with<P: PacketBuf, const L2_LEN: usize>(pkt: &mut P, at: usize, exit: PortExit) -> Option<u16> {
    let to = exit.to;
    if at >= L2_LEN {
        pkt.adj(at - L2_LEN);
    } else if !pkt.prepend(L2_LEN - at) {
        return None;
    }
    pkt.truncate(L2_LEN + exit.total);
    let data = pkt.data_mut();
    match data.first_chunk_mut::<{ 14 + 20 }>() {
        // Untagged (nearly always): the L2 header and the inner IPv4 header in one fixed-size
        // view, written without a bounds check each.
        Some(frame) if L2_LEN == 14 => {
            to.src.write(frame, to.dst);
            if let Some(h) = frame.last_chunk_mut::<20>() {
                ipv4::decrement_live_ttl(h);
            }
        }
        _ => {
            ipv4::decrement_ttl(&mut data[L2_LEN..]);
            l2::write_header(data, l2::word_mac(to.dst), to.src.source(), to.vlan, ipv4::ETHERTYPE);
        }
    }
    if exit.mss != 0 {
        mss::clamp(&mut pkt.data_mut()[L2_LEN + 20..], exit.mss);
    }
    Some(to.port)
}

/// A GRE packet (outer IPv4 of `total` bytes) for a tunnel, whose inner IPv4 packet goes out of
/// a port.
#[inline(always)]
fn decapsulate<P: PacketBuf>(pkt: &mut P, total: usize, cx: &mut Context<'_>) -> Option<u16> {
    // The outer header's total length fits in the frame, and holds GRE and an inner header.
    let d = pkt.data().first_chunk::<{ INNER_START + 20 }>()?;
    if total < gre::OVERHEAD + 20 || word128(d, OUTER_IP_END) & INNER_MASK != INNER_GRE {
        return None;
    }
    let (_, tunnel) = cx.gre_tunnel(addr(d, 30), addr(d, 26))?;
    let exit = exit_plain_to_port(header(d, INNER_START)?, total - gre::OVERHEAD, tunnel.mss, cx)?;
    let slot = tunnel.slot;
    // The inner header is further in than any L2 header is long: leaving cannot decline.
    let port = leave(pkt, INNER_START, exit)?;
    let counters = cx.local.counters.tunnel(slot);
    counters.ingress_packets += 1;
    counters.ingress_bytes += (total - gre::OVERHEAD) as u64;
    Some(port)
}

/// The tunnel (its index and itself) and MSS (0: none) of an IPv4 packet (`d`, a frame of a
/// plain header and `total` bytes, for an address that is not ours) from the internet for a
/// customer prefix, received on `port`, that the express lane sends into the tunnel: routed by a
/// customer route, within the tunnel's MTU, not martian, with a TTL that does not run out.
/// `ordinary`: the destination is in an ordinary /16 block, which no martian or subnet broadcast
/// address shares. Reads only (but for the context's memo of the last route).
#[inline(always)]
fn customer_route<'a>(
    d: &[u8],
    port: u16,
    total: usize,
    ordinary: bool,
    cx: &mut Context<'a>,
) -> Option<(TunnelId, &'a Tunnel, u16)> {
    let tables = cx.tables;
    let h = header(d.first_chunk::<OUTER_IP_END>()?, 14)?;
    let (src, dst) = (addr(h, 12), addr(h, 16));
    if h[8] <= 1
        || ipv4::martian(src)
        || (!ordinary && (ipv4::martian(dst) || tables.ports[usize::from(port)].broadcast4 == Some(dst)))
    {
        return None;
    }
    let prefix = tables.routes.prefix_v4(dst);
    let (id, tunnel) = match cx.single_route_v4(prefix) {
        Some(single) => single,
        None => {
            // No route, or several tunnels sharing the prefix by flow.
            let hops = tables.routes.hops_of_prefix_v4(prefix)?;
            let ports = ipv4::transport_ports(d.get(14..14 + total)?, h[9].into(), false, 20);
            let id = hops.pick(flow_hash(src.into(), dst.into(), ports));
            (id, tables.tunnel(id))
        }
    };
    if total > usize::from(tunnel.mtu) {
        return None;
    }
    Some((id, tunnel, if h[9] == IP_PROTOCOL_TCP { tunnel.mss } else { 0 }))
}

/// An IPv4 packet (of `total` bytes, TCP SYNs clamped to `mss`) from the internet, routed into
/// GRE `tunnel` ([`customer_route`]): sent to the customer endpoint's known neighbor. Gives
/// the port.
#[inline(always)]
fn encapsulate<P: PacketBuf>(
    pkt: &mut P,
    tunnel: &Tunnel,
    total: usize,
    mss: u16,
    cx: &mut Context<'_>,
) -> Option<u16> {
    if total + gre::OVERHEAD > 0xffff {
        return None;
    }
    let local = &mut *cx.local;
    if tunnel.via_gateway_v4 {
        // Found once for the context, and read where it is.
        encapsulate_to(pkt, tunnel, cx.gateway_v4.as_ref()?, total, mss, local)
    } else {
        let out = L2Exit::find(cx.tables, &local.neighbors, tunnel.egress?)?;
        encapsulate_to(pkt, tunnel, &out, total, mss, local)
    }
}

/// The exit of an IPv4 packet sent into GRE `tunnel` ([`encapsulate`]'s), with `tables` and
/// `neighbors`, whose default gateway's exit is `gateway_v4`.
fn tunnel_exit(tunnel: &Tunnel, tables: &Tables, neighbors: &Neighbors, gateway_v4: Option<L2Exit>) -> Option<L2Exit> {
    if tunnel.via_gateway_v4 {
        gateway_v4
    } else {
        L2Exit::find(tables, neighbors, tunnel.egress?)
    }
}

/// [`encapsulate`] by `out`.
#[inline(always)]
fn encapsulate_to<P: PacketBuf>(
    pkt: &mut P,
    tunnel: &Tunnel,
    out: &L2Exit,
    total: usize,
    mss: u16,
    local: &mut Local,
) -> Option<u16> {
    // One branch on the VLAN, each side with its L2 header's length a constant (as in `leave`).
    let Local { ip_id, counters, .. } = local;
    if out.vlan.is_none() {
        encapsulate_by::<P, 14>(pkt, tunnel, out, total, mss, ip_id, counters)
    } else {
        encapsulate_by::<P, 18>(pkt, tunnel, out, total, mss, ip_id, counters)
    }
}

/// [`encapsulate`] by an exit whose L2 header is `L2_LEN` bytes long, the outer header's
/// identification the one after `ip_id` (the worker's), the tunnel's egress counted in
/// `counters`. Counted here: counted after it returned, the burst's loop took 20
/// instructions more a packet to tell the express lane's verdicts apart, GRE's too (two tunnels'
/// packets alternating, 253.8 -> 274.0).
#[inline(always)]
fn encapsulate_by<P: PacketBuf, const L2_LEN: usize>(
    pkt: &mut P,
    tunnel: &Tunnel,
    out: &L2Exit,
    total: usize,
    mss: u16,
    ip_id: &mut u16,
    counters: &mut Counters,
) -> Option<u16> {
    let (template, template_sum) = (&tunnel.outer_template, tunnel.outer_sum);
    // The one step that can fail comes first, so that a decline leaves the packet as it was.
    let grow = L2_LEN + gre::OVERHEAD - 14;
    if !pkt.reframe(-(grow as isize), grow + 14 + total) {
        return None;
    }

    let outer_total = (total + gre::OVERHEAD) as u16;
    let id_field = super::next_ip_id(ip_id);
    let counters = counters.tunnel(tunnel.slot);
    counters.egress_packets += 1;
    counters.egress_bytes += total as u64;
    let outer_sum = csum::template_checksum(template_sum, outer_total, id_field);
    let data = pkt.data_mut();
    let start = L2_LEN + gre::OVERHEAD;
    match data.first_chunk_mut::<{ 14 + gre::OVERHEAD + 20 }>() {
        // Untagged (nearly always): the L2, outer and inner headers in one fixed-size view,
        // written without a bounds check each.
        Some(frame) if L2_LEN == 14 => {
            out.src.write(frame, out.dst);
            let rest = &mut frame[14..];
            let (outer, inner) = rest.split_at_mut(gre::OVERHEAD);
            if let (Ok(outer), Ok(inner)) = (outer.try_into(), inner.try_into()) {
                gre::write_outer(outer, template, outer_total, id_field, outer_sum, ipv4::ETHERTYPE);
                ipv4::decrement_live_ttl(inner);
            }
        }
        _ => {
            ipv4::decrement_ttl(&mut data[start..]);
            l2::write_header(data, l2::word_mac(out.dst), out.src.source(), out.vlan, ipv4::ETHERTYPE);
            if let Some(outer) = data[L2_LEN..].first_chunk_mut() {
                gre::write_outer(outer, template, outer_total, id_field, outer_sum, ipv4::ETHERTYPE);
            }
        }
    }
    if mss != 0 {
        mss::clamp(&mut pkt.data_mut()[start + 20..], mss);
    }
    Some(out.port)
}

/// Run `frame` (received on `port`) through the express lane and, separately, through the full
/// pipeline alone, each from the worker state `local` (its neighbors, SAs, counters and IP
/// identification; left as they were), and check that they agree: a frame the express lane
/// declines is left as it was with nothing counted; a frame it takes gets the full pipeline's
/// verdict, its bytes and the same counters after. The same for the train of the frame's tunnel
/// ([`train_check`]). Gives the express lane's verdict. The SAs are read only on these paths (an
/// outbound SA found). For the differential test and the pipeline fuzz target.
pub fn differential_check(
    frame: &[u8],
    port: u16,
    tables: &Tables,
    local: &mut Local,
) -> Result<Option<Verdict>, String> {
    train_check(frame, frame, port, tables, local)?;
    let (counters, ip_id) = (local.counters.clone(), local.ip_id);
    let (express, express_pkt, express_counters, express_ip_id) =
        run_alone(frame, tables, local, &|pkt, cx| forward(pkt, Arrival::on(tables, port), cx));
    let Some(verdict) = express else {
        if express_pkt.data() != frame || express_counters != counters || express_ip_id != ip_id {
            return Err("the express lane declined a frame after changing it or its counters".into());
        }
        return Ok(None);
    };
    let full = run_alone(frame, tables, local, &|pkt, cx| Some(l2::input(pkt, port, cx)));
    agree_with_full("the express lane", (verdict, &express_pkt, &express_counters, express_ip_id), full)?;
    Ok(Some(verdict))
}

/// Whether what `lane` made of a frame (its verdict, packet, counters and IP identification
/// after) is what the full pipeline made of it ([`run_alone`]'s result); the first difference
/// otherwise.
fn agree_with_full(
    lane: &str,
    (verdict, pkt, counters, ip_id): (Verdict, &HeapPacket, &super::Counters, u16),
    (full, full_pkt, full_counters, full_ip_id): (Option<Verdict>, HeapPacket, super::Counters, u16),
) -> Result<(), String> {
    if full != Some(verdict) {
        return Err(format!("{lane}'s verdict is {verdict:?}, the full pipeline's {full:?}"));
    }
    if pkt.data() != full_pkt.data() {
        return Err(format!(
            "{lane}'s frame differs from the full pipeline's:\n{:02x?}\n{:02x?}",
            pkt.data(),
            full_pkt.data()
        ));
    }
    if *counters != full_counters || ip_id != full_ip_id {
        return Err(format!("{lane} counted otherwise than the full pipeline"));
    }
    Ok(())
}

/// Take `frame` (received on `port`) through the trains made from the frame `first` as
/// [`boarding`] makes them, with `local`'s neighbors, both kinds whatever `first` carries: the
/// train of the GRE tunnel whose endpoints `first` carries, and the train of the customer prefix
/// holding its destination when that prefix's one route is into a GRE tunnel. Check each as [`differential_check`] checks the
/// express lane, counting what the worker counts for a train's packets. Gives how many took the
/// frame.
pub fn train_check(first: &[u8], frame: &[u8], port: u16, tables: &Tables, local: &mut Local) -> Result<usize, String> {
    let (Some(first), Some(info)) = (first.first_chunk::<OUTER_IP_END>(), tables.ports.get(usize::from(port))) else {
        return Ok(0);
    };
    if info.express_mac == u64::MAX {
        return Ok(0);
    }
    let mut taken = 0;
    let neighbors = local.neighbors.clone();
    let on = Lines { tables, neighbors: &neighbors, gateway_v4: L2Exit::gateway_v4(tables, &neighbors) };
    // Both kinds, whatever `first` carries.
    if let Some(train) = gre_train(first, info.mac, &on) {
        taken += usize::from(train_alike(&train, frame, port, tables, local)?);
    }
    if let Some(train) = encap_train(first, info.mac, &on) {
        taken += usize::from(train_alike(&train, frame, port, tables, local)?);
    }
    Ok(taken)
}

/// What a train is made with: the tables, the neighbors and the default gateway's exit (a
/// context's, passed apart so that the context's own fields stay in registers: a context lent
/// to a function out of line is kept in memory all along the burst's loop).
#[derive(Debug, Clone, Copy)]
pub struct Lines<'a, 'n> {
    pub tables: &'a Tables,
    pub neighbors: &'n Neighbors,
    pub gateway_v4: Option<L2Exit>,
}

/// The train that a run of received frames beginning with `first` and `second` boards, arriving
/// as `arrival` says, on the lines `on`: GRE, its tunnel's; otherwise its
/// customer prefix's. None where either frame is not the train's by [`train::Train::boards`]:
/// where one tunnel's or prefix's packets alternate with others', a train that took one at a time
/// cost more than the express lane.
#[inline(never)]
pub fn boarding(first: &[u8], second: &[u8], arrival: Arrival, on: &Lines<'_, '_>) -> Option<train::AnyTrain> {
    if arrival.express_mac == u64::MAX {
        return None;
    }
    let mac = l2::word_mac(arrival.express_mac);
    let (f, g) = (first.first_chunk::<OUTER_IP_END>()?, second.first_chunk::<OUTER_IP_END>()?);
    // The same endpoints, or destinations in the same prefix, before a train is made: a run
    // whose packets alternate between two made one a burst, 6 instructions a packet.
    let train = if f[23] == IP_PROTOCOL_GRE {
        if f[26..34] != g[26..34] {
            return None;
        }
        train::AnyTrain::Decap(gre_train(f, mac, on)?)
    } else {
        let routes = &on.tables.routes;
        if routes.prefix_v4(addr(f, 30)) != routes.prefix_v4(addr(g, 30)) {
            return None;
        }
        train::AnyTrain::Encap(encap_train(f, mac, on)?)
    };
    (train.boards(first, on.tables) && train.boards(second, on.tables)).then_some(train)
}

/// The train of the GRE tunnel whose endpoints the frame `f` carries, for frames arriving on a
/// port whose MAC is `mac`, leaving by the default gateway.
fn gre_train(f: &[u8; OUTER_IP_END], mac: [u8; 6], on: &Lines<'_, '_>) -> Option<train::GreTrain> {
    let key = crate::tables::endpoints_key(addr(f, 30), addr(f, 26));
    let tunnel = on.tables.tunnel(on.tables.gre_tunnel_by_key(key)?);
    train::GreTrain::new(tunnel, key, mac, on.gateway_v4?)
}

/// The train of the customer prefix holding the destination of the frame `f`, when that prefix's
/// one route is into a GRE tunnel (one that tunnels share by flow never makes a train), for
/// frames arriving on a port whose MAC is `mac`.
fn encap_train(f: &[u8; OUTER_IP_END], mac: [u8; 6], on: &Lines<'_, '_>) -> Option<train::EncapTrain> {
    let tables = on.tables;
    let prefix = tables.routes.prefix_v4(addr(f, 30));
    let hops = tables.routes.hops_of_prefix_v4(prefix).filter(|h| !h.is_multipath())?;
    let tunnel = tables.tunnel(hops.pick(0));
    if tunnel.kind != TunnelKind::Gre {
        return None;
    }
    train::EncapTrain::new(prefix, tunnel, mac, tunnel_exit(tunnel, tables, on.neighbors, on.gateway_v4)?)
}

/// [`train_check`] for one train: whether it took the frame.
fn train_alike(
    train: &impl train::Train,
    frame: &[u8],
    port: u16,
    tables: &Tables,
    local: &mut Local,
) -> Result<bool, String> {
    let mut pkt = HeapPacket::new(frame);
    // A train changes only the packet and the IP identification it is lent; it counts apart.
    let mut ridden_ip_id = local.ip_id;
    let Some(bytes) = train.ride(&mut pkt, &mut ridden_ip_id, tables.routes.v4()) else {
        if pkt.data() != frame || ridden_ip_id != local.ip_id {
            return Err("a train declined a frame after changing it or the IP identification".into());
        }
        return Ok(false);
    };
    let mut ridden = local.counters.clone();
    train.count(&mut ridden, 1, bytes as u64);
    let full = run_alone(frame, tables, local, &|pkt, cx| Some(l2::input(pkt, port, cx)));
    agree_with_full("a train", (Verdict::Forward(train.port()), &pkt, &ridden, ridden_ip_id), full)?;
    Ok(true)
}

/// Run `frame` through `entry` from the worker state `local`: its SAs lent, the rest copied, so
/// that `local` is left as it was. Gives the verdict, the packet, the counters after (the
/// verdict's drop or punt counted) and the IP identification after.
fn run_alone(
    frame: &[u8],
    tables: &Tables,
    local: &mut Local,
    entry: &dyn Fn(&mut HeapPacket, &mut Context<'_>) -> Option<Verdict>,
) -> (Option<Verdict>, HeapPacket, super::Counters, u16) {
    let mut pkt = HeapPacket::new(frame);
    let mut own = Local {
        neighbors: local.neighbors.clone(),
        sas: std::mem::take(&mut local.sas),
        counters: local.counters.clone(),
        icmp_limit: RateLimiter::new(1000, 1000),
        ip_id: local.ip_id,
        resolve: None,
        trains: Vec::new(),
    };
    let mut cx = Context::new(tables, &mut own, 1);
    let verdict = entry(&mut pkt, &mut cx);
    if let Some(v) = &verdict {
        cx.local.counters.count(v);
    }
    local.sas = std::mem::take(&mut own.sas);
    (verdict, pkt, own.counters, own.ip_id)
}

#[cfg(test)]
mod tests;
pub mod train;
