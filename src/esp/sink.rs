//! The seam between whatever negotiates SAs (the configuration's static SAs now, the IKEv2
//! responder later) and the dataplane: [`SaSink`]. [`RingSaSink`] is the dataplane's: it compiles
//! each SA once per worker and pushes it through the worker's update ring; the worker files it
//! between two bursts, so an SA is active on every worker within one poll of each.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::sa::{InboundSa, OutboundSa, SaCounters, SaError, SaSpec, SaUpdate};
use super::SaDb;
use crate::config::{Config, SaDirection, MAX_SAS_PER_TUNNEL};
use crate::tables::{SlotMap, Tables};
use crate::worker::{Update, WorkerHandle};

/// Where SAs are installed.
pub trait SaSink {
    /// Install an SA. An outbound SA takes over its tunnel's traffic for its selectors at once;
    /// the one it replaces stays installed, unused, until deleted (make-before-break).
    fn add(&mut self, spec: &SaSpec) -> Result<(), SaError>;
    /// Replace an installed SA (same SPI and direction) by a new compilation of `spec`: a new
    /// remote address or port after a NAT mapping changed. An outbound SA keeps its sequence
    /// numbers.
    fn update(&mut self, spec: &SaSpec) -> Result<(), SaError>;
    /// Remove an SA of `tunnel` from every worker.
    fn delete(&mut self, direction: SaDirection, tunnel: &str, anycast: Ipv4Addr, spi: u32) -> Result<(), SaError>;
    /// An SA's counters, summed over the workers (as last published).
    fn counters(&mut self, direction: SaDirection, tunnel: &str, anycast: Ipv4Addr, spi: u32) -> Option<SaCounters>;
}

/// Where an SA's SPI is unique: an inbound SPI on its anycast endpoint (we chose it), an outbound
/// SPI within its tunnel (its router chose it, and routers of other tunnels on the same anycast
/// endpoint may choose the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SaKey {
    direction: SaDirection,
    anycast: Ipv4Addr,
    spi: u32,
    /// The tunnel's counter slot for an outbound SA; none for an inbound one.
    outbound_slot: Option<u32>,
}

impl SaKey {
    fn new(direction: SaDirection, anycast: Ipv4Addr, spi: u32, slot: u32) -> Self {
        let outbound_slot = (direction == SaDirection::Outbound).then_some(slot);
        Self { direction, anycast, spi, outbound_slot }
    }
}

/// What the control thread remembers of the SAs it installed.
#[derive(Debug, Default)]
pub struct SaState {
    /// Installed SAs -> tunnel counter slot.
    installed: HashMap<SaKey, u32>,
    /// How many SAs each (direction, tunnel slot) has, for the per-tunnel limit.
    per_tunnel: HashMap<(SaDirection, u32), usize>,
    /// Outbound SAs' sequence counters, shared by the workers, by (tunnel slot, SPI).
    sequences: HashMap<(u32, u32), Arc<AtomicU64>>,
}

/// How long an SA change waits for room in a worker's update ring before it fails. A running
/// worker empties its ring between two bursts, in microseconds.
const RING_WAIT: Duration = Duration::from_secs(1);

/// The dataplane's SA sink: every worker's update ring.
pub struct RingSaSink<'a> {
    pub handles: &'a mut [WorkerHandle],
    pub tables: &'a Tables,
    pub state: &'a mut SaState,
    /// Called while a worker's ring is full, until it has room (for at most [`RING_WAIT`]):
    /// running workers empty their rings themselves, so yielding is enough
    /// ([`std::thread::yield_now`]); for a worker not launched yet, the caller files its updates.
    pub make_room: &'a mut dyn FnMut(),
}

impl std::fmt::Debug for RingSaSink<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingSaSink").field("workers", &self.handles.len()).finish_non_exhaustive()
    }
}

impl RingSaSink<'_> {
    fn slot(&self, tunnel: &str) -> Result<u32, SaError> {
        self.tables
            .tunnels
            .iter()
            .find(|t| t.name == tunnel && t.is_ipsec())
            .map(|t| t.slot)
            .ok_or_else(|| SaError::UnknownTunnel(tunnel.to_string()))
    }

    fn push(&mut self, spec: &SaSpec, slot: u32) -> Result<(), SaError> {
        // Compile for every worker before sending to any, so that a refused key changes nothing.
        let mut updates = Vec::with_capacity(self.handles.len());
        for _ in 0..self.handles.len() {
            updates.push(match spec.direction {
                SaDirection::Inbound => SaUpdate::AddInbound(InboundSa::compile(spec, slot)?),
                SaDirection::Outbound => {
                    let seq = self.state.sequences.entry((slot, spec.spi)).or_default().clone();
                    SaUpdate::AddOutbound(OutboundSa::compile(spec, slot, seq)?)
                }
            });
        }
        self.wait_for_room()?;
        for (h, u) in self.handles.iter_mut().zip(updates) {
            h.updates.push(Update::Sa(u)).map_err(|_| SaError::RingFull)?;
        }
        if self.state.installed.insert(SaKey::new(spec.direction, spec.local, spec.spi, slot), slot).is_none() {
            *self.state.per_tunnel.entry((spec.direction, slot)).or_default() += 1;
        }
        Ok(())
    }

    /// The key of an installed SA of `tunnel`. A tunnel a reload removed has no slot any more: its
    /// outbound SA is then the one installed with that SPI on the endpoint (one, unless another
    /// tunnel's router chose the same SPI).
    fn installed_key(&self, direction: SaDirection, tunnel: &str, anycast: Ipv4Addr, spi: u32) -> Option<SaKey> {
        if let Ok(slot) = self.slot(tunnel) {
            return Some(SaKey::new(direction, anycast, spi, slot));
        }
        let mut found = self.state.installed.iter().filter(|(k, slot)| {
            k.direction == direction && k.anycast == anycast && k.spi == spi && !self.slot_in_use(**slot)
        });
        match (found.next(), found.next()) {
            (Some((key, _)), None) => Some(*key),
            _ => None,
        }
    }

    /// Whether a configured IPsec tunnel has counter slot `slot`.
    fn slot_in_use(&self, slot: u32) -> bool {
        self.tables.tunnels.iter().any(|t| t.slot == slot && t.is_ipsec())
    }

    /// Wait until every worker's ring has room for one more update.
    fn wait_for_room(&mut self) -> Result<(), SaError> {
        let mut deadline = None;
        while self.handles.iter().any(|h| h.updates.slots() == 0) {
            let end = *deadline.get_or_insert_with(|| Instant::now() + RING_WAIT);
            if Instant::now() >= end {
                return Err(SaError::RingFull);
            }
            (self.make_room)();
        }
        Ok(())
    }
}

impl SaSink for RingSaSink<'_> {
    fn add(&mut self, spec: &SaSpec) -> Result<(), SaError> {
        let slot = self.slot(&spec.tunnel)?;
        if self.state.installed.contains_key(&SaKey::new(spec.direction, spec.local, spec.spi, slot)) {
            return Err(SaError::SpiInUse(spec.spi));
        }
        if self.state.per_tunnel.get(&(spec.direction, slot)).copied().unwrap_or(0) >= MAX_SAS_PER_TUNNEL {
            return Err(SaError::TooMany);
        }
        if spec.direction == SaDirection::Outbound {
            self.state.sequences.remove(&(slot, spec.spi));
        }
        self.push(spec, slot)
    }

    fn update(&mut self, spec: &SaSpec) -> Result<(), SaError> {
        let slot = self.slot(&spec.tunnel)?;
        if !self.state.installed.contains_key(&SaKey::new(spec.direction, spec.local, spec.spi, slot)) {
            return Err(SaError::NotFound(spec.spi));
        }
        self.push(spec, slot)
    }

    fn delete(&mut self, direction: SaDirection, tunnel: &str, anycast: Ipv4Addr, spi: u32) -> Result<(), SaError> {
        let key = self.installed_key(direction, tunnel, anycast, spi).ok_or(SaError::NotFound(spi))?;
        let Some(slot) = self.state.installed.remove(&key) else {
            return Err(SaError::NotFound(spi));
        };
        if let Some(n) = self.state.per_tunnel.get_mut(&(direction, slot)) {
            *n = n.saturating_sub(1);
        }
        if direction == SaDirection::Outbound {
            self.state.sequences.remove(&(slot, spi));
        }
        let mut result = self.wait_for_room();
        for h in self.handles.iter_mut() {
            let delete = SaUpdate::Delete { direction, anycast, spi, tunnel_slot: slot };
            if h.updates.push(Update::Sa(delete)).is_err() {
                result = Err(SaError::RingFull);
            }
        }
        result
    }

    fn counters(&mut self, direction: SaDirection, tunnel: &str, anycast: Ipv4Addr, spi: u32) -> Option<SaCounters> {
        let key = self.installed_key(direction, tunnel, anycast, spi)?;
        let slot = *self.state.installed.get(&key)?;
        let mut sum = SaCounters::default();
        for h in self.handles.iter_mut() {
            for r in h.counters.read().sas.iter() {
                if r.key() == (spi, direction, slot) {
                    sum.add(&r.counters);
                }
            }
        }
        Some(sum)
    }
}

/// The static SAs a configuration asks for, as specs.
pub fn static_specs(config: &Config, node_id: u16) -> Vec<SaSpec> {
    let mut specs = Vec::new();
    for t in &config.ipsec_tunnels {
        for sa in &t.static_sas {
            specs.push(SaSpec {
                tunnel: t.name.clone(),
                spi: sa.spi,
                direction: sa.direction,
                transform: sa.transform,
                encryption_key: sa.encryption_key.clone(),
                integrity_key: sa.integrity_key.clone(),
                local: t.anycast_endpoint,
                remote: t.customer_endpoint.unwrap_or(Ipv4Addr::UNSPECIFIED),
                udp: sa.udp_encapsulation.then_some((super::sa::NAT_T_PORT, sa.remote_port)),
                local_ts: sa.local_ts.clone(),
                remote_ts: sa.remote_ts.clone(),
                replay_protection: t.replay_protection,
                ttl: t.ttl,
                node_id,
            });
        }
    }
    specs
}

/// A database of a configuration's static SAs compiled directly, each under its tunnel's
/// counter slot in `slots`, and for each inbound SA a sealer: an outbound SA with its key, which
/// makes packets that the inbound SA opens. For tests, fuzz targets and micro-benchmarks, which
/// run the pipeline without workers or rings.
pub fn static_sa_db(config: &Config, slots: &mut SlotMap) -> Result<(SaDb, Vec<Box<OutboundSa>>), SaError> {
    let (mut db, mut sealers) = (SaDb::default(), Vec::new());
    for spec in static_specs(config, 0) {
        let slot = slots.slot(&spec.tunnel);
        match spec.direction {
            SaDirection::Inbound => {
                db.apply(SaUpdate::AddInbound(InboundSa::compile(&spec, slot)?));
                let mirror = SaSpec { direction: SaDirection::Outbound, ..spec.clone() };
                sealers.push(OutboundSa::compile(&mirror, slot, Arc::default())?);
            }
            SaDirection::Outbound => db.apply(SaUpdate::AddOutbound(OutboundSa::compile(&spec, slot, Arc::default())?)),
        }
    }
    Ok((db, sealers))
}

/// Bring the installed static SAs from `before` to `after` (a reload): add those new, update
/// those changed (an outbound SA keeps its sequence numbers), and only then delete those gone,
/// so that a tunnel whose SAs are all replaced in one reload is never without one. Errors are
/// described, one line each.
pub fn sync_static(sink: &mut dyn SaSink, before: &[SaSpec], after: &[SaSpec]) -> Vec<String> {
    let old_by_key: HashMap<_, &SaSpec> = before.iter().map(|s| (sync_key(s), s)).collect();
    let new_keys: HashSet<_> = after.iter().map(sync_key).collect();
    let mut errors = Errors::default();
    // An SA moved to another tunnel keeps its SPI: it can be added only once the old is gone.
    let mut moved = Vec::new();
    for new in after {
        let result = match old_by_key.get(&sync_key(new)) {
            Some(old) if *old == new => Ok(()),
            Some(_) => sink.update(new),
            None => sink.add(new),
        };
        match result {
            Err(SaError::SpiInUse(_)) => moved.push(new),
            Err(e) => errors.push(new, e),
            Ok(()) => {}
        }
    }
    for old in before {
        if !new_keys.contains(&sync_key(old)) {
            if let Err(e) = sink.delete(old.direction, &old.tunnel, old.local, old.spi) {
                errors.push(old, e);
            }
        }
    }
    for new in moved {
        if let Err(e) = sink.add(new) {
            errors.push(new, e);
        }
    }
    errors.finish()
}

/// What identifies a static SA from one configuration to the next.
fn sync_key(s: &SaSpec) -> (SaDirection, Ipv4Addr, u32, &str) {
    (s.direction, s.local, s.spi, &s.tunnel)
}

/// Error lines of a sync, the first few in full: a configuration of 100 000 SAs that fails
/// fails alike for most of them.
#[derive(Default)]
struct Errors {
    lines: Vec<String>,
    more: usize,
}

impl Errors {
    const SHOWN: usize = 10;

    fn push(&mut self, spec: &SaSpec, e: SaError) {
        if self.lines.len() < Self::SHOWN {
            self.lines.push(format!("static SA {:#x} of {}: {e}", spec.spi, spec.tunnel));
        } else {
            self.more += 1;
        }
    }

    fn finish(mut self) -> Vec<String> {
        if self.more > 0 {
            self.lines.push(format!("and {} more", self.more));
        }
        self.lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::esp::sa::SaSpec;
    use crate::esp::SaDb;
    use crate::secret::Secret;
    use crate::tables::SlotMap;
    use crate::worker::links;

    /// Two IPsec tunnels on one anycast endpoint, each with its own router.
    const TWO_TUNNELS: &str = r#"
[dataplane]
cores = [1]

[[ports]]
name = "wan"
device = "net_null0"
address = "192.0.2.1/24"

[[ipsec_tunnels]]
name = "a"
anycast_endpoint = "203.0.113.1"
psk = "test key for a"

[[ipsec_tunnels]]
name = "b"
anycast_endpoint = "203.0.113.1"
psk = "test key for b"
"#;

    fn outbound(tunnel: &str, spi: u32, remote: [u8; 4]) -> SaSpec {
        let transform: crate::esp::transform::Transform = "aes128gcm16".parse().unwrap();
        SaSpec {
            tunnel: tunnel.into(),
            spi,
            direction: SaDirection::Outbound,
            transform,
            encryption_key: Secret::new(vec![7; transform.encryption_key_len()]),
            integrity_key: Secret::new(Vec::new()),
            local: Ipv4Addr::new(203, 0, 113, 1),
            remote: remote.into(),
            udp: None,
            local_ts: vec!["0.0.0.0/0".parse().unwrap()],
            remote_ts: vec!["0.0.0.0/0".parse().unwrap()],
            replay_protection: false,
            ttl: 64,
            node_id: 1,
        }
    }

    #[test]
    fn routers_of_two_tunnels_may_choose_the_same_outbound_spi() {
        let config = Config::parse(TWO_TUNNELS).unwrap();
        let mut slots = SlotMap::default();
        let tables = Tables::build(&config, &[[2, 0, 0, 0, 0, 1]], &mut slots);
        let (mut worker, handle) = links(slots.len());
        let mut handles = vec![handle];
        let mut state = SaState::default();
        let mut make_room = || {};
        let mut sink =
            RingSaSink { handles: &mut handles, tables: &tables, state: &mut state, make_room: &mut make_room };
        sink.add(&outbound("a", 0x1234, [198, 51, 100, 1])).unwrap();
        sink.add(&outbound("b", 0x1234, [198, 51, 100, 2])).expect("the same SPI in another tunnel");
        assert!(matches!(sink.add(&outbound("a", 0x1234, [198, 51, 100, 1])), Err(SaError::SpiInUse(0x1234))));
        sink.delete(SaDirection::Outbound, "a", Ipv4Addr::new(203, 0, 113, 1), 0x1234).unwrap();

        let mut db = SaDb::default();
        while let Ok(update) = worker.updates.pop() {
            if let Update::Sa(u) = update {
                db.apply(u);
            }
        }
        let (src, dst) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let (a, b) = (slots.slot("a"), slots.slot("b"));
        assert!(db.find_outbound(a, src, dst).is_none(), "tunnel a's SA is gone");
        let sa = db.outbound(b, db.find_outbound(b, src, dst).expect("tunnel b's stays")).unwrap();
        assert_eq!((sa.spi, sa.remote), (0x1234, Ipv4Addr::new(198, 51, 100, 2)));
    }
}
