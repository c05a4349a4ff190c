//! MAC addresses of neighbors, per port: a worker's own copy, filled from the configuration's
//! static entries and from what the slow path learns (ARP, neighbor discovery), applied between
//! bursts.

use std::net::IpAddr;

use rustc_hash::FxHashMap;

/// Neighbors' MAC addresses by (port, IP address).
#[derive(Debug, Default, Clone)]
pub struct Neighbors {
    by_addr: FxHashMap<(u16, IpAddr), [u8; 6]>,
}

impl Neighbors {
    /// The MAC address of a neighbor on a port.
    #[inline]
    pub fn get(&self, port: u16, addr: IpAddr) -> Option<[u8; 6]> {
        self.by_addr.get(&(port, addr)).copied()
    }

    /// Learn or change a neighbor's MAC address.
    pub fn set(&mut self, port: u16, addr: IpAddr, mac: [u8; 6]) {
        self.by_addr.insert((port, addr), mac);
    }

    /// Forget a neighbor.
    pub fn remove(&mut self, port: u16, addr: IpAddr) {
        self.by_addr.remove(&(port, addr));
    }

    /// The number of known neighbors.
    pub fn len(&self) -> usize {
        self.by_addr.len()
    }

    /// Whether none is known.
    pub fn is_empty(&self) -> bool {
        self.by_addr.is_empty()
    }
}
