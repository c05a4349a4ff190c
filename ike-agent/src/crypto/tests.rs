//! Key derivation against published vectors.

use super::keys::{child_keymat, child_keys, skeyseed, skeyseed_from_sk_d, IkeSaKeys, KeyLengths};
use super::prf::Prf;
use crate::test_util::hex;

/// NIST ACVP's own IKEv2 KDF test case "IKEv2 SHA2-256" (SP 800-135 4.1.2; usnistgov/ACVP-Server,
/// Crypto.IKEv2.Tests/IkeV2Tests.cs), DKM length 3072 bits:
/// SKEYSEED = prf(Ni | Nr, g^ir); DKM = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr);
/// DKM(Child SA) = prf+(SK_d, Ni | Nr); DKM(Child SA D-H) = prf+(SK_d, g^ir (new) | Ni | Nr);
/// SKEYSEED(Rekey) = prf(SK_d, g^ir (new) | Ni | Nr), where SK_d is the first 32 bytes of DKM.
mod acvp_sha256 {
    pub const NI: &str = "0a58fea9c1d4fee2e74e1aad6fb02dd5f318eb127465a112be8dc3c04d5dba62eae708f9dc1b2362afd6ba4bda3cf5000f4979fbcbadbcfda9291593829c4e905c21db0c2ee15175ce77a8a0dadf25c7f175bc53fd91b636a9b3c50b203de9b9d6dc463dcb4048f101e26498ceaed3afbcd931394a7e099392dfff82e5d6fa85c2e8a8ab90ad363a66795dc32798847e405acd87988140f973058917273a6b0bafb962c75e2b1a21e79c08beeb82168bf8b4b57f3dce867bf7862a7b8acbc21be838021913daf64340c055ed17aaf7b6e1d0ca33ae890ddbdb83f4e615aad5e3bff58c3db70bac81a0dfbabe5391fc62bca4659e22a0741e01d8d06e67d9bb41";
    pub const NR: &str = "e4fdfa68df6171d9eaff8b7b5ad31e7c6098d259f3397c9854cbefe7449b0864c1df16ddece8b26567560f8d59182a44c19149c2d0d72606a160021ade3d23c7c6936c91a4b6bec37adf38cfc84b851c68dcee06f81306f63abbefc07e231e3058c49437a557df617eac01663593d2a3e594699284c0a35eae6931492ccb2a43db72a600a3899205d681d2b76b1280e456339bb10e0c584aecfdae31c77a4c40dbcb345f782ac32835d4c220c1e97254ded6a40075dd717b00b69c86a49e801773026536ae02d58a649827f1ba67610ee936dffd11c9d5a9156631916a0a0046ec0ba42f56f2a18de83d5d71a985b0cc9eec2c06b3d907ca58454419f374069d";
    pub const GIR: &str = "9d469de41b4739c7dd01f19aa94f17e48150ae9dbede94832142db19";
    pub const GIR_NEW: &str = "c2987b0767006c3b9aea491bfed1646a3d7194639492b8d45b23b383";
    pub const SPI_I: u64 = 0xc8de93111750e409;
    pub const SPI_R: u64 = 0x32d51b33508997fa;
    pub const SKEYSEED: &str = "eec13ac67c2e072abb684ab4e7b6ce3e7f400af8b96bed48e113497ed337f8d4";
    pub const DKM: &str = "bc83518f63b762874ac57947cdfae33a8d9724df0b83ee4b6df38c23fc2ad829f4d70b5a68dd1f5a52416f09758638aedf919c09a17c5298cdb703bb75b1005cba0109739aaa4efd2fe7534c95ad05e546e4419931270eddcab68ac1589d7fde47f5b9e8d5b614cb24ec3caf515497a9e99ee6f1b318ff153b539ef071dcaff9b41945dcb780700d69e5dc888a91de195c52825badfd0ab4c33cec71ab5c2b4badefe5455455ce5d8ae91721a2091bcccc1514e69482c9c8da1d9f0f187eedda916393570a8c0a8dfabc26d8ed31e8ea47662515972a22d11d692bc1fac6395aecd82a01ab78daafcd6f3070b1201f158a19331b5d21ceee66fccd2ea37bc07648b9539a52dbf797af53e31a0e8706dd86cf5081ebabd095f281d23c222dd3bc5abf06869017ca8f751cafcc85abea6ba88c139d1f32a12f7f486cf57eae5d85551b97f3963616d8f597c70efa98c1e1fa369fb77a80b1ec5fe533890672c4551172eab1b7fd68ad08c4d4c69f2a867302065ca730aa6915bc2cfb6d93820977";
    pub const DKM_CHILD: &str = "c725012285d56e53244a9baaaf95abfca543708d333a3f3a86ba660e00edd4d489bcd631819fda0413382edd9f53d1ed718e056c2ad91d38de90f06cd434de70141d051c021e7ddd6e4137946b4770dca59a4decabdd866852eb557fdd995646613ff2923f5f23aa58c8fbd5ad52cf2eac9bda97faad5596695f4a747a0f1cc6a1f78b2181138fb19ac24574d2e6b3a40d6e688abb919a27d793b76568ec66bd099f6f476b705c1472d774a1516a11311b887688f36649e24227640ea8d8666b9f452217e7103b6f0a92b6adb8fbda650ba58d6ac13ac6f6b6361a5d1c44f1e9f22196c96295115c5d01a120e7265962d20353a049286908da776c2165f706a16f43d85fcd319f89c4386340bcb8ed10df38345cb68af719abaf997e9789a5f19a392dcecd78168ba282f0b30555c7a47031a3156d12d7158aa41b863b8394d30fec63120e89cbc5750eed7786f7d5961b1f2e6faca641ed776d2211bee757b68b77f94056172553715da9fbd1c9a8728f28a2f3c9714a4917490132562484cd";
    pub const DKM_CHILD_DH: &str = "140a1f2a3c94318ece6edfa8c63f37d8d45982de8b6cbfe34011150db0253e34de3796d4aa579954a0bbf234794eb6e7ece2a8f91100f5507df4ee8e66c7813d4c0ff64d484a3494c54b0d9c605ea24234a49a010ce5c352feb9e1060c8c787229466296cdc9d11bb9d221ed2bb39544572464254ec02a0fbe777b07402c775eb6d3e53cd16214c707f851942cc7da92a811b6c5c82f29d9fc3751b0ebff9898fb14372402a6989ffb9cc32dfe7e2cea32fd882e09804d7fea34ce3b5eb6f303e095c48a452b0a3eccada81af22195ebbaad289aeabdab074c94e751496bde39d868ebf1d693f36d1c3c672bbb59c9f77aeb68de57d77da231b7f13d6d277f600c3d3086c4de7b3a59127f4cb9c118935574f30e1b7c88b52c8c3531fdbd38ee3d14c69e81803ced6e7501fa0180f6d110b648272002dc1ad5bf09dc83188011da1d48632e0d2453c8abdd8e9fd32a576aeb9ddfb0a024f674441c20a950d9bd8cd7b30933cc0d8e87b55e8aa9d913579b410417b3acc13c14bf73c457327873";
    pub const SKEYSEED_REKEY: &str = "05f796c8df322a7e33283ae5fa2f376d8d5efa0ac3745fc548e430031424c121";
}

#[test]
fn nist_acvp_ikev2_kdf_sha256() {
    use acvp_sha256::*;
    let prf = Prf::HmacSha256;
    let (ni, nr, gir, gir_new) = (hex(NI), hex(NR), hex(GIR), hex(GIR_NEW));
    let seed = skeyseed(prf, &ni, &nr, &gir);
    assert_eq!(*seed, hex(SKEYSEED), "SKEYSEED");
    let dkm = prf.plus(&seed, &[&ni, &nr, &SPI_I.to_be_bytes(), &SPI_R.to_be_bytes()], 384).unwrap();
    assert_eq!(*dkm, hex(DKM), "DKM");
    let sk_d = &dkm[..32];
    assert_eq!(*child_keymat(prf, sk_d, &[], &ni, &nr, 384), hex(DKM_CHILD), "DKM(Child SA)");
    assert_eq!(*child_keymat(prf, sk_d, &[&gir_new], &ni, &nr, 384), hex(DKM_CHILD_DH), "DKM(Child SA D-H)");
    assert_eq!(*skeyseed_from_sk_d(prf, sk_d, &gir_new, &ni, &nr), hex(SKEYSEED_REKEY), "SKEYSEED(Rekey)");

    // A Child SA's keys are KEYMAT cut in RFC 7296 2.17's order: encryption then integrity,
    // initiator to responder first (here 36 + 32 bytes a direction).
    let (i_to_r, r_to_i) = child_keys(prf, sk_d, &[], (&ni, &nr), 36, 32);
    let keymat = hex(DKM_CHILD);
    assert_eq!([&i_to_r.encryption[..], &i_to_r.integrity[..]], [&keymat[..36], &keymat[36..68]]);
    assert_eq!([&r_to_i.encryption[..], &r_to_i.integrity[..]], [&keymat[68..104], &keymat[104..136]]);

    // The seven IKE SA keys are DKM cut in RFC 7296 2.14's order (here AES-CBC-256 with
    // HMAC-SHA2-256-128: 32-byte keys throughout).
    let lengths = KeyLengths { prf, encryption: 32, integrity: 32 };
    let keys = IkeSaKeys::derive(lengths, &seed, &ni, &nr, SPI_I, SPI_R);
    let cut: Vec<&[u8]> = dkm[..7 * 32].chunks(32).collect();
    assert_eq!(
        [&keys.sk_d, &keys.sk_ai, &keys.sk_ar, &keys.sk_ei, &keys.sk_er, &keys.sk_pi, &keys.sk_pr].map(|k| k.to_vec()),
        [cut[0], cut[1], cut[2], cut[3], cut[4], cut[5], cut[6]].map(<[u8]>::to_vec)
    );
}

/// RFC 4231 4.3 (test case 2): key "Jefe", data "what do ya want for nothing?".
#[test]
fn rfc4231_hmac_vectors_for_every_prf() {
    let cases = [
        (Prf::HmacSha256, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        (
            Prf::HmacSha384,
            "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649",
        ),
        (
            Prf::HmacSha512,
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
        ),
    ];
    for (prf, expected) in cases {
        assert_eq!(*prf.compute(b"Jefe", &[b"what do ya want ", b"for nothing?"]), hex(expected), "{prf:?}");
        assert_eq!(prf.output_len(), expected.len() / 2);
        // prf+ with one block is prf(K, S | 0x01).
        let first = prf.compute(b"Jefe", &[b"seed", &[1]]);
        assert_eq!(*prf.plus(b"Jefe", &[b"seed"], prf.output_len()).unwrap(), *first);
    }
}

#[test]
fn prf_plus_stops_at_255_blocks() {
    let prf = Prf::HmacSha256;
    assert!(prf.plus(b"k", &[b"s"], 255 * 32).is_some());
    assert!(prf.plus(b"k", &[b"s"], 255 * 32 + 1).is_none());
}

mod sk_protection {
    use super::super::keys::{IkeSaKeys, KeyLengths};
    use super::super::prf::Prf;
    use super::super::sk::{IkeCipher, SkError, SkProtection};
    use crate::wire::{ExchangeType, Flags, Header, Message, Payload, PayloadType};

    const SUITES: [IkeCipher; 3] =
        [IkeCipher::AesGcm16 { key_bytes: 16 }, IkeCipher::AesGcm16 { key_bytes: 32 }, IkeCipher::AesCbc256HmacSha256];

    fn keys(lengths: KeyLengths) -> IkeSaKeys {
        IkeSaKeys::derive(lengths, &[7; 32], &[1; 32], &[2; 32], 0x1111, 0x2222)
    }

    fn header() -> Header {
        Header {
            spi_i: 0x1111,
            spi_r: 0x2222,
            next_payload: PayloadType::NONE,
            minor_version: 0,
            exchange: ExchangeType::IKE_AUTH,
            flags: Flags(Flags::INITIATOR),
            message_id: 1,
            length: 0,
        }
    }

    #[test]
    fn what_one_side_seals_the_other_opens_for_every_suite_and_size() {
        for cipher in SUITES {
            let keys = keys(cipher.key_lengths(Prf::HmacSha256));
            let mut initiator = SkProtection::initiator(cipher, &keys).unwrap();
            let responder = SkProtection::responder(cipher, &keys).unwrap();
            for len in [0, 1, 15, 16, 17, 100, 1200] {
                let inner: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let sealed = initiator.seal(&header(), PayloadType::IDI, &inner).unwrap();
                let message = Message::parse(&sealed).unwrap();
                let Some(Payload::Sk(sk)) = message.payloads.last() else { panic!("no SK") };
                assert_eq!(sk.first_inner, PayloadType::IDI);
                let opened = responder.open(&sealed, sealed.len() - sk.body.len()).unwrap();
                assert_eq!(*opened, inner, "{cipher:?} {len}");
                // The sealing side cannot open its own direction.
                assert_eq!(initiator.open(&sealed, sealed.len() - sk.body.len()).map(|_| ()), Err(SkError::Integrity));
            }
        }
    }

    #[test]
    fn any_flipped_bit_of_header_sk_header_iv_ciphertext_or_icv_is_refused() {
        for cipher in SUITES {
            let keys = keys(cipher.key_lengths(Prf::HmacSha384));
            let mut initiator = SkProtection::initiator(cipher, &keys).unwrap();
            let responder = SkProtection::responder(cipher, &keys).unwrap();
            let sealed = initiator.seal(&header(), PayloadType::IDI, b"some inner payloads").unwrap();
            let body_start = 28 + 4;
            for byte in [0, 19, 29, body_start, body_start + 20, sealed.len() - 1] {
                let mut tampered = sealed.clone();
                tampered[byte] ^= 0x01;
                assert_eq!(
                    responder.open(&tampered, body_start).map(|_| ()),
                    Err(SkError::Integrity),
                    "{cipher:?} byte {byte}"
                );
            }
            assert_eq!(responder.open(&sealed[..body_start + 20], body_start).map(|_| ()), Err(SkError::Length));
        }
    }

    #[test]
    fn gcm_ivs_do_not_repeat() {
        let cipher = IkeCipher::AesGcm16 { key_bytes: 32 };
        let mut initiator = SkProtection::initiator(cipher, &keys(cipher.key_lengths(Prf::HmacSha512))).unwrap();
        let a = initiator.seal(&header(), PayloadType::IDI, b"x").unwrap();
        let b = initiator.seal(&header(), PayloadType::IDI, b"x").unwrap();
        assert_ne!(a[32..40], b[32..40]);
    }
}
