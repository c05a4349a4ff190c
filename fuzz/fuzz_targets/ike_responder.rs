//! The IKEv2 responder on arbitrary datagrams, after a real IKE_SA_INIT with our initiator (IKE
//! fragmentation agreed): it never panics, whatever mix of garbage, datagrams stamped with the real
//! IKE SA's SPIs (so that they reach the half-open or established IKE SA: message IDs, fragment
//! reassembly, the exchange handlers) and genuine fragments of a real IKE_AUTH, and whatever the
//! clock does between them.
//!
//! Input: one byte (bit 0: complete IKE_AUTH first), then records of a 2-byte length, a flag byte
//! and that many bytes. Flags: bit 0 stamps the SPIs, bit 1 runs the timers 4 s x (flags >> 4)
//! later, bit 2 delivers the next genuine IKE_AUTH fragment instead of the bytes.
#![no_main]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use ike_agent::crypto::ke::KeyExchangeMethod;
use ike_agent::initiator::{Initiator, InitiatorConfig, NatDetection};
use ike_agent::policy::{ResponderPolicy, TunnelPolicy};
use ike_agent::responder::Responder;
use ike_agent::wire::{
    EncrId, EsnId, IdType, Identification, KeMethod, PrfId, Proposal, ProtocolId, SelectorRange, TrafficSelector,
    TrafficSelectors, Transform, TransformType,
};
use libfuzzer_sys::fuzz_target;

const ANYCAST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const ROUTER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);

fn policy() -> ResponderPolicy {
    let mut policy = ResponderPolicy {
        node_id: 1,
        account_id: "acct".into(),
        domain: "example.net".into(),
        tunnels: vec![TunnelPolicy {
            name: "t1".into(),
            psk: zeroize::Zeroizing::new(b"fuzz key".to_vec()),
            anycast_endpoint: ANYCAST,
            customer_endpoint: None,
            allow_null_cipher: false,
        }],
        half_open: Default::default(),
        timers: Default::default(),
        fragmentation: Default::default(),
    };
    policy.fragmentation.fragment_size = 256;
    // Short timers, so that the clock moving between datagrams brings our own rekeys, Deletes and
    // liveness checks, and their retransmissions, between the fuzzer's datagrams.
    policy.timers.child_sa_rekey_after = Some(Duration::from_secs(20));
    policy.timers.child_sa_lifetime = Duration::from_secs(120);
    policy.timers.ike_sa_lifetime = Duration::from_secs(600);
    policy
}

fn config() -> InitiatorConfig {
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
        ike_proposals: vec![Proposal {
            number: 1,
            protocol: ProtocolId::IKE,
            spi: Vec::new(),
            transforms: vec![
                Transform::encr(EncrId::AES_GCM_16, Some(128)),
                Transform::prf(PrfId::HMAC_SHA2_256),
                Transform::ke(TransformType::KE, KeMethod::ECP_384),
            ],
        }],
        ke: KeyExchangeMethod::Ecp384,
        esp_proposals: vec![Proposal {
            number: 1,
            protocol: ProtocolId::ESP,
            spi: Vec::new(),
            transforms: vec![Transform::encr(EncrId::AES_GCM_16, Some(128)), Transform::esn(EsnId::NO_ESN)],
        }],
        id: Identification::new(IdType::RFC822_ADDR, b"ipsec@t1.acct.example.net".to_vec()),
        psk: b"fuzz key".to_vec(),
        tsi: selectors([10, 0, 0, 0], [10, 0, 0, 255]),
        tsr: selectors([0; 4], [255; 4]),
        local: SocketAddr::from((ROUTER, 500)),
        remote: SocketAddr::from((ANYCAST, 500)),
        nat_detection: NatDetection::Honest,
        initial_contact: false,
        fragment_size: Some(200),
    }
}

fn drain(responder: &mut Responder) -> Vec<Vec<u8>> {
    while responder.poll_event().is_some() {}
    std::iter::from_fn(|| responder.poll_transmit()).map(|t| t.bytes).collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, mut rest)) = data.split_first() else { return };
    let (local, remote) = (SocketAddr::from((ANYCAST, 500)), SocketAddr::from((ROUTER, 500)));
    let mut now = Instant::now();
    let mut responder = Responder::new(policy()).expect("a valid policy");
    let mut initiator = Initiator::new(config());
    responder.handle_datagram(now, local, remote, &initiator.ike_sa_init());
    let response = drain(&mut responder).pop().expect("IKE_SA_INIT is answered");
    assert!(initiator.on_ike_sa_init_response(&response).expect("a good response"));
    let (spi_i, spi_r) = (initiator.spi_i(), initiator.spi_r().expect("the responder's SPI"));
    let mut auth = initiator.ike_auth_datagrams().expect("IKE_AUTH").into_iter();
    if first & 1 != 0 {
        for fragment in auth.by_ref() {
            responder.handle_datagram(now, local, remote, &fragment);
        }
        drain(&mut responder);
    }
    while rest.len() >= 3 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let flags = rest[2];
        let take = len.min(rest.len() - 3);
        let mut datagram = rest[3..3 + take].to_vec();
        rest = &rest[3 + take..];
        if flags & 4 != 0 {
            match auth.next() {
                Some(fragment) => datagram = fragment,
                None => continue,
            }
        } else if flags & 1 != 0 && datagram.len() >= 16 {
            datagram[..8].copy_from_slice(&spi_i.to_be_bytes());
            datagram[8..16].copy_from_slice(&spi_r.to_be_bytes());
        }
        if flags & 2 != 0 {
            now += Duration::from_secs(4 * u64::from(flags >> 4));
            responder.handle_timeout(now);
        }
        responder.handle_datagram(now, local, remote, &datagram);
        drain(&mut responder);
    }
    assert!(responder.ike_sa_count() <= 2, "one IKE SA, and at most its rekey");
});
