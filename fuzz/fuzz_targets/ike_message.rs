//! The IKE message codec on arbitrary datagrams: it never panics, and whatever it accepts encodes
//! back to a message that parses the same. The body of an SK payload is also read as a payload
//! chain, as the responder does once it has decrypted it.
#![no_main]

use ike_agent::wire::{read_chain, Message, Payload, Reader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(message) = Message::parse(data) else { return };
    let encoded = message.encode().expect("a parsed message fits its length fields");
    let again = Message::parse(&encoded).expect("an encoded message parses");
    assert_eq!(again.payloads, message.payloads);
    if let Some(Payload::Sk(sk)) = message.payloads.last() {
        let _ = read_chain(sk.first_inner, &mut Reader::new(&sk.body));
    }
    let _ = message.unsupported_critical();
});
