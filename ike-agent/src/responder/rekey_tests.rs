//! Child SA rekeys we start at the soft lifetime, and their collisions with the peer's own rekey
//! of the same Child SA (RFC 7296 2.8.1), exchange by exchange, in RFC notation. `<--` is ours.

use super::lifecycle_tests::*;
use super::tests::*;
use super::*;
use crate::crypto::ke::KeyExchangeMethod;
use crate::initiator::InitiatorChild;
use crate::wire::{Delete, KeMethod, ProtocolId};

/// Rekeys due `rekey` s (less up to a tenth) after a Child SA is agreed; hard lifetime 3600 s; no
/// liveness checks.
fn soft(rekey: u64) -> ResponderPolicy {
    let mut policy = timers(None, 3600, 7200);
    policy.timers.child_sa_rekey_after = Some(Duration::from_secs(rekey));
    policy
}

fn header(datagram: &[u8]) -> Header {
    Message::parse(datagram).unwrap().header
}

impl Pair {
    /// The peer answers our CREATE_CHILD_SA (asking for `group` if it is not the one offered):
    /// the Child SA as the peer holds it, or its refusal.
    fn answer_rekey(&mut self, request: &[u8], group: Option<KeyExchangeMethod>) -> Result<InitiatorChild, NotifyType> {
        let (child, answer) = self.initiator.answer_create_child_sa(request, group).unwrap();
        // What the answer brings (a Delete, a retry) goes out at once, collected by `our_request`.
        self.responder.handle_datagram(self.now, self.local, self.remote, &answer);
        child
    }

    /// Move the clock on by `by` and run the timers: the one request we send.
    fn our_request(&mut self, by: Duration) -> Vec<u8> {
        self.now += by;
        let mut sent = self.tick(Duration::ZERO);
        assert_eq!(sent.len(), 1, "one request at a time");
        sent.remove(0)
    }
}

#[test]
fn at_its_soft_lifetime_we_rekey_a_child_sa_and_delete_the_old_one_once_the_new_one_is_in() {
    // <-- HDR, SK {N(REKEY_SA, old SPI), SA, Ni, KEi, TSi, TSr}
    //                                        HDR, SK {SA, Nr, KEr, TSi, TSr} -->
    // <-- HDR, SK {D(ESP, old SPI)}          HDR, SK {} -->
    let (mut pair, old) = established_with(soft(100));
    assert!(pair.tick(Duration::from_secs(89)).is_empty(), "not due before 90 s");
    let request = pair.our_request(Duration::from_secs(100));
    let h = header(&request);
    assert_eq!(h.exchange, ExchangeType::CREATE_CHILD_SA);
    assert_eq!((h.flags.initiator(), h.flags.response(), h.message_id), (false, false, 0));

    let ours = pair.answer_rekey(&request, None).expect("the peer agrees");
    let new = pair.announced_child();
    assert_same_child(&new, &ours);
    assert!(new.rekey_started_here, "both ways at once: the peer had it before it answered");
    assert_eq!(new.rekey_of, Some(old.inbound.spi));
    assert_eq!((new.suite.encryption, new.selectors), (old.suite.encryption, old.selectors));
    assert_eq!(new.suite.pfs, Some(KeyExchangeMethod::Ecp384), "the router listed no group: the IKE SA's");
    assert_ne!(new.inbound.spi, old.inbound.spi);
    assert_ne!(*new.inbound.encryption, *old.inbound.encryption, "fresh nonces, fresh keys");
    assert!(pair.deleted.is_empty(), "the old Child SA carries what is in flight until its Delete is answered");

    let delete = pair.our_request(Duration::ZERO);
    assert_eq!(
        pair.answer(&delete),
        vec![Payload::Delete(Delete { protocol: ProtocolId::ESP, spis: vec![old.inbound.spi] })]
    );
    pair.events();
    assert_eq!(pair.deleted.len(), 1);
    assert_eq!((pair.deleted[0].inbound_spi, pair.deleted[0].outbound_spi), (old.inbound.spi, old.outbound.spi));
    assert_eq!(pair.responder.counters().child_rekeys_started, 1);

    // The new Child SA is rekeyed at its own soft lifetime, the old one never again.
    let request = pair.our_request(Duration::from_secs(100));
    assert_eq!(header(&request).message_id, 2);
    pair.answer_rekey(&request, None).unwrap();
    assert_eq!(pair.announced_child().rekey_of, Some(new.inbound.spi));
    let delete = pair.our_request(Duration::ZERO);
    pair.answer(&delete);
    // A rekey of the old Child SA by the peer now finds none.
    assert_eq!(pair.create_child(Some(old.outbound.spi), None).unwrap_err(), NotifyType::CHILD_SA_NOT_FOUND);
}

#[test]
fn our_rekey_offers_the_pfs_group_the_router_listed_and_takes_the_one_it_asks_for() {
    // <-- HDR, SK {N(REKEY_SA), SA(ECP_384), Ni, KEi(ECP_384), TSi, TSr}
    //                                        HDR, SK {N(INVALID_KE_PAYLOAD, MODP_2048)} -->
    // <-- HDR, SK {N(REKEY_SA), SA(MODP_2048), Ni, KEi(MODP_2048), TSi, TSr}
    //                                        HDR, SK {SA, Nr, KEr, TSi, TSr} -->
    let mut config = config();
    config.esp_proposals = vec![esp_with_groups(&[KeMethod::MODP_2048, KeMethod::ECP_384])];
    let mut pair = Pair::with_policy(config, soft(100));
    pair.init().unwrap();
    pair.auth().unwrap().child.unwrap();
    let old = pair.announced_child();
    assert_eq!(old.suite.pfs, None, "IKE_AUTH has no key exchange");

    let request = pair.our_request(Duration::from_secs(100));
    let refused = pair.answer_rekey(&request, Some(KeyExchangeMethod::Modp2048));
    assert_eq!(refused.unwrap_err(), NotifyType::INVALID_KE_PAYLOAD, "we offered our preferred group, 20");
    let (children, logs) = pair.events();
    assert!(children.is_empty());
    assert!(logs.iter().any(|l| l.message.contains("the peer asks for MODP_2048")), "{logs:?}");

    let retry = pair.our_request(Duration::ZERO);
    let ours = pair.answer_rekey(&retry, Some(KeyExchangeMethod::Modp2048)).expect("agreed with group 14");
    let new = pair.announced_child();
    assert_same_child(&new, &ours);
    assert_eq!(new.suite.pfs, Some(KeyExchangeMethod::Modp2048));
    assert_eq!(pair.responder.counters().child_rekeys_started, 2);
}

#[test]
fn a_refused_rekey_leaves_the_child_sa_as_it_is_and_is_tried_again_later() {
    // <-- HDR, SK {N(REKEY_SA), SA, Ni, TSi, TSr}   HDR, SK {N(TEMPORARY_FAILURE)} -->
    // ... a minute later, the same again, agreed.
    let (mut pair, old) = established_with(soft(100));
    let request = pair.our_request(Duration::from_secs(100));
    let refusal = [Payload::Notify(Notify::new(NotifyType::TEMPORARY_FAILURE, Vec::new()))];
    let (_, answer) = pair.initiator.answer_request_with(&request, &refusal).unwrap();
    pair.responder.handle_datagram(pair.now, pair.local, pair.remote, &answer);
    let (children, logs) = pair.events();
    assert!(children.is_empty() && pair.deleted.is_empty(), "the old Child SA carries on");
    assert!(logs.iter().any(|l| l.message.contains("refused by the peer: TEMPORARY_FAILURE")), "{logs:?}");
    assert!(pair.tick(super::ours::REKEY_RETRY - Duration::from_secs(1)).is_empty());
    let again = pair.our_request(super::ours::REKEY_RETRY);
    pair.answer_rekey(&again, None).unwrap();
    assert_eq!(pair.announced_child().rekey_of, Some(old.inbound.spi));
}

#[test]
fn no_proposal_chosen_brings_one_more_try_with_pfs_the_other_way_round() {
    // <-- HDR, SK {N(REKEY_SA), SA(ECP_384), Ni, KEi, TSi, TSr}   HDR, SK {N(NO_PROPOSAL_CHOSEN)} -->
    // <-- HDR, SK {N(REKEY_SA), SA, Ni, TSi, TSr}                 HDR, SK {N(NO_PROPOSAL_CHOSEN)} -->
    // ... a minute later, with PFS again: agreed.
    let (mut pair, old) = established_with(soft(100));
    let refusal = [Payload::Notify(Notify::new(NotifyType::NO_PROPOSAL_CHOSEN, Vec::new()))];
    let mut offers = Vec::new();
    for by in [Duration::from_secs(100), Duration::ZERO] {
        let request = pair.our_request(by);
        let (payloads, answer) = pair.initiator.answer_request_with(&request, &refusal).unwrap();
        offers.push(payloads.iter().any(|p| matches!(p, Payload::Ke(_))));
        pair.responder.handle_datagram(pair.now, pair.local, pair.remote, &answer);
    }
    assert_eq!(offers, vec![true, false], "first with PFS, then without");
    let (children, logs) = pair.events();
    assert!(children.is_empty());
    assert!(logs.iter().any(|l| l.message.contains("trying again without PFS")), "{logs:?}");
    assert!(logs.iter().any(|l| l.message.contains("refused by the peer: NO_PROPOSAL_CHOSEN")), "{logs:?}");
    assert!(pair.tick(super::ours::REKEY_RETRY - Duration::from_secs(1)).is_empty(), "no third try at once");
    let again = pair.our_request(super::ours::REKEY_RETRY);
    let new = pair.answer_rekey(&again, None).unwrap();
    assert_eq!(new.suite.pfs, None, "the last try's choice is kept");
    assert_eq!(pair.announced_child().rekey_of, Some(old.inbound.spi));
}

#[test]
fn a_lost_rekey_request_is_retransmitted_byte_for_byte() {
    let (mut pair, old) = established_with(soft(100));
    let request = pair.our_request(Duration::from_secs(100));
    assert!(pair.tick(Duration::from_millis(1999)).is_empty());
    assert_eq!(pair.tick(Duration::from_secs(2)), vec![request.clone()], "after 2 s, the same bytes");
    pair.now += Duration::from_secs(2);
    pair.answer_rekey(&request, None).unwrap();
    assert_eq!(pair.announced_child().rekey_of, Some(old.inbound.spi));
    // The peer's answer repeated finds nothing in flight.
    assert_eq!(pair.responder.counters().child_rekeys_started, 1);
}

/// Our rekey of the first Child SA is in flight, and the peer's rekey of the same Child SA has
/// just been agreed (with `peer_nonce` as its Ni, if given): the request, the peer's Child SA as
/// both sides hold it, and the old Child SA.
fn crossing_rekeys(peer_nonce: Option<Vec<u8>>) -> (Pair, Vec<u8>, InitiatorChild, ChildSa, ChildSa) {
    let (mut pair, old) = established_with(soft(100));
    let ours = pair.our_request(Duration::from_secs(100));
    if let Some(nonce) = peer_nonce {
        pair.initiator.set_next_nonce(nonce);
    }
    let theirs = pair.create_child(Some(old.outbound.spi), None).expect("the peer's rekey is agreed too");
    let b = pair.announced_child();
    assert_same_child(&b, &theirs);
    assert!(!b.rekey_started_here, "its outbound SA waits for the old Child SA's Delete");
    (pair, ours, theirs, b, old)
}

#[test]
fn crossing_rekeys_where_ours_has_the_lowest_nonce_delete_ours() {
    // <-- HDR, SK {N(REKEY_SA, old), SA, Ni(A), TSi, TSr}         (ours, in flight)
    // HDR, SK {N(REKEY_SA, old), SA, Ni(B), TSi, TSr} -->
    //                                <-- HDR, SK {SA, Nr(B), TSi, TSr}
    // HDR, SK {SA, Nr(A) = 00...00, TSi, TSr} -->   (A made the lowest nonce: ours is redundant)
    // <-- HDR, SK {D(ESP, A)}         HDR, SK {} -->
    // HDR, SK {D(ESP, old)} -->       <-- HDR, SK {D(ESP, old)}   (the winner deletes the old SA)
    let (mut pair, ours, _theirs, b, old) = crossing_rekeys(None);
    pair.initiator.set_next_nonce(vec![0; 32]);
    let a = pair.answer_rekey(&ours, None).expect("the peer agreed ours as well");
    let (children, logs) = pair.events();
    assert!(children.is_empty(), "the redundant Child SA never enters the dataplane");
    assert!(pair.redundant.is_empty(), "the peer's stays");
    assert!(logs.iter().any(|l| l.message.contains("rekeyed by both sides at once: the peer's stays")), "{logs:?}");
    assert_eq!(pair.responder.counters().rekey_collisions, 1);

    let delete = pair.our_request(Duration::ZERO);
    assert_eq!(
        pair.answer(&delete),
        vec![Payload::Delete(Delete { protocol: ProtocolId::ESP, spis: vec![a.outbound.0] })]
    );
    pair.events();
    assert_eq!(pair.deleted.iter().map(|d| d.inbound_spi).collect::<Vec<_>>(), vec![a.outbound.0]);

    let answer = pair.delete_children(vec![old.outbound.spi]);
    assert_eq!(answer, vec![Payload::Delete(Delete { protocol: ProtocolId::ESP, spis: vec![old.inbound.spi] })]);
    pair.events();
    assert_eq!(pair.deleted.len(), 2);
    // The peer's Child SA is the tunnel's now, and is rekeyed in its turn.
    let request = pair.our_request(Duration::from_secs(100));
    pair.answer_rekey(&request, None).unwrap();
    assert_eq!(pair.announced_child().rekey_of, Some(b.inbound.spi));
}

#[test]
fn crossing_rekeys_where_the_peers_has_the_lowest_nonce_keep_ours() {
    // <-- HDR, SK {N(REKEY_SA, old), SA, Ni(A), TSi, TSr}         (ours, in flight)
    // HDR, SK {N(REKEY_SA, old), SA, Ni(B) = 00...00, TSi, TSr} -->
    //                                <-- HDR, SK {SA, Nr(B), TSi, TSr}
    // HDR, SK {SA, Nr(A), TSi, TSr} -->           (B made the lowest nonce: the peer's is redundant)
    // <-- HDR, SK {D(ESP, old)}       HDR, SK {} -->
    // HDR, SK {D(ESP, B)} -->         <-- HDR, SK {D(ESP, B)}     (the peer deletes its own)
    let (mut pair, ours, theirs, b, old) = crossing_rekeys(Some(vec![0; 32]));
    let a = pair.answer_rekey(&ours, None).expect("the peer agreed ours as well");
    let new = pair.announced_child();
    assert_same_child(&new, &a);
    assert!(new.rekey_started_here);
    assert_eq!(pair.redundant.len(), 1, "the peer's outbound SA must never go in");
    assert_eq!((pair.redundant[0].inbound_spi, pair.redundant[0].outbound_spi), (b.inbound.spi, b.outbound.spi));
    assert_eq!(pair.responder.counters().rekey_collisions, 1);

    let delete = pair.our_request(Duration::ZERO);
    assert_eq!(
        pair.answer(&delete),
        vec![Payload::Delete(Delete { protocol: ProtocolId::ESP, spis: vec![old.inbound.spi] })]
    );
    let answer = pair.delete_children(vec![theirs.inbound.0]);
    assert_eq!(answer, vec![Payload::Delete(Delete { protocol: ProtocolId::ESP, spis: vec![b.inbound.spi] })]);
    pair.events();
    let mut gone: Vec<u32> = pair.deleted.iter().map(|d| d.inbound_spi).collect();
    gone.sort_unstable();
    let mut expected = vec![old.inbound.spi, b.inbound.spi];
    expected.sort_unstable();
    assert_eq!(gone, expected, "the old Child SA and the peer's redundant one; ours stays");
    // Ours is what gets rekeyed next; the peer's redundant one is never rekeyed.
    let request = pair.our_request(Duration::from_secs(100));
    pair.answer_rekey(&request, None).unwrap();
    assert_eq!(pair.announced_child().rekey_of, Some(new.inbound.spi));
}

#[test]
fn a_child_sa_deleted_while_we_rekey_it_takes_its_successor_with_it() {
    // <-- HDR, SK {N(REKEY_SA, old), SA, Ni, TSi, TSr}   (in flight)
    // HDR, SK {D(ESP, old)} -->  <-- HDR, SK {D(ESP, old)}
    // HDR, SK {SA, Nr, TSi, TSr} -->
    // <-- HDR, SK {D(ESP, new)}   HDR, SK {} -->
    let (mut pair, old) = established_with(soft(100));
    let ours = pair.our_request(Duration::from_secs(100));
    pair.delete_children(vec![old.outbound.spi]);
    let new = pair.answer_rekey(&ours, None).unwrap();
    let (children, _) = pair.events();
    assert!(children.is_empty(), "nothing left to replace");
    let delete = pair.our_request(Duration::ZERO);
    assert_eq!(
        pair.answer(&delete),
        vec![Payload::Delete(Delete { protocol: ProtocolId::ESP, spis: vec![new.outbound.0] })]
    );
    pair.events();
    assert_eq!(pair.deleted.len(), 2);
    assert_eq!(pair.responder.established().len(), 1, "the IKE SA stands");
}

#[test]
fn an_ike_sa_rekey_waits_while_our_child_sa_rekey_is_in_flight() {
    // <-- HDR, SK {N(REKEY_SA), SA, Ni, TSi, TSr}   (in flight)
    // HDR, SK {SA(IKE), Ni, KEi} -->  <-- HDR, SK {N(TEMPORARY_FAILURE)}
    // HDR, SK {SA, Nr, TSi, TSr} -->
    // HDR, SK {SA(IKE), Ni, KEi} -->  <-- HDR, SK {SA(IKE), Nr, KEr}   (both Child SAs move)
    let (mut pair, _) = established_with(soft(100));
    let ours = pair.our_request(Duration::from_secs(100));
    let request = pair.initiator.rekey_ike_sa().unwrap();
    let response = pair.exchange(&request).unwrap();
    let refused = pair.initiator.on_rekey_ike_sa_response(&response).unwrap().unwrap_err();
    assert_eq!(refused, NotifyType::TEMPORARY_FAILURE);
    pair.answer_rekey(&ours, None).unwrap();
    pair.announced_child();
    let delete = pair.our_request(Duration::ZERO);
    pair.answer(&delete);
    let request = pair.initiator.rekey_ike_sa().unwrap();
    let response = pair.exchange(&request).unwrap();
    pair.initiator.on_rekey_ike_sa_response(&response).unwrap().expect("the IKE SA rekeys now");
    pair.events();
    assert_eq!(pair.rekeyed.len(), 1);
}

#[test]
fn rekey_times_spread_over_the_last_tenth_of_the_soft_lifetime() {
    let (pair, _) = established_with(soft(1000));
    let now = pair.now;
    let times: Vec<Duration> = (0..1000).map(|_| pair.responder.rekey_time(now).unwrap().duration_since(now)).collect();
    assert!(times.iter().all(|t| (Duration::from_secs(900)..=Duration::from_secs(1000)).contains(t)), "{times:?}");
    let (low, high) = (times.iter().min().unwrap(), times.iter().max().unwrap());
    assert!(*high - *low > Duration::from_secs(80), "spread: {low:?} to {high:?}");
    let never = Responder::new(ResponderPolicy {
        timers: crate::policy::Timers { child_sa_rekey_after: None, ..Default::default() },
        ..policy()
    })
    .unwrap();
    assert_eq!(never.rekey_time(now), None);
}
