//! The IKEv2 responder, without I/O: datagrams and the time go in, datagrams to send and events
//! (Child SAs to install, log lines) come out.
//!
//! Each IKE SA is in one state at a time, a type each: `HalfOpen` after IKE_SA_INIT, waiting for
//! IKE_AUTH, then `Established`. A Child SA can only be built from an [`auth::Authenticated`]
//! token, which only a verified AUTH payload yields and an established IKE SA keeps for the
//! Child SAs its CREATE_CHILD_SA exchanges agree (`child`). INFORMATIONAL exchanges answer
//! liveness checks and Deletes (`informational`). Requests carry message IDs with a window of
//! one: the next ID is processed, a repeat of the last one is answered with the cached response
//! byte for byte, and anything else is dropped. Where fragmentation was agreed in IKE_SA_INIT,
//! a request may come in fragments, put back together before it is processed, and a response too
//! long for the configured fragment size goes out in fragments (`crate::fragment`); a fragment of
//! a request answered already brings the cached response again only when it is fragment 1
//! (RFC 7383 2.6.1), so that a retransmitted set is answered once.

mod auth;
mod child;
mod cookie;
mod informational;
mod init;
pub mod nat;
mod ours;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use aws_lc_rs::rand;

pub use auth::{Authenticated, ChildSa, ChildSaKeys, Encapsulation};
pub use child::MAX_CHILD_SAS_PER_TUNNEL;

use crate::crypto::ke::KeyExchangeMethod;
use crate::crypto::prf::SecretBytes;
use crate::crypto::sk::SkProtection;
use crate::fragment::{Accepted, FragmentDrop, Reassembly};
use crate::policy::ResponderPolicy;
use crate::proposal::{ChildSuite, IkeSuite};
use crate::protected::{open_message, seal_datagrams, Opened};
use crate::selectors::SelectorPair;
use crate::wire::{ExchangeType, Flags, Header, Message, Notify, NotifyType, Payload, PayloadType};

/// How long an IKE SA may wait for IKE_AUTH after IKE_SA_INIT.
pub const HALF_OPEN_TIMEOUT: Duration = Duration::from_secs(30);

/// The most plaintext the fragments of all IKE SAs may hold at once, whatever each may hold.
const MAX_REASSEMBLY_BYTES: usize = 32 * 1024 * 1024;

/// The bits of an inbound ESP SPI below the node ID (the node ID takes the top 8).
const ESP_SPI_LOCAL_BITS: u32 = 24;
/// The bits of a responder IKE SPI below the node ID (the node ID takes the top 16).
const IKE_SPI_LOCAL_BITS: u32 = 48;

/// A datagram to send: the IKE message, from `local` to `remote` (the runner adds the non-ESP
/// marker on port 4500).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Our address and port.
    pub local: SocketAddr,
    /// The peer's address and port.
    pub remote: SocketAddr,
    /// The IKE message.
    pub bytes: Vec<u8>,
}

/// How serious a log event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Something established or ended as it should.
    Info,
    /// A peer's request refused.
    Warning,
}

/// One line of the IKE event log; never holds a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    /// How serious.
    pub level: LogLevel,
    /// Our address and port.
    pub local: SocketAddr,
    /// The peer's address and port.
    pub remote: SocketAddr,
    /// What happened, with the suite where one was negotiated.
    pub message: String,
}

/// What the responder has to say to its runner.
#[derive(Debug)]
pub enum Event {
    /// An IKE SA authenticated and established.
    IkeSaEstablished(IkeSaInfo),
    /// A Child SA to install in the dataplane: a new one, or one that rekeys another (then its
    /// inbound SA goes in at once and its outbound SA once the old Child SA is deleted).
    ChildSaEstablished(ChildSa),
    /// A Child SA ended (deleted by the peer, or with its IKE SA): out of the dataplane.
    ChildSaDeleted(DeletedChild),
    /// A Child SA the peer made in a rekey lost a collision with ours (RFC 7296 2.8.1): its
    /// outbound SA never goes in; its inbound SA stays until the peer deletes it.
    ChildSaRedundant(DeletedChild),
    /// An IKE SA was rekeyed: this is the new one, which took over the old one's Child SAs.
    IkeSaRekeyed(IkeSaInfo),
    /// An IKE SA ended.
    IkeSaDeleted(IkeSaInfo),
    /// A line for the IKE event log.
    Log(LogEvent),
}

/// An established IKE SA, as status views show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IkeSaInfo {
    /// The tunnel it authenticated as.
    pub tunnel: String,
    /// Our address and port.
    pub local: SocketAddr,
    /// The peer's address and port.
    pub remote: SocketAddr,
    /// The initiator's SPI.
    pub spi_i: u64,
    /// Our SPI.
    pub spi_r: u64,
    /// Its suite.
    pub suite: IkeSuite,
}

/// A Child SA that ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedChild {
    /// The tunnel it belonged to.
    pub tunnel: String,
    /// Our address (the tunnel's anycast endpoint).
    pub local: IpAddr,
    /// Our SPI.
    pub inbound_spi: u32,
    /// The peer's SPI.
    pub outbound_spi: u32,
}

/// What an IKE SA remembers of each of its Child SAs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ChildRecord {
    inbound_spi: u32,
    outbound_spi: u32,
    suite: ChildSuite,
    selectors: SelectorPair,
    /// A newer Child SA rekeyed this one, which now waits for its Delete.
    rekeyed: bool,
    /// When it was agreed, for its lifetime.
    created: Instant,
    /// When we rekey it ourselves unless the peer does first; `None` once our rekey is queued.
    rekey_at: Option<Instant>,
    /// The key exchange our rekey of it offers (PFS), if any.
    rekey_group: Option<KeyExchangeMethod>,
}

impl ChildRecord {
    /// It, as a Child SA that ended, of an IKE SA of `tunnel` on `local`.
    fn ended(&self, tunnel: &str, local: SocketAddr) -> DeletedChild {
        DeletedChild {
            tunnel: tunnel.to_string(),
            local: local.ip(),
            inbound_spi: self.inbound_spi,
            outbound_spi: self.outbound_spi,
        }
    }
}

/// Why the responder could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyError {
    /// The node ID does not fit the 8 bits an ESP SPI gives it.
    NodeIdTooLarge(u16),
    /// The node ID cannot change while SPIs made with the old one are in use.
    NodeIdChanged { running: u16, configured: u16 },
}

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PolicyError::NodeIdTooLarge(id) => write!(f, "node_id {id} does not fit the 8 bits an ESP SPI gives it"),
            PolicyError::NodeIdChanged { running, configured } => {
                write!(f, "node_id {configured} differs from the running {running}: a restart is needed")
            }
        }
    }
}

impl std::error::Error for PolicyError {}

/// An IKE SA in one of its states.
enum IkeSa {
    HalfOpen(Box<init::HalfOpen>),
    Established(Box<Established>),
}

/// What the responder counts of what it dropped or refused before any IKE SA was involved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResponderCounters {
    /// Requests answered again from the cached response.
    pub retransmits: u64,
    /// Requests dropped for a message ID neither the next nor the last one.
    pub out_of_window: u64,
    /// Messages dropped because their ICV failed.
    pub bad_icv: u64,
    /// COOKIE challenges sent.
    pub cookies_sent: u64,
    /// IKE_SA_INIT dropped over the half-open limits (per address or in total).
    pub half_open_dropped: u64,
    /// The most IKE SAs half-open at once.
    pub half_open_peak: u64,
    /// IKE SAs ended because their peer came back with INITIAL_CONTACT.
    pub initial_contact_deletes: u64,
    /// IKE fragments received (RFC 7383).
    pub fragments_received: u64,
    /// Fragments dropped: fragmentation not agreed, too many, too large, duplicate, superseded,
    /// over the memory bound, or timed out waiting for the rest.
    pub fragments_dropped: u64,
    /// Messages put back together from fragments.
    pub messages_reassembled: u64,
    /// Messages of ours sent in fragments.
    pub messages_fragmented: u64,
    /// Child SA rekeys we started (at their soft lifetime).
    pub child_rekeys_started: u64,
    /// Rekeys of the same Child SA by both sides at once, settled by the nonces (RFC 7296 2.8.1).
    pub rekey_collisions: u64,
}

/// An authenticated IKE SA.
struct Established {
    local: SocketAddr,
    remote: SocketAddr,
    spi_i: u64,
    /// The tunnel's name: it outlives a configuration reload that reorders the tunnels.
    tunnel: String,
    /// The peer's ID as the log shows it (`RFC822_ADDR ipsec@...`): INITIAL_CONTACT ends the other
    /// IKE SAs of the same tunnel and ID.
    peer: String,
    suite: IkeSuite,
    sk: SkProtection,
    /// Keys Child SAs and the IKE SA's rekey.
    sk_d: SecretBytes,
    /// A NAT was detected in IKE_SA_INIT: ESP goes in UDP.
    nat: bool,
    /// The proof IKE_AUTH gave: what it keys may be installed.
    authenticated: Authenticated,
    children: Vec<ChildRecord>,
    /// A rekey moved this IKE SA's Child SAs to a new one; it waits for its Delete.
    rekeyed: bool,
    /// When it was established, for its lifetime.
    created: Instant,
    /// When the peer last sent a message that authenticated, for the liveness check.
    last_heard: Instant,
    /// The longest message we send on it before fragmenting, where fragmentation was agreed.
    fragment_limit: Option<usize>,
    /// Our own requests (liveness checks, Deletes): queued, and the one in flight.
    ours: ours::OurRequests,
}

impl Established {
    /// A protected response to `request` holding `payloads`, in fragments if it needs them.
    fn respond(&mut self, request: &Header, payloads: &[Payload]) -> Option<Vec<Vec<u8>>> {
        seal_datagrams(&mut self.sk, &response_header(request), payloads, self.fragment_limit)
    }

    fn info(&self, spi_r: u64) -> IkeSaInfo {
        IkeSaInfo {
            tunnel: self.tunnel.clone(),
            local: self.local,
            remote: self.remote,
            spi_i: self.spi_i,
            spi_r,
            suite: self.suite,
        }
    }
}

/// An IKE SA with its message ID state.
struct Entry {
    sa: IkeSa,
    /// The message ID the next request must carry.
    next_request: u32,
    /// The last response sent (its datagrams: one, or its fragments), for a retransmitted request.
    last_response: Option<Vec<Vec<u8>>>,
    /// Fragments of the peer's next request, and of its response to ours.
    request_fragments: Option<Reassembly>,
    response_fragments: Option<Reassembly>,
}

impl Entry {
    fn new(sa: IkeSa, next_request: u32, last_response: Option<Vec<Vec<u8>>>) -> Self {
        Self { sa, next_request, last_response, request_fragments: None, response_fragments: None }
    }

    fn fragment_bytes(&self) -> usize {
        [&self.request_fragments, &self.response_fragments]
            .iter()
            .filter_map(|r| r.as_ref())
            .map(Reassembly::bytes)
            .sum()
    }
}

/// Which of the peer's messages a fragment belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FromPeer {
    /// Its requests.
    Request,
    /// Its responses to ours.
    Response,
}

/// The IKEv2 responder of one server.
pub struct Responder {
    policy: ResponderPolicy,
    sas: HashMap<u64, Entry>,
    /// Responder SPIs of half-open SAs by (peer, initiator SPI), to spot a repeated IKE_SA_INIT.
    by_initiator: HashMap<(SocketAddr, u64), u64>,
    esp_spis: HashSet<u32>,
    /// Established IKE SAs by tunnel, for the per-tunnel Child SA count.
    by_tunnel: HashMap<String, Vec<u64>>,
    /// Half-open IKE SAs by peer address, and in total, for the flood limits.
    half_open_by_peer: HashMap<IpAddr, usize>,
    half_open: usize,
    cookies: cookie::CookieJar,
    counters: ResponderCounters,
    /// The plaintext all reassemblies hold, against [`MAX_REASSEMBLY_BYTES`].
    reassembly_bytes: usize,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder").field("ike_sas", &self.sas.len()).finish_non_exhaustive()
    }
}

impl Responder {
    /// A responder for `policy`.
    pub fn new(policy: ResponderPolicy) -> Result<Self, PolicyError> {
        if policy.node_id > 0xff {
            return Err(PolicyError::NodeIdTooLarge(policy.node_id));
        }
        Ok(Self {
            policy,
            sas: HashMap::new(),
            by_initiator: HashMap::new(),
            esp_spis: HashSet::new(),
            by_tunnel: HashMap::new(),
            half_open_by_peer: HashMap::new(),
            half_open: 0,
            cookies: cookie::CookieJar::new(),
            counters: ResponderCounters::default(),
            reassembly_bytes: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        })
    }

    /// Take a new policy (a configuration reload). IKE SAs of tunnels still configured carry on,
    /// authenticated as they were; those of tunnels that are gone are forgotten, and their names
    /// returned so that the runner removes their Child SAs.
    pub fn set_policy(&mut self, policy: ResponderPolicy) -> Result<Vec<String>, PolicyError> {
        if policy.node_id != self.policy.node_id {
            return Err(PolicyError::NodeIdChanged { running: self.policy.node_id, configured: policy.node_id });
        }
        let gone: Vec<(u64, String)> = self
            .sas
            .iter()
            .filter_map(|(spi, entry)| match &entry.sa {
                IkeSa::Established(sa) if !policy.tunnels.iter().any(|t| t.name == sa.tunnel) => {
                    Some((*spi, sa.tunnel.clone()))
                }
                _ => None,
            })
            .collect();
        self.policy = policy;
        let mut tunnels = Vec::new();
        for (spi, tunnel) in gone {
            // The runner removes the tunnel's Child SAs from the dataplane by its name.
            self.remove(spi);
            if !tunnels.contains(&tunnel) {
                tunnels.push(tunnel);
            }
        }
        Ok(tunnels)
    }

    /// Mark an inbound ESP SPI as taken (by a static SA), so that it is never allocated.
    pub fn reserve_esp_spi(&mut self, spi: u32) {
        self.esp_spis.insert(spi);
    }

    /// The established IKE SAs, for status views.
    pub fn established(&self) -> Vec<IkeSaInfo> {
        let mut list: Vec<IkeSaInfo> = self
            .sas
            .iter()
            .filter_map(|(spi_r, entry)| match &entry.sa {
                IkeSa::Established(sa) => Some(sa.info(*spi_r)),
                IkeSa::HalfOpen(_) => None,
            })
            .collect();
        list.sort_by(|a, b| (&a.tunnel, a.spi_r).cmp(&(&b.tunnel, b.spi_r)));
        list
    }

    /// The number of IKE SAs, half-open ones included.
    pub fn ike_sa_count(&self) -> usize {
        self.sas.len()
    }

    /// The number of half-open IKE SAs.
    pub fn half_open_count(&self) -> usize {
        self.half_open
    }

    /// What it counted.
    pub fn counters(&self) -> ResponderCounters {
        self.counters
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Forget half-open IKE SAs older than [`HALF_OPEN_TIMEOUT`] and fragments that waited too
    /// long for the rest; renew the cookie secret when due; retransmit our requests, check on
    /// silent peers and end SAs past their lifetimes.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.cookies.rotate(now);
        self.run_our_requests(now);
        let timeout = self.policy.fragmentation.timeout;
        for entry in self.sas.values_mut() {
            for slot in [&mut entry.request_fragments, &mut entry.response_fragments] {
                if let Some(held) = slot.take_if(|held| held.expired(now, timeout)) {
                    self.reassembly_bytes -= held.bytes();
                    self.counters.fragments_dropped += 1;
                }
            }
        }
        let expired: Vec<u64> = self
            .sas
            .iter()
            .filter(|(_, e)| matches!(&e.sa, IkeSa::HalfOpen(h) if now.duration_since(h.created) >= HALF_OPEN_TIMEOUT))
            .map(|(spi, _)| *spi)
            .collect();
        for spi in expired {
            self.remove(spi);
        }
    }

    /// Handle one IKE datagram (without the non-ESP marker) that arrived on `local` from `remote`.
    pub fn handle_datagram(&mut self, now: Instant, local: SocketAddr, remote: SocketAddr, bytes: &[u8]) {
        let Ok(message) = Message::parse(bytes) else { return };
        let header = message.header;
        if !header.flags.initiator() {
            // Everything here comes from the original initiator: anything else is for an SA
            // this responder would have initiated.
            return;
        }
        if header.flags.response() {
            return self.handle_response(now, local, remote, bytes, &message);
        }
        if header.exchange == ExchangeType::IKE_SA_INIT {
            if header.spi_r == 0 && header.message_id == 0 {
                self.handle_ike_sa_init(now, local, remote, bytes, message);
            }
            return;
        }
        let Some(entry) = self.sas.get_mut(&header.spi_r) else { return };
        if header.message_id != entry.next_request {
            // Of a retransmitted fragmented request, fragment 1 alone brings the answer again.
            let first = message.fragment().is_none_or(|f| f.number == 1);
            match &entry.last_response {
                Some(response) if header.message_id.wrapping_add(1) == entry.next_request => {
                    if first {
                        let response = response.clone();
                        self.counters.retransmits += 1;
                        self.send(local, remote, response);
                    }
                }
                _ => self.counters.out_of_window += 1,
            }
            return;
        }
        let Some(request) = self.open_from_peer(now, local, remote, bytes, &message, FromPeer::Request) else {
            return;
        };
        match header.exchange {
            ExchangeType::IKE_AUTH => self.handle_ike_auth(now, local, remote, &header, &request),
            ExchangeType::INFORMATIONAL => self.handle_informational(local, remote, &header, &request),
            ExchangeType::CREATE_CHILD_SA => self.handle_create_child_sa(now, local, remote, &header, &request),
            _ => self.answer_unsupported_exchange(local, remote, &header),
        }
    }

    /// Unknown exchanges on an established SA: refused, not ignored, so that the peer does not
    /// retransmit.
    fn answer_unsupported_exchange(&mut self, local: SocketAddr, remote: SocketAddr, request: &Header) {
        let spi_r = request.spi_r;
        let Some(Entry { sa: IkeSa::Established(sa), .. }) = self.sas.get_mut(&spi_r) else { return };
        let refusal = Payload::Notify(Notify::new(NotifyType::INVALID_SYNTAX, Vec::new()));
        let response = sa.respond(request, &[refusal]);
        self.send_response(spi_r, local, remote, response);
    }

    /// Check and decrypt a message from the peer of the IKE SA it names: whole, or a fragment
    /// that completes one (`None` while fragments are missing). A message or fragment that
    /// authenticates counts as hearing from the peer (the liveness check waits on that); one
    /// that fails its ICV is counted and dropped without a word (RFC 7296 2.21.2). A half-open
    /// IKE SA takes its IKE_AUTH only from the address and on the address of its IKE_SA_INIT:
    /// the peer may move from port 500 to 4500 (RFC 7296 2.23), not elsewhere.
    fn open_from_peer(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &[u8],
        message: &Message,
        from: FromPeer,
    ) -> Option<Opened> {
        let entry = self.sas.get_mut(&message.header.spi_r)?;
        let (sk, agreed) = match &entry.sa {
            IkeSa::HalfOpen(half) => {
                if remote.ip() != half.remote.ip() || local.ip() != half.local.ip() {
                    return None;
                }
                (&half.sk, half.fragmentation)
            }
            IkeSa::Established(sa) => (&sa.sk, sa.fragment_limit.is_some()),
        };
        let opened = match message.fragment() {
            None => {
                let Some(opened) = open_message(sk, bytes, message) else {
                    self.counters.bad_icv += 1;
                    return None;
                };
                Some(opened)
            }
            Some(fragment) => {
                self.counters.fragments_received += 1;
                let slot = match from {
                    FromPeer::Request => &mut entry.request_fragments,
                    FromPeer::Response => &mut entry.response_fragments,
                };
                let held = slot.as_ref().map_or(0, Reassembly::bytes);
                if !agreed || self.reassembly_bytes - held + fragment.body.len() > MAX_REASSEMBLY_BYTES {
                    self.counters.fragments_dropped += 1;
                    return None;
                }
                let accepted = crate::fragment::accept(slot, sk, bytes, message, &self.policy.fragmentation);
                if let Some(held) = slot.as_mut() {
                    held.mark_started(now);
                }
                self.reassembly_bytes = self.reassembly_bytes - held + slot.as_ref().map_or(0, Reassembly::bytes);
                match accepted {
                    Accepted::Pending => None,
                    Accepted::Complete(opened) => {
                        self.counters.messages_reassembled += 1;
                        Some(opened)
                    }
                    Accepted::Dropped(FragmentDrop::Integrity) => {
                        self.counters.bad_icv += 1;
                        return None;
                    }
                    Accepted::Dropped(_) => {
                        self.counters.fragments_dropped += 1;
                        return None;
                    }
                }
            }
        };
        if let IkeSa::Established(sa) = &mut entry.sa {
            sa.last_heard = now;
        }
        opened
    }

    /// Send `response` (its datagrams) to the request just processed on `spi_r`, and cache it.
    fn send_response(&mut self, spi_r: u64, local: SocketAddr, remote: SocketAddr, response: Option<Vec<Vec<u8>>>) {
        let Some(datagrams) = response else { return };
        if datagrams.len() > 1 {
            self.counters.messages_fragmented += 1;
        }
        self.send(local, remote, datagrams.clone());
        if let Some(entry) = self.sas.get_mut(&spi_r) {
            entry.next_request = entry.next_request.wrapping_add(1);
            entry.last_response = Some(datagrams);
        }
    }

    /// Queue datagrams from `local` to `remote`.
    fn send(&mut self, local: SocketAddr, remote: SocketAddr, datagrams: Vec<Vec<u8>>) {
        self.transmits.extend(datagrams.into_iter().map(|bytes| Transmit { local, remote, bytes }));
    }

    /// Take a half-open IKE SA out of the table, and out of the half-open counts.
    fn take_half_open(&mut self, spi_r: u64) -> Option<Box<init::HalfOpen>> {
        if !matches!(self.sas.get(&spi_r), Some(Entry { sa: IkeSa::HalfOpen(_), .. })) {
            return None;
        }
        let entry = self.sas.remove(&spi_r)?;
        self.reassembly_bytes -= entry.fragment_bytes();
        let IkeSa::HalfOpen(half) = entry.sa else { return None };
        self.by_initiator.remove(&(half.remote, half.spi_i));
        self.half_open -= 1;
        if let Some(n) = self.half_open_by_peer.get_mut(&half.remote.ip()) {
            *n -= 1;
            if *n == 0 {
                self.half_open_by_peer.remove(&half.remote.ip());
            }
        }
        Some(half)
    }

    /// Forget an IKE SA and free its Child SAs' SPIs; returns the Child SAs it had.
    fn remove(&mut self, spi_r: u64) -> Vec<DeletedChild> {
        if self.take_half_open(spi_r).is_some() {
            return Vec::new();
        }
        let Some(entry) = self.sas.remove(&spi_r) else { return Vec::new() };
        self.reassembly_bytes -= entry.fragment_bytes();
        match entry.sa {
            IkeSa::HalfOpen(_) => Vec::new(),
            IkeSa::Established(sa) => {
                if let Some(spis) = self.by_tunnel.get_mut(&sa.tunnel) {
                    spis.retain(|spi| *spi != spi_r);
                    if spis.is_empty() {
                        self.by_tunnel.remove(&sa.tunnel);
                    }
                }
                if let Some(spi) = sa.ours.rekey_spi() {
                    self.esp_spis.remove(&spi);
                }
                sa.children
                    .iter()
                    .map(|c| {
                        self.esp_spis.remove(&c.inbound_spi);
                        c.ended(&sa.tunnel, sa.local)
                    })
                    .collect()
            }
        }
    }

    /// File an established IKE SA (new, or a rekey's) under `spi_r`, with `next_request` the
    /// message ID its peer's next request must carry.
    fn insert_established(&mut self, spi_r: u64, sa: Established, next_request: u32) {
        self.by_tunnel.entry(sa.tunnel.clone()).or_default().push(spi_r);
        self.sas.insert(spi_r, Entry::new(IkeSa::Established(Box::new(sa)), next_request, None));
    }

    /// The Child SAs of every IKE SA of `tunnel`, those waiting for their Delete included.
    fn child_sa_count(&self, tunnel: &str) -> usize {
        let spis = self.by_tunnel.get(tunnel).map_or(&[][..], Vec::as_slice);
        spis.iter()
            .filter_map(|spi| match self.sas.get(spi).map(|e| &e.sa) {
                Some(IkeSa::Established(sa)) => Some(sa.children.len()),
                _ => None,
            })
            .sum()
    }

    /// A Child SA of the IKE SA between `local` and `remote` ended, taken out of its record
    /// already: its inbound SPI is free again, the log gets `line`, and the runner takes it out of
    /// the dataplane.
    fn child_ended(&mut self, local: SocketAddr, remote: SocketAddr, child: DeletedChild, line: String) {
        self.esp_spis.remove(&child.inbound_spi);
        self.log(LogLevel::Info, local, remote, line);
        self.events.push_back(Event::ChildSaDeleted(child));
    }

    fn log(&mut self, level: LogLevel, local: SocketAddr, remote: SocketAddr, message: String) {
        self.events.push_back(Event::Log(LogEvent { level, local, remote, message }));
    }

    /// When a Child SA agreed at `now` is due for our own rekey: the soft lifetime less up to a
    /// tenth of it at random.
    fn rekey_time(&self, now: Instant) -> Option<Instant> {
        let after = self.policy.timers.child_sa_rekey_after?;
        let mut random = [0u8; 4];
        rand::fill(&mut random).ok()?;
        let jitter = after / 10 * u32::from_be_bytes(random) / u32::MAX;
        Some(now + (after - jitter))
    }

    /// A fresh responder IKE SPI: the node ID in the top 16 bits, random below, never zero.
    fn allocate_ike_spi(&self) -> Option<u64> {
        (0..16).find_map(|_| {
            let mut random = [0u8; 8];
            rand::fill(&mut random).ok()?;
            let local = u64::from_be_bytes(random) & ((1 << IKE_SPI_LOCAL_BITS) - 1);
            let spi = u64::from(self.policy.node_id) << IKE_SPI_LOCAL_BITS | local;
            (spi != 0 && !self.sas.contains_key(&spi)).then_some(spi)
        })
    }

    /// A fresh inbound ESP SPI: the node ID in the top 8 bits, random below, never under 256
    /// (RFC 4303 2.1 reserves 1-255).
    fn allocate_esp_spi(&mut self) -> Option<u32> {
        let spi = (0..64).find_map(|_| {
            let mut random = [0u8; 4];
            rand::fill(&mut random).ok()?;
            let local = u32::from_be_bytes(random) & ((1 << ESP_SPI_LOCAL_BITS) - 1);
            let spi = u32::from(self.policy.node_id) << ESP_SPI_LOCAL_BITS | local;
            (spi >= 256 && !self.esp_spis.contains(&spi)).then_some(spi)
        })?;
        self.esp_spis.insert(spi);
        Some(spi)
    }
}

/// The response header to a request.
fn response_header(request: &Header) -> Header {
    Header { next_payload: PayloadType::NONE, flags: Flags(Flags::RESPONSE), length: 0, ..*request }
}

/// How ESP of an IKE SA's Child SAs travels: in UDP when a NAT was seen, to the port the peer's
/// IKE came from if it came to 4500, else to 4500 (RFC 3948).
fn encapsulation(nat: bool, local: SocketAddr, remote: SocketAddr) -> Encapsulation {
    if !nat {
        return Encapsulation::Raw;
    }
    let remote_port = if local.port() == NAT_T_PORT { remote.port() } else { NAT_T_PORT };
    Encapsulation::Udp { local_port: NAT_T_PORT, remote_port }
}

/// The NAT-T port.
const NAT_T_PORT: u16 = 4500;

/// The IP address of a socket address, for the tunnel lookup (IPv4 endpoints only).
fn ipv4_of(address: SocketAddr) -> Option<std::net::Ipv4Addr> {
    match address.ip() {
        IpAddr::V4(ip) => Some(ip),
        IpAddr::V6(_) => None,
    }
}

#[cfg(test)]
mod fragment_tests;
#[cfg(test)]
mod lifecycle_tests;
#[cfg(test)]
mod rekey_tests;
#[cfg(test)]
mod tests;
