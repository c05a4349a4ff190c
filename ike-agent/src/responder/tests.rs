//! The responder against our initiator, exchange by exchange, in RFC notation.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use super::*;
use crate::crypto::ke::KeyExchangeMethod;
use crate::initiator::{Initiator, InitiatorConfig, InitiatorError, NatDetection};
use crate::policy::TunnelPolicy;
use crate::proposal::{ChildEncryption, ChildIntegrity};
use crate::wire::{
    EncrId, EsnId, IdType, Identification, IntegId, KeMethod, PrfId, Proposal, ProtocolId, SelectorRange,
    TrafficSelector, TrafficSelectors, Transform, TransformType,
};

pub(super) const ANYCAST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
pub(super) const ROUTER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);
pub(super) const NODE_ID: u16 = 0x2a;

pub(super) fn policy() -> ResponderPolicy {
    let tunnel = |name: &str, psk: &[u8], customer| TunnelPolicy {
        name: name.into(),
        psk: zeroize::Zeroizing::new(psk.to_vec()),
        anycast_endpoint: ANYCAST,
        customer_endpoint: customer,
        allow_null_cipher: false,
    };
    ResponderPolicy {
        node_id: NODE_ID,
        account_id: "acct".into(),
        domain: "ipsec.example.net".into(),
        tunnels: vec![tunnel("t1", b"first secret", Some(ROUTER)), tunnel("t2", b"second secret", None)],
        half_open: crate::policy::HalfOpenLimits::default(),
        timers: crate::policy::Timers::default(),
        fragmentation: crate::fragment::Fragmentation::default(),
    }
}

pub(super) fn ike_proposal(
    encr: EncrId,
    bits: u16,
    integ: Option<IntegId>,
    prf: PrfId,
    groups: &[KeMethod],
) -> Proposal {
    let mut transforms = vec![Transform::encr(encr, Some(bits)), Transform::prf(prf)];
    transforms.extend(integ.map(Transform::integ));
    transforms.extend(groups.iter().map(|g| Transform::ke(TransformType::KE, *g)));
    Proposal { number: 1, protocol: ProtocolId::IKE, spi: Vec::new(), transforms }
}

pub(super) fn esp_proposal(transforms: Vec<Transform>) -> Proposal {
    Proposal { number: 1, protocol: ProtocolId::ESP, spi: Vec::new(), transforms }
}

pub(super) fn v4_selector(start: [u8; 4], end: [u8; 4]) -> TrafficSelectors {
    TrafficSelectors {
        selectors: vec![TrafficSelector::Ipv4(SelectorRange {
            protocol: 0,
            start_port: 0,
            end_port: 65535,
            start: start.into(),
            end: end.into(),
        })],
    }
}

pub(super) fn config() -> InitiatorConfig {
    InitiatorConfig {
        ike_proposals: vec![ike_proposal(EncrId::AES_GCM_16, 256, None, PrfId::HMAC_SHA2_384, &[KeMethod::ECP_384])],
        ke: KeyExchangeMethod::Ecp384,
        esp_proposals: vec![esp_proposal(vec![
            Transform::encr(EncrId::AES_GCM_16, Some(256)),
            Transform::esn(EsnId::NO_ESN),
        ])],
        id: Identification::new(IdType::RFC822_ADDR, b"ipsec@t1.acct.ipsec.example.net".to_vec()),
        psk: b"first secret".to_vec(),
        tsi: v4_selector([198, 51, 100, 0], [198, 51, 100, 255]),
        tsr: v4_selector([0; 4], [255; 4]),
        local: SocketAddr::from((ROUTER, 500)),
        remote: SocketAddr::from((ANYCAST, 500)),
        nat_detection: NatDetection::Honest,
        initial_contact: false,
        fragment_size: None,
    }
}

/// Both sides, and the virtual clock.
pub(super) struct Pair {
    pub(super) responder: Responder,
    pub(super) initiator: Initiator,
    pub(super) now: Instant,
    pub(super) local: SocketAddr,
    pub(super) remote: SocketAddr,
    /// The IKE SAs the responder announced as established, checked against its table.
    pub(super) announced: Vec<IkeSaInfo>,
    /// The Child SAs it announced as ended.
    pub(super) deleted: Vec<DeletedChild>,
    /// The Child SAs of the peer's rekeys that lost a collision with ours.
    pub(super) redundant: Vec<DeletedChild>,
    /// The IKE SAs it announced as rekeyed (the new ones) and as ended.
    pub(super) rekeyed: Vec<IkeSaInfo>,
    pub(super) ended: Vec<IkeSaInfo>,
}

impl Pair {
    pub(super) fn new(config: InitiatorConfig) -> Self {
        Self::with_policy(config, policy())
    }

    pub(super) fn with_policy(config: InitiatorConfig, policy: ResponderPolicy) -> Self {
        let (local, remote) = (config.remote, config.local);
        Self {
            responder: Responder::new(policy).unwrap(),
            initiator: Initiator::new(config),
            now: Instant::now(),
            local,
            remote,
            announced: Vec::new(),
            deleted: Vec::new(),
            redundant: Vec::new(),
            rekeyed: Vec::new(),
            ended: Vec::new(),
        }
    }

    /// Deliver a request; return the one datagram the responder sends, if it sends one.
    pub(super) fn exchange(&mut self, request: &[u8]) -> Option<Vec<u8>> {
        self.now += Duration::from_millis(10);
        self.responder.handle_datagram(self.now, self.local, self.remote, request);
        let transmit = self.responder.poll_transmit()?;
        assert_eq!((transmit.local, transmit.remote), (self.local, self.remote), "answered where it came from");
        assert!(self.responder.poll_transmit().is_none(), "one answer per request");
        Some(transmit.bytes)
    }

    /// IKE_SA_INIT, repeated while the responder asks for another group.
    pub(super) fn init(&mut self) -> Result<(), InitiatorError> {
        loop {
            let request = self.initiator.ike_sa_init();
            let response = self.exchange(&request).expect("IKE_SA_INIT is answered");
            if self.initiator.on_ike_sa_init_response(&response)? {
                return Ok(());
            }
        }
    }

    pub(super) fn auth(&mut self) -> Result<crate::initiator::AuthOutcome, InitiatorError> {
        let request = self.initiator.ike_auth()?;
        let response = self.exchange(&request).ok_or(InitiatorError::Malformed("no answer"))?;
        self.initiator.on_ike_auth_response(&response)
    }

    pub(super) fn events(&mut self) -> (Vec<ChildSa>, Vec<LogEvent>) {
        let (mut children, mut logs) = (Vec::new(), Vec::new());
        while let Some(event) = self.responder.poll_event() {
            match event {
                Event::ChildSaEstablished(child) => children.push(child),
                Event::Log(log) => logs.push(log),
                Event::IkeSaEstablished(info) => {
                    assert_eq!(self.responder.established().iter().filter(|sa| **sa == info).count(), 1);
                    self.announced.push(info);
                }
                Event::ChildSaDeleted(child) => self.deleted.push(child),
                Event::ChildSaRedundant(child) => self.redundant.push(child),
                Event::IkeSaRekeyed(info) => self.rekeyed.push(info),
                Event::IkeSaDeleted(info) => self.ended.push(info),
            }
        }
        (children, logs)
    }
}

/// Both sides hold the same SPIs, keys, suite and selectors for a Child SA.
pub(super) fn assert_same_child(child: &ChildSa, ours: &crate::initiator::InitiatorChild) {
    assert_eq!(child.inbound.spi, ours.outbound.0, "our outbound SPI is the responder's inbound");
    assert_eq!(child.outbound.spi, ours.inbound.0);
    assert_eq!(*child.inbound.encryption, *ours.outbound.1);
    assert_eq!(*child.inbound.integrity, *ours.outbound.2);
    assert_eq!(*child.outbound.encryption, *ours.inbound.1);
    assert_eq!(*child.outbound.integrity, *ours.inbound.2);
    assert_eq!(child.suite, ours.suite);
    assert_eq!(child.selectors, ours.selectors);
    assert_ne!(*child.inbound.encryption, *child.outbound.encryption, "each direction has its own key");
}

/// Bring a tunnel up and check that both sides hold the same Child SA keys.
pub(super) fn establish(config: InitiatorConfig) -> (Pair, ChildSa) {
    let mut pair = Pair::new(config);
    pair.init().unwrap();
    let outcome = pair.auth().unwrap();
    let ours = outcome.child.expect("a Child SA");
    let (mut children, logs) = pair.events();
    assert_eq!(children.len(), 1);
    let child = children.remove(0);
    assert_same_child(&child, &ours);
    assert!(logs.iter().any(|l| l.message.starts_with("IKE SA established for tunnel")), "{logs:?}");
    assert_eq!(pair.announced.len(), 1, "the IKE SA is announced once");
    (pair, child)
}

#[test]
fn ike_sa_init_and_ike_auth_bring_up_a_child_sa() {
    // IKE_SA_INIT { SA, KE, Ni, N(NAT_DETECTION_*) } -->  <-- { SA, KE, Nr, N(NAT_DETECTION_*) }
    // IKE_AUTH SK { IDi, AUTH, SA, TSi, TSr } -->  <-- SK { IDr, AUTH, SA, TSi, TSr }
    let (pair, child) = establish(config());
    assert_eq!(child.tunnel, "t1");
    assert_eq!(child.suite.encryption, ChildEncryption::AesGcm16 { key_bytes: 32 });
    assert_eq!((child.inbound.encryption.len(), child.inbound.integrity.len()), (36, 0));
    assert_eq!(child.encapsulation, Encapsulation::Raw, "no NAT, raw ESP");
    assert_eq!(child.selectors.initiator, "198.51.100.0/24".parse().unwrap());
    assert_eq!((child.local, child.remote), (IpAddr::V4(ANYCAST), IpAddr::V4(ROUTER)));
    assert_eq!(child.inbound.spi >> 24, u32::from(NODE_ID), "the node ID tops our ESP SPI");
    let sas = pair.responder.established();
    assert_eq!(sas.len(), 1);
    assert_eq!(sas[0].spi_r >> 48, u64::from(NODE_ID), "the node ID tops our IKE SPI");
    assert_eq!(sas[0].tunnel, "t1");
}

#[test]
fn every_ike_suite_and_group() {
    let suites = [
        (EncrId::AES_GCM_16, 128, None, PrfId::HMAC_SHA2_256, KeMethod::ECP_384),
        (EncrId::AES_GCM_16, 256, None, PrfId::HMAC_SHA2_512, KeMethod::ECP_384),
        (EncrId::AES_CBC, 256, Some(IntegId::HMAC_SHA2_256_128), PrfId::HMAC_SHA2_256, KeMethod::ECP_384),
        (EncrId::AES_CBC, 256, Some(IntegId::HMAC_SHA2_256_128), PrfId::HMAC_SHA2_384, KeMethod::MODP_2048),
        (EncrId::AES_GCM_16, 128, None, PrfId::HMAC_SHA2_512, KeMethod::MODP_1536),
    ];
    for (encr, bits, integ, prf, group) in suites {
        let mut config = config();
        config.ike_proposals = vec![ike_proposal(encr, bits, integ, prf, &[group])];
        config.ke = KeyExchangeMethod::from_id(group).unwrap();
        let (pair, _) = establish(config);
        let suite = pair.responder.established()[0].suite;
        assert_eq!((suite.prf.id(), suite.ke.id()), (prf, group), "{encr:?} {bits}");
    }
}

#[test]
fn every_child_suite() {
    let cases = [
        (vec![Transform::encr(EncrId::AES_GCM_16, Some(128))], ChildEncryption::AesGcm16 { key_bytes: 16 }, None),
        (
            vec![Transform::encr(EncrId::AES_CBC, Some(256)), Transform::integ(IntegId::HMAC_SHA2_256_128)],
            ChildEncryption::AesCbc { key_bytes: 32 },
            Some(ChildIntegrity::HmacSha256_128),
        ),
        (
            vec![Transform::encr(EncrId::AES_CBC, Some(128)), Transform::integ(IntegId::HMAC_SHA1_96)],
            ChildEncryption::AesCbc { key_bytes: 16 },
            Some(ChildIntegrity::HmacSha1_96),
        ),
    ];
    for (mut transforms, encryption, integrity) in cases {
        transforms.push(Transform::esn(EsnId::NO_ESN));
        let mut config = config();
        config.esp_proposals = vec![esp_proposal(transforms)];
        let (_, child) = establish(config);
        assert_eq!((child.suite.encryption, child.suite.integrity), (encryption, integrity));
    }
}

#[test]
fn every_id_type_selects_its_tunnel() {
    let ids = [
        (IdType::RFC822_ADDR, b"ipsec@t2.acct.ipsec.example.net".to_vec(), "t2", &b"second secret"[..]),
        (IdType::FQDN, b"t2.acct.ipsec.example.net".to_vec(), "t2", b"second secret"),
        (IdType::KEY_ID, b"acct_t1".to_vec(), "t1", b"first secret"),
        (IdType::IPV4_ADDR, ROUTER.octets().to_vec(), "t1", b"first secret"),
    ];
    for (id_type, data, tunnel, psk) in ids {
        let mut config = config();
        config.id = Identification::new(id_type, data);
        config.psk = psk.to_vec();
        let (_, child) = establish(config);
        assert_eq!(child.tunnel, tunnel, "{id_type:?}");
    }
}

#[test]
fn invalid_ke_payload_names_our_group_and_the_retry_succeeds() {
    // IKE_SA_INIT { SA(14, 20), KE(5) } -->  (group 5 is not in the proposal)
    let mut config = config();
    config.ike_proposals = vec![ike_proposal(
        EncrId::AES_GCM_16,
        256,
        None,
        PrfId::HMAC_SHA2_256,
        &[KeMethod::MODP_2048, KeMethod::ECP_384],
    )];
    config.ke = KeyExchangeMethod::Modp1536;
    let mut pair = Pair::new(config);
    let request = pair.initiator.ike_sa_init();
    let response = pair.exchange(&request).unwrap();
    // <-- { N(INVALID_KE_PAYLOAD, 20) }, and no state kept.
    let message = Message::parse(&response).unwrap();
    assert_eq!(message.header.spi_r, 0);
    assert_eq!(
        message.payloads,
        [Payload::Notify(Notify::new(NotifyType::INVALID_KE_PAYLOAD, KeMethod::ECP_384.0.to_be_bytes().to_vec()))]
    );
    assert_eq!(pair.responder.ike_sa_count(), 0);
    assert!(!pair.initiator.on_ike_sa_init_response(&response).unwrap());
    pair.init().unwrap();
    assert!(pair.auth().unwrap().child.is_ok());
}

fn refusal_of_init(config: InitiatorConfig) -> NotifyType {
    let mut pair = Pair::new(config);
    let request = pair.initiator.ike_sa_init();
    let response = pair.exchange(&request).unwrap();
    assert_eq!(pair.responder.ike_sa_count(), 0, "a refused IKE_SA_INIT keeps no state");
    match pair.initiator.on_ike_sa_init_response(&response) {
        Err(InitiatorError::Refused(kind)) => kind,
        other => panic!("{other:?}"),
    }
}

#[test]
fn ike_sa_init_refusals() {
    // No proposal chosen: 3DES and SHA-1 only.
    let mut config = config();
    config.ike_proposals =
        vec![ike_proposal(EncrId::AES_CBC, 128, Some(IntegId::HMAC_SHA1_96), PrfId::HMAC_SHA1, &[KeMethod::ECP_384])];
    assert_eq!(refusal_of_init(config), NotifyType::NO_PROPOSAL_CHOSEN);

    // A KE payload of the wrong length for its group: INVALID_SYNTAX.
    let mut pair = Pair::new(self::config());
    let mut request = Message::parse(&pair.initiator.ike_sa_init()).unwrap();
    for payload in &mut request.payloads {
        if let Payload::Ke(ke) = payload {
            ke.data.pop();
        }
    }
    let response = pair.exchange(&request.encode().unwrap()).unwrap();
    assert_eq!(
        Message::parse(&response).unwrap().payloads,
        [Payload::Notify(Notify::new(NotifyType::INVALID_SYNTAX, Vec::new()))]
    );
    assert_eq!(pair.responder.ike_sa_count(), 0);
}

fn refusal_of_auth(config: InitiatorConfig) -> (Result<crate::initiator::AuthOutcome, InitiatorError>, Pair) {
    let mut pair = Pair::new(config);
    pair.init().unwrap();
    let outcome = pair.auth();
    (outcome, pair)
}

#[test]
fn wrong_psk_and_unknown_id_get_the_same_authentication_failed() {
    let mut wrong_psk = config();
    wrong_psk.psk = b"guessed".to_vec();
    let mut unknown_id = config();
    unknown_id.id = Identification::new(IdType::FQDN, b"t9.acct.ipsec.example.net".to_vec());
    let mut psk_of_another_tunnel = config();
    psk_of_another_tunnel.psk = b"second secret".to_vec();
    for config in [wrong_psk, unknown_id, psk_of_another_tunnel] {
        let (outcome, mut pair) = refusal_of_auth(config);
        assert_eq!(outcome.unwrap_err(), InitiatorError::Refused(NotifyType::AUTHENTICATION_FAILED));
        assert_eq!(pair.responder.ike_sa_count(), 0, "the IKE SA is forgotten");
        let (children, logs) = pair.events();
        assert!(children.is_empty());
        let refusal = logs.iter().find(|l| l.level == LogLevel::Warning).expect("logged");
        assert!(!refusal.message.contains("secret"), "no key in the log: {}", refusal.message);
    }
}

#[test]
fn child_refusals_keep_the_ike_sa() {
    // ESN only: <-- SK { IDr, AUTH, N(NO_PROPOSAL_CHOSEN) }
    let mut esn = config();
    esn.esp_proposals =
        vec![esp_proposal(vec![Transform::encr(EncrId::AES_GCM_16, Some(256)), Transform::esn(EsnId::ESN)])];
    // A TCP-only selector: <-- SK { IDr, AUTH, N(TS_UNACCEPTABLE) }
    let mut tcp = config();
    tcp.tsi = TrafficSelectors {
        selectors: vec![TrafficSelector::Ipv4(SelectorRange {
            protocol: 6,
            start_port: 0,
            end_port: 65535,
            start: [198, 51, 100, 0].into(),
            end: [198, 51, 100, 255].into(),
        })],
    };
    // NULL encryption on a tunnel that does not allow it.
    let mut null = config();
    null.esp_proposals = vec![esp_proposal(vec![
        Transform::encr(EncrId::NULL, None),
        Transform::integ(IntegId::HMAC_SHA2_256_128),
        Transform::esn(EsnId::NO_ESN),
    ])];
    for (config, expected) in [
        (esn, NotifyType::NO_PROPOSAL_CHOSEN),
        (tcp, NotifyType::TS_UNACCEPTABLE),
        (null, NotifyType::NO_PROPOSAL_CHOSEN),
    ] {
        let (outcome, mut pair) = refusal_of_auth(config);
        assert_eq!(outcome.unwrap().child.unwrap_err(), expected);
        assert_eq!(pair.responder.established().len(), 1, "the IKE SA stands");
        assert!(pair.events().0.is_empty(), "nothing to install");
    }
}

#[test]
fn retransmitted_requests_get_the_cached_answer_byte_for_byte() {
    let mut pair = Pair::new(config());
    let init = pair.initiator.ike_sa_init();
    let first = pair.exchange(&init).unwrap();
    assert_eq!(pair.exchange(&init).unwrap(), first, "IKE_SA_INIT answered again, same bytes");
    assert_eq!(pair.responder.ike_sa_count(), 1, "and no second SA");
    assert!(pair.initiator.on_ike_sa_init_response(&first).unwrap());
    let auth = pair.initiator.ike_auth().unwrap();
    let answer = pair.exchange(&auth).unwrap();
    assert_eq!(pair.exchange(&auth).unwrap(), answer, "IKE_AUTH answered again, same bytes");
    assert_eq!(pair.events().0.len(), 1, "one Child SA, not two");
    assert!(pair.initiator.on_ike_auth_response(&answer).unwrap().child.is_ok());

    // INFORMATIONAL SK {} --> <-- SK {}, then an old message ID is dropped.
    let check = pair.initiator.informational().unwrap();
    let empty = pair.exchange(&check).unwrap();
    assert!(pair.initiator.open_response(&empty).unwrap().is_empty());
    assert_eq!(pair.exchange(&auth), None, "a request two IDs back gets nothing");
}

#[test]
fn a_session_that_starts_on_500_and_moves_to_4500_keeps_its_sa_and_gets_udp_esp() {
    // The initiator's NAT_DETECTION_SOURCE_IP matches nothing, as strongSwan with kernel-libipsec
    // sends: NAT is seen, IKE_AUTH comes from port 4500 to port 4500, ESP goes in UDP.
    let mut config = config();
    config.nat_detection = NatDetection::FakeSource;
    let mut pair = Pair::new(config);
    pair.init().unwrap();
    let (local, remote) = (SocketAddr::from((ANYCAST, 4500)), SocketAddr::from((ROUTER, 31000)));
    pair.local = local;
    pair.remote = remote;
    pair.initiator.set_addresses(remote, local);
    let outcome = pair.auth().unwrap();
    assert!(outcome.child.is_ok());
    let (children, _) = pair.events();
    assert_eq!(children[0].encapsulation, Encapsulation::Udp { local_port: 4500, remote_port: 31000 });
    assert_eq!(pair.responder.established()[0].remote, remote);
}

#[test]
fn an_ike_auth_from_another_address_or_with_a_bad_icv_is_dropped_silently() {
    let mut pair = Pair::new(config());
    pair.init().unwrap();
    let auth = pair.initiator.ike_auth().unwrap();
    pair.remote = SocketAddr::from((Ipv4Addr::new(203, 0, 113, 99), 500));
    assert_eq!(pair.exchange(&auth), None);
    pair.remote = SocketAddr::from((ROUTER, 500));
    let mut tampered = auth.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert_eq!(pair.exchange(&tampered), None);
    assert!(pair.exchange(&auth).is_some(), "the genuine request still works");
}

#[test]
fn half_open_sas_expire() {
    let mut pair = Pair::new(config());
    pair.init().unwrap();
    assert_eq!(pair.responder.ike_sa_count(), 1);
    assert_eq!(pair.responder.half_open_count(), 1);
    pair.responder.handle_timeout(pair.now + HALF_OPEN_TIMEOUT);
    assert_eq!(pair.responder.ike_sa_count(), 0);
    assert_eq!(pair.responder.half_open_count(), 0, "the flood limits count it no more");
    assert!(Responder::new(ResponderPolicy { node_id: 256, ..policy() }).is_err());
}

#[test]
fn an_unknown_critical_payload_is_refused_by_name_and_an_unknown_non_critical_one_is_skipped() {
    use crate::wire::{PayloadType, RawPayload};
    for (critical, expect_refusal) in [(true, true), (false, false)] {
        let mut pair = Pair::new(config());
        let mut request = Message::parse(&pair.initiator.ike_sa_init()).unwrap();
        request.payloads.push(Payload::Other(RawPayload { kind: PayloadType(222), critical, body: vec![1, 2, 3] }));
        let response = Message::parse(&pair.exchange(&request.encode().unwrap()).unwrap()).unwrap();
        let refusal = Payload::Notify(Notify::new(NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD, vec![222]));
        assert_eq!(response.payloads == [refusal], expect_refusal, "critical: {critical}");
        assert_eq!(pair.responder.ike_sa_count(), usize::from(!expect_refusal));
    }
}

#[test]
fn a_reload_keeps_the_ike_sas_of_tunnels_still_configured() {
    let (mut pair, _) = establish(config());
    let mut without_t2 = policy();
    without_t2.tunnels.retain(|t| t.name != "t2");
    assert_eq!(pair.responder.set_policy(without_t2).unwrap(), Vec::<String>::new());
    assert_eq!(pair.responder.established().len(), 1, "t1 is still configured");

    let mut changed_node = policy();
    changed_node.node_id += 1;
    assert!(matches!(pair.responder.set_policy(changed_node), Err(PolicyError::NodeIdChanged { .. })));
    assert_eq!(pair.responder.established().len(), 1, "a refused policy changes nothing");

    let mut without_t1 = policy();
    without_t1.tunnels.retain(|t| t.name != "t1");
    assert_eq!(pair.responder.set_policy(without_t1).unwrap(), vec!["t1".to_string()]);
    assert!(pair.responder.established().is_empty(), "t1's IKE SA went with it");
}
