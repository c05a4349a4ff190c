//! The packet pipeline: pure functions over one packet's bytes that decide what becomes of it.
//!
//! A packet enters with its Ethernet header ([`process`]); the L2 header is removed, the IP packet
//! is checked, decapsulated, routed, clamped, encapsulated, and a new L2 header is put in front.
//! Every packet leaves with a [`Verdict`]: sent out of a port, dropped for a [`DropReason`], handed
//! to the slow path for a [`PuntReason`], or split into fragments. Headers are rewritten in place;
//! the packet is never copied. Nothing here allocates, logs or reads a clock: the caller passes
//! the time (TSC) in the [`Context`].

pub mod buf;
pub mod counters;
pub mod csum;
pub mod drop;
pub mod esp;
pub mod express;
pub mod fragment;
pub mod gre;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod l2;
pub mod mss;

use std::net::{IpAddr, Ipv4Addr};

pub use buf::{HeapPacket, PacketBuf};
pub use counters::{Counters, TunnelCounters};
pub use drop::{DropReason, PuntReason};

use crate::esp::SaDb;
use crate::tables::{self, Egress, Neighbors, Tables, Tunnel, TunnelId, TunnelKind};

/// What becomes of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Complete with its L2 header: send it out of this port (an index into the tables' ports).
    Forward(u16),
    /// Drop it, counted under this reason.
    Drop(DropReason),
    /// Hand it to the slow path; with `Resolve`, the packet is complete but for the next hop's MAC,
    /// and the next hop is in the context's `resolve`. (Kept out of the verdict, which stays small
    /// enough to be returned in registers: a verdict passed through memory, written in parts and
    /// read back whole, stalled every packet on store forwarding.)
    Punt(PuntReason),
    /// An IPv4 packet (no L2 header) too big for the tunnel, DF clear: split it with
    /// [`fragment::fragment_v4`] and send each fragment into the tunnel with [`tunnel_out`].
    Fragment(TunnelId),
    /// ESP crypto to do, in the worker's batch: see [`esp`].
    Crypto(esp::EspJob),
}

/// Where a packet being routed came from: its rules differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Received on a port, not from a tunnel: only customer routes apply.
    Internet,
    /// Decapsulated from a tunnel: customer routes, then the ports' own routes.
    Tunnel(TunnelId),
    /// Made by this server (an ICMP error): never answered with another error.
    Local,
}

/// A token bucket limiting the ICMP errors a worker sends.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    tokens: u64,
    burst: u64,
    ticks_per_token: u64,
    last: u64,
}

impl RateLimiter {
    /// Allow `per_second` on average and bursts of as many (at least one), at `hz` ticks per second.
    pub fn new(per_second: u32, hz: u64) -> RateLimiter {
        let per_second = u64::from(per_second.max(1));
        RateLimiter { tokens: per_second, burst: per_second, ticks_per_token: (hz / per_second).max(1), last: 0 }
    }

    /// Take a token at time `now`; false when none is left.
    pub fn allow(&mut self, now: u64) -> bool {
        let earned = now.saturating_sub(self.last) / self.ticks_per_token;
        if earned > 0 {
            self.tokens = (self.tokens + earned).min(self.burst);
            self.last += earned * self.ticks_per_token;
        }
        if now < self.last {
            self.last = now;
        }
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }
}

/// What a worker owns that the pipeline reads and updates, kept together: a context is made of
/// the tables, this and the time, and a new part of a worker's state is a field here only.
#[derive(Debug)]
pub struct Local {
    /// The next hops' MACs.
    pub neighbors: Neighbors,
    /// The worker's SAs.
    pub sas: SaDb,
    pub counters: Counters,
    pub icmp_limit: RateLimiter,
    /// The last IPv4 identification this worker wrote in a header.
    pub ip_id: u16,
    /// Where a packet punted for `Resolve` is to go once its next hop's MAC is known.
    pub resolve: Option<Egress>,
    /// The train that each port's last boarding made ([`express::boarding`]), kept for as long
    /// as the tables and neighbors it was made on: a burst whose first two packets are its rides
    /// it with no context made and no train looked up. The worker empties it when it changes
    /// either.
    pub trains: Vec<Option<express::train::AnyTrain>>,
}

/// The identification after `last`, the last one written, which it becomes: for
/// [`Local::next_ip_id`], and for a train that keeps the worker's in a register for its run.
#[inline(always)]
pub(crate) fn next_ip_id(last: &mut u16) -> u16 {
    *last = last.wrapping_add(1);
    *last
}

impl Local {
    /// The identification for the next IPv4 header this worker writes.
    #[inline(always)]
    fn next_ip_id(&mut self) -> u16 {
        next_ip_id(&mut self.ip_id)
    }

    /// A worker's state with no neighbors and no SAs yet, counters for `slots` tunnel slots, ICMP
    /// errors limited to `icmp_limit`, and identifications from `ip_id` on.
    pub fn new(slots: usize, icmp_limit: RateLimiter, ip_id: u16) -> Local {
        Local {
            neighbors: Neighbors::default(),
            sas: SaDb::default(),
            counters: Counters::new(slots),
            icmp_limit,
            ip_id,
            resolve: None,
            trains: Vec::new(),
        }
    }
}

/// What the pipeline reads and updates besides the packet: the worker's tables, its own state
/// and the time.
#[derive(Debug)]
pub struct Context<'a> {
    pub tables: &'a Tables,
    pub local: &'a mut Local,
    /// The time, in TSC ticks.
    pub now: u64,
    /// The last GRE tunnel lookup and the last customer route's, for `tables` only: kept here,
    /// they are made anew with each context (a worker makes one a burst), so that they can never
    /// outlive a change of tables.
    gre_memo: TunnelMemo<'a>,
    route_memo: TunnelMemo<'a>,
    /// The default gateway's exit, found once for the context from `tables` and the neighbors
    /// (which change only between contexts).
    gateway_v4: Option<express::L2Exit>,
}

/// The last key a tunnel was looked up by, and the answer:
/// - GRE: the endpoints, as a [`tables::endpoints_key`]. A burst's GRE packets come through few
///   tunnels (a router sends its packets in trains), and a hit is one compare where the lookup
///   is a multiplication, a slot read and two compares (about 19 instructions, 10 on a hit).
/// - Customer routes: a prefix's number ([`tables::RouteTable::prefix_v4`]), the answer its
///   one tunnel (none for a prefix shared by several). A hit spares the next hops' read and the
///   tunnel's index, each bounds-checked.
#[derive(Debug, Clone, Copy)]
struct TunnelMemo<'a> {
    key: u64,
    /// The tunnel's index (meaningful only with `tunnel`).
    id: u32,
    /// The tunnel itself, so that what the fast path needs of it is read without an index's
    /// bounds check (a null pointer for None: no tag to move through the stack on every packet).
    tunnel: Option<&'a Tunnel>,
}

impl<'a> TunnelMemo<'a> {
    #[inline(always)]
    fn new(key: u64, found: Option<TunnelId>, tables: &'a Tables) -> TunnelMemo<'a> {
        match found {
            Some(id) => TunnelMemo { key, id: id.0, tunnel: Some(tables.tunnel(id)) },
            None => TunnelMemo { key, id: 0, tunnel: None },
        }
    }

    #[inline(always)]
    fn answer(&self) -> Option<(TunnelId, &'a Tunnel)> {
        self.tunnel.map(|t| (TunnelId(self.id), t))
    }

    /// The one tunnel of the customer prefix numbered `prefix`.
    #[inline(always)]
    fn for_prefix_v4(prefix: u32, tables: &'a Tables) -> TunnelMemo<'a> {
        let hops = tables.routes.hops_of_prefix_v4(prefix).filter(|h| !h.is_multipath());
        TunnelMemo::new(u64::from(prefix), hops.map(|h| h.pick(0)), tables)
    }
}

impl<'a> Context<'a> {
    /// A context over `tables` and a worker's state at time `now`.
    #[inline(always)]
    pub fn new(tables: &'a Tables, local: &'a mut Local, now: u64) -> Context<'a> {
        // Any key will do, so long as its answer is the tables' own.
        let key = 0;
        let gre_memo = TunnelMemo::new(key, tables.gre_tunnel_by_key(key), tables);
        let route_memo = TunnelMemo::for_prefix_v4(0, tables);
        let gateway_v4 = express::L2Exit::gateway_v4(tables, &local.neighbors);
        Context { tables, local, now, gre_memo, route_memo, gateway_v4 }
    }

    /// The default gateway's exit, found for the context.
    #[inline(always)]
    pub fn gateway_v4(&self) -> Option<express::L2Exit> {
        self.gateway_v4
    }

    /// The GRE tunnel joining this anycast endpoint and customer endpoint
    /// ([`Tables::gre_tunnel`]), from the memo when it was the last one asked for.
    #[inline(always)]
    pub fn gre_tunnel(&mut self, anycast: Ipv4Addr, customer: Ipv4Addr) -> Option<(TunnelId, &'a Tunnel)> {
        let key = tables::endpoints_key(anycast, customer);
        if key != self.gre_memo.key {
            self.gre_memo = TunnelMemo::new(key, self.tables.gre_tunnel_by_key(key), self.tables);
        }
        self.gre_memo.answer()
    }

    /// The one tunnel of the customer prefix numbered `prefix` ([`tables::RouteTable::prefix_v4`]),
    /// from the memo when it was the last one asked for; None for no prefix, or one that several
    /// tunnels share (whose packets each need a flow hash).
    #[inline(always)]
    pub fn single_route_v4(&mut self, prefix: u32) -> Option<(TunnelId, &'a Tunnel)> {
        if u64::from(prefix) != self.route_memo.key {
            self.route_memo = TunnelMemo::for_prefix_v4(prefix, self.tables);
        }
        self.route_memo.answer()
    }
}

/// The port a frame arrived on, and what the express lane compares its first 8 bytes with
/// ([`PortInfo::express_mac`]; a value no frame gives for a port the tables do not have): found
/// once for a burst, where it was a bounds-checked read of the port's entry for every packet.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    pub port: u16,
    express_mac: u64,
}

impl Arrival {
    /// A frame's arrival on `port` of `tables`.
    #[inline(always)]
    pub fn on(tables: &Tables, port: u16) -> Arrival {
        let express_mac = tables.ports.get(usize::from(port)).map_or(u64::MAX, |p| p.express_mac);
        Arrival { port, express_mac }
    }
}

/// Run one received frame (Ethernet header first) through the pipeline: the express lane when it
/// takes the frame, otherwise the full pipeline.
#[inline(always)]
pub fn process<P: PacketBuf>(pkt: &mut P, arrival: Arrival, cx: &mut Context<'_>) -> Verdict {
    let verdict = match express::forward(pkt, arrival, cx) {
        // Nearly every packet: nothing to count.
        Some(Verdict::Forward(out)) => return Verdict::Forward(out),
        Some(verdict) => verdict,
        None => l2::input(pkt, arrival.port, cx),
    };
    cx.local.counters.count(&verdict);
    verdict
}

/// Run a frame through the pipeline to its final verdict, doing any ESP crypto at once (a batch
/// of one): for tests, fuzzing and benchmarks; the worker batches instead.
pub fn process_to_end<P: PacketBuf>(pkt: &mut P, port: u16, cx: &mut Context<'_>) -> Verdict {
    let mut verdict = process(pkt, Arrival::on(cx.tables, port), cx);
    // Decryption may route into another IPsec tunnel: at most two rounds.
    for _ in 0..2 {
        let Verdict::Crypto(job) = verdict else { break };
        verdict = esp::run(pkt, job, cx);
        cx.local.counters.count(&verdict);
    }
    verdict
}

/// Send an IP packet (of `ethertype`, routed, TTL and MTU done) into a tunnel.
#[inline(always)]
pub fn tunnel_out<P: PacketBuf>(pkt: &mut P, id: TunnelId, ethertype: u16, cx: &mut Context<'_>) -> Verdict {
    match cx.tables.tunnel(id).kind {
        TunnelKind::Gre => gre::encapsulate(pkt, id, ethertype, cx),
        TunnelKind::Ipsec => esp::encapsulate(pkt, id, ethertype, cx),
    }
}

/// Put the L2 header for `egress` in front of the IP packet `pkt` (ethertype given), or punt it
/// for neighbor resolution when the next hop's MAC is not known.
#[inline(always)]
pub fn emit_l2<P: PacketBuf>(pkt: &mut P, egress: Egress, ethertype: u16, cx: &mut Context<'_>) -> Verdict {
    let neighbor = cx.local.neighbors.get(egress.port, egress.next_hop);
    emit_l2_to(pkt, egress, neighbor, ethertype, cx)
}

/// [`emit_l2`] with the neighbor's MAC already looked up (None: not known).
#[inline(always)]
pub fn emit_l2_to<P: PacketBuf>(
    pkt: &mut P,
    egress: Egress,
    neighbor: Option<[u8; 6]>,
    ethertype: u16,
    cx: &mut Context<'_>,
) -> Verdict {
    let port = &cx.tables.ports[egress.port as usize];
    // Without the neighbor's MAC the frame is finished by the slow path once it is known.
    if !l2::prepend_header(pkt, neighbor.unwrap_or_default(), port.mac, port.vlan, ethertype) {
        return Verdict::Drop(DropReason::NoBufferRoom);
    }
    match neighbor {
        Some(_) => Verdict::Forward(egress.port),
        None => {
            cx.local.resolve = Some(egress);
            Verdict::Punt(PuntReason::Resolve)
        }
    }
}

/// A hash of a flow's addresses and ports, to spread flows over equal-cost tunnels.
#[inline]
pub fn flow_hash(src: IpAddr, dst: IpAddr, ports: u32) -> u32 {
    let fold = |a: IpAddr| -> u32 {
        match a {
            IpAddr::V4(a) => u32::from(a),
            IpAddr::V6(a) => {
                let o = a.octets();
                (0..4).fold(0u32, |h, i| h ^ u32::from_be_bytes([o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]]))
            }
        }
    };
    let h = (u64::from(fold(src)) << 32 | u64::from(fold(dst) ^ ports)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h >> 32) as u32
}

#[cfg(test)]
mod tests;
