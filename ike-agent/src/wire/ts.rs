//! Traffic Selector payloads, TSi and TSr (RFC 7296 3.13).
//!
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Number of TSs |                 RESERVED                      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                       <Traffic Selectors>                     ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! Each selector:
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   TS Type     |IP Protocol ID*|       Selector Length         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           Start Port*         |           End Port*           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                         Starting Address*                     ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                         Ending Address*                       ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! (*: as laid out for the IPv4 and IPv6 range types; other types only share the first and the
//! length field.)

use std::net::{Ipv4Addr, Ipv6Addr};

use super::codec::{patch_u16_length, put_u16, DecodeError, Reader, TooLong};
use super::registry::TsType;

/// An IPv4 selector's length.
const IPV4_SELECTOR_LEN: usize = 16;
/// An IPv6 selector's length.
const IPV6_SELECTOR_LEN: usize = 40;

/// A TSi or TSr payload.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrafficSelectors {
    /// The selectors, each a range of addresses, ports and one IP protocol.
    pub selectors: Vec<TrafficSelector>,
}

/// One traffic selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrafficSelector {
    /// TS_IPV4_ADDR_RANGE.
    Ipv4(SelectorRange<Ipv4Addr>),
    /// TS_IPV6_ADDR_RANGE.
    Ipv6(SelectorRange<Ipv6Addr>),
    /// A selector type this crate does not know, kept whole (type and length included).
    Other(Vec<u8>),
}

/// The ranges of an address-range selector; both ends inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelectorRange<A> {
    /// The IP protocol, 0 for any.
    pub protocol: u8,
    /// The first port (0 for any, or for protocols without ports).
    pub start_port: u16,
    /// The last port (65535 for any).
    pub end_port: u16,
    /// The first address.
    pub start: A,
    /// The last address.
    pub end: A,
}

impl TrafficSelector {
    /// The selector's type.
    pub fn kind(&self) -> TsType {
        match self {
            Self::Ipv4(_) => TsType::IPV4_ADDR_RANGE,
            Self::Ipv6(_) => TsType::IPV6_ADDR_RANGE,
            Self::Other(raw) => TsType(raw.first().copied().unwrap_or(0)),
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let head = r.clone().take(4, "traffic selector")?;
        let ts_type = head[0];
        let length = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let expected = match TsType(ts_type) {
            TsType::IPV4_ADDR_RANGE => Some(IPV4_SELECTOR_LEN),
            TsType::IPV6_ADDR_RANGE => Some(IPV6_SELECTOR_LEN),
            _ => None,
        };
        if expected.is_some_and(|expected| expected != length) || length < 4 {
            return Err(DecodeError::SelectorLength { ts_type, length });
        }
        let mut selector = r.sub(length, "traffic selector")?;
        if expected.is_none() {
            return Ok(Self::Other(selector.rest().to_vec()));
        }
        selector.take(1, "traffic selector")?;
        let protocol = selector.u8("traffic selector")?;
        selector.u16("traffic selector")?;
        let start_port = selector.u16("traffic selector")?;
        let end_port = selector.u16("traffic selector")?;
        if TsType(ts_type) == TsType::IPV4_ADDR_RANGE {
            let start = Ipv4Addr::from(selector.array::<4>("traffic selector")?);
            let end = Ipv4Addr::from(selector.array::<4>("traffic selector")?);
            Ok(Self::Ipv4(SelectorRange { protocol, start_port, end_port, start, end }))
        } else {
            let start = Ipv6Addr::from(selector.array::<16>("traffic selector")?);
            let end = Ipv6Addr::from(selector.array::<16>("traffic selector")?);
            Ok(Self::Ipv6(SelectorRange { protocol, start_port, end_port, start, end }))
        }
    }

    fn encode(&self, out: &mut Vec<u8>) -> Result<(), TooLong> {
        match self {
            Self::Ipv4(range) => encode_range(out, self.kind(), range, Ipv4Addr::octets),
            Self::Ipv6(range) => encode_range(out, self.kind(), range, Ipv6Addr::octets),
            Self::Other(raw) => {
                out.extend_from_slice(raw);
                Ok(())
            }
        }
    }
}

/// Append an address-range selector, its addresses written by `octets`.
fn encode_range<A, O: AsRef<[u8]>>(
    out: &mut Vec<u8>,
    kind: TsType,
    range: &SelectorRange<A>,
    octets: impl Fn(&A) -> O,
) -> Result<(), TooLong> {
    let start = out.len();
    out.extend_from_slice(&[kind.0, range.protocol, 0, 0]);
    put_u16(out, range.start_port);
    put_u16(out, range.end_port);
    out.extend_from_slice(octets(&range.start).as_ref());
    out.extend_from_slice(octets(&range.end).as_ref());
    patch_u16_length(out, start + 2, start, "traffic selector")
}

impl TrafficSelectors {
    /// Read the payload body.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let count = usize::from(r.u8("TS payload")?);
        r.take(3, "TS payload")?;
        let mut selectors = Vec::with_capacity(count);
        for index in 0..count {
            if r.is_empty() {
                return Err(DecodeError::CountMismatch { what: "traffic selectors", declared: count, found: index });
            }
            selectors.push(TrafficSelector::read(r)?);
        }
        r.expect_end("TS payload")?;
        Ok(Self { selectors })
    }

    /// Append the payload body.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), TooLong> {
        let count = u8::try_from(self.selectors.len())
            .map_err(|_| TooLong { what: "traffic selector list", length: self.selectors.len() })?;
        out.extend_from_slice(&[count, 0, 0, 0]);
        for selector in &self.selectors {
            selector.encode(out)?;
        }
        Ok(())
    }
}
