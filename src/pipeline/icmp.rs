//! ICMP this server writes: echo replies to its own addresses, and errors (fragmentation needed,
//! time exceeded, packet too big) built in place over the packet they are about, rate-limited.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{csum, ipv4, ipv6, Context, DropReason, Origin, PacketBuf, Verdict};
use crate::wire::{checksum, Icmpv6Packet, IpProtocol};

/// An ICMP error to send back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Type 3 code 4 with the next-hop MTU (RFC 1191).
    FragmentationNeeded(u16),
    /// Type 11 code 0.
    TimeExceeded,
}

impl Error {
    fn drop_reason(self) -> DropReason {
        match self {
            Error::FragmentationNeeded(_) => DropReason::TooBig,
            Error::TimeExceeded => DropReason::TtlExceeded,
        }
    }
}

/// Whether an ICMP message (from its header on) is an echo request.
#[inline]
pub fn is_echo_request_v4(icmp: &[u8]) -> bool {
    icmp.len() >= 8 && icmp[0] == 8 && icmp[1] == 0
}

/// Turn an IPv4 echo request for us (IPv4 header of `header_len` first) into its reply, in place.
pub fn echo_reply_v4<P: PacketBuf>(pkt: &mut P, header_len: usize) {
    let data = pkt.data_mut();
    let (src, dst) = ([data[12], data[13], data[14], data[15]], [data[16], data[17], data[18], data[19]]);
    data[12..16].copy_from_slice(&dst);
    data[16..20].copy_from_slice(&src);
    data[8] = 64;
    data[10..12].fill(0);
    let sum = !checksum::data(&data[..header_len]);
    data[10..12].copy_from_slice(&sum.to_be_bytes());
    // Type 8 -> 0 changes one word of the ICMP message.
    let icmp = &mut data[header_len..];
    let old = u16::from_be_bytes([icmp[0], icmp[1]]);
    icmp[0] = 0;
    let new = u16::from_be_bytes([icmp[0], icmp[1]]);
    let sum = csum::update16(u16::from_be_bytes([icmp[2], icmp[3]]), old, new);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
}

/// Whether an error may be sent about this packet (RFC 1812 4.3.2.7): not about an ICMP error,
/// a later fragment, or a packet whose source is not one host.
fn may_answer_v4(data: &[u8], h: &ipv4::Header) -> bool {
    if h.later_fragment || h.src.is_unspecified() || h.src.is_loopback() || h.src.is_multicast() || h.src.is_broadcast()
    {
        return false;
    }
    if h.protocol == IpProtocol::Icmp {
        // Only queries (echo, timestamp, ...) may be answered with an error.
        let t = data.get(h.len).copied().unwrap_or(3);
        return matches!(t, 0 | 8 | 13 | 14);
    }
    true
}

/// Drop the IPv4 packet `pkt` (header `h`) for `error`'s reason and send the error back to its
/// source from `from`, in place of the packet.
pub(crate) fn error_v4<P: PacketBuf>(
    pkt: &mut P,
    h: &ipv4::Header,
    error: Error,
    from: Ipv4Addr,
    origin: Origin,
    cx: &mut Context<'_>,
) -> Verdict {
    let reason = error.drop_reason();
    if origin == Origin::Local || !may_answer_v4(pkt.data(), h) {
        return Verdict::Drop(reason);
    }
    if !cx.local.icmp_limit.allow(cx.now) {
        cx.local.counters.drops[reason.index()] += 1;
        return Verdict::Drop(DropReason::IcmpRateLimited);
    }
    // As much of the original as fits in 576 bytes (RFC 1812 4.3.2.3).
    pkt.truncate(576 - 28);
    let quoted = pkt.len();
    if !pkt.prepend(28) {
        return Verdict::Drop(DropReason::NoBufferRoom);
    }
    cx.local.counters.drops[reason.index()] += 1;
    cx.local.counters.icmp_errors += 1;
    let id = cx.local.next_ip_id();
    let data = pkt.data_mut();
    let (kind, code, rest) = match error {
        Error::FragmentationNeeded(mtu) => (3u8, 4u8, u32::from(mtu)),
        Error::TimeExceeded => (11, 0, 0),
    };
    data[0] = 0x45;
    data[1] = 0xc0;
    data[2..4].copy_from_slice(&((28 + quoted) as u16).to_be_bytes());
    data[4..6].copy_from_slice(&id.to_be_bytes());
    data[6..8].fill(0);
    data[8] = 64;
    data[9] = 1;
    data[10..12].fill(0);
    data[12..16].copy_from_slice(&from.octets());
    data[16..20].copy_from_slice(&h.src.octets());
    let sum = !checksum::data(&data[..20]);
    data[10..12].copy_from_slice(&sum.to_be_bytes());
    let icmp = &mut data[20..];
    icmp[0] = kind;
    icmp[1] = code;
    icmp[2..4].fill(0);
    icmp[4..8].copy_from_slice(&rest.to_be_bytes());
    let sum = !checksum::data(icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let reply = ipv4::Header {
        len: 20,
        total: 28 + quoted,
        src: from,
        dst: h.src,
        protocol: IpProtocol::Icmp,
        dont_frag: false,
        fragment: false,
        later_fragment: false,
    };
    ipv4::forward(pkt, &reply, Origin::Local, cx)
}

/// An ICMPv6 error to send back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error6 {
    /// Type 2, with the MTU (RFC 4443 3.2).
    PacketTooBig(u16),
    /// Type 3 code 0.
    HopLimitExceeded,
}

/// Drop the IPv6 packet `pkt` and send `error` back to its source from `from`, in place.
pub(crate) fn error_v6<P: PacketBuf>(
    pkt: &mut P,
    h: &ipv6::Header,
    error: Error6,
    from: Option<Ipv6Addr>,
    origin: Origin,
    cx: &mut Context<'_>,
) -> Verdict {
    let reason = match error {
        Error6::PacketTooBig(_) => DropReason::TooBig,
        Error6::HopLimitExceeded => DropReason::TtlExceeded,
    };
    let is_error = h.next_header == IpProtocol::Icmpv6 && pkt.data().get(40).is_some_and(|t| *t < 128);
    let Some(from) = from else { return Verdict::Drop(reason) };
    if origin == Origin::Local || is_error || h.src.is_unspecified() || h.src.is_multicast() || h.src.is_loopback() {
        return Verdict::Drop(reason);
    }
    if !cx.local.icmp_limit.allow(cx.now) {
        cx.local.counters.drops[reason.index()] += 1;
        return Verdict::Drop(DropReason::IcmpRateLimited);
    }
    // As much of the original as fits in the minimum IPv6 MTU (RFC 4443 2.4 c).
    pkt.truncate(1280 - 48);
    let quoted = pkt.len();
    if !pkt.prepend(48) {
        return Verdict::Drop(DropReason::NoBufferRoom);
    }
    cx.local.counters.drops[reason.index()] += 1;
    cx.local.counters.icmp_errors += 1;
    let data = pkt.data_mut();
    data[0..4].copy_from_slice(&0x6000_0000u32.to_be_bytes());
    data[4..6].copy_from_slice(&((8 + quoted) as u16).to_be_bytes());
    data[6] = 58;
    data[7] = 64;
    data[8..24].copy_from_slice(&from.octets());
    data[24..40].copy_from_slice(&h.src.octets());
    let (kind, code, rest) = match error {
        Error6::PacketTooBig(mtu) => (2u8, 0u8, u32::from(mtu)),
        Error6::HopLimitExceeded => (3, 0, 0),
    };
    let icmp = &mut data[40..];
    icmp[0] = kind;
    icmp[1] = code;
    icmp[2..4].fill(0);
    icmp[4..8].copy_from_slice(&rest.to_be_bytes());
    Icmpv6Packet::new_unchecked(icmp).fill_checksum(&from, &h.src);
    let reply = ipv6::Header { src: from, dst: h.src, next_header: IpProtocol::Icmpv6, hop_limit: 64 };
    ipv6::forward(pkt, &reply, Origin::Local, cx)
}
