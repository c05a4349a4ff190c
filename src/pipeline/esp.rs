//! ESP tunnel mode (RFC 4303), raw (IP protocol 50) and in UDP (RFC 3948, port 4500).
//!
//! Each direction runs in two steps so that a worker can do a burst's crypto per SA together:
//! classification ([`input`], [`encapsulate`]) checks what is cheap to check, finds the SA and
//! gives [`Verdict::Crypto`]; the worker gathers those jobs from a whole burst, orders them by SA,
//! reserves each outbound SA's sequence numbers once, and runs [`decrypt`] / [`encrypt`], which
//! finish the packet and give its final verdict. [`run`] does the second step for one packet.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{emit_l2_to, express, ipv4, ipv6, Context, DropReason, Origin, PacketBuf, PuntReason, Verdict};
use crate::esp::db::InboundRef;
use crate::esp::sa::OpenError;
pub use crate::esp::sa::NAT_T_PORT;
use crate::esp::SaDb;
use crate::tables::{Egress, TunnelId};
use crate::wire::EspPacket;

/// The IKE port (RFC 7296).
pub const IKE_PORT: u16 = 500;

/// IP protocol numbers in the ESP trailer's next header field.
const NEXT_IPV4: u8 = 4;
const NEXT_IPV6: u8 = 41;
/// "No next header": a dummy packet for traffic flow confidentiality (RFC 4303 2.6).
const NEXT_NONE: u8 = 59;

/// Crypto work for the worker's batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EspJob {
    /// Check and decrypt with an inbound SA; the ESP header is at offset `esp` of the packet.
    Decrypt { sa: InboundRef, esp: u16 },
    /// Encrypt with outbound SA `sa` of the tunnel with counter slot `slot`.
    Encrypt { slot: u32, sa: u16, next_header: u8 },
}

impl EspJob {
    /// The outbound SA of an encryption job, to reserve sequence numbers for a group.
    pub fn outbound(&self) -> Option<(u32, u16)> {
        match *self {
            EspJob::Encrypt { slot, sa, .. } => Some((slot, sa)),
            EspJob::Decrypt { .. } => None,
        }
    }
}

/// An ESP packet (raw, or in UDP with the UDP header already counted in `esp`) for one of our
/// addresses: find its SA and check what needs no key.
#[inline]
pub(crate) fn input<P: PacketBuf>(pkt: &mut P, outer: &ipv4::Header, esp: usize, cx: &mut Context<'_>) -> Verdict {
    if outer.fragment {
        return Verdict::Drop(DropReason::EspFragment);
    }
    let Ok(packet) = EspPacket::new_checked(&pkt.data()[esp..]) else {
        return Verdict::Drop(DropReason::EspMalformed);
    };
    let (spi, seq) = (packet.security_parameters_index(), packet.sequence_number());
    let Some(r) = cx.local.sas.find_inbound(outer.dst, spi) else {
        return Verdict::Drop(DropReason::EspUnknownSpi);
    };
    let len = pkt.len() - esp;
    let look_ahead = cx.local.sas.prefetch_worthwhile();
    let Some(sa) = cx.local.sas.inbound_mut(r) else {
        return Verdict::Drop(DropReason::EspUnknownSpi);
    };
    let t = sa.transform;
    let body = len.checked_sub(8 + t.iv_len() + t.icv_len());
    if look_ahead {
        // The burst's crypto comes after the whole burst is classified: by then the key is in.
        sa.prefetch_key(body.unwrap_or(0));
    }
    if body.is_none_or(|b| b < 2 || b & (t.block_len() - 1) != 0) {
        sa.counters.drops += 1;
        return Verdict::Drop(DropReason::EspMalformed);
    }
    if let Some(window) = &sa.replay {
        if window.check(seq).is_err() {
            sa.counters.drops += 1;
            return Verdict::Drop(DropReason::EspReplayed);
        }
    }
    Verdict::Crypto(EspJob::Decrypt { sa: r, esp: esp as u16 })
}

/// The anycast endpoint and SPI of a frame that looks like inbound ESP (raw, or in UDP 4500),
/// read with no check beyond lengths, for a worker's look-ahead over a burst (`esp::db`):
/// classification checks everything afterwards.
#[inline(always)]
pub fn peek_inbound(frame: &[u8]) -> Option<(Ipv4Addr, u32)> {
    let (mut l3, mut ethertype) = (14, u16::from_be_bytes(frame.get(12..14)?.try_into().ok()?));
    if ethertype == crate::wire::ETHERTYPE_VLAN {
        (l3, ethertype) = (18, u16::from_be_bytes(frame.get(16..18)?.try_into().ok()?));
    }
    if ethertype != ipv4::ETHERTYPE {
        return None;
    }
    let ip = frame.get(l3..)?;
    let header_len = usize::from(ip.first()? & 0x0f) * 4;
    let esp = match ip.get(9)? {
        50 => header_len,
        17 if ip.get(header_len + 2..header_len + 4)? == NAT_T_PORT.to_be_bytes() => header_len + 8,
        _ => return None,
    };
    let dst = Ipv4Addr::from(<[u8; 4]>::try_from(ip.get(16..20)?).ok()?);
    let spi = u32::from_be_bytes(ip.get(esp..esp + 4)?.try_into().ok()?);
    // SPI 0 is the non-ESP marker of IKE in UDP 4500.
    (spi != 0).then_some((dst, spi))
}

/// A worker's look-ahead over a burst's frames, for databases larger than the cache (see
/// `esp::db`): the lookup slot of every ESP packet's SPI first, then every SA those lookups find,
/// so that the misses of each pass overlap. At most a burst's frames are looked at.
pub fn look_ahead<'a>(frames: impl Iterator<Item = &'a [u8]>, sas: &SaDb) {
    let mut keys = [(Ipv4Addr::UNSPECIFIED, 0u32); dpdk_bindings::BURST];
    let mut n = 0;
    for frame in frames.take(keys.len()) {
        if let Some((anycast, spi)) = peek_inbound(frame) {
            sas.prefetch_slot(anycast, spi);
            keys[n] = (anycast, spi);
            n += 1;
        }
    }
    for &(anycast, spi) in &keys[..n] {
        sas.prefetch_inbound(anycast, spi);
    }
}

/// A UDP datagram for one of our addresses: NAT-T (ESP in UDP, IKE behind the non-ESP marker,
/// keepalives) and IKE on 500; anything else is the slow path's.
#[inline]
pub(crate) fn udp_input<P: PacketBuf>(pkt: &mut P, h: &ipv4::Header, cx: &mut Context<'_>) -> Verdict {
    let data = &pkt.data()[h.len..];
    if h.later_fragment || data.len() < 8 {
        return Verdict::Punt(PuntReason::HostBound);
    }
    let dport = u16::from_be_bytes([data[2], data[3]]);
    match dport {
        IKE_PORT => Verdict::Punt(PuntReason::Ike),
        NAT_T_PORT => {
            let payload = &data[8..];
            match payload {
                [0xff] => Verdict::Drop(DropReason::NatKeepalive),
                [0, 0, 0, 0, ..] => Verdict::Punt(PuntReason::Ike),
                // Shorter than an ESP header with an SPI: nothing a peer sends.
                _ if payload.len() < 8 => Verdict::Drop(DropReason::EspMalformed),
                _ => input(pkt, h, h.len + 8, cx),
            }
        }
        _ => Verdict::Punt(PuntReason::HostBound),
    }
}

/// Step two of decapsulation: check the ICV, decrypt, check padding, trailer, anti-replay and
/// traffic selectors, take the outer headers off, and route the inner packet.
pub fn decrypt<P: PacketBuf>(pkt: &mut P, r: InboundRef, esp: usize, cx: &mut Context<'_>) -> Verdict {
    let Some(sa) = cx.local.sas.inbound_mut(r) else {
        return Verdict::Drop(DropReason::EspUnknownSpi);
    };
    let (iv_len, icv_len) = (sa.transform.iv_len(), sa.transform.icv_len());
    let data = &mut pkt.data_mut()[esp..];
    let seq = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
    match sa.open(data) {
        Ok(()) => {}
        Err(e) => {
            sa.counters.drops += 1;
            return Verdict::Drop(match e {
                OpenError::Icv => DropReason::EspBadIcv,
                OpenError::Length => DropReason::EspMalformed,
            });
        }
    }
    if let Some(window) = &mut sa.replay {
        // Checked before decryption; checked again now that the ICV proved the packet genuine,
        // as another packet with this number may have been accepted in between.
        if window.accept(seq).is_err() {
            sa.counters.drops += 1;
            return Verdict::Drop(DropReason::EspReplayed);
        }
    }
    let plain = &data[8 + iv_len..data.len() - icv_len];
    let (pad_len, next) = (usize::from(plain[plain.len() - 2]), plain[plain.len() - 1]);
    let Some(inner_len) = plain.len().checked_sub(pad_len + 2) else {
        sa.counters.drops += 1;
        return Verdict::Drop(DropReason::EspBadPadding);
    };
    // RFC 4303 2.4: the default padding is 1, 2, 3, ...; anything else is refused.
    if !plain[inner_len..inner_len + pad_len].iter().enumerate().all(|(i, b)| usize::from(*b) == i + 1) {
        sa.counters.drops += 1;
        return Verdict::Drop(DropReason::EspBadPadding);
    }
    let inner = &plain[..inner_len];
    let addresses = match next {
        NEXT_IPV4 | NEXT_IPV6 => addresses(inner, next),
        NEXT_NONE => {
            // A dummy packet: consumed (not an error, but not traffic either).
            return Verdict::Drop(DropReason::EspDummy);
        }
        _ => {
            sa.counters.drops += 1;
            return Verdict::Drop(DropReason::EspBadNextHeader);
        }
    };
    let Some((src, dst)) = addresses else {
        sa.counters.drops += 1;
        return Verdict::Drop(DropReason::InnerMalformed);
    };
    // Inbound, the destination is on our side of the selectors.
    if !sa.selectors.allow(dst, src) {
        sa.counters.drops += 1;
        return Verdict::Drop(DropReason::EspSelectorMismatch);
    }
    sa.counters.packets += 1;
    sa.counters.bytes += inner_len as u64;
    let slot = sa.tunnel_slot;
    let Some(id) = cx.tables.tunnel_by_slot(slot) else {
        return Verdict::Drop(DropReason::EspUnknownTunnel);
    };
    pkt.adj(esp + 8 + iv_len);
    pkt.truncate(inner_len);
    let counters = cx.local.counters.tunnel(slot);
    counters.ingress_packets += 1;
    counters.ingress_bytes += inner_len as u64;
    if next == NEXT_IPV4 {
        // Most decrypted packets leave by a port with nothing else to do.
        let exit = pkt
            .data()
            .first_chunk::<20>()
            .and_then(|h| express::exit_to_port(h, inner_len, cx.tables.tunnel(id).mss, cx));
        if let Some(port) = exit.and_then(|exit| express::leave(pkt, 0, exit)) {
            return Verdict::Forward(port);
        }
        let h = match ipv4::check(pkt.data(), DropReason::InnerMalformed) {
            Ok(h) => h,
            Err(r) => return Verdict::Drop(r),
        };
        pkt.truncate(h.total);
        ipv4::forward(pkt, &h, Origin::Tunnel(id), cx)
    } else {
        ipv6::from_tunnel(pkt, id, cx)
    }
}

/// The source and destination of an IPv4 (`next` = 4) or IPv6 (41) packet, if it is long
/// enough to hold them.
#[inline(always)]
fn addresses(packet: &[u8], next: u8) -> Option<(IpAddr, IpAddr)> {
    if next == NEXT_IPV4 {
        let h: &[u8; 20] = packet.get(..20)?.try_into().ok()?;
        let a = |at: usize| IpAddr::V4(Ipv4Addr::new(h[at], h[at + 1], h[at + 2], h[at + 3]));
        return Some((a(12), a(16)));
    }
    let h: &[u8; 40] = packet.get(..40)?.try_into().ok()?;
    let a = |at: usize| {
        let mut o = [0u8; 16];
        o.copy_from_slice(&h[at..at + 16]);
        IpAddr::V6(Ipv6Addr::from(o))
    };
    Some((a(8), a(24)))
}

/// Step one of encapsulation: find the tunnel's outbound SA for the IP packet `pkt` (of
/// `ethertype`, already routed, TTL, MSS and MTU done).
#[inline]
pub fn encapsulate<P: PacketBuf>(pkt: &mut P, id: TunnelId, ethertype: u16, cx: &mut Context<'_>) -> Verdict {
    let slot = cx.tables.tunnel(id).slot;
    let next_header = if ethertype == ipv4::ETHERTYPE { NEXT_IPV4 } else { NEXT_IPV6 };
    let Some((src, dst)) = addresses(pkt.data(), next_header) else {
        return Verdict::Drop(DropReason::InnerMalformed);
    };
    match cx.local.sas.find_outbound(slot, src, dst) {
        Some(sa) => Verdict::Crypto(EspJob::Encrypt { slot, sa, next_header }),
        None => {
            cx.local.counters.tunnel(slot).drops += 1;
            Verdict::Drop(DropReason::EspNoSa)
        }
    }
}

/// Where the packets of one router leave: looked up for the first of a batch's packets to it
/// and kept for the others (tables and neighbors change only between bursts).
#[derive(Debug, Clone, Copy, Default)]
pub struct RouterExit {
    last: Option<(Ipv4Addr, Option<Egress>, Option<[u8; 6]>)>,
}

impl RouterExit {
    /// The egress toward `router` and its next hop's MAC, from the last lookup when it was for
    /// the same router.
    #[inline(always)]
    pub(crate) fn get(&mut self, router: Ipv4Addr, cx: &Context<'_>) -> (Option<Egress>, Option<[u8; 6]>) {
        if let Some((r, egress, mac)) = self.last {
            if r == router {
                return (egress, mac);
            }
        }
        let egress = cx.tables.egress(IpAddr::V4(router));
        let mac = egress.and_then(|e| cx.local.neighbors.get(e.port, e.next_hop));
        self.last = Some((router, egress, mac));
        (egress, mac)
    }
}

/// Step two of encapsulation with sequence number `seq` (reserved by the caller; None when the
/// SA has run out): pad, add the trailer, encrypt, add the ESP and outer headers, and address
/// the packet to the customer router's next hop (`exit`: the lookup kept over a batch).
pub fn encrypt<P: PacketBuf>(
    pkt: &mut P,
    slot: u32,
    index: u16,
    next_header: u8,
    seq: Option<u64>,
    exit: &mut RouterExit,
    cx: &mut Context<'_>,
) -> Verdict {
    let Some(sa) = cx.local.sas.outbound_mut(slot, index) else {
        return Verdict::Drop(DropReason::EspNoSa);
    };
    let Some(seq) = seq.and_then(|s| u32::try_from(s).ok()) else {
        sa.counters.drops += 1;
        return Verdict::Drop(DropReason::EspSequenceExhausted);
    };
    let inner_len = pkt.len();
    let header_len = sa.header_len();
    let trailer_len = sa.trailer_len(inner_len);
    let total = header_len + inner_len + trailer_len;
    if total > usize::from(u16::MAX) || !pkt.append(trailer_len) {
        return Verdict::Drop(DropReason::NoBufferRoom);
    }
    if !pkt.prepend(header_len) {
        pkt.trim(trailer_len);
        return Verdict::Drop(DropReason::NoBufferRoom);
    }
    let icv_len = sa.transform.icv_len();
    let pad_len = trailer_len - 2 - icv_len;
    let outer_len = sa.outer_len;
    let data = pkt.data_mut();
    let trailer_at = header_len + inner_len;
    for (i, b) in data[trailer_at..trailer_at + pad_len].iter_mut().enumerate() {
        *b = (i + 1) as u8;
    }
    data[trailer_at + pad_len] = pad_len as u8;
    data[trailer_at + pad_len + 1] = next_header;
    // The outer header is finished in registers and written once: a template copied to the
    // stack and patched there, or patched in the packet after its copy, is read back in parts
    // (a store-forwarding stall, several nanoseconds a packet).
    cx.local.ip_id = cx.local.ip_id.wrapping_add(1);
    let id_field = cx.local.ip_id;
    let (head, tail) = sa.outer_header(total as u16, id_field);
    data[..16].copy_from_slice(&head);
    // Where the outer header is IPv4 alone, the tail's last 8 bytes are the ESP header's room,
    // which sealing writes next.
    data[16..28].copy_from_slice(&tail);
    if sa.seal(&mut data[outer_len..], seq).is_err() {
        sa.counters.drops += 1;
        return Verdict::Drop(DropReason::EspCryptoFailed);
    }
    sa.counters.packets += 1;
    sa.counters.bytes += inner_len as u64;
    let remote = sa.remote;
    let counters = cx.local.counters.tunnel(slot);
    counters.egress_packets += 1;
    counters.egress_bytes += inner_len as u64;
    let (Some(egress), mac) = exit.get(remote, cx) else {
        return Verdict::Drop(DropReason::NoEgress);
    };
    emit_l2_to(pkt, egress, mac, ipv4::ETHERTYPE, cx)
}

/// Run one job (a batch of one): sequence number reserved here.
pub fn run<P: PacketBuf>(pkt: &mut P, job: EspJob, cx: &mut Context<'_>) -> Verdict {
    match job {
        EspJob::Decrypt { sa, esp } => decrypt(pkt, sa, usize::from(esp), cx),
        EspJob::Encrypt { slot, sa, next_header } => {
            let seq = cx.local.sas.outbound(slot, sa).and_then(|s| s.reserve(1));
            encrypt(pkt, slot, sa, next_header, seq, &mut RouterExit::default(), cx)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet frame (with an 802.1Q tag when `vlan`) holding an IPv4 header (options of
    /// `options` bytes) to 192.0.2.100 of `protocol`, followed by `rest`.
    fn frame(vlan: bool, options: usize, protocol: u8, rest: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        if vlan {
            f.extend([0x81, 0x00, 0x00, 0x07]);
        }
        f.extend([0x08, 0x00, 0x45 + (options / 4) as u8, 0, 0, 0, 0, 0, 0, 0, 64, protocol, 0, 0]);
        f.extend([198, 51, 100, 20, 192, 0, 2, 100]);
        f.extend(std::iter::repeat_n(1, options));
        f.extend(rest);
        f
    }

    #[test]
    fn the_look_ahead_finds_the_spi_of_raw_and_udp_esp_and_nothing_else() {
        let anycast = Ipv4Addr::new(192, 0, 2, 100);
        let esp = [0, 0, 0x10, 0x01, 0, 0, 0, 1];
        let udp = |port: u16, payload: &[u8]| {
            let mut u = vec![0x11, 0x94];
            u.extend(port.to_be_bytes());
            u.extend([0, 0, 0, 0]);
            u.extend(payload);
            u
        };
        let found = Some((anycast, 0x1001));
        let cases = [
            (frame(false, 0, 50, &esp), found),
            (frame(true, 0, 50, &esp), found),
            (frame(false, 8, 50, &esp), found),
            (frame(false, 0, 17, &udp(NAT_T_PORT, &esp)), found),
            // IKE behind the non-ESP marker, IKE on 500, GRE: not ESP.
            (frame(false, 0, 17, &udp(NAT_T_PORT, &[0, 0, 0, 0, 1])), None),
            (frame(false, 0, 17, &udp(IKE_PORT, &esp)), None),
            (frame(false, 0, 47, &esp), None),
            // Cut short before the SPI, or before the IPv4 header.
            (frame(false, 0, 50, &esp[..3]), None),
            (frame(false, 0, 50, &esp)[..20].to_vec(), None),
        ];
        for (i, (f, want)) in cases.iter().enumerate() {
            assert_eq!(peek_inbound(f), *want, "case {i}");
        }
        let mut ipv6 = frame(false, 0, 50, &esp);
        ipv6[12..14].copy_from_slice(&[0x86, 0xdd]);
        assert_eq!(peek_inbound(&ipv6), None);
        for n in 0..38 {
            assert_eq!(peek_inbound(&frame(false, 0, 50, &esp)[..n]), None, "{n} bytes");
        }
    }
}
