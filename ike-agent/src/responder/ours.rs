//! Requests the responder sends on its own, on an established IKE SA (RFC 7296 1.4, 2.4):
//! ```text
//! HDR, SK {}  -->                  (liveness check: the peer has been silent)
//! HDR, SK {D(ESP, our SPIs)}  -->  (Child SAs past their lifetime)
//! HDR, SK {D(IKE)}  -->            (the IKE SA past its lifetime)
//!                            <--  HDR, SK {...}
//! ```
//! One request at a time, with its own message IDs from 0; retransmitted byte for byte on the
//! policy's schedule. A peer that answers none of the retransmissions is taken for gone: its IKE SA
//! and Child SAs end here. SAs past their lifetime leave the dataplane at once; the Delete only
//! tells the peer.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use super::{DeletedChild, Entry, Event, FromPeer, IkeSa, LogLevel, Responder};
use crate::protected::seal_datagrams;
use crate::wire::{Delete, ExchangeType, Flags, Header, Message, Payload, PayloadType, ProtocolId};

/// What one of our requests asks.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Request {
    Liveness,
    DeleteChildren(Vec<u32>),
    DeleteIke,
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

/// Our requests on one IKE SA.
#[derive(Debug, Default)]
pub(super) struct OurRequests {
    next_message_id: u32,
    queue: VecDeque<Request>,
    in_flight: Option<InFlight>,
    /// A Delete of the IKE SA is queued or sent: nothing more is asked, and the peer's requests
    /// for new or rekeyed SAs get TEMPORARY_FAILURE (RFC 7296 2.25.2).
    pub ending: bool,
    /// The peer's SPIs (our outbound) of Child SAs whose Delete is queued or sent: a rekey of one
    /// crossing our Delete gets TEMPORARY_FAILURE rather than CHILD_SA_NOT_FOUND (RFC 7296 2.25.1).
    pub closing: Vec<u32>,
}

/// What the timer decided for one IKE SA.
enum Step {
    Nothing,
    Send(Vec<Vec<u8>>),
    GiveUp(Request),
}

impl Responder {
    /// Walk the established IKE SAs: lifetimes, liveness checks, retransmissions.
    pub(super) fn run_our_requests(&mut self, now: Instant) {
        let timers = self.policy.timers;
        let spis: Vec<u64> =
            self.sas.iter().filter(|(_, e)| matches!(e.sa, IkeSa::Established(_))).map(|(spi, _)| *spi).collect();
        for spi_r in spis {
            let expired = self.expire_children(now, spi_r);
            let Some(Entry { sa: IkeSa::Established(sa), .. }) = self.sas.get_mut(&spi_r) else { continue };
            let ours = &mut sa.ours;
            if !expired.is_empty() && !ours.ending {
                ours.closing.extend(expired.iter().map(|c| c.outbound_spi));
                ours.queue.push_back(Request::DeleteChildren(expired.iter().map(|c| c.inbound_spi).collect()));
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
            let step = match &mut ours.in_flight {
                Some(flight) => {
                    let wait = timers.retransmits.get(flight.sends - 1).copied().unwrap_or_default();
                    if now.duration_since(flight.sent) < wait {
                        Step::Nothing
                    } else if flight.sends >= timers.retransmits.len() {
                        Step::GiveUp(flight.request.clone())
                    } else {
                        flight.sends += 1;
                        flight.sent = now;
                        Step::Send(flight.datagrams.clone())
                    }
                }
                None => match ours.queue.pop_front() {
                    None => Step::Nothing,
                    Some(request) => {
                        let message_id = ours.next_message_id;
                        let header = Header {
                            spi_i: sa.spi_i,
                            spi_r,
                            next_payload: PayloadType::NONE,
                            minor_version: 0,
                            exchange: ExchangeType::INFORMATIONAL,
                            // Neither the original initiator nor a response.
                            flags: Flags(0),
                            message_id,
                            length: 0,
                        };
                        let payloads = match &request {
                            Request::Liveness => Vec::new(),
                            Request::DeleteChildren(spis) => {
                                vec![Payload::Delete(Delete { protocol: ProtocolId::ESP, spis: spis.clone() })]
                            }
                            Request::DeleteIke => {
                                vec![Payload::Delete(Delete { protocol: ProtocolId::IKE, spis: vec![] })]
                            }
                        };
                        match seal_datagrams(&mut sa.sk, &header, &payloads, sa.fragment_limit) {
                            Some(datagrams) => {
                                ours.next_message_id = ours.next_message_id.wrapping_add(1);
                                let flight = InFlight { message_id, request, datagrams, sent: now, sends: 1 };
                                let datagrams = flight.datagrams.clone();
                                ours.in_flight = Some(flight);
                                Step::Send(datagrams)
                            }
                            None => Step::Nothing,
                        }
                    }
                },
            };
            let (local, remote) = (sa.local, sa.remote);
            for child in expired {
                let line = format!(
                    "Child SA of tunnel {} past its lifetime: SPIs in {:08x} out {:08x} deleted",
                    child.tunnel, child.inbound_spi, child.outbound_spi
                );
                self.log(LogLevel::Info, local, remote, line);
                self.events.push_back(Event::ChildSaDeleted(child));
            }
            match step {
                Step::Nothing => {}
                Step::Send(datagrams) => self.send(local, remote, datagrams),
                Step::GiveUp(request) => self.give_up(spi_r, &request),
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
        let expired: Vec<DeletedChild> = expired
            .into_iter()
            .map(|c| DeletedChild {
                tunnel: sa.tunnel.clone(),
                local: sa.local.ip(),
                inbound_spi: c.inbound_spi,
                outbound_spi: c.outbound_spi,
            })
            .collect();
        for child in &expired {
            self.esp_spis.remove(&child.inbound_spi);
        }
        expired
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
        if self.open_from_peer(now, local, remote, bytes, message, FromPeer::Response).is_none() {
            return;
        }
        let Some(Entry { sa: IkeSa::Established(sa), .. }) = self.sas.get_mut(&spi_r) else { return };
        let Some(flight) = sa.ours.in_flight.take() else { return };
        if let Request::DeleteChildren(_) = flight.request {
            // The peer has heard: a rekey of those Child SAs now finds none.
            sa.ours.closing.clear();
        }
        if flight.request == Request::DeleteIke {
            let (local, remote, info) = (sa.local, sa.remote, sa.info(spi_r));
            let children = self.remove(spi_r);
            let line = format!("IKE SA of tunnel {} past its lifetime deleted", info.tunnel);
            self.log(LogLevel::Info, local, remote, line);
            self.events.extend(children.into_iter().map(Event::ChildSaDeleted));
            self.events.push_back(Event::IkeSaDeleted(info));
        }
    }
}
