//! The whole pipeline on arbitrary frames: every input ends in a verdict, never a panic, and a
//! forwarded packet still fits its buffer. Besides raw frames, inputs are shaped into GRE from the
//! customer endpoint and into plain IPv4 frames, with right header checksums where the fuzzer asks,
//! so that most of them get past the checks into decapsulation, routing, clamping and
//! encapsulation.
#![no_main]

use std::sync::OnceLock;

use anygate::config::Config;
use anygate::esp::SaDb;
use anygate::pipeline::{self, csum, Context, Counters, HeapPacket, PacketBuf, RateLimiter, Verdict};
use anygate::tables::{Neighbors, SlotMap, Tables};
use libfuzzer_sys::fuzz_target;

const CONFIG: &str = r#"
[[ports]]
name = "wan"
device = "net_null0"
address = "192.0.2.1/24"
gateway = "192.0.2.254"
address6 = "2001:db8::1/64"
gateway6 = "2001:db8::fe"

[[gre_tunnels]]
name = "site1"
customer_endpoint = "198.51.100.10"
anycast_endpoint = "192.0.2.100"
interface_address = "10.212.0.0/31"
mtu = 1400

[[routes]]
prefix = "10.20.0.0/16"
nexthop = "site1"

[[routes]]
prefix = "2001:db8:20::/48"
nexthop = "site1"
"#;

fn tables() -> &'static (Tables, Neighbors) {
    static T: OnceLock<(Tables, Neighbors)> = OnceLock::new();
    T.get_or_init(|| {
        let config = Config::parse(CONFIG).expect("fuzz config");
        let tables = Tables::build(&config, &[[2, 0, 0, 0, 1, 1]], &mut SlotMap::default());
        let mut n = Neighbors::default();
        n.set(0, "192.0.2.254".parse().unwrap(), [2, 0, 0, 0, 0, 0xfe]);
        (tables, n)
    })
}

/// Set the checksum of an IPv4 header at `at`, when the fuzzer's `fix` says so.
fn fix_ipv4(frame: &mut [u8], at: usize, fix: bool) {
    if fix && frame.len() >= at + 20 {
        let ihl = usize::from(frame[at] & 0xf) * 4;
        if ihl >= 20 && frame.len() >= at + ihl {
            frame[at + 10..at + 12].fill(0);
            let sum = !csum::sum(&frame[at..at + ihl]);
            frame[at + 10..at + 12].copy_from_slice(&sum.to_be_bytes());
        }
    }
}

/// The frame for an input: the first byte chooses raw bytes (addressed to our MAC when unicast),
/// GRE from the customer endpoint around the rest, or a plain IPv4 frame.
fn shape(data: &[u8]) -> Vec<u8> {
    let Some((&mode, rest)) = data.split_first() else { return Vec::new() };
    let mut frame = vec![2, 0, 0, 0, 1, 1, 2, 0, 0, 0, 0, 0xfe, 0x08, 0x00];
    match mode % 3 {
        0 => {
            let mut raw = rest.to_vec();
            if raw.len() >= 6 && raw[0] & 1 == 0 {
                raw[0..6].copy_from_slice(&frame[0..6]);
            }
            return raw;
        }
        1 => {
            let total = (20 + 4 + rest.len()).min(usize::from(u16::MAX)) as u16;
            frame.extend_from_slice(&[0x45, 0, 0, 0, 0, 0, 0, 0, 64, 47, 0, 0]);
            frame[16..18].copy_from_slice(&total.to_be_bytes());
            frame.extend_from_slice(&[198, 51, 100, 10, 192, 0, 2, 100]);
            // GRE without options for IPv4 or IPv6 inside, or with the fuzzer's flags.
            let gre = match (mode >> 2) & 3 {
                0 => [0, 0, 0x08, 0x00],
                1 => [0, 0, 0x86, 0xdd],
                _ => [mode & 0xb0, 0, 0x08, 0x00],
            };
            frame.extend_from_slice(&gre);
            frame.extend_from_slice(rest);
            fix_ipv4(&mut frame, 14, mode & 0x40 == 0);
            fix_ipv4(&mut frame, 38, mode & 0x80 == 0);
        }
        _ => {
            frame.extend_from_slice(rest);
            fix_ipv4(&mut frame, 14, mode & 0x40 == 0);
        }
    }
    frame
}

fuzz_target!(|data: &[u8]| {
    let (tables, neighbors) = tables();
    let frame = shape(data);
    let mut pkt = HeapPacket::new(&frame[..frame.len().min(2048)]);
    let mut counters = Counters::new(1);
    let mut limiter = RateLimiter::new(1000, 1000);
    let mut ip_id = 0;
    let mut sas = SaDb::default();
    let mut cx = Context {
        tables,
        neighbors,
        sas: &mut sas,
        counters: &mut counters,
        icmp_limit: &mut limiter,
        now: 1,
        ip_id: &mut ip_id,
    };
    let verdict = pipeline::process(&mut pkt, 0, &mut cx);
    if let Verdict::Fragment(t) = verdict {
        let mtu = usize::from(tables.tunnel(t).mtu);
        let _ = pipeline::fragment::fragment_v4(
            &pkt,
            mtu,
            || Some(HeapPacket::new(&[])),
            |mut f| {
                let mut cx = Context {
                    tables,
                    neighbors,
                    sas: &mut sas,
                    counters: &mut counters,
                    icmp_limit: &mut limiter,
                    now: 1,
                    ip_id: &mut ip_id,
                };
                let _ = pipeline::tunnel_out(&mut f, t, 0x0800, &mut cx);
                assert!(f.len() <= mtu + 24 + 18);
            },
        );
    }
    assert!(pkt.len() <= HeapPacket::CAPACITY);
});
