//! Notify and Delete payloads (RFC 7296 3.10, 3.11).

use super::codec::{put_u16, put_u32, DecodeError, Reader, TooLong};
use super::registry::{NotifyType, ProtocolId};

/// Notify payload (RFC 7296 3.10).
/// ```text
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |  Protocol ID  |   SPI Size    |      Notify Message Type      |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                Security Parameter Index (SPI)                 ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                       Notification Data                       ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    /// The protocol of the SA the notification is about (NONE when it is about none).
    pub protocol: ProtocolId,
    /// The SPI of that SA, if any.
    pub spi: Vec<u8>,
    /// What is notified.
    pub kind: NotifyType,
    /// Type-specific data.
    pub data: Vec<u8>,
}

impl Notify {
    /// A notification about no particular SA.
    pub fn new(kind: NotifyType, data: Vec<u8>) -> Self {
        Self { protocol: ProtocolId::NONE, spi: Vec::new(), kind, data }
    }

    /// N(REKEY_SA) for the ESP SA that the sender receives on with `spi` (RFC 7296 1.3.3).
    pub fn rekey_sa(spi: u32) -> Self {
        Self {
            protocol: ProtocolId::ESP,
            spi: spi.to_be_bytes().to_vec(),
            kind: NotifyType::REKEY_SA,
            data: Vec::new(),
        }
    }

    /// Read the payload body.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let protocol = ProtocolId(r.u8("Notify payload")?);
        let spi_size = usize::from(r.u8("Notify payload")?);
        let kind = NotifyType(r.u16("Notify payload")?);
        let spi = r.take(spi_size, "Notify SPI")?.to_vec();
        Ok(Self { protocol, spi, kind, data: r.rest().to_vec() })
    }

    /// Append the payload body.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), TooLong> {
        let spi_size = u8::try_from(self.spi.len()).map_err(|_| TooLong { what: "SPI", length: self.spi.len() })?;
        out.extend_from_slice(&[self.protocol.0, spi_size]);
        put_u16(out, self.kind.0);
        out.extend_from_slice(&self.spi);
        out.extend_from_slice(&self.data);
        Ok(())
    }
}

/// Delete payload (RFC 7296 3.11): the IKE SA itself (no SPIs) or Child SAs by their 4-byte SPIs.
/// ```text
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | Protocol ID   |   SPI Size    |          Num of SPIs          |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~               Security Parameter Index(es) (SPI)              ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete {
    /// IKE (the SA the message is protected by), AH or ESP.
    pub protocol: ProtocolId,
    /// The SPIs of the Child SAs to delete; empty for IKE.
    pub spis: Vec<u32>,
}

impl Delete {
    /// Read the payload body; IKE must carry SPI size 0 and no SPIs, AH and ESP SPI size 4.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let protocol = ProtocolId(r.u8("Delete payload")?);
        let spi_size = r.u8("Delete payload")?;
        let count = usize::from(r.u16("Delete payload")?);
        let expected_size = match protocol {
            ProtocolId::IKE => 0,
            ProtocolId::AH | ProtocolId::ESP => 4,
            _ => return Err(DecodeError::DeleteSpiSize { protocol: protocol.0, spi_size }),
        };
        if spi_size != expected_size {
            return Err(DecodeError::DeleteSpiSize { protocol: protocol.0, spi_size });
        }
        if protocol == ProtocolId::IKE {
            if count != 0 {
                return Err(DecodeError::CountMismatch { what: "Delete of the IKE SA", declared: count, found: 0 });
            }
            return Ok(Self { protocol, spis: Vec::new() });
        }
        let found = r.left() / 4;
        if r.left() != count * 4 {
            return Err(DecodeError::CountMismatch { what: "Delete SPIs", declared: count, found });
        }
        let spis = (0..count).map(|_| r.u32("Delete SPI")).collect::<Result<_, _>>()?;
        Ok(Self { protocol, spis })
    }

    /// Append the payload body; a Delete of the IKE SA carries no SPIs whatever `spis` holds.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), TooLong> {
        let (spi_size, spis): (u8, &[u32]) = if self.protocol == ProtocolId::IKE { (0, &[]) } else { (4, &self.spis) };
        let count = u16::try_from(spis.len()).map_err(|_| TooLong { what: "SPI list", length: spis.len() })?;
        out.extend_from_slice(&[self.protocol.0, spi_size]);
        put_u16(out, count);
        for spi in spis {
            put_u32(out, *spi);
        }
        Ok(())
    }
}
