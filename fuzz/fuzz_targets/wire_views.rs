//! Our header views on arbitrary bytes: after `new_checked` succeeds no accessor may panic, and a
//! parsed representation emits the same header back.
#![no_main]

use anygate::wire::{gre, vlan};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = gre::Packet::new_checked(data) {
        let _ = (p.version(), p.protocol(), p.checksum(), p.key(), p.sequence_number(), p.payload().len());
        let _ = p.verify_checksum();
        if let Ok(repr) = gre::Repr::parse(&p) {
            let mut out = vec![0u8; repr.buffer_len()];
            repr.emit(&mut gre::Packet::new_unchecked(&mut out[..]));
            let mut back = gre::Packet::new_unchecked(&mut out[..]);
            if repr.checksum {
                back.fill_checksum();
            }
            assert_eq!(gre::Repr::parse(&gre::Packet::new_unchecked(&out[..])), Ok(repr));
        }
    }
    if let Ok(p) = vlan::Packet::new_checked(data) {
        let repr = vlan::Repr::parse(&p).expect("checked");
        let mut out = [0u8; vlan::HEADER_LEN];
        repr.emit(&mut vlan::Packet::new_unchecked(&mut out[..]));
        assert_eq!(vlan::Repr::parse(&vlan::Packet::new_unchecked(&out[..])), Ok(repr));
    }
    let _ = anygate::wire::checksum::data(data);
});
