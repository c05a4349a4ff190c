//! Micro-benchmarks of the per-packet functions on heap packets (no DPDK): GRE decapsulation and
//! encapsulation through the whole pipeline, ESP decryption and encryption (AES-128-GCM, 46-byte
//! inner packets) through it, the IPv4 route lookup, and the header checksum
//! beside smoltcp's verify_checksum, the reference it replaced, measured in the same run.
//!
//! `cargo bench -p anygate-perf --bench pipeline`

use std::hint::black_box;
use std::net::Ipv4Addr;

use anygate::config::Config;
use anygate::esp::sink::static_sa_db;
use anygate::pipeline::{self, csum, Arrival, Context, HeapPacket, Local, RateLimiter, Verdict};
use anygate::tables::{RouteTable, SlotMap, Tables, TunnelId};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ipnet::IpNet;

const PORT_MAC: [u8; 6] = [2, 0, 0, 0, 1, 1];
const GW_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];

const CONFIG: &str = r#"
[[ports]]
name = "wan"
device = "net_null0"
address = "192.0.2.1/24"
gateway = "192.0.2.254"

[[gre_tunnels]]
name = "site1"
customer_endpoint = "198.51.100.10"
anycast_endpoint = "192.0.2.1"

[[ipsec_tunnels]]
name = "sec1"
customer_endpoint = "198.51.100.20"
anycast_endpoint = "192.0.2.1"

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

[[routes]]
prefix = "10.20.0.0/16"
nexthop = "site1"

[[routes]]
prefix = "10.40.0.0/16"
nexthop = "sec1"
"#;

fn ipv4(src: [u8; 4], dst: [u8; 4], protocol: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x45, 0, 0, 0, 0, 1, 0, 0, 64, protocol, 0, 0];
    h[2..4].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    let sum = !csum::sum(&h);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

fn ethernet(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = PORT_MAC.to_vec();
    f.extend_from_slice(&GW_MAC);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn udp_inner(len: usize) -> Vec<u8> {
    let mut udp = vec![0x27, 0x10, 0x4e, 0x20, 0, 0, 0, 0];
    udp[4..6].copy_from_slice(&((len - 20) as u16).to_be_bytes());
    udp.resize(len - 20, 0xab);
    ipv4([10, 10, 0, 1], [10, 20, 0, 1], 17, &udp)
}

fn pipeline(c: &mut Criterion) {
    let config = Config::parse(CONFIG).expect("benchmark configuration");
    let mut slots = SlotMap::default();
    let tables = Tables::build(&config, &[PORT_MAC], &mut slots);
    let mut local = Local::new(slots.len(), RateLimiter::new(100, 1_000_000_000), 0);
    local.neighbors.set(0, "192.0.2.254".parse().expect("address"), GW_MAC);
    // The tunnel's SAs, and a sealer with the inbound SA's key to make what it opens.
    let (sas, sealers) = static_sa_db(&config, &mut slots).expect("the tunnel's SAs");
    local.sas = sas;
    let sealer = &sealers[0];

    // Decapsulated packets leave for 10.30/16, outside every customer prefix.
    let mut inner = udp_inner(46);
    inner[16..20].copy_from_slice(&[10, 30, 0, 1]);
    inner[10..12].fill(0);
    let sum = !csum::sum(&inner[..20]);
    inner[10..12].copy_from_slice(&sum.to_be_bytes());
    let mut gre = vec![0, 0, 0x08, 0x00];
    gre.extend_from_slice(&inner);
    let decap_frame = ethernet(0x0800, &ipv4([198, 51, 100, 10], [192, 0, 2, 1], 47, &gre));
    let encap_frame = ethernet(0x0800, &udp_inner(46));
    // ESP of secgw's smallest captures: a 46-byte inner packet (to 10.30/16) from the router,
    // 114-byte frames; and a 60-byte frame for 10.40/16 to encrypt.
    let mut esp = vec![0u8; 16];
    esp.extend_from_slice(&inner);
    esp.extend_from_slice(&[0, 4]);
    esp.resize(esp.len() + 16, 0);
    sealer.seal(&mut esp, 1).expect("sealed");
    let decrypt_frame = ethernet(0x0800, &ipv4([198, 51, 100, 20], [192, 0, 2, 1], 50, &esp));
    let mut plain = udp_inner(46);
    plain[16..20].copy_from_slice(&[10, 40, 0, 1]);
    plain[10..12].fill(0);
    let sum = !csum::sum(&plain[..20]);
    plain[10..12].copy_from_slice(&sum.to_be_bytes());
    let encrypt_frame = ethernet(0x0800, &plain);

    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(1));
    // Each case through the pipeline's entry (the express lane takes it) and through the full
    // pipeline alone (what every packet took before the express lane), in the same run.
    // ESP runs to the end: classification, then the crypto (a batch of one).
    // (The worker finds a burst's arrival once; here it is found for each packet.)
    type Entry = fn(&mut HeapPacket, u16, &mut Context<'_>) -> Verdict;
    let process: Entry = |pkt, port, cx| pipeline::process(pkt, Arrival::on(cx.tables, port), cx);
    let cases: [(&str, &[u8], Entry); 6] = [
        ("gre_decap_84B", &decap_frame, process),
        ("gre_decap_84B_full_pipeline", &decap_frame, pipeline::l2::input),
        ("gre_encap_60B", &encap_frame, process),
        ("gre_encap_60B_full_pipeline", &encap_frame, pipeline::l2::input),
        ("esp_decrypt_114B", &decrypt_frame, pipeline::process_to_end),
        ("esp_encrypt_60B", &encrypt_frame, pipeline::process_to_end),
    ];
    for (name, frame, entry) in cases {
        let mut pkt = HeapPacket::new(frame);
        let mut cx = Context::new(&tables, &mut local, 0);
        assert!(matches!(entry(&mut pkt, 0, &mut cx), Verdict::Forward(0)), "{name} forwards");
        group.bench_function(name, |b| {
            b.iter(|| {
                pkt.reset(frame);
                black_box(entry(&mut pkt, 0, &mut cx))
            })
        });
    }
    group.finish();
}

fn lookups(c: &mut Criterion) {
    // 1000 customer prefixes of mixed lengths, as a large tenant table.
    let mut routes = Vec::new();
    for i in 0..1000u32 {
        let len = [16u8, 20, 22, 24][(i % 4) as usize];
        let base = 0x0a00_0000 | (i << 12);
        let net = ipnet::Ipv4Net::new(Ipv4Addr::from(base), len).expect("prefix").trunc();
        routes.push((IpNet::V4(net), TunnelId(i % 7), 1, 1));
    }
    let table = RouteTable::build(routes);
    let hit = Ipv4Addr::new(10, 0, 0x35, 9);
    let miss = Ipv4Addr::new(172, 16, 1, 1);
    assert!(table.lookup_v4(hit).is_some() && table.lookup_v4(miss).is_none());
    let mut group = c.benchmark_group("routes");
    group.bench_function("ipv4_lpm_hit_1000_prefixes", |b| b.iter(|| black_box(table.lookup_v4(black_box(hit)))));
    group.bench_function("ipv4_lpm_miss_1000_prefixes", |b| b.iter(|| black_box(table.lookup_v4(black_box(miss)))));
    // Every length from /8 to /32 nested in one /8, and an address only the /8 holds: the most
    // lengths a lookup can meet.
    let nested = RouteTable::build((8u8..=32).map(|len| {
        let net = ipnet::Ipv4Net::new(Ipv4Addr::new(10, 20, 30, 40), len).expect("prefix").trunc();
        (IpNet::V4(net), TunnelId(u32::from(len)), 1, 1)
    }));
    let only_the_8 = Ipv4Addr::new(10, 200, 1, 1);
    assert_eq!(nested.lookup_v4(only_the_8).map(|h| h.pick(0)), Some(TunnelId(8)));
    group.bench_function("ipv4_lpm_hit_25_lengths", |b| b.iter(|| black_box(nested.lookup_v4(black_box(only_the_8)))));
    group.finish();

    let header = ipv4([192, 0, 2, 1], [198, 51, 100, 10], 47, &[]);
    let mut group = c.benchmark_group("ipv4_header_checksum");
    group.bench_function("anygate_verify", |b| b.iter(|| black_box(csum::sum(black_box(&header[..20])) == 0xffff)));
    group.bench_function("smoltcp_verify_checksum", |b| {
        b.iter(|| black_box(smoltcp::wire::Ipv4Packet::new_unchecked(black_box(&header[..20])).verify_checksum()))
    });
    group.finish();
}

criterion_group!(benches, pipeline, lookups);
criterion_main!(benches);
