//! The Security Association payload: proposals, their transforms and the transforms' attributes
//! (RFC 7296 3.3).
//!
//! Proposal substructure:
//! ```text
//!                      1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Last Substruc |   RESERVED    |         Proposal Length       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Proposal Num  |  Protocol ID  |    SPI Size   |Num  Transforms|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                        SPI (variable)                         ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                        <Transforms>                           ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! Transform substructure:
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Last Substruc |   RESERVED    |        Transform Length       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Transform Type |   RESERVED    |          Transform ID         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                      Transform Attributes                     ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! Transform attribute (AF = 1: the value is in the length's place):
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |A|       Attribute Type        |    AF=0  Attribute Length     |
//! |F|                             |    AF=1  Attribute Value      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                   AF=0  Attribute Value                       |
//! |                   AF=1  Not Transmitted                       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use super::codec::{patch_u16_length, put_u16, DecodeError, Reader, TooLong};
use super::registry::{AttributeType, EncrId, EsnId, IntegId, KeMethod, PrfId, ProtocolId, TransformType};

/// "Last Substruc" of a proposal that another proposal follows.
const MORE_PROPOSALS: u8 = 2;
/// "Last Substruc" of a transform that another transform follows.
const MORE_TRANSFORMS: u8 = 3;
/// The attribute format bit: the value is two bytes, carried in place of the length.
const ATTRIBUTE_FORMAT_TV: u16 = 0x8000;

/// An SA payload: the proposals, in the sender's order of preference.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecurityAssociation {
    /// The proposals; a responder's answer holds exactly one.
    pub proposals: Vec<Proposal>,
}

/// One proposal: a protocol, an SPI and a set of transforms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// The proposal number (1 for the first, then equal or one more).
    pub number: u8,
    /// IKE, AH or ESP.
    pub protocol: ProtocolId,
    /// The sender's SPI: empty in IKE_SA_INIT, 4 bytes for ESP, 8 for an IKE SA rekey.
    pub spi: Vec<u8>,
    /// The transforms offered.
    pub transforms: Vec<Transform>,
}

/// One transform: a type, an ID within that type's registry, and attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transform {
    /// Which registry `id` is in.
    pub kind: TransformType,
    /// The algorithm.
    pub id: u16,
    /// The attributes (in practice only the key length).
    pub attributes: Vec<Attribute>,
}

/// One transform attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// The attribute type, without the format bit.
    pub kind: AttributeType,
    /// The value in the format it came in.
    pub value: AttributeValue,
}

/// An attribute value: two bytes in place of the length (TV) or a length-prefixed one (TLV).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeValue {
    /// AF = 1.
    Short(u16),
    /// AF = 0.
    Long(Vec<u8>),
}

impl Transform {
    /// A transform without attributes.
    pub fn new(kind: TransformType, id: u16) -> Self {
        Self { kind, id, attributes: Vec::new() }
    }

    /// An encryption transform, with a key length in bits where the algorithm needs one.
    pub fn encr(id: EncrId, key_bits: Option<u16>) -> Self {
        let mut transform = Self::new(TransformType::ENCR, id.0);
        if let Some(bits) = key_bits {
            transform
                .attributes
                .push(Attribute { kind: AttributeType::KEY_LENGTH, value: AttributeValue::Short(bits) });
        }
        transform
    }

    /// A pseudorandom function transform.
    pub fn prf(id: PrfId) -> Self {
        Self::new(TransformType::PRF, id.0)
    }

    /// An integrity transform.
    pub fn integ(id: IntegId) -> Self {
        Self::new(TransformType::INTEG, id.0)
    }

    /// A key exchange transform of type `kind` (KE or one of the ADDKE types).
    pub fn ke(kind: TransformType, method: KeMethod) -> Self {
        Self::new(kind, method.0)
    }

    /// An extended sequence numbers transform.
    pub fn esn(id: EsnId) -> Self {
        Self::new(TransformType::ESN, id.0)
    }

    /// The Key Length attribute in bits, if the transform has exactly one, in TV format.
    pub fn key_length(&self) -> Option<u16> {
        let mut lengths = self.attributes.iter().filter(|a| a.kind == AttributeType::KEY_LENGTH);
        match (lengths.next(), lengths.next()) {
            (Some(Attribute { value: AttributeValue::Short(bits), .. }), None) => Some(*bits),
            _ => None,
        }
    }

    fn read(r: &mut Reader<'_>, last: bool) -> Result<Self, DecodeError> {
        let marker = r.u8("transform")?;
        let expected = if last { 0 } else { MORE_TRANSFORMS };
        if marker != expected {
            return Err(DecodeError::BadSubstructureMarker { what: "transform", value: marker, expected });
        }
        r.u8("transform")?;
        let length = usize::from(r.u16("transform")?);
        if length < 8 {
            return Err(DecodeError::LengthTooSmall { what: "transform", length });
        }
        let mut body = r.sub(length - 4, "transform")?;
        let kind = TransformType(body.u8("transform")?);
        body.u8("transform")?;
        let id = body.u16("transform")?;
        let mut attributes = Vec::new();
        while !body.is_empty() {
            let word = body.u16("transform attribute")?;
            let kind = AttributeType(word & !ATTRIBUTE_FORMAT_TV);
            let value = if word & ATTRIBUTE_FORMAT_TV != 0 {
                AttributeValue::Short(body.u16("transform attribute")?)
            } else {
                let length = usize::from(body.u16("transform attribute")?);
                AttributeValue::Long(body.take(length, "transform attribute")?.to_vec())
            };
            attributes.push(Attribute { kind, value });
        }
        Ok(Self { kind, id, attributes })
    }

    fn encode(&self, out: &mut Vec<u8>, last: bool) -> Result<(), TooLong> {
        let start = out.len();
        out.extend_from_slice(&[if last { 0 } else { MORE_TRANSFORMS }, 0, 0, 0]);
        out.extend_from_slice(&[self.kind.0, 0]);
        put_u16(out, self.id);
        for attribute in &self.attributes {
            match &attribute.value {
                AttributeValue::Short(value) => {
                    put_u16(out, attribute.kind.0 | ATTRIBUTE_FORMAT_TV);
                    put_u16(out, *value);
                }
                AttributeValue::Long(value) => {
                    put_u16(out, attribute.kind.0 & !ATTRIBUTE_FORMAT_TV);
                    let length = u16::try_from(value.len())
                        .map_err(|_| TooLong { what: "transform attribute", length: value.len() })?;
                    put_u16(out, length);
                    out.extend_from_slice(value);
                }
            }
        }
        patch_u16_length(out, start + 2, start, "transform")
    }
}

impl Proposal {
    /// The transforms of one type, in the sender's order.
    pub fn transforms_of(&self, kind: TransformType) -> impl Iterator<Item = &Transform> + '_ {
        self.transforms.iter().filter(move |t| t.kind == kind)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let marker = r.u8("proposal")?;
        r.u8("proposal")?;
        let length = usize::from(r.u16("proposal")?);
        if length < 8 {
            return Err(DecodeError::LengthTooSmall { what: "proposal", length });
        }
        let mut body = r.sub(length - 4, "proposal")?;
        let expected = if r.is_empty() { 0 } else { MORE_PROPOSALS };
        if marker != expected {
            return Err(DecodeError::BadSubstructureMarker { what: "proposal", value: marker, expected });
        }
        let number = body.u8("proposal")?;
        let protocol = ProtocolId(body.u8("proposal")?);
        let spi_size = usize::from(body.u8("proposal")?);
        let count = usize::from(body.u8("proposal")?);
        let spi = body.take(spi_size, "proposal SPI")?.to_vec();
        let mut transforms = Vec::with_capacity(count);
        for index in 0..count {
            if body.is_empty() {
                return Err(DecodeError::CountMismatch { what: "proposal transforms", declared: count, found: index });
            }
            transforms.push(Transform::read(&mut body, index + 1 == count)?);
        }
        body.expect_end("proposal")?;
        Ok(Self { number, protocol, spi, transforms })
    }

    fn encode(&self, out: &mut Vec<u8>, last: bool) -> Result<(), TooLong> {
        let start = out.len();
        out.extend_from_slice(&[if last { 0 } else { MORE_PROPOSALS }, 0, 0, 0]);
        let spi_size = u8::try_from(self.spi.len()).map_err(|_| TooLong { what: "SPI", length: self.spi.len() })?;
        let count = u8::try_from(self.transforms.len())
            .map_err(|_| TooLong { what: "transform list", length: self.transforms.len() })?;
        out.extend_from_slice(&[self.number, self.protocol.0, spi_size, count]);
        out.extend_from_slice(&self.spi);
        for (index, transform) in self.transforms.iter().enumerate() {
            transform.encode(out, index + 1 == self.transforms.len())?;
        }
        patch_u16_length(out, start + 2, start, "proposal")
    }
}

impl SecurityAssociation {
    /// Read the body of an SA payload.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut proposals = Vec::new();
        while !r.is_empty() {
            proposals.push(Proposal::read(r)?);
        }
        Ok(Self { proposals })
    }

    /// Append the body of an SA payload.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), TooLong> {
        for (index, proposal) in self.proposals.iter().enumerate() {
            proposal.encode(out, index + 1 == self.proposals.len())?;
        }
        Ok(())
    }
}
