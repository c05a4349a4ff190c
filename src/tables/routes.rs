//! Customer routes: longest-prefix match, then the lowest priority, then ECMP by weight on a flow hash.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use prefix_trie::PrefixMap;

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
    #[inline]
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
    v4: PrefixMap<Ipv4Net, NextHops>,
    v6: PrefixMap<Ipv6Net, NextHops>,
    len: usize,
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
                IpNet::V4(p) => {
                    table.v4.insert(p, hops);
                }
                IpNet::V6(p) => {
                    table.v6.insert(p, hops);
                }
            }
            table.len += 1;
        }
        table
    }

    /// The next hops of the longest prefix holding an IPv4 address.
    #[inline]
    pub fn lookup_v4(&self, addr: Ipv4Addr) -> Option<&NextHops> {
        if self.v4.is_empty() {
            return None;
        }
        self.v4.get_lpm(&Ipv4Net::from(addr)).map(|(_, h)| h)
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
        assert_eq!(t.lookup_v6("2001:db8::1".parse().unwrap()).unwrap().pick(0), TunnelId(4));
        assert!(t.lookup_v6("2001:db9::1".parse().unwrap()).is_none());
    }
}
