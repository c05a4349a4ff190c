//! Customer routes: longest-prefix match, then the lowest priority, then ECMP by weight on a flow hash.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use prefix_trie::PrefixMap;

use super::KeyMap;

/// Index of a tunnel in the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TunnelId(pub u32);

/// The tunnels a prefix is sent through: one, or several sharing flows by weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextHops {
    /// Tunnels repeated by weight; a flow hash picks one entry.
    buckets: Box<[TunnelId]>,
}

impl NextHops {
    /// The tunnel for a flow.
    #[inline(always)]
    pub fn pick(&self, flow_hash: u32) -> TunnelId {
        if self.buckets.len() == 1 {
            return self.buckets[0];
        }
        self.buckets[flow_hash as usize % self.buckets.len()]
    }

    /// Whether several tunnels share the prefix (the flow hash matters).
    #[inline]
    pub fn is_multipath(&self) -> bool {
        self.buckets.len() > 1
    }

    /// The distinct tunnels.
    pub fn tunnels(&self) -> Vec<TunnelId> {
        let mut v = self.buckets.to_vec();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// Customer prefixes, IPv4 and IPv6.
#[derive(Debug, Default)]
pub struct RouteTable {
    v4: Ipv4Lpm,
    v6: PrefixMap<Ipv6Net, NextHops>,
    len: usize,
}

/// IPv4 longest-prefix match for the fast path: one hash map per prefix length present, tried
/// from the longest, behind a bitmap of the /16 blocks any prefix touches, so that an address
/// outside every customer prefix (most decapsulated traffic) costs one load. It replaced a
/// prefix-trie walk that took an eighth of the encapsulation path's time.
#[derive(Debug, Default)]
struct Ipv4Lpm {
    /// (prefix length, mask), longest first.
    lengths: Vec<(u8, u32)>,
    /// (length << 32 | network) -> next hops.
    prefixes: KeyMap<NextHops>,
    /// One bit per /16 block: set where some prefix covers part of it.
    blocks: Vec<u64>,
}

impl Ipv4Lpm {
    fn insert(&mut self, net: Ipv4Net, hops: NextHops) {
        if self.blocks.is_empty() {
            self.blocks = vec![0; 1 << 10];
        }
        let (len, mask) = (net.prefix_len(), u32::from(net.netmask()));
        let network = u32::from(net.network());
        if !self.lengths.iter().any(|(l, _)| *l == len) {
            self.lengths.push((len, mask));
            self.lengths.sort_unstable_by_key(|l| std::cmp::Reverse(l.0));
        }
        self.prefixes.insert(u64::from(len) << 32 | u64::from(network), hops);
        let first = network >> 16;
        let count = if len >= 16 { 1 } else { 1u32 << (16 - len) };
        for block in first..first + count {
            self.blocks[(block >> 6) as usize] |= 1 << (block & 63);
        }
    }

    #[inline(always)]
    fn lookup(&self, addr: Ipv4Addr) -> Option<&NextHops> {
        let a = u32::from(addr);
        let block = a >> 16;
        if self.blocks.get((block >> 6) as usize).is_none_or(|w| w & (1 << (block & 63)) == 0) {
            return None;
        }
        // A plain loop: written with `find_map` and a closure, the search was a call of its own
        // on every routed packet, about 40 instructions where this takes a dozen.
        for &(len, mask) in &self.lengths {
            if let Some(hops) = self.prefixes.get(u64::from(len) << 32 | u64::from(a & mask)) {
                return Some(hops);
            }
        }
        None
    }

    fn is_empty(&self) -> bool {
        self.prefixes.is_empty()
    }
}

impl RouteTable {
    /// Build from (prefix, tunnel, priority, weight); for each prefix only the routes of the lowest
    /// priority carry traffic, sharing it by weight.
    pub fn build(routes: impl IntoIterator<Item = (IpNet, TunnelId, u32, u32)>) -> RouteTable {
        let mut by_prefix: std::collections::BTreeMap<IpNet, Vec<(TunnelId, u32, u32)>> = Default::default();
        for (prefix, tunnel, priority, weight) in routes {
            by_prefix.entry(prefix).or_default().push((tunnel, priority, weight));
        }
        let mut table = RouteTable::default();
        for (prefix, members) in by_prefix {
            let best = members.iter().map(|m| m.1).min().unwrap_or(0);
            let mut buckets = Vec::new();
            for (tunnel, _, weight) in members.iter().filter(|m| m.1 == best) {
                buckets.extend(std::iter::repeat_n(*tunnel, (*weight).max(1) as usize));
            }
            let hops = NextHops { buckets: buckets.into_boxed_slice() };
            match prefix {
                IpNet::V4(p) => table.v4.insert(p.trunc(), hops),
                IpNet::V6(p) => {
                    table.v6.insert(p, hops);
                }
            }
            table.len += 1;
        }
        table
    }

    /// The next hops of the longest prefix holding an IPv4 address.
    #[inline(always)]
    pub fn lookup_v4(&self, addr: Ipv4Addr) -> Option<&NextHops> {
        if self.v4.is_empty() {
            return None;
        }
        self.v4.lookup(addr)
    }

    /// The next hops of the longest prefix holding an IPv6 address.
    #[inline]
    pub fn lookup_v6(&self, addr: Ipv6Addr) -> Option<&NextHops> {
        if self.v6.is_empty() {
            return None;
        }
        self.v6.get_lpm(&Ipv6Net::from(addr)).map(|(_, h)| h)
    }

    /// The number of prefixes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The longest matching prefix by brute force: the reference for the fast table.
    fn reference(routes: &[(Ipv4Net, u32)], a: Ipv4Addr) -> Option<u32> {
        routes.iter().filter(|(n, _)| n.contains(&a)).max_by_key(|(n, _)| n.prefix_len()).map(|r| r.1)
    }

    #[test]
    fn ipv4_matches_brute_force_on_nested_prefixes() {
        let nets = [
            "0.0.0.0/0",
            "10.0.0.0/8",
            "10.20.0.0/16",
            "10.20.30.0/24",
            "10.20.30.40/32",
            "10.128.0.0/9",
            "192.0.2.0/25",
            "192.0.2.128/26",
            "198.51.100.7/31",
            "203.0.113.0/24",
        ];
        let routes: Vec<(Ipv4Net, u32)> =
            nets.iter().enumerate().map(|(i, n)| (n.parse().unwrap(), i as u32)).collect();
        let t = RouteTable::build(routes.iter().map(|(n, i)| (IpNet::V4(*n), TunnelId(*i), 1, 1)));
        let mut x = 0x1234_5678u32;
        let mut probes: Vec<u32> = routes
            .iter()
            .flat_map(|(n, _)| {
                let (lo, hi) = (u32::from(n.network()), u32::from(n.broadcast()));
                [lo, hi, lo.wrapping_sub(1), hi.wrapping_add(1)]
            })
            .collect();
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            probes.push(x);
            probes.push(0x0a14_0000 | (x & 0xffff));
        }
        for p in probes {
            let a = Ipv4Addr::from(p);
            assert_eq!(t.lookup_v4(a).map(|h| h.pick(0).0), reference(&routes, a), "{a}");
        }
        let without_default = RouteTable::build(routes[1..].iter().map(|(n, i)| (IpNet::V4(*n), TunnelId(*i), 1, 1)));
        assert!(without_default.lookup_v4("11.1.1.1".parse().unwrap()).is_none());
        assert_eq!(without_default.lookup_v4("10.20.30.41".parse().unwrap()).unwrap().pick(0), TunnelId(3));
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn longest_prefix_then_priority_then_weight() {
        let t = RouteTable::build([
            (net("10.0.0.0/8"), TunnelId(0), 100, 1),
            (net("10.20.0.0/16"), TunnelId(1), 100, 1),
            (net("10.20.0.0/16"), TunnelId(2), 50, 3),
            (net("10.20.0.0/16"), TunnelId(3), 50, 1),
            (net("2001:db8::/32"), TunnelId(4), 1, 1),
        ]);
        assert_eq!(t.len(), 3);
        assert_eq!(t.lookup_v4("10.1.2.3".parse().unwrap()).unwrap().pick(7), TunnelId(0));
        let hops = t.lookup_v4("10.20.9.9".parse().unwrap()).unwrap();
        assert!(hops.is_multipath());
        assert_eq!(hops.tunnels(), vec![TunnelId(2), TunnelId(3)]);
        let picks: Vec<_> = (0..4).map(|h| hops.pick(h)).collect();
        assert_eq!(picks.iter().filter(|t| **t == TunnelId(2)).count(), 3, "weight 3 against 1");
        assert!(t.lookup_v4("11.0.0.1".parse().unwrap()).is_none());
        assert!(t.lookup_v4("10.255.255.255".parse().unwrap()).is_some(), "the /8's last address");
        assert!(t.lookup_v4("9.255.255.255".parse().unwrap()).is_none());
        assert_eq!(t.lookup_v6("2001:db8::1".parse().unwrap()).unwrap().pick(0), TunnelId(4));
        assert!(t.lookup_v6("2001:db9::1".parse().unwrap()).is_none());
    }
}
