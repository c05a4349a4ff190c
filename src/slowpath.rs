//! The slow path: what the workers hand over. It learns neighbors' MAC addresses from ARP
//! replies and neighbor advertisements and tells every worker, resolves next hops the workers do
//! not know (holding a few packets meanwhile), and counts what is for the host. It sends through
//! its own TX queue of each port.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use dpdk_bindings::{Mbuf, MbufBatch, Mempool, Port};
use serde::Serialize;

use crate::pipeline::{l2, PuntReason};
use crate::tables::Tables;
use crate::worker::{Punted, Update, WorkerHandle};

/// Packets held per unresolved next hop.
const HELD_PER_NEIGHBOR: usize = 4;
/// Resolution requests per next hop before the held packets are dropped.
const REQUEST_TRIES: u32 = 3;

/// What the slow path counts.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct SlowPathCounters {
    /// Packets for this host that nothing here handles yet.
    pub host_bound: u64,
    /// IKE datagrams received (no IKE responder runs yet: they are counted and dropped).
    pub ike: u64,
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
            PuntReason::Ike => self.counters.ike += 1,
            PuntReason::Neighbor => match parse_neighbor(p.mbuf.data()) {
                Some((addr, mac)) => self.learn(p.port, addr, mac, workers),
                None => self.counters.malformed += 1,
            },
            PuntReason::Resolve => {
                let Some(egress) = p.egress else { return };
                let key = (egress.port, egress.next_hop);
                if let Some(mac) = self.neighbors.get(&key).copied() {
                    self.send_to(p.mbuf, egress.port, mac);
                    return;
                }
                let entry =
                    self.pending.entry(key).or_insert(Pending { held: VecDeque::new(), last_request: 0, tries: 0 });
                if entry.held.len() >= HELD_PER_NEIGHBOR {
                    entry.held.pop_front();
                    self.counters.held_dropped += 1;
                }
                entry.held.push_back(p.mbuf);
                if entry.tries == 0 {
                    entry.tries = 1;
                    entry.last_request = now;
                    self.request(key.0, key.1);
                }
            }
        }
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

    /// Send what this poll produced.
    fn flush(&mut self, workers: &mut [WorkerHandle]) {
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
}
