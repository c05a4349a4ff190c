//! The IKEv2 responder, without I/O: datagrams and the time go in, datagrams to send and events
//! (Child SAs to install, log lines) come out.
//!
//! Each IKE SA is in one state at a time, a type each: `HalfOpen` after IKE_SA_INIT, waiting for
//! IKE_AUTH, then `Established`. A Child SA can only be built from an [`auth::Authenticated`]
//! token, which only a verified AUTH payload yields and an established IKE SA keeps for the
//! Child SAs its CREATE_CHILD_SA exchanges agree (`child`). INFORMATIONAL exchanges answer
//! liveness checks and Deletes (`informational`). Requests carry message IDs with a window of
//! one: the next ID is processed, a repeat of the last one is answered with the cached response
//! byte for byte, and anything else is dropped.

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

use crate::crypto::prf::SecretBytes;
use crate::crypto::sk::SkProtection;
use crate::policy::ResponderPolicy;
use crate::proposal::{ChildSuite, IkeSuite};
use crate::protected::open;
use crate::selectors::SelectorPair;
use crate::wire::{ExchangeType, Flags, Header, Message, Notify, NotifyType, Payload, PayloadType};

/// How long an IKE SA may wait for IKE_AUTH after IKE_SA_INIT.
pub const HALF_OPEN_TIMEOUT: Duration = Duration::from_secs(30);

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
    /// Our own requests (liveness checks, Deletes): queued, and the one in flight.
    ours: ours::OurRequests,
}

impl Established {
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
    /// The last response sent, for a retransmitted request.
    last_response: Option<Vec<u8>>,
}

/// The IKEv2 responder of one server.
pub struct Responder {
    policy: ResponderPolicy,
    sas: HashMap<u64, Entry>,
    /// Responder SPIs of half-open SAs by (peer, initiator SPI), to spot a repeated IKE_SA_INIT.
    by_initiator: HashMap<(SocketAddr, u64), u64>,
    esp_spis: HashSet<u32>,
    /// Half-open IKE SAs by peer address, and in total, for the flood limits.
    half_open_by_peer: HashMap<IpAddr, usize>,
    half_open: usize,
    cookies: cookie::CookieJar,
    counters: ResponderCounters,
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
            half_open_by_peer: HashMap::new(),
            half_open: 0,
            cookies: cookie::CookieJar::new(),
            counters: ResponderCounters::default(),
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

    /// Forget half-open IKE SAs older than [`HALF_OPEN_TIMEOUT`]; renew the cookie secret when due;
    /// retransmit our requests, check on silent peers and end SAs past their lifetimes.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.cookies.rotate(now);
        self.run_our_requests(now);
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
            return self.handle_response(now, bytes, &message);
        }
        if header.exchange == ExchangeType::IKE_SA_INIT {
            if header.spi_r == 0 && header.message_id == 0 {
                self.handle_ike_sa_init(now, local, remote, bytes, message);
            }
            return;
        }
        let Some(entry) = self.sas.get_mut(&header.spi_r) else { return };
        if header.message_id != entry.next_request {
            let cached = entry.last_response.clone();
            match cached {
                Some(response) if header.message_id.wrapping_add(1) == entry.next_request => {
                    self.counters.retransmits += 1;
                    self.transmits.push_back(Transmit { local, remote, bytes: response });
                }
                _ => self.counters.out_of_window += 1,
            }
            return;
        }
        match header.exchange {
            ExchangeType::IKE_AUTH => self.handle_ike_auth(now, local, remote, bytes, &message),
            ExchangeType::INFORMATIONAL => self.handle_informational(now, local, remote, bytes, &message),
            ExchangeType::CREATE_CHILD_SA => self.handle_create_child_sa(now, local, remote, bytes, &message),
            _ => self.answer_unsupported_exchange(now, local, remote, bytes, &message),
        }
    }

    /// Unknown exchanges on an established SA: refused, not ignored, so that the peer does not
    /// retransmit.
    fn answer_unsupported_exchange(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &[u8],
        message: &Message,
    ) {
        let spi_r = message.header.spi_r;
        if self.open_established(now, bytes, message).is_none() {
            return;
        }
        let Some(Entry { sa: IkeSa::Established(sa), .. }) = self.sas.get_mut(&spi_r) else { return };
        let refusal = Payload::Notify(Notify::new(NotifyType::INVALID_SYNTAX, Vec::new()));
        let response = respond(&mut sa.sk, &message.header, &[refusal]);
        self.send_response(spi_r, local, remote, response);
    }

    /// Check and decrypt a message on the established IKE SA it names. One that authenticates
    /// counts as hearing from the peer (the liveness check waits on that); one that fails its ICV
    /// is counted and dropped without a word (RFC 7296 2.21.2).
    fn open_established(&mut self, now: Instant, bytes: &[u8], message: &Message) -> Option<SecretBytes> {
        let Some(Entry { sa: IkeSa::Established(sa), .. }) = self.sas.get_mut(&message.header.spi_r) else {
            return None;
        };
        let Some(plaintext) = open(&sa.sk, bytes, message) else {
            self.counters.bad_icv += 1;
            return None;
        };
        sa.last_heard = now;
        Some(plaintext)
    }

    /// Send `response` to the request just processed on `spi_r`, and cache it.
    fn send_response(&mut self, spi_r: u64, local: SocketAddr, remote: SocketAddr, response: Option<Vec<u8>>) {
        let Some(bytes) = response else { return };
        if let Some(entry) = self.sas.get_mut(&spi_r) {
            entry.next_request = entry.next_request.wrapping_add(1);
            entry.last_response = Some(bytes.clone());
        }
        self.transmits.push_back(Transmit { local, remote, bytes });
    }

    /// Take a half-open IKE SA out of the table, and out of the half-open counts.
    fn take_half_open(&mut self, spi_r: u64) -> Option<Box<init::HalfOpen>> {
        if !matches!(self.sas.get(&spi_r), Some(Entry { sa: IkeSa::HalfOpen(_), .. })) {
            return None;
        }
        let Some(Entry { sa: IkeSa::HalfOpen(half), .. }) = self.sas.remove(&spi_r) else { return None };
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
        match entry.sa {
            IkeSa::HalfOpen(_) => Vec::new(),
            IkeSa::Established(sa) => sa
                .children
                .iter()
                .map(|c| {
                    self.esp_spis.remove(&c.inbound_spi);
                    DeletedChild {
                        tunnel: sa.tunnel.clone(),
                        local: sa.local.ip(),
                        inbound_spi: c.inbound_spi,
                        outbound_spi: c.outbound_spi,
                    }
                })
                .collect(),
        }
    }

    /// The Child SAs of every IKE SA of `tunnel`, those waiting for their Delete included.
    fn child_sa_count(&self, tunnel: &str) -> usize {
        self.sas
            .values()
            .filter_map(|e| match &e.sa {
                IkeSa::Established(sa) if sa.tunnel == tunnel => Some(sa.children.len()),
                _ => None,
            })
            .sum()
    }

    fn log(&mut self, level: LogLevel, local: SocketAddr, remote: SocketAddr, message: String) {
        self.events.push_back(Event::Log(LogEvent { level, local, remote, message }));
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

/// A protected response holding `payloads`.
fn respond(sk: &mut SkProtection, request: &Header, payloads: &[Payload]) -> Option<Vec<u8>> {
    crate::protected::seal(sk, &response_header(request), payloads)
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
mod lifecycle_tests;
#[cfg(test)]
mod tests;
