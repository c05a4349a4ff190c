//! Proposal selection for IKE SAs and Child SAs, in the responder's order of preference.
//!
//! The responder walks its own suites from most to least preferred and takes the first that one of
//! the initiator's proposals contains whole; the answer holds that proposal's number and exactly
//! one transform of each type it offered. A proposal with a transform type this crate does not
//! know is passed over (RFC 7296 3.3.6). ESN is refused: only "no ESN" is ever chosen.
//!
//! IKE SA: AES-GCM-16-256 > AES-GCM-16-128 > AES-CBC-256 with HMAC-SHA2-256-128; PRF SHA2-512 >
//! SHA2-384 > SHA2-256; key exchange group 20 > 14 > 5. When the chosen proposal allows the group
//! of the initiator's KE payload, that group is used; otherwise the initiator is asked for ours
//! (INVALID_KE_PAYLOAD, RFC 7296 1.2). Additional key exchanges (RFC 9370) are accepted as NONE.
//!
//! Child SA: AES-GCM-16-256 > AES-GCM-16-128 > AES-CBC-256 > AES-CBC-128 > NULL (only where the
//! tunnel opts in), integrity HMAC-SHA2-256-128 > HMAC-SHA1-96 for CBC and NULL; PFS group
//! 20 > 14 > 5 or none. In IKE_AUTH there is no key exchange for the Child SA, so key exchange
//! transforms offered there are passed over (RFC 7296 1.2).

use crate::crypto::ke::KeyExchangeMethod;
use crate::crypto::prf::Prf;
use crate::crypto::sk::IkeCipher;
use crate::wire::{
    EncrId, EsnId, IntegId, KeMethod, Proposal, ProtocolId, SecurityAssociation, Transform, TransformType,
};

/// The suite of an IKE SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IkeSuite {
    /// Encryption and integrity of the SK payload.
    pub cipher: IkeCipher,
    /// The PRF.
    pub prf: Prf,
    /// The key exchange of IKE_SA_INIT.
    pub ke: KeyExchangeMethod,
}

impl std::fmt::Display for IkeSuite {
    /// As strongSwan names it in its logs: `AES_GCM_16_256/PRF_HMAC_SHA2_384/ECP_384`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.cipher {
            IkeCipher::AesGcm16 { key_bytes } => write!(f, "AES_GCM_16_{}", key_bytes * 8)?,
            IkeCipher::AesCbc256HmacSha256 => write!(f, "AES_CBC_256/HMAC_SHA2_256_128")?,
        }
        write!(f, "/PRF_{}/{}", self.prf.id(), self.ke.id())
    }
}

/// The result of selecting an IKE SA proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IkeSelection {
    /// A suite, and the proposal to answer with.
    Chosen(IkeSuite, Proposal),
    /// A proposal fits but the KE payload is of another group: ask for this one.
    WrongKeyExchange(KeMethod),
    /// Nothing fits: NO_PROPOSAL_CHOSEN.
    NoProposal,
}

/// Encryption of a Child SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildEncryption {
    /// AES-GCM with a 16-byte ICV; 16 or 32 key bytes (plus the 4-byte salt).
    AesGcm16 { key_bytes: usize },
    /// AES-CBC with 16 or 32 key bytes.
    AesCbc { key_bytes: usize },
    /// No encryption (integrity only), where the tunnel allows it.
    Null,
}

/// Integrity of a Child SA that does not use AES-GCM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildIntegrity {
    /// HMAC-SHA2-256-128.
    HmacSha256_128,
    /// HMAC-SHA1-96.
    HmacSha1_96,
}

/// The suite of a Child SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildSuite {
    /// The encryption.
    pub encryption: ChildEncryption,
    /// The integrity, absent for AES-GCM.
    pub integrity: Option<ChildIntegrity>,
    /// The PFS key exchange, if the exchange had one.
    pub pfs: Option<KeyExchangeMethod>,
}

impl ChildSuite {
    /// The encryption key length of one direction, salt included (RFC 4106 8.1).
    pub fn encryption_key_len(&self) -> usize {
        match self.encryption {
            ChildEncryption::AesGcm16 { key_bytes } => key_bytes + 4,
            ChildEncryption::AesCbc { key_bytes } => key_bytes,
            ChildEncryption::Null => 0,
        }
    }

    /// The integrity key length of one direction.
    pub fn integrity_key_len(&self) -> usize {
        match self.integrity {
            Some(ChildIntegrity::HmacSha256_128) => 32,
            Some(ChildIntegrity::HmacSha1_96) => 20,
            None => 0,
        }
    }
}

impl std::fmt::Display for ChildSuite {
    /// As strongSwan names it: `AES_GCM_16_256`, `AES_CBC_128/HMAC_SHA1_96`, with `/ECP_384` after
    /// a PFS key exchange.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.encryption {
            ChildEncryption::AesGcm16 { key_bytes } => write!(f, "AES_GCM_16_{}", key_bytes * 8)?,
            ChildEncryption::AesCbc { key_bytes } => write!(f, "AES_CBC_{}", key_bytes * 8)?,
            ChildEncryption::Null => write!(f, "NULL")?,
        }
        match self.integrity {
            Some(ChildIntegrity::HmacSha256_128) => write!(f, "/HMAC_SHA2_256_128")?,
            Some(ChildIntegrity::HmacSha1_96) => write!(f, "/HMAC_SHA1_96")?,
            None => {}
        }
        match self.pfs {
            Some(ke) => write!(f, "/{}", ke.id()),
            None => Ok(()),
        }
    }
}

/// The result of selecting a Child SA proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChildSelection {
    /// A suite, the initiator's SPI, and the proposal to answer with (our SPI still to be set).
    Chosen(ChildSuite, u32, Proposal),
    /// A proposal fits but the KE payload is of another group: ask for this one.
    WrongKeyExchange(KeMethod),
    /// Nothing fits: NO_PROPOSAL_CHOSEN.
    NoProposal,
}

const IKE_CIPHERS: [(IkeCipher, EncrId, u16, Option<IntegId>); 3] = [
    (IkeCipher::AesGcm16 { key_bytes: 32 }, EncrId::AES_GCM_16, 256, None),
    (IkeCipher::AesGcm16 { key_bytes: 16 }, EncrId::AES_GCM_16, 128, None),
    (IkeCipher::AesCbc256HmacSha256, EncrId::AES_CBC, 256, Some(IntegId::HMAC_SHA2_256_128)),
];
const PRFS: [Prf; 3] = [Prf::HmacSha512, Prf::HmacSha384, Prf::HmacSha256];
const DH_GROUPS: [KeyExchangeMethod; 3] =
    [KeyExchangeMethod::Ecp384, KeyExchangeMethod::Modp2048, KeyExchangeMethod::Modp1536];
const CHILD_CIPHERS: [(ChildEncryption, EncrId, Option<u16>); 5] = [
    (ChildEncryption::AesGcm16 { key_bytes: 32 }, EncrId::AES_GCM_16, Some(256)),
    (ChildEncryption::AesGcm16 { key_bytes: 16 }, EncrId::AES_GCM_16, Some(128)),
    (ChildEncryption::AesCbc { key_bytes: 32 }, EncrId::AES_CBC, Some(256)),
    (ChildEncryption::AesCbc { key_bytes: 16 }, EncrId::AES_CBC, Some(128)),
    (ChildEncryption::Null, EncrId::NULL, None),
];
const CHILD_INTEGRITY: [(ChildIntegrity, IntegId); 2] = [
    (ChildIntegrity::HmacSha256_128, IntegId::HMAC_SHA2_256_128),
    (ChildIntegrity::HmacSha1_96, IntegId::HMAC_SHA1_96),
];

/// The transform types that may appear in an IKE or ESP proposal.
fn known_type(kind: TransformType) -> bool {
    (TransformType::ENCR.0..=TransformType::ADDKE7.0).contains(&kind.0)
}

/// Whether `proposal` offers the transform `id` of type `kind` (with `key_bits`, if given).
fn offers(proposal: &Proposal, kind: TransformType, id: u16, key_bits: Option<u16>) -> bool {
    proposal.transforms_of(kind).any(|t| t.id == id && t.key_length() == key_bits)
}

/// Whether every additional key exchange type `proposal` carries offers NONE.
fn additional_ke_none(proposal: &Proposal) -> bool {
    (TransformType::ADDKE1.0..=TransformType::ADDKE7.0).all(|kind| {
        let mut offered = proposal.transforms_of(TransformType(kind)).peekable();
        offered.peek().is_none() || offered.any(|t| t.id == KeMethod::NONE.0)
    })
}

/// The answer: the proposal's number and protocol, `spi`, and the chosen transforms.
fn answer(proposal: &Proposal, spi: Vec<u8>, transforms: Vec<Transform>) -> Proposal {
    Proposal { number: proposal.number, protocol: proposal.protocol, spi, transforms }
}

/// Select an IKE SA suite from `offer` in IKE_SA_INIT (proposals without SPIs); `ke_payload` is
/// the group of the initiator's KE payload.
pub fn select_ike(offer: &SecurityAssociation, ke_payload: KeMethod) -> IkeSelection {
    select_ike_with_spi(offer, ke_payload, 0)
}

/// Select the suite of a new IKE SA in a rekey (CREATE_CHILD_SA, RFC 7296 1.3.2): proposals carry
/// the initiator's new 8-byte SPI, which stays in the answer for the caller to replace by ours.
pub fn select_ike_rekey(offer: &SecurityAssociation, ke_payload: KeMethod) -> IkeSelection {
    select_ike_with_spi(offer, ke_payload, 8)
}

fn select_ike_with_spi(offer: &SecurityAssociation, ke_payload: KeMethod, spi_len: usize) -> IkeSelection {
    let candidates: Vec<&Proposal> = offer
        .proposals
        .iter()
        .filter(|p| p.protocol == ProtocolId::IKE && p.spi.len() == spi_len)
        .filter(|p| p.transforms.iter().all(|t| known_type(t.kind)))
        .filter(|p| additional_ke_none(p))
        .collect();
    let mut wrong_group = None;
    for (cipher, encr, bits, integ) in IKE_CIPHERS {
        for prf in PRFS {
            for proposal in &candidates {
                let integrity_fits = match integ {
                    Some(id) => offers(proposal, TransformType::INTEG, id.0, None),
                    None => proposal.transforms_of(TransformType::INTEG).all(|t| t.id == IntegId::NONE.0),
                };
                if !offers(proposal, TransformType::ENCR, encr.0, Some(bits))
                    || !integrity_fits
                    || !offers(proposal, TransformType::PRF, prf.id().0, None)
                {
                    continue;
                }
                let groups: Vec<KeyExchangeMethod> =
                    DH_GROUPS.into_iter().filter(|g| offers(proposal, TransformType::KE, g.id().0, None)).collect();
                let Some(&preferred) = groups.first() else { continue };
                let Some(&ke) = groups.iter().find(|g| g.id() == ke_payload) else {
                    wrong_group.get_or_insert(preferred.id());
                    continue;
                };
                let mut transforms = vec![Transform::encr(encr, Some(bits)), Transform::prf(prf.id())];
                if let Some(id) = integ {
                    transforms.push(Transform::integ(id));
                }
                transforms.push(Transform::ke(TransformType::KE, ke.id()));
                let chosen = answer(proposal, proposal.spi.clone(), transforms);
                return IkeSelection::Chosen(IkeSuite { cipher, prf, ke }, chosen);
            }
        }
    }
    wrong_group.map_or(IkeSelection::NoProposal, IkeSelection::WrongKeyExchange)
}

/// The key exchange of the exchange that carries a Child SA offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildKe {
    /// IKE_AUTH has none: key exchange transforms offered for later rekeys are passed over
    /// (RFC 7296 1.2).
    NotInExchange,
    /// CREATE_CHILD_SA without a KE payload: only proposals that allow no key exchange.
    Omitted,
    /// CREATE_CHILD_SA with a KE payload of this group: PFS with it.
    Payload(KeMethod),
}

/// Select a Child SA suite from `offer` (ESP only), for an exchange with key exchange `ke`.
pub fn select_child(offer: &SecurityAssociation, allow_null: bool, ke: ChildKe) -> ChildSelection {
    let candidates: Vec<(&Proposal, u32)> = offer
        .proposals
        .iter()
        .filter(|p| p.protocol == ProtocolId::ESP)
        .filter(|p| p.transforms.iter().all(|t| known_type(t.kind)))
        .filter(|p| additional_ke_none(p))
        .filter(|p| p.transforms_of(TransformType::ESN).any(|t| t.id == EsnId::NO_ESN.0))
        .filter_map(|p| <[u8; 4]>::try_from(p.spi.as_slice()).ok().map(|spi| (p, u32::from_be_bytes(spi))))
        .collect();
    let mut wrong_group = None;
    for (encryption, encr, bits) in CHILD_CIPHERS {
        if encryption == ChildEncryption::Null && !allow_null {
            continue;
        }
        let integrities: &[(ChildIntegrity, IntegId)] =
            if matches!(encryption, ChildEncryption::AesGcm16 { .. }) { &[] } else { &CHILD_INTEGRITY };
        for &(proposal, spi) in &candidates {
            if !offers(proposal, TransformType::ENCR, encr.0, bits) {
                continue;
            }
            let integrity = match integrities {
                [] if proposal.transforms_of(TransformType::INTEG).all(|t| t.id == IntegId::NONE.0) => None,
                [] => continue,
                list => match list.iter().find(|(_, id)| offers(proposal, TransformType::INTEG, id.0, None)) {
                    Some(&(integrity, _)) => Some(integrity),
                    None => continue,
                },
            };
            let groups_offered = proposal.transforms_of(TransformType::KE).filter(|t| t.id != KeMethod::NONE.0).count();
            let pfs_choice = match ke {
                ChildKe::NotInExchange => None,
                // Without a KE payload, the proposal must allow none: no groups, or NONE among them.
                ChildKe::Omitted
                    if groups_offered == 0 || offers(proposal, TransformType::KE, KeMethod::NONE.0, None) =>
                {
                    None
                }
                ChildKe::Omitted => continue,
                // A KE payload for a proposal without key exchange is not used.
                ChildKe::Payload(_) if groups_offered == 0 => None,
                ChildKe::Payload(group) => match KeyExchangeMethod::from_id(group) {
                    Some(method)
                        if DH_GROUPS.contains(&method) && offers(proposal, TransformType::KE, group.0, None) =>
                    {
                        Some(method)
                    }
                    _ => {
                        let ours = DH_GROUPS.into_iter().find(|g| offers(proposal, TransformType::KE, g.id().0, None));
                        if let Some(ours) = ours {
                            wrong_group.get_or_insert(ours.id());
                        }
                        continue;
                    }
                },
            };
            let mut transforms = vec![Transform::encr(encr, bits)];
            if let Some((_, id)) = integrity.and_then(|i| CHILD_INTEGRITY.iter().find(|(c, _)| *c == i)) {
                transforms.push(Transform::integ(*id));
            }
            if let Some(method) = pfs_choice {
                transforms.push(Transform::ke(TransformType::KE, method.id()));
            }
            transforms.push(Transform::esn(EsnId::NO_ESN));
            let suite = ChildSuite { encryption, integrity, pfs: pfs_choice };
            return ChildSelection::Chosen(suite, spi, answer(proposal, Vec::new(), transforms));
        }
    }
    wrong_group.map_or(ChildSelection::NoProposal, ChildSelection::WrongKeyExchange)
}

/// Our offer when we rekey a Child SA ourselves (RFC 7296 2.8): its suite as agreed, with `suite.pfs`
/// as the one key exchange (or none), and our new SPI.
pub fn child_proposal(suite: &ChildSuite, spi: u32) -> Proposal {
    let bits = |key_bytes: usize| u16::try_from(key_bytes * 8).ok();
    let (encr, bits) = match suite.encryption {
        ChildEncryption::AesGcm16 { key_bytes } => (EncrId::AES_GCM_16, bits(key_bytes)),
        ChildEncryption::AesCbc { key_bytes } => (EncrId::AES_CBC, bits(key_bytes)),
        ChildEncryption::Null => (EncrId::NULL, None),
    };
    let mut transforms = vec![Transform::encr(encr, bits)];
    if let Some((_, id)) = suite.integrity.and_then(|i| CHILD_INTEGRITY.into_iter().find(|(c, _)| *c == i)) {
        transforms.push(Transform::integ(id));
    }
    if let Some(method) = suite.pfs {
        transforms.push(Transform::ke(TransformType::KE, method.id()));
    }
    transforms.push(Transform::esn(EsnId::NO_ESN));
    Proposal { number: 1, protocol: ProtocolId::ESP, spi: spi.to_be_bytes().to_vec(), transforms }
}

/// The PFS group to use when we rekey a Child SA agreed in IKE_AUTH from proposal `number` of
/// `offer`: our preferred group among those it lists for later rekeys, none where it lists only
/// NONE (RFC 7296 1.2), and `unlisted` where it lists no key exchange at all (as strongSwan does).
pub fn rekey_group(
    offer: &SecurityAssociation,
    number: u8,
    unlisted: Option<KeyExchangeMethod>,
) -> Option<KeyExchangeMethod> {
    let proposal = offer.proposals.iter().find(|p| p.number == number && p.protocol == ProtocolId::ESP)?;
    if proposal.transforms_of(TransformType::KE).next().is_none() {
        return unlisted;
    }
    DH_GROUPS.into_iter().find(|g| offers(proposal, TransformType::KE, g.id().0, None))
}

#[cfg(test)]
mod tests;
