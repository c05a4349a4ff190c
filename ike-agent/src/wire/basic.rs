//! Payloads made of a short fixed prefix and opaque data: Key Exchange, Identification,
//! Authentication, Nonce, Vendor ID and Certificate Request (RFC 7296 3.4-3.9, 3.12).

use super::codec::{put_u16, DecodeError, Reader};
use super::registry::{AuthMethod, IdType, KeMethod};

/// Key Exchange payload (RFC 7296 3.4).
/// ```text
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |   Key Exchange Method Num     |           RESERVED            |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                       Key Exchange Data                       ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyExchange {
    /// The group or key exchange method the data belongs to.
    pub method: KeMethod,
    /// The public value (or KEM ciphertext).
    pub data: Vec<u8>,
}

impl KeyExchange {
    /// Read the payload body.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let method = KeMethod(r.u16("KE payload")?);
        r.u16("KE payload")?;
        Ok(Self { method, data: r.rest().to_vec() })
    }

    /// Append the payload body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_u16(out, self.method.0);
        put_u16(out, 0);
        out.extend_from_slice(&self.data);
    }
}

/// Identification payload, IDi or IDr (RFC 7296 3.5).
/// ```text
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |   ID Type     |                 RESERVED                      |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                   Identification Data                         ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
/// The reserved bytes are kept as received: the AUTH payload signs the ID payload's body
/// ("RestOfInitIDPayload", RFC 7296 2.15) byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identification {
    /// How `data` is to be read.
    pub id_type: IdType,
    /// The reserved bytes, zero when we send.
    pub reserved: [u8; 3],
    /// The identity.
    pub data: Vec<u8>,
}

impl Identification {
    /// An identity to send.
    pub fn new(id_type: IdType, data: Vec<u8>) -> Self {
        Self { id_type, reserved: [0; 3], data }
    }

    /// Read the payload body.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let id_type = IdType(r.u8("ID payload")?);
        let reserved = r.array("ID payload")?;
        Ok(Self { id_type, reserved, data: r.rest().to_vec() })
    }

    /// Append the payload body: exactly the bytes AUTH is computed over.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.id_type.0);
        out.extend_from_slice(&self.reserved);
        out.extend_from_slice(&self.data);
    }

    /// The payload body ("RestOfIDPayload" of RFC 7296 2.15).
    pub fn body(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(4 + self.data.len());
        self.encode(&mut body);
        body
    }
}

/// Authentication payload (RFC 7296 3.8).
/// ```text
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | Auth Method   |                RESERVED                       |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                      Authentication Data                      ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authentication {
    /// How `data` was computed.
    pub method: AuthMethod,
    /// The MAC or signature.
    pub data: Vec<u8>,
}

impl Authentication {
    /// Read the payload body.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let method = AuthMethod(r.u8("AUTH payload")?);
        r.take(3, "AUTH payload")?;
        Ok(Self { method, data: r.rest().to_vec() })
    }

    /// Append the payload body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.method.0, 0, 0, 0]);
        out.extend_from_slice(&self.data);
    }
}

/// The shortest nonce RFC 7296 3.9 allows.
pub const NONCE_MIN: usize = 16;
/// The longest nonce RFC 7296 3.9 allows.
pub const NONCE_MAX: usize = 256;

/// Nonce payload (RFC 7296 3.9): 16 to 256 bytes of random data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nonce(pub Vec<u8>);

impl Nonce {
    /// Read the payload body, refusing a nonce outside 16 to 256 bytes.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let data = r.rest();
        if !(NONCE_MIN..=NONCE_MAX).contains(&data.len()) {
            return Err(DecodeError::NonceLength { length: data.len() });
        }
        Ok(Self(data.to_vec()))
    }

    /// Append the payload body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
}

/// Certificate Request payload (RFC 7296 3.7); a PSK responder reads it and ignores it.
/// ```text
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | Cert Encoding |                                               |
/// +-+-+-+-+-+-+-+-+                                               |
/// ~                    Certification Authority                    ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRequest {
    /// The certificate encoding asked for.
    pub encoding: u8,
    /// The certification authorities' key hashes.
    pub authority: Vec<u8>,
}

impl CertificateRequest {
    /// Read the payload body.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let encoding = r.u8("CERTREQ payload")?;
        Ok(Self { encoding, authority: r.rest().to_vec() })
    }

    /// Append the payload body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.encoding);
        out.extend_from_slice(&self.authority);
    }
}
