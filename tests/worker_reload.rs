//! A worker's kept trains across a configuration reload, through the real DPDK pipeline: GRE
//! frames go in through a net_ring port (what is sent on it comes back on its own RX queue), the
//! worker polls it and sends into a net_null sink, and its published counters say what became of
//! every frame. A worker keeps the train a burst boarded for the bursts after it; a reload must
//! end it, so that a tunnel the new tables no longer have decapsulates nothing. One test
//! function: the EAL initialises once per process.

use std::sync::Arc;

use anygate::config::Config;
use anygate::dataplane::{Dataplane, Pipeline};
use anygate::pipeline::DropReason;
use anygate::tables::Tables;
use anygate::worker::Update;
use dpdk_bindings::{MbufBatch, BURST};

const CONFIG: &str = r#"
[dataplane]
cores = [1]
main_core = 0
mbufs = 4095
eal_args = ["--in-memory", "--no-telemetry", "--log-level=lib.eal:error"]

[[ports]]
name = "wan"
device = "net_ring0"
mac = "02:00:00:00:01:01"
address = "192.0.2.1/24"

[[ports]]
name = "sink"
device = "net_null0,no-rx=1"
address = "203.0.113.1/24"
gateway = "203.0.113.254"
gateway_mac = "02:00:00:00:02:02"

[[gre_tunnels]]
name = "site1"
customer_endpoint = "CUSTOMER"
anycast_endpoint = "192.0.2.1"
"#;

/// The Internet checksum of `b` (RFC 1071), written here apart from the pipeline's own.
fn checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = b.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 header (no options, TTL 64) before `payload`.
fn ipv4(src: [u8; 4], dst: [u8; 4], protocol: u8, id: u16, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&(20 + payload.len() as u16).to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(&[0, 0, 64, protocol, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    let sum = checksum(&h);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

/// A GRE frame from 198.51.100.10 to the anycast endpoint, to the port's MAC, its inner packet a
/// UDP datagram from 10.20.0.7 to 100.100.0.9 (which leaves by the sink's gateway).
fn gre_frame(id: u16) -> Vec<u8> {
    let mut udp = vec![0x03, 0xe8, 0x07, 0xd0, 0, 26, 0, 0];
    udp.extend_from_slice(&[0x61; 18]);
    let inner = ipv4([10, 20, 0, 7], [100, 100, 0, 9], 17, id, &udp);
    let mut gre = vec![0, 0, 0x08, 0x00];
    gre.extend_from_slice(&inner);
    let mut frame = vec![0x02, 0, 0, 0, 0x01, 0x01, 0x02, 0, 0, 0, 0, 0xfe, 0x08, 0x00];
    frame.extend_from_slice(&ipv4([198, 51, 100, 10], [192, 0, 2, 1], 47, 0, &gre));
    frame
}

fn config(customer: &str) -> Config {
    Config::parse(&CONFIG.replace("CUSTOMER", customer)).expect("configuration")
}

#[test]
fn a_reload_ends_the_kept_train() {
    let old = config("198.51.100.10");
    let devices: Vec<String> = old.ports.iter().map(|p| p.device.clone()).collect();
    // One thread polls the worker, as `anygate pcap` does.
    let dp = Dataplane::start(&old, "0", &devices, 1, false).expect("dataplane (hugepages by scripts/setup.sh)");
    let Pipeline { mut slots, mut workers, mut handles, .. } = dp.pipeline(&old);
    let (w, handle) = (&mut workers[0], &mut handles[0]);
    // A burst of the tunnel's frames sent on the ring port comes back on its RX queue.
    let burst = |first: u16| {
        let mut batch = MbufBatch::new();
        for id in first..first + BURST as u16 {
            let frame = gre_frame(id);
            let mut m = dp.pool.alloc().expect("mbuf");
            assert!(m.append(frame.len()));
            m.data_mut().copy_from_slice(&frame);
            assert!(batch.push(m).is_ok());
        }
        assert_eq!(dp.ports[0].tx_burst(0, &mut batch), BURST);
    };
    let counters = |w: &mut anygate::worker::Worker, handle: &mut anygate::worker::WorkerHandle| {
        w.publish();
        handle.counters.read().clone()
    };

    // Two bursts: the first boards the tunnel's train, the second rides the train kept.
    for first in [0, 100] {
        burst(first);
        assert_eq!(w.poll(), BURST);
    }
    let c = counters(w, handle);
    assert_eq!(c.tunnels[0].ingress_packets, 2 * BURST as u64);
    assert_eq!(c.tx_packets, 2 * BURST as u64);

    // The reload moves the tunnel to another customer endpoint: the old endpoint's frames have no
    // tunnel now, and are dropped as such, not decapsulated by the train kept from before.
    let new = config("198.51.100.99");
    let tables = Arc::new(Tables::build(&new, &dp.macs, &mut slots));
    assert!(handle.updates.push(Update::Tables(tables)).is_ok());
    assert_eq!(w.poll(), 0, "the update is applied after the poll's bursts");
    burst(200);
    assert_eq!(w.poll(), BURST);
    let c = counters(w, handle);
    assert_eq!(c.drops[DropReason::GreUnknownTunnel.index()], BURST as u64);
    assert_eq!(c.tunnels[0].ingress_packets, 2 * BURST as u64);
    assert_eq!(c.tx_packets, 2 * BURST as u64);
    w.finish();
    dp.close();
}
