//! The whole pipeline on arbitrary frames: every input ends in a verdict, never a panic, and a
//! forwarded packet still fits its buffer.
#![no_main]

use std::sync::OnceLock;

use anygate::config::Config;
use anygate::pipeline::{self, Context, Counters, HeapPacket, PacketBuf, RateLimiter, Verdict};
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

fuzz_target!(|data: &[u8]| {
    let (tables, neighbors) = tables();
    // The first byte chooses whether the frame is addressed to our MAC, so most inputs get past L2.
    let mut frame = data.to_vec();
    if frame.len() >= 6 && frame[0] & 1 == 0 {
        frame[0..6].copy_from_slice(&[2, 0, 0, 0, 1, 1]);
    }
    let mut pkt = HeapPacket::new(&frame[..frame.len().min(2048)]);
    let mut counters = Counters::new(1);
    let mut limiter = RateLimiter::new(1000, 1000);
    let mut ip_id = 0;
    let mut cx =
        Context { tables, neighbors, counters: &mut counters, icmp_limit: &mut limiter, now: 1, ip_id: &mut ip_id };
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
                    counters: &mut counters,
                    icmp_limit: &mut limiter,
                    now: 1,
                    ip_id: &mut ip_id,
                };
                let _ = pipeline::gre::encapsulate(&mut f, t, 0x0800, &mut cx);
                assert!(f.len() <= mtu + 24 + 18);
            },
        );
    }
    assert!(pkt.len() <= HeapPacket::CAPACITY);
});
