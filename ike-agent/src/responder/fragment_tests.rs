//! IKE fragmentation (RFC 7383) against our initiator, in RFC notation: the negotiation,
//! fragmented requests put back together whatever the order, loss or tampering, fragmented
//! responses retransmitted once per retransmitted request, and the bounds on reassembly.

use super::tests::*;
use super::*;
use crate::initiator::{AuthOutcome, InitiatorConfig, InitiatorError};

/// A datagram size at which IKE_AUTH takes several fragments each way.
const SMALL: usize = 160;
/// The longest IKE message in a datagram of `SMALL` bytes over IPv4 on port 500.
const SMALL_MESSAGE: usize = SMALL - 20 - 8;

fn small_policy() -> ResponderPolicy {
    let mut policy = policy();
    policy.fragmentation.fragment_size = SMALL;
    policy
}

fn fragmenting_config() -> InitiatorConfig {
    let mut config = config();
    config.fragment_size = Some(SMALL);
    config
}

/// Fragment number and total of a datagram, `None` for a whole message.
fn fragment_of(datagram: &[u8]) -> Option<(u16, u16)> {
    Message::parse(datagram).unwrap().fragment().map(|f| (f.number, f.total))
}

/// The fragments of a datagram list are 1 to n of n, in order, none longer than `SMALL_MESSAGE`.
fn assert_fragments(datagrams: &[Vec<u8>]) {
    assert!(datagrams.len() > 1, "fragmented");
    let total = u16::try_from(datagrams.len()).unwrap();
    for (datagram, number) in datagrams.iter().zip(1..) {
        assert_eq!(fragment_of(datagram), Some((number, total)));
        assert!(datagram.len() <= SMALL_MESSAGE, "{} bytes", datagram.len());
    }
}

impl Pair {
    /// Deliver one datagram; every datagram the responder sends.
    fn deliver(&mut self, datagram: &[u8]) -> Vec<Vec<u8>> {
        self.now += Duration::from_millis(10);
        self.responder.handle_datagram(self.now, self.local, self.remote, datagram);
        std::iter::from_fn(|| self.responder.poll_transmit())
            .inspect(|t| assert_eq!((t.local, t.remote), (self.local, self.remote)))
            .map(|t| t.bytes)
            .collect()
    }

    /// Deliver datagrams; every datagram the responder sends.
    fn deliver_all<'a>(&mut self, datagrams: impl IntoIterator<Item = &'a Vec<u8>>) -> Vec<Vec<u8>> {
        datagrams.into_iter().flat_map(|d| self.deliver(d)).collect()
    }

    /// Hand the IKE_AUTH response's datagrams to the initiator: it completes on the last one.
    fn finish_auth(&mut self, response: &[Vec<u8>]) -> AuthOutcome {
        for (i, datagram) in response.iter().enumerate() {
            match self.initiator.on_ike_auth_response(datagram) {
                Err(InitiatorError::FragmentPending) => assert!(i + 1 < response.len(), "the last one completes it"),
                Ok(outcome) => {
                    assert_eq!(i + 1, response.len(), "complete only with every fragment");
                    return outcome;
                }
                Err(e) => panic!("IKE_AUTH response: {e:?}"),
            }
        }
        panic!("the IKE_AUTH response is incomplete")
    }

    /// The Child SA of a finished IKE_AUTH is the one the responder announced.
    fn assert_child(&mut self, outcome: AuthOutcome) {
        let ours = outcome.child.expect("a Child SA");
        let (children, _) = self.events();
        assert_eq!(children.len(), 1);
        assert_same_child(&children[0], &ours);
    }
}

#[test]
fn fragmentation_is_used_only_once_both_sides_said_they_support_it() {
    // IKE_SA_INIT { SA, KE, Ni, N(NAT_DETECTION_*), N(IKEV2_FRAGMENTATION_SUPPORTED) } -->
    //             <-- { SA, KE, Nr, N(NAT_DETECTION_*), N(IKEV2_FRAGMENTATION_SUPPORTED) }
    for (offered, enabled) in [(true, true), (false, true), (true, false)] {
        let mut config = config();
        config.fragment_size = offered.then_some(SMALL);
        let mut policy = small_policy();
        policy.fragmentation.enabled = enabled;
        let mut pair = Pair::with_policy(config, policy);
        let request = pair.initiator.ike_sa_init();
        let response = pair.exchange(&request).unwrap();
        let says = Message::parse(&response)
            .unwrap()
            .payloads
            .iter()
            .any(|p| matches!(p, Payload::Notify(n) if n.kind == NotifyType::IKEV2_FRAGMENTATION_SUPPORTED));
        let agreed = offered && enabled;
        assert_eq!(says, agreed, "offered {offered}, enabled {enabled}");
        assert!(pair.initiator.on_ike_sa_init_response(&response).unwrap());
        let request = pair.initiator.ike_auth_datagrams().unwrap();
        assert_eq!(request.len() > 1, agreed, "the initiator fragments only once agreed");
        let response = pair.deliver_all(&request);
        assert_eq!(response.len() > 1, agreed, "nor does the responder");
        if agreed {
            assert_fragments(&request);
            assert_fragments(&response);
        }
        let outcome = pair.finish_auth(&response);
        pair.assert_child(outcome);
    }
}

#[test]
fn a_fragmented_ike_auth_is_put_back_together_in_any_order() {
    // IKE_AUTH SKF(3/3) SKF(2/3) SKF(1/3) -->
    //          <-- SKF { IDr, AUTH, SA, TSi, TSr } in fragments, taken in reverse order too
    let mut pair = Pair::with_policy(fragmenting_config(), small_policy());
    pair.init().unwrap();
    let request = pair.initiator.ike_auth_datagrams().unwrap();
    assert_fragments(&request);
    let (first, later) = request.split_first().unwrap();
    for fragment in later.iter().rev() {
        assert!(pair.deliver(fragment).is_empty(), "nothing is answered before every fragment is in");
    }
    let response = pair.deliver(first);
    assert_fragments(&response);
    let reversed: Vec<Vec<u8>> = response.iter().rev().cloned().collect();
    let outcome = pair.finish_auth(&reversed);
    pair.assert_child(outcome);
    let counters = pair.responder.counters();
    assert_eq!(counters.fragments_received, request.len() as u64);
    assert_eq!((counters.messages_reassembled, counters.messages_fragmented), (1, 1));
    assert_eq!((counters.fragments_dropped, counters.bad_icv), (0, 0));
    assert_eq!(pair.responder.reassembly_bytes, 0, "nothing held once the message is whole");
}

#[test]
fn lost_fragments_and_lost_responses_are_recovered_by_retransmission() {
    // IKE_AUTH SKF(1/n), SKF(2/n) lost, ... -->                      (nothing to answer)
    // IKE_AUTH SKF(1/n) ... SKF(n/n) again -->  <-- SKF ... SKF     (lost)
    // IKE_AUTH SKF(1/n) ... SKF(n/n) again -->  <-- the same SKF ... SKF, once, on fragment 1
    let mut pair = Pair::with_policy(fragmenting_config(), small_policy());
    pair.init().unwrap();
    let request = pair.initiator.ike_auth_datagrams().unwrap();
    assert_fragments(&request);
    let without_second: Vec<&Vec<u8>> = request.iter().enumerate().filter(|(i, _)| *i != 1).map(|(_, f)| f).collect();
    assert!(pair.deliver_all(without_second).is_empty());
    let response = pair.deliver_all(&request);
    assert_fragments(&response);
    // Fragment 1 is held already; fragment 2 completes the request; the rest belong to a
    // request answered already and are not fragment 1: ignored.
    assert_eq!(pair.responder.counters().fragments_dropped, 1, "the duplicate of fragment 1");
    assert_eq!(pair.responder.counters().retransmits, 0);

    let again = pair.deliver_all(&request);
    assert_eq!(again, response, "the cached response, byte for byte, once for the whole set");
    assert_eq!(pair.responder.counters().retransmits, 1);
    let outcome = pair.finish_auth(&again);
    pair.assert_child(outcome);
    assert_eq!(pair.announced.len(), 1, "one IKE SA");
}

#[test]
fn a_fragment_failing_its_icv_is_dropped_and_the_genuine_one_still_completes() {
    let mut pair = Pair::with_policy(fragmenting_config(), small_policy());
    pair.init().unwrap();
    let request = pair.initiator.ike_auth_datagrams().unwrap();
    let mut forged = request[1].clone();
    *forged.last_mut().unwrap() ^= 0x01;
    assert!(pair.deliver(&request[0]).is_empty());
    assert!(pair.deliver(&forged).is_empty());
    assert_eq!(pair.responder.counters().bad_icv, 1);
    assert!(pair.deliver_all(&request[2..]).is_empty(), "the forged fragment does not count");
    let response = pair.deliver(&request[1]);
    let outcome = pair.finish_auth(&response);
    pair.assert_child(outcome);
}

#[test]
fn fragments_waiting_past_the_timeout_are_forgotten() {
    let mut policy = small_policy();
    policy.fragmentation.timeout = Duration::from_secs(5);
    let mut pair = Pair::with_policy(fragmenting_config(), policy);
    pair.init().unwrap();
    let request = pair.initiator.ike_auth_datagrams().unwrap();
    assert!(pair.deliver_all(&request[..2]).is_empty());
    assert!(pair.responder.reassembly_bytes > 0);
    pair.now += Duration::from_secs(5);
    pair.responder.handle_timeout(pair.now);
    assert_eq!(pair.responder.reassembly_bytes, 0);
    assert_eq!(pair.responder.counters().fragments_dropped, 1, "the message waiting for the rest");
    assert!(pair.deliver_all(&request[2..]).is_empty(), "the earlier fragments are gone");
    let response = pair.deliver_all(&request[..2]);
    let outcome = pair.finish_auth(&response);
    pair.assert_child(outcome);
}

#[test]
fn reassembly_is_bounded_in_fragments_and_bytes() {
    // Too many fragments: each dropped before it is decrypted.
    let mut policy = small_policy();
    policy.fragmentation.max_fragments = 2;
    let mut pair = Pair::with_policy(fragmenting_config(), policy);
    pair.init().unwrap();
    let request = pair.initiator.ike_auth_datagrams().unwrap();
    assert!(request.len() > 2);
    assert!(pair.deliver_all(&request).is_empty());
    assert_eq!(pair.responder.counters().fragments_dropped, request.len() as u64);
    assert_eq!(pair.responder.reassembly_bytes, 0);

    // Too many bytes: what was held is let go.
    let mut policy = small_policy();
    policy.fragmentation.max_bytes = 100;
    let mut pair = Pair::with_policy(fragmenting_config(), policy);
    pair.init().unwrap();
    let request = pair.initiator.ike_auth_datagrams().unwrap();
    assert!(pair.deliver_all(&request).is_empty());
    assert!(pair.responder.counters().fragments_dropped >= 1);
    assert!(pair.responder.reassembly_bytes <= 100);
    assert_eq!(pair.responder.half_open_count(), 1, "the IKE SA itself stands");
}

#[test]
fn a_request_fragmented_again_smaller_replaces_the_larger_fragments() {
    // IKE_AUTH SKF(1/3) -->; the path is narrower: SKF(1/5) ... SKF(5/5) -->; a late SKF(2/3)
    // of the first set is dropped.
    let mut pair = Pair::with_policy(fragmenting_config(), small_policy());
    pair.init().unwrap();
    let larger = pair.initiator.ike_auth_datagrams().unwrap();
    pair.initiator.set_fragment_size(SMALL - 40);
    let smaller = pair.initiator.ike_auth_datagrams().unwrap();
    assert!(smaller.len() > larger.len(), "{} > {}", smaller.len(), larger.len());
    assert!(pair.deliver(&larger[0]).is_empty());
    assert!(pair.deliver(&smaller[0]).is_empty());
    assert!(pair.deliver(&larger[1]).is_empty(), "fewer fragments than the message held: dropped");
    assert_eq!(pair.responder.counters().fragments_dropped, 1);
    let response = pair.deliver_all(&smaller[1..]);
    let outcome = pair.finish_auth(&response);
    pair.assert_child(outcome);
}

#[test]
fn responses_on_an_established_ike_sa_are_fragmented_too() {
    // CREATE_CHILD_SA SK { SA, Ni, TSi, TSr } -->  <-- SKF { SA, Nr, TSi, TSr } in fragments
    let mut pair = Pair::with_policy(fragmenting_config(), small_policy());
    pair.init().unwrap();
    let request = pair.initiator.ike_auth_datagrams().unwrap();
    let response = pair.deliver_all(&request);
    let outcome = pair.finish_auth(&response);
    pair.assert_child(outcome);

    let request = pair.initiator.create_child_sa(None, None).unwrap();
    let response = pair.deliver(&request);
    assert_fragments(&response);
    let mut child = None;
    for (i, datagram) in response.iter().enumerate() {
        match pair.initiator.on_create_child_sa_response(datagram) {
            Err(InitiatorError::FragmentPending) => assert!(i + 1 < response.len()),
            Ok(Ok(ours)) => child = Some(ours),
            other => panic!("{other:?}"),
        }
    }
    let (children, _) = pair.events();
    assert_same_child(&children[0], &child.expect("the last fragment completes the response"));
    assert_eq!(pair.responder.counters().messages_fragmented, 2);
}
