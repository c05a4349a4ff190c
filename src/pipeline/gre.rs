//! GRE tunnels: decapsulation of what customer routers send, encapsulation toward them.

use super::{csum, emit_l2, ipv4, ipv6, Context, DropReason, Origin, PacketBuf, Verdict};
use crate::tables::TunnelId;
use crate::wire::gre;

/// Outer IPv4 and GRE header bytes added by encapsulation.
pub const OVERHEAD: usize = 20 + gre::BASE_HEADER_LEN;

/// Decapsulate a GRE packet of tunnel `id` (outer IPv4 header `outer` at the start of `pkt`),
/// and route the inner packet.
#[inline(always)]
pub(crate) fn decapsulate<P: PacketBuf>(
    pkt: &mut P,
    outer: &ipv4::Header,
    id: TunnelId,
    cx: &mut Context<'_>,
) -> Verdict {
    let slot = cx.tables.tunnel(id).slot;
    let (header_len, protocol) = match check(&pkt.data()[outer.len..]) {
        Ok(v) => v,
        Err(reason) => {
            cx.local.counters.tunnel(slot).drops += 1;
            return Verdict::Drop(reason);
        }
    };
    pkt.adj(outer.len + header_len);
    let counters = cx.local.counters.tunnel(slot);
    counters.ingress_packets += 1;
    counters.ingress_bytes += pkt.len() as u64;
    match protocol {
        ipv4::ETHERTYPE => {
            let inner = match ipv4::check(pkt.data(), DropReason::InnerMalformed) {
                Ok(h) => h,
                Err(r) => return Verdict::Drop(r),
            };
            pkt.truncate(inner.total);
            ipv4::forward(pkt, &inner, Origin::Tunnel(id), cx)
        }
        _ => ipv6::from_tunnel(pkt, id, cx),
    }
}

/// Check a GRE header: its length, version 0, no reserved bit, the checksum where present, no
/// key (tunnels have none), an IPv4 or IPv6 payload. Gives the header length and protocol.
#[inline(always)]
fn check(data: &[u8]) -> Result<(usize, u16), DropReason> {
    let g = gre::Packet::new_checked(data).map_err(|_| DropReason::GreTruncated)?;
    if g.version() != 0 || g.reserved_bits_set() {
        return Err(DropReason::GreBadVersion);
    }
    if !g.verify_checksum() {
        return Err(DropReason::GreBadChecksum);
    }
    if g.key_present() {
        return Err(DropReason::GreKeyMismatch);
    }
    match g.protocol() {
        p @ (ipv4::ETHERTYPE | ipv6::ETHERTYPE) => Ok((g.header_len(), p)),
        _ => Err(DropReason::GreUnsupportedProtocol),
    }
}

/// Encapsulate the IP packet `pkt` (of `ethertype`) into tunnel `id` and address it to the
/// customer endpoint's next hop.
#[inline(always)]
pub fn encapsulate<P: PacketBuf>(pkt: &mut P, id: TunnelId, ethertype: u16, cx: &mut Context<'_>) -> Verdict {
    let tunnel = cx.tables.tunnel(id);
    let Some(egress) = tunnel.egress else {
        return Verdict::Drop(DropReason::NoEgress);
    };
    let (slot, template, template_sum) = (tunnel.slot, tunnel.outer_template, tunnel.outer_sum);
    let inner_len = pkt.len();
    let total = inner_len + OVERHEAD;
    if total > usize::from(u16::MAX) || !pkt.prepend(OVERHEAD) {
        return Verdict::Drop(DropReason::NoBufferRoom);
    }
    let id_field = cx.local.next_ip_id();
    let checksum = csum::template_checksum(template_sum, total as u16, id_field);
    if let Some(outer) = pkt.data_mut().first_chunk_mut() {
        write_outer(outer, &template, total as u16, id_field, checksum, ethertype);
    }
    let counters = cx.local.counters.tunnel(slot);
    counters.egress_packets += 1;
    counters.egress_bytes += inner_len as u64;
    emit_l2(pkt, egress, ipv4::ETHERTYPE, cx)
}

/// Write a tunnel's outer IPv4 and GRE header from its template (whose total length,
/// identification, checksum and GRE protocol are 0: `Tunnel::outer_template`) as three 64-bit
/// stores, the variable fields merged in registers: copying the template and storing each field
/// over it took twice the stores (express encapsulation at 60 B: 29.41 -> 30.37 Mpps).
#[inline(always)]
pub(crate) fn write_outer(
    outer: &mut [u8; OVERHEAD],
    template: &[u8; OVERHEAD],
    total: u16,
    id: u16,
    checksum: u16,
    protocol: u16,
) {
    // A big-endian field's bytes as they sit in a little-endian word.
    let field = |v: u16| u64::from(u16::from_le_bytes(v.to_be_bytes()));
    let word = |at: usize| template.get(at..).and_then(|t| t.first_chunk::<8>()).map_or(0, |t| u64::from_le_bytes(*t));
    let words = [
        word(0) | field(total) << 16 | field(id) << 32,
        word(8) | field(checksum) << 16,
        word(16) | field(protocol) << 48,
    ];
    for (chunk, w) in outer.chunks_exact_mut(8).zip(words) {
        chunk.copy_from_slice(&w.to_le_bytes());
    }
}
