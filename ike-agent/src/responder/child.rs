//! CREATE_CHILD_SA on an established IKE SA (RFC 7296 1.3): a new Child SA, the rekey of one,
//! or the rekey of the IKE SA itself.
//! ```text
//! HDR, SK {[N(REKEY_SA)], SA, Ni, [KEi], TSi, TSr}  -->
//!                                   <--  HDR, SK {SA, Nr, [KEr], TSi, TSr}
//! HDR, SK {SA, Ni, KEi}  -->
//!                                   <--  HDR, SK {SA, Nr, KEr}
//! ```
//! A Child SA's keys come from SK_d, the new nonces and, with PFS, the new shared secret (2.17).
//! A rekeyed Child SA stays until the peer deletes it: its replacement's inbound SA is installed at
//! once, its outbound SA when the old one goes, so that nothing in flight either way is lost
//! (make-before-break). A refusal is a notification in the response; the IKE SA stands.

use std::net::SocketAddr;
use std::time::Instant;

use aws_lc_rs::rand;

use super::auth::{ChildSa, ChildSaKeys};
use super::{Entry, Established, Event, IkeSa, LogLevel, Responder};
use crate::crypto::ke::KeyExchangeMethod;
use crate::crypto::keys::{child_keys, skeyseed_from_sk_d, IkeSaKeys};
use crate::crypto::prf::SecretBytes;
use crate::crypto::sk::SkProtection;
use crate::proposal::{select_child, select_ike_rekey, ChildKe, ChildSelection, IkeSelection};
use crate::protected::Opened;
use crate::selectors::narrow;
use crate::wire::message::ChildSaPayloads;
use crate::wire::{Header, KeyExchange, Nonce, Notify, NotifyType, Payload, ProtocolId, SecurityAssociation};

/// The most Child SAs one tunnel may have, counted over all its IKE SAs. New Child SAs stop one
/// short of it, keeping room for a rekey's replacement beside the SA it replaces.
pub const MAX_CHILD_SAS_PER_TUNNEL: usize = 100;

/// Our nonce length, as in IKE_SA_INIT.
const NONCE_LEN: usize = 32;

/// A refusal: the notification, and what the log says of it.
struct Refusal {
    kind: NotifyType,
    data: Vec<u8>,
    why: String,
}

impl Refusal {
    fn new(kind: NotifyType, why: impl Into<String>) -> Self {
        Self { kind, data: Vec::new(), why: why.into() }
    }
}

/// A new IKE SA agreed in a rekey, before it replaces the old one.
struct IkeRekey {
    spi_r: u64,
    established: Established,
    answer: Vec<Payload>,
}

impl Responder {
    pub(super) fn handle_create_child_sa(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        header: &Header,
        opened: &Opened,
    ) {
        let spi_r = header.spi_r;
        let Some(payloads) = opened.payloads() else {
            let refusal = Refusal::new(NotifyType::INVALID_SYNTAX, "malformed CREATE_CHILD_SA");
            return self.refuse_create_child(spi_r, local, remote, header, refusal);
        };
        if let Some(kind) = crate::wire::message::unsupported_critical(&payloads) {
            let refusal = Refusal {
                kind: NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD,
                data: vec![kind.0],
                why: format!("critical payload {kind}"),
            };
            return self.refuse_create_child(spi_r, local, remote, header, refusal);
        }
        let request = ChildSaPayloads::gather(&payloads);
        let rekeys_ike = request.sa.is_some_and(|sa| sa.proposals.iter().any(|p| p.protocol == ProtocolId::IKE));
        if rekeys_ike {
            match self.agree_ike_rekey(now, spi_r, &request) {
                Ok(rekey) => self.finish_ike_rekey(spi_r, local, remote, header, rekey),
                Err(refusal) => self.refuse_create_child(spi_r, local, remote, header, refusal),
            }
            return;
        }
        match self.agree_child_sa(spi_r, &request) {
            Ok((child, answer, lowest_nonce)) => {
                let rekey_at = self.rekey_time(now);
                let Some(Entry { sa: IkeSa::Established(sa), .. }) = self.sas.get_mut(&spi_r) else { return };
                if let Some(old) = child.rekey_of {
                    sa.children.iter_mut().filter(|c| c.inbound_spi == old).for_each(|c| c.rekeyed = true);
                    // Our own rekey of the same Child SA is in flight: which of the two is
                    // redundant is settled when its answer comes (RFC 7296 2.8.1).
                    sa.ours.note_collision(old, &child, lowest_nonce);
                }
                sa.children.push(child.record(now, rekey_at));
                let response = sa.respond(header, &answer);
                self.send_response(spi_r, local, remote, response);
                self.log(LogLevel::Info, local, remote, child.log_line());
                self.events.push_back(Event::ChildSaEstablished(child));
            }
            Err(refusal) => self.refuse_create_child(spi_r, local, remote, header, refusal),
        }
    }

    /// Agree a new or rekeyed Child SA: the SA to install, the response's payloads and the lower
    /// of the two nonces (for a rekey collision).
    fn agree_child_sa(
        &mut self,
        spi_r: u64,
        request: &ChildSaPayloads<'_>,
    ) -> Result<(ChildSa, Vec<Payload>, Vec<u8>), Refusal> {
        let Some(Entry { sa: IkeSa::Established(sa), .. }) = self.sas.get(&spi_r) else {
            return Err(Refusal::new(NotifyType::TEMPORARY_FAILURE, "IKE SA gone"));
        };
        if sa.rekeyed {
            // RFC 7296 2.8: an IKE SA being rekeyed takes no new Child SAs.
            return Err(Refusal::new(NotifyType::TEMPORARY_FAILURE, "IKE SA rekeyed"));
        }
        if sa.ours.ending {
            // Our Delete of the IKE SA crossed this request (RFC 7296 2.25.2).
            return Err(Refusal::new(NotifyType::TEMPORARY_FAILURE, "IKE SA closing"));
        }
        let (Some(offer), Some(ni), Some(tsi), Some(tsr)) = (request.sa, request.nonce, request.tsi, request.tsr)
        else {
            return Err(Refusal::new(NotifyType::INVALID_SYNTAX, "CREATE_CHILD_SA without SA, Ni, TSi or TSr"));
        };
        let rekey_of = match request.rekey {
            None => None,
            Some(Err(())) => return Err(Refusal::new(NotifyType::INVALID_SYNTAX, "REKEY_SA without an ESP SPI")),
            Some(Ok(spi)) => match sa.children.iter().find(|c| c.outbound_spi == spi && !c.rekeyed) {
                Some(old) => Some(old.inbound_spi),
                // Our Delete of it (its lifetime ended) crossed this rekey (RFC 7296 2.25.1).
                None if sa.ours.closing.iter().any(|&(_, outbound)| outbound == spi) => {
                    return Err(Refusal::new(NotifyType::TEMPORARY_FAILURE, format!("Child SA {spi:08x} closing")))
                }
                None => return Err(Refusal::new(NotifyType::CHILD_SA_NOT_FOUND, format!("no Child SA {spi:08x}"))),
            },
        };
        let Some(tunnel) = self.policy.tunnels.iter().find(|t| t.name == sa.tunnel) else {
            return Err(Refusal::new(NotifyType::TEMPORARY_FAILURE, "tunnel unconfigured"));
        };
        let count = self.child_sa_count(&sa.tunnel);
        let full = if rekey_of.is_some() { MAX_CHILD_SAS_PER_TUNNEL } else { MAX_CHILD_SAS_PER_TUNNEL - 1 };
        if count >= full {
            let kind = if rekey_of.is_some() { NotifyType::TEMPORARY_FAILURE } else { NotifyType::NO_ADDITIONAL_SAS };
            return Err(Refusal::new(kind, format!("tunnel has {count} Child SAs")));
        }
        let ke = match request.ke {
            None => ChildKe::Omitted,
            Some(ke) => ChildKe::Payload(ke.method),
        };
        let (suite, peer_spi, mut proposal) = match select_child(offer, tunnel.allow_null_cipher, ke) {
            ChildSelection::Chosen(suite, spi, proposal) => (suite, spi, proposal),
            ChildSelection::WrongKeyExchange(group) => {
                let offered = request.ke.map(|k| k.method.to_string()).unwrap_or_default();
                let refusal = Refusal {
                    kind: NotifyType::INVALID_KE_PAYLOAD,
                    data: group.0.to_be_bytes().to_vec(),
                    why: format!("KE of {offered}, asking for {group}"),
                };
                return Err(refusal);
            }
            ChildSelection::NoProposal => {
                return Err(Refusal::new(NotifyType::NO_PROPOSAL_CHOSEN, "no acceptable proposal"))
            }
        };
        let Some(selectors) = narrow(tsi, tsr) else {
            return Err(Refusal::new(NotifyType::TS_UNACCEPTABLE, "traffic selectors"));
        };
        let exchanged = match (suite.pfs, request.ke) {
            (Some(method), Some(ke)) => Some(respond_ke(method, &ke.data)?),
            _ => None,
        };
        let mut nr = vec![0u8; NONCE_LEN];
        rand::fill(&mut nr).map_err(|_| Refusal::new(NotifyType::TEMPORARY_FAILURE, "no randomness"))?;
        let (tunnel_name, local, remote, nat, authenticated) =
            (sa.tunnel.clone(), sa.local, sa.remote, sa.nat, sa.authenticated);
        let shared: Vec<&[u8]> = exchanged.iter().map(|(_, secret)| &secret[..]).collect();
        // KEYMAT = prf+(SK_d, [g^ir (new)] | Ni | Nr); we receive with the initiator-to-responder keys.
        let (to_us, to_peer) = child_keys(
            sa.suite.prf,
            &sa.sk_d,
            &shared,
            (&ni.0, &nr),
            suite.encryption_key_len(),
            suite.integrity_key_len(),
        );
        let Some(our_spi) = self.allocate_esp_spi() else {
            return Err(Refusal::new(NotifyType::TEMPORARY_FAILURE, "no free SPI"));
        };
        proposal.spi = our_spi.to_be_bytes().to_vec();
        let (tsi, tsr) = selectors.payloads();
        let lowest_nonce = ni.0.as_slice().min(nr.as_slice()).to_vec();
        let mut answer =
            vec![Payload::Sa(SecurityAssociation { proposals: vec![proposal] }), Payload::Nonce(Nonce(nr))];
        if let (Some(method), Some((value, _))) = (suite.pfs, &exchanged) {
            answer.push(Payload::Ke(KeyExchange { method: method.id(), data: value.clone() }));
        }
        answer.extend([Payload::TsI(tsi), Payload::TsR(tsr)]);
        let child = ChildSa {
            tunnel: tunnel_name,
            suite,
            inbound: ChildSaKeys { spi: our_spi, encryption: to_us.encryption, integrity: to_us.integrity },
            outbound: ChildSaKeys { spi: peer_spi, encryption: to_peer.encryption, integrity: to_peer.integrity },
            selectors,
            local: local.ip(),
            remote: remote.ip(),
            encapsulation: super::encapsulation(nat, local, remote),
            rekey_of,
            rekey_started_here: false,
            authenticated,
            rekey_group: suite.pfs,
        };
        Ok((child, answer, lowest_nonce))
    }

    /// Agree the new IKE SA of a rekey (RFC 7296 1.3.2, 2.18): new SPIs, SKEYSEED from the old SK_d.
    fn agree_ike_rekey(
        &mut self,
        now: Instant,
        spi_r: u64,
        request: &ChildSaPayloads<'_>,
    ) -> Result<IkeRekey, Refusal> {
        let Some(Entry { sa: IkeSa::Established(sa), .. }) = self.sas.get(&spi_r) else {
            return Err(Refusal::new(NotifyType::TEMPORARY_FAILURE, "IKE SA gone"));
        };
        if sa.rekeyed {
            return Err(Refusal::new(NotifyType::TEMPORARY_FAILURE, "IKE SA already rekeyed"));
        }
        if sa.ours.ending {
            return Err(Refusal::new(NotifyType::TEMPORARY_FAILURE, "IKE SA closing"));
        }
        if sa.ours.rekey_spi().is_some() {
            // Our Child SA rekey is in flight on this IKE SA: the IKE SA moves once it is settled.
            return Err(Refusal::new(NotifyType::TEMPORARY_FAILURE, "Child SA rekey in progress"));
        }
        let (Some(offer), Some(ni), Some(ke)) = (request.sa, request.nonce, request.ke) else {
            return Err(Refusal::new(NotifyType::INVALID_SYNTAX, "IKE SA rekey without SA, Ni or KEi"));
        };
        let (suite, mut proposal) = match select_ike_rekey(offer, ke.method) {
            IkeSelection::Chosen(suite, proposal) => (suite, proposal),
            IkeSelection::WrongKeyExchange(group) => {
                return Err(Refusal {
                    kind: NotifyType::INVALID_KE_PAYLOAD,
                    data: group.0.to_be_bytes().to_vec(),
                    why: format!("IKE SA rekey: KE of {}, asking for {group}", ke.method),
                });
            }
            IkeSelection::NoProposal => {
                return Err(Refusal::new(NotifyType::NO_PROPOSAL_CHOSEN, "IKE SA rekey: no acceptable proposal"))
            }
        };
        let new_spi_i = <[u8; 8]>::try_from(proposal.spi.as_slice())
            .map(u64::from_be_bytes)
            .map_err(|_| Refusal::new(NotifyType::INVALID_SYNTAX, "IKE SA rekey SPI"))?;
        let (ke_r, shared) = respond_ke(suite.ke, &ke.data)?;
        let mut nr = vec![0u8; NONCE_LEN];
        rand::fill(&mut nr).map_err(|_| Refusal::new(NotifyType::TEMPORARY_FAILURE, "no randomness"))?;
        let new_spi_r =
            self.allocate_ike_spi().ok_or_else(|| Refusal::new(NotifyType::TEMPORARY_FAILURE, "no free IKE SPI"))?;
        let Some(Entry { sa: IkeSa::Established(sa), .. }) = self.sas.get(&spi_r) else {
            return Err(Refusal::new(NotifyType::TEMPORARY_FAILURE, "IKE SA gone"));
        };
        // SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr), with the old PRF; then the new keys
        // with the new suite's PRF and SPIs.
        let seed = skeyseed_from_sk_d(sa.suite.prf, &sa.sk_d, &shared, &ni.0, &nr);
        let keys = IkeSaKeys::derive(suite.cipher.key_lengths(suite.prf), &seed, &ni.0, &nr, new_spi_i, new_spi_r);
        let sk = SkProtection::responder(suite.cipher, &keys)
            .map_err(|_| Refusal::new(NotifyType::TEMPORARY_FAILURE, "IKE SA keys"))?;
        proposal.spi = new_spi_r.to_be_bytes().to_vec();
        let answer = vec![
            Payload::Sa(SecurityAssociation { proposals: vec![proposal] }),
            Payload::Nonce(Nonce(nr)),
            Payload::Ke(KeyExchange { method: suite.ke.id(), data: ke_r }),
        ];
        let established = Established {
            local: sa.local,
            remote: sa.remote,
            spi_i: new_spi_i,
            tunnel: sa.tunnel.clone(),
            peer: sa.peer.clone(),
            suite,
            sk,
            sk_d: keys.sk_d,
            nat: sa.nat,
            authenticated: sa.authenticated,
            // Filled from the old IKE SA once the response is sealed.
            children: Vec::new(),
            rekeyed: false,
            created: now,
            last_heard: now,
            fragment_limit: sa.fragment_limit,
            ours: Default::default(),
        };
        Ok(IkeRekey { spi_r: new_spi_r, established, answer })
    }

    /// Answer an IKE SA rekey and move the Child SAs over; the old IKE SA waits for its Delete.
    fn finish_ike_rekey(
        &mut self,
        spi_r: u64,
        local: SocketAddr,
        remote: SocketAddr,
        header: &Header,
        mut rekey: IkeRekey,
    ) {
        let Some(Entry { sa: IkeSa::Established(old), .. }) = self.sas.get_mut(&spi_r) else { return };
        let response = old.respond(header, &rekey.answer);
        if response.is_none() {
            return;
        }
        rekey.established.children = std::mem::take(&mut old.children);
        // Our rekeys queued on the old IKE SA are dropped with it: they are due again on the new one.
        for child in rekey.established.children.iter_mut().filter(|c| !c.rekeyed && c.rekey_at.is_none()) {
            child.rekey_at = Some(rekey.established.created);
        }
        old.rekeyed = true;
        let old_info = old.info(spi_r);
        self.send_response(spi_r, local, remote, response);
        let info = rekey.established.info(rekey.spi_r);
        self.insert_established(rekey.spi_r, rekey.established, 0);
        self.log(
            LogLevel::Info,
            local,
            remote,
            format!(
                "IKE SA rekeyed for tunnel {}: {:016x}_i {:016x}_r -> {:016x}_i {:016x}_r, {}",
                info.tunnel, old_info.spi_i, old_info.spi_r, info.spi_i, info.spi_r, info.suite
            ),
        );
        self.events.push_back(Event::IkeSaRekeyed(info));
    }

    /// Answer a CREATE_CHILD_SA with a notification; the IKE SA stands.
    fn refuse_create_child(
        &mut self,
        spi_r: u64,
        local: SocketAddr,
        remote: SocketAddr,
        header: &Header,
        refusal: Refusal,
    ) {
        let Some(Entry { sa: IkeSa::Established(sa), .. }) = self.sas.get_mut(&spi_r) else { return };
        let tunnel = sa.tunnel.clone();
        let notify = Payload::Notify(Notify::new(refusal.kind, refusal.data));
        let response = sa.respond(header, &[notify]);
        self.send_response(spi_r, local, remote, response);
        let line = format!("CREATE_CHILD_SA refused for tunnel {tunnel} ({}): {}", refusal.kind, refusal.why);
        self.log(LogLevel::Warning, local, remote, line);
    }
}

/// Our KE value and the shared secret; a peer value of the wrong length or off the group is
/// INVALID_SYNTAX (RFC 7296 1.3, RFC 6989).
fn respond_ke(method: KeyExchangeMethod, value: &[u8]) -> Result<(Vec<u8>, SecretBytes), Refusal> {
    method
        .respond(value)
        .map_err(|_| Refusal::new(NotifyType::INVALID_SYNTAX, format!("invalid {} value", method.id())))
}
