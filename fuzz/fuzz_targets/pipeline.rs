//! The whole pipeline on arbitrary frames: every input ends in a verdict, never a panic, and a
//! forwarded packet still fits its buffer. Besides raw frames, inputs are shaped into GRE from the
//! customer endpoint and into plain IPv4 frames, with right header checksums where the fuzzer asks,
//! so that most of them get past the checks into decapsulation, routing, clamping and
//! encapsulation; and into ESP sealed with the inbound SA's key (raw or in UDP 4500), so that
//! they get past the ICV into the padding, trailer, selector and inner packet checks. Every frame
//! is also run through the express lane and the full pipeline alone, which must agree.
#![no_main]

use std::cell::RefCell;

use anygate::config::Config;
use anygate::esp::sink::static_sa_db;
use anygate::esp::OutboundSa;
use anygate::pipeline::{self, csum, Context, Counters, HeapPacket, Local, PacketBuf, RateLimiter, Verdict};
use anygate::tables::{SlotMap, Tables};
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

[[ipsec_tunnels]]
name = "sec1"
customer_endpoint = "198.51.100.20"
anycast_endpoint = "192.0.2.100"
interface_address = "10.212.0.2/31"
replay_protection = true

[[ipsec_tunnels.static_sas]]
spi = 0x1000
direction = "inbound"
transform = "aes128gcm16"
encryption_key = "000102030405060708090a0b0c0d0e0f10111213"
remote_ts = ["10.40.0.0/16", "2001:db8:40::/48"]

[[ipsec_tunnels.static_sas]]
spi = 0x2000
direction = "outbound"
transform = "aes128gcm16"
encryption_key = "000102030405060708090a0b0c0d0e0f10111213"
udp_encapsulation = true

[[routes]]
prefix = "10.40.0.0/16"
nexthop = "sec1"

[[routes]]
prefix = "10.20.0.0/16"
nexthop = "site1"

[[routes]]
prefix = "2001:db8:20::/48"
nexthop = "site1"
"#;

fn tables() -> &'static Tables {
    TABLES.with(|t| *t)
}

thread_local! {
    /// The tables, built once for each thread.
    static TABLES: &'static Tables = Box::leak(Box::new({
        let config = Config::parse(CONFIG).expect("fuzz config");
        Tables::build(&config, &[[2, 0, 0, 0, 1, 1]], &mut SlotMap::default())
    }));

    /// The worker state with the neighbor and the SAs (compiled once: keying is slow next to one
    /// fuzz run), and a sealer with the inbound SA's key. Built for each thread: neighbors keep
    /// the entry found last in a `Cell`.
    static SAS: RefCell<(Local, Box<OutboundSa>)> = RefCell::new({
        let config = Config::parse(CONFIG).expect("fuzz config");
        // The same slots as the tables' (built the same way).
        let mut slots = SlotMap::default();
        Tables::build(&config, &[[2, 0, 0, 0, 1, 1]], &mut slots);
        let (db, mut sealers) = static_sa_db(&config, &mut slots).expect("the tunnel's SAs");
        let mut local = Local::new(1, RateLimiter::new(1000, 1000), 0);
        local.neighbors.set(0, "192.0.2.254".parse().unwrap(), [2, 0, 0, 0, 0, 0xfe]);
        local.sas = db;
        (local, sealers.remove(0))
    });
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
/// GRE from the customer endpoint around the rest, a plain IPv4 frame, or ESP from the IPsec
/// customer whose encrypted part (inner packet, padding, trailer) is the rest.
fn shape(data: &[u8]) -> Vec<u8> {
    let Some((&mode, rest)) = data.split_first() else { return Vec::new() };
    let mut frame = vec![2, 0, 0, 0, 1, 1, 2, 0, 0, 0, 0, 0xfe, 0x08, 0x00];
    match mode % 4 {
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
        2 => {
            frame.extend_from_slice(rest);
            fix_ipv4(&mut frame, 14, mode & 0x40 == 0);
        }
        _ => {
            let udp = mode & 0x10 != 0;
            let mut esp = vec![0u8; 16];
            esp.extend_from_slice(rest);
            // GCM's trailer ends on 4 bytes; the ICV follows.
            esp.resize(16 + rest.len().max(2).div_ceil(4) * 4 + 16, 0);
            SAS.with(|s| {
                let s = s.borrow();
                let seq = s.1.reserve(1).unwrap_or(1) as u32;
                let _ = s.1.seal(&mut esp, seq);
            });
            let total = (20 + if udp { 8 } else { 0 } + esp.len()).min(usize::from(u16::MAX)) as u16;
            frame.extend_from_slice(&[0x45, 0, 0, 0, 0, 0, 0, 0, 64, if udp { 17 } else { 50 }, 0, 0]);
            frame[16..18].copy_from_slice(&total.to_be_bytes());
            frame.extend_from_slice(&[198, 51, 100, 20, 192, 0, 2, 100]);
            if udp {
                let len = (total - 20).to_be_bytes();
                frame.extend_from_slice(&[0x11, 0x94, 0x11, 0x94, len[0], len[1], 0, 0]);
            }
            frame.extend_from_slice(&esp);
            fix_ipv4(&mut frame, 14, true);
        }
    }
    frame
}

fuzz_target!(|data: &[u8]| {
    let tables = tables();
    let frame = shape(data);
    let mut pkt = HeapPacket::new(&frame[..frame.len().min(2048)]);
    SAS.with(|s| {
        let local = &mut s.borrow_mut().0;
        // Each run from the same state but for the neighbors' memo and the SAs' counters.
        local.counters = Counters::new(1);
        local.icmp_limit = RateLimiter::new(1000, 1000);
        local.ip_id = 0;
        local.resolve = None;
        run(tables, &mut pkt, local)
    });
    assert!(pkt.len() <= HeapPacket::CAPACITY);
});

fn run(tables: &Tables, pkt: &mut HeapPacket, local: &mut Local) {
    // The express lane gives a frame the full pipeline's verdict, or leaves it untouched.
    if let Err(e) = pipeline::express::differential_check(pkt.data(), 0, tables, local) {
        panic!("{e}");
    }
    // A worker with many SAs reads each frame ahead of classification: that read must hold too.
    pipeline::esp::look_ahead(std::iter::once(pkt.data()), &local.sas);
    let mut cx = Context::new(tables, local, 1);
    let verdict = pipeline::process_to_end(pkt, 0, &mut cx);
    if let Verdict::Fragment(t) = verdict {
        let mtu = usize::from(tables.tunnel(t).mtu);
        let _ = pipeline::fragment::fragment_v4(
            &*pkt,
            mtu,
            || Some(HeapPacket::new(&[])),
            |mut f| {
                if let Verdict::Crypto(job) = pipeline::tunnel_out(&mut f, t, 0x0800, &mut cx) {
                    let _ = pipeline::esp::run(&mut f, job, &mut cx);
                }
                // Outer IPv4, ESP in UDP with its largest trailer, Ethernet and a VLAN tag.
                assert!(f.len() <= mtu + 28 + 8 + 16 + 17 + 16 + 18);
            },
        );
    }
}
