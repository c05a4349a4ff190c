//! The IKEv2 handshake rate: IKE_SA_INIT and IKE_AUTH with one Child SA (group 20, AES-GCM-256,
//! PRF SHA2-384, a pre-shared key), as many as a responder completes, with their latency.
//!
//! usage: ike-bench respond --bind ADDR:PORT --seconds S
//!        ike-bench load --target ADDR:PORT --seconds S [--warmup S] [--window N]
//!
//! `respond` runs anygate's responder (the slow path's state machine, on a kernel UDP socket here)
//! until killed or S seconds have passed, and prints what it established and the CPU time it
//! took. `load` is the load generator: our initiator, keeping N handshakes in flight from one UDP
//! socket, each started again as soon as one completes; requests unanswered for a second are
//! retransmitted, handshakes not complete in 5 s count as failed; a completed one is deleted
//! (INFORMATIONAL with a Delete of the IKE SA, not timed) so that the responder's tables keep their
//! size. After the warm-up it counts the
//! handshakes that complete, and prints the rate, the latency percentiles (hdrhistogram, from the
//! first IKE_SA_INIT to the verified IKE_AUTH response) and its own CPU time, as one JSON line.
//! The same generator drives any responder with the same ID and key (strongSwan in
//! `scripts/bench-ike.sh`).

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use ike_agent::crypto::ke::KeyExchangeMethod;
use ike_agent::initiator::{Initiator, InitiatorConfig, InitiatorError, NatDetection};
use ike_agent::policy::{HalfOpenLimits, ResponderPolicy, Timers, TunnelPolicy};
use ike_agent::responder::{Event, Responder};
use ike_agent::wire::{
    EncrId, EsnId, IdType, Identification, KeMethod, PrfId, Proposal, ProtocolId, SelectorRange, TrafficSelector,
    TrafficSelectors, Transform, TransformType,
};
use serde_json::json;

/// The benchmark's key: both responders are configured with it. Not a secret of anything.
const PSK: &[u8] = b"ike-bench-shared-key-not-a-secret";
/// The generator's ID names tunnel `t1` of account `bench` in domain `bench.invalid`.
const ID: &[u8] = b"ipsec@t1.bench.bench.invalid";

#[derive(Parser, Debug)]
struct Args {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// anygate's responder on a UDP socket.
    Respond {
        #[arg(long)]
        bind: SocketAddr,
        #[arg(long)]
        seconds: u64,
    },
    /// The load generator.
    Load {
        #[arg(long)]
        target: SocketAddr,
        #[arg(long)]
        seconds: f64,
        #[arg(long, default_value_t = 1.0)]
        warmup: f64,
        /// Handshakes in flight at once.
        #[arg(long, default_value_t = 64)]
        window: usize,
    },
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    match Args::parse().mode {
        Mode::Respond { bind, seconds } => respond(bind, Duration::from_secs(seconds)),
        Mode::Load { target, seconds, warmup, window } => {
            load(target, Duration::from_secs_f64(seconds), Duration::from_secs_f64(warmup), window)
        }
    }
}

/// CPU time this process has taken (the scheduler's own account).
fn cpu_time() -> Duration {
    let text = std::fs::read_to_string("/proc/self/schedstat").unwrap_or_default();
    let nanos = text.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0);
    Duration::from_nanos(nanos)
}

fn respond(bind: SocketAddr, seconds: Duration) -> Result<(), Box<dyn std::error::Error>> {
    let SocketAddr::V4(v4) = bind else { return Err("an IPv4 address".into()) };
    let policy = ResponderPolicy {
        node_id: 1,
        account_id: "bench".into(),
        domain: "bench.invalid".into(),
        tunnels: vec![TunnelPolicy {
            name: "t1".into(),
            psk: zeroize::Zeroizing::new(PSK.to_vec()),
            anycast_endpoint: *v4.ip(),
            customer_endpoint: None,
            allow_null_cipher: false,
        }],
        // The generator is one address keeping many handshakes open: no flood limits in the way.
        half_open: HalfOpenLimits { cookie_threshold: 1 << 20, per_peer: 1 << 20, total: 1 << 20 },
        timers: Timers { liveness_after: None, ..Timers::default() },
        fragmentation: Default::default(),
    };
    let mut responder = Responder::new(policy).map_err(|e| e.to_string())?;
    let socket = UdpSocket::bind(bind)?;
    socket.set_read_timeout(Some(Duration::from_millis(5)))?;
    let start = Instant::now();
    let cpu_start = cpu_time();
    let (mut ike_sas, mut child_sas, mut timers_run) = (0u64, 0u64, start);
    let mut buffer = [0u8; 65536];
    while start.elapsed() < seconds {
        if let Ok((len, remote)) = socket.recv_from(&mut buffer) {
            responder.handle_datagram(Instant::now(), bind, remote, &buffer[..len]);
        }
        let now = Instant::now();
        if now.duration_since(timers_run) >= Duration::from_millis(100) {
            responder.handle_timeout(now);
            timers_run = now;
        }
        while let Some(transmit) = responder.poll_transmit() {
            socket.send_to(&transmit.bytes, transmit.remote)?;
        }
        while let Some(event) = responder.poll_event() {
            match event {
                Event::IkeSaEstablished(_) => ike_sas += 1,
                Event::ChildSaEstablished(_) => child_sas += 1,
                _ => {}
            }
        }
    }
    let cpu = cpu_time() - cpu_start;
    println!(
        "{}",
        json!({"ike_sas": ike_sas, "child_sas": child_sas, "cpu_seconds": cpu.as_secs_f64(),
               "cpu_per_handshake_us": if ike_sas > 0 { cpu.as_secs_f64() * 1e6 / ike_sas as f64 } else { 0.0 }})
    );
    Ok(())
}

fn initiator_config(local: SocketAddr, remote: SocketAddr) -> InitiatorConfig {
    let ike = Proposal {
        number: 1,
        protocol: ProtocolId::IKE,
        spi: Vec::new(),
        transforms: vec![
            Transform::encr(EncrId::AES_GCM_16, Some(256)),
            Transform::prf(PrfId::HMAC_SHA2_384),
            Transform::ke(TransformType::KE, KeMethod::ECP_384),
        ],
    };
    let esp = Proposal {
        number: 1,
        protocol: ProtocolId::ESP,
        spi: Vec::new(),
        transforms: vec![Transform::encr(EncrId::AES_GCM_16, Some(256)), Transform::esn(EsnId::NO_ESN)],
    };
    let selectors = |start: [u8; 4], end: [u8; 4]| TrafficSelectors {
        selectors: vec![TrafficSelector::Ipv4(SelectorRange {
            protocol: 0,
            start_port: 0,
            end_port: 65535,
            start: start.into(),
            end: end.into(),
        })],
    };
    InitiatorConfig {
        ike_proposals: vec![ike],
        ke: KeyExchangeMethod::Ecp384,
        esp_proposals: vec![esp],
        id: Identification::new(IdType::RFC822_ADDR, ID.to_vec()),
        psk: PSK.to_vec(),
        tsi: selectors([198, 51, 100, 0], [198, 51, 100, 255]),
        tsr: selectors([0; 4], [255; 4]),
        local,
        remote,
        nat_detection: NatDetection::Honest,
        initial_contact: false,
        fragment_size: None,
    }
}

/// One handshake in flight.
struct Handshake {
    initiator: Initiator,
    started: Instant,
    /// The request waiting for its response, for retransmission.
    request: Vec<u8>,
    sent: Instant,
    authenticating: bool,
}

fn load(
    target: SocketAddr,
    seconds: Duration,
    warmup: Duration,
    window: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let socket = UdpSocket::bind(("0.0.0.0", 0))?;
    socket.connect(target)?;
    socket.set_read_timeout(Some(Duration::from_millis(2)))?;
    let config = initiator_config(socket.local_addr()?, target);
    let mut flight: HashMap<u64, Handshake> = HashMap::new();
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let start = Instant::now();
    let measuring_from = start + warmup;
    let end = measuring_from + seconds;
    let (mut completed, mut failed, mut retransmits, mut refused) = (0u64, 0u64, 0u64, 0u64);
    let mut cpu_at_measure = None;
    let mut last_scan = start;
    let mut buffer = [0u8; 65536];
    loop {
        let now = Instant::now();
        if now >= measuring_from && cpu_at_measure.is_none() {
            cpu_at_measure = Some(cpu_time());
        }
        if now >= end {
            break;
        }
        while flight.len() < window {
            let mut initiator = Initiator::new(config.clone());
            let request = initiator.ike_sa_init();
            socket.send(&request)?;
            let spi = initiator.spi_i();
            flight.insert(spi, Handshake { initiator, started: now, request, sent: now, authenticating: false });
        }
        if let Ok(len) = socket.recv(&mut buffer) {
            let bytes = &buffer[..len];
            let Some(spi) = bytes.get(..8).map(|b| u64::from_be_bytes(b.try_into().unwrap_or_default())) else {
                continue;
            };
            let Some(handshake) = flight.get_mut(&spi) else { continue };
            let now = Instant::now();
            if !handshake.authenticating {
                match handshake.initiator.on_ike_sa_init_response(bytes) {
                    Ok(true) => {
                        handshake.request = handshake.initiator.ike_auth().map_err(|e| format!("{e:?}"))?;
                        handshake.authenticating = true;
                    }
                    // A cookie or another group asked for: the same SPI, again.
                    Ok(false) => handshake.request = handshake.initiator.ike_sa_init(),
                    Err(_) => {
                        refused += 1;
                        flight.remove(&spi);
                        continue;
                    }
                }
                handshake.sent = now;
                socket.send(&handshake.request)?;
            } else {
                match handshake.initiator.on_ike_auth_response(bytes) {
                    Err(InitiatorError::FragmentPending) => continue,
                    Ok(outcome) if outcome.child.is_ok() => {
                        if handshake.started >= measuring_from && now < end {
                            completed += 1;
                            latency.saturating_record(now.duration_since(handshake.started).as_micros() as u64);
                        }
                        // Ended again, so that the responder's tables stay the same size (and
                        // the tunnel under its Child SA limit); the answer is not waited for.
                        if let Ok(delete) = handshake.initiator.delete_ike_sa() {
                            socket.send(&delete)?;
                        }
                    }
                    _ => refused += 1,
                }
                flight.remove(&spi);
            }
        }
        let now = Instant::now();
        if now.duration_since(last_scan) >= Duration::from_millis(50) {
            last_scan = now;
            let mut gone = Vec::new();
            for (spi, handshake) in flight.iter_mut() {
                if now.duration_since(handshake.started) >= Duration::from_secs(5) {
                    gone.push(*spi);
                } else if now.duration_since(handshake.sent) >= Duration::from_secs(1) {
                    retransmits += 1;
                    handshake.sent = now;
                    socket.send(&handshake.request)?;
                }
            }
            for spi in gone {
                flight.remove(&spi);
                if now >= measuring_from {
                    failed += 1;
                }
            }
        }
    }
    let cpu = cpu_time() - cpu_at_measure.unwrap_or_default();
    let ms = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{}",
        json!({
            "handshakes_per_second": completed as f64 / seconds.as_secs_f64(),
            "completed": completed, "failed": failed, "refused": refused, "retransmits": retransmits,
            "window": window, "seconds": seconds.as_secs_f64(),
            "latency_ms": {"p50": ms(0.5), "p90": ms(0.9), "p99": ms(0.99), "p999": ms(0.999), "max": ms(1.0)},
            "generator_cpu_share": cpu.as_secs_f64() / seconds.as_secs_f64(),
        })
    );
    Ok(())
}
