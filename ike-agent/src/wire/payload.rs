//! The generic payload header and the chain of payloads it links (RFC 7296 3.2).
//!
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Next Payload  |C|  RESERVED   |         Payload Length        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! A payload type this crate does not parse is kept whole with its critical bit: the responder
//! skips it when the bit is clear and answers UNSUPPORTED_CRITICAL_PAYLOAD when it is set
//! (RFC 7296 2.5). The SK and SKF payloads end a chain: their Next Payload field names the first
//! payload inside them.

use super::basic::{Authentication, CertificateRequest, Identification, KeyExchange, Nonce};
use super::codec::{patch_u16_length, DecodeError, Reader, TooLong};
use super::notify::{Delete, Notify};
use super::registry::PayloadType;
use super::sa::SecurityAssociation;
use super::sk::{Encrypted, EncryptedFragment};
use super::ts::TrafficSelectors;

/// The generic payload header's length.
pub const GENERIC_HEADER_LEN: usize = 4;

/// The critical bit of the generic header's second octet.
const CRITICAL: u8 = 0x80;

/// One payload of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Security Association.
    Sa(SecurityAssociation),
    /// Key Exchange.
    Ke(KeyExchange),
    /// Identification of the initiator.
    IdI(Identification),
    /// Identification of the responder.
    IdR(Identification),
    /// Authentication.
    Auth(Authentication),
    /// Nonce.
    Nonce(Nonce),
    /// Notify.
    Notify(Notify),
    /// Delete.
    Delete(Delete),
    /// Vendor ID: opaque bytes.
    VendorId(Vec<u8>),
    /// Traffic selectors of the initiator.
    TsI(TrafficSelectors),
    /// Traffic selectors of the responder.
    TsR(TrafficSelectors),
    /// Certificate request, read and ignored.
    CertReq(CertificateRequest),
    /// Encrypted and Authenticated.
    Sk(Encrypted),
    /// Encrypted and Authenticated fragment.
    Skf(EncryptedFragment),
    /// Any other payload, kept whole.
    Other(RawPayload),
}

/// A payload this crate does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPayload {
    /// Its type.
    pub kind: PayloadType,
    /// Its critical bit.
    pub critical: bool,
    /// Its body, after the generic header.
    pub body: Vec<u8>,
}

impl Payload {
    /// The payload's type.
    pub fn kind(&self) -> PayloadType {
        match self {
            Self::Sa(_) => PayloadType::SA,
            Self::Ke(_) => PayloadType::KE,
            Self::IdI(_) => PayloadType::IDI,
            Self::IdR(_) => PayloadType::IDR,
            Self::Auth(_) => PayloadType::AUTH,
            Self::Nonce(_) => PayloadType::NONCE,
            Self::Notify(_) => PayloadType::NOTIFY,
            Self::Delete(_) => PayloadType::DELETE,
            Self::VendorId(_) => PayloadType::VENDOR_ID,
            Self::TsI(_) => PayloadType::TSI,
            Self::TsR(_) => PayloadType::TSR,
            Self::CertReq(_) => PayloadType::CERTREQ,
            Self::Sk(_) => PayloadType::SK,
            Self::Skf(_) => PayloadType::SKF,
            Self::Other(raw) => raw.kind,
        }
    }

    /// Read a payload body of type `kind`; `next` is the generic header's Next Payload field,
    /// which SK and SKF keep as the type of their first inner payload.
    fn read_body(
        kind: PayloadType,
        critical: bool,
        next: PayloadType,
        r: &mut Reader<'_>,
    ) -> Result<Self, DecodeError> {
        let payload = match kind {
            PayloadType::SA => Self::Sa(SecurityAssociation::read(r)?),
            PayloadType::KE => Self::Ke(KeyExchange::read(r)?),
            PayloadType::IDI => Self::IdI(Identification::read(r)?),
            PayloadType::IDR => Self::IdR(Identification::read(r)?),
            PayloadType::AUTH => Self::Auth(Authentication::read(r)?),
            PayloadType::NONCE => Self::Nonce(Nonce::read(r)?),
            PayloadType::NOTIFY => Self::Notify(Notify::read(r)?),
            PayloadType::DELETE => Self::Delete(Delete::read(r)?),
            PayloadType::VENDOR_ID => Self::VendorId(r.rest().to_vec()),
            PayloadType::TSI => Self::TsI(TrafficSelectors::read(r)?),
            PayloadType::TSR => Self::TsR(TrafficSelectors::read(r)?),
            PayloadType::CERTREQ => Self::CertReq(CertificateRequest::read(r)?),
            PayloadType::SK => Self::Sk(Encrypted::read(next, r)),
            PayloadType::SKF => Self::Skf(EncryptedFragment::read(next, r)?),
            _ => Self::Other(RawPayload { kind, critical, body: r.rest().to_vec() }),
        };
        r.expect_end("payload")?;
        Ok(payload)
    }

    fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), TooLong> {
        match self {
            Self::Sa(sa) => sa.encode(out)?,
            Self::Ke(ke) => ke.encode(out),
            Self::IdI(id) | Self::IdR(id) => id.encode(out),
            Self::Auth(auth) => auth.encode(out),
            Self::Nonce(nonce) => nonce.encode(out),
            Self::Notify(notify) => notify.encode(out)?,
            Self::Delete(delete) => delete.encode(out)?,
            Self::VendorId(data) => out.extend_from_slice(data),
            Self::TsI(ts) | Self::TsR(ts) => ts.encode(out)?,
            Self::CertReq(req) => req.encode(out),
            Self::Sk(sk) => sk.encode(out),
            Self::Skf(skf) => skf.encode(out),
            Self::Other(raw) => out.extend_from_slice(&raw.body),
        }
        Ok(())
    }
}

/// Read a chain of payloads starting with one of type `first`, to the end of `r`.
///
/// The chain must end exactly where `r` does; an SK or SKF payload must be the last one.
pub fn read_chain(first: PayloadType, r: &mut Reader<'_>) -> Result<Vec<Payload>, DecodeError> {
    let mut payloads = Vec::new();
    let mut kind = first;
    while kind != PayloadType::NONE {
        let next = PayloadType(r.u8("payload header")?);
        let critical = r.u8("payload header")? & CRITICAL != 0;
        let length = usize::from(r.u16("payload header")?);
        if length < GENERIC_HEADER_LEN {
            return Err(DecodeError::LengthTooSmall { what: "payload", length });
        }
        let mut body = r.sub(length - GENERIC_HEADER_LEN, "payload")?;
        let payload = Payload::read_body(kind, critical, next, &mut body)?;
        let encrypted = matches!(payload, Payload::Sk(_) | Payload::Skf(_));
        payloads.push(payload);
        if encrypted {
            if !r.is_empty() {
                return Err(DecodeError::EncryptedNotLast);
            }
            return Ok(payloads);
        }
        kind = next;
    }
    r.expect_end("payload chain")?;
    Ok(payloads)
}

/// Append a chain of payloads; returns the type of the first, for the header before them.
pub fn encode_chain(payloads: &[Payload], out: &mut Vec<u8>) -> Result<PayloadType, TooLong> {
    for (index, payload) in payloads.iter().enumerate() {
        let next = match payload {
            Payload::Sk(sk) => sk.first_inner,
            Payload::Skf(skf) => skf.first_inner,
            _ => payloads.get(index + 1).map_or(PayloadType::NONE, Payload::kind),
        };
        let critical = match payload {
            Payload::Other(raw) if raw.critical => CRITICAL,
            _ => 0,
        };
        let start = out.len();
        out.extend_from_slice(&[next.0, critical, 0, 0]);
        payload.encode_body(out)?;
        patch_u16_length(out, start + 2, start, "payload")?;
    }
    Ok(payloads.first().map_or(PayloadType::NONE, Payload::kind))
}
