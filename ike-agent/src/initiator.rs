//! An IKEv2 initiator for tests and load generation: the customer router's side of IKE_SA_INIT
//! and IKE_AUTH with a pre-shared key, CREATE_CHILD_SA (new Child SAs, their rekeys with or
//! without PFS, the IKE SA's rekey) and Deletes, with IKE fragmentation where configured, built
//! on the same codec and crypto as the responder. It checks the responder's AUTH, so that a test
//! passing through it has proven both directions.

use std::net::SocketAddr;

use aws_lc_rs::rand;

use crate::crypto::auth::{psk_auth, verify_psk_auth, SignedOctets};
use crate::crypto::ke::{KeyExchangeMethod, PendingKe};
use crate::crypto::keys::{child_keys, skeyseed, skeyseed_from_sk_d, IkeSaKeys};
use crate::crypto::prf::{Prf, SecretBytes};
use crate::crypto::sk::{IkeCipher, SkProtection};
use crate::fragment::{accept, message_limit, Accepted, FragmentDrop, Fragmentation, Reassembly};
use crate::proposal::{select_child, ChildKe, ChildSelection, ChildSuite};
use crate::responder::nat::detection_hash;
use crate::selectors::{narrow, SelectorPair};
use crate::wire::message::ChildSaPayloads;
use crate::wire::{
    AuthMethod, Authentication, Delete, ExchangeType, Flags, Header, Identification, KeMethod, KeyExchange, Message,
    Nonce, Notify, NotifyType, Payload, PayloadType, Proposal, ProtocolId, SecurityAssociation, TrafficSelectors,
    TransformType,
};

/// What NAT detection notifications the initiator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatDetection {
    /// None at all.
    Omit,
    /// The true hashes of its addresses.
    Honest,
    /// A source hash that matches nothing, as strongSwan sends to force UDP encapsulation.
    FakeSource,
}

/// How the initiator is set up.
#[derive(Debug, Clone)]
pub struct InitiatorConfig {
    /// The IKE SA proposals, in order.
    pub ike_proposals: Vec<Proposal>,
    /// The group of the first KE payload.
    pub ke: KeyExchangeMethod,
    /// The Child SA proposals (their SPIs are set by the initiator).
    pub esp_proposals: Vec<Proposal>,
    /// IDi.
    pub id: Identification,
    /// The pre-shared key.
    pub psk: Vec<u8>,
    /// The traffic selectors offered.
    pub tsi: TrafficSelectors,
    /// The traffic selectors asked for.
    pub tsr: TrafficSelectors,
    /// Our address and port, as we believe it.
    pub local: SocketAddr,
    /// The responder's address and port.
    pub remote: SocketAddr,
    /// The NAT detection notifications sent.
    pub nat_detection: NatDetection,
    /// Whether IKE_AUTH says N(INITIAL_CONTACT): this router has no other IKE SA with the responder.
    pub initial_contact: bool,
    /// IKE fragmentation (RFC 7383): offered when set, with the largest IP datagram a fragment
    /// of ours makes.
    pub fragment_size: Option<usize>,
}

/// Why the initiator stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitiatorError {
    /// The responder answered with an error notification.
    Refused(NotifyType),
    /// The response did not parse, did not decrypt, or lacked a payload.
    Malformed(&'static str),
    /// The responder's AUTH is wrong.
    ResponderAuthentication,
    /// A call out of order.
    OutOfOrder,
    /// A fragment of the response, held: the others are needed.
    FragmentPending,
}

/// The initiator's view of a Child SA that came up.
#[derive(Debug)]
pub struct InitiatorChild {
    /// Its transforms.
    pub suite: ChildSuite,
    /// What we send: the responder's SPI and the initiator-to-responder keys.
    pub outbound: (u32, SecretBytes, SecretBytes),
    /// What we receive: our SPI and the responder-to-initiator keys.
    pub inbound: (u32, SecretBytes, SecretBytes),
    /// The selectors the responder chose.
    pub selectors: SelectorPair,
}

/// What IKE_AUTH gave.
#[derive(Debug)]
pub struct AuthOutcome {
    /// The Child SA, or the notification that refused it.
    pub child: Result<InitiatorChild, NotifyType>,
}

/// A CREATE_CHILD_SA request sent, waiting for its response.
struct PendingCreate {
    ni: Vec<u8>,
    ke: Option<PendingKe>,
    /// Our SPI of the new Child SA, or our new IKE SPI in an IKE SA rekey.
    spi: u64,
}

struct InitDone {
    spi_r: u64,
    prf: Prf,
    keys: IkeSaKeys,
    sk: SkProtection,
    nr: Vec<u8>,
    init_response: Vec<u8>,
    /// The responder agreed to IKE fragmentation.
    fragmentation: bool,
}

/// One IKE SA, initiated.
pub struct Initiator {
    config: InitiatorConfig,
    spi_i: u64,
    ni: Vec<u8>,
    ke: KeyExchangeMethod,
    pending: Option<PendingKe>,
    init_request: Vec<u8>,
    done: Option<InitDone>,
    child_spi: u32,
    next_message_id: u32,
    pending_create: Option<PendingCreate>,
    /// The responder's COOKIE, sent first in the next IKE_SA_INIT.
    cookie: Option<Vec<u8>>,
    /// Fragments of the response awaited.
    response_fragments: Option<Reassembly>,
    /// The nonce of the next CREATE_CHILD_SA we send or answer, instead of a random one.
    next_nonce: Option<Vec<u8>>,
}

impl std::fmt::Debug for Initiator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Initiator").field("spi_i", &self.spi_i).finish_non_exhaustive()
    }
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::fill(&mut bytes).expect("the system random source works");
    bytes
}

impl Initiator {
    /// A new initiator with fresh SPI and nonce.
    pub fn new(config: InitiatorConfig) -> Self {
        let ke = config.ke;
        Self {
            config,
            spi_i: u64::from_be_bytes(random()) | 1,
            ni: random::<32>().to_vec(),
            ke,
            pending: None,
            init_request: Vec::new(),
            done: None,
            child_spi: u32::from_be_bytes(random()) | 0x100,
            next_message_id: 0,
            pending_create: None,
            cookie: None,
            response_fragments: None,
            next_nonce: None,
        }
    }

    /// The initiator's IKE SPI.
    pub fn spi_i(&self) -> u64 {
        self.spi_i
    }

    /// The responder's IKE SPI, once known.
    pub fn spi_r(&self) -> Option<u64> {
        self.done.as_ref().map(|d| d.spi_r)
    }

    /// Point later requests at another address (the move to port 4500).
    pub fn set_addresses(&mut self, local: SocketAddr, remote: SocketAddr) {
        self.config.local = local;
        self.config.remote = remote;
    }

    fn header(&self, exchange: ExchangeType, message_id: u32) -> Header {
        Header {
            spi_i: self.spi_i,
            spi_r: self.spi_r().unwrap_or(0),
            next_payload: PayloadType::NONE,
            minor_version: 0,
            exchange,
            flags: Flags(Flags::INITIATOR),
            message_id,
            length: 0,
        }
    }

    /// `HDR, SAi1, KEi, Ni, N(NAT_DETECTION_*) -->`
    pub fn ike_sa_init(&mut self) -> Vec<u8> {
        let (pending, value) = self.ke.initiate().expect("a supported key exchange starts");
        self.pending = Some(pending);
        let mut payloads = Vec::new();
        if let Some(cookie) = &self.cookie {
            payloads.push(Payload::Notify(Notify::new(NotifyType::COOKIE, cookie.clone())));
        }
        payloads.extend([
            Payload::Sa(SecurityAssociation { proposals: self.config.ike_proposals.clone() }),
            Payload::Ke(KeyExchange { method: self.ke.id(), data: value }),
            Payload::Nonce(Nonce(self.ni.clone())),
        ]);
        let source = match self.config.nat_detection {
            NatDetection::Omit => None,
            NatDetection::Honest => Some(detection_hash(self.spi_i, 0, self.config.local)),
            NatDetection::FakeSource => Some(random::<20>().to_vec()),
        };
        if let Some(source) = source {
            payloads.push(Payload::Notify(Notify::new(NotifyType::NAT_DETECTION_SOURCE_IP, source)));
            let destination = detection_hash(self.spi_i, 0, self.config.remote);
            payloads.push(Payload::Notify(Notify::new(NotifyType::NAT_DETECTION_DESTINATION_IP, destination)));
        }
        if self.config.fragment_size.is_some() {
            payloads.push(Payload::Notify(Notify::new(NotifyType::IKEV2_FRAGMENTATION_SUPPORTED, Vec::new())));
        }
        let message = Message { header: self.header(ExchangeType::IKE_SA_INIT, 0), payloads };
        self.init_request = message.encode().expect("an IKE_SA_INIT request fits");
        self.init_request.clone()
    }

    /// `<-- HDR, SAr1, KEr, Nr, [N]`. Returns `Ok(false)` when the responder asked for another
    /// group or for a cookie: call [`Self::ike_sa_init`] again.
    pub fn on_ike_sa_init_response(&mut self, bytes: &[u8]) -> Result<bool, InitiatorError> {
        let message = Message::parse(bytes).map_err(|_| InitiatorError::Malformed("IKE_SA_INIT response"))?;
        let mut sa = None;
        let mut ke = None;
        let mut nr = None;
        let mut fragmentation = false;
        for payload in &message.payloads {
            match payload {
                Payload::Notify(n) if n.kind == NotifyType::IKEV2_FRAGMENTATION_SUPPORTED => fragmentation = true,
                Payload::Notify(n) if n.kind == NotifyType::INVALID_KE_PAYLOAD => {
                    let group = n.data.get(..2).map(|g| KeMethod(u16::from_be_bytes([g[0], g[1]])));
                    self.ke = group
                        .and_then(KeyExchangeMethod::from_id)
                        .ok_or(InitiatorError::Malformed("INVALID_KE_PAYLOAD group"))?;
                    return Ok(false);
                }
                Payload::Notify(n) if n.kind == NotifyType::COOKIE => {
                    self.cookie = Some(n.data.clone());
                    return Ok(false);
                }
                Payload::Notify(n) if n.kind.is_error() => return Err(InitiatorError::Refused(n.kind)),
                Payload::Sa(s) => sa = Some(s),
                Payload::Ke(k) => ke = Some(k),
                Payload::Nonce(n) => nr = Some(n.0.clone()),
                _ => {}
            }
        }
        let (Some(sa), Some(ke), Some(nr)) = (sa, ke, nr) else {
            return Err(InitiatorError::Malformed("IKE_SA_INIT response payloads"));
        };
        let [proposal] = sa.proposals.as_slice() else { return Err(InitiatorError::Malformed("chosen proposal")) };
        let (cipher, prf) = chosen_ike_suite(proposal)?;
        let pending = self.pending.take().ok_or(InitiatorError::OutOfOrder)?;
        let shared = pending.finish(&ke.data).map_err(|_| InitiatorError::Malformed("KEr"))?;
        let spi_r = message.header.spi_r;
        let seed = skeyseed(prf, &self.ni, &nr, &shared);
        let keys = IkeSaKeys::derive(cipher.key_lengths(prf), &seed, &self.ni, &nr, self.spi_i, spi_r);
        let sk = SkProtection::initiator(cipher, &keys).map_err(|_| InitiatorError::Malformed("SK keys"))?;
        let fragmentation = fragmentation && self.config.fragment_size.is_some();
        self.done = Some(InitDone { spi_r, prf, keys, sk, nr, init_response: bytes.to_vec(), fragmentation });
        self.next_message_id = 1;
        Ok(true)
    }

    /// `HDR, SK {IDi, AUTH, SAi2, TSi, TSr} -->`
    pub fn ike_auth(&mut self) -> Result<Vec<u8>, InitiatorError> {
        let header = self.header(ExchangeType::IKE_AUTH, self.next_message_id);
        let payloads = self.ike_auth_payloads()?;
        let done = self.done.as_mut().ok_or(InitiatorError::OutOfOrder)?;
        crate::protected::seal(&mut done.sk, &header, &payloads).ok_or(InitiatorError::OutOfOrder)
    }

    /// The same IKE_AUTH request as datagrams: in fragments of the configured size where the
    /// responder agreed to fragmentation and the request does not fit one.
    pub fn ike_auth_datagrams(&mut self) -> Result<Vec<Vec<u8>>, InitiatorError> {
        let header = self.header(ExchangeType::IKE_AUTH, self.next_message_id);
        let payloads = self.ike_auth_payloads()?;
        let limit = self.fragment_limit();
        let done = self.done.as_mut().ok_or(InitiatorError::OutOfOrder)?;
        crate::protected::seal_datagrams(&mut done.sk, &header, &payloads, limit).ok_or(InitiatorError::OutOfOrder)
    }

    /// Use `nonce` in the next CREATE_CHILD_SA we send or answer: the nonces decide which of two
    /// colliding rekeys stays (RFC 7296 2.8.1), and a test picks the winner with it.
    pub fn set_next_nonce(&mut self, nonce: Vec<u8>) {
        self.next_nonce = Some(nonce);
    }

    /// Fragment later requests to datagrams of `size` bytes, as an initiator does that finds its
    /// path narrower on retransmission (RFC 7383 2.5.2).
    pub fn set_fragment_size(&mut self, size: usize) {
        self.config.fragment_size = Some(size);
    }

    /// The longest message we send before fragmenting, where fragmentation was agreed.
    fn fragment_limit(&self) -> Option<usize> {
        let size = self.config.fragment_size?;
        self.done.as_ref().is_some_and(|d| d.fragmentation).then(|| message_limit(size, self.config.local))
    }

    fn ike_auth_payloads(&self) -> Result<Vec<Payload>, InitiatorError> {
        let done = self.done.as_ref().ok_or(InitiatorError::OutOfOrder)?;
        let octets = SignedOctets {
            real_message: &self.init_request,
            peer_nonce: &done.nr,
            sk_p: &done.keys.sk_pi,
            id_body: &self.config.id.body(),
            int_auth: &[],
        };
        let auth = psk_auth(done.prf, &self.config.psk, &octets);
        let mut proposals = self.config.esp_proposals.clone();
        for proposal in &mut proposals {
            proposal.spi = self.child_spi.to_be_bytes().to_vec();
        }
        let mut payloads = vec![Payload::IdI(self.config.id.clone())];
        if self.config.initial_contact {
            payloads.push(Payload::Notify(Notify::new(NotifyType::INITIAL_CONTACT, Vec::new())));
        }
        payloads.extend([
            Payload::Auth(Authentication { method: AuthMethod::SHARED_KEY_MIC, data: auth.to_vec() }),
            Payload::Sa(SecurityAssociation { proposals }),
            Payload::TsI(self.config.tsi.clone()),
            Payload::TsR(self.config.tsr.clone()),
        ]);
        Ok(payloads)
    }

    /// `<-- HDR, SK {IDr, AUTH, SAr2, TSi, TSr}`, or an error notification.
    pub fn on_ike_auth_response(&mut self, bytes: &[u8]) -> Result<AuthOutcome, InitiatorError> {
        let payloads = self.open_response(bytes)?;
        let done = self.done.as_ref().ok_or(InitiatorError::OutOfOrder)?;
        let (mut idr, mut auth, mut sa, mut tsi, mut tsr, mut refusal) = (None, None, None, None, None, None);
        for payload in &payloads {
            match payload {
                Payload::IdR(id) => idr = Some(id),
                Payload::Auth(a) => auth = Some(a),
                Payload::Sa(s) => sa = Some(s),
                Payload::TsI(t) => tsi = Some(t),
                Payload::TsR(t) => tsr = Some(t),
                Payload::Notify(n) if n.kind.is_error() => refusal = Some(n.kind),
                _ => {}
            }
        }
        let (Some(idr), Some(auth)) = (idr, auth) else {
            return Err(InitiatorError::Refused(refusal.unwrap_or(NotifyType::INVALID_SYNTAX)));
        };
        let octets = SignedOctets {
            real_message: &done.init_response,
            peer_nonce: &self.ni,
            sk_p: &done.keys.sk_pr,
            id_body: &idr.body(),
            int_auth: &[],
        };
        if auth.method != AuthMethod::SHARED_KEY_MIC
            || !verify_psk_auth(done.prf, &self.config.psk, &octets, &auth.data)
        {
            return Err(InitiatorError::ResponderAuthentication);
        }
        let child = match (sa, tsi, tsr, refusal) {
            (_, _, _, Some(kind)) => Err(kind),
            (Some(sa), Some(tsi), Some(tsr), None) => Ok(self.child(sa, tsi, tsr)?),
            _ => return Err(InitiatorError::Malformed("Child SA payloads")),
        };
        Ok(AuthOutcome { child })
    }

    /// `HDR, SK {} -->`: a liveness check.
    pub fn informational(&mut self) -> Result<Vec<u8>, InitiatorError> {
        self.seal_request(ExchangeType::INFORMATIONAL, &[])
    }

    /// `HDR, SK {[N(REKEY_SA)], SA, Ni, [KEi], TSi, TSr} -->`: a new Child SA, or the rekey of
    /// the one we receive on with `rekey` (our inbound SPI), with a KE payload of `pfs` or none.
    /// The ESP proposals are the configured ones: they list the PFS groups offered.
    pub fn create_child_sa(
        &mut self,
        rekey: Option<u32>,
        pfs: Option<KeyExchangeMethod>,
    ) -> Result<Vec<u8>, InitiatorError> {
        let spi = u32::from_be_bytes(random()) | 0x100;
        let mut proposals = self.config.esp_proposals.clone();
        for proposal in &mut proposals {
            proposal.spi = spi.to_be_bytes().to_vec();
        }
        let ni = self.next_nonce.take().unwrap_or_else(|| random::<32>().to_vec());
        let mut payloads = Vec::new();
        if let Some(old) = rekey {
            payloads.push(Payload::Notify(Notify::rekey_sa(old)));
        }
        payloads.push(Payload::Sa(SecurityAssociation { proposals }));
        payloads.push(Payload::Nonce(Nonce(ni.clone())));
        let ke = match pfs {
            Some(group) => {
                let (pending, value) = group.initiate().map_err(|_| InitiatorError::OutOfOrder)?;
                payloads.push(Payload::Ke(KeyExchange { method: group.id(), data: value }));
                Some(pending)
            }
            None => None,
        };
        payloads.push(Payload::TsI(self.config.tsi.clone()));
        payloads.push(Payload::TsR(self.config.tsr.clone()));
        self.pending_create = Some(PendingCreate { ni, ke, spi: u64::from(spi) });
        self.seal_request(ExchangeType::CREATE_CHILD_SA, &payloads)
    }

    /// `<-- HDR, SK {SA, Nr, [KEr], TSi, TSr}`: the Child SA, or the notification refusing it.
    pub fn on_create_child_sa_response(
        &mut self,
        bytes: &[u8],
    ) -> Result<Result<InitiatorChild, NotifyType>, InitiatorError> {
        let payloads = self.open_response(bytes)?;
        let pending = self.pending_create.take().ok_or(InitiatorError::OutOfOrder)?;
        let answer = ChildSaPayloads::gather(&payloads);
        if let Some(refusal) = answer.refusal {
            return Ok(Err(refusal.kind));
        }
        let (ke, Some(sa), Some(Nonce(nr)), Some(tsi), Some(tsr)) =
            (answer.ke, answer.sa, answer.nonce, answer.tsi, answer.tsr)
        else {
            return Err(InitiatorError::Malformed("CREATE_CHILD_SA response payloads"));
        };
        let child_ke = ke.map_or(ChildKe::Omitted, |k| ChildKe::Payload(k.method));
        let ChildSelection::Chosen(suite, responder_spi, _) = select_child(sa, true, child_ke) else {
            return Err(InitiatorError::Malformed("chosen ESP proposal"));
        };
        let shared = match (pending.ke, ke) {
            (Some(ours), Some(theirs)) => {
                Some(ours.finish(&theirs.data).map_err(|_| InitiatorError::Malformed("KEr"))?)
            }
            (None, None) => None,
            _ => return Err(InitiatorError::Malformed("KEr without KEi, or none answering it")),
        };
        let selectors = narrow(tsi, tsr).ok_or(InitiatorError::Malformed("chosen selectors"))?;
        let done = self.done.as_ref().ok_or(InitiatorError::OutOfOrder)?;
        let secrets: Vec<&[u8]> = shared.iter().map(|s| &s[..]).collect();
        let (to_peer, to_us) = child_keys(
            done.prf,
            &done.keys.sk_d,
            &secrets,
            (&pending.ni, nr),
            suite.encryption_key_len(),
            suite.integrity_key_len(),
        );
        let our_spi = u32::try_from(pending.spi).map_err(|_| InitiatorError::OutOfOrder)?;
        Ok(Ok(InitiatorChild {
            suite,
            outbound: (responder_spi, to_peer.encryption, to_peer.integrity),
            inbound: (our_spi, to_us.encryption, to_us.integrity),
            selectors,
        }))
    }

    /// `HDR, SK {SA, Ni, KEi} -->`: rekey the IKE SA with the configured IKE proposals, a new SPI
    /// and a key exchange of the configured group.
    pub fn rekey_ike_sa(&mut self) -> Result<Vec<u8>, InitiatorError> {
        let spi = u64::from_be_bytes(random()) | 1;
        let mut proposals = self.config.ike_proposals.clone();
        for proposal in &mut proposals {
            proposal.spi = spi.to_be_bytes().to_vec();
        }
        let ni = random::<32>().to_vec();
        let (pending, value) = self.ke.initiate().map_err(|_| InitiatorError::OutOfOrder)?;
        let payloads = [
            Payload::Sa(SecurityAssociation { proposals }),
            Payload::Nonce(Nonce(ni.clone())),
            Payload::Ke(KeyExchange { method: self.ke.id(), data: value }),
        ];
        self.pending_create = Some(PendingCreate { ni, ke: Some(pending), spi });
        self.seal_request(ExchangeType::CREATE_CHILD_SA, &payloads)
    }

    /// `<-- HDR, SK {SA, Nr, KEr}`: the new IKE SA, as an initiator of its own (message IDs
    /// from 0). This one stays, to delete the old IKE SA.
    pub fn on_rekey_ike_sa_response(&mut self, bytes: &[u8]) -> Result<Result<Initiator, NotifyType>, InitiatorError> {
        let payloads = self.open_response(bytes)?;
        let pending = self.pending_create.take().ok_or(InitiatorError::OutOfOrder)?;
        let (mut sa, mut nr, mut ke) = (None, None, None);
        for payload in &payloads {
            match payload {
                Payload::Notify(n) if n.kind.is_error() => return Ok(Err(n.kind)),
                Payload::Sa(s) => sa = Some(s),
                Payload::Nonce(n) => nr = Some(&n.0),
                Payload::Ke(k) => ke = Some(k),
                _ => {}
            }
        }
        let (Some(sa), Some(nr), Some(ke)) = (sa, nr, ke) else {
            return Err(InitiatorError::Malformed("IKE SA rekey response payloads"));
        };
        let [proposal] = sa.proposals.as_slice() else { return Err(InitiatorError::Malformed("chosen proposal")) };
        let (cipher, prf) = chosen_ike_suite(proposal)?;
        let spi_r = <[u8; 8]>::try_from(proposal.spi.as_slice())
            .map(u64::from_be_bytes)
            .map_err(|_| InitiatorError::Malformed("new responder SPI"))?;
        let ours = pending.ke.ok_or(InitiatorError::OutOfOrder)?;
        let shared = ours.finish(&ke.data).map_err(|_| InitiatorError::Malformed("KEr"))?;
        let done = self.done.as_ref().ok_or(InitiatorError::OutOfOrder)?;
        let seed = skeyseed_from_sk_d(done.prf, &done.keys.sk_d, &shared, &pending.ni, nr);
        let keys = IkeSaKeys::derive(cipher.key_lengths(prf), &seed, &pending.ni, nr, pending.spi, spi_r);
        let sk = SkProtection::initiator(cipher, &keys).map_err(|_| InitiatorError::Malformed("SK keys"))?;
        Ok(Ok(Initiator {
            config: self.config.clone(),
            spi_i: pending.spi,
            ni: pending.ni,
            ke: self.ke,
            pending: None,
            init_request: Vec::new(),
            done: Some(InitDone {
                spi_r,
                prf,
                keys,
                sk,
                nr: nr.clone(),
                init_response: Vec::new(),
                fragmentation: done.fragmentation,
            }),
            child_spi: self.child_spi,
            next_message_id: 0,
            pending_create: None,
            cookie: None,
            response_fragments: None,
            next_nonce: None,
        }))
    }

    /// `HDR, SK {D(ESP, SPIs)} -->`: delete Child SAs by the SPIs we receive on.
    pub fn delete_child_sas(&mut self, spis: Vec<u32>) -> Result<Vec<u8>, InitiatorError> {
        let delete = Payload::Delete(Delete { protocol: ProtocolId::ESP, spis });
        self.seal_request(ExchangeType::INFORMATIONAL, &[delete])
    }

    /// `HDR, SK {D(IKE)} -->`: delete this IKE SA.
    pub fn delete_ike_sa(&mut self) -> Result<Vec<u8>, InitiatorError> {
        let delete = Payload::Delete(Delete { protocol: ProtocolId::IKE, spis: Vec::new() });
        self.seal_request(ExchangeType::INFORMATIONAL, &[delete])
    }

    /// `<-- HDR, SK {...}`, a request of the responder's own (a liveness check, a Delete): its
    /// payloads, and our empty answer `HDR, SK {} -->`.
    pub fn answer_request(&mut self, bytes: &[u8]) -> Result<(Vec<Payload>, Vec<u8>), InitiatorError> {
        self.answer_request_with(bytes, &[])
    }

    /// `<-- HDR, SK {N(REKEY_SA), SA, Ni, [KEi], TSi, TSr}`, the responder's rekey of one of our
    /// Child SAs, answered `HDR, SK {SA, Nr, [KEr], TSi, TSr} -->`: the new Child SA as we hold
    /// it, and the answer. Where `group` is given and the request's key exchange is not of it,
    /// the answer is N(INVALID_KE_PAYLOAD) naming it.
    pub fn answer_create_child_sa(
        &mut self,
        bytes: &[u8],
        group: Option<KeyExchangeMethod>,
    ) -> Result<(Result<InitiatorChild, NotifyType>, Vec<u8>), InitiatorError> {
        let message = Message::parse(bytes).map_err(|_| InitiatorError::Malformed("request"))?;
        if message.header.exchange != ExchangeType::CREATE_CHILD_SA {
            return Err(InitiatorError::Malformed("not a CREATE_CHILD_SA request"));
        }
        let payloads = self.open_payloads(bytes, &message)?;
        let request = ChildSaPayloads::gather(&payloads);
        let (ke, Some(offer), Some(Nonce(ni)), Some(tsi), Some(tsr)) =
            (request.ke, request.sa, request.nonce, request.tsi, request.tsr)
        else {
            return Err(InitiatorError::Malformed("CREATE_CHILD_SA request payloads"));
        };
        if let Some(group) = group.filter(|g| ke.is_none_or(|k| k.method != g.id())) {
            let refusal =
                Payload::Notify(Notify::new(NotifyType::INVALID_KE_PAYLOAD, group.id().0.to_be_bytes().to_vec()));
            let (_, answer) = self.answer_request_with(bytes, &[refusal])?;
            return Ok((Err(NotifyType::INVALID_KE_PAYLOAD), answer));
        }
        let child_ke = ke.map_or(ChildKe::Omitted, |k| ChildKe::Payload(k.method));
        let ChildSelection::Chosen(suite, responder_spi, mut proposal) = select_child(offer, true, child_ke) else {
            return Err(InitiatorError::Malformed("an ESP proposal to choose"));
        };
        let exchanged = match (suite.pfs, ke) {
            (Some(method), Some(ke)) => Some(method.respond(&ke.data).map_err(|_| InitiatorError::Malformed("KEi"))?),
            _ => None,
        };
        // The request's TSi is the responder's side.
        let theirs = narrow(tsi, tsr).ok_or(InitiatorError::Malformed("selectors"))?;
        let our_spi = u32::from_be_bytes(random()) | 0x100;
        proposal.spi = our_spi.to_be_bytes().to_vec();
        let nr = self.next_nonce.take().unwrap_or_else(|| random::<32>().to_vec());
        let (answer_tsi, answer_tsr) = theirs.payloads();
        let mut answer =
            vec![Payload::Sa(SecurityAssociation { proposals: vec![proposal] }), Payload::Nonce(Nonce(nr.clone()))];
        if let (Some(method), Some((value, _))) = (suite.pfs, &exchanged) {
            answer.push(Payload::Ke(KeyExchange { method: method.id(), data: value.clone() }));
        }
        answer.extend([Payload::TsI(answer_tsi), Payload::TsR(answer_tsr)]);
        let done = self.done.as_ref().ok_or(InitiatorError::OutOfOrder)?;
        let secrets: Vec<&[u8]> = exchanged.iter().map(|(_, secret)| &secret[..]).collect();
        // The responder initiated this exchange: its keys to us come first.
        let (to_us, to_peer) = child_keys(
            done.prf,
            &done.keys.sk_d,
            &secrets,
            (ni, &nr),
            suite.encryption_key_len(),
            suite.integrity_key_len(),
        );
        let (_, answer) = self.answer_request_with(bytes, &answer)?;
        let child = InitiatorChild {
            suite,
            outbound: (responder_spi, to_peer.encryption, to_peer.integrity),
            inbound: (our_spi, to_us.encryption, to_us.integrity),
            selectors: SelectorPair { initiator: theirs.responder, responder: theirs.initiator },
        };
        Ok((Ok(child), answer))
    }

    /// A request of the responder's, answered with `answer`: its payloads, and the answer.
    pub fn answer_request_with(
        &mut self,
        bytes: &[u8],
        answer: &[Payload],
    ) -> Result<(Vec<Payload>, Vec<u8>), InitiatorError> {
        let message = Message::parse(bytes).map_err(|_| InitiatorError::Malformed("request"))?;
        if message.header.flags.response() || message.header.flags.initiator() {
            return Err(InitiatorError::Malformed("not a request of the responder"));
        }
        let payloads = self.open_payloads(bytes, &message)?;
        let done = self.done.as_mut().ok_or(InitiatorError::OutOfOrder)?;
        let header = Header {
            next_payload: PayloadType::NONE,
            flags: Flags(Flags::INITIATOR | Flags::RESPONSE),
            length: 0,
            ..message.header
        };
        let answer = crate::protected::seal(&mut done.sk, &header, answer).ok_or(InitiatorError::OutOfOrder)?;
        Ok((payloads, answer))
    }

    fn seal_request(&mut self, exchange: ExchangeType, payloads: &[Payload]) -> Result<Vec<u8>, InitiatorError> {
        let header = self.header(exchange, self.next_message_id);
        let done = self.done.as_mut().ok_or(InitiatorError::OutOfOrder)?;
        crate::protected::seal(&mut done.sk, &header, payloads).ok_or(InitiatorError::OutOfOrder)
    }

    /// Check and decrypt a response to our last request; the message ID moves on. A fragment
    /// of it is held ([`InitiatorError::FragmentPending`]) until the last one completes it.
    pub fn open_response(&mut self, bytes: &[u8]) -> Result<Vec<Payload>, InitiatorError> {
        let message = Message::parse(bytes).map_err(|_| InitiatorError::Malformed("response"))?;
        if message.header.message_id != self.next_message_id || !message.header.flags.response() {
            return Err(InitiatorError::Malformed("response message ID"));
        }
        let payloads = match message.fragment() {
            None => self.open_payloads(bytes, &message)?,
            Some(_) => {
                let done = self.done.as_ref().ok_or(InitiatorError::OutOfOrder)?;
                if !done.fragmentation {
                    return Err(InitiatorError::Malformed("a fragment without fragmentation agreed"));
                }
                let limits = Fragmentation::default();
                match accept(&mut self.response_fragments, &done.sk, bytes, &message, &limits) {
                    Accepted::Pending | Accepted::Dropped(FragmentDrop::Duplicate) => {
                        return Err(InitiatorError::FragmentPending)
                    }
                    Accepted::Dropped(_) => return Err(InitiatorError::Malformed("fragment")),
                    Accepted::Complete(opened) => {
                        opened.payloads().ok_or(InitiatorError::Malformed("inner payloads"))?
                    }
                }
            }
        };
        self.next_message_id += 1;
        Ok(payloads)
    }

    /// The payloads inside a message from the responder, once its ICV checks.
    fn open_payloads(&self, bytes: &[u8], message: &Message) -> Result<Vec<Payload>, InitiatorError> {
        let done = self.done.as_ref().ok_or(InitiatorError::OutOfOrder)?;
        let opened = crate::protected::open_message(&done.sk, bytes, message)
            .ok_or(InitiatorError::Malformed("SK payload missing or failing its ICV"))?;
        opened.payloads().ok_or(InitiatorError::Malformed("inner payloads"))
    }

    fn child(
        &self,
        sa: &SecurityAssociation,
        tsi: &TrafficSelectors,
        tsr: &TrafficSelectors,
    ) -> Result<InitiatorChild, InitiatorError> {
        let done = self.done.as_ref().ok_or(InitiatorError::OutOfOrder)?;
        let ChildSelection::Chosen(suite, responder_spi, _) = select_child(sa, true, ChildKe::NotInExchange) else {
            return Err(InitiatorError::Malformed("chosen ESP proposal"));
        };
        let selectors = narrow(tsi, tsr).ok_or(InitiatorError::Malformed("chosen selectors"))?;
        let (to_peer, to_us) = child_keys(
            done.prf,
            &done.keys.sk_d,
            &[],
            (&self.ni, &done.nr),
            suite.encryption_key_len(),
            suite.integrity_key_len(),
        );
        Ok(InitiatorChild {
            suite,
            outbound: (responder_spi, to_peer.encryption, to_peer.integrity),
            inbound: (self.child_spi, to_us.encryption, to_us.integrity),
            selectors,
        })
    }
}

/// The cipher and PRF of the IKE proposal a responder chose.
fn chosen_ike_suite(proposal: &Proposal) -> Result<(IkeCipher, Prf), InitiatorError> {
    let transform = |kind| proposal.transforms_of(kind).next();
    let encr = transform(TransformType::ENCR).ok_or(InitiatorError::Malformed("ENCR"))?;
    let prf = transform(TransformType::PRF)
        .and_then(|t| Prf::from_id(crate::wire::PrfId(t.id)))
        .ok_or(InitiatorError::Malformed("PRF"))?;
    let integ = transform(TransformType::INTEG).map(|t| crate::wire::IntegId(t.id));
    let cipher = IkeCipher::from_transforms(crate::wire::EncrId(encr.id), encr.key_length(), integ)
        .ok_or(InitiatorError::Malformed("IKE cipher"))?;
    Ok((cipher, prf))
}
