//! NAT detection (RFC 7296 2.23): each side hashes the SPIs with the addresses it sees.

use std::net::{IpAddr, SocketAddr};

use aws_lc_rs::digest::{digest, SHA1_FOR_LEGACY_USE_ONLY};

/// SHA-1(SPIi | SPIr | IP | Port), the data of a NAT_DETECTION_*_IP notification.
pub fn detection_hash(spi_i: u64, spi_r: u64, address: SocketAddr) -> Vec<u8> {
    let mut input = Vec::with_capacity(8 + 8 + 16 + 2);
    input.extend_from_slice(&spi_i.to_be_bytes());
    input.extend_from_slice(&spi_r.to_be_bytes());
    match address.ip() {
        IpAddr::V4(ip) => input.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => input.extend_from_slice(&ip.octets()),
    }
    input.extend_from_slice(&address.port().to_be_bytes());
    digest(&SHA1_FOR_LEGACY_USE_ONLY, &input).as_ref().to_vec()
}

/// What the initiator's NAT detection notifications say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NatSeen {
    /// The initiator's source address was changed on the way (none of its hashes match).
    pub initiator_behind_nat: bool,
    /// Our address is not the one the initiator sent to.
    pub responder_behind_nat: bool,
}

impl NatSeen {
    /// Compare the initiator's hashes (sent with SPIr = 0) with the addresses the datagram had.
    pub fn detect(
        spi_i: u64,
        sources: &[&[u8]],
        destination: Option<&[u8]>,
        remote: SocketAddr,
        local: SocketAddr,
    ) -> Self {
        let source = detection_hash(spi_i, 0, remote);
        let initiator_behind_nat = !sources.is_empty() && !sources.contains(&source.as_slice());
        let responder_behind_nat = destination.is_some_and(|d| d != detection_hash(spi_i, 0, local).as_slice());
        Self { initiator_behind_nat, responder_behind_nat }
    }

    /// Whether ESP must go in UDP.
    pub fn any(self) -> bool {
        self.initiator_behind_nat || self.responder_behind_nat
    }
}
