//! The IKEv2 responder's runner, on the slow-path thread. The slow path reads IKE datagrams out of
//! what the workers punt ([`IkeDatagram`]); the runner feeds them to `ike-agent`'s [`Responder`]
//! with the time, hands its answers back to the slow path to send, installs each Child SA it
//! agrees into every worker through the [`SaSink`], and writes the IKE event log: one JSON line
//! per event, never a key in it.

use std::collections::VecDeque;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ike_agent::fragment::Fragmentation;
use ike_agent::policy::{HalfOpenLimits, ResponderPolicy, Timers, TunnelPolicy};
use ike_agent::proposal::{ChildEncryption, ChildIntegrity, ChildSuite};
use ike_agent::responder::{ChildSa, DeletedChild, Encapsulation, Event, LogLevel, Responder};
use serde::Serialize;
use serde_json::json;

use crate::config::{Config, SaDirection};
use crate::esp::sa::SaSpec;
use crate::esp::sink::SaSink;
use crate::esp::{Encryption, Integrity, Transform};
use crate::secret::Secret;
use crate::slowpath::IkeDatagram;

/// Events kept for status views (the log file has them all).
const RECENT_EVENTS: usize = 64;
/// How long a rekeyed Child SA's new outbound SA waits for the peer to delete the old one. The
/// peer installs its new inbound SA when it reads our answer and deletes the old SA right after;
/// should that Delete be lost, the new outbound SA takes over anyway once the peer surely has it.
const REKEY_OUTBOUND_GRACE: Duration = Duration::from_secs(10);
/// How often the responder's timers run. They walk every IKE SA, so not on each slow-path poll;
/// the half-open timeout they enforce is 30 s.
const TIMER_INTERVAL: Duration = Duration::from_millis(100);

/// What the runner counts.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct IkeCounters {
    /// IKE messages handed to the responder.
    pub received: u64,
    /// IKE messages sent.
    pub sent: u64,
    /// Answers that could not be sent: not IPv4.
    pub unsendable: u64,
    /// IKE SAs established since start.
    pub ike_sas_established: u64,
    /// Child SAs installed in the dataplane since start.
    pub child_sas_installed: u64,
    /// Child SAs agreed with a peer that the dataplane refused.
    pub child_sas_failed: u64,
    /// Child SAs that replaced another (CREATE_CHILD_SA with REKEY_SA), among those installed.
    pub child_sas_rekeyed: u64,
    /// Child SAs removed from the dataplane: deleted by the peer, or with their IKE SA.
    pub child_sas_deleted: u64,
    /// IKE SAs rekeyed.
    pub ike_sas_rekeyed: u64,
    /// IKE SAs deleted by the peer.
    pub ike_sas_deleted: u64,
    /// Requests refused (authentication failed, no proposal chosen, ...).
    pub refusals: u64,
}

/// A Child SA this runner installed, as status views show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstalledChild {
    pub tunnel: String,
    pub local: Ipv4Addr,
    pub remote: Ipv4Addr,
    #[serde(serialize_with = "hex32")]
    pub inbound_spi: u32,
    #[serde(serialize_with = "hex32")]
    pub outbound_spi: u32,
    pub transform: String,
    /// ESP in UDP: (our port, the peer's port).
    pub udp: Option<(u16, u16)>,
    /// The customer's prefix and ours.
    pub remote_ts: String,
    pub local_ts: String,
    /// A rekey replaced it; it carries what is still in flight until the peer deletes it.
    pub rekeyed: bool,
    /// It replaced another whose Delete has not come yet: inbound only so far.
    pub outbound_pending: bool,
}

/// The outbound SA of a rekey's new Child SA, waiting for the old Child SA to go.
struct PendingOutbound {
    /// The old Child SA's inbound SPI.
    rekey_of: u32,
    spec: SaSpec,
    since: Instant,
}

fn hex32<S: serde::Serializer>(v: &u32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{v:08x}"))
}

/// The responder's policy from a configuration: every IPsec tunnel with a pre-shared key.
pub fn policy(config: &Config) -> ResponderPolicy {
    ResponderPolicy {
        node_id: config.dataplane.node_id,
        account_id: config.ike.account_id.clone(),
        domain: config.ike.domain.clone(),
        tunnels: config
            .ipsec_tunnels
            .iter()
            .filter_map(|t| {
                let psk = t.psk.as_ref()?;
                Some(TunnelPolicy {
                    name: t.name.clone(),
                    psk: zeroize::Zeroizing::new(psk.expose().to_vec()),
                    anycast_endpoint: t.anycast_endpoint,
                    customer_endpoint: t.customer_endpoint,
                    allow_null_cipher: t.allow_null_cipher,
                })
            })
            .collect(),
        half_open: HalfOpenLimits {
            cookie_threshold: config.ike.cookie_threshold,
            per_peer: config.ike.half_open_per_peer,
            total: config.ike.half_open_max,
        },
        timers: Timers {
            liveness_after: (config.ike.liveness_check_seconds > 0)
                .then(|| Duration::from_secs(config.ike.liveness_check_seconds)),
            child_sa_lifetime: Duration::from_secs(config.ike.child_sa_lifetime_seconds),
            child_sa_rekey_after: (config.ike.child_sa_rekey_seconds > 0)
                .then(|| Duration::from_secs(config.ike.child_sa_rekey_seconds)),
            ike_sa_lifetime: Duration::from_secs(config.ike.ike_sa_lifetime_seconds),
            // Each retransmission waits twice as long as the one before.
            retransmits: [1, 2, 4, 8, 16].map(|k| Duration::from_millis(k * config.ike.retransmit_start_ms)),
        },
        fragmentation: Fragmentation {
            enabled: config.ike.fragmentation,
            fragment_size: config.ike.fragment_size,
            max_fragments: config.ike.max_fragments,
            ..Fragmentation::default()
        },
    }
}

/// The dataplane transform of a negotiated Child SA suite.
pub fn transform(suite: &ChildSuite) -> Result<Transform, String> {
    let integrity = match suite.integrity {
        None => Integrity::Aead,
        Some(ChildIntegrity::HmacSha256_128) => Integrity::HmacSha256_128,
        Some(ChildIntegrity::HmacSha1_96) => Integrity::HmacSha1_96,
    };
    let encryption = match suite.encryption {
        ChildEncryption::AesGcm16 { key_bytes } => Encryption::AesGcm16 { key_bytes },
        ChildEncryption::AesCbc { key_bytes } => Encryption::AesCbc { key_bytes },
        ChildEncryption::Null => Encryption::Null,
    };
    let aead = matches!(encryption, Encryption::AesGcm16 { .. });
    if aead != (integrity == Integrity::Aead) {
        return Err(format!("{suite:?} pairs its cipher with the wrong kind of integrity"));
    }
    Ok(Transform { encryption, integrity })
}

/// The inbound and outbound SA of a Child SA, for `config`'s tunnel settings.
pub fn child_specs(child: &ChildSa, config: &Config) -> Result<[SaSpec; 2], String> {
    let tunnel = config
        .ipsec_tunnels
        .iter()
        .find(|t| t.name == child.tunnel)
        .ok_or_else(|| format!("tunnel {} is not configured", child.tunnel))?;
    let (IpAddr::V4(local), IpAddr::V4(remote)) = (child.local, child.remote) else {
        return Err("the dataplane carries ESP over IPv4 only".into());
    };
    let transform = transform(&child.suite)?;
    let udp = match child.encapsulation {
        Encapsulation::Raw => None,
        Encapsulation::Udp { local_port, remote_port } => Some((local_port, remote_port)),
    };
    let spec = |direction, keys: &ike_agent::responder::ChildSaKeys| SaSpec {
        tunnel: child.tunnel.clone(),
        spi: keys.spi,
        direction,
        transform,
        encryption_key: Secret::new(keys.encryption.to_vec()),
        integrity_key: Secret::new(keys.integrity.to_vec()),
        local,
        remote,
        udp,
        local_ts: vec![child.selectors.responder],
        remote_ts: vec![child.selectors.initiator],
        replay_protection: tunnel.replay_protection,
        ttl: tunnel.ttl,
        node_id: config.dataplane.node_id,
    };
    Ok([spec(SaDirection::Inbound, &child.inbound), spec(SaDirection::Outbound, &child.outbound)])
}

/// The responder and what it needs around it.
pub struct IkeRunner {
    responder: Responder,
    /// Where each event goes, as a JSON line.
    log: Box<dyn Write + Send>,
    recent: VecDeque<serde_json::Value>,
    installed: Vec<InstalledChild>,
    pending_outbound: Vec<PendingOutbound>,
    /// When the responder's timers last ran.
    timers_run: Option<Instant>,
    pub counters: IkeCounters,
}

impl std::fmt::Debug for IkeRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IkeRunner").field("responder", &self.responder).field("counters", &self.counters).finish()
    }
}

impl IkeRunner {
    /// A runner for `config`, logging to `log`. The static SAs' inbound SPIs are kept from the
    /// responder's choice.
    pub fn new(config: &Config, log: Box<dyn Write + Send>) -> Result<IkeRunner, String> {
        let mut responder = Responder::new(policy(config)).map_err(|e| e.to_string())?;
        reserve_static_spis(&mut responder, config);
        Ok(IkeRunner {
            responder,
            log,
            recent: VecDeque::new(),
            installed: Vec::new(),
            pending_outbound: Vec::new(),
            timers_run: None,
            counters: Default::default(),
        })
    }

    /// Take a reloaded configuration: new tunnels and keys count from the next handshake; IKE
    /// SAs of tunnels no longer configured end, and their Child SAs leave the dataplane.
    pub fn reload(&mut self, config: &Config, sink: &mut dyn SaSink) -> Result<(), String> {
        let gone = self.responder.set_policy(policy(config)).map_err(|e| e.to_string())?;
        reserve_static_spis(&mut self.responder, config);
        let configured = |name: &str| config.ipsec_tunnels.iter().any(|t| t.name == name && t.psk.is_some());
        let (keep, remove): (Vec<_>, Vec<_>) = self.installed.drain(..).partition(|c| configured(&c.tunnel));
        self.installed = keep;
        self.pending_outbound.retain(|p| configured(&p.spec.tunnel));
        for child in remove {
            // The tunnel's tables are gone with the reload; its SAs may already be unreachable.
            let _ = sink.delete(SaDirection::Inbound, &child.tunnel, child.local, child.inbound_spi);
            let _ = sink.delete(SaDirection::Outbound, &child.tunnel, child.local, child.outbound_spi);
            self.note(
                "info",
                None,
                format!(
                    "Child SA {:08x}/{:08x} of tunnel {} removed: tunnel unconfigured",
                    child.inbound_spi, child.outbound_spi, child.tunnel
                ),
            );
        }
        for tunnel in gone {
            self.note("info", None, format!("IKE SA of tunnel {tunnel} ended: tunnel unconfigured"));
        }
        Ok(())
    }

    /// Hand received IKE messages to the responder.
    pub fn receive(&mut self, now: Instant, datagrams: Vec<IkeDatagram>) {
        for d in datagrams {
            self.counters.received += 1;
            self.responder.handle_datagram(now, SocketAddr::V4(d.local), SocketAddr::V4(d.remote), &d.message);
        }
    }

    /// Run the responder's timers, send its answers through `send`, install the Child SAs it
    /// agreed through `sink` and log its events.
    pub fn poll(
        &mut self,
        now: Instant,
        config: &Config,
        sink: &mut dyn SaSink,
        send: &mut dyn FnMut(SocketAddrV4, SocketAddrV4, &[u8]),
    ) {
        if self.timers_run.is_none_or(|at| now.duration_since(at) >= TIMER_INTERVAL) {
            self.responder.handle_timeout(now);
            self.timers_run = Some(now);
            let overdue: Vec<u32> = self
                .pending_outbound
                .iter()
                .filter(|p| now.duration_since(p.since) >= REKEY_OUTBOUND_GRACE)
                .map(|p| p.rekey_of)
                .collect();
            for old in overdue {
                self.take_over(old, sink, "no Delete of the old Child SA");
            }
        }
        while let Some(t) = self.responder.poll_transmit() {
            match (t.local, t.remote) {
                (SocketAddr::V4(local), SocketAddr::V4(remote)) => {
                    self.counters.sent += 1;
                    send(local, remote, &t.bytes);
                }
                _ => self.counters.unsendable += 1,
            }
        }
        while let Some(event) = self.responder.poll_event() {
            match event {
                Event::Log(log) => {
                    let level = match log.level {
                        LogLevel::Info => "info",
                        LogLevel::Warning => "warning",
                    };
                    if log.level == LogLevel::Warning {
                        self.counters.refusals += 1;
                    }
                    self.note(level, Some((log.local, log.remote)), log.message);
                }
                Event::IkeSaEstablished(_) => self.counters.ike_sas_established += 1,
                Event::IkeSaRekeyed(_) => self.counters.ike_sas_rekeyed += 1,
                Event::IkeSaDeleted(_) => self.counters.ike_sas_deleted += 1,
                Event::ChildSaEstablished(child) => self.install(now, &child, config, sink),
                Event::ChildSaDeleted(child) => self.uninstall(&child, sink),
                Event::ChildSaRedundant(child) => self.drop_pending_outbound(&child),
            }
        }
    }

    /// Install a Child SA on every worker. The new SA of a rekey the peer started goes in inbound
    /// first; its outbound SA waits for the old Child SA's Delete (make-before-break: the peer may
    /// not have read our answer yet, and until it has, only the old SA is known to it). That of a
    /// rekey we started goes in both ways: the peer had it before it answered.
    fn install(&mut self, now: Instant, child: &ChildSa, config: &Config, sink: &mut dyn SaSink) {
        let ends = Some((SocketAddr::new(child.local, 0), SocketAddr::new(child.remote, 0)));
        let old = child.rekey_of.filter(|old| self.installed.iter().any(|c| c.inbound_spi == *old));
        let replaced = old.filter(|_| !child.rekey_started_here);
        let result = child_specs(child, config).and_then(|[inbound, outbound]| {
            sink.add(&inbound).map_err(|e| format!("inbound SA {:08x}: {e}", inbound.spi))?;
            let record = InstalledChild {
                tunnel: child.tunnel.clone(),
                local: inbound.local,
                remote: inbound.remote,
                inbound_spi: inbound.spi,
                outbound_spi: outbound.spi,
                transform: inbound.transform.to_string(),
                udp: inbound.udp,
                remote_ts: child.selectors.initiator.to_string(),
                local_ts: child.selectors.responder.to_string(),
                rekeyed: false,
                outbound_pending: replaced.is_some(),
            };
            match replaced {
                Some(old) => self.pending_outbound.push(PendingOutbound { rekey_of: old, spec: outbound, since: now }),
                None => {
                    if let Err(e) = sink.add(&outbound) {
                        let _ = sink.delete(SaDirection::Inbound, &inbound.tunnel, inbound.local, inbound.spi);
                        return Err(format!("outbound SA {:08x}: {e}", outbound.spi));
                    }
                }
            }
            Ok(record)
        });
        match result {
            Ok(installed) => {
                self.counters.child_sas_installed += 1;
                let line = match replaced {
                    Some(old) => {
                        self.counters.child_sas_rekeyed += 1;
                        self.installed.iter_mut().filter(|c| c.inbound_spi == old).for_each(|c| c.rekeyed = true);
                        format!(
                            "Child SA installed inbound on every worker for tunnel {}: {} in {:08x}; out {:08x} \
                             follows when {old:08x} is deleted",
                            installed.tunnel, installed.transform, installed.inbound_spi, installed.outbound_spi
                        )
                    }
                    None => {
                        if let Some(old) = old {
                            self.counters.child_sas_rekeyed += 1;
                            self.installed.iter_mut().filter(|c| c.inbound_spi == old).for_each(|c| c.rekeyed = true);
                        }
                        format!(
                            "Child SA installed on every worker for tunnel {}: {} in {:08x} out {:08x}",
                            installed.tunnel, installed.transform, installed.inbound_spi, installed.outbound_spi
                        )
                    }
                };
                self.installed.push(installed);
                self.note("info", ends, line);
            }
            Err(e) => {
                self.counters.child_sas_failed += 1;
                self.note("error", ends, format!("Child SA for tunnel {} not installed: {e}", child.tunnel));
            }
        }
    }

    /// The new outbound SA of the rekey of `old` (an inbound SPI) takes over the traffic.
    fn take_over(&mut self, old: u32, sink: &mut dyn SaSink, why: &str) {
        let Some(at) = self.pending_outbound.iter().position(|p| p.rekey_of == old) else { return };
        let pending = self.pending_outbound.remove(at);
        let spec = pending.spec;
        let ends = Some((SocketAddr::new(IpAddr::V4(spec.local), 0), SocketAddr::new(IpAddr::V4(spec.remote), 0)));
        match sink.add(&spec) {
            Ok(()) => {
                let same = |c: &&mut InstalledChild| c.outbound_spi == spec.spi && c.tunnel == spec.tunnel;
                for c in self.installed.iter_mut().filter(same) {
                    c.outbound_pending = false;
                }
                let line = format!("Child SA of tunnel {} sends on {:08x} now: {why}", spec.tunnel, spec.spi);
                self.note("info", ends, line);
            }
            Err(e) => {
                self.counters.child_sas_failed += 1;
                let line = format!("outbound SA {:08x} of tunnel {} not installed: {e}", spec.spi, spec.tunnel);
                self.note("error", ends, line);
            }
        }
    }

    /// A Child SA of the peer's rekey lost a collision with ours: its outbound SA never goes in.
    fn drop_pending_outbound(&mut self, child: &DeletedChild) {
        let IpAddr::V4(local) = child.local else { return };
        self.pending_outbound.retain(|p| !(p.spec.spi == child.outbound_spi && p.spec.tunnel == child.tunnel));
        for c in self.installed.iter_mut().filter(|c| c.local == local && c.inbound_spi == child.inbound_spi) {
            c.outbound_pending = false;
            c.rekeyed = true;
        }
    }

    /// Remove a Child SA from every worker; a rekey waiting for it to go takes over first, so
    /// that the tunnel always has an outbound SA.
    fn uninstall(&mut self, child: &DeletedChild, sink: &mut dyn SaSink) {
        let IpAddr::V4(local) = child.local else { return };
        self.take_over(child.inbound_spi, sink, "the old Child SA was deleted");
        // A rekey's new Child SA deleted before its outbound SA went in leaves nothing to install.
        self.pending_outbound.retain(|p| !(p.spec.spi == child.outbound_spi && p.spec.tunnel == child.tunnel));
        let Some(at) = self.installed.iter().position(|c| c.local == local && c.inbound_spi == child.inbound_spi)
        else {
            return;
        };
        let gone = self.installed.remove(at);
        let _ = sink.delete(SaDirection::Outbound, &gone.tunnel, local, gone.outbound_spi);
        let _ = sink.delete(SaDirection::Inbound, &gone.tunnel, local, gone.inbound_spi);
        self.counters.child_sas_deleted += 1;
        let ends = Some((SocketAddr::new(child.local, 0), SocketAddr::new(IpAddr::V4(gone.remote), 0)));
        let line = format!(
            "Child SA removed from every worker for tunnel {}: in {:08x} out {:08x}",
            gone.tunnel, gone.inbound_spi, gone.outbound_spi
        );
        self.note("info", ends, line);
    }

    /// Write one event to the log and keep it among the recent ones.
    fn note(&mut self, level: &str, ends: Option<(SocketAddr, SocketAddr)>, message: String) {
        let mut event = json!({ "time": rfc3339(SystemTime::now()), "level": level });
        if let Some((local, remote)) = ends {
            event["local_ip"] = json!(local.ip());
            event["remote_ip"] = json!(remote.ip());
            if local.port() != 0 {
                event["local_port"] = json!(local.port());
                event["remote_port"] = json!(remote.port());
            }
        }
        event["message"] = json!(message);
        // A log that cannot be written must not stop the responder; the recent events still
        // show in the counters.
        let _ = writeln!(self.log, "{event}");
        let _ = self.log.flush();
        if self.recent.len() == RECENT_EVENTS {
            self.recent.pop_front();
        }
        self.recent.push_back(event);
    }

    /// Counters, IKE SAs, Child SAs and recent events, for the counters file.
    pub fn status_json(&self) -> serde_json::Value {
        let ike_sas: Vec<serde_json::Value> = self
            .responder
            .established()
            .iter()
            .map(|sa| {
                json!({
                    "tunnel": sa.tunnel,
                    "local": sa.local,
                    "remote": sa.remote,
                    "spi_i": format!("{:016x}", sa.spi_i),
                    "spi_r": format!("{:016x}", sa.spi_r),
                    "suite": sa.suite.to_string(),
                })
            })
            .collect();
        let r = self.responder.counters();
        json!({
            "counters": self.counters,
            "responder": {
                "retransmits_answered": r.retransmits,
                "out_of_window": r.out_of_window,
                "bad_icv": r.bad_icv,
                "cookies_sent": r.cookies_sent,
                "half_open_dropped": r.half_open_dropped,
                "half_open_peak": r.half_open_peak,
                "initial_contact_deletes": r.initial_contact_deletes,
                "fragments_received": r.fragments_received,
                "fragments_dropped": r.fragments_dropped,
                "messages_reassembled": r.messages_reassembled,
                "messages_fragmented": r.messages_fragmented,
                "child_rekeys_started": r.child_rekeys_started,
                "rekey_collisions": r.rekey_collisions,
            },
            "half_open": self.responder.half_open_count(),
            "ike_sas": ike_sas,
            "child_sas": self.installed,
            "events": self.recent,
        })
    }
}

fn reserve_static_spis(responder: &mut Responder, config: &Config) {
    for t in &config.ipsec_tunnels {
        for sa in t.static_sas.iter().filter(|s| s.direction == SaDirection::Inbound) {
            responder.reserve_esp_spi(sa.spi);
        }
    }
}

/// A time as RFC 3339 in UTC with milliseconds: `2026-11-23T09:15:02.123Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Days to a civil date (H. Hinnant's algorithm), valid for every date after 1970.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_dates() {
        let at = |secs: u64, ms: u64| rfc3339(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(ms));
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(1_795_000_000, 999), "2026-11-18T11:06:40.999Z");
        assert_eq!(at(4_107_542_399, 0), "2100-02-28T23:59:59.000Z");
    }

    #[test]
    fn every_child_suite_maps_to_a_dataplane_transform() {
        let suite = |encryption, integrity| ChildSuite { encryption, integrity, pfs: None };
        let cases = [
            (suite(ChildEncryption::AesGcm16 { key_bytes: 32 }, None), "aes256gcm16"),
            (suite(ChildEncryption::AesGcm16 { key_bytes: 16 }, None), "aes128gcm16"),
            (suite(ChildEncryption::AesCbc { key_bytes: 32 }, Some(ChildIntegrity::HmacSha256_128)), "aes256-sha256"),
            (suite(ChildEncryption::AesCbc { key_bytes: 16 }, Some(ChildIntegrity::HmacSha1_96)), "aes128-sha1"),
            (suite(ChildEncryption::Null, Some(ChildIntegrity::HmacSha256_128)), "null-sha256"),
        ];
        for (suite, name) in cases {
            let t = transform(&suite).unwrap();
            assert_eq!(t.to_string(), name);
            assert_eq!(
                (t.encryption_key_len(), t.integrity_key_len()),
                (suite.encryption_key_len(), suite.integrity_key_len())
            );
        }
        assert!(transform(&suite(ChildEncryption::AesCbc { key_bytes: 32 }, None)).is_err());
        assert!(
            transform(&suite(ChildEncryption::AesGcm16 { key_bytes: 32 }, Some(ChildIntegrity::HmacSha1_96))).is_err()
        );
    }
}
