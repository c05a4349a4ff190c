//! IKE message fragmentation (RFC 7383), for both sides. Once both peers said
//! N(IKEV2_FRAGMENTATION_SUPPORTED) in IKE_SA_INIT, a protected message too long for one datagram
//! goes as several, each an SKF payload with its own IV and ICV over a piece of the inner payload
//! chain. The receiver checks each fragment's ICV as it comes, keeps its plaintext, and reads the
//! inner payloads once it has every piece.
//!
//! Reassembly is bounded: at most `max_fragments` fragments and `max_bytes` of plaintext per
//! message, and a message not complete within `timeout` is forgotten (the peer retransmits every
//! fragment of it). A fragment that announces more fragments than the message being put together
//! starts it over, since its sender cut it again smaller; one that announces fewer is dropped
//! (RFC 7383 2.6.2).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::crypto::prf::SecretBytes;
use crate::crypto::sk::SkProtection;
use crate::protected::Opened;
use crate::wire::{Message, PayloadType};

/// How fragmentation is offered, sent and put back together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragmentation {
    /// Whether fragmentation is offered and accepted at all.
    pub enabled: bool,
    /// The largest IP datagram one of our fragments makes: IP and UDP headers, and the non-ESP
    /// marker on port 4500, included.
    pub fragment_size: usize,
    /// The most fragments one message may come in.
    pub max_fragments: u16,
    /// The most plaintext the fragments of one message may add up to.
    pub max_bytes: usize,
    /// How long the fragments of one message are kept waiting for the rest.
    pub timeout: Duration,
}

impl Default for Fragmentation {
    fn default() -> Self {
        Self {
            enabled: true,
            // RFC 7383 2.5.1: 1280 bytes gets through any IPv6 path and nearly every IPv4 one.
            fragment_size: 1280,
            max_fragments: 64,
            max_bytes: 64 * 1024,
            timeout: Duration::from_secs(30),
        }
    }
}

/// The smallest fragment size: room for the headers, an IV, an ICV and some payload.
pub const MIN_FRAGMENT_SIZE: usize = 256;

/// The NAT-T port, where IKE carries a 4-byte non-ESP marker.
const NAT_T_PORT: u16 = 4500;

/// The longest IKE message a datagram of `fragment_size` bytes carries from `local`.
pub fn message_limit(fragment_size: usize, local: SocketAddr) -> usize {
    let ip_header = if local.is_ipv4() { 20 } else { 40 };
    let marker = if local.port() == NAT_T_PORT { 4 } else { 0 };
    fragment_size.saturating_sub(ip_header + 8 + marker)
}

/// Why a fragment was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FragmentDrop {
    /// Its ICV failed (or it did not decrypt).
    Integrity,
    /// It announces more fragments than allowed.
    TooMany,
    /// The message's plaintext grew past the bound; what was held is forgotten.
    TooLarge,
    /// It announces fewer fragments than the message being put together.
    Superseded,
    /// That fragment is held already.
    Duplicate,
}

/// What one fragment did.
#[derive(Debug)]
pub enum Accepted {
    /// Held; more are needed.
    Pending,
    /// It was the last one missing: the whole inner payload chain.
    Complete(Opened),
    /// Dropped, for this reason.
    Dropped(FragmentDrop),
}

/// The fragments of one message, checked and decrypted, until they are all here.
#[derive(Debug)]
pub struct Reassembly {
    message_id: u32,
    total: u16,
    first_inner: PayloadType,
    parts: Vec<Option<SecretBytes>>,
    received: u16,
    bytes: usize,
    /// When its first fragment came, where the caller keeps time (the responder does, to drop
    /// fragments that wait too long; the initiator, without a clock, does not).
    started: Option<Instant>,
}

impl Reassembly {
    /// The plaintext held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Note `now` as when its first fragment came, unless noted already.
    pub fn mark_started(&mut self, now: Instant) {
        self.started.get_or_insert(now);
    }

    /// Whether it has waited longer than `timeout` for its missing fragments since it was marked.
    pub fn expired(&self, now: Instant, timeout: Duration) -> bool {
        self.started.is_some_and(|started| now.duration_since(started) >= timeout)
    }
}

/// Take one fragment (`message` with an SKF payload, `bytes` as received) into `slot`, which
/// holds the fragments of at most one message: one of another message ID replaces what it held
/// (and a new one is not yet marked started).
pub fn accept(
    slot: &mut Option<Reassembly>,
    sk: &SkProtection,
    bytes: &[u8],
    message: &Message,
    limits: &Fragmentation,
) -> Accepted {
    let Some(fragment) = message.fragment() else { return Accepted::Dropped(FragmentDrop::Integrity) };
    if fragment.total > limits.max_fragments {
        return Accepted::Dropped(FragmentDrop::TooMany);
    }
    // Nothing changes before the fragment proves it came from the peer.
    let Ok(plaintext) = sk.open(bytes, bytes.len() - fragment.body.len()) else {
        return Accepted::Dropped(FragmentDrop::Integrity);
    };
    let message_id = message.header.message_id;
    match slot {
        Some(held) if held.message_id == message_id && fragment.total < held.total => {
            return Accepted::Dropped(FragmentDrop::Superseded)
        }
        Some(held) if held.message_id == message_id && fragment.total == held.total => {}
        _ => {
            *slot = Some(Reassembly {
                message_id,
                total: fragment.total,
                first_inner: PayloadType::NONE,
                parts: vec![None; usize::from(fragment.total)],
                received: 0,
                bytes: 0,
                started: None,
            })
        }
    }
    let Some(held) = slot.as_mut() else { return Accepted::Pending };
    let index = usize::from(fragment.number - 1);
    if held.parts[index].is_some() {
        return Accepted::Dropped(FragmentDrop::Duplicate);
    }
    if held.bytes + plaintext.len() > limits.max_bytes {
        *slot = None;
        return Accepted::Dropped(FragmentDrop::TooLarge);
    }
    if fragment.number == 1 {
        held.first_inner = fragment.first_inner;
    }
    held.bytes += plaintext.len();
    held.parts[index] = Some(plaintext);
    held.received += 1;
    if held.received < held.total {
        return Accepted::Pending;
    }
    let Some(held) = slot.take() else { return Accepted::Pending };
    let mut whole = SecretBytes::new(Vec::with_capacity(held.bytes));
    for part in held.parts.iter().flatten() {
        whole.extend_from_slice(part);
    }
    Accepted::Complete(Opened { first_inner: held.first_inner, plaintext: whole })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_limit_leaves_room_for_the_headers_and_the_marker() {
        let v4_500: SocketAddr = "192.0.2.1:500".parse().unwrap();
        let v4_4500: SocketAddr = "192.0.2.1:4500".parse().unwrap();
        let v6_500: SocketAddr = "[2001:db8::1]:500".parse().unwrap();
        assert_eq!(message_limit(1280, v4_500), 1252);
        assert_eq!(message_limit(1280, v4_4500), 1248);
        assert_eq!(message_limit(1280, v6_500), 1232);
        assert_eq!(message_limit(10, v4_500), 0);
    }
}
