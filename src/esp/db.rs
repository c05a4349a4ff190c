//! A worker's SA database: inbound SAs by anycast endpoint and SPI, outbound SAs by tunnel, and
//! the counters of those deleted. Only its worker reads or changes it, changes coming between
//! bursts through the worker's update ring.
//!
//! With many SAs in use a lookup and the SA it finds miss the cache on every packet. A worker
//! whose database is larger than the cache ([`SaDb::prefetch_worthwhile`]) therefore looks ahead
//! over each burst: [`SaDb::prefetch_slot`] for every ESP packet first, then
//! [`SaDb::prefetch_inbound`], which finds each SA (its slot is in the cache by then) and brings
//! the SA in, then classification, which brings in its key (see `pipeline::esp`), then the
//! crypto. Each step's misses overlap across the burst instead of following one another.

use std::net::{IpAddr, Ipv4Addr};

use super::sa::{InboundSa, OutboundSa, SaReport, SaUpdate};
use crate::config::SaDirection;
use crate::tables::KeyMap;

/// An inbound SA's place in a worker's database, carried from classification to decryption
/// within one burst (places change only between bursts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InboundRef(pub u32);

/// Inbound SAs beyond which a worker prefetches ahead of its lookups: fewer SAs and the parts of
/// their keys in use stay in the caches near a core, and looking ahead would only cost. Small
/// packets over as many SAs, each in use in turn, interleaved medians of 3: with 1 000 SAs,
/// looking ahead cost 6% (8.38 -> 7.87 Mpps); with 4 000 it gained 2% (7.14 -> 7.31), with
/// 16 000 it doubled the rate (2.46 -> 5.15).
const PREFETCH_ABOVE: usize = 2048;

/// One worker's SAs.
#[derive(Debug, Default)]
pub struct SaDb {
    inbound: KeyMap<Box<InboundSa>>,
    /// Outbound SAs by tunnel counter slot, newest first.
    outbound: Vec<Vec<OutboundSa>>,
    /// Counters of deleted SAs, kept so that tunnel totals do not go backwards.
    pub deleted: Vec<SaReport>,
}

#[inline(always)]
fn spi_key(anycast: Ipv4Addr, spi: u32) -> u64 {
    u64::from(u32::from(anycast)) << 32 | u64::from(spi)
}

impl SaDb {
    /// Apply a change.
    pub fn apply(&mut self, update: SaUpdate) {
        match update {
            SaUpdate::AddInbound(sa) => {
                self.inbound.insert(spi_key(sa.anycast, sa.spi), sa);
            }
            SaUpdate::AddOutbound(sa) => {
                let slot = sa.tunnel_slot as usize;
                if self.outbound.len() <= slot {
                    self.outbound.resize_with(slot + 1, Vec::new);
                }
                let list = &mut self.outbound[slot];
                list.retain(|s| s.spi != sa.spi);
                list.insert(0, *sa);
            }
            SaUpdate::Delete { direction: SaDirection::Inbound, anycast, spi, .. } => {
                if let Some(sa) = self.inbound.remove(spi_key(anycast, spi)) {
                    self.deleted.push(SaReport {
                        spi,
                        direction: SaDirection::Inbound,
                        tunnel_slot: sa.tunnel_slot,
                        counters: sa.counters,
                    });
                }
            }
            SaUpdate::Delete { direction: SaDirection::Outbound, spi, tunnel_slot, .. } => {
                if let Some(list) = self.outbound.get_mut(tunnel_slot as usize) {
                    if let Some(i) = list.iter().position(|s| s.spi == spi) {
                        let sa = list.remove(i);
                        self.deleted.push(SaReport {
                            spi,
                            direction: SaDirection::Outbound,
                            tunnel_slot: sa.tunnel_slot,
                            counters: sa.counters,
                        });
                    }
                }
            }
        }
    }

    /// The inbound SA for an SPI on an anycast endpoint.
    #[inline(always)]
    pub fn find_inbound(&self, anycast: Ipv4Addr, spi: u32) -> Option<InboundRef> {
        self.inbound.position(spi_key(anycast, spi)).map(|p| InboundRef(p as u32))
    }

    #[inline(always)]
    pub fn inbound(&self, r: InboundRef) -> Option<&InboundSa> {
        self.inbound.at(r.0 as usize).map(|sa| &**sa)
    }

    #[inline(always)]
    pub fn inbound_mut(&mut self, r: InboundRef) -> Option<&mut InboundSa> {
        self.inbound.at_mut(r.0 as usize).map(|sa| &mut **sa)
    }

    /// Whether this database holds more inbound SAs than stay in a core's cache, so that looking
    /// ahead over a burst pays.
    #[inline(always)]
    pub fn prefetch_worthwhile(&self) -> bool {
        self.inbound.len() > PREFETCH_ABOVE
    }

    /// First look-ahead step: bring in the slot where the lookup of an SPI starts.
    #[inline(always)]
    pub fn prefetch_slot(&self, anycast: Ipv4Addr, spi: u32) {
        self.inbound.prefetch(spi_key(anycast, spi));
    }

    /// Second look-ahead step: find the SA of an SPI and bring it in.
    #[inline(always)]
    pub fn prefetch_inbound(&self, anycast: Ipv4Addr, spi: u32) {
        if let Some(sa) = self.find_inbound(anycast, spi).and_then(|r| self.inbound(r)) {
            dpdk_bindings::prefetch(sa);
        }
    }

    /// The outbound SA of a tunnel (by counter slot) for a packet from `src` to `dst`: its
    /// index in the tunnel's list.
    #[inline(always)]
    pub fn find_outbound(&self, slot: u32, src: IpAddr, dst: IpAddr) -> Option<u16> {
        let list = self.outbound.get(slot as usize)?;
        // A plain loop rather than `position` and a closure, which stayed a call of its own.
        for (i, sa) in list.iter().enumerate() {
            if sa.selectors.allow(src, dst) {
                return Some(i as u16);
            }
        }
        None
    }

    #[inline(always)]
    pub fn outbound(&self, slot: u32, index: u16) -> Option<&OutboundSa> {
        self.outbound.get(slot as usize).and_then(|l| l.get(usize::from(index)))
    }

    #[inline(always)]
    pub fn outbound_mut(&mut self, slot: u32, index: u16) -> Option<&mut OutboundSa> {
        self.outbound.get_mut(slot as usize).and_then(|l| l.get_mut(usize::from(index)))
    }

    /// Every SA's counters, live and deleted, into `v` (emptied first; its room is reused).
    pub fn reports_into(&self, v: &mut Vec<SaReport>) {
        v.clear();
        v.extend(self.inbound.values().map(|sa| SaReport {
            spi: sa.spi,
            direction: SaDirection::Inbound,
            tunnel_slot: sa.tunnel_slot,
            counters: sa.counters,
        }));
        v.extend(self.outbound.iter().flatten().map(|sa| SaReport {
            spi: sa.spi,
            direction: SaDirection::Outbound,
            tunnel_slot: sa.tunnel_slot,
            counters: sa.counters,
        }));
        v.extend(self.deleted.iter().copied());
    }

    /// Live SAs: (inbound, outbound).
    pub fn len(&self) -> (usize, usize) {
        (self.inbound.len(), self.outbound.iter().map(Vec::len).sum())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::esp::sa::tests::spec;

    #[test]
    fn a_new_outbound_sa_takes_over_and_the_old_stays_until_deleted() {
        let mut db = SaDb::default();
        let add = |db: &mut SaDb, spi| {
            let sa = OutboundSa::compile(&spec("aes128gcm16", SaDirection::Outbound, spi), 2, Arc::default()).unwrap();
            db.apply(SaUpdate::AddOutbound(sa));
        };
        let (src, dst) = ("203.0.113.5".parse().unwrap(), "10.20.0.1".parse().unwrap());
        add(&mut db, 0x100);
        assert_eq!(db.outbound(2, db.find_outbound(2, src, dst).unwrap()).unwrap().spi, 0x100);
        add(&mut db, 0x200);
        assert_eq!(db.outbound(2, db.find_outbound(2, src, dst).unwrap()).unwrap().spi, 0x200);
        assert_eq!(db.len(), (0, 2));
        db.apply(SaUpdate::Delete {
            direction: SaDirection::Outbound,
            anycast: Ipv4Addr::UNSPECIFIED,
            spi: 0x200,
            tunnel_slot: 2,
        });
        assert_eq!(db.outbound(2, db.find_outbound(2, src, dst).unwrap()).unwrap().spi, 0x100);
        assert!(db.find_outbound(1, src, dst).is_none(), "another tunnel has none");
        // Another router on another tunnel may choose the same outbound SPI: each goes alone.
        let other = OutboundSa::compile(&spec("aes128gcm16", SaDirection::Outbound, 0x100), 3, Arc::default()).unwrap();
        db.apply(SaUpdate::AddOutbound(other));
        assert_eq!(db.outbound(3, db.find_outbound(3, src, dst).unwrap()).unwrap().spi, 0x100);
        db.apply(SaUpdate::Delete {
            direction: SaDirection::Outbound,
            anycast: Ipv4Addr::UNSPECIFIED,
            spi: 0x100,
            tunnel_slot: 3,
        });
        assert!(db.find_outbound(3, src, dst).is_none());
        assert_eq!(db.outbound(2, db.find_outbound(2, src, dst).unwrap()).unwrap().spi, 0x100, "tunnel 2's stays");

        let anycast = Ipv4Addr::new(192, 0, 2, 100);
        for spi in [0x300, 0x301] {
            db.apply(SaUpdate::AddInbound(
                InboundSa::compile(&spec("aes128gcm16", SaDirection::Inbound, spi), 2).unwrap(),
            ));
        }
        assert!(db.find_inbound(anycast, 0x300).is_some() && db.find_inbound(anycast, 0x301).is_some());
        assert!(db.find_inbound(Ipv4Addr::new(192, 0, 2, 101), 0x300).is_none(), "SPIs are per endpoint");
        db.apply(SaUpdate::Delete { direction: SaDirection::Inbound, anycast, spi: 0x300, tunnel_slot: 2 });
        assert!(db.find_inbound(anycast, 0x300).is_none());
        let mut reports = Vec::new();
        db.reports_into(&mut reports);
        assert_eq!(reports.len(), 5, "two live SAs and three deleted");
    }

    #[test]
    fn an_inbound_sa_replaced_or_deleted_among_many_is_found_as_it_should_be() {
        let mut db = SaDb::default();
        let anycast = Ipv4Addr::new(192, 0, 2, 100);
        let add = |db: &mut SaDb, spi, slot| {
            db.apply(SaUpdate::AddInbound(
                InboundSa::compile(&spec("aes128gcm16", SaDirection::Inbound, spi), slot).unwrap(),
            ))
        };
        // More than a worker looks ahead beyond.
        const MANY: u32 = 3000;
        for spi in 0..MANY {
            add(&mut db, 0x1000 + spi, 1);
        }
        assert!(db.prefetch_worthwhile());
        add(&mut db, 0x1005, 7);
        assert_eq!(db.len(), (MANY as usize, 0), "a replacement, not a second SA");
        for spi in (0..MANY).step_by(3) {
            db.apply(SaUpdate::Delete { direction: SaDirection::Inbound, anycast, spi: 0x1000 + spi, tunnel_slot: 1 });
        }
        for spi in 0..MANY {
            db.prefetch_slot(anycast, 0x1000 + spi);
            db.prefetch_inbound(anycast, 0x1000 + spi);
            let found = db.find_inbound(anycast, 0x1000 + spi).and_then(|r| db.inbound(r));
            assert_eq!(found.map(|sa| sa.spi), (spi % 3 != 0).then_some(0x1000 + spi));
        }
        let r = db.find_inbound(anycast, 0x1005).unwrap();
        assert_eq!(db.inbound(r).unwrap().tunnel_slot, 7);
        db.inbound_mut(r).unwrap().counters.packets += 1;
        assert_eq!(db.inbound(db.find_inbound(anycast, 0x1005).unwrap()).unwrap().counters.packets, 1);
        assert_eq!(db.deleted.len(), 1000);
    }
}
