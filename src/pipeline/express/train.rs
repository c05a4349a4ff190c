//! Trains: a burst's packets one after another through one tunnel. Two kinds:
//! - a customer router's GRE packets, each decapsulated toward the default gateway
//!   ([`GreTrain`]);
//! - packets from the internet for one customer prefix, routed into its one GRE tunnel
//!   ([`EncapTrain`]).
//!
//! A run of a burst's packets whose first two are one tunnel's GRE packets, or two packets for
//! one such prefix, boards that train ([`super::boarding`]), and the worker takes the packets
//! through it in a loop of its own ([`Train::ride`]) for as long as they are its; the rest of the
//! run goes the express lane's way, which knows nothing of trains. The worker keeps the train a
//! port's last boarding made, and a later burst whose first two packets are its rides it without
//! boarding, until the tables or neighbors change (decap 122.3 -> 117.4 instructions a packet,
//! encap 149.8 -> 147.3). A [`GreTrain`] knows what every packet's first 48 bytes hold: the
//! port's MAC, the EtherType, a plain outer IPv4 header from the customer endpoint to the anycast
//! endpoint with GRE in it, a bare GRE header with IPv4, a plain inner header. One masked
//! compare of three words checks them all, where the express lane checks them one by one and
//! then looks up the tunnel; what differs from packet to packet (lengths, checksums, the TTL, the
//! inner addresses) is checked as the express lane checks it, but that the inner source is
//! tested by its /16 block (a martian one is never ordinary).
//!
//! An [`EncapTrain`]'s packets are checked as the express lane checks them, but for the
//! destination MAC, EtherType, version, header length and fragment fields, compared whole, the
//! route, which is the prefix's number compared, and the source, tested by its block as a
//! [`GreTrain`]'s inner one.
//!
//! A packet a train takes gets exactly the express lane's verdict, bytes and counts; any other
//! packet is declined untouched and goes the express lane's way. A differential test holds them
//! to that.

use std::net::Ipv4Addr;

use wide::u8x16;

use super::{header, L2Exit, INNER_START, IP_PROTOCOL_GRE, IP_PROTOCOL_TCP, OUTER_IP_END};
use crate::pipeline::{csum, gre, ipv4, mss, next_ip_id, Counters, PacketBuf};
use crate::tables::{RoutesV4, Tables, Tunnel};

/// A train: the packets it takes, and how they are counted.
pub trait Train {
    /// The port the train's packets leave by.
    fn port(&self) -> u16;

    /// Whether the frame `f` may be one of the train's on `tables` (those it was made on):
    /// checks that [`Train::ride`] makes too, of what a train's packets all share (its compared
    /// bits, and for encapsulation the prefix).
    fn boards(&self, f: &[u8], tables: &Tables) -> bool;

    /// Take the frame `pkt` if it is one of the train's on the tables it was made on, whose IPv4
    /// routes are `routes` ([`crate::tables::RouteTable::v4`]), as the express lane would, the IP
    /// identification it writes the one after `ip_id` (the worker's and the run's packets
    /// before it: [`Train::TAKES_IP_ID`]): gives the bytes its tunnel counts (an IPv4 packet's
    /// length, at most 0xffff). Declines (None) with the frame and `ip_id` untouched otherwise.
    fn ride<P: PacketBuf>(&self, pkt: &mut P, ip_id: &mut u16, routes: RoutesV4<'_>) -> Option<usize>;

    /// The bytes of the frames that `packets` of the train send, whose tunnel counts `bytes`.
    fn frames_bytes(&self, packets: u64, bytes: u64) -> u64;

    /// Whether each packet the train takes is given an IP identification (the one after the
    /// worker's last), so that a run of them takes as many.
    const TAKES_IP_ID: bool;

    /// Whether every frame the train takes is its tunnel's bytes and a fixed overhead, so that
    /// [`Train::received_bytes`] gives what `packets` of them came in as, and the worker need
    /// not sum their lengths one by one.
    const RECEIVED_FROM_BYTES: bool;

    /// The bytes of the frames that `packets` of the train received, whose tunnel counts `bytes`
    /// (where [`Train::RECEIVED_FROM_BYTES`]).
    fn received_bytes(&self, packets: u64, bytes: u64) -> u64;

    /// Count `packets` of `bytes` for the train's tunnel, as the express lane counts them.
    fn count(&self, counters: &mut Counters, packets: u64, bytes: u64);
}

/// A train of either kind, as a run of received packets boards it ([`super::boarding`]). It
/// holds no reference to the tables it was made on, so that a worker can keep it from one burst
/// to the next for as long as those tables and its neighbors stay as they were.
#[derive(Debug, Clone, Copy)]
pub enum AnyTrain {
    Decap(GreTrain),
    Encap(EncapTrain),
}

impl AnyTrain {
    /// [`Train::boards`] of the train.
    #[inline(always)]
    pub fn boards(&self, f: &[u8], tables: &Tables) -> bool {
        match self {
            AnyTrain::Decap(train) => train.boards(f, tables),
            AnyTrain::Encap(train) => train.boards(f, tables),
        }
    }
}

/// How many of a frame's first bytes a train compares.
const COMPARED: usize = 48;

/// The bits of a frame's first 48 bytes that a train compares: the destination MAC (0..6), the
/// EtherType (12, 13), the outer version and header length (14), its fragment fields but DF (20,
/// 21), its protocol (23), its source and destination (26..34), the GRE flags, version and
/// protocol (34..38), the inner version and header length (38) and the inner fragment fields but
/// DF (44, 45).
const MASK: [u8; COMPARED] = {
    let mut m = [0u8; COMPARED];
    let mut i = 0;
    while i < COMPARED {
        m[i] = match i {
            0..6 | 12..15 | 21 | 23 | 26..39 | 45 => 0xff,
            20 | 44 => 0x3f,
            _ => 0,
        };
        i += 1;
    }
    m
};

/// Whether the bits of the frame `f` that `mask` selects differ from `expect`: each 16-byte
/// word masked and compared bytewise in a vector register, the results folded into one mask,
/// one branch (14 instructions for three words on x86-64, where masked words xor-ed in general
/// registers took 27).
#[inline(always)]
fn differs<const W: usize>(f: &[u8], mask: &[u8x16; W], expect: &[u8x16; W]) -> bool {
    equal_bytes(f, mask, expect) != 0xffff
}

/// The bytes at which the words of the frame `f`, `mask`ed, equal `expect`'s, each word's
/// results folded into one (a byte at which any word differs is a clear bit): the bits of a
/// vector compare's mask.
#[inline(always)]
fn equal_bytes<const W: usize>(f: &[u8], mask: &[u8x16; W], expect: &[u8x16; W]) -> i32 {
    let mut same = u8x16::MAX;
    for ((w, m), e) in words::<W>(f).iter().zip(mask).zip(expect) {
        same &= (*w & *m).cmp_eq(*e);
    }
    same.move_mask()
}

/// The first `W` 16-byte words of `b` (0 past its end, which the callers' frames never are).
#[inline(always)]
fn words<const W: usize>(b: &[u8]) -> [u8x16; W] {
    std::array::from_fn(|i| b.get(16 * i..).and_then(|w| w.first_chunk::<16>()).map_or(u8x16::ZERO, |w| u8x16::new(*w)))
}

/// The 16 bytes at `at` of `b` (0 past its end); const, for the masks.
const fn word(b: &[u8], at: usize) -> u8x16 {
    let mut w = [0; 16];
    let mut i = 0;
    while i < 16 && at + i < b.len() {
        w[i] = b[at + i];
        i += 1;
    }
    u8x16::new(w)
}

/// A frame's first `N` bytes as every packet of a train has them to begin with: the port's MAC
/// `mac`, the IPv4 EtherType, and an IPv4 header of 20 bytes; zeros elsewhere.
const fn plain_ipv4_head<const N: usize>(mac: [u8; 6]) -> [u8; N] {
    let mut e = [0u8; N];
    let mut i = 0;
    while i < 6 {
        e[i] = mac[i];
        i += 1;
    }
    let ethertype = ipv4::ETHERTYPE.to_be_bytes();
    (e[12], e[13], e[14]) = (ethertype[0], ethertype[1], 0x45);
    e
}

/// The protocol whose packets `tunnel`'s trains clamp the MSS of: TCP, or one no packet has
/// (above 255) where the tunnel clamps none.
fn clamped_protocol(tunnel: &Tunnel) -> u16 {
    if tunnel.mss != 0 {
        u16::from(IP_PROTOCOL_TCP)
    } else {
        0x100
    }
}

/// [`MASK`] as little-endian words.
const MASK_WORDS: [u8x16; COMPARED / 16] = [word(&MASK, 0), word(&MASK, 16), word(&MASK, 32)];

/// How many bytes in front of its Ethernet header a [`GreTrain`]'s head writes:
/// those of the 16 that the header does not take.
const HEAD_BEHIND: usize = 16 - 14;

/// A tunnel's train: what its packets' compared bytes hold, and how they leave.
#[derive(Debug, Clone, Copy)]
pub struct GreTrain {
    /// The compared bits ([`MASK`]) of every packet of the train.
    expect: [u8x16; COMPARED / 16],
    /// The endpoints' key ([`crate::tables::endpoints_key`]): the train of another tunnel is
    /// another train.
    key: u64,
    /// The tunnel's counter slot and MSS (0: none).
    slot: u32,
    mss: u16,
    /// The protocol whose packets get their MSS clamped: TCP, or one no packet has (above 255)
    /// where the tunnel clamps none. One compare a packet, where the protocol and the MSS were
    /// two and their results combined.
    clamped: u16,
    /// The default gateway's exit, untagged.
    exit: L2Exit,
    /// The exit's Ethernet header behind two bytes of any value ([`HEAD_BEHIND`]): one vector
    /// store writes it, the two in the headroom. As two stores of the exit's words (loaded from
    /// the stack besides, for want of registers), it was 3 instructions a packet more.
    head: [u8; 16],
    /// [`csum::MULTIPLE_LIMIT`], read from here by the checksums' test
    /// ([`csum::header_is_valid_by`]).
    limit: u64,
}

impl GreTrain {
    /// The train of `tunnel`'s packets arriving at the port whose MAC is `mac`, leaving by the
    /// untagged `exit` (the default gateway's); None for a tagged exit.
    pub fn new(tunnel: &Tunnel, key: u64, mac: [u8; 6], exit: L2Exit) -> Option<GreTrain> {
        if exit.vlan.is_some() {
            return None;
        }
        let mut e = plain_ipv4_head::<COMPARED>(mac);
        e[23] = IP_PROTOCOL_GRE;
        e[26..30].copy_from_slice(&tunnel.customer.octets());
        e[30..34].copy_from_slice(&tunnel.anycast.octets());
        // A bare GRE header (no checksum, key or sequence, version 0) carrying IPv4.
        e[36..38].copy_from_slice(&ipv4::ETHERTYPE.to_be_bytes());
        e[38] = 0x45;
        let clamped = clamped_protocol(tunnel);
        let mut head = [0u8; 16];
        if let Some(header) = head.last_chunk_mut::<14>() {
            exit.src.write(header, exit.dst);
        }
        Some(GreTrain {
            expect: words(&e),
            key,
            slot: tunnel.slot,
            mss: tunnel.mss,
            clamped,
            exit,
            head,
            limit: csum::MULTIPLE_LIMIT,
        })
    }

    /// The endpoints' key the train was made for.
    #[inline(always)]
    pub fn key(&self) -> u64 {
        self.key
    }
}

impl Train for GreTrain {
    #[inline(always)]
    fn port(&self) -> u16 {
        self.exit.port
    }

    /// The compared bits: the tunnel's endpoints among them.
    #[inline(always)]
    fn boards(&self, f: &[u8], _: &Tables) -> bool {
        f.len() >= COMPARED && !differs(f, &MASK_WORDS, &self.expect)
    }

    /// Decapsulated: the bytes are the outer packet's, less its headers.
    #[inline(always)]
    fn ride<P: PacketBuf>(&self, pkt: &mut P, _: &mut u16, routes: RoutesV4<'_>) -> Option<usize> {
        let d = pkt.data();
        let f = d.first_chunk::<{ INNER_START + 20 }>()?;
        let room = d.len() - 14;
        if differs(f, &MASK_WORDS, &self.expect) {
            return None;
        }
        // The outer header holds GRE and an inner header, and fills the frame; the inner packet
        // fills the rest of it (one compare each: a frame with bytes after either goes the
        // express lane's way, which has them only where an Ethernet frame is padded, under 60
        // bytes, and so never for GRE with an inner header in it). So every frame of the train
        // is its inner packet and 38 bytes, and the worker sums no frame lengths.
        let (outer, h) = (header(f, 14)?, header(f, INNER_START)?);
        // The lengths compared as they sit on the wire with what the frame's length makes
        // them, byte-swapped (one swap each, where each field was swapped and widened). The
        // frame holds 58 bytes at least, so the outer packet 44; an mbuf's length is 16 bits,
        // so the test of its top is free.
        let Ok(room) = u16::try_from(room) else { return None };
        let inner = room - gre::OVERHEAD as u16;
        let inner_total = usize::from(inner);
        if u16::from_ne_bytes([outer[2], outer[3]]) != room.to_be()
            || u16::from_ne_bytes([h[2], h[3]]) != inner.to_be()
            || !csum::header_is_valid_by(outer, self.limit)
            || !csum::header_is_valid_by(h, self.limit)
        {
            return None;
        }
        // The source by its /16 block: no martian address is in an ordinary one, and the few
        // sources in the other special blocks (this server's, the ports' subnets) go the
        // express lane's way. One load of the table that routes the destination, where the
        // martian test took its own table's address and a byte's (decap 111.5 -> 108.4
        // instructions a packet, with the route's block indexed as loaded).
        let src = u32::from_le_bytes(*h[12..].first_chunk::<4>()?);
        let dst = u32::from_le_bytes(*h.last_chunk::<4>()?);
        if h[8] <= 1 || !routes.is_ordinary_v4_le(src) || !routes.is_ordinary_unrouted_v4_le(dst) {
            return None;
        }
        let clamp = u16::from(h[9]) == self.clamped;
        // Cannot fail: the frame holds the outer packet, which holds the inner one, and the
        // headroom the outer headers' 24 bytes.
        let data = pkt.reframe_behind_mut((INNER_START - 14) as isize, 14 + inner_total, HEAD_BEHIND)?;
        let (head, packet) = data.split_first_chunk_mut::<{ HEAD_BEHIND + 14 }>()?;
        *head = self.head;
        if let Some(h) = packet.first_chunk_mut::<20>() {
            ipv4::decrement_live_ttl(h);
        }
        if clamp {
            mss::clamp(&mut packet[20..], self.mss);
        }
        Some(inner_total)
    }

    /// Each frame is the inner packet (the tunnel's bytes) behind an untagged Ethernet header.
    #[inline(always)]
    fn frames_bytes(&self, packets: u64, bytes: u64) -> u64 {
        bytes + packets * 14
    }

    const TAKES_IP_ID: bool = false;

    const RECEIVED_FROM_BYTES: bool = true;

    /// Each frame came in as the inner packet behind the Ethernet, outer IPv4 and GRE headers.
    #[inline(always)]
    fn received_bytes(&self, packets: u64, bytes: u64) -> u64 {
        bytes + packets * (14 + gre::OVERHEAD) as u64
    }

    #[inline(always)]
    fn count(&self, counters: &mut Counters, packets: u64, bytes: u64) {
        let counters = counters.tunnel(self.slot);
        counters.ingress_packets += packets;
        counters.ingress_bytes += bytes;
    }
}

/// Which bits of a frame's first 32 bytes an encapsulation train compares: the destination MAC
/// (0..6), the EtherType (12, 13), the version and header length (14), the fragment fields but DF
/// (20, 21), and two that must differ from what they are compared with ([`PLAIN_UNEQUAL`]): the
/// TTL but its lowest bit (22: a TTL of 0 or 1 runs out) and the protocol (23: GRE is
/// decapsulated).
const PLAIN_MASK: [u8; 32] = {
    let mut m = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        m[i] = match i {
            0..6 | 12..15 | 21 | 23 => 0xff,
            20 => 0x3f,
            22 => 0xfe,
            _ => 0,
        };
        i += 1;
    }
    m
};

/// The compared bytes of [`PLAIN_MASK`] that must differ: the TTL and the protocol, at 6 and 7
/// of the second word, which the first word does not compare (the source MAC's bytes 6 and 7),
/// so that its results there are always equal. Folded into the one compare of every packet's
/// words, they took a test and a branch each (5 instructions a packet).
const PLAIN_UNEQUAL: i32 = 1 << 6 | 1 << 7;
/// The compare's mask of a frame whose compared bits are a train's: all but [`PLAIN_UNEQUAL`].
const PLAIN_ALIKE: i32 = 0xffff & !PLAIN_UNEQUAL;
const _: () = assert!(PLAIN_MASK[6] == 0 && PLAIN_MASK[7] == 0 && PLAIN_MASK[22] != 0 && PLAIN_MASK[23] != 0);

/// What every packet of an encapsulation train arriving at the port whose MAC is `mac` has in its
/// compared bits ([`PLAIN_MASK`]): for the TTL and protocol, what they must differ from.
const fn plain_expect(mac: [u8; 6]) -> [u8; 32] {
    let mut e = plain_ipv4_head::<32>(mac);
    e[23] = IP_PROTOCOL_GRE;
    e
}

/// [`PLAIN_MASK`] as little-endian words.
const PLAIN_MASK_WORDS: [u8x16; 2] = [word(&PLAIN_MASK, 0), word(&PLAIN_MASK, 16)];

/// A customer prefix's train into its one GRE tunnel.
#[derive(Debug, Clone, Copy)]
pub struct EncapTrain {
    /// The compared bits ([`PLAIN_MASK`]) of every packet of the train.
    expect: [u8x16; 2],
    /// The prefix's number ([`crate::tables::RouteTable::prefix_v4`]).
    prefix: u32,
    /// What every frame the train sends begins with.
    head: EncapHead,
    /// Of the tunnel: its counter slot, MTU and MSS.
    slot: u32,
    mtu: u16,
    mss: u16,
    /// The port the tunnel's packets leave by, untagged.
    port: u16,
    /// As [`GreTrain`]'s: TCP, or a protocol no packet has where the tunnel clamps none.
    clamped: u16,
    /// As [`GreTrain`]'s.
    limit: u64,
}

/// The first 38 bytes of every frame an encapsulation train sends, as four stores take them: the
/// Ethernet header and the outer header's first two bytes (0..16) in one vector, the tunnel's
/// own bytes from the TTL on (22..38) in another, then the word at 16 with each packet's total
/// length and identification merged in a register (its last two bytes the TTL and protocol
/// again), and the checksum alone. Written as the express lane writes it (five 64-bit stores
/// from the tunnel's template and the exit's words, each field byte-swapped), the encapsulation
/// train took 146.3 instructions a packet; this head as a vector and three words, 133.8; as two
/// vectors, a word and the checksum, the constant word's load and the checksum's merge gone,
/// 1.1 fewer again.
#[derive(Debug, Clone, Copy)]
struct EncapHead {
    start: [u8; 16],
    /// Bytes 22..38, all the tunnel's: TTL, protocol, a checksum of 0, the addresses and GRE.
    tail: [u8; 16],
    /// Bytes 16..24.
    word: u64,
    /// The sum of the outer header's template ([`Tunnel::outer_sum`]), byte-swapped. A one's
    /// complement sum byte-swapped is the sum of the words byte-swapped, so the checksum is made
    /// of the fields as they sit in the header's words, and needs no swap of its own.
    sum: u16,
}

impl EncapHead {
    /// The head of `tunnel`'s frames leaving by `exit`.
    fn new(tunnel: &Tunnel, exit: &L2Exit) -> EncapHead {
        let mut b = [0u8; 14 + gre::OVERHEAD];
        exit.src.write(&mut b, exit.dst);
        b[14..].copy_from_slice(&tunnel.outer_template);
        b[36..].copy_from_slice(&ipv4::ETHERTYPE.to_be_bytes());
        let word64 = |at: usize| b.get(at..).and_then(|w| w.first_chunk::<8>()).map_or(0, |w| u64::from_le_bytes(*w));
        let bytes16 = |at: usize| b.get(at..).and_then(|w| w.first_chunk::<16>()).copied().unwrap_or_default();
        EncapHead { start: bytes16(0), tail: bytes16(22), word: word64(16), sum: tunnel.outer_sum.swap_bytes() }
    }

    /// Write the head of a frame whose outer header has `total` bytes (as on the wire: a
    /// little-endian load of its field) and identification `id` (the same) into `frame`.
    #[inline(always)]
    fn write(&self, frame: &mut [u8; 14 + gre::OVERHEAD], total: u16, id: u16) {
        let checksum = csum::template_checksum(self.sum, total, id);
        if let Some(start) = frame.first_chunk_mut::<16>() {
            *start = self.start;
        }
        if let Some(tail) = frame.last_chunk_mut::<16>() {
            *tail = self.tail;
        }
        if let Some(word) = frame.get_mut(16..).and_then(|c| c.first_chunk_mut::<8>()) {
            *word = (self.word | u64::from(total) | u64::from(id) << 16).to_le_bytes();
        }
        if let Some(field) = frame.get_mut(24..).and_then(|c| c.first_chunk_mut::<2>()) {
            *field = checksum.to_le_bytes();
        }
    }
}

impl EncapTrain {
    /// The train of the prefix numbered `prefix`, whose one route is into the GRE tunnel
    /// `tunnel`, for packets arriving at the port whose MAC is `mac` and leaving by the untagged
    /// `exit`; None for a tagged exit, or a tunnel whose MTU leaves no room for the outer
    /// headers in an IPv4 packet's length (none a configuration allows: it stops at 9000), so
    /// that a packet within the MTU needs no test of its own for that.
    pub fn new(prefix: u32, tunnel: &Tunnel, mac: [u8; 6], exit: L2Exit) -> Option<EncapTrain> {
        if exit.vlan.is_some() || usize::from(tunnel.mtu) + gre::OVERHEAD > 0xffff {
            return None;
        }
        Some(EncapTrain {
            expect: words(&plain_expect(mac)),
            prefix,
            head: EncapHead::new(tunnel, &exit),
            slot: tunnel.slot,
            mtu: tunnel.mtu,
            mss: tunnel.mss,
            port: exit.port,
            clamped: clamped_protocol(tunnel),
            limit: csum::MULTIPLE_LIMIT,
        })
    }

    /// The number of the prefix the train was made for.
    #[inline(always)]
    pub fn prefix(&self) -> u32 {
        self.prefix
    }
}

impl Train for EncapTrain {
    #[inline(always)]
    fn port(&self) -> u16 {
        self.port
    }

    /// The compared bits (not GRE, which is decapsulated, and a TTL that does not run out) and a
    /// destination in the prefix.
    #[inline(always)]
    fn boards(&self, f: &[u8], tables: &Tables) -> bool {
        let Some(f) = f.first_chunk::<OUTER_IP_END>() else { return false };
        let dst = Ipv4Addr::new(f[30], f[31], f[32], f[33]);
        equal_bytes(f, &PLAIN_MASK_WORDS, &self.expect) == PLAIN_ALIKE && tables.routes.prefix_v4(dst) == self.prefix
    }

    /// Encapsulated: the bytes are the inner packet's.
    #[inline(always)]
    fn ride<P: PacketBuf>(&self, pkt: &mut P, ip_id: &mut u16, routes: RoutesV4<'_>) -> Option<usize> {
        let d = pkt.data();
        let f = d.first_chunk::<OUTER_IP_END>()?;
        // The compared bits: not GRE (for decapsulation), a TTL that does not run out.
        if equal_bytes(f, &PLAIN_MASK_WORDS, &self.expect) != PLAIN_ALIKE {
            return None;
        }
        let h = header(f, 14)?;
        // The protocol taken from the word that holds it, which the length's test loads: read
        // as a byte, it went through the stack.
        let word = u64::from_le_bytes(*f[16..].first_chunk::<8>()?);
        let protocol = (word >> 56) as u8;
        let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
        if total < 20 || total > d.len() - 14 || !csum::header_is_valid_by(h, self.limit) {
            return None;
        }
        let src = u32::from_le_bytes(*h[12..].first_chunk::<4>()?);
        let dst = Ipv4Addr::new(h[16], h[17], h[18], h[19]);
        // The destination in an ordinary block (not ours, no martian or broadcast destination)
        // and the prefix, the source in an ordinary block (never a martian one: [`GreTrain`]'s
        // ride), within the tunnel's MTU (under which the outer packet's length fits in its
        // field: see `new`).
        if !routes.is_ordinary_in_prefix_v4(dst, self.prefix)
            || !routes.is_ordinary_v4_le(src)
            || total > usize::from(self.mtu)
        {
            return None;
        }
        let clamp = u16::from(protocol) == self.clamped;
        // The one step that can fail comes first, so that a decline leaves the packet as it was.
        let data = pkt.reframe_mut(-(gre::OVERHEAD as isize), 14 + gre::OVERHEAD + total)?;
        // Cannot fail: the frame is the head and the packet, of 20 bytes at least.
        let (head, rest) = data.split_first_chunk_mut::<{ 14 + gre::OVERHEAD }>()?;
        // As the express lane's: the identification after the worker's last.
        let id = next_ip_id(ip_id);
        // Fields as on the wire, byte-swapped (the outer packet's length fits: see `new`).
        self.head.write(head, ((total + gre::OVERHEAD) as u16).swap_bytes(), id.swap_bytes());
        if let Some(inner) = rest.first_chunk_mut::<20>() {
            ipv4::decrement_live_ttl(inner);
        }
        if clamp {
            mss::clamp(&mut rest[20..], self.mss);
        }
        Some(total)
    }

    /// Each frame is the packet (the tunnel's bytes) behind an untagged Ethernet header, an
    /// outer IPv4 header and a bare GRE header.
    #[inline(always)]
    fn frames_bytes(&self, packets: u64, bytes: u64) -> u64 {
        bytes + packets * (14 + gre::OVERHEAD) as u64
    }

    /// Frames padded to Ethernet's least size (a TCP acknowledgment's) come in with more than
    /// the packet and its header: each is counted as it came.
    const TAKES_IP_ID: bool = true;

    const RECEIVED_FROM_BYTES: bool = false;

    #[inline(always)]
    fn received_bytes(&self, _: u64, _: u64) -> u64 {
        0
    }

    #[inline(always)]
    fn count(&self, counters: &mut Counters, packets: u64, bytes: u64) {
        let counters = counters.tunnel(self.slot);
        counters.egress_packets += packets;
        counters.egress_bytes += bytes;
    }
}
