//! The pipeline end to end over hand-built frames, without DPDK: each path and each drop reason.
//! Field-by-field checks against an independent implementation (scapy) are in the pcap tests.

use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::config::Config;
use crate::tables::{Neighbors, SlotMap, Tables};
use crate::wire::checksum;

pub(super) const PORT_MAC: [u8; 6] = [2, 0, 0, 0, 1, 1];
pub(super) const GW_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];
pub(super) const ANYCAST: [u8; 4] = [192, 0, 2, 100];
pub(super) const CUSTOMER: [u8; 4] = [198, 51, 100, 10];

/// A small deterministic generator for the pipeline's randomized tests, so that a failure repeats.
pub(super) struct XorShift(pub(super) u64);

impl XorShift {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

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

struct Harness {
    tables: Tables,
    local: Local,
}

impl Harness {
    fn new() -> Harness {
        let config = Config::parse(CONFIG).unwrap();
        let mut slots = SlotMap::default();
        let tables = Tables::build(&config, &[PORT_MAC], &mut slots);
        let mut local = Local::new(slots.len(), RateLimiter::new(100, 1000), 0);
        local.neighbors.set(0, "192.0.2.254".parse().unwrap(), GW_MAC);
        local.neighbors.set(0, "2001:db8::fe".parse().unwrap(), GW_MAC);
        Harness { tables, local }
    }

    /// The pipeline's view of the harness at time `now`.
    fn context(&mut self, now: u64) -> Context<'_> {
        Context::new(&self.tables, &mut self.local, now)
    }

    fn run(&mut self, frame: &[u8]) -> (Verdict, HeapPacket) {
        let mut pkt = HeapPacket::new(frame);
        let arrival = Arrival::on(&self.tables, 0);
        let mut cx = self.context(1_000_000);
        let v = process(&mut pkt, arrival, &mut cx);
        (v, pkt)
    }

    fn drops(&self, r: DropReason) -> u64 {
        self.local.counters.drops[r.index()]
    }
}

pub(super) fn ether(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = PORT_MAC.to_vec();
    f.extend_from_slice(&GW_MAC);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

pub(super) fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, ttl: u8, df: bool, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x45, 0, 0, 0, 0, 1, if df { 0x40 } else { 0 }, 0, ttl, proto, 0, 0];
    h[2..4].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    let sum = !checksum::data(&h);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

fn ipv6(src: &str, dst: &str, next: u8, hop: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.push(next);
    h.push(hop);
    h.extend_from_slice(&src.parse::<std::net::Ipv6Addr>().unwrap().octets());
    h.extend_from_slice(&dst.parse::<std::net::Ipv6Addr>().unwrap().octets());
    h.extend_from_slice(payload);
    h
}

pub(super) fn udp(len: usize) -> Vec<u8> {
    let mut u = vec![0u8; 8 + len];
    u[0..2].copy_from_slice(&1000u16.to_be_bytes());
    u[2..4].copy_from_slice(&2000u16.to_be_bytes());
    u[4..6].copy_from_slice(&((8 + len) as u16).to_be_bytes());
    u
}

fn gre_frame(inner: &[u8], proto: u16) -> Vec<u8> {
    let mut g = vec![0, 0];
    g.extend_from_slice(&proto.to_be_bytes());
    g.extend_from_slice(inner);
    ether(0x0800, &ipv4(CUSTOMER, ANYCAST, 47, 64, false, &g))
}

pub(super) fn syn(mss: u16) -> Vec<u8> {
    let mut t = vec![0u8; 24];
    t[12] = 6 << 4;
    t[13] = 0x02;
    t[20..24].copy_from_slice(&[2, 4, (mss >> 8) as u8, mss as u8]);
    t
}

#[test]
fn gre_decapsulation_routes_the_inner_packet_out() {
    let mut h = Harness::new();
    let inner = ipv4([10, 20, 0, 5], [203, 0, 113, 9], 17, 64, false, &udp(10));
    let (v, out) = h.run(&gre_frame(&inner, 0x0800));
    assert_eq!(v, Verdict::Forward(0));
    let d = out.data();
    assert_eq!(&d[0..6], &GW_MAC);
    assert_eq!(&d[6..12], &PORT_MAC);
    assert_eq!(&d[12..14], &[0x08, 0x00]);
    assert_eq!(d.len(), 14 + inner.len());
    assert_eq!(d[14 + 8], 63, "TTL decremented");
    assert_eq!(checksum::data(&d[14..34]), !0, "checksum updated");
    assert_eq!(&d[14 + 20..], &inner[20..]);
    let t = h.local.counters.tunnels[0];
    assert_eq!((t.ingress_packets, t.ingress_bytes), (1, inner.len() as u64));
}

#[test]
fn gre_decapsulation_of_ipv6() {
    let mut h = Harness::new();
    let inner = ipv6("2001:db8:20::5", "2001:db9::99", 17, 64, &udp(4));
    let (v, out) = h.run(&gre_frame(&inner, 0x86dd));
    assert_eq!(v, Verdict::Forward(0));
    let d = out.data();
    assert_eq!(&d[12..14], &[0x86, 0xdd]);
    assert_eq!(d[14 + 7], 63);
    assert_eq!(&d[14 + 8..], &inner[8..]);
}

#[test]
fn encapsulation_toward_the_customer() {
    let mut h = Harness::new();
    let inner = ipv4([203, 0, 113, 9], [10, 20, 1, 2], 17, 64, true, &udp(100));
    let (v, out) = h.run(&ether(0x0800, &inner));
    assert_eq!(v, Verdict::Forward(0));
    let d = out.data();
    assert_eq!(&d[0..6], &GW_MAC);
    let outer = &d[14..34];
    assert_eq!(outer[0], 0x45);
    assert_eq!(u16::from_be_bytes([outer[2], outer[3]]) as usize, 24 + inner.len());
    assert_eq!(outer[8], 64);
    assert_eq!(outer[9], 47);
    assert_eq!(&outer[12..16], &ANYCAST);
    assert_eq!(&outer[16..20], &CUSTOMER);
    assert_eq!(checksum::data(outer), !0);
    assert_eq!(&d[34..38], &[0, 0, 0x08, 0x00]);
    assert_eq!(d[38 + 8], 63, "inner TTL decremented");
    assert_eq!(checksum::data(&d[38..58]), !0);
    assert_eq!(h.local.counters.tunnels[0].egress_packets, 1);
}

#[test]
fn mss_is_clamped_both_ways() {
    let mut h = Harness::new();
    let inbound = ipv4([203, 0, 113, 9], [10, 20, 1, 2], 6, 64, true, &syn(1460));
    let (v, out) = h.run(&ether(0x0800, &inbound));
    assert_eq!(v, Verdict::Forward(0));
    let tcp = &out.data()[14 + 24 + 20..];
    assert_eq!(u16::from_be_bytes([tcp[22], tcp[23]]), 1360, "MTU 1400 less 40");

    let outbound = ipv4([10, 20, 1, 2], [203, 0, 113, 9], 6, 64, true, &syn(1460));
    let (v, out) = h.run(&gre_frame(&outbound, 0x0800));
    assert_eq!(v, Verdict::Forward(0));
    let tcp = &out.data()[14 + 20..];
    assert_eq!(u16::from_be_bytes([tcp[22], tcp[23]]), 1360, "MTU 1400 less 40");
}

#[test]
fn too_big_with_df_gets_fragmentation_needed_and_without_is_fragmented() {
    let mut h = Harness::new();
    let big = ipv4([203, 0, 113, 9], [10, 20, 1, 2], 17, 64, true, &udp(1400));
    let (v, out) = h.run(&ether(0x0800, &big));
    assert_eq!(v, Verdict::Forward(0), "the ICMP error goes back out");
    let d = &out.data()[14..];
    assert_eq!(d[9], 1);
    assert_eq!(&d[12..16], &ANYCAST);
    assert_eq!(&d[16..20], &[203, 0, 113, 9]);
    assert_eq!((d[20], d[21]), (3, 4));
    assert_eq!(u16::from_be_bytes([d[26], d[27]]), 1400);
    assert_eq!(checksum::data(&d[20..]), !0);
    assert_eq!(h.drops(DropReason::TooBig), 1);
    assert_eq!(h.local.counters.icmp_errors, 1);

    let big = ipv4([203, 0, 113, 9], [10, 20, 1, 2], 17, 64, false, &udp(1400));
    let (v, _) = h.run(&ether(0x0800, &big));
    assert_eq!(v, Verdict::Fragment(crate::tables::TunnelId(0)));
}

#[test]
fn ipv6_too_big_gets_packet_too_big() {
    let mut h = Harness::new();
    let big = ipv6("2001:db8:99::1", "2001:db8:20::1", 17, 64, &udp(1400));
    let (v, out) = h.run(&ether(0x86dd, &big));
    assert_eq!(v, Verdict::Forward(0));
    let d = &out.data()[14..];
    assert_eq!(d[6], 58);
    assert_eq!(d[40], 2);
    assert_eq!(u32::from_be_bytes([d[44], d[45], d[46], d[47]]), 1400);
    assert_eq!(h.drops(DropReason::TooBig), 1);
}

#[test]
fn ttl_running_out_gets_time_exceeded() {
    let mut h = Harness::new();
    let dying = ipv4([203, 0, 113, 9], [10, 20, 1, 2], 17, 1, false, &udp(8));
    let (v, out) = h.run(&ether(0x0800, &dying));
    assert_eq!(v, Verdict::Forward(0));
    assert_eq!(out.data()[14 + 20], 11);
    assert_eq!(h.drops(DropReason::TtlExceeded), 1);
}

#[test]
fn arp_requests_for_our_addresses_are_answered() {
    let mut h = Harness::new();
    let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1];
    arp.extend_from_slice(&GW_MAC);
    arp.extend_from_slice(&[192, 0, 2, 254]);
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&ANYCAST);
    let mut frame = vec![0xff; 6];
    frame.extend_from_slice(&GW_MAC);
    frame.extend_from_slice(&[0x08, 0x06]);
    frame.extend_from_slice(&arp);
    let (v, out) = h.run(&frame);
    assert_eq!(v, Verdict::Forward(0));
    let d = out.data();
    assert_eq!(&d[0..6], &GW_MAC);
    assert_eq!(&d[20..22], &[0, 2], "a reply");
    assert_eq!(&d[22..28], &PORT_MAC);
    assert_eq!(&d[28..32], &ANYCAST);
    assert_eq!(&d[38..42], &[192, 0, 2, 254]);

    frame[38..42].copy_from_slice(&[192, 0, 2, 77]);
    assert_eq!(h.run(&frame).0, Verdict::Drop(DropReason::ArpNotForUs));
    frame.truncate(30);
    assert_eq!(h.run(&frame).0, Verdict::Drop(DropReason::ArpMalformed));
}

#[test]
fn echo_to_the_anycast_endpoint_is_answered() {
    let mut h = Harness::new();
    let echo = [8u8, 0, 0xf7, 0xfe, 0, 1, 0, 0];
    let (v, out) = h.run(&ether(0x0800, &ipv4([203, 0, 113, 9], ANYCAST, 1, 64, false, &echo)));
    assert_eq!(v, Verdict::Forward(0));
    let d = &out.data()[14..];
    assert_eq!(&d[12..16], &ANYCAST);
    assert_eq!(&d[16..20], &[203, 0, 113, 9]);
    assert_eq!(d[20], 0);
    assert_eq!(checksum::data(&d[20..]), !0);
    assert_eq!(checksum::data(&d[..20]), !0);
}

#[test]
fn an_unknown_next_hop_is_punted_for_resolution() {
    let mut h = Harness::new();
    h.local.neighbors = Neighbors::default();
    let inner = ipv4([203, 0, 113, 9], [10, 20, 1, 2], 17, 64, true, &udp(10));
    let (v, _) = h.run(&ether(0x0800, &inner));
    assert_eq!(v, Verdict::Punt(PuntReason::Resolve));
    let e = h.local.resolve.take().expect("the next hop to resolve");
    assert_eq!(e.next_hop, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 254)));
    assert_eq!(h.local.counters.punts[PuntReason::Resolve.index()], 1);
}

#[test]
fn every_malformed_input_is_a_counted_drop() {
    let mut h = Harness::new();
    let inner = ipv4([10, 20, 0, 5], [203, 0, 113, 9], 17, 64, false, &udp(10));
    let good = gre_frame(&inner, 0x0800);
    let cases: Vec<(Vec<u8>, DropReason)> = vec![
        (good[..10].to_vec(), DropReason::EthernetTruncated),
        (
            {
                let mut f = good.clone();
                f[0] = 0x04;
                f
            },
            DropReason::NotOurMac,
        ),
        (
            {
                let mut f = good.clone();
                f[12..14].copy_from_slice(&[0x88, 0xcc]);
                f
            },
            DropReason::UnsupportedEthertype,
        ),
        (
            {
                let mut f = good.clone();
                f[12..14].copy_from_slice(&[0x81, 0x00]);
                f
            },
            DropReason::VlanMismatch,
        ),
        (good[..14 + 10].to_vec(), DropReason::Ipv4Malformed),
        (
            {
                let mut f = good.clone();
                f[14 + 10] ^= 0xff;
                f
            },
            DropReason::Ipv4BadChecksum,
        ),
        (gre_frame(&inner, 0x6558), DropReason::GreUnsupportedProtocol),
        (ether(0x0800, &ipv4([198, 51, 100, 11], ANYCAST, 47, 64, false, &[0, 0, 8, 0])), DropReason::GreUnknownTunnel),
        (ether(0x0800, &ipv4(CUSTOMER, ANYCAST, 47, 64, false, &[0, 0, 8])), DropReason::GreTruncated),
        (ether(0x0800, &ipv4(CUSTOMER, ANYCAST, 47, 64, false, &[0, 1, 8, 0])), DropReason::GreBadVersion),
        (
            ether(0x0800, &ipv4(CUSTOMER, ANYCAST, 47, 64, false, &[0x80, 0, 8, 0, 0, 0, 0, 0])),
            DropReason::GreBadChecksum,
        ),
        (
            ether(0x0800, &ipv4(CUSTOMER, ANYCAST, 47, 64, false, &[0x20, 0, 8, 0, 0, 0, 0, 1])),
            DropReason::GreKeyMismatch,
        ),
        (gre_frame(&inner[..15], 0x0800), DropReason::InnerMalformed),
        (ether(0x0800, &ipv4([203, 0, 113, 9], [11, 0, 0, 1], 17, 64, false, &udp(4))), DropReason::NoRoute),
        (ether(0x0800, &ipv4([203, 0, 113, 9], [224, 0, 0, 5], 17, 64, false, &udp(4))), DropReason::Martian),
        (ether(0x86dd, &[0x60, 0, 0]), DropReason::Ipv6Malformed),
        // IHL 0 with a total length of 1 (found by fuzzing: smoltcp accepts the header length).
        (
            {
                let mut f = good.clone();
                f[14] = 0x40;
                f[16..18].copy_from_slice(&1u16.to_be_bytes());
                f
            },
            DropReason::Ipv4Malformed,
        ),
    ];
    for (frame, reason) in cases {
        let before = h.drops(reason);
        assert_eq!(h.run(&frame).0, Verdict::Drop(reason), "{reason:?}");
        assert_eq!(h.drops(reason), before + 1, "{reason:?} counted");
    }
    // A fragment of a GRE packet is not reassembled.
    let mut frag = ipv4(CUSTOMER, ANYCAST, 47, 64, false, &[0, 0, 8, 0]);
    frag[6] = 0x20;
    frag[10..12].fill(0);
    let sum = !checksum::data(&frag[..20]);
    frag[10..12].copy_from_slice(&sum.to_be_bytes());
    assert_eq!(h.run(&ether(0x0800, &frag)).0, Verdict::Drop(DropReason::GreFragment));
}

#[test]
fn the_rate_limit_holds_back_icmp_errors() {
    let mut h = Harness::new();
    h.local.icmp_limit = RateLimiter::new(1, 1_000_000_000);
    let big = ipv4([203, 0, 113, 9], [10, 20, 1, 2], 17, 64, true, &udp(1400));
    assert_eq!(h.run(&ether(0x0800, &big)).0, Verdict::Forward(0));
    assert_eq!(h.run(&ether(0x0800, &big)).0, Verdict::Drop(DropReason::IcmpRateLimited));
    assert_eq!(h.drops(DropReason::TooBig), 2);
}

#[test]
fn a_batch_looks_up_each_routers_exit_again_when_the_router_changes() {
    let mut h = Harness::new();
    let cx = h.context(0);
    let gateway: IpAddr = "192.0.2.254".parse().unwrap();
    let via_gateway = (Some(crate::tables::Egress { port: 0, next_hop: gateway }), Some(GW_MAC));
    let on_link = Ipv4Addr::new(192, 0, 2, 77);
    let unresolved = (Some(crate::tables::Egress { port: 0, next_hop: IpAddr::V4(on_link) }), None);
    let mut exit = esp::RouterExit::default();
    let far = Ipv4Addr::from(CUSTOMER);
    for (router, want) in [(far, via_gateway), (far, via_gateway), (on_link, unresolved), (far, via_gateway)] {
        assert_eq!(exit.get(router, &cx), want, "{router}");
    }
}

#[test]
fn a_burst_finds_each_gre_tunnel_as_the_tables_do_in_any_order() {
    // A second tunnel from another router to the same anycast endpoint, so that a packet's
    // tunnel can change from one packet to the next within a burst.
    let config = Config::parse(&format!(
        "{CONFIG}\n[[gre_tunnels]]\nname = \"site2\"\ncustomer_endpoint = \"203.0.113.20\"\n\
         anycast_endpoint = \"192.0.2.100\"\ninterface_address = \"10.212.0.2/31\"\n"
    ))
    .unwrap();
    let mut slots = SlotMap::default();
    let tables = Tables::build(&config, &[PORT_MAC], &mut slots);
    let mut local = Local::new(slots.len(), RateLimiter::new(100, 1000), 0);
    let anycast = Ipv4Addr::from(ANYCAST);
    let pairs = [
        (anycast, Ipv4Addr::from(CUSTOMER)),
        (anycast, Ipv4Addr::new(203, 0, 113, 20)),
        // Unknown: another router, the endpoints swapped, and the pair whose key is 0.
        (anycast, Ipv4Addr::new(203, 0, 113, 21)),
        (Ipv4Addr::from(CUSTOMER), anycast),
        (Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED),
    ];
    assert!(tables.gre_tunnel(pairs[0].0, pairs[0].1).is_some());
    assert!(tables.gre_tunnel(pairs[1].0, pairs[1].1).is_some());
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for burst in 0..64 {
        let mut cx = Context::new(&tables, &mut local, burst);
        for _ in 0..32 {
            // Runs of one pair as routers send them, broken at random.
            let (a, c) = pairs[rng.below(pairs.len())];
            for _ in 0..=rng.below(3) {
                // The memo's tunnel is the tables' own entry for the id, not a copy.
                let memo = cx.gre_tunnel(a, c).map(|(id, t)| (id, std::ptr::from_ref(t)));
                let id = tables.gre_tunnel(a, c);
                assert_eq!(memo, id.map(|id| (id, std::ptr::from_ref(tables.tunnel(id)))), "{a} {c}");
            }
        }
    }
}
