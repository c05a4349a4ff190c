//! The slow path: what the workers hand over. It learns neighbors' MAC addresses from ARP
//! replies and neighbor advertisements and tells every worker, resolves next hops the workers do
//! not know (holding a few packets meanwhile), and counts what is for the host. It sends through
//! its own TX queue of each port. IKE datagrams are read out of their IPv4 and UDP headers for
//! the IKE runner ([`crate::ike`]), and its answers leave from here.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4};
use std::sync::Arc;

use dpdk_bindings::{Mbuf, MbufBatch, Mempool, Port};
use serde::Serialize;

use crate::esp::sa::NAT_T_PORT;
use crate::pipeline::{l2, PuntReason};
use crate::tables::{Egress, Tables};
use crate::wire::{IpProtocol, Ipv4Packet, UdpPacket};
use crate::worker::{Punted, Update, WorkerHandle};

/// Packets held per unresolved next hop.
const HELD_PER_NEIGHBOR: usize = 4;
/// Resolution requests per next hop before the held packets are dropped.
const REQUEST_TRIES: u32 = 3;
/// IKE datagrams waiting for the runner; a flood beyond it is dropped here.
const IKE_QUEUE: usize = 4096;
/// The TTL of the datagrams the slow path originates.
const OWN_TTL: u8 = 64;

/// An IKE message as it arrived: our address and port, the peer's (after any NAT), and the
/// message without the non-ESP marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IkeDatagram {
    pub local: SocketAddrV4,
    pub remote: SocketAddrV4,
    pub message: Vec<u8>,
}

/// What the slow path counts.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct SlowPathCounters {
    /// Packets for this host that nothing here handles yet.
    pub host_bound: u64,
    /// IKE datagrams received and handed to the IKE runner.
    pub ike: u64,
    /// IKE datagrams dropped: IP fragments (IKE fragments its own messages, RFC 7383), a bad UDP
    /// checksum or length, or more than the runner's queue holds.
    pub ike_dropped: u64,
    /// IKE datagrams sent.
    pub ike_sent: u64,
    /// ARP requests and neighbor solicitations sent.
    pub resolution_requests: u64,
    /// Neighbor MAC addresses learned or changed.
    pub neighbors_learned: u64,
    /// Packets sent after their next hop was resolved.
    pub held_sent: u64,
    /// Packets dropped while waiting for a next hop that did not answer, or beyond the hold limit.
    pub held_dropped: u64,
    /// ARP and neighbor discovery packets that could not be read.
    pub malformed: u64,
    /// Frames the slow path could not hand to a TX queue or to the worker sending for it.
    pub tx_dropped: u64,
}

/// How the slow path's frames leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlowTx {
    /// Through its own TX queue of every port (or one it shares on the same thread).
    Queue(u16),
    /// Handed to the first worker, which sends them on its queue: for ports with no TX queue to
    /// spare.
    ViaWorker,
}

#[derive(Debug)]
struct Pending {
    held: VecDeque<Mbuf>,
    last_request: u64,
    tries: u32,
}

/// The slow path's state.
#[derive(Debug)]
pub struct SlowPath {
    pool: Mempool,
    ports: Vec<Port>,
    tx: SlowTx,
    /// Frames to send at the end of this poll.
    outbox: Vec<(u16, Mbuf)>,
    tables: Arc<Tables>,
    neighbors: HashMap<(u16, IpAddr), [u8; 6]>,
    pending: HashMap<(u16, IpAddr), Pending>,
    retry_ticks: u64,
    punted: Vec<Punted>,
    ike: Vec<IkeDatagram>,
    /// The IPv4 identification of the next datagram this server originates.
    ip_ident: u16,
    pub counters: SlowPathCounters,
}

impl SlowPath {
    /// A slow path sending its frames as `tx` says.
    pub fn new(pool: Mempool, ports: Vec<Port>, tx: SlowTx, tables: Arc<Tables>) -> SlowPath {
        let mut neighbors = HashMap::new();
        for (port, addr, mac) in &tables.static_neighbors {
            neighbors.insert((*port, *addr), *mac);
        }
        SlowPath {
            pool,
            ports,
            tx,
            outbox: Vec::new(),
            tables,
            neighbors,
            pending: HashMap::new(),
            retry_ticks: dpdk_bindings::tsc_hz().max(1),
            punted: Vec::new(),
            ike: Vec::new(),
            ip_ident: 1,
            counters: SlowPathCounters::default(),
        }
    }

    /// Take new tables (a reload).
    pub fn set_tables(&mut self, tables: Arc<Tables>) {
        for (port, addr, mac) in &tables.static_neighbors {
            self.neighbors.insert((*port, *addr), *mac);
        }
        self.tables = tables;
    }

    /// Ask for the MAC of every next hop the tables name (gateways, tunnel endpoints' next hops),
    /// so that the first packets find them known.
    pub fn prime(&mut self, now: u64) {
        let mut wanted: Vec<(u16, IpAddr)> = Vec::new();
        for (i, p) in self.tables.ports.iter().enumerate() {
            wanted.extend(p.gateway4.map(|g| (i as u16, IpAddr::V4(g))));
            wanted.extend(p.gateway6.map(|g| (i as u16, IpAddr::V6(g))));
        }
        wanted.extend(self.tables.tunnels.iter().filter_map(|t| t.egress.map(|e| (e.port, e.next_hop))));
        wanted.sort();
        wanted.dedup();
        for key in wanted {
            if !self.neighbors.contains_key(&key) {
                self.pending.entry(key).or_insert(Pending { held: VecDeque::new(), last_request: now, tries: 1 });
                self.request(key.0, key.1);
            }
        }
    }

    /// Handle what the workers punted, and retry resolutions. Returns how many packets it took.
    pub fn poll(&mut self, workers: &mut [WorkerHandle], now: u64) -> usize {
        let mut punted = std::mem::take(&mut self.punted);
        for w in workers.iter_mut() {
            while let Ok(p) = w.punts.pop() {
                punted.push(p);
            }
        }
        let n = punted.len();
        for p in punted.drain(..) {
            self.handle(p, workers, now);
        }
        self.punted = punted;
        self.retry(now);
        self.flush(workers);
        n
    }

    fn handle(&mut self, p: Punted, workers: &mut [WorkerHandle], now: u64) {
        match p.reason {
            PuntReason::HostBound => self.counters.host_bound += 1,
            PuntReason::Ike => match read_ike(p.mbuf.data()) {
                Some(d) if self.ike.len() < IKE_QUEUE => {
                    self.counters.ike += 1;
                    self.ike.push(d);
                }
                _ => self.counters.ike_dropped += 1,
            },
            PuntReason::Neighbor => match parse_neighbor(p.mbuf.data()) {
                Some((addr, mac)) => self.learn(p.port, addr, mac, workers),
                None => self.counters.malformed += 1,
            },
            PuntReason::Resolve => {
                if let Some(egress) = p.egress {
                    self.forward(p.mbuf, egress, now);
                }
            }
        }
    }

    /// Send a frame (its L2 header written but for the destination MAC) to `egress`'s next hop,
    /// or hold it while the next hop is resolved.
    fn forward(&mut self, mbuf: Mbuf, egress: Egress, now: u64) {
        let key = (egress.port, egress.next_hop);
        if let Some(mac) = self.neighbors.get(&key).copied() {
            self.send_to(mbuf, egress.port, mac);
            return;
        }
        let entry = self.pending.entry(key).or_insert(Pending { held: VecDeque::new(), last_request: 0, tries: 0 });
        if entry.held.len() >= HELD_PER_NEIGHBOR {
            entry.held.pop_front();
            self.counters.held_dropped += 1;
        }
        entry.held.push_back(mbuf);
        if entry.tries == 0 {
            entry.tries = 1;
            entry.last_request = now;
            self.request(key.0, key.1);
        }
    }

    /// The IKE datagrams received since the last call.
    pub fn take_ike(&mut self) -> Vec<IkeDatagram> {
        std::mem::take(&mut self.ike)
    }

    /// Send an IKE message from `local` to `remote` (with the non-ESP marker from port 4500),
    /// routed as the tables say. It leaves at the next [`SlowPath::flush`].
    pub fn send_ike(&mut self, local: SocketAddrV4, remote: SocketAddrV4, message: &[u8], now: u64) {
        let Some(egress) = self.tables.egress(IpAddr::V4(*remote.ip())) else {
            self.counters.tx_dropped += 1;
            return;
        };
        let Some(port) = self.tables.ports.get(egress.port as usize) else { return };
        let l2_len = l2::header_len(port.vlan);
        let total = ike_datagram_len(local, remote, message);
        if total > usize::from(u16::MAX) {
            self.counters.tx_dropped += 1;
            return;
        }
        let Some(mut m) = self.pool.alloc() else {
            self.counters.tx_dropped += 1;
            return;
        };
        if !m.append(l2_len + total) {
            self.counters.tx_dropped += 1;
            return;
        }
        let ident = self.ip_ident;
        self.ip_ident = self.ip_ident.wrapping_add(1);
        let frame = m.data_mut();
        l2::write_header(frame, [0; 6], port.mac, port.vlan, 0x0800);
        write_ike_datagram(&mut frame[l2_len..], local, remote, ident, message);
        self.counters.ike_sent += 1;
        self.forward(m, egress, now);
    }

    fn retry(&mut self, now: u64) {
        let mut again = Vec::new();
        let mut dropped = 0;
        self.pending.retain(|key, p| {
            if now.saturating_sub(p.last_request) < self.retry_ticks {
                return true;
            }
            if p.tries >= REQUEST_TRIES {
                dropped += p.held.len() as u64;
                // Keep asking now and then for next hops the tables need, without holding packets.
                p.held.clear();
                p.tries = 0;
                p.last_request = now;
                return true;
            }
            p.tries += 1;
            p.last_request = now;
            again.push(*key);
            true
        });
        self.counters.held_dropped += dropped;
        for (port, addr) in again {
            self.request(port, addr);
        }
    }

    fn learn(&mut self, port: u16, addr: IpAddr, mac: [u8; 6], workers: &mut [WorkerHandle]) {
        if self.neighbors.get(&(port, addr)) != Some(&mac) {
            self.neighbors.insert((port, addr), mac);
            self.counters.neighbors_learned += 1;
            for w in workers.iter_mut() {
                // A full ring means the worker is far behind; it learns the neighbor from the
                // next resolution instead.
                let _ = w.updates.push(Update::Neighbor { port, addr, mac });
            }
        }
        if let Some(pending) = self.pending.remove(&(port, addr)) {
            for m in pending.held {
                self.send_to(m, port, mac);
                self.counters.held_sent += 1;
            }
        }
    }

    fn send_to(&mut self, mut mbuf: Mbuf, port: u16, mac: [u8; 6]) {
        if mbuf.len() >= 6 {
            mbuf.data_mut()[0..6].copy_from_slice(&mac);
        }
        self.transmit(mbuf, port);
    }

    fn transmit(&mut self, mbuf: Mbuf, port: u16) {
        self.outbox.push((port, mbuf));
    }

    /// Send what this poll produced (and what was given to send since).
    pub fn flush(&mut self, workers: &mut [WorkerHandle]) {
        for (port, mbuf) in self.outbox.drain(..) {
            let Some(p) = self.ports.get(port as usize) else {
                self.counters.tx_dropped += 1;
                continue;
            };
            match self.tx {
                SlowTx::Queue(queue) => {
                    let mut batch = MbufBatch::new();
                    if batch.push(mbuf).is_ok() {
                        p.tx_burst(queue, &mut batch);
                        self.counters.tx_dropped += batch.len() as u64;
                    }
                }
                SlowTx::ViaWorker => {
                    let sent =
                        workers.first_mut().is_some_and(|w| w.updates.push(Update::Transmit { port, mbuf }).is_ok());
                    if !sent {
                        self.counters.tx_dropped += 1;
                    }
                }
            }
        }
    }

    /// Send an ARP request or a neighbor solicitation for `addr` out of `port`.
    fn request(&mut self, port: u16, addr: IpAddr) {
        let Some(info) = self.tables.ports.get(port as usize) else { return };
        let frame = match addr {
            IpAddr::V4(target) => match info.ipv4 {
                Some(net) => arp_request(info.mac, net.addr(), target, info.vlan),
                None => return,
            },
            IpAddr::V6(target) => match info.ipv6 {
                Some(net) => neighbor_solicitation(info.mac, net.addr(), target, info.vlan),
                None => return,
            },
        };
        let Some(mut m) = self.pool.alloc() else { return };
        if !m.append(frame.len()) {
            return;
        }
        m.data_mut().copy_from_slice(&frame);
        self.counters.resolution_requests += 1;
        self.transmit(m, port);
    }

    /// The neighbors known, for status output.
    pub fn neighbors(&self) -> impl Iterator<Item = (&(u16, IpAddr), &[u8; 6])> {
        self.neighbors.iter()
    }
}

fn l2_header(dst: [u8; 6], src: [u8; 6], ethertype: u16, vlan: Option<u16>) -> Vec<u8> {
    let mut f = Vec::with_capacity(90);
    f.resize(l2::header_len(vlan), 0);
    l2::write_header(&mut f, dst, src, vlan, ethertype);
    f
}

/// An ARP request (RFC 826) for `target` from `(mac, ip)`.
pub fn arp_request(mac: [u8; 6], ip: Ipv4Addr, target: Ipv4Addr, vlan: Option<u16>) -> Vec<u8> {
    let mut f = l2_header([0xff; 6], mac, 0x0806, vlan);
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ip.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target.octets());
    f
}

/// A neighbor solicitation (RFC 4861 4.3) for `target` from `(mac, ip)`, to its solicited-node address.
pub fn neighbor_solicitation(mac: [u8; 6], ip: Ipv6Addr, target: Ipv6Addr, vlan: Option<u16>) -> Vec<u8> {
    let t = target.octets();
    let dst = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00 | u16::from(t[13]), u16::from_be_bytes([t[14], t[15]]));
    let d = dst.octets();
    let mut f = l2_header([0x33, 0x33, d[12], d[13], d[14], d[15]], mac, 0x86dd, vlan);
    let l3 = f.len();
    f.extend_from_slice(&[0x60, 0, 0, 0, 0, 32, 58, 255]);
    f.extend_from_slice(&ip.octets());
    f.extend_from_slice(&d);
    f.extend_from_slice(&[135, 0, 0, 0, 0, 0, 0, 0]);
    f.extend_from_slice(&t);
    f.extend_from_slice(&[1, 1]);
    f.extend_from_slice(&mac);
    crate::wire::Icmpv6Packet::new_unchecked(&mut f[l3 + 40..]).fill_checksum(&ip, &dst);
    f
}

/// Whether IKE between two ends goes behind the non-ESP marker: on port 4500 (RFC 3948 2.2).
fn has_marker(a: SocketAddrV4, b: SocketAddrV4) -> bool {
    a.port() == NAT_T_PORT || b.port() == NAT_T_PORT
}

/// The bytes of the IPv4 packet carrying an IKE message between two ends.
pub fn ike_datagram_len(local: SocketAddrV4, remote: SocketAddrV4, message: &[u8]) -> usize {
    let marker = if has_marker(local, remote) { 4 } else { 0 };
    20 + 8 + marker + message.len()
}

/// Write the IPv4 packet carrying an IKE message into `out`, [`ike_datagram_len`] bytes long (at
/// most 65535): no IP options, DF clear, the non-ESP marker from port 4500, checksums filled.
pub fn write_ike_datagram(out: &mut [u8], local: SocketAddrV4, remote: SocketAddrV4, ident: u16, message: &[u8]) {
    let marker: &[u8] = if has_marker(local, remote) { &[0; 4] } else { &[] };
    let total = out.len();
    let mut ip = Ipv4Packet::new_unchecked(out);
    ip.set_version(4);
    ip.set_header_len(20);
    ip.set_dscp(0);
    ip.set_ecn(0);
    ip.set_total_len(total as u16);
    ip.set_ident(ident);
    ip.clear_flags();
    ip.set_frag_offset(0);
    ip.set_hop_limit(OWN_TTL);
    ip.set_next_header(IpProtocol::Udp);
    ip.set_src_addr(*local.ip());
    ip.set_dst_addr(*remote.ip());
    ip.fill_checksum();
    let mut udp = UdpPacket::new_unchecked(ip.payload_mut());
    udp.set_src_port(local.port());
    udp.set_dst_port(remote.port());
    udp.set_len((total - 20) as u16);
    let payload = udp.payload_mut();
    payload[..marker.len()].copy_from_slice(marker);
    payload[marker.len()..].copy_from_slice(message);
    udp.fill_checksum(&IpAddr::V4(*local.ip()).into(), &IpAddr::V4(*remote.ip()).into());
}

/// An IKE datagram read from its IPv4 packet: UDP to port 500, or to 4500 behind the non-ESP
/// marker. `None` for IP fragments, a bad UDP length or checksum, or a missing marker.
pub fn read_ike(packet: &[u8]) -> Option<IkeDatagram> {
    let ip = Ipv4Packet::new_checked(packet).ok()?;
    if ip.more_frags() || ip.frag_offset() != 0 || ip.next_header() != IpProtocol::Udp {
        return None;
    }
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let udp = UdpPacket::new_checked(ip.payload()).ok()?;
    if udp.checksum() != 0 && !udp.verify_checksum(&IpAddr::V4(src).into(), &IpAddr::V4(dst).into()) {
        return None;
    }
    let payload = udp.payload();
    let message = match udp.dst_port() {
        NAT_T_PORT => payload.strip_prefix(&[0u8; 4][..])?,
        _ => payload,
    };
    Some(IkeDatagram {
        local: SocketAddrV4::new(dst, udp.dst_port()),
        remote: SocketAddrV4::new(src, udp.src_port()),
        message: message.to_vec(),
    })
}

/// The (address, MAC) an ARP reply or a neighbor advertisement (from its L3 header) teaches.
pub fn parse_neighbor(data: &[u8]) -> Option<(IpAddr, [u8; 6])> {
    match data.first()? >> 4 {
        6 => {
            // IPv6 header, ICMPv6 NA: type 136, target at 8..24, options from 24.
            let icmp = data.get(40..)?;
            if *icmp.first()? != 136 || icmp.len() < 24 {
                return None;
            }
            let target = Ipv6Addr::from(<[u8; 16]>::try_from(&icmp[8..24]).ok()?);
            let mut at = 24;
            while at + 8 <= icmp.len() {
                let (kind, len) = (icmp[at], usize::from(icmp[at + 1]) * 8);
                if len == 0 || at + len > icmp.len() {
                    return None;
                }
                if kind == 2 && len == 8 {
                    return Some((IpAddr::V6(target), icmp[at + 2..at + 8].try_into().ok()?));
                }
                at += len;
            }
            None
        }
        _ => {
            // ARP for IPv4 over Ethernet: sender MAC at 8..14, sender IP at 14..18.
            if data.len() < 28 || data[0..2] != [0, 1] || data[2..4] != [8, 0] || data[4] != 6 || data[5] != 4 {
                return None;
            }
            let ip = Ipv4Addr::new(data[14], data[15], data[16], data[17]);
            Some((IpAddr::V4(ip), data[8..14].try_into().ok()?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_arp_reply_and_an_advertisement_teach_a_neighbor() {
        let req = arp_request([2, 0, 0, 0, 0, 1], "192.0.2.1".parse().unwrap(), "192.0.2.254".parse().unwrap(), None);
        // A request parsed as a reply teaches the sender: us.
        assert_eq!(parse_neighbor(&req[14..]), Some(("192.0.2.1".parse().unwrap(), [2, 0, 0, 0, 0, 1])));
        let ns = neighbor_solicitation(
            [2, 0, 0, 0, 0, 1],
            "2001:db8::1".parse().unwrap(),
            "2001:db8::fe".parse().unwrap(),
            None,
        );
        assert_eq!(&ns[0..6], &[0x33, 0x33, 0xff, 0, 0, 0xfe]);
        assert_eq!(parse_neighbor(&ns[14..]), None, "a solicitation is not an advertisement");
        let mut na = ns[14..].to_vec();
        na[40] = 136;
        na[40 + 24] = 2;
        assert_eq!(parse_neighbor(&na), Some(("2001:db8::fe".parse().unwrap(), [2, 0, 0, 0, 0, 1])));
        assert_eq!(parse_neighbor(&[0, 1, 8]), None);
        assert_eq!(parse_neighbor(&[]), None);
    }

    fn datagram(from: &str, to: &str, message: &[u8]) -> Vec<u8> {
        let (from, to) = (from.parse().unwrap(), to.parse().unwrap());
        let mut out = vec![0; ike_datagram_len(from, to, message)];
        write_ike_datagram(&mut out, from, to, 7, message);
        out
    }

    #[test]
    fn ike_datagrams_read_back_what_was_written() {
        // As a peer sends them, through a NAT for the second.
        for (peer, us) in [("198.51.100.7:500", "192.0.2.1:500"), ("198.51.100.7:31337", "192.0.2.1:4500")] {
            let packet = datagram(peer, us, b"an IKE message");
            let read = read_ike(&packet).expect("well formed");
            assert_eq!((read.local.to_string(), read.remote.to_string()), (us.to_string(), peer.to_string()));
            assert_eq!(read.message, b"an IKE message", "the non-ESP marker is taken off");
            assert!(Ipv4Packet::new_checked(&packet[..]).unwrap().verify_checksum(), "IPv4 header checksum");
        }
    }

    #[test]
    fn what_is_not_a_whole_ike_datagram_is_refused() {
        let good = datagram("192.0.2.1:500", "198.51.100.7:500", b"an IKE message");
        let mut fragment = good.clone();
        fragment[6] |= 0x20; // more fragments
        let mut bad_sum = good.clone();
        bad_sum[30] ^= 1;
        let mut no_marker = datagram("198.51.100.7:4500", "192.0.2.1:4500", b"an IKE message");
        no_marker[28] = 1;
        for (what, packet) in [
            ("a first fragment", fragment),
            ("a bad UDP checksum", bad_sum),
            ("no non-ESP marker on 4500", no_marker),
            ("truncated", good[..27].to_vec()),
        ] {
            assert_eq!(read_ike(&packet), None, "{what}");
        }
    }
}
