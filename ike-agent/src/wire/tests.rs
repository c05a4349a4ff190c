//! Codec tests: a real strongSwan message, every payload type round-tripped, every length rule
//! refused, and a parse-after-encode property over generated messages.

use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::*;
use crate::test_util::hex;

/// The IKE_SA_INIT request of strongSwan 5.9.8 (Debian 12) for `proposals = aes256gcm16-prfsha384-ecp384,
/// aes128gcm16-prfsha256-modp2048` with `fragmentation = yes`, captured on UDP 500.
const STRONGSWAN_IKE_SA_INIT: &str = "\
8f46f8ee937e5373000000000000000021202208000000000000014c2200004c02000024010100030300000c01000014800e0100\
0300000802000006000000080400001400000024020100030300000c01000014800e00800300000802000005000000080400000e\
28000068001400000488b6379ffed36cfeaf248c436debc723f8fb7db4d4a9fba343ab67d80bf7783bc5d3801520ae6cb218cb02\
7be0bb9515a967b41d59ea5b5cadbb8957d490f75daa04a994e1785b3e95efbe59d30f5f825ec28c9335582956191fbf1afc3e25\
290000242677edced4d96b392d35c0aa934f5c4914dcf7f6dcf8d9aafdb41754454997e32900001c0000400414b84b7fc69c9482\
615a4766ffe639e3b0914f0d2900001c000040058ed7c581e2c947a8a3d01319dbe508d73dd1f258290000080000402e29000010\
0000402f00020003000400050000000800004016";

fn header(exchange: ExchangeType) -> Header {
    Header {
        spi_i: 0x0102_0304_0506_0708,
        spi_r: 0,
        next_payload: PayloadType::NONE,
        minor_version: 0,
        exchange,
        flags: Flags(Flags::INITIATOR),
        message_id: 0,
        length: 0,
    }
}

#[test]
fn strongswan_ike_sa_init_parses_and_encodes_byte_for_byte() {
    let bytes = hex(STRONGSWAN_IKE_SA_INIT);
    let message = Message::parse(&bytes).unwrap();
    assert_eq!(message.header.exchange, ExchangeType::IKE_SA_INIT);
    assert!(message.header.flags.initiator() && !message.header.flags.response());
    assert_eq!(message.header.message_id, 0);
    let kinds: Vec<_> = message.payloads.iter().map(Payload::kind).collect();
    assert_eq!(
        kinds,
        [
            PayloadType::SA,
            PayloadType::KE,
            PayloadType::NONCE,
            PayloadType::NOTIFY,
            PayloadType::NOTIFY,
            PayloadType::NOTIFY,
            PayloadType::NOTIFY,
            PayloadType::NOTIFY
        ]
    );
    let Payload::Sa(sa) = &message.payloads[0] else { panic!("first payload is not SA") };
    assert_eq!(sa.proposals.len(), 2);
    let first = &sa.proposals[0];
    assert_eq!((first.number, first.protocol, first.spi.len()), (1, ProtocolId::IKE, 0));
    assert_eq!(
        first.transforms,
        [
            Transform::encr(EncrId::AES_GCM_16, Some(256)),
            Transform::prf(PrfId::HMAC_SHA2_384),
            Transform::ke(TransformType::KE, KeMethod::ECP_384),
        ]
    );
    assert_eq!(sa.proposals[1].transforms[0].key_length(), Some(128));
    let Payload::Ke(ke) = &message.payloads[1] else { panic!("second payload is not KE") };
    assert_eq!((ke.method, ke.data.len()), (KeMethod::ECP_384, 96));
    let notifies: Vec<_> = message.payloads[3..]
        .iter()
        .map(|p| match p {
            Payload::Notify(n) => n.kind,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        notifies,
        [
            NotifyType::NAT_DETECTION_SOURCE_IP,
            NotifyType::NAT_DETECTION_DESTINATION_IP,
            NotifyType::IKEV2_FRAGMENTATION_SUPPORTED,
            NotifyType::SIGNATURE_HASH_ALGORITHMS,
            NotifyType::REDIRECT_SUPPORTED
        ]
    );
    assert_eq!(message.encode().unwrap(), bytes);
    assert_eq!(message.unsupported_critical(), None);
}

/// Every payload type this crate parses, in one chain (the inside of an IKE_AUTH request and more).
fn every_payload() -> Vec<Payload> {
    let v4 = SelectorRange {
        protocol: 0,
        start_port: 0,
        end_port: 65535,
        start: Ipv4Addr::new(198, 51, 100, 0),
        end: Ipv4Addr::new(198, 51, 100, 255),
    };
    let v6 = SelectorRange {
        protocol: 6,
        start_port: 443,
        end_port: 443,
        start: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
        end: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0xffff, 0xffff, 0xffff, 0xffff),
    };
    vec![
        Payload::IdI(Identification::new(IdType::RFC822_ADDR, b"ipsec@t1.acct.example".to_vec())),
        Payload::IdR(Identification { id_type: IdType::IPV4_ADDR, reserved: [1, 2, 3], data: vec![192, 0, 2, 2] }),
        Payload::CertReq(CertificateRequest { encoding: 4, authority: vec![0xaa; 20] }),
        Payload::Auth(Authentication { method: AuthMethod::SHARED_KEY_MIC, data: vec![0x55; 48] }),
        Payload::Notify(Notify::new(NotifyType::INITIAL_CONTACT, Vec::new())),
        Payload::Sa(SecurityAssociation {
            proposals: vec![Proposal {
                number: 1,
                protocol: ProtocolId::ESP,
                spi: vec![0xc0, 0x01, 0x02, 0x03],
                transforms: vec![
                    Transform::encr(EncrId::AES_CBC, Some(256)),
                    Transform::integ(IntegId::HMAC_SHA2_256_128),
                    Transform::esn(EsnId::NO_ESN),
                    Transform {
                        kind: TransformType(200),
                        id: 9,
                        attributes: vec![Attribute {
                            kind: AttributeType(99),
                            value: AttributeValue::Long(vec![1, 2]),
                        }],
                    },
                ],
            }],
        }),
        Payload::TsI(TrafficSelectors { selectors: vec![TrafficSelector::Ipv4(v4), TrafficSelector::Ipv6(v6)] }),
        Payload::TsR(TrafficSelectors { selectors: vec![TrafficSelector::Other(vec![9, 0, 0, 6, 0xab, 0xcd])] }),
        Payload::Ke(KeyExchange { method: KeMethod::MODP_2048, data: vec![7; 256] }),
        Payload::Nonce(Nonce(vec![3; 32])),
        Payload::Notify(Notify {
            protocol: ProtocolId::ESP,
            spi: vec![1, 2, 3, 4],
            kind: NotifyType::REKEY_SA,
            data: Vec::new(),
        }),
        Payload::Delete(Delete { protocol: ProtocolId::ESP, spis: vec![0x1000_0001, 0x1000_0002] }),
        Payload::Delete(Delete { protocol: ProtocolId::IKE, spis: Vec::new() }),
        Payload::VendorId(b"anygate".to_vec()),
        Payload::Other(RawPayload { kind: PayloadType::CP, critical: false, body: vec![1, 0, 0, 0] }),
        Payload::Other(RawPayload { kind: PayloadType(200), critical: false, body: vec![0xee] }),
    ]
}

#[test]
fn every_payload_type_round_trips_inside_a_chain() {
    let payloads = every_payload();
    let mut bytes = Vec::new();
    let first = encode_chain(&payloads, &mut bytes).unwrap();
    assert_eq!(first, PayloadType::IDI);
    let parsed = read_chain(first, &mut Reader::new(&bytes)).unwrap();
    assert_eq!(parsed, payloads);
    assert_eq!(message::unsupported_critical(&parsed), None);
}

#[test]
fn an_encrypted_payload_ends_the_message_and_names_its_first_inner_payload() {
    let mut message = Message { header: header(ExchangeType::IKE_AUTH), payloads: Vec::new() };
    message.header.message_id = 1;
    message.payloads.push(Payload::Sk(Encrypted { first_inner: PayloadType::IDI, body: vec![0x42; 64] }));
    let bytes = message.encode().unwrap();
    assert_eq!(bytes[16], PayloadType::SK.0, "the header names SK first");
    assert_eq!(bytes[28], PayloadType::IDI.0, "SK's next payload is the first inner one");
    let parsed = Message::parse(&bytes).unwrap();
    assert_eq!(parsed.encrypted().map(|sk| sk.body.len()), Some(64));
    assert_eq!(parsed.header.length as usize, bytes.len());

    let fragment = EncryptedFragment { first_inner: PayloadType::IDI, number: 1, total: 3, body: vec![1; 40] };
    message.payloads = vec![Payload::Skf(fragment)];
    let bytes = message.encode().unwrap();
    assert_eq!(Message::parse(&bytes).unwrap(), Message { header: parsed_header(&bytes), ..message });
}

fn parsed_header(bytes: &[u8]) -> Header {
    Header::read(&mut Reader::new(bytes)).unwrap()
}

#[test]
fn an_unknown_critical_payload_is_reported_and_a_known_one_is_not() {
    let mut payloads = every_payload();
    payloads.push(Payload::Other(RawPayload { kind: PayloadType(201), critical: true, body: Vec::new() }));
    // CP is defined by RFC 7296: its critical bit does not make the message unsupported.
    payloads.insert(0, Payload::Other(RawPayload { kind: PayloadType::CP, critical: true, body: Vec::new() }));
    let mut bytes = Vec::new();
    let first = encode_chain(&payloads, &mut bytes).unwrap();
    let parsed = read_chain(first, &mut Reader::new(&bytes)).unwrap();
    assert_eq!(message::unsupported_critical(&parsed), Some(PayloadType(201)));
}

/// Replace the bytes at `at` in a copy of `bytes`.
fn patched(bytes: &[u8], at: usize, with: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[at..at + with.len()].copy_from_slice(with);
    out
}

/// A message holding one payload of type `kind` with the body `body`.
fn message_with(kind: PayloadType, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    header(ExchangeType::INFORMATIONAL).encode(&mut out);
    out[16] = kind.0;
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&u16::try_from(body.len() + 4).unwrap().to_be_bytes());
    out.extend_from_slice(body);
    let length = u32::try_from(out.len()).unwrap();
    out[24..28].copy_from_slice(&length.to_be_bytes());
    out
}

#[test]
fn every_length_rule_is_enforced_and_named() {
    let good = hex(STRONGSWAN_IKE_SA_INIT);
    let mut longer = good.clone();
    longer.push(0);
    let cases: Vec<(&str, Vec<u8>, DecodeError)> = vec![
        ("short header", good[..20].to_vec(), DecodeError::Truncated { what: "IKE header", needed: 4, left: 0 }),
        ("IKEv1", patched(&good, 17, &[0x10]), DecodeError::UnsupportedMajorVersion { major: 1, minor: 0 }),
        (
            "datagram longer than the header says",
            longer,
            DecodeError::MessageLengthMismatch { declared: 332, actual: 333 },
        ),
        (
            "payload length under 4",
            patched(&good, 30, &[0, 3]),
            DecodeError::LengthTooSmall { what: "payload", length: 3 },
        ),
        (
            "payload past the end",
            // KE starts at 104, after the header (28) and the SA payload (76).
            patched(&good, 106, &[0x01, 0x00]),
            DecodeError::Truncated { what: "payload", needed: 252, left: 224 },
        ),
        (
            "bytes after the last payload",
            // The next-to-last Notify (at 308) claims to be the last payload.
            patched(&good, 308, &[0]),
            DecodeError::TrailingBytes { what: "payload chain", count: 8 },
        ),
        (
            "second proposal marked as followed by another",
            patched(&good, 68, &[2]),
            DecodeError::BadSubstructureMarker { what: "proposal", value: 2, expected: 0 },
        ),
        (
            "transform count above the transforms",
            patched(&good, 32 + 7, &[4]),
            DecodeError::BadSubstructureMarker { what: "transform", value: 0, expected: 3 },
        ),
        ("nonce of 15 bytes", message_with(PayloadType::NONCE, &[0; 15]), DecodeError::NonceLength { length: 15 }),
        ("nonce of 257 bytes", message_with(PayloadType::NONCE, &[0; 257]), DecodeError::NonceLength { length: 257 }),
        (
            "IPv4 selector with an IPv6 length",
            message_with(PayloadType::TSI, &[1, 0, 0, 0, 7, 0, 0, 40, 0, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0]),
            DecodeError::SelectorLength { ts_type: 7, length: 40 },
        ),
        (
            "more selectors declared than present",
            message_with(PayloadType::TSI, &[2, 0, 0, 0, 7, 0, 0, 16, 0, 0, 0xff, 0xff, 1, 1, 1, 1, 2, 2, 2, 2]),
            DecodeError::CountMismatch { what: "traffic selectors", declared: 2, found: 1 },
        ),
        (
            "ESP delete with 8-byte SPIs",
            message_with(PayloadType::DELETE, &[3, 8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]),
            DecodeError::DeleteSpiSize { protocol: 3, spi_size: 8 },
        ),
        (
            "ESP delete with fewer SPIs than declared",
            message_with(PayloadType::DELETE, &[3, 4, 0, 2, 0, 0, 0, 1]),
            DecodeError::CountMismatch { what: "Delete SPIs", declared: 2, found: 1 },
        ),
        (
            "IKE delete with an SPI count",
            message_with(PayloadType::DELETE, &[1, 0, 0, 1]),
            DecodeError::CountMismatch { what: "Delete of the IKE SA", declared: 1, found: 0 },
        ),
        (
            "fragment 0",
            message_with(PayloadType::SKF, &[0, 0, 0, 2, 9, 9]),
            DecodeError::FragmentNumber { number: 0, total: 2 },
        ),
        (
            "fragment 3 of 2",
            message_with(PayloadType::SKF, &[0, 3, 0, 2, 9, 9]),
            DecodeError::FragmentNumber { number: 3, total: 2 },
        ),
        (
            "transform attribute past the transform",
            message_with(PayloadType::SA, &[0, 0, 0, 20, 1, 1, 0, 1, 0, 0, 0, 12, 1, 0, 0, 20, 0x00, 0x0e, 0, 9]),
            DecodeError::Truncated { what: "transform attribute", needed: 9, left: 0 },
        ),
    ];
    for (name, bytes, expected) in cases {
        assert_eq!(Message::parse(&bytes), Err(expected), "{name}");
    }
}

#[test]
fn a_payload_after_the_encrypted_one_is_refused() {
    let mut message = Message { header: header(ExchangeType::IKE_AUTH), payloads: Vec::new() };
    message.payloads.push(Payload::Sk(Encrypted { first_inner: PayloadType::NONE, body: vec![0; 8] }));
    let mut bytes = message.encode().unwrap();
    // Append a Vendor ID after SK and grow the header's length to cover it.
    bytes.extend_from_slice(&[0, 0, 0, 5, 0x61]);
    let length = u32::try_from(bytes.len()).unwrap();
    bytes[24..28].copy_from_slice(&length.to_be_bytes());
    assert_eq!(Message::parse(&bytes), Err(DecodeError::EncryptedNotLast));
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

fn transform() -> impl Strategy<Value = Transform> {
    let attribute = (
        0u16..0x8000,
        prop_oneof![any::<u16>().prop_map(AttributeValue::Short), bytes(8).prop_map(AttributeValue::Long)],
    )
        .prop_map(|(kind, value)| Attribute { kind: AttributeType(kind), value });
    (any::<u8>(), any::<u16>(), proptest::collection::vec(attribute, 0..3))
        .prop_map(|(kind, id, attributes)| Transform { kind: TransformType(kind), id, attributes })
}

fn selector() -> impl Strategy<Value = TrafficSelector> {
    let ports = (any::<u8>(), any::<u16>(), any::<u16>());
    prop_oneof![
        (ports, any::<[u8; 4]>(), any::<[u8; 4]>()).prop_map(|((protocol, start_port, end_port), a, b)| {
            TrafficSelector::Ipv4(SelectorRange { protocol, start_port, end_port, start: a.into(), end: b.into() })
        }),
        (ports, any::<[u8; 16]>(), any::<[u8; 16]>()).prop_map(|((protocol, start_port, end_port), a, b)| {
            TrafficSelector::Ipv6(SelectorRange { protocol, start_port, end_port, start: a.into(), end: b.into() })
        }),
        (9u8..=255, any::<u8>(), bytes(12)).prop_map(|(ts_type, second, body)| {
            let mut raw = vec![ts_type, second];
            raw.extend_from_slice(&u16::try_from(body.len() + 4).unwrap().to_be_bytes());
            raw.extend_from_slice(&body);
            TrafficSelector::Other(raw)
        }),
    ]
}

fn identification() -> impl Strategy<Value = Identification> {
    (any::<u8>(), any::<[u8; 3]>(), bytes(40)).prop_map(|(id_type, reserved, data)| Identification {
        id_type: IdType(id_type),
        reserved,
        data,
    })
}

fn selectors() -> impl Strategy<Value = TrafficSelectors> {
    proptest::collection::vec(selector(), 0..4).prop_map(|selectors| TrafficSelectors { selectors })
}

fn plain_payload() -> impl Strategy<Value = Payload> {
    let proposal = (any::<u8>(), any::<u8>(), bytes(9), proptest::collection::vec(transform(), 0..5)).prop_map(
        |(number, protocol, spi, transforms)| Proposal { number, protocol: ProtocolId(protocol), spi, transforms },
    );
    let unparsed = prop_oneof![Just(37u8), Just(47), Just(48), 49u8..=52, 54u8..=255, 1u8..=32];
    prop_oneof![
        proptest::collection::vec(proposal, 0..4).prop_map(|proposals| Payload::Sa(SecurityAssociation { proposals })),
        (any::<u16>(), bytes(300)).prop_map(|(m, data)| Payload::Ke(KeyExchange { method: KeMethod(m), data })),
        identification().prop_map(Payload::IdI),
        identification().prop_map(Payload::IdR),
        (any::<u8>(), bytes(64)).prop_map(|(m, data)| Payload::Auth(Authentication { method: AuthMethod(m), data })),
        proptest::collection::vec(any::<u8>(), 16..=256).prop_map(|n| Payload::Nonce(Nonce(n))),
        (any::<u8>(), bytes(9), any::<u16>(), bytes(40)).prop_map(|(protocol, spi, kind, data)| {
            Payload::Notify(Notify { protocol: ProtocolId(protocol), spi, kind: NotifyType(kind), data })
        }),
        prop_oneof![
            Just(Delete { protocol: ProtocolId::IKE, spis: Vec::new() }),
            (2u8..=3, proptest::collection::vec(any::<u32>(), 0..5))
                .prop_map(|(p, spis)| Delete { protocol: ProtocolId(p), spis }),
        ]
        .prop_map(Payload::Delete),
        bytes(40).prop_map(Payload::VendorId),
        selectors().prop_map(Payload::TsI),
        selectors().prop_map(Payload::TsR),
        (any::<u8>(), bytes(40))
            .prop_map(|(encoding, authority)| Payload::CertReq(CertificateRequest { encoding, authority })),
        (unparsed, any::<bool>(), bytes(40)).prop_map(|(kind, critical, body)| Payload::Other(RawPayload {
            kind: PayloadType(kind),
            critical,
            body
        })),
    ]
}

fn encrypted_payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        (any::<u8>(), bytes(100))
            .prop_map(|(first, body)| Payload::Sk(Encrypted { first_inner: PayloadType(first), body })),
        (any::<u8>(), 1u16..10, 0u16..10, bytes(100)).prop_map(|(first, number, extra, body)| {
            Payload::Skf(EncryptedFragment { first_inner: PayloadType(first), number, total: number + extra, body })
        }),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    let header = (any::<u64>(), any::<u64>(), 0u8..16, any::<u8>(), any::<u8>(), any::<u32>()).prop_map(
        |(spi_i, spi_r, minor_version, exchange, flags, message_id)| Header {
            spi_i,
            spi_r,
            next_payload: PayloadType::NONE,
            minor_version,
            exchange: ExchangeType(exchange),
            flags: Flags(flags),
            message_id,
            length: 0,
        },
    );
    (header, proptest::collection::vec(plain_payload(), 0..6), proptest::option::of(encrypted_payload())).prop_map(
        |(header, mut payloads, encrypted)| {
            payloads.extend(encrypted);
            Message { header, payloads }
        },
    )
}

proptest! {
    /// Whatever is encoded parses back to the same message.
    #[test]
    fn encode_then_parse_gives_the_same_message(message in message()) {
        let bytes = message.encode().unwrap();
        let parsed = Message::parse(&bytes).unwrap();
        prop_assert_eq!(&parsed.payloads, &message.payloads);
        prop_assert_eq!(parsed.header.length as usize, bytes.len());
        prop_assert_eq!(parsed.encode().unwrap(), bytes);
    }

    /// Whatever parses encodes back to a message that parses the same.
    #[test]
    fn parse_then_encode_is_stable(noise in bytes(400), message in message()) {
        let mut bytes = message.encode().unwrap();
        let cut = noise.first().map_or(0, |b| usize::from(*b)) % (bytes.len() + 1);
        bytes.truncate(cut.max(28));
        bytes.extend_from_slice(&noise);
        let length = u32::try_from(bytes.len()).unwrap();
        bytes[24..28].copy_from_slice(&length.to_be_bytes());
        if let Ok(parsed) = Message::parse(&bytes) {
            let again = Message::parse(&parsed.encode().unwrap()).unwrap();
            prop_assert_eq!(again.payloads, parsed.payloads);
        }
    }
}
