//! IKE_AUTH with a pre-shared key, and the first Child SA (RFC 7296 1.2, 2.15):
//! ```text
//! HDR, SK {IDi, [IDr,] AUTH, SAi2, TSi, TSr}  -->
//!                                             <--  HDR, SK {IDr, AUTH, SAr2, TSi, TSr}
//! ```
//! An unknown ID, another method than the shared key, or a wrong AUTH value all get the same
//! N(AUTHENTICATION_FAILED), and the IKE SA is forgotten. Once authenticated, a Child SA that
//! cannot be agreed gets N(NO_PROPOSAL_CHOSEN) or N(TS_UNACCEPTABLE) while the IKE SA stands.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::init::HalfOpen;
use super::{
    response_header, ChildRecord, Entry, Established, Event, IkeSa, LogLevel, Responder, MAX_CHILD_SAS_PER_TUNNEL,
};
use crate::crypto::auth::{psk_auth, verify_psk_auth, SignedOctets};
use crate::crypto::ke::KeyExchangeMethod;
use crate::crypto::keys::child_keys;
use crate::crypto::prf::SecretBytes;
use crate::fragment::message_limit;
use crate::proposal::{rekey_group, select_child, ChildKe, ChildSelection, ChildSuite};
use crate::protected::{seal_datagrams, Opened};
use crate::selectors::{narrow, SelectorPair};
use crate::wire::{
    AuthMethod, Authentication, Header, IdType, Identification, Notify, NotifyType, Payload, SecurityAssociation,
    TrafficSelectors,
};

/// Proof that the peer's AUTH payload was verified; nothing is installed without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authenticated(());

/// How ESP of a Child SA travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encapsulation {
    /// IP protocol 50.
    Raw,
    /// UDP (RFC 3948), from our port to the peer's port as seen.
    Udp {
        /// Our port (4500).
        local_port: u16,
        /// The peer's port, after any NAT.
        remote_port: u16,
    },
}

/// The SPI and keys of one direction of a Child SA.
#[derive(Debug)]
pub struct ChildSaKeys {
    /// The SPI the receiving side chose.
    pub spi: u32,
    /// The encryption key (with the salt for AES-GCM).
    pub encryption: SecretBytes,
    /// The integrity key, empty for AES-GCM.
    pub integrity: SecretBytes,
}

/// A Child SA agreed with an authenticated peer, ready for the dataplane.
#[derive(Debug)]
pub struct ChildSa {
    /// The tunnel it belongs to.
    pub tunnel: String,
    /// Its transforms.
    pub suite: ChildSuite,
    /// What we receive: our SPI, the initiator-to-responder keys.
    pub inbound: ChildSaKeys,
    /// What we send: the peer's SPI, the responder-to-initiator keys.
    pub outbound: ChildSaKeys,
    /// The customer's and our traffic selectors.
    pub selectors: SelectorPair,
    /// Our address (the tunnel's anycast endpoint).
    pub local: IpAddr,
    /// The peer's address as seen.
    pub remote: IpAddr,
    /// Raw ESP or ESP in UDP.
    pub encapsulation: Encapsulation,
    /// The inbound SPI of the Child SA this one rekeys, if it rekeys one.
    pub rekey_of: Option<u32>,
    /// We started the rekey: the peer installed the new Child SA both ways before it answered,
    /// so its outbound SA takes over at once. Where the peer started it, the outbound SA waits
    /// for the old Child SA's Delete.
    pub rekey_started_here: bool,
    /// The proof it was authenticated.
    pub authenticated: Authenticated,
    /// The key exchange our own rekey of it will offer.
    pub(super) rekey_group: Option<KeyExchangeMethod>,
}

impl Responder {
    pub(super) fn handle_ike_auth(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        header: &Header,
        opened: &Opened,
    ) {
        let spi_r = header.spi_r;
        let Some(mut half) = self.take_half_open(spi_r) else { return };
        half.local = local;
        half.remote = remote;
        let fragment_limit = half.fragmentation.then(|| message_limit(self.policy.fragmentation.fragment_size, local));

        let Some(payloads) = opened.payloads() else {
            return self.fail_auth(&mut half, header, NotifyType::INVALID_SYNTAX, Vec::new(), "malformed IKE_AUTH");
        };
        if let Some(kind) = crate::wire::message::unsupported_critical(&payloads) {
            let data = vec![kind.0];
            return self.fail_auth(
                &mut half,
                header,
                NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD,
                data,
                "critical payload",
            );
        }
        let request = AuthRequest::gather(&payloads);
        let (Some(idi), Some(auth)) = (request.idi, request.auth) else {
            return self.fail_auth(
                &mut half,
                header,
                NotifyType::INVALID_SYNTAX,
                Vec::new(),
                "IKE_AUTH without IDi or AUTH",
            );
        };
        let tunnel = super::ipv4_of(local).and_then(|ip| self.policy.tunnel_for(idi, ip));
        let authenticated = tunnel.and_then(|tunnel| {
            let octets = SignedOctets {
                real_message: &half.init_request,
                peer_nonce: &half.nr,
                sk_p: &half.keys.sk_pi,
                id_body: &idi.body(),
                int_auth: &[],
            };
            let psk = &self.policy.tunnels[tunnel].psk;
            (auth.method == AuthMethod::SHARED_KEY_MIC && verify_psk_auth(half.suite.prf, psk, &octets, &auth.data))
                .then_some((tunnel, Authenticated(())))
        });
        let Some((tunnel, authenticated)) = authenticated else {
            let why = format!("authentication failed for {} ID {}", idi.id_type, printable(idi.id_type, &idi.data));
            return self.fail_auth(&mut half, header, NotifyType::AUTHENTICATION_FAILED, Vec::new(), &why);
        };

        // Our side: AUTH over our IKE_SA_INIT response, the initiator's nonce and our ID.
        let idr = Identification::new(IdType::IPV4_ADDR, ip_octets(local.ip()));
        let octets = SignedOctets {
            real_message: &half.init_response,
            peer_nonce: &half.ni,
            sk_p: &half.keys.sk_pr,
            id_body: &idr.body(),
            int_auth: &[],
        };
        let our_auth = psk_auth(half.suite.prf, &self.policy.tunnels[tunnel].psk, &octets);
        let mut answer = vec![
            Payload::IdR(idr),
            Payload::Auth(Authentication { method: AuthMethod::SHARED_KEY_MIC, data: our_auth.to_vec() }),
        ];
        let tunnel_name = self.policy.tunnels[tunnel].name.clone();
        let peer_id = format!("{} {}", idi.id_type, printable(idi.id_type, &idi.data));
        if request.initial_contact {
            // The peer restarted: its earlier IKE SAs and their Child SAs are gone on its side
            // (RFC 7296 2.4), and go here before the new Child SA counts against the tunnel.
            self.end_for_initial_contact(&tunnel_name, &peer_id, local, remote);
        }
        let child = self.agree_child(&half, tunnel, &request, authenticated, &mut answer);

        let Some(response) = seal_datagrams(&mut half.sk, &response_header(header), &answer, fragment_limit) else {
            return;
        };
        let ike_suite = half.suite.to_string();
        let rekey_at = self.rekey_time(now);
        let established = Established {
            local,
            remote,
            spi_i: half.spi_i,
            tunnel: tunnel_name.clone(),
            peer: peer_id.clone(),
            suite: half.suite,
            sk: half.sk,
            sk_d: std::mem::take(&mut half.keys.sk_d),
            nat: half.nat.any(),
            authenticated,
            children: child.iter().map(|c| c.record(now, rekey_at)).collect(),
            rekeyed: false,
            created: now,
            last_heard: now,
            fragment_limit,
            ours: Default::default(),
        };
        let info = established.info(spi_r);
        // send_response moves the window on to message ID 2 and caches the answer.
        self.insert_established(spi_r, established, 1);
        self.send_response(spi_r, local, remote, Some(response));
        self.log(
            LogLevel::Info,
            local,
            remote,
            format!("IKE SA established for tunnel {tunnel_name} ({peer_id}): {ike_suite}"),
        );
        self.events.push_back(Event::IkeSaEstablished(info));
        match child {
            Ok(child) => {
                self.log(LogLevel::Info, local, remote, child.log_line());
                self.events.push_back(Event::ChildSaEstablished(child));
            }
            Err(refusal) => {
                self.log(
                    LogLevel::Warning,
                    local,
                    remote,
                    format!("Child SA refused for tunnel {tunnel_name}: {refusal}"),
                );
            }
        }
    }

    /// Agree the first Child SA, appending its payloads (or the refusal) to `answer`.
    fn agree_child(
        &mut self,
        half: &HalfOpen,
        tunnel: usize,
        request: &AuthRequest<'_>,
        authenticated: Authenticated,
        answer: &mut Vec<Payload>,
    ) -> Result<ChildSa, NotifyType> {
        let refuse = |answer: &mut Vec<Payload>, kind: NotifyType| {
            answer.push(Payload::Notify(Notify::new(kind, Vec::new())));
            Err(kind)
        };
        let (Some(offer), Some(tsi), Some(tsr)) = (request.sa, request.tsi, request.tsr) else {
            return refuse(answer, NotifyType::NO_PROPOSAL_CHOSEN);
        };
        let policy = &self.policy.tunnels[tunnel];
        let ChildSelection::Chosen(suite, peer_spi, mut proposal) =
            select_child(offer, policy.allow_null_cipher, ChildKe::NotInExchange)
        else {
            return refuse(answer, NotifyType::NO_PROPOSAL_CHOSEN);
        };
        // Where the router lists no groups for later rekeys, our rekeys offer PFS with the IKE
        // SA's group, and none if it refuses that.
        let rekey_group = rekey_group(offer, proposal.number, Some(half.suite.ke).filter(|ke| !ke.is_kem()));
        let Some(selectors) = narrow(tsi, tsr) else { return refuse(answer, NotifyType::TS_UNACCEPTABLE) };
        let tunnel_name = policy.name.clone();
        // One slot stays free for a rekey, whose new Child SA lives beside the old until its Delete.
        if self.child_sa_count(&tunnel_name) + 1 >= MAX_CHILD_SAS_PER_TUNNEL {
            return refuse(answer, NotifyType::NO_ADDITIONAL_SAS);
        }
        let Some(our_spi) = self.allocate_esp_spi() else { return refuse(answer, NotifyType::TEMPORARY_FAILURE) };
        proposal.spi = our_spi.to_be_bytes().to_vec();

        // KEYMAT = prf+(SK_d, Ni | Nr); we receive with the initiator-to-responder keys.
        let (to_us, to_peer) = child_keys(
            half.suite.prf,
            &half.keys.sk_d,
            &[],
            (&half.ni, &half.nr),
            suite.encryption_key_len(),
            suite.integrity_key_len(),
        );
        let inbound = ChildSaKeys { spi: our_spi, encryption: to_us.encryption, integrity: to_us.integrity };
        let outbound = ChildSaKeys { spi: peer_spi, encryption: to_peer.encryption, integrity: to_peer.integrity };

        let encapsulation = super::encapsulation(half.nat.any(), half.local, half.remote);
        let (tsi, tsr) = selectors.payloads();
        answer.extend([
            Payload::Sa(SecurityAssociation { proposals: vec![proposal] }),
            Payload::TsI(tsi),
            Payload::TsR(tsr),
        ]);
        Ok(ChildSa {
            tunnel: tunnel_name,
            suite,
            inbound,
            outbound,
            selectors,
            local: half.local.ip(),
            remote: half.remote.ip(),
            encapsulation,
            rekey_of: None,
            rekey_started_here: false,
            authenticated,
            rekey_group,
        })
    }

    /// End every established IKE SA of `tunnel` authenticated as `peer`, with its Child SAs.
    fn end_for_initial_contact(&mut self, tunnel: &str, peer: &str, local: SocketAddr, remote: SocketAddr) {
        let stale: Vec<u64> = self
            .sas
            .iter()
            .filter(|(_, e)| matches!(&e.sa, IkeSa::Established(sa) if sa.tunnel == tunnel && sa.peer == peer))
            .map(|(spi, _)| *spi)
            .collect();
        for spi_r in stale {
            let Some(Entry { sa: IkeSa::Established(sa), .. }) = self.sas.get(&spi_r) else { continue };
            let info = sa.info(spi_r);
            let children = self.remove(spi_r);
            self.counters.initial_contact_deletes += 1;
            let line = format!(
                "IKE SA {:016x}_i {:016x}_r of tunnel {tunnel} ended: the peer came back with INITIAL_CONTACT, \
                 {} Child SAs with it",
                info.spi_i,
                info.spi_r,
                children.len()
            );
            self.log(LogLevel::Info, local, remote, line);
            self.events.extend(children.into_iter().map(Event::ChildSaDeleted));
            self.events.push_back(Event::IkeSaDeleted(info));
        }
    }

    /// Answer a failed IKE_AUTH with `kind` and forget the IKE SA.
    fn fail_auth(&mut self, half: &mut HalfOpen, request: &Header, kind: NotifyType, data: Vec<u8>, why: &str) {
        let (local, remote) = (half.local, half.remote);
        let refusal = [Payload::Notify(Notify::new(kind, data))];
        if let Some(response) = crate::protected::seal(&mut half.sk, &response_header(request), &refusal) {
            self.transmits.push_back(super::Transmit { local, remote, bytes: response });
        }
        self.log(LogLevel::Warning, local, remote, format!("IKE_AUTH refused ({kind}): {why}"));
    }
}

impl ChildSa {
    /// What its IKE SA remembers of it, agreed at `now`, due for our rekey at `rekey_at`.
    pub(super) fn record(&self, now: Instant, rekey_at: Option<Instant>) -> ChildRecord {
        ChildRecord {
            inbound_spi: self.inbound.spi,
            outbound_spi: self.outbound.spi,
            suite: self.suite,
            selectors: self.selectors,
            rekeyed: false,
            created: now,
            rekey_at,
            rekey_group: self.rekey_group,
        }
    }

    /// Its line in the IKE event log.
    pub(super) fn log_line(&self) -> String {
        format!(
            "Child SA {} for tunnel {}: {}, SPIs in {:08x} out {:08x}, {} <-> {}, {}",
            if self.rekey_of.is_some() { "rekeyed" } else { "established" },
            self.tunnel,
            self.suite,
            self.inbound.spi,
            self.outbound.spi,
            self.selectors.initiator,
            self.selectors.responder,
            match self.encapsulation {
                Encapsulation::Raw => "raw ESP".to_string(),
                Encapsulation::Udp { remote_port, .. } => format!("ESP in UDP to port {remote_port}"),
            }
        )
    }
}

/// The payloads of an IKE_AUTH request the responder reads.
struct AuthRequest<'a> {
    idi: Option<&'a Identification>,
    auth: Option<&'a Authentication>,
    sa: Option<&'a SecurityAssociation>,
    tsi: Option<&'a TrafficSelectors>,
    tsr: Option<&'a TrafficSelectors>,
    initial_contact: bool,
}

impl<'a> AuthRequest<'a> {
    fn gather(payloads: &'a [Payload]) -> Self {
        let mut request = Self { idi: None, auth: None, sa: None, tsi: None, tsr: None, initial_contact: false };
        for payload in payloads {
            match payload {
                Payload::IdI(id) => request.idi = Some(id),
                Payload::Auth(auth) => request.auth = Some(auth),
                Payload::Sa(sa) => request.sa = Some(sa),
                Payload::TsI(ts) => request.tsi = Some(ts),
                Payload::TsR(ts) => request.tsr = Some(ts),
                Payload::Notify(n) if n.kind == NotifyType::INITIAL_CONTACT => request.initial_contact = true,
                _ => {}
            }
        }
        request
    }
}

fn ip_octets(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(ip) => ip.octets().to_vec(),
        IpAddr::V6(ip) => ip.octets().to_vec(),
    }
}

/// An ID for the log: printable ASCII as it is, anything else in hex.
fn printable(id_type: IdType, data: &[u8]) -> String {
    if let (IdType::IPV4_ADDR, Ok(octets)) = (id_type, <[u8; 4]>::try_from(data)) {
        return std::net::Ipv4Addr::from(octets).to_string();
    }
    if data.iter().all(|b| b.is_ascii_graphic()) {
        String::from_utf8_lossy(data).into_owned()
    } else {
        data.iter().map(|b| format!("{b:02x}")).collect()
    }
}
