//! The express lane against the full pipeline: the frames it is for, the frames it must leave
//! alone, and mutations of both, each checked with [`differential_check`].

use super::*;
use crate::config::Config;
use crate::pipeline::tests::{syn, udp, XorShift, ANYCAST, CUSTOMER, GW_MAC, PORT_MAC};
use crate::pipeline::{tests, DropReason, PuntReason};
use crate::tables::{Neighbors, SlotMap};
use crate::wire::checksum;

const VLAN_GW_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xfd];
const INTERNET_HOST: [u8; 4] = [203, 0, 113, 9];

// Port 0 has the default gateway; port 1 (VLAN-tagged) is where 198.51.100.0/24 is connected,
// so GRE toward the second tunnel's customer and decapsulated packets to that subnet leave tagged.
const CONFIG: &str = r#"
[[ports]]
name = "wan"
device = "net_null0"
address = "192.0.2.1/24"
gateway = "192.0.2.254"

[[ports]]
name = "tagged"
device = "net_null1"
vlan = 30
address = "198.51.100.1/24"

[[gre_tunnels]]
name = "site1"
customer_endpoint = "198.51.100.10"
anycast_endpoint = "192.0.2.100"
interface_address = "10.212.0.0/31"
mtu = 1400

[[gre_tunnels]]
name = "site2"
customer_endpoint = "198.51.100.11"
anycast_endpoint = "192.0.2.100"
mss = 0

[[gre_tunnels]]
name = "far"
customer_endpoint = "100.64.9.9"
anycast_endpoint = "192.0.2.100"

[[gre_tunnels]]
name = "far2"
customer_endpoint = "100.64.9.10"
anycast_endpoint = "192.0.2.100"

[[ipsec_tunnels]]
name = "sec1"
customer_endpoint = "198.51.100.20"
anycast_endpoint = "192.0.2.100"
mtu = 1300

[[ipsec_tunnels.static_sas]]
spi = 0x1000
direction = "inbound"
transform = "aes128gcm16"
encryption_key = "000102030405060708090a0b0c0d0e0f10111213"

[[ipsec_tunnels.static_sas]]
spi = 0x2000
direction = "outbound"
transform = "aes128gcm16"
encryption_key = "000102030405060708090a0b0c0d0e0f10111213"

[[ipsec_tunnels]]
name = "sec2"
customer_endpoint = "198.51.100.21"
anycast_endpoint = "192.0.2.100"

[[routes]]
prefix = "10.20.0.0/16"
nexthop = "site1"

[[routes]]
prefix = "10.21.0.0/16"
nexthop = "site1"

[[routes]]
prefix = "10.21.0.0/16"
nexthop = "site2"
weight = 3

[[routes]]
prefix = "10.30.0.0/16"
nexthop = "far"

[[routes]]
prefix = "10.31.0.0/16"
nexthop = "far"

[[routes]]
prefix = "10.31.0.0/16"
nexthop = "far2"

[[routes]]
prefix = "10.40.0.0/16"
nexthop = "sec1"

[[routes]]
prefix = "10.41.0.0/16"
nexthop = "sec2"
"#;

struct Setup {
    tables: Tables,
    local: Local,
}

impl Setup {
    fn check(&mut self, frame: &[u8], port: u16, ip_id: u16) -> Result<Option<Verdict>, String> {
        self.local.ip_id = ip_id;
        differential_check(frame, port, &self.tables, &mut self.local)
    }

    /// A copy of the worker state, without its SAs, with IP identification 0 and ICMP errors
    /// limited by `icmp_limit`.
    fn local_without_sas(&self, icmp_limit: RateLimiter) -> Local {
        let mut local = Local::new(0, icmp_limit, 0);
        local.neighbors = self.local.neighbors.clone();
        local.counters = self.local.counters.clone();
        local
    }

    /// What the worker makes trains with ([`boarding`]): the tables, the neighbors and the
    /// default gateway's exit.
    fn lines(&self) -> Lines<'_, '_> {
        let neighbors = &self.local.neighbors;
        Lines { tables: &self.tables, neighbors, gateway_v4: L2Exit::gateway_v4(&self.tables, neighbors) }
    }
}

fn setup() -> Setup {
    let config = Config::parse(CONFIG).unwrap();
    let mut slots = SlotMap::default();
    let tables = Tables::build(&config, &[PORT_MAC, PORT_MAC], &mut slots);
    let (sas, _) = crate::esp::sink::static_sa_db(&config, &mut slots).unwrap();
    let mut neighbors = Neighbors::default();
    neighbors.set(0, "192.0.2.254".parse().unwrap(), GW_MAC);
    neighbors.set(1, "198.51.100.10".parse().unwrap(), VLAN_GW_MAC);
    neighbors.set(1, "198.51.100.11".parse().unwrap(), VLAN_GW_MAC);
    // 100.64.9.9 is reached through 192.0.2.254 too; 198.51.100.50 (decapsulated toward the
    // tagged subnet) has no known MAC: the full pipeline resolves it.
    neighbors.set(1, "198.51.100.60".parse().unwrap(), VLAN_GW_MAC);
    let mut local = Local::new(slots.len(), RateLimiter::new(1000, 1000), 0);
    local.neighbors = neighbors;
    local.sas = sas;
    Setup { tables, local }
}

/// An IPv4 frame to our port.
fn ether(payload: &[u8]) -> Vec<u8> {
    tests::ether(0x0800, payload)
}

/// An IPv4 packet with DF set (the express lane's packets may have it).
fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, ttl: u8, payload: &[u8]) -> Vec<u8> {
    tests::ipv4(src, dst, proto, ttl, true, payload)
}

fn gre(inner: &[u8], from: [u8; 4]) -> Vec<u8> {
    let mut g = vec![0, 0, 0x08, 0x00];
    g.extend_from_slice(inner);
    ether(&ipv4(from, ANYCAST, 47, 64, &g))
}

/// Frames the express lane is for, and the port each leaves by.
fn express_frames() -> Vec<(&'static str, Vec<u8>, u16)> {
    vec![
        ("decap UDP", gre(&ipv4([10, 20, 0, 5], INTERNET_HOST, 17, 64, &udp(18)), CUSTOMER), 0),
        ("decap TCP SYN, MSS clamped", gre(&ipv4([10, 20, 0, 5], INTERNET_HOST, 6, 64, &syn(1460)), CUSTOMER), 0),
        ("decap, TTL 2", gre(&ipv4([10, 20, 0, 5], INTERNET_HOST, 17, 2, &udp(0)), CUSTOMER), 0),
        (
            "decap toward the tagged port",
            gre(&ipv4([10, 20, 0, 5], [198, 51, 100, 60], 17, 64, &udp(30)), [198, 51, 100, 11]),
            1,
        ),
        ("encap UDP", ether(&ipv4(INTERNET_HOST, [10, 20, 1, 2], 17, 64, &udp(100))), 1),
        ("encap TCP SYN, MSS clamped", ether(&ipv4(INTERNET_HOST, [10, 20, 1, 2], 6, 64, &syn(1460))), 1),
        ("encap over ECMP", ether(&ipv4(INTERNET_HOST, [10, 21, 1, 2], 17, 64, &udp(10))), 1),
        ("encap via the gateway", ether(&ipv4(INTERNET_HOST, [10, 30, 1, 2], 17, 64, &udp(10))), 0),
        ("encap at the MTU", ether(&ipv4(INTERNET_HOST, [10, 20, 1, 2], 17, 64, &udp(1400 - 28))), 1),
    ]
}

/// Frames the express lane must leave to the full pipeline.
fn declined_frames() -> Vec<(&'static str, Vec<u8>)> {
    let decap = |inner: Vec<u8>| gre(&inner, CUSTOMER);
    let plain = |dst: [u8; 4]| ether(&ipv4(INTERNET_HOST, dst, 17, 64, &udp(10)));
    let mut options = ipv4(INTERNET_HOST, [10, 20, 1, 2], 17, 64, &udp(10));
    options[0] = 0x46;
    let mut fragment = ipv4(INTERNET_HOST, [10, 20, 1, 2], 17, 64, &udp(10));
    fragment[6] = 0x20;
    let mut bad_sum = ether(&ipv4(INTERNET_HOST, [10, 20, 1, 2], 17, 64, &udp(10)));
    bad_sum[24] ^= 1;
    let mut gre_key = gre(&ipv4([10, 20, 0, 5], INTERNET_HOST, 17, 64, &udp(8)), CUSTOMER);
    gre_key[34] = 0x20;
    let mut gre_v6 = gre(&ipv4([10, 20, 0, 5], INTERNET_HOST, 17, 64, &udp(8)), CUSTOMER);
    gre_v6[36..38].copy_from_slice(&[0x86, 0xdd]);
    let mut broadcast = plain([10, 20, 1, 2]);
    broadcast[0..6].fill(0xff);
    let mut other_mac = plain([10, 20, 1, 2]);
    other_mac[5] = 9;
    let mut tagged = plain([10, 20, 1, 2]);
    tagged.splice(12..12, [0x81, 0x00, 0x00, 30]);
    vec![
        ("no route", plain([172, 16, 0, 1])),
        ("over an IPsec tunnel's MTU", ether(&ipv4(INTERNET_HOST, [10, 40, 1, 2], 17, 64, &udp(1300 - 27)))),
        ("over the MTU", ether(&ipv4(INTERNET_HOST, [10, 20, 1, 2], 17, 64, &udp(1400 - 27)))),
        ("TTL 1", ether(&ipv4(INTERNET_HOST, [10, 20, 1, 2], 17, 1, &udp(10)))),
        (
            "an echo request to the anycast endpoint",
            ether(&ipv4(INTERNET_HOST, ANYCAST, 1, 64, &[8, 0, 0xf7, 0xff, 0, 0, 0, 0])),
        ),
        ("to a tunnel's inside address", plain([10, 212, 0, 0])),
        ("from a martian", ether(&ipv4([127, 0, 0, 1], [10, 20, 1, 2], 17, 64, &udp(10)))),
        ("to the subnet's broadcast", plain([192, 0, 2, 255])),
        ("IPv4 options", ether(&options)),
        ("a fragment", ether(&fragment)),
        ("a bad checksum", bad_sum),
        ("a broadcast frame", broadcast),
        ("another station's frame", other_mac),
        ("a VLAN tag on an untagged port", tagged),
        (
            "GRE from an unknown endpoint",
            gre(&ipv4([10, 20, 0, 5], INTERNET_HOST, 17, 64, &udp(8)), [198, 51, 100, 99]),
        ),
        ("GRE with a key", gre_key),
        ("GRE with IPv6 announced", gre_v6),
        ("decap into a customer prefix", decap(ipv4([10, 20, 0, 5], [10, 30, 0, 1], 17, 64, &udp(8)))),
        ("decap to a tunnel's inside address", decap(ipv4([10, 20, 0, 5], [10, 212, 0, 0], 1, 64, &[8, 0, 0, 0]))),
        ("decap, TTL 1", decap(ipv4([10, 20, 0, 5], INTERNET_HOST, 17, 1, &udp(8)))),
        ("decap, unknown neighbor", decap(ipv4([10, 20, 0, 5], [198, 51, 100, 50], 17, 64, &udp(8)))),
        ("decap, inner martian", decap(ipv4([10, 20, 0, 5], [224, 0, 0, 5], 17, 64, &udp(8)))),
    ]
}

#[test]
fn the_express_lane_finishes_its_frames_as_the_full_pipeline_does() {
    let mut s = setup();
    for (what, frame, port) in express_frames() {
        assert_eq!(s.check(&frame, 0, 7), Ok(Some(Verdict::Forward(port))), "{what}");
    }
}

#[test]
fn into_ipsec_tunnels_the_express_lane_gives_the_full_pipelines_job_or_drop() {
    let mut s = setup();
    let to = |dst: [u8; 4], proto: u8, payload: &[u8]| ether(&ipv4(INTERNET_HOST, dst, proto, 64, payload));
    for frame in [to([10, 40, 1, 2], 17, &udp(100)), to([10, 40, 1, 2], 6, &syn(1460))] {
        let verdict = s.check(&frame, 0, 7);
        assert!(matches!(verdict, Ok(Some(Verdict::Crypto(esp::EspJob::Encrypt { .. })))), "{verdict:?}");
    }
    // A tunnel without an outbound SA: the same counted drop.
    let verdict = s.check(&to([10, 41, 1, 2], 17, &udp(10)), 0, 7);
    assert_eq!(verdict, Ok(Some(Verdict::Drop(DropReason::EspNoSa))));
}

#[test]
fn esp_and_udp_for_our_addresses_get_the_full_pipelines_classification() {
    let mut s = setup();
    let router = [198, 51, 100, 20];
    // ESP header (SPI, sequence number), IV and a body with its ICV: long enough to decrypt.
    let esp = |spi: u32| {
        let mut e = spi.to_be_bytes().to_vec();
        e.extend([0, 0, 0, 1]);
        e.resize(8 + 8 + 48 + 16, 0x5a);
        e
    };
    let in_udp = |dport: u16, payload: &[u8]| {
        let mut u = vec![0x11, 0x94];
        u.extend(dport.to_be_bytes());
        u.extend(((8 + payload.len()) as u16).to_be_bytes());
        u.extend([0, 0]);
        u.extend(payload);
        u
    };
    let decrypt = |v: &Result<Option<Verdict>, String>| matches!(v, Ok(Some(Verdict::Crypto(esp::EspJob::Decrypt { esp, .. }))) if *esp == 20 || *esp == 28);
    let v = s.check(&ether(&ipv4(router, ANYCAST, 50, 64, &esp(0x1000))), 0, 7);
    assert!(decrypt(&v), "raw ESP: {v:?}");
    let v = s.check(&ether(&ipv4(router, ANYCAST, 17, 64, &in_udp(4500, &esp(0x1000)))), 0, 7);
    assert!(decrypt(&v), "ESP in UDP: {v:?}");
    let cases = [
        (ether(&ipv4(router, ANYCAST, 50, 64, &esp(0x1001))), Verdict::Drop(DropReason::EspUnknownSpi)),
        (ether(&ipv4(router, ANYCAST, 50, 64, &esp(0x1000)[..30])), Verdict::Drop(DropReason::EspMalformed)),
        (ether(&ipv4(router, ANYCAST, 17, 64, &in_udp(4500, &[0xff]))), Verdict::Drop(DropReason::NatKeepalive)),
        (ether(&ipv4(router, ANYCAST, 17, 64, &in_udp(4500, &[0, 0, 0, 0, 1]))), Verdict::Punt(PuntReason::Ike)),
        (ether(&ipv4(router, ANYCAST, 17, 64, &in_udp(500, &[1; 28]))), Verdict::Punt(PuntReason::Ike)),
        (ether(&ipv4(router, [192, 0, 2, 1], 17, 64, &in_udp(53, &[1; 8]))), Verdict::Punt(PuntReason::HostBound)),
    ];
    for (frame, want) in cases {
        assert_eq!(s.check(&frame, 0, 7), Ok(Some(want)));
    }
}

#[test]
fn the_express_lane_leaves_everything_else_untouched() {
    let mut s = setup();
    for (what, frame) in declined_frames() {
        assert_eq!(s.check(&frame, 0, 7), Ok(None), "{what}");
    }
    // Nothing is taken on a tagged port.
    let (_, frame, _) = &express_frames()[4];
    assert_eq!(s.check(frame, 1, 7), Ok(None));
}

/// Whether a packet that came out of tunnel `id` (`packet`: its IPv4 header first, as ESP
/// decryption leaves it) leaves by [`exit_to_port`] and [`leave`] as by the full pipeline's
/// check and forwarding, or is declined untouched. Gives whether it was taken.
fn exit_agrees(s: &Setup, packet: &[u8], id: TunnelId) -> bool {
    let mut local = s.local_without_sas(RateLimiter::new(1000, 1000));
    let mut cx = Context::new(&s.tables, &mut local, 1);
    let mut express = HeapPacket::new(packet);
    let exit = packet.first_chunk::<20>().and_then(|h| exit_to_port(h, packet.len(), s.tables.tunnel(id).mss, &cx));
    let Some(port) = exit.and_then(|exit| leave(&mut express, 0, exit)) else {
        assert_eq!(express.data(), packet, "declined untouched");
        return false;
    };
    let mut full = HeapPacket::new(packet);
    let h = ipv4::check(full.data(), DropReason::InnerMalformed).expect("a checked header");
    full.truncate(h.total);
    assert_eq!(ipv4::forward(&mut full, &h, crate::pipeline::Origin::Tunnel(id), &mut cx), Verdict::Forward(port));
    assert_eq!(express.data(), full.data(), "{packet:02x?}");
    true
}

#[test]
fn decrypted_packets_leave_by_a_port_as_the_full_pipeline_sends_them() {
    let s = setup();
    let sec1 = TunnelId(s.tables.tunnels.iter().position(|t| t.name == "sec1").unwrap() as u32);
    let cases = [
        (ipv4([10, 40, 0, 5], INTERNET_HOST, 17, 64, &udp(18)), true),
        (ipv4([10, 40, 0, 5], INTERNET_HOST, 6, 64, &syn(1460)), true),
        (ipv4([10, 40, 0, 5], [198, 51, 100, 60], 17, 64, &udp(3)), true),
        (ipv4([10, 40, 0, 5], INTERNET_HOST, 17, 1, &udp(18)), false),
        (ipv4([10, 40, 0, 5], [10, 20, 0, 1], 17, 64, &udp(18)), false),
        (ipv4([10, 40, 0, 5], [192, 0, 2, 100], 17, 64, &udp(18)), false),
        (ipv4([10, 40, 0, 5], [198, 51, 100, 50], 17, 64, &udp(18)), false),
    ];
    for (packet, taken) in &cases {
        assert_eq!(exit_agrees(&s, packet, sec1), *taken, "{packet:02x?}");
    }
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut taken = 0;
    for _ in 0..20_000 {
        let mut packet = cases[rng.below(cases.len())].0.clone();
        let at = rng.below(packet.len());
        packet[at] = rng.next() as u8;
        if rng.below(2) == 0 {
            fix_checksum(&mut packet, 0);
        }
        if rng.below(4) == 0 {
            packet.truncate(rng.below(packet.len() + 1));
        }
        taken += usize::from(exit_agrees(&s, &packet, sec1));
    }
    assert!(taken > 1000, "{taken} taken");
}

#[test]
fn the_express_lane_rewrites_as_the_tests_of_the_full_pipeline_expect() {
    // One case checked field by field, beside the differential checks: a clamped SYN decapsulated.
    let s = setup();
    let mut pkt = HeapPacket::new(&express_frames()[1].1);
    let mut local = s.local_without_sas(RateLimiter::new(1, 1));
    let mut cx = Context::new(&s.tables, &mut local, 0);
    assert_eq!(forward(&mut pkt, Arrival::on(&s.tables, 0), &mut cx), Some(Verdict::Forward(0)));
    let d = pkt.data();
    assert_eq!((&d[0..6], &d[6..12], &d[12..14]), (&GW_MAC[..], &PORT_MAC[..], &[8u8, 0][..]));
    assert_eq!(d.len(), 14 + 20 + 24);
    assert_eq!(d[14 + 8], 63);
    assert_eq!(checksum::data(&d[14..34]), !0);
    assert_eq!(u16::from_be_bytes([d[34 + 22], d[34 + 23]]), 1360, "MSS clamped to the MTU less 40");
    assert_eq!(local.counters.tunnels[0].ingress_packets, 1);
}

#[test]
fn mutated_frames_are_finished_alike_or_left_alone() {
    let mut s = setup();
    let mut bases: Vec<Vec<u8>> = express_frames().into_iter().map(|f| f.1).collect();
    bases.extend(declined_frames().into_iter().map(|f| f.1));
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let (mut taken, mut runs) = (0, 0);
    for base in &bases {
        for _ in 0..4000 {
            let frame = mutated(base, &mut rng, false);
            let port = if rng.below(8) == 0 { 1 } else { 0 };
            match s.check(&frame, port, rng.next() as u16) {
                Ok(Some(_)) => taken += 1,
                Ok(None) => {}
                Err(e) => panic!("{e}\nframe: {frame:02x?}"),
            }
            runs += 1;
        }
    }
    // The mutations leave many frames the express lane takes: the agreement is tested, not vacuous.
    assert!(taken > runs / 20, "{taken} of {runs} taken");
}

#[test]
fn a_trains_frames_are_finished_as_the_full_pipeline_does_and_the_rest_left_alone() {
    let mut s = setup();
    // The trains each base would start (the express lane's frames that leave by the untagged
    // port start one; the declined frames, some of a known tunnel or prefix, try their checks
    // one by one).
    let mut bases: Vec<Vec<u8>> = express_frames().into_iter().map(|f| f.1).collect();
    for (what, base, port) in express_frames() {
        let trains = usize::from(port == 0);
        assert_eq!(train_check(&base, &base, 0, &s.tables, &mut s.local), Ok(trains), "{what}");
    }
    bases.extend(declined_frames().into_iter().map(|f| f.1));
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let (mut taken, mut runs) = (0, 0);
    for base in &bases {
        for _ in 0..4000 {
            let frame = mutated(base, &mut rng, true);
            match train_check(base, &frame, 0, &s.tables, &mut s.local) {
                Ok(n) => taken += n,
                Err(e) => panic!("{e}\nframe: {frame:02x?}"),
            }
            runs += 1;
        }
    }
    // A good part of the mutations of the train's own frames are taken: the agreement is tested,
    // not vacuous.
    assert!(taken > 4 * 4000 / 10, "{taken} of {runs} taken");
    // Another tunnel's frame, which the express lane takes, is not this train's; nor is a frame
    // on the tagged port.
    let other = gre(&ipv4([10, 20, 0, 5], INTERNET_HOST, 17, 64, &udp(8)), [198, 51, 100, 11]);
    assert_eq!(s.check(&other, 0, 1), Ok(Some(Verdict::Forward(0))));
    assert_eq!(train_check(&bases[0], &other, 0, &s.tables, &mut s.local), Ok(0));
    assert_eq!(train_check(&bases[0], &bases[0], 1, &s.tables, &mut s.local), Ok(0));
    // A SYN through a tunnel that clamps no MSS (site2's) keeps its MSS in a train too, as the
    // full pipeline leaves it; through one that clamps (site1's), it is clamped alike.
    for endpoint in [[198, 51, 100, 11], [198, 51, 100, 10]] {
        let syn = gre(&ipv4([10, 20, 0, 5], INTERNET_HOST, 6, 64, &tests::syn(1460)), endpoint);
        assert_eq!(train_check(&syn, &syn, 0, &s.tables, &mut s.local), Ok(1), "{endpoint:?}");
    }
    // Another prefix's frame is not the train's, nor is one to a shared prefix.
    let via_gateway = &express_frames()[7].1;
    for dst in [[10, 30, 200, 1], [10, 20, 1, 2], [10, 21, 1, 2]] {
        let frame = ether(&ipv4(INTERNET_HOST, dst, 17, 64, &udp(10)));
        assert_eq!(
            train_check(via_gateway, &frame, 0, &s.tables, &mut s.local),
            Ok(usize::from(dst[1] == 30)),
            "{dst:?}"
        );
    }
    // Up to the tunnel's MTU (1476), not over it.
    for (payload, trains) in [(1476 - 28, 1), (1476 - 27, 0)] {
        let frame = ether(&ipv4(INTERNET_HOST, [10, 30, 1, 2], 17, 64, &udp(payload)));
        assert_eq!(train_check(via_gateway, &frame, 0, &s.tables, &mut s.local), Ok(trains), "{payload}");
    }
    // A packet whose TTL runs out (0 or 1) is neither train's, in either direction; one of 2 is.
    let decap = &bases[0];
    for ttl in [0, 1, 2] {
        let plain = ether(&ipv4(INTERNET_HOST, [10, 30, 1, 2], 17, ttl, &udp(10)));
        let inner = gre(&ipv4([10, 20, 0, 5], INTERNET_HOST, 17, ttl, &udp(8)), CUSTOMER);
        for (first, frame) in [(via_gateway, &plain), (decap, &inner)] {
            assert_eq!(train_check(first, frame, 0, &s.tables, &mut s.local), Ok(usize::from(ttl == 2)), "{ttl}");
        }
    }
    // A martian source is neither train's, nor is one in a block the tables hold special (a
    // port's subnet here), which the express lane forwards: the trains test a source by its /16
    // block alone.
    for (src, forwarded) in [([0, 0, 0, 0], false), ([127, 0, 0, 1], false), ([224, 0, 0, 5], false)]
        .into_iter()
        .chain([([255, 255, 255, 255], false), ([198, 51, 100, 77], true), ([203, 0, 113, 9], true)])
    {
        let plain = ether(&ipv4(src, [10, 30, 1, 2], 17, 64, &udp(10)));
        let inner = gre(&ipv4(src, INTERNET_HOST, 17, 64, &udp(8)), CUSTOMER);
        for (first, frame) in [(via_gateway, &plain), (decap, &inner)] {
            let ordinary = src == INTERNET_HOST;
            assert_eq!(train_check(first, frame, 0, &s.tables, &mut s.local), Ok(usize::from(ordinary)), "{src:?}");
            let verdict = s.check(frame, 0, 1).map(|v| matches!(v, Some(Verdict::Forward(_))));
            assert_eq!(verdict, Ok(forwarded), "{src:?}");
        }
    }
    // Nor is GRE to an address in the prefix (which is not decapsulated).
    let gre_in_prefix = ether(&ipv4(INTERNET_HOST, [10, 30, 1, 2], IP_PROTOCOL_GRE, 64, &udp(10)));
    assert_eq!(train_check(via_gateway, &gre_in_prefix, 0, &s.tables, &mut s.local), Ok(0));
}

/// The train a run of received frames boards: a tunnel's where its first two frames are that
/// tunnel's (toward the default gateway), none where they are two tunnels' or two kinds.
#[test]
fn a_run_boards_a_tunnels_train_when_its_first_two_frames_are_the_tunnels() {
    let s = setup();
    let lines = s.lines();
    let ours = gre(&ipv4([10, 20, 0, 5], INTERNET_HOST, 17, 64, &udp(8)), CUSTOMER);
    let ours_tcp = gre(&ipv4([10, 20, 0, 6], INTERNET_HOST, 6, 9, &syn(1460)), CUSTOMER);
    let other = gre(&ipv4([10, 20, 0, 5], INTERNET_HOST, 17, 64, &udp(8)), [198, 51, 100, 11]);
    let plain = ether(&ipv4(INTERNET_HOST, [10, 30, 1, 2], 17, 64, &udp(10)));
    let board = |first: &[u8], second: &[u8]| match boarding(first, second, Arrival::on(&s.tables, 0), &lines) {
        Some(train::AnyTrain::Decap(train)) => Some(train.key()),
        Some(train::AnyTrain::Encap(train)) => panic!("GRE frames board prefix {}'s train", train.prefix()),
        None => None,
    };
    let key = |from: [u8; 4]| crate::tables::endpoints_key(ANYCAST.into(), from.into());
    assert_eq!(board(&ours, &ours_tcp), Some(key(CUSTOMER)));
    assert_eq!(board(&other, &other), Some(key([198, 51, 100, 11])));
    // Two tunnels' frames, a tunnel's and a plain one, a frame cut short: none.
    assert_eq!(board(&ours, &other), None);
    assert_eq!(board(&other, &ours), None);
    assert_eq!(board(&ours, &plain), None);
    assert_eq!(board(&ours[..40], &ours), None);
    assert_eq!(board(&ours, &ours[..40]), None);
}

/// As above, for encapsulation: a prefix's one GRE tunnel makes a train; a prefix that tunnels
/// share by flow, one whose tunnel leaves by a tagged port, or two prefixes' frames never do.
#[test]
fn a_run_boards_a_prefixs_train_when_its_one_route_is_into_a_gre_tunnel() {
    let s = setup();
    let lines = s.lines();
    let frame = |dst: [u8; 4]| ether(&ipv4(INTERNET_HOST, dst, 17, 64, &udp(10)));
    let arrival = Arrival::on(&s.tables, 0);
    let board = |first: [u8; 4], second: [u8; 4]| match boarding(&frame(first), &frame(second), arrival, &lines) {
        Some(train::AnyTrain::Encap(train)) => Some(train.prefix()),
        Some(train::AnyTrain::Decap(train)) => panic!("plain frames board tunnel {:x}'s train", train.key()),
        None => None,
    };
    let prefix = |dst: [u8; 4]| s.tables.routes.prefix_v4(dst.into());
    assert_eq!(board([10, 30, 1, 2], [10, 30, 9, 9]), Some(prefix([10, 30, 0, 0])));
    // Shared by two tunnels (ECMP), both reached through the gateway.
    assert_eq!(board([10, 31, 1, 1], [10, 31, 1, 2]), None);
    // Leaving by the tagged port.
    assert_eq!(board([10, 21, 1, 1], [10, 21, 1, 2]), None);
    // Two prefixes.
    assert_eq!(board([10, 30, 1, 2], [10, 31, 1, 1]), None);
    assert_eq!(board([10, 31, 1, 1], [10, 30, 1, 2]), None);
}

/// `base` changed one to four times (a byte of the headers, the length cut or grown), then its
/// checksums made right again or not. `aimed`: some changes also set a header byte to a value
/// the checks are about, and the checksums are made right more often (3 in 4, else 1 in 2).
fn mutated(base: &[u8], rng: &mut XorShift, aimed: bool) -> Vec<u8> {
    let mut frame = base.to_vec();
    for _ in 0..=rng.below(3) {
        match rng.below(if aimed { 6 } else { 5 }) {
            0..=2 if !frame.is_empty() => {
                let at = rng.below(frame.len().min(80));
                frame[at] = rng.next() as u8;
            }
            3 if aimed && frame.len() > 58 => {
                let at = 14 + rng.below(44);
                frame[at] = [0, 1, 2, 6, 0x40, 0x45, 0xff][rng.below(7)];
            }
            n if n <= 3 + usize::from(aimed) => frame.truncate(rng.below(frame.len() + 1)),
            _ => frame.extend((0..rng.below(40)).map(|_| rng.next() as u8)),
        }
    }
    let fix = if aimed { rng.below(4) != 0 } else { rng.below(2) == 0 };
    if fix {
        fix_checksum(&mut frame, 14);
        fix_checksum(&mut frame, 38);
    }
    frame
}

fn fix_checksum(frame: &mut [u8], at: usize) {
    if frame.len() >= at + 20 && frame[at] == 0x45 {
        frame[at + 10..at + 12].fill(0);
        let sum = !checksum::data(&frame[at..at + 20]);
        frame[at + 10..at + 12].copy_from_slice(&sum.to_be_bytes());
    }
}

#[test]
fn a_burst_finds_each_customer_routes_one_tunnel_as_the_tables_do_in_any_order() {
    // Single routes to GRE and IPsec tunnels, a prefix that two tunnels share, no route, and the
    // second address of a prefix, so that a packet's route can change from one packet to the
    // next within a burst.
    let s = setup();
    let destinations: Vec<Ipv4Addr> =
        ["10.20.0.5", "10.20.200.1", "10.21.0.7", "10.30.1.1", "10.40.0.9", "10.41.3.3", "11.0.0.1"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
    // The tables' own answer: the prefix's tunnel when it has exactly one.
    let single = |dst: Ipv4Addr| {
        let hops = s.tables.routes.lookup_v4(dst).filter(|h| !h.is_multipath())?;
        let id = hops.pick(0);
        Some((id, std::ptr::from_ref(s.tables.tunnel(id))))
    };
    assert!(destinations.iter().filter(|d| single(**d).is_some()).count() >= 4);
    assert!(
        single("10.21.0.7".parse().unwrap()).is_none()
            && s.tables.routes.lookup_v4("10.21.0.7".parse().unwrap()).is_some()
    );
    let mut local = s.local_without_sas(RateLimiter::new(1, 1));
    let mut rng = XorShift(0x6a09_e667_f3bc_c908);
    for burst in 0..64 {
        let mut cx = Context::new(&s.tables, &mut local, burst);
        for _ in 0..32 {
            let dst = destinations[rng.below(destinations.len())];
            for _ in 0..=rng.below(3) {
                let prefix = s.tables.routes.prefix_v4(dst);
                let memo = cx.single_route_v4(prefix).map(|(id, t)| (id, std::ptr::from_ref(t)));
                assert_eq!(memo, single(dst), "{dst}");
            }
        }
    }
}
