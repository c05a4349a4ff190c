//! Messages protected by an SK payload, for both sides: open one and read the payloads inside,
//! or seal a chain of payloads into one.

use crate::crypto::prf::SecretBytes;
use crate::crypto::sk::SkProtection;
use crate::wire::{encode_chain, read_chain, Header, Message, Payload, Reader};

/// Check and decrypt the SK payload of `message` (`bytes` as received); `None` when it has none or
/// its ICV fails.
pub fn open(sk: &SkProtection, bytes: &[u8], message: &Message) -> Option<SecretBytes> {
    let encrypted = message.encrypted()?;
    sk.open(bytes, bytes.len() - encrypted.body.len()).ok()
}

/// The payloads inside a decrypted SK payload; `None` when they do not parse.
pub fn read_inner(message: &Message, plaintext: &[u8]) -> Option<Vec<Payload>> {
    let first = message.encrypted()?.first_inner;
    read_chain(first, &mut Reader::new(plaintext)).ok()
}

/// A whole message: `header` and an SK payload holding `payloads`.
pub fn seal(sk: &mut SkProtection, header: &Header, payloads: &[Payload]) -> Option<Vec<u8>> {
    let mut inner = Vec::new();
    let first = encode_chain(payloads, &mut inner).ok()?;
    sk.seal(header, first, &inner).ok()
}
