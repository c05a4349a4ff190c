//! Messages protected by an SK payload, for both sides: open one and read the payloads inside,
//! or seal a chain of payloads into one (or into fragments, `crate::fragment`).

use crate::crypto::prf::SecretBytes;
use crate::crypto::sk::SkProtection;
use crate::wire::{encode_chain, read_chain, Header, Message, Payload, PayloadType, Reader};

/// A message's inner payload chain, decrypted: from its SK payload, or put back together from its
/// fragments.
#[derive(Debug)]
pub struct Opened {
    /// The type of the first inner payload.
    pub first_inner: PayloadType,
    /// The inner payloads, without padding.
    pub plaintext: SecretBytes,
}

impl Opened {
    /// The inner payloads; `None` when they do not parse.
    pub fn payloads(&self) -> Option<Vec<Payload>> {
        read_chain(self.first_inner, &mut Reader::new(&self.plaintext)).ok()
    }
}

/// Check and decrypt the SK payload of `message`; `None` when it has none or its ICV fails.
pub fn open_message(sk: &SkProtection, bytes: &[u8], message: &Message) -> Option<Opened> {
    let first_inner = message.encrypted()?.first_inner;
    Some(Opened { first_inner, plaintext: open(sk, bytes, message)? })
}

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

/// The datagrams of a message holding `payloads`: one, or, when a `limit` on the message length
/// is given and the whole message would pass it, fragments of at most `limit` bytes each
/// (RFC 7383 2.5). `None` when the limit leaves no room for a fragment.
pub fn seal_datagrams(
    sk: &mut SkProtection,
    header: &Header,
    payloads: &[Payload],
    limit: Option<usize>,
) -> Option<Vec<Vec<u8>>> {
    let mut inner = SecretBytes::new(Vec::new());
    let first = encode_chain(payloads, &mut inner).ok()?;
    match limit {
        Some(limit) if sk.sealed_len(inner.len()) > limit => {
            let capacity = sk.fragment_capacity(limit);
            if capacity == 0 {
                return None;
            }
            let total = u16::try_from(inner.len().div_ceil(capacity)).ok()?;
            inner
                .chunks(capacity)
                .zip(1..)
                .map(|(chunk, n)| sk.seal_fragment(header, first, (n, total), chunk).ok())
                .collect()
        }
        _ => Some(vec![sk.seal(header, first, &inner).ok()?]),
    }
}
