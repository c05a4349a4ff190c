//! A whole IKE message: the header and its chain of payloads.

use super::codec::{DecodeError, Reader, TooLong};
use super::header::{Header, HEADER_LEN};
use super::payload::{encode_chain, read_chain, Payload};
use super::registry::PayloadType;

/// An IKE message as it is on the wire (SK payloads still encrypted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The header; `next_payload` and `length` are recomputed by `encode`.
    pub header: Header,
    /// The payloads in order.
    pub payloads: Vec<Payload>,
}

impl Message {
    /// Parse a datagram holding exactly one IKE message (the non-ESP marker already removed).
    pub fn parse(datagram: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(datagram);
        let header = Header::read(&mut r)?;
        if usize::try_from(header.length).ok() != Some(datagram.len()) {
            return Err(DecodeError::MessageLengthMismatch { declared: header.length, actual: datagram.len() });
        }
        let payloads = read_chain(header.next_payload, &mut r)?;
        Ok(Self { header, payloads })
    }

    /// Encode the message, filling in the header's first payload type and length.
    pub fn encode(&self) -> Result<Vec<u8>, TooLong> {
        let mut out = Vec::with_capacity(HEADER_LEN + 256);
        self.header.encode(&mut out);
        let first = encode_chain(&self.payloads, &mut out)?;
        out[16] = first.0;
        let length = u32::try_from(out.len()).map_err(|_| TooLong { what: "message", length: out.len() })?;
        out[24..28].copy_from_slice(&length.to_be_bytes());
        Ok(out)
    }

    /// The first payload that is marked critical and that this crate does not know: the message
    /// must be refused with UNSUPPORTED_CRITICAL_PAYLOAD naming it (RFC 7296 2.5).
    pub fn unsupported_critical(&self) -> Option<PayloadType> {
        unsupported_critical(&self.payloads)
    }

    /// The SK payload, if the message has one.
    pub fn encrypted(&self) -> Option<&super::sk::Encrypted> {
        match self.payloads.last() {
            Some(Payload::Sk(sk)) => Some(sk),
            _ => None,
        }
    }

    /// The SKF payload, if the message is a fragment of one (RFC 7383).
    pub fn fragment(&self) -> Option<&super::sk::EncryptedFragment> {
        match self.payloads.last() {
            Some(Payload::Skf(skf)) => Some(skf),
            _ => None,
        }
    }
}

/// The payloads of a CREATE_CHILD_SA request or response (RFC 7296 1.3), as its reader needs them:
/// `HDR, SK {[N(REKEY_SA)], SA, Nonce, [KE], TSi, TSr}`, or a refusal.
#[derive(Debug, Default)]
pub struct ChildSaPayloads<'a> {
    /// The SA offered, or the one chosen.
    pub sa: Option<&'a super::SecurityAssociation>,
    /// Ni or Nr.
    pub nonce: Option<&'a super::Nonce>,
    /// KEi or KEr, with PFS or in an IKE SA rekey.
    pub ke: Option<&'a super::KeyExchange>,
    /// The traffic selectors of the exchange's initiator and responder.
    pub tsi: Option<&'a super::TrafficSelectors>,
    pub tsr: Option<&'a super::TrafficSelectors>,
    /// The SPI of N(REKEY_SA): the SA's SPI as the sender of the request receives it; `Err` where
    /// it is not a 4-byte ESP SPI.
    pub rekey: Option<Result<u32, ()>>,
    /// The first error notification: the exchange was refused.
    pub refusal: Option<&'a super::Notify>,
}

impl<'a> ChildSaPayloads<'a> {
    /// Pick them out of a message's payloads.
    pub fn gather(payloads: &'a [Payload]) -> Self {
        let mut found = Self::default();
        for payload in payloads {
            match payload {
                Payload::Sa(sa) => found.sa = Some(sa),
                Payload::Nonce(n) => found.nonce = Some(n),
                Payload::Ke(ke) => found.ke = Some(ke),
                Payload::TsI(ts) => found.tsi = Some(ts),
                Payload::TsR(ts) => found.tsr = Some(ts),
                Payload::Notify(n) if n.kind == super::NotifyType::REKEY_SA => {
                    let spi = <[u8; 4]>::try_from(n.spi.as_slice()).map(u32::from_be_bytes).map_err(|_| ());
                    found.rekey = Some(if n.protocol == super::ProtocolId::ESP { spi } else { Err(()) });
                }
                Payload::Notify(n) if n.kind.is_error() => {
                    found.refusal.get_or_insert(n);
                }
                _ => {}
            }
        }
        found
    }
}

/// The first payload of `payloads` that is critical and unknown.
pub fn unsupported_critical(payloads: &[Payload]) -> Option<PayloadType> {
    payloads.iter().find_map(|payload| match payload {
        Payload::Other(raw) if raw.critical && !raw.kind.is_known() => Some(raw.kind),
        _ => None,
    })
}
