//! A worker's counters: plain integers its pipeline adds to, published to the control thread
//! between bursts (see `worker`), so the fast path does no atomic operation per packet.

use super::{DropReason, PuntReason, Verdict};
use crate::esp::sa::SaReport;
use std::collections::HashMap;
use std::sync::Arc;

/// Per-tunnel packets and bytes. Ingress is what the tunnel brings in (decapsulated), egress what
/// is sent into it (encapsulated), as a router counts an interface; bytes are inner packet bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TunnelCounters {
    pub ingress_packets: u64,
    pub ingress_bytes: u64,
    pub egress_packets: u64,
    pub egress_bytes: u64,
    /// Packets of the tunnel dropped (bad GRE, too big, TTL).
    pub drops: u64,
}

/// Everything a worker counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counters {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub drops: [u64; DropReason::COUNT],
    pub punts: [u64; PuntReason::COUNT],
    /// ICMP errors sent (fragmentation needed, time exceeded, packet too big).
    pub icmp_errors: u64,
    /// Fragments made from packets too big for a tunnel.
    pub fragments: u64,
    /// Per tunnel, by counter slot.
    pub tunnels: Vec<TunnelCounters>,
    /// Per SA, refreshed less often than the rest (see the worker's `SA_REPORT_EVERY_MS`); shared,
    /// so that publishing the other counters does not copy it.
    pub sas: Arc<Vec<SaReport>>,
    /// SA changes applied (the control thread waits on it to know an SA is active).
    pub sa_updates: u64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters::new(0)
    }
}

impl Counters {
    /// Counters with room for `slots` tunnels.
    pub fn new(slots: usize) -> Counters {
        Counters {
            rx_packets: 0,
            rx_bytes: 0,
            tx_packets: 0,
            tx_bytes: 0,
            drops: [0; DropReason::COUNT],
            punts: [0; PuntReason::COUNT],
            icmp_errors: 0,
            fragments: 0,
            tunnels: vec![TunnelCounters::default(); slots],
            sas: Arc::default(),
            sa_updates: 0,
        }
    }

    /// Make room for tunnels up to `slots` (between bursts, when tables change).
    pub fn ensure_slots(&mut self, slots: usize) {
        if self.tunnels.len() < slots {
            self.tunnels.resize(slots, TunnelCounters::default());
        }
    }

    /// Count a verdict's drop or punt.
    #[inline]
    pub fn count(&mut self, verdict: &Verdict) {
        match verdict {
            Verdict::Drop(r) => self.drops[r.index()] += 1,
            Verdict::Punt(r) => self.punts[r.index()] += 1,
            Verdict::Forward(_) | Verdict::Fragment(_) | Verdict::Crypto(_) => {}
        }
    }

    /// A tunnel's counters.
    #[inline(always)]
    pub fn tunnel(&mut self, slot: u32) -> &mut TunnelCounters {
        let slot = slot as usize;
        // Checked once: the index below is known to be in bounds.
        if slot < self.tunnels.len() {
            &mut self.tunnels[slot]
        } else {
            self.grown_tunnel(slot)
        }
    }

    /// Tables and counters are resized together between bursts; this only guards a bug, out of
    /// the packet path's way.
    #[cold]
    #[inline(never)]
    fn grown_tunnel(&mut self, slot: usize) -> &mut TunnelCounters {
        self.tunnels.resize(slot + 1, TunnelCounters::default());
        &mut self.tunnels[slot]
    }

    /// Add another worker's counters to these.
    pub fn add(&mut self, other: &Counters) {
        self.rx_packets += other.rx_packets;
        self.rx_bytes += other.rx_bytes;
        self.tx_packets += other.tx_packets;
        self.tx_bytes += other.tx_bytes;
        for (a, b) in self.drops.iter_mut().zip(other.drops.iter()) {
            *a += b;
        }
        for (a, b) in self.punts.iter_mut().zip(other.punts.iter()) {
            *a += b;
        }
        self.icmp_errors += other.icmp_errors;
        self.fragments += other.fragments;
        self.ensure_slots(other.tunnels.len());
        for (a, b) in self.tunnels.iter_mut().zip(other.tunnels.iter()) {
            a.ingress_packets += b.ingress_packets;
            a.ingress_bytes += b.ingress_bytes;
            a.egress_packets += b.egress_packets;
            a.egress_bytes += b.egress_bytes;
            a.drops += b.drops;
        }
        if !other.sas.is_empty() {
            let sas = Arc::make_mut(&mut self.sas);
            let mut index: HashMap<_, usize> = sas.iter().enumerate().map(|(i, s)| (s.key(), i)).collect();
            for r in other.sas.iter() {
                match index.get(&r.key()) {
                    Some(&i) => sas[i].counters.add(&r.counters),
                    None => {
                        index.insert(r.key(), sas.len());
                        sas.push(*r);
                    }
                }
            }
        }
        self.sa_updates += other.sa_updates;
    }

    /// All drops.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }
}
