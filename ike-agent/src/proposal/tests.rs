//! Proposal selection, one case per rule.

use super::*;
use crate::wire::{Message, Payload, PrfId};

const STRONGSWAN_IKE_SA_INIT: &[u8] = include_bytes!("../../../fuzz/seeds/ike_message/strongswan-ike-sa-init");

fn ike(number: u8, transforms: Vec<Transform>) -> Proposal {
    Proposal { number, protocol: ProtocolId::IKE, spi: Vec::new(), transforms }
}

fn esp(number: u8, transforms: Vec<Transform>) -> Proposal {
    Proposal { number, protocol: ProtocolId::ESP, spi: vec![0xc1, 0, 0, 1], transforms }
}

fn sa(proposals: Vec<Proposal>) -> SecurityAssociation {
    SecurityAssociation { proposals }
}

fn ke(group: KeMethod) -> Transform {
    Transform::ke(TransformType::KE, group)
}

#[test]
fn strongswans_first_proposal_is_taken_as_offered() {
    let message = Message::parse(STRONGSWAN_IKE_SA_INIT).unwrap();
    let Payload::Sa(offer) = &message.payloads[0] else { panic!("no SA") };
    let IkeSelection::Chosen(suite, answer) = select_ike(offer, KeMethod::ECP_384) else { panic!("nothing chosen") };
    assert_eq!(
        suite,
        IkeSuite { cipher: IkeCipher::AesGcm16 { key_bytes: 32 }, prf: Prf::HmacSha384, ke: KeyExchangeMethod::Ecp384 }
    );
    assert_eq!(answer.number, 1);
    assert_eq!(
        answer.transforms,
        [Transform::encr(EncrId::AES_GCM_16, Some(256)), Transform::prf(PrfId::HMAC_SHA2_384), ke(KeMethod::ECP_384)]
    );
}

#[test]
fn the_initiators_ke_group_is_used_when_the_proposal_allows_it() {
    let offer = sa(vec![ike(
        1,
        vec![
            Transform::encr(EncrId::AES_GCM_16, Some(128)),
            Transform::prf(PrfId::HMAC_SHA2_256),
            ke(KeMethod::ECP_384),
            ke(KeMethod::MODP_2048),
        ],
    )]);
    let IkeSelection::Chosen(suite, answer) = select_ike(&offer, KeMethod::MODP_2048) else { panic!() };
    assert_eq!(suite.ke, KeyExchangeMethod::Modp2048);
    assert_eq!(answer.transforms.last(), Some(&ke(KeMethod::MODP_2048)));
}

#[test]
fn another_group_in_the_ke_payload_asks_for_ours() {
    let offer = sa(vec![ike(
        1,
        vec![
            Transform::encr(EncrId::AES_GCM_16, Some(128)),
            Transform::prf(PrfId::HMAC_SHA2_256),
            ke(KeMethod::MODP_2048),
        ],
    )]);
    assert_eq!(select_ike(&offer, KeMethod::ECP_384), IkeSelection::WrongKeyExchange(KeMethod::MODP_2048));
    // A group we do not accept at all is not asked for.
    let offer = sa(vec![ike(
        1,
        vec![
            Transform::encr(EncrId::AES_GCM_16, Some(128)),
            Transform::prf(PrfId::HMAC_SHA2_256),
            ke(KeMethod::ECP_256),
        ],
    )]);
    assert_eq!(select_ike(&offer, KeMethod::ECP_256), IkeSelection::NoProposal);
}

#[test]
fn cbc_needs_hmac_sha256_and_gcm_takes_no_integrity() {
    let cbc = |integ: Vec<Transform>| {
        let mut t = vec![Transform::encr(EncrId::AES_CBC, Some(256)), Transform::prf(PrfId::HMAC_SHA2_256)];
        t.extend(integ);
        t.push(ke(KeMethod::ECP_384));
        sa(vec![ike(1, t)])
    };
    assert_eq!(select_ike(&cbc(vec![]), KeMethod::ECP_384), IkeSelection::NoProposal);
    assert_eq!(
        select_ike(&cbc(vec![Transform::integ(IntegId::HMAC_SHA1_96)]), KeMethod::ECP_384),
        IkeSelection::NoProposal
    );
    let IkeSelection::Chosen(suite, answer) =
        select_ike(&cbc(vec![Transform::integ(IntegId::HMAC_SHA2_256_128)]), KeMethod::ECP_384)
    else {
        panic!()
    };
    assert_eq!(suite.cipher, IkeCipher::AesCbc256HmacSha256);
    assert!(answer.transforms.contains(&Transform::integ(IntegId::HMAC_SHA2_256_128)));

    let gcm_with_integrity = sa(vec![ike(
        1,
        vec![
            Transform::encr(EncrId::AES_GCM_16, Some(256)),
            Transform::integ(IntegId::HMAC_SHA2_256_128),
            Transform::prf(PrfId::HMAC_SHA2_256),
            ke(KeMethod::ECP_384),
        ],
    )]);
    assert_eq!(select_ike(&gcm_with_integrity, KeMethod::ECP_384), IkeSelection::NoProposal);
}

#[test]
fn our_preference_wins_across_proposals_and_weak_suites_are_refused() {
    let weak = ike(
        1,
        vec![
            Transform::encr(EncrId::TRIPLE_DES, None),
            Transform::prf(PrfId::HMAC_SHA1),
            Transform::integ(IntegId::HMAC_SHA1_96),
            ke(KeMethod::MODP_1024),
        ],
    );
    assert_eq!(select_ike(&sa(vec![weak.clone()]), KeMethod::MODP_1024), IkeSelection::NoProposal);
    let gcm128 = ike(
        2,
        vec![
            Transform::encr(EncrId::AES_GCM_16, Some(128)),
            Transform::prf(PrfId::HMAC_SHA2_256),
            ke(KeMethod::ECP_384),
        ],
    );
    let gcm256 = ike(
        3,
        vec![
            Transform::encr(EncrId::AES_GCM_16, Some(256)),
            Transform::prf(PrfId::HMAC_SHA2_256),
            ke(KeMethod::ECP_384),
        ],
    );
    let IkeSelection::Chosen(_, answer) = select_ike(&sa(vec![weak, gcm128, gcm256]), KeMethod::ECP_384) else {
        panic!()
    };
    assert_eq!(answer.number, 3);
}

#[test]
fn a_proposal_with_an_unknown_transform_type_is_passed_over() {
    let mut transforms = vec![
        Transform::encr(EncrId::AES_GCM_16, Some(256)),
        Transform::prf(PrfId::HMAC_SHA2_256),
        ke(KeMethod::ECP_384),
    ];
    transforms.push(Transform::new(TransformType(200), 1));
    assert_eq!(select_ike(&sa(vec![ike(1, transforms)]), KeMethod::ECP_384), IkeSelection::NoProposal);
}

fn gcm256_esp(extra: Vec<Transform>) -> Proposal {
    let mut transforms = vec![Transform::encr(EncrId::AES_GCM_16, Some(256))];
    transforms.extend(extra);
    esp(1, transforms)
}

#[test]
fn esn_alone_is_refused_and_no_esn_is_chosen_when_both_are_offered() {
    let only_esn = gcm256_esp(vec![Transform::esn(EsnId::ESN)]);
    assert_eq!(select_child(&sa(vec![only_esn]), false, ChildKe::NotInExchange), ChildSelection::NoProposal);
    let both = gcm256_esp(vec![Transform::esn(EsnId::ESN), Transform::esn(EsnId::NO_ESN)]);
    let ChildSelection::Chosen(suite, spi, answer) = select_child(&sa(vec![both]), false, ChildKe::NotInExchange)
    else {
        panic!()
    };
    assert_eq!(
        (suite.encryption, suite.integrity, suite.pfs),
        (ChildEncryption::AesGcm16 { key_bytes: 32 }, None, None)
    );
    assert_eq!(spi, 0xc100_0001);
    assert_eq!(answer.transforms, [Transform::encr(EncrId::AES_GCM_16, Some(256)), Transform::esn(EsnId::NO_ESN)]);
    assert_eq!((suite.encryption_key_len(), suite.integrity_key_len()), (36, 0));
}

#[test]
fn null_encryption_only_where_the_tunnel_opts_in() {
    let null = esp(
        1,
        vec![
            Transform::encr(EncrId::NULL, None),
            Transform::integ(IntegId::HMAC_SHA2_256_128),
            Transform::esn(EsnId::NO_ESN),
        ],
    );
    assert_eq!(select_child(&sa(vec![null.clone()]), false, ChildKe::NotInExchange), ChildSelection::NoProposal);
    let ChildSelection::Chosen(suite, _, _) = select_child(&sa(vec![null]), true, ChildKe::NotInExchange) else {
        panic!()
    };
    assert_eq!((suite.encryption, suite.integrity), (ChildEncryption::Null, Some(ChildIntegrity::HmacSha256_128)));
}

#[test]
fn cbc_child_takes_sha256_over_sha1_and_pfs_groups_only_when_there_is_a_key_exchange() {
    let offer = sa(vec![esp(
        1,
        vec![
            Transform::encr(EncrId::AES_CBC, Some(128)),
            Transform::integ(IntegId::HMAC_SHA1_96),
            Transform::integ(IntegId::HMAC_SHA2_256_128),
            ke(KeMethod::ECP_384),
            ke(KeMethod::MODP_2048),
            Transform::esn(EsnId::NO_ESN),
        ],
    )]);
    let ChildSelection::Chosen(suite, _, answer) = select_child(&offer, false, ChildKe::NotInExchange) else {
        panic!()
    };
    assert_eq!(suite.integrity, Some(ChildIntegrity::HmacSha256_128));
    assert_eq!(suite.pfs, None, "IKE_AUTH has no key exchange");
    assert!(answer.transforms.iter().all(|t| t.kind != TransformType::KE));
    assert_eq!((suite.encryption_key_len(), suite.integrity_key_len()), (16, 32));

    let ChildSelection::Chosen(suite, _, answer) = select_child(&offer, false, ChildKe::Payload(KeMethod::MODP_2048))
    else {
        panic!()
    };
    assert_eq!(suite.pfs, Some(KeyExchangeMethod::Modp2048));
    assert!(answer.transforms.contains(&ke(KeMethod::MODP_2048)));
    // A KE payload of a group the proposal does not offer: the answer names the group we want.
    assert_eq!(
        select_child(&offer, false, ChildKe::Payload(KeMethod::MODP_1536)),
        ChildSelection::WrongKeyExchange(KeMethod::ECP_384)
    );
    // CREATE_CHILD_SA without a KE payload: a proposal that insists on PFS does not fit...
    assert_eq!(select_child(&offer, false, ChildKe::Omitted), ChildSelection::NoProposal);
    // ...one that also allows NONE does, without PFS.
    let mut optional = offer.clone();
    optional.proposals[0].transforms.push(ke(KeMethod::NONE));
    let ChildSelection::Chosen(suite, _, answer) = select_child(&optional, false, ChildKe::Omitted) else { panic!() };
    assert_eq!(suite.pfs, None);
    assert!(answer.transforms.iter().all(|t| t.kind != TransformType::KE));
}

#[test]
fn an_ike_rekey_proposal_carries_the_initiators_new_spi() {
    let mut proposal = ike(
        1,
        vec![
            Transform::encr(EncrId::AES_GCM_16, Some(256)),
            Transform::prf(PrfId::HMAC_SHA2_384),
            ke(KeMethod::ECP_384),
        ],
    );
    assert_eq!(select_ike_rekey(&sa(vec![proposal.clone()]), KeMethod::ECP_384), IkeSelection::NoProposal);
    proposal.spi = vec![1, 2, 3, 4, 5, 6, 7, 8];
    assert_eq!(select_ike(&sa(vec![proposal.clone()]), KeMethod::ECP_384), IkeSelection::NoProposal);
    let IkeSelection::Chosen(suite, answer) = select_ike_rekey(&sa(vec![proposal]), KeMethod::ECP_384) else {
        panic!()
    };
    assert_eq!(suite.prf, Prf::HmacSha384);
    assert_eq!(answer.spi, vec![1, 2, 3, 4, 5, 6, 7, 8]);
}

#[test]
fn an_esp_proposal_needs_a_four_byte_spi() {
    let mut proposal = gcm256_esp(vec![Transform::esn(EsnId::NO_ESN)]);
    proposal.spi = vec![1, 2, 3];
    assert_eq!(select_child(&sa(vec![proposal]), false, ChildKe::NotInExchange), ChildSelection::NoProposal);
}

#[test]
fn suites_are_named_as_strongswan_names_them() {
    let ike =
        IkeSuite { cipher: IkeCipher::AesGcm16 { key_bytes: 32 }, prf: Prf::HmacSha384, ke: KeyExchangeMethod::Ecp384 };
    assert_eq!(ike.to_string(), "AES_GCM_16_256/PRF_HMAC_SHA2_384/ECP_384");
    let ike =
        IkeSuite { cipher: IkeCipher::AesCbc256HmacSha256, prf: Prf::HmacSha512, ke: KeyExchangeMethod::Modp1536 };
    assert_eq!(ike.to_string(), "AES_CBC_256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_512/MODP_1536");
    let child = ChildSuite {
        encryption: ChildEncryption::AesCbc { key_bytes: 16 },
        integrity: Some(ChildIntegrity::HmacSha1_96),
        pfs: Some(KeyExchangeMethod::Modp2048),
    };
    assert_eq!(child.to_string(), "AES_CBC_128/HMAC_SHA1_96/MODP_2048");
    let child = ChildSuite { encryption: ChildEncryption::AesGcm16 { key_bytes: 16 }, integrity: None, pfs: None };
    assert_eq!(child.to_string(), "AES_GCM_16_128");
}
