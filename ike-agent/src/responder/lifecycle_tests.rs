//! CREATE_CHILD_SA and Deletes against our initiator, exchange by exchange, in RFC notation.

use super::tests::*;
use super::*;
use crate::crypto::ke::KeyExchangeMethod;
use crate::initiator::{Initiator, InitiatorChild};
use crate::wire::{
    Delete, EncrId, EsnId, IdType, Identification, KeMethod, Proposal, ProtocolId, Transform, TransformType,
};

impl Pair {
    /// CREATE_CHILD_SA from the initiator: the Child SA it agreed, or the refusal.
    pub(super) fn create_child(
        &mut self,
        rekey: Option<u32>,
        pfs: Option<KeyExchangeMethod>,
    ) -> Result<InitiatorChild, NotifyType> {
        let request = self.initiator.create_child_sa(rekey, pfs).unwrap();
        let response = self.exchange(&request).expect("CREATE_CHILD_SA is answered");
        self.initiator.on_create_child_sa_response(&response).unwrap()
    }

    /// The one Child SA the responder announced since the last look.
    pub(super) fn announced_child(&mut self) -> ChildSa {
        let (mut children, _) = self.events();
        assert_eq!(children.len(), 1, "one Child SA announced");
        children.remove(0)
    }

    /// INFORMATIONAL with a Delete of Child SAs by the initiator's inbound SPIs: the payloads
    /// of the answer.
    pub(super) fn delete_children(&mut self, spis: Vec<u32>) -> Vec<Payload> {
        let request = self.initiator.delete_child_sas(spis).unwrap();
        let response = self.exchange(&request).expect("a Delete is answered");
        self.initiator.open_response(&response).unwrap()
    }
}

/// An ESP proposal of AES-GCM-256 offering `groups` for PFS.
pub(super) fn esp_with_groups(groups: &[KeMethod]) -> Proposal {
    let mut transforms = vec![Transform::encr(EncrId::AES_GCM_16, Some(256))];
    transforms.extend(groups.iter().map(|g| Transform::ke(TransformType::KE, *g)));
    transforms.push(Transform::esn(EsnId::NO_ESN));
    esp_proposal(transforms)
}

#[test]
fn child_sa_rekeys_with_and_without_pfs_then_the_old_one_is_deleted() {
    // CREATE_CHILD_SA SK { N(REKEY_SA), SA, Ni, [KEi], TSi, TSr } -->
    //                 <-- SK { SA, Nr, [KEr], TSi, TSr }
    // INFORMATIONAL SK { D(ESP, old SPI_i) } -->  <-- SK { D(ESP, old SPI_r) }
    let cases = [
        (None, vec![]),
        (Some(KeyExchangeMethod::Ecp384), vec![KeMethod::ECP_384]),
        (Some(KeyExchangeMethod::Modp2048), vec![KeMethod::MODP_2048]),
        (Some(KeyExchangeMethod::Modp1536), vec![KeMethod::MODP_1536]),
    ];
    for (pfs, groups) in cases {
        let mut config = config();
        config.esp_proposals = vec![esp_with_groups(&groups)];
        let (mut pair, old) = establish(config);
        assert_eq!(old.suite.pfs, None, "IKE_AUTH has no key exchange");

        let ours = pair.create_child(Some(old.outbound.spi), pfs).expect("the rekey is agreed");
        let new = pair.announced_child();
        assert_same_child(&new, &ours);
        assert_eq!(new.suite.pfs, pfs);
        assert_eq!(new.rekey_of, Some(old.inbound.spi), "it names the Child SA it replaces");
        assert_ne!(new.inbound.spi, old.inbound.spi);
        assert_ne!(*new.inbound.encryption, *old.inbound.encryption, "fresh nonces, fresh keys");
        assert!(pair.deleted.is_empty(), "the old Child SA stays until its Delete");

        let answer = pair.delete_children(vec![old.outbound.spi]);
        assert_eq!(answer, vec![Payload::Delete(Delete { protocol: ProtocolId::ESP, spis: vec![old.inbound.spi] })]);
        pair.events();
        assert_eq!(pair.deleted.len(), 1);
        assert_eq!((pair.deleted[0].inbound_spi, pair.deleted[0].outbound_spi), (old.inbound.spi, old.outbound.spi));
        assert_eq!(pair.deleted[0].tunnel, "t1");

        // A Delete of an SPI it no longer knows is answered empty (RFC 7296 3.11).
        assert!(pair.delete_children(vec![old.outbound.spi]).is_empty());
        // The new Child SA can be rekeyed in turn; the old one cannot.
        assert_eq!(pair.create_child(Some(old.outbound.spi), pfs).unwrap_err(), NotifyType::CHILD_SA_NOT_FOUND);
        pair.create_child(Some(new.outbound.spi), pfs).expect("the new Child SA rekeys");
    }
}

#[test]
fn a_pfs_group_the_proposal_does_not_offer_gets_invalid_ke_payload_naming_ours() {
    // CREATE_CHILD_SA SK { SA(ECP_384, MODP_2048), Ni, KEi(MODP_1536), ... } -->
    //                 <-- SK { N(INVALID_KE_PAYLOAD, ECP_384) }
    let mut config = config();
    config.esp_proposals = vec![esp_with_groups(&[KeMethod::ECP_384, KeMethod::MODP_2048])];
    let (mut pair, old) = establish(config);
    let refusal = pair.create_child(Some(old.outbound.spi), Some(KeyExchangeMethod::Modp1536));
    assert_eq!(refusal.unwrap_err(), NotifyType::INVALID_KE_PAYLOAD);
    let (_, logs) = pair.events();
    assert!(logs.iter().any(|l| l.message.contains("asking for ECP_384")), "{logs:?}");
    // The initiator's own group from the offer is taken as it is.
    let ours = pair.create_child(Some(old.outbound.spi), Some(KeyExchangeMethod::Modp2048)).unwrap();
    assert_eq!(ours.suite.pfs, Some(KeyExchangeMethod::Modp2048));
    // Without a KE payload, a proposal that insists on PFS is not chosen.
    let refusal = pair.create_child(None, None);
    assert_eq!(refusal.unwrap_err(), NotifyType::NO_PROPOSAL_CHOSEN);
}

#[test]
fn new_child_sas_stop_one_short_of_the_limit_which_a_rekey_may_reach() {
    let (mut pair, first) = establish(config());
    for n in 2..MAX_CHILD_SAS_PER_TUNNEL {
        let ours = pair.create_child(None, None).unwrap_or_else(|e| panic!("Child SA {n}: {e}"));
        let child = pair.announced_child();
        assert_same_child(&child, &ours);
        assert_eq!(child.rekey_of, None);
    }
    // 99 Child SAs: a new one is refused, a rekey takes the last slot, a second rekey must wait.
    assert_eq!(pair.create_child(None, None).unwrap_err(), NotifyType::NO_ADDITIONAL_SAS);
    pair.create_child(Some(first.outbound.spi), None).expect("a rekey at the limit");
    let newest = pair.announced_child();
    assert_eq!(pair.create_child(Some(newest.outbound.spi), None).unwrap_err(), NotifyType::TEMPORARY_FAILURE);
    // Once the rekeyed Child SA is deleted, there is room again.
    pair.delete_children(vec![first.outbound.spi]);
    pair.create_child(Some(newest.outbound.spi), None).expect("room after the Delete");
    // The limit is the tunnel's, over all its IKE SAs: a second IKE SA gets no Child SA in
    // IKE_AUTH, until the first IKE SA and its Child SAs are gone.
    let first_ike = std::mem::replace(&mut pair.initiator, Initiator::new(config()));
    pair.init().unwrap();
    assert_eq!(pair.auth().unwrap().child.unwrap_err(), NotifyType::NO_ADDITIONAL_SAS);
    let second_ike = std::mem::replace(&mut pair.initiator, first_ike);
    let request = pair.initiator.delete_ike_sa().unwrap();
    pair.exchange(&request).expect("the Delete is answered");
    pair.initiator = second_ike;
    pair.create_child(None, None).expect("the tunnel has room again");
}

#[test]
fn an_ike_sa_rekey_moves_the_child_sas_and_the_old_ike_sa_ends_alone() {
    // CREATE_CHILD_SA SK { SA(IKE, new SPI_i), Ni, KEi } -->  <-- SK { SA(IKE, new SPI_r), Nr, KEr }
    // (old IKE SA) INFORMATIONAL SK { D(IKE) } -->  <-- SK {}
    let (mut pair, child) = establish(config());
    let old_spi_r = pair.responder.established()[0].spi_r;
    let request = pair.initiator.rekey_ike_sa().unwrap();
    let response = pair.exchange(&request).unwrap();
    let successor = pair.initiator.on_rekey_ike_sa_response(&response).unwrap().expect("the rekey is agreed");
    pair.events();
    assert_eq!(pair.rekeyed.len(), 1);
    let new_sa = pair.rekeyed[0].clone();
    assert_eq!(Some(new_sa.spi_r), successor.spi_r());
    assert_eq!(new_sa.spi_i, successor.spi_i());
    assert_eq!(new_sa.spi_r >> 48, u64::from(NODE_ID), "the node ID tops the new IKE SPI");
    assert_eq!(pair.responder.established().len(), 2, "the old IKE SA waits for its Delete");

    // The old IKE SA takes no new Child SA now.
    assert_eq!(pair.create_child(None, None).unwrap_err(), NotifyType::TEMPORARY_FAILURE);
    let mut old = std::mem::replace(&mut pair.initiator, successor);
    let request = old.delete_ike_sa().unwrap();
    let response = pair.exchange(&request).unwrap();
    assert!(old.open_response(&response).unwrap().is_empty());
    pair.events();
    assert_eq!(pair.ended.len(), 1);
    assert_eq!(pair.ended[0].spi_r, old_spi_r);
    assert!(pair.deleted.is_empty(), "the Child SAs moved to the new IKE SA");
    assert_eq!(pair.responder.established(), vec![new_sa]);

    // The new IKE SA speaks with its own keys from message ID 0: a liveness check, then the rekey
    // of the Child SA that moved to it.
    let request = pair.initiator.informational().unwrap();
    let response = pair.exchange(&request).unwrap();
    assert!(pair.initiator.open_response(&response).unwrap().is_empty());
    let ours = pair.create_child(Some(child.outbound.spi), None).unwrap();
    assert_same_child(&pair.announced_child(), &ours);
}

#[test]
fn a_delete_of_the_ike_sa_ends_every_child_sa_it_has() {
    // INFORMATIONAL SK { D(IKE) } -->  <-- SK {}
    let (mut pair, first) = establish(config());
    let second = pair.create_child(None, None).unwrap();
    pair.events();
    let request = pair.initiator.delete_ike_sa().unwrap();
    let response = pair.exchange(&request).unwrap();
    assert!(pair.initiator.open_response(&response).unwrap().is_empty());
    pair.events();
    let mut gone: Vec<u32> = pair.deleted.iter().map(|c| c.inbound_spi).collect();
    gone.sort_unstable();
    let mut expected = vec![first.inbound.spi, second.outbound.0];
    expected.sort_unstable();
    assert_eq!(gone, expected);
    assert_eq!(pair.ended.len(), 1);
    assert!(pair.responder.established().is_empty());
    assert_eq!(pair.responder.ike_sa_count(), 0);
    // Anything more on it is dropped without an answer.
    let request = pair.initiator.informational().unwrap();
    assert!(pair.exchange(&request).is_none());
}

#[test]
fn a_retransmitted_create_child_sa_gets_the_same_answer_and_installs_nothing_twice() {
    let (mut pair, old) = establish(config());
    let request = pair.initiator.create_child_sa(Some(old.outbound.spi), None).unwrap();
    let first = pair.exchange(&request).unwrap();
    let again = pair.exchange(&request).unwrap();
    assert_eq!(first, again, "byte for byte");
    let (children, _) = pair.events();
    assert_eq!(children.len(), 1);
    pair.initiator.on_create_child_sa_response(&first).unwrap().unwrap();
}

#[test]
fn initial_contact_ends_the_earlier_ike_sas_of_the_same_peer_and_tunnel() {
    // A router that restarted: IKE_AUTH SK { IDi, N(INITIAL_CONTACT), AUTH, SA, TSi, TSr } -->
    let (mut pair, first) = establish(config());
    // A second IKE SA of the same router without INITIAL_CONTACT stands beside the first...
    pair.initiator = Initiator::new(config());
    pair.init().unwrap();
    let second = pair.auth().unwrap().child.unwrap();
    pair.events();
    // ...and one of another tunnel, with another ID, is none of the restart's business.
    let mut other = config();
    other.id = Identification::new(IdType::FQDN, b"t2.acct.ipsec.example.net".to_vec());
    other.psk = b"second secret".to_vec();
    pair.initiator = Initiator::new(other);
    pair.init().unwrap();
    pair.auth().unwrap().child.unwrap();
    pair.events();
    assert_eq!(pair.responder.established().len(), 3);

    let mut restarted = config();
    restarted.initial_contact = true;
    pair.initiator = Initiator::new(restarted);
    pair.init().unwrap();
    let fresh = pair.auth().unwrap().child.unwrap();
    let (children, logs) = pair.events();
    let mut gone: Vec<u32> = pair.deleted.iter().map(|c| c.inbound_spi).collect();
    gone.sort_unstable();
    let mut expected = vec![first.inbound.spi, second.outbound.0];
    expected.sort_unstable();
    assert_eq!(gone, expected, "both earlier Child SAs of t1 end");
    assert_eq!(pair.ended.len(), 2);
    assert_eq!(children.len(), 1);
    assert_eq!(children[0].inbound.spi, fresh.outbound.0);
    let tunnels: Vec<String> = pair.responder.established().into_iter().map(|sa| sa.tunnel).collect();
    assert_eq!(tunnels, vec!["t1".to_string(), "t2".to_string()]);
    assert_eq!(pair.responder.counters().initial_contact_deletes, 2);
    assert!(logs.iter().any(|l| l.message.contains("INITIAL_CONTACT")), "{logs:?}");
}

/// An IKE_SA_INIT from `address` (a stranger that never goes on): the answer, if any.
fn init_from(pair: &mut Pair, address: SocketAddr) -> Option<Vec<u8>> {
    let mut stranger = config();
    stranger.local = address;
    let mut initiator = Initiator::new(stranger);
    let saved = std::mem::replace(&mut pair.remote, address);
    let answer = pair.exchange(&initiator.ike_sa_init());
    pair.remote = saved;
    answer
}

#[test]
fn past_the_threshold_ike_sa_init_must_bring_a_cookie_and_the_half_open_table_stays_bounded() {
    // HDR(A,0), SAi1, KEi, Ni -->  <-- HDR(A,0), N(COOKIE)
    // HDR(A,0), N(COOKIE), SAi1, KEi, Ni -->  <-- HDR(A,B), SAr1, KEr, Nr
    let limits = crate::policy::HalfOpenLimits { cookie_threshold: 2, per_peer: 1, total: 4 };
    let mut pair = Pair::with_policy(config(), ResponderPolicy { half_open: limits, ..policy() });
    let stranger = |n: u8| SocketAddr::from(([198, 18, 0, n], 500));
    for n in 1..=2 {
        let answer = init_from(&mut pair, stranger(n)).expect("answered");
        assert_ne!(Message::parse(&answer).unwrap().header.spi_r, 0, "under the threshold: a half-open SA");
    }
    assert_eq!(pair.responder.half_open_count(), 2);

    // The router now gets a cookie first, and comes through with it.
    let request = pair.initiator.ike_sa_init();
    let challenge = pair.exchange(&request).unwrap();
    let message = Message::parse(&challenge).unwrap();
    assert_eq!(message.header.spi_r, 0, "no state for a challenge");
    assert!(matches!(&message.payloads[..], [Payload::Notify(n)] if n.kind == NotifyType::COOKIE));
    assert_eq!(pair.responder.half_open_count(), 2);
    assert!(!pair.initiator.on_ike_sa_init_response(&challenge).unwrap(), "asked to retry");
    pair.init().unwrap();
    assert_eq!(pair.responder.half_open_count(), 3);
    pair.auth().unwrap().child.unwrap();
    assert_eq!(pair.responder.half_open_count(), 2, "authenticated: no longer half-open");
    assert_eq!(pair.responder.established().len(), 1);

    // A stranger's cookie does not open the door for another SPI: it gets a fresh challenge.
    let mut forger = Initiator::new(config());
    let first = forger.ike_sa_init();
    let challenge = pair.exchange(&first).unwrap();
    assert!(!forger.on_ike_sa_init_response(&challenge).unwrap());
    let with_cookie = forger.ike_sa_init();
    let mut replayed = Message::parse(&with_cookie).unwrap();
    replayed.header.spi_i ^= 1;
    let answer = pair.exchange(&replayed.encode().unwrap()).unwrap();
    assert_eq!(Message::parse(&answer).unwrap().header.spi_r, 0, "challenged again");
    assert_eq!(pair.responder.counters().cookies_sent, 3);

    // Per address: a second half-open SA from one address is dropped without an answer.
    let answer = pair.exchange(&with_cookie).unwrap();
    assert_ne!(Message::parse(&answer).unwrap().header.spi_r, 0, "the cookie holds for its own SPI");
    let mut third = Initiator::new(config());
    assert!(pair.exchange(&third.ike_sa_init()).is_none(), "over the per-address limit");
    // In total: the fourth half-open SA fills the table; a fifth is dropped, cookie or not.
    assert_eq!(pair.responder.half_open_count(), 3);
    let mut fourth = config();
    fourth.local = stranger(9);
    let saved = std::mem::replace(&mut pair.remote, stranger(9));
    let mut fourth = Initiator::new(fourth);
    let challenge = pair.exchange(&fourth.ike_sa_init()).unwrap();
    assert!(!fourth.on_ike_sa_init_response(&challenge).unwrap());
    assert!(Message::parse(&pair.exchange(&fourth.ike_sa_init()).unwrap()).unwrap().header.spi_r != 0);
    assert_eq!(pair.responder.half_open_count(), 4);
    let mut fifth = Initiator::new(config());
    assert!(pair.exchange(&fifth.ike_sa_init()).is_none(), "the table is full");
    pair.remote = saved;
    assert_eq!(pair.responder.counters().half_open_dropped, 2);
    // Expiry frees the table; the established IKE SA stays.
    pair.responder.handle_timeout(pair.now + HALF_OPEN_TIMEOUT);
    assert_eq!(pair.responder.half_open_count(), 0);
    assert_eq!(pair.responder.established().len(), 1);
}

impl Pair {
    /// Run the responder's timers at `at` after now; the datagrams it sends.
    pub(super) fn tick(&mut self, at: Duration) -> Vec<Vec<u8>> {
        self.responder.handle_timeout(self.now + at);
        std::iter::from_fn(|| self.responder.poll_transmit()).map(|t| t.bytes).collect()
    }

    /// Answer a request of the responder's; the payloads it carried.
    pub(super) fn answer(&mut self, request: &[u8]) -> Vec<Payload> {
        let (payloads, answer) = self.initiator.answer_request(request).unwrap();
        self.responder.handle_datagram(self.now, self.local, self.remote, &answer);
        assert!(self.responder.poll_transmit().is_none(), "a response is not answered");
        payloads
    }
}

pub(super) fn timers(liveness: Option<u64>, child_lifetime: u64, ike_lifetime: u64) -> ResponderPolicy {
    let timers = crate::policy::Timers {
        liveness_after: liveness.map(Duration::from_secs),
        child_sa_lifetime: Duration::from_secs(child_lifetime),
        ike_sa_lifetime: Duration::from_secs(ike_lifetime),
        ..Default::default()
    };
    ResponderPolicy { timers, ..policy() }
}

pub(super) fn established_with(policy: ResponderPolicy) -> (Pair, ChildSa) {
    let mut pair = Pair::with_policy(config(), policy);
    pair.init().unwrap();
    pair.auth().unwrap().child.unwrap();
    let child = pair.announced_child();
    (pair, child)
}

#[test]
fn a_silent_peer_is_asked_whether_it_lives_and_one_that_answers_keeps_its_sas() {
    // <-- HDR, SK {}   HDR, SK {} -->
    let (mut pair, _) = established_with(timers(Some(30), 3600, 7200));
    assert!(pair.tick(Duration::from_secs(29)).is_empty(), "not silent long enough");
    pair.now += Duration::from_secs(30);
    let sent = pair.tick(Duration::ZERO);
    assert_eq!(sent.len(), 1);
    let request = Message::parse(&sent[0]).unwrap();
    assert_eq!(request.header.exchange, crate::wire::ExchangeType::INFORMATIONAL);
    assert_eq!((request.header.flags.initiator(), request.header.flags.response()), (false, false));
    assert_eq!(request.header.message_id, 0, "our own message IDs start at 0");
    assert!(pair.answer(&sent[0]).is_empty(), "an empty liveness check");
    assert!(pair.tick(Duration::from_secs(29)).is_empty(), "answered: nothing to retransmit, nothing to ask");
    pair.events();
    assert!(pair.deleted.is_empty() && pair.ended.is_empty());
    // The answer counts as hearing from the peer: the next check comes 30 s after it.
    let sent = pair.tick(Duration::from_secs(31));
    assert_eq!(Message::parse(&sent[0]).unwrap().header.message_id, 1);
}

#[test]
fn a_peer_that_answers_no_retransmission_is_taken_for_gone_with_its_child_sas() {
    let (mut pair, child) = established_with(timers(Some(30), 3600, 7200));
    let first = pair.tick(Duration::from_secs(30));
    // Retransmitted byte for byte 2, 4, 8 and 16 s apart (RFC 7296 2.1)...
    let mut at = 30;
    for wait in [2, 4, 8, 16] {
        assert!(pair.tick(Duration::from_secs(at + wait - 1)).is_empty(), "not yet at {}", at + wait - 1);
        at += wait;
        assert_eq!(pair.tick(Duration::from_secs(at)), first, "retransmission at {at} s");
    }
    pair.events();
    assert!(pair.ended.is_empty());
    // ...and 32 s after the last one, the IKE SA and its Child SA end.
    assert!(pair.tick(Duration::from_secs(at + 32)).is_empty());
    let (_, logs) = pair.events();
    assert_eq!(pair.ended.len(), 1);
    assert_eq!(pair.deleted.len(), 1);
    assert_eq!(pair.deleted[0].inbound_spi, child.inbound.spi);
    assert!(pair.responder.established().is_empty());
    assert!(logs.iter().any(|l| l.message.contains("answered none of 5 retransmissions")), "{logs:?}");
}

#[test]
fn child_and_ike_sas_past_their_lifetime_are_deleted_and_the_peer_told() {
    // <-- HDR, SK {D(ESP, SPI)}   HDR, SK {} -->     <-- HDR, SK {D(IKE)}   HDR, SK {} -->
    let (mut pair, first) = established_with(timers(None, 60, 120));
    pair.now += Duration::from_secs(30);
    let second = pair.create_child(None, None).unwrap();
    pair.events();
    let sent = pair.tick(Duration::from_secs(30));
    assert_eq!(sent.len(), 1);
    let payloads = pair.answer(&sent[0]);
    assert_eq!(payloads, vec![Payload::Delete(Delete { protocol: ProtocolId::ESP, spis: vec![first.inbound.spi] })]);
    pair.events();
    assert_eq!(pair.deleted.len(), 1, "the first Child SA is 60 s old, the second 30 s");
    assert_eq!(pair.deleted[0].inbound_spi, first.inbound.spi);

    // At 120 s the IKE SA goes; the second Child SA, 90 s old, went at 90 s.
    let sent = pair.tick(Duration::from_secs(60));
    assert_eq!(
        pair.answer(&sent[0]),
        vec![Payload::Delete(Delete { protocol: ProtocolId::ESP, spis: vec![second.outbound.0] })]
    );
    let sent = pair.tick(Duration::from_secs(90));
    assert_eq!(pair.answer(&sent[0]), vec![Payload::Delete(Delete { protocol: ProtocolId::IKE, spis: vec![] })]);
    pair.events();
    assert_eq!(pair.deleted.len(), 2);
    assert_eq!(pair.ended.len(), 1);
    assert!(pair.responder.established().is_empty());
}

// Collisions (RFC 7296 2.25): our own Delete (an SA past its lifetime) crossing the peer's rekey or
// Delete of the same SA. Rekeys crossing rekeys (2.8.1) are in `rekey_tests`.

/// An IKE SA whose first Child SA has just passed its 60 s lifetime: our Delete of it, sent and
/// not answered yet.
fn child_delete_in_flight() -> (Pair, ChildSa, Vec<u8>) {
    let (mut pair, child) = established_with(timers(None, 60, 3600));
    pair.now += Duration::from_secs(60);
    let sent = pair.tick(Duration::ZERO);
    assert_eq!(sent.len(), 1, "our Delete");
    pair.events();
    assert_eq!(pair.deleted.len(), 1, "out of the dataplane at once");
    (pair, child, sent[0].clone())
}

#[test]
fn a_child_sa_rekey_crossing_our_delete_of_it_gets_temporary_failure() {
    // <-- HDR, SK {D(ESP, SPI)}  (sent, not answered)
    // HDR, SK {N(REKEY_SA), SA, Ni, TSi, TSr} -->  <-- HDR, SK {N(TEMPORARY_FAILURE)}
    // HDR, SK {} -->  (the peer answers our Delete)
    // HDR, SK {N(REKEY_SA), SA, Ni, TSi, TSr} -->  <-- HDR, SK {N(CHILD_SA_NOT_FOUND)}
    let (mut pair, child, our_delete) = child_delete_in_flight();
    assert_eq!(pair.create_child(Some(child.outbound.spi), None).unwrap_err(), NotifyType::TEMPORARY_FAILURE);
    pair.answer(&our_delete);
    assert_eq!(pair.create_child(Some(child.outbound.spi), None).unwrap_err(), NotifyType::CHILD_SA_NOT_FOUND);
    // A new Child SA is still welcome, and nothing else ended.
    pair.create_child(None, None).unwrap();
    pair.announced_child();
    assert_eq!((pair.deleted.len(), pair.ended.len()), (1, 0));
}

#[test]
fn deletes_of_the_same_child_sa_that_cross_are_answered_without_a_delete() {
    // <-- HDR, SK {D(ESP, SPI_r)}  (sent, not answered)
    // HDR, SK {D(ESP, SPI_i)} -->  <-- HDR, SK {}   (no Delete: the SA is gone already)
    // HDR, SK {} -->  (the peer answers ours)
    let (mut pair, child, our_delete) = child_delete_in_flight();
    let answer = pair.delete_children(vec![child.outbound.spi]);
    assert!(answer.is_empty(), "{answer:?}");
    pair.answer(&our_delete);
    pair.events();
    assert_eq!(pair.deleted.len(), 1, "the Child SA ended once");
    assert_eq!(pair.responder.established().len(), 1, "the IKE SA stands");
    assert!(pair.tick(Duration::from_secs(10)).is_empty(), "nothing left to ask");
}

/// An IKE SA past its 120 s lifetime: our Delete of it, sent and not answered yet.
fn ike_delete_in_flight() -> (Pair, ChildSa, Vec<u8>) {
    let (mut pair, child) = established_with(timers(None, 3600, 120));
    pair.now += Duration::from_secs(120);
    let sent = pair.tick(Duration::ZERO);
    assert_eq!(sent.len(), 1, "our Delete");
    (pair, child, sent[0].clone())
}

#[test]
fn rekeys_crossing_our_delete_of_the_ike_sa_get_temporary_failure() {
    // <-- HDR, SK {D(IKE)}  (sent, not answered)
    // HDR, SK {SA, Ni, KEi} -->  <-- HDR, SK {N(TEMPORARY_FAILURE)}            (IKE SA rekey)
    // HDR, SK {N(REKEY_SA), SA, Ni, TSi, TSr} -->  <-- HDR, SK {N(TEMPORARY_FAILURE)}
    // HDR, SK {} -->  (the peer answers ours: the IKE SA and its Child SA end)
    let (mut pair, child, our_delete) = ike_delete_in_flight();
    let request = pair.initiator.rekey_ike_sa().unwrap();
    let response = pair.exchange(&request).unwrap();
    let refused = pair.initiator.on_rekey_ike_sa_response(&response).unwrap().unwrap_err();
    assert_eq!(refused, NotifyType::TEMPORARY_FAILURE);
    assert_eq!(pair.create_child(Some(child.outbound.spi), None).unwrap_err(), NotifyType::TEMPORARY_FAILURE);
    pair.answer(&our_delete);
    pair.events();
    assert_eq!((pair.ended.len(), pair.deleted.len(), pair.rekeyed.len()), (1, 1, 0));
    assert!(pair.responder.established().is_empty());
}

#[test]
fn deletes_of_the_ike_sa_that_cross_end_it_once() {
    // <-- HDR, SK {D(IKE)}  (sent, not answered)
    // HDR, SK {D(IKE)} -->  <-- HDR, SK {}
    // HDR, SK {} -->  (the answer to ours, for an IKE SA gone: dropped)
    let (mut pair, _, our_delete) = ike_delete_in_flight();
    let request = pair.initiator.delete_ike_sa().unwrap();
    let response = pair.exchange(&request).expect("the peer's Delete is answered");
    assert!(pair.initiator.open_response(&response).unwrap().is_empty());
    let (_, answer) = pair.initiator.answer_request(&our_delete).unwrap();
    pair.responder.handle_datagram(pair.now, pair.local, pair.remote, &answer);
    assert!(pair.responder.poll_transmit().is_none());
    pair.events();
    assert_eq!((pair.ended.len(), pair.deleted.len()), (1, 1), "ended once, with its Child SA");
    assert!(pair.responder.established().is_empty());
    assert!(pair.tick(Duration::from_secs(60)).is_empty(), "no retransmission for an IKE SA gone");
}
