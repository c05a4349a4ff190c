//! IKE_SA_INIT (RFC 7296 1.2):
//! ```text
//! HDR, SAi1, KEi, Ni, [N(NAT_DETECTION_*)], [N(IKEV2_FRAGMENTATION_SUPPORTED)]  -->
//!                 <--  HDR, SAr1, KEr, Nr, N(NAT_DETECTION_*), [N(IKEV2_FRAGMENTATION_SUPPORTED)]
//! ```
//! or one of the errors, without state: N(NO_PROPOSAL_CHOSEN), N(INVALID_KE_PAYLOAD) naming our
//! group, N(INVALID_SYNTAX) for missing payloads or a bad KE value, N(UNSUPPORTED_CRITICAL_PAYLOAD),
//! or N(COOKIE) while too many IKE SAs are half-open (`cookie`).

use std::net::SocketAddr;
use std::time::Instant;

use aws_lc_rs::rand;

use super::nat::{detection_hash, NatSeen};
use super::{Entry, IkeSa, LogLevel, Responder};
use crate::crypto::keys::{skeyseed, IkeSaKeys};
use crate::crypto::sk::SkProtection;
use crate::proposal::{select_ike, IkeSelection, IkeSuite};
use crate::wire::{
    ExchangeType, Flags, Header, KeyExchange, Message, Nonce, Notify, NotifyType, Payload, SecurityAssociation,
};

/// Our nonce length: 32 bytes, at least half the PRF's key size for every PRF here (RFC 7296 2.10).
const NONCE_LEN: usize = 32;

/// An IKE SA after IKE_SA_INIT, waiting for IKE_AUTH.
pub(super) struct HalfOpen {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub spi_i: u64,
    pub suite: IkeSuite,
    pub keys: IkeSaKeys,
    pub sk: SkProtection,
    pub ni: Vec<u8>,
    pub nr: Vec<u8>,
    /// The request and our response, every byte as on the wire: AUTH signs them.
    pub init_request: Vec<u8>,
    pub init_response: Vec<u8>,
    pub nat: NatSeen,
    /// Both sides support IKE fragmentation (RFC 7383).
    pub fragmentation: bool,
    pub created: Instant,
}

impl Responder {
    pub(super) fn handle_ike_sa_init(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        bytes: &[u8],
        message: Message,
    ) {
        let header = message.header;
        if let Some(spi_r) = self.by_initiator.get(&(remote, header.spi_i)) {
            // A retransmitted request: the same answer again.
            if let Some(response) = self.sas.get(spi_r).and_then(|e| e.last_response.clone()) {
                self.send(local, remote, response);
            }
            return;
        }
        if let Some(kind) = message.unsupported_critical() {
            return self.refuse_init(&header, local, remote, NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD, vec![kind.0]);
        }
        let mut offer: Option<&SecurityAssociation> = None;
        let mut ke: Option<&KeyExchange> = None;
        let mut ni: Option<&Nonce> = None;
        let (mut nat_sources, mut nat_destination) = (Vec::new(), None);
        let mut fragmentation = false;
        for payload in &message.payloads {
            match payload {
                Payload::Sa(sa) => offer = Some(sa),
                Payload::Ke(k) => ke = Some(k),
                Payload::Nonce(n) => ni = Some(n),
                Payload::Notify(n) if n.kind == NotifyType::NAT_DETECTION_SOURCE_IP => nat_sources.push(&n.data[..]),
                Payload::Notify(n) if n.kind == NotifyType::NAT_DETECTION_DESTINATION_IP => {
                    nat_destination = Some(&n.data[..])
                }
                Payload::Notify(n) if n.kind == NotifyType::IKEV2_FRAGMENTATION_SUPPORTED => fragmentation = true,
                _ => {}
            }
        }
        let (Some(offer), Some(ke), Some(ni)) = (offer, ke, ni) else {
            return self.refuse_init(&header, local, remote, NotifyType::INVALID_SYNTAX, Vec::new());
        };
        if !self.admit(now, &message, &ni.0, local, remote) {
            return;
        }
        let (suite, proposal) = match select_ike(offer, ke.method) {
            IkeSelection::Chosen(suite, proposal) => (suite, proposal),
            IkeSelection::WrongKeyExchange(group) => {
                self.log(
                    LogLevel::Warning,
                    local,
                    remote,
                    format!("IKE_SA_INIT: KE of {}, asking for {group}", ke.method),
                );
                return self.refuse_init(
                    &header,
                    local,
                    remote,
                    NotifyType::INVALID_KE_PAYLOAD,
                    group.0.to_be_bytes().to_vec(),
                );
            }
            IkeSelection::NoProposal => {
                self.log(LogLevel::Warning, local, remote, "IKE_SA_INIT: no acceptable proposal".into());
                return self.refuse_init(&header, local, remote, NotifyType::NO_PROPOSAL_CHOSEN, Vec::new());
            }
        };
        let Ok((ke_r, shared)) = suite.ke.respond(&ke.data) else {
            self.log(LogLevel::Warning, local, remote, format!("IKE_SA_INIT: invalid {} value", suite.ke.id()));
            return self.refuse_init(&header, local, remote, NotifyType::INVALID_SYNTAX, Vec::new());
        };
        let mut nr = vec![0u8; NONCE_LEN];
        let Some(spi_r) = self.allocate_ike_spi() else { return };
        if rand::fill(&mut nr).is_err() {
            return;
        }
        let seed = skeyseed(suite.prf, &ni.0, &nr, &shared);
        let keys = IkeSaKeys::derive(suite.cipher.key_lengths(suite.prf), &seed, &ni.0, &nr, header.spi_i, spi_r);
        let Ok(sk) = SkProtection::responder(suite.cipher, &keys) else { return };
        let nat = NatSeen::detect(header.spi_i, &nat_sources, nat_destination, remote, local);
        let fragmentation = fragmentation && self.policy.fragmentation.enabled;

        let mut response = Message {
            header: Header { spi_r, flags: Flags(Flags::RESPONSE), ..super::response_header(&header) },
            payloads: vec![
                Payload::Sa(SecurityAssociation { proposals: vec![proposal] }),
                Payload::Ke(KeyExchange { method: suite.ke.id(), data: ke_r }),
                Payload::Nonce(Nonce(nr.clone())),
                Payload::Notify(Notify::new(
                    NotifyType::NAT_DETECTION_SOURCE_IP,
                    detection_hash(header.spi_i, spi_r, local),
                )),
                Payload::Notify(Notify::new(
                    NotifyType::NAT_DETECTION_DESTINATION_IP,
                    detection_hash(header.spi_i, spi_r, remote),
                )),
            ],
        };
        if fragmentation {
            response.payloads.push(Payload::Notify(Notify::new(NotifyType::IKEV2_FRAGMENTATION_SUPPORTED, Vec::new())));
        }
        let Ok(response) = response.encode() else { return };
        let half_open = HalfOpen {
            local,
            remote,
            spi_i: header.spi_i,
            suite,
            keys,
            sk,
            ni: ni.0.clone(),
            nr,
            init_request: bytes.to_vec(),
            init_response: response.clone(),
            nat,
            fragmentation,
            created: now,
        };
        self.by_initiator.insert((remote, header.spi_i), spi_r);
        self.half_open += 1;
        self.counters.half_open_peak = self.counters.half_open_peak.max(self.half_open as u64);
        *self.half_open_by_peer.entry(remote.ip()).or_default() += 1;
        self.sas.insert(spi_r, Entry::new(IkeSa::HalfOpen(Box::new(half_open)), 1, Some(vec![response.clone()])));
        self.transmits.push_back(super::Transmit { local, remote, bytes: response });
    }

    /// Whether a new half-open IKE SA may be made for this IKE_SA_INIT. Past the per-address or
    /// total limit it is dropped; past the cookie threshold it must carry a valid cookie as its
    /// first payload, or it is answered with one (RFC 7296 2.6), keeping no state either way.
    fn admit(&mut self, now: Instant, message: &Message, ni: &[u8], local: SocketAddr, remote: SocketAddr) -> bool {
        let limits = self.policy.half_open;
        let from_peer = self.half_open_by_peer.get(&remote.ip()).copied().unwrap_or(0);
        if self.half_open >= limits.total || from_peer >= limits.per_peer {
            self.counters.half_open_dropped += 1;
            return false;
        }
        if self.half_open < limits.cookie_threshold {
            return true;
        }
        let spi_i = message.header.spi_i;
        let cookie = match message.payloads.first() {
            Some(Payload::Notify(n)) if n.kind == NotifyType::COOKIE => Some(&n.data[..]),
            _ => None,
        };
        if cookie.is_some_and(|c| self.cookies.check(c, ni, remote.ip(), spi_i)) {
            return true;
        }
        if let Some(cookie) = self.cookies.make(now, ni, remote.ip(), spi_i) {
            self.counters.cookies_sent += 1;
            self.refuse_init(&message.header, local, remote, NotifyType::COOKIE, cookie);
        }
        false
    }

    /// An error answer to IKE_SA_INIT, keeping no state (RFC 7296 2.6: responder SPI zero).
    fn refuse_init(
        &mut self,
        request: &Header,
        local: SocketAddr,
        remote: SocketAddr,
        kind: NotifyType,
        data: Vec<u8>,
    ) {
        let answer = Message {
            header: Header { exchange: ExchangeType::IKE_SA_INIT, ..super::response_header(request) },
            payloads: vec![Payload::Notify(Notify::new(kind, data))],
        };
        if let Ok(bytes) = answer.encode() {
            self.transmits.push_back(super::Transmit { local, remote, bytes });
        }
    }
}
