//! Requests the responder sends on its own, on an established IKE SA (RFC 7296 1.3.3, 1.4, 2.4):
//! ```text
//! HDR, SK {}  -->                  (liveness check: the peer has been silent)
//! HDR, SK {N(REKEY_SA), SA, Ni, [KEi], TSi, TSr}  -->
//!                                  (a Child SA at its soft lifetime)
//! HDR, SK {D(ESP, our SPIs)}  -->  (Child SAs past their lifetime, or replaced)
//! HDR, SK {D(IKE)}  -->            (the IKE SA past its lifetime)
//!                            <--  HDR, SK {...}
//! ```
//! One request at a time, with its own message IDs from 0; retransmitted byte for byte on the
//! policy's schedule. A peer that answers none of the retransmissions is taken for gone: its IKE SA
//! and Child SAs end. SAs past their lifetime leave the dataplane at once; the Delete only
//! tells the peer.
//!
//! Our rekey of a Child SA: the peer installs the new Child SA both ways before it answers, so it
//! goes into the dataplane both ways when the answer comes, and its outbound SA takes over at once.
//! The old Child SA is then deleted, and leaves the dataplane once the peer has answered the
//! Delete: what the peer sent on it until then still arrives. Where the peer rekeyed the same
//! Child SA while ours was in flight (a collision, RFC 7296 2.8.1), the exchange that brought the
//! lowest of the four nonces made a redundant Child SA, which its initiator deletes: ours, before
//! it carries anything, or the peer's, whose outbound SA then never goes in.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use aws_lc_rs::rand;

use super::auth::{ChildSa, ChildSaKeys};
use super::{DeletedChild, Entry, Event, FromPeer, IkeSa, LogLevel, Responder, MAX_CHILD_SAS_PER_TUNNEL};
use crate::crypto::ke::{KeyExchangeMethod, PendingKe};
use crate::crypto::keys::child_keys;
use crate::proposal::{child_proposal, select_child, ChildKe, ChildSelection, ChildSuite};
use crate::protected::{seal_datagrams, Opened};
use crate::selectors::{narrow, SelectorPair};
use crate::wire::message::ChildSaPayloads;
use crate::wire::{
    Delete, ExchangeType, Flags, Header, KeMethod, KeyExchange, Message, Nonce, Notify, NotifyType, Payload,
    PayloadType, ProtocolId, SecurityAssociation,
};

/// How long after a refused or failed rekey of ours we try again.
pub const REKEY_RETRY: Duration = Duration::from_secs(60);

/// Our nonce length, as in IKE_SA_INIT.
const NONCE_LEN: usize = 32;

/// What one of our requests asks.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Request {
    Liveness,
    /// Child SAs past their lifetime, out of the dataplane already (our inbound SPIs).
    DeleteChildren(Vec<u32>),
    /// Child SAs replaced by our rekey, or redundant: they leave the dataplane once the peer has
    /// answered (our inbound SPIs).
    RetireChildren(Vec<u32>),
    DeleteIke,
    /// Rekey the Child SA of inbound SPI `old`; `second_try`: with PFS the other way round, after
    /// NO_PROPOSAL_CHOSEN.
    RekeyChild {
        old: u32,
        second_try: bool,
    },
}

/// A request sent and not answered yet.
#[derive(Debug)]
struct InFlight {
    message_id: u32,
    request: Request,
    /// Its datagrams: one, or its fragments.
    datagrams: Vec<Vec<u8>>,
    sent: Instant,
    /// How many times it went out.
    sends: usize,
}

/// Our rekey of a Child SA, sent and not answered yet.
#[derive(Debug)]
pub(super) struct PendingRekey {
    /// The inbound SPI of the Child SA it replaces.
    old: u32,
    /// Our inbound SPI of the new one.
    spi: u32,
    /// The suite offered.
    suite: ChildSuite,
    /// It offers PFS the other way round from the first try.
    second_try: bool,
    nonce: Vec<u8>,
    ke: Option<PendingKe>,
    /// The peer rekeyed the same Child SA meanwhile.
    collision: Option<Collision>,
}

/// The peer's rekey of the Child SA we are rekeying, answered while ours was in flight.
#[derive(Debug)]
struct Collision {
    /// Our inbound SPI of the Child SA it made.
    inbound_spi: u32,
    /// The lower of its two nonces.
    lowest_nonce: Vec<u8>,
}

/// Our requests on one IKE SA.
#[derive(Debug, Default)]
pub(super) struct OurRequests {
    next_message_id: u32,
    queue: VecDeque<Request>,
    in_flight: Option<InFlight>,
    /// Our Child SA rekey in flight.
    rekey: Option<PendingRekey>,
    /// A Delete of the IKE SA is queued or sent: nothing more is asked, and the peer's requests
    /// for new or rekeyed SAs get TEMPORARY_FAILURE (RFC 7296 2.25.2).
    pub ending: bool,
    /// The SPIs (inbound, outbound) of Child SAs whose Delete is queued or sent: a rekey of one
    /// crossing our Delete gets TEMPORARY_FAILURE rather than CHILD_SA_NOT_FOUND (RFC 7296 2.25.1).
    pub closing: Vec<(u32, u32)>,
}

impl OurRequests {
    /// Our inbound SPI of the Child SA our rekey in flight makes, if one is in flight.
    pub(super) fn rekey_spi(&self) -> Option<u32> {
        self.rekey.as_ref().map(|r| r.spi)
    }

    /// The peer's rekey of `old` was just agreed as `child`: if ours of the same Child SA is in
    /// flight, the two collide.
    pub(super) fn note_collision(&mut self, old: u32, child: &ChildSa, lowest_nonce: Vec<u8>) {
        if let Some(ours) = self.rekey.as_mut().filter(|r| r.old == old) {
            ours.collision = Some(Collision { inbound_spi: child.inbound.spi, lowest_nonce });
        }
    }
}

/// What the timer decided for one IKE SA.
enum Step {
    Nothing,
    Send(Vec<Vec<u8>>),
    GiveUp(Request),
}

impl Responder {
    /// Walk the established IKE SAs: lifetimes, rekeys, liveness checks, retransmissions.
    pub(super) fn run_our_requests(&mut self, now: Instant) {
        let timers = self.policy.timers;
        let spis: Vec<u64> =
            self.sas.iter().filter(|(_, e)| matches!(e.sa, IkeSa::Established(_))).map(|(spi, _)| *spi).collect();
        for spi_r in spis {
            let expired = self.expire_children(now, spi_r);
            let Some(Entry { sa: IkeSa::Established(sa), .. }) = self.sas.get_mut(&spi_r) else { continue };
            let ours = &mut sa.ours;
            if !expired.is_empty() && !ours.ending {
                ours.closing.extend(expired.iter().map(|c| (c.inbound_spi, c.outbound_spi)));
                ours.queue.push_back(Request::DeleteChildren(expired.iter().map(|c| c.inbound_spi).collect()));
            }
            if !ours.ending && !sa.rekeyed {
                for child in sa.children.iter_mut().filter(|c| !c.rekeyed && c.rekey_at.is_some_and(|at| now >= at)) {
                    child.rekey_at = None;
                    ours.queue.push_back(Request::RekeyChild { old: child.inbound_spi, second_try: false });
                }
            }
            if now.duration_since(sa.created) >= timers.ike_sa_lifetime && !ours.ending {
                ours.ending = true;
                ours.queue.push_back(Request::DeleteIke);
            }
            let idle = now.duration_since(sa.last_heard);
            if timers.liveness_after.is_some_and(|after| idle >= after)
                && !sa.rekeyed
                && ours.in_flight.is_none()
                && ours.queue.is_empty()
            {
                ours.queue.push_back(Request::Liveness);
            }
            let (local, remote) = (sa.local, sa.remote);
            for child in expired {
                let line = format!(
                    "Child SA of tunnel {} past its lifetime: SPIs in {:08x} out {:08x} deleted",
                    child.tunnel, child.inbound_spi, child.outbound_spi
                );
                self.child_ended(local, remote, child, line);
            }
            match self.next_step(now, spi_r) {
                Step::Nothing => {}
                Step::Send(datagrams) => self.send(local, remote, datagrams),
                Step::GiveUp(request) => self.give_up(spi_r, &request),
            }
        }
    }

    /// Retransmit the request in flight when due, or send the next one queued.
    fn next_step(&mut self, now: Instant, spi_r: u64) -> Step {
        let retransmits = self.policy.timers.retransmits;
        loop {
            let Some(Entry { sa: IkeSa::Established(sa), .. }) = self.sas.get_mut(&spi_r) else { return Step::Nothing };
            if let Some(flight) = &mut sa.ours.in_flight {
                let wait = retransmits.get(flight.sends - 1).copied().unwrap_or_default();
                return if now.duration_since(flight.sent) < wait {
                    Step::Nothing
                } else if flight.sends >= retransmits.len() {
                    Step::GiveUp(flight.request.clone())
                } else {
                    flight.sends += 1;
                    flight.sent = now;
                    Step::Send(flight.datagrams.clone())
                };
            }
            let Some(request) = sa.ours.queue.pop_front() else { return Step::Nothing };
            let (exchange, payloads, rekey) = match &request {
                Request::Liveness => (ExchangeType::INFORMATIONAL, Vec::new(), None),
                Request::DeleteChildren(spis) | Request::RetireChildren(spis) => {
                    let delete = Delete { protocol: ProtocolId::ESP, spis: spis.clone() };
                    (ExchangeType::INFORMATIONAL, vec![Payload::Delete(delete)], None)
                }
                Request::DeleteIke => {
                    let delete = Delete { protocol: ProtocolId::IKE, spis: vec![] };
                    (ExchangeType::INFORMATIONAL, vec![Payload::Delete(delete)], None)
                }
                Request::RekeyChild { old, second_try } => match self.rekey_request(now, spi_r, *old, *second_try) {
                    Some((payloads, pending)) => (ExchangeType::CREATE_CHILD_SA, payloads, Some(pending)),
                    None => continue,
                },
            };
            let Some(Entry { sa: IkeSa::Established(sa), .. }) = self.sas.get_mut(&spi_r) else { return Step::Nothing };
            let message_id = sa.ours.next_message_id;
            let header = Header {
                spi_i: sa.spi_i,
                spi_r,
                next_payload: PayloadType::NONE,
                minor_version: 0,
                exchange,
                // Neither the original initiator nor a response.
                flags: Flags(0),
                message_id,
                length: 0,
            };
            let Some(datagrams) = seal_datagrams(&mut sa.sk, &header, &payloads, sa.fragment_limit) else {
                if let Some(pending) = rekey {
                    self.esp_spis.remove(&pending.spi);
                }
                return Step::Nothing;
            };
            sa.ours.next_message_id = message_id.wrapping_add(1);
            sa.ours.in_flight =
                Some(InFlight { message_id, request, datagrams: datagrams.clone(), sent: now, sends: 1 });
            sa.ours.rekey = rekey;
            if datagrams.len() > 1 {
                self.counters.messages_fragmented += 1;
            }
            return Step::Send(datagrams);
        }
    }

    /// The payloads of our rekey of Child SA `old`, with what its answer needs; `None` where the
    /// Child SA is gone or replaced already, or the tunnel has no room now (then it is tried again
    /// later).
    fn rekey_request(
        &mut self,
        now: Instant,
        spi_r: u64,
        old: u32,
        second_try: bool,
    ) -> Option<(Vec<Payload>, PendingRekey)> {
        let Some(Entry { sa: IkeSa::Established(sa), .. }) = self.sas.get(&spi_r) else { return None };
        if sa.rekeyed || sa.ours.ending {
            return None;
        }
        let child = sa.children.iter().find(|c| c.inbound_spi == old && !c.rekeyed)?;
        let suite = ChildSuite { pfs: child.rekey_group, ..child.suite };
        // TSi is the exchange initiator's side: ours here.
        let (peer_ts, our_ts) = child.selectors.payloads();
        let (tunnel, local, remote) = (sa.tunnel.clone(), sa.local, sa.remote);
        let full = self.child_sa_count(&tunnel) >= MAX_CHILD_SAS_PER_TUNNEL;
        let spi = if full { None } else { self.allocate_esp_spi() };
        let Some(spi) = spi else {
            self.retry_rekey(now, spi_r, old);
            let line = format!("rekey of Child SA {old:08x} of tunnel {tunnel} postponed: no room for its successor");
            self.log(LogLevel::Warning, local, remote, line);
            return None;
        };
        let mut nonce = vec![0u8; NONCE_LEN];
        let ke = suite.pfs.map(KeyExchangeMethod::initiate).transpose();
        let (Ok(()), Ok(ke)) = (rand::fill(&mut nonce), ke) else {
            self.esp_spis.remove(&spi);
            self.retry_rekey(now, spi_r, old);
            return None;
        };
        let mut payloads = vec![
            Payload::Notify(Notify::rekey_sa(old)),
            Payload::Sa(SecurityAssociation { proposals: vec![child_proposal(&suite, spi)] }),
            Payload::Nonce(Nonce(nonce.clone())),
        ];
        let ke = match (suite.pfs, ke) {
            (Some(method), Some((pending, value))) => {
                payloads.push(Payload::Ke(KeyExchange { method: method.id(), data: value }));
                Some(pending)
            }
            _ => None,
        };
        payloads.extend([Payload::TsI(our_ts), Payload::TsR(peer_ts)]);
        self.counters.child_rekeys_started += 1;
        let line = format!("rekeying Child SA {old:08x} of tunnel {tunnel} ({suite}): its soft lifetime is reached");
        self.log(LogLevel::Info, local, remote, line);
        Some((payloads, PendingRekey { old, spi, suite, second_try, nonce, ke, collision: None }))
    }

    /// Try to rekey Child SA `old` again after [`REKEY_RETRY`], unless it is replaced by then.
    fn retry_rekey(&mut self, now: Instant, spi_r: u64, old: u32) {
        if let Some(Entry { sa: IkeSa::Established(sa), .. }) = self.sas.get_mut(&spi_r) {
            for child in sa.children.iter_mut().filter(|c| c.inbound_spi == old && !c.rekeyed) {
                child.rekey_at = Some(now + REKEY_RETRY);
            }
        }
    }

    /// Take the Child SAs of `spi_r` past their lifetime out of its record.
    fn expire_children(&mut self, now: Instant, spi_r: u64) -> Vec<DeletedChild> {
        let lifetime = self.policy.timers.child_sa_lifetime;
        let Some(Entry { sa: IkeSa::Established(sa), .. }) = self.sas.get_mut(&spi_r) else { return Vec::new() };
        let (expired, live): (Vec<_>, Vec<_>) =
            sa.children.drain(..).partition(|c| now.duration_since(c.created) >= lifetime);
        sa.children = live;
        expired.iter().map(|c| c.ended(&sa.tunnel, sa.local)).collect()
    }

    /// The peer answered none of our retransmissions, or we asked to end the IKE SA and it did
    /// not answer that: the IKE SA and its Child SAs end.
    fn give_up(&mut self, spi_r: u64, request: &Request) {
        let Some(Entry { sa: IkeSa::Established(sa), .. }) = self.sas.get(&spi_r) else { return };
        let (local, remote, info) = (sa.local, sa.remote, sa.info(spi_r));
        let children = self.remove(spi_r);
        let line = match request {
            Request::DeleteIke => {
                format!("IKE SA of tunnel {} past its lifetime ended (the peer did not answer its Delete)", info.tunnel)
            }
            _ => format!(
                "IKE SA of tunnel {} ended: the peer answered none of {} retransmissions, {} Child SAs with it",
                info.tunnel,
                self.policy.timers.retransmits.len(),
                children.len()
            ),
        };
        self.log(LogLevel::Warning, local, remote, line);
        self.events.extend(children.into_iter().map(Event::ChildSaDeleted));
        self.events.push_back(Event::IkeSaDeleted(info));
    }

    /// A response from the original initiator: to our request in flight, or dropped.
    pub(super) fn handle_response(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &[u8],
        message: &Message,
    ) {
        let spi_r = message.header.spi_r;
        let Some(Entry { sa: IkeSa::Established(sa), .. }) = self.sas.get(&spi_r) else { return };
        if sa.ours.in_flight.as_ref().is_none_or(|f| f.message_id != message.header.message_id) {
            self.counters.out_of_window += 1;
            return;
        }
        let Some(opened) = self.open_from_peer(now, local, remote, bytes, message, FromPeer::Response) else {
            return;
        };
        let Some(Entry { sa: IkeSa::Established(sa), .. }) = self.sas.get_mut(&spi_r) else { return };
        let Some(flight) = sa.ours.in_flight.take() else { return };
        match flight.request {
            Request::Liveness => {}
            // The peer has heard: a rekey of those Child SAs now finds none.
            Request::DeleteChildren(spis) => sa.ours.closing.retain(|(inbound, _)| !spis.contains(inbound)),
            Request::RetireChildren(spis) => self.retire(spi_r, &spis),
            Request::DeleteIke => {
                let (local, remote, info) = (sa.local, sa.remote, sa.info(spi_r));
                let children = self.remove(spi_r);
                let line = format!("IKE SA of tunnel {} past its lifetime deleted", info.tunnel);
                self.log(LogLevel::Info, local, remote, line);
                self.events.extend(children.into_iter().map(Event::ChildSaDeleted));
                self.events.push_back(Event::IkeSaDeleted(info));
            }
            Request::RekeyChild { .. } => {
                if let Some(pending) = sa.ours.rekey.take() {
                    self.finish_rekey(now, spi_r, &opened, pending);
                }
            }
        }
        // What the answer queued (the Delete after a rekey) goes now, not at the next tick.
        if let Step::Send(datagrams) = self.next_step(now, spi_r) {
            self.send(local, remote, datagrams);
        }
    }

    /// The peer answered our Delete of Child SAs that a rekey replaced: they leave the dataplane.
    fn retire(&mut self, spi_r: u64, spis: &[u32]) {
        let Some(Entry { sa: IkeSa::Established(sa), .. }) = self.sas.get_mut(&spi_r) else { return };
        sa.ours.closing.retain(|(inbound, _)| !spis.contains(inbound));
        let (gone, kept): (Vec<_>, Vec<_>) = sa.children.drain(..).partition(|c| spis.contains(&c.inbound_spi));
        sa.children = kept;
        let (local, remote) = (sa.local, sa.remote);
        let gone: Vec<DeletedChild> = gone.iter().map(|c| c.ended(&sa.tunnel, sa.local)).collect();
        for child in gone {
            let line = format!(
                "Child SA of tunnel {} deleted after its rekey: SPIs in {:08x} out {:08x}",
                child.tunnel, child.inbound_spi, child.outbound_spi
            );
            self.child_ended(local, remote, child, line);
        }
    }

    /// The peer's answer to our rekey: the new Child SA, a collision settled, or a refusal.
    fn finish_rekey(&mut self, now: Instant, spi_r: u64, opened: &Opened, mut pending: PendingRekey) {
        let Some(Entry { sa: IkeSa::Established(sa), .. }) = self.sas.get(&spi_r) else { return };
        let (local, remote, tunnel) = (sa.local, sa.remote, sa.tunnel.clone());
        let old = pending.old;
        let refused = match agree_rekey(sa, opened, &mut pending) {
            Ok(Agreed::Child { child, lowest_nonce }) => {
                return self.settle_rekey(now, spi_r, *child, lowest_nonce, pending)
            }
            Ok(Agreed::Refused(notify)) => notify,
            Err(why) => {
                self.esp_spis.remove(&pending.spi);
                self.retry_rekey(now, spi_r, old);
                let line = format!("rekey of Child SA {old:08x} of tunnel {tunnel} failed: {why}");
                return self.log(LogLevel::Warning, local, remote, line);
            }
        };
        self.esp_spis.remove(&pending.spi);
        let asked = (refused.kind == NotifyType::INVALID_KE_PAYLOAD)
            .then(|| <[u8; 2]>::try_from(refused.data.as_slice()).ok())
            .flatten()
            .and_then(|id| KeyExchangeMethod::from_id(KeMethod(u16::from_be_bytes(id))))
            .filter(|method| !method.is_kem() && Some(*method) != pending.suite.pfs);
        let Some(Entry { sa: IkeSa::Established(sa), .. }) = self.sas.get_mut(&spi_r) else { return };
        let ike_group = Some(sa.suite.ke).filter(|ke| !ke.is_kem());
        // After NO_PROPOSAL_CHOSEN, once: PFS the other way round (the router's IKE_AUTH offer
        // may not have said which it wants).
        let other_way = (refused.kind == NotifyType::NO_PROPOSAL_CHOSEN && !pending.second_try)
            .then(|| if pending.suite.pfs.is_some() { None } else { ike_group })
            .filter(|group| *group != pending.suite.pfs);
        let live = sa.children.iter_mut().find(|c| c.inbound_spi == old && !c.rekeyed);
        match (asked, other_way, live) {
            (Some(method), _, Some(child)) => {
                // RFC 7296 1.3: the same exchange again, with the group the peer asks for.
                child.rekey_group = Some(method);
                sa.ours.queue.push_front(Request::RekeyChild { old, second_try: pending.second_try });
                let line = format!("rekey of Child SA {old:08x} of tunnel {tunnel}: the peer asks for {}", method.id());
                self.log(LogLevel::Info, local, remote, line);
            }
            (None, Some(group), Some(child)) => {
                child.rekey_group = group;
                sa.ours.queue.push_front(Request::RekeyChild { old, second_try: true });
                let line = format!(
                    "rekey of Child SA {old:08x} of tunnel {tunnel}: no proposal chosen, trying again {}",
                    group.map_or("without PFS".to_string(), |g| format!("with PFS group {}", g.id()))
                );
                self.log(LogLevel::Info, local, remote, line);
            }
            (_, _, live) => {
                if let Some(child) = live {
                    child.rekey_at = Some(now + REKEY_RETRY);
                }
                let line =
                    format!("rekey of Child SA {old:08x} of tunnel {tunnel} refused by the peer: {}", refused.kind);
                self.log(LogLevel::Warning, local, remote, line);
            }
        }
    }

    /// The peer agreed our rekey as `child`: install it and delete the Child SA it replaces, or,
    /// where the peer's own rekey of it won a collision or the old Child SA went meanwhile,
    /// delete ours as redundant.
    fn settle_rekey(&mut self, now: Instant, spi_r: u64, child: ChildSa, ours_lowest: Vec<u8>, pending: PendingRekey) {
        let rekey_at = self.rekey_time(now);
        let Some(Entry { sa: IkeSa::Established(sa), .. }) = self.sas.get_mut(&spi_r) else { return };
        let (local, remote, tunnel) = (sa.local, sa.remote, sa.tunnel.clone());
        let old = pending.old;
        let old_outbound = sa.children.iter().find(|c| c.inbound_spi == old).map(|c| c.outbound_spi);
        let redundant = match &pending.collision {
            Some(theirs) => ours_lowest < theirs.lowest_nonce,
            None => old_outbound.is_none(),
        };
        if let Some(theirs) = &pending.collision {
            self.counters.rekey_collisions += 1;
            let (winner, loser) = if redundant { ("the peer's", "ours") } else { ("ours", "the peer's") };
            let line = format!(
                "Child SA {old:08x} of tunnel {tunnel} rekeyed by both sides at once: {winner} stays, {loser} \
                 (in {:08x}) had the lowest nonce and is deleted by its initiator",
                if redundant { child.inbound.spi } else { theirs.inbound_spi }
            );
            self.log(LogLevel::Info, local, remote, line);
        }
        let Some(Entry { sa: IkeSa::Established(sa), .. }) = self.sas.get_mut(&spi_r) else { return };
        if redundant {
            // Never installed: it waits, replaced already, for the peer to answer its Delete.
            let mut record = child.record(now, None);
            record.rekeyed = true;
            sa.children.push(record);
            sa.ours.queue.push_back(Request::RetireChildren(vec![child.inbound.spi]));
            if pending.collision.is_none() {
                let line = format!(
                    "Child SA {old:08x} of tunnel {tunnel} went while we rekeyed it: its successor {:08x} is deleted",
                    child.inbound.spi
                );
                self.log(LogLevel::Info, local, remote, line);
            }
            return;
        }
        if let Some(theirs) = pending.collision {
            if let Some(record) = sa.children.iter_mut().find(|c| c.inbound_spi == theirs.inbound_spi) {
                record.rekeyed = true;
                self.events.push_back(Event::ChildSaRedundant(record.ended(&tunnel, local)));
            }
        }
        let Some(Entry { sa: IkeSa::Established(sa), .. }) = self.sas.get_mut(&spi_r) else { return };
        sa.children.iter_mut().filter(|c| c.inbound_spi == old).for_each(|c| c.rekeyed = true);
        if let Some(outbound) = old_outbound {
            sa.ours.closing.push((old, outbound));
        }
        sa.ours.queue.push_back(Request::RetireChildren(vec![old]));
        sa.children.push(child.record(now, rekey_at));
        self.log(LogLevel::Info, local, remote, child.log_line());
        self.events.push_back(Event::ChildSaEstablished(child));
    }
}

/// What the peer answered to our rekey.
enum Agreed {
    /// The new Child SA, and the lower of the exchange's two nonces.
    Child {
        child: Box<ChildSa>,
        lowest_nonce: Vec<u8>,
    },
    Refused(Notify),
}

/// Read the peer's answer to our rekey `pending` on `sa`: the new Child SA with its keys, the
/// refusal, or why the answer is unusable.
fn agree_rekey(sa: &super::Established, opened: &Opened, pending: &mut PendingRekey) -> Result<Agreed, &'static str> {
    let payloads = opened.payloads().ok_or("malformed answer")?;
    let answer = ChildSaPayloads::gather(&payloads);
    if let Some(refusal) = answer.refusal {
        return Ok(Agreed::Refused(refusal.clone()));
    }
    let (ke, Some(offer), Some(nr), Some(tsi), Some(tsr)) =
        (answer.ke, answer.sa, answer.nonce, answer.tsi, answer.tsr)
    else {
        return Err("the answer lacks SA, Nr, TSi or TSr");
    };
    let child_ke = ke.map_or(ChildKe::Omitted, |k| ChildKe::Payload(k.method));
    let ChildSelection::Chosen(suite, peer_spi, _) = select_child(offer, true, child_ke) else {
        return Err("the chosen proposal is not ours");
    };
    if suite != pending.suite || offer.proposals.len() != 1 {
        return Err("the chosen proposal is not ours");
    }
    let shared = match (pending.ke.take(), ke) {
        (Some(ours), Some(theirs)) if Some(theirs.method) == pending.suite.pfs.map(KeyExchangeMethod::id) => {
            Some(ours.finish(&theirs.data).map_err(|_| "invalid KEr")?)
        }
        (None, None) => None,
        _ => return Err("KEr does not answer KEi"),
    };
    // The answer's TSi is our side.
    let answered = narrow(tsi, tsr).ok_or("the chosen selectors")?;
    let selectors = SelectorPair { initiator: answered.responder, responder: answered.initiator };
    let secrets: Vec<&[u8]> = shared.iter().map(|s| &s[..]).collect();
    // KEYMAT = prf+(SK_d, [g^ir (new)] | Ni | Nr): we initiated this exchange, so we send with the
    // initiator-to-responder keys.
    let (to_peer, to_us) = child_keys(
        sa.suite.prf,
        &sa.sk_d,
        &secrets,
        (&pending.nonce, &nr.0),
        suite.encryption_key_len(),
        suite.integrity_key_len(),
    );
    let lowest_nonce = pending.nonce.as_slice().min(nr.0.as_slice()).to_vec();
    let child = Box::new(ChildSa {
        tunnel: sa.tunnel.clone(),
        suite,
        inbound: ChildSaKeys { spi: pending.spi, encryption: to_us.encryption, integrity: to_us.integrity },
        outbound: ChildSaKeys { spi: peer_spi, encryption: to_peer.encryption, integrity: to_peer.integrity },
        selectors,
        local: sa.local.ip(),
        remote: sa.remote.ip(),
        encapsulation: super::encapsulation(sa.nat, sa.local, sa.remote),
        rekey_of: Some(pending.old),
        rekey_started_here: true,
        authenticated: sa.authenticated,
        rekey_group: suite.pfs,
    });
    Ok(Agreed::Child { child, lowest_nonce })
}
