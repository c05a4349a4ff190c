//! MAC addresses of neighbors, per port: a worker's own copy, filled from the configuration's
//! static entries and from what the slow path learns (ARP, neighbor discovery), applied between
//! bursts.

use std::cell::Cell;
use std::net::IpAddr;

use rustc_hash::FxHashMap;

use super::KeyMap;
use crate::pipeline::l2::{mac_word, word_mac};

/// Neighbors' MAC addresses by (port, IP address). IPv4 neighbors are keyed by one integer
/// (port and address) in a [`KeyMap`]: the lookup is on every packet's path. Their MACs are kept
/// as words ([`mac_word`]), which the express lane writes as they are.
///
/// The IPv4 entry found last is kept beside the map and tried first. Most of a worker's packets
/// go to a few next hops (a port's gateway, a customer router's), most often to the same one as
/// the packet before: a compare instead of a hash and a probe. Any change empties it.
#[derive(Debug, Clone)]
pub struct Neighbors {
    v4: KeyMap<u64>,
    v6: FxHashMap<(u16, u128), [u8; 6]>,
    last_v4: Cell<(u64, u64)>,
}

/// No key: [`v4_key`] keeps a port in 16 bits above the address.
const NO_KEY: u64 = u64::MAX;

impl Default for Neighbors {
    fn default() -> Self {
        Neighbors { v4: KeyMap::default(), v6: FxHashMap::default(), last_v4: Cell::new((NO_KEY, 0)) }
    }
}

#[inline(always)]
fn v4_key(port: u16, addr: std::net::Ipv4Addr) -> u64 {
    u64::from(port) << 32 | u64::from(u32::from(addr))
}

impl Neighbors {
    /// The MAC address of a neighbor on a port.
    #[inline(always)]
    pub fn get(&self, port: u16, addr: IpAddr) -> Option<[u8; 6]> {
        match addr {
            IpAddr::V4(a) => self.get_v4_word(port, a).map(word_mac),
            IpAddr::V6(a) => self.v6.get(&(port, u128::from(a))).copied(),
        }
    }

    /// The MAC address of an IPv4 neighbor on a port, as a [`mac_word`].
    #[inline(always)]
    pub fn get_v4_word(&self, port: u16, addr: std::net::Ipv4Addr) -> Option<u64> {
        let key = v4_key(port, addr);
        let (last, mac) = self.last_v4.get();
        if last == key {
            return Some(mac);
        }
        let found = self.v4.get(key).copied();
        if let Some(mac) = found {
            self.last_v4.set((key, mac));
        }
        found
    }

    /// Learn or change a neighbor's MAC address.
    pub fn set(&mut self, port: u16, addr: IpAddr, mac: [u8; 6]) {
        self.last_v4.set((NO_KEY, 0));
        match addr {
            IpAddr::V4(a) => {
                self.v4.insert(v4_key(port, a), mac_word(mac));
            }
            IpAddr::V6(a) => {
                self.v6.insert((port, u128::from(a)), mac);
            }
        }
    }

    /// Forget a neighbor.
    pub fn remove(&mut self, port: u16, addr: IpAddr) {
        self.last_v4.set((NO_KEY, 0));
        match addr {
            IpAddr::V4(a) => {
                self.v4.remove(v4_key(port, a));
            }
            IpAddr::V6(a) => {
                self.v6.remove(&(port, u128::from(a)));
            }
        }
    }

    /// The number of known neighbors.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Whether none is known.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_follow_changes_and_removals() {
        let mut n = Neighbors::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(n.get(0, a), None);
        n.set(0, a, [1; 6]);
        assert_eq!(n.get(0, a), Some([1; 6]));
        assert_eq!(n.get(1, a), None, "another port");
        n.set(0, a, [2; 6]);
        assert_eq!(n.get(0, a), Some([2; 6]));
        n.remove(0, a);
        assert_eq!(n.get(0, a), None);
        // The entry found last is not kept past a change of it.
        n.set(0, a, [3; 6]);
        assert_eq!(n.get(0, a), Some([3; 6]));
        n.set(0, a, [4; 6]);
        assert_eq!(n.get(0, a), Some([4; 6]));
        n.remove(0, a);
        assert_eq!(n.get(0, a), None);
        assert_eq!(n.get(0, a), None);
        for i in 0..20u8 {
            n.set(0, IpAddr::from([10, 0, 0, i]), [i; 6]);
        }
        for _ in 0..2 {
            for i in 0..20u8 {
                assert_eq!(n.get(0, IpAddr::from([10, 0, 0, i])), Some([i; 6]));
            }
        }
    }
}
