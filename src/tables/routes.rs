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

/// IPv4 longest-prefix match for the fast path, in the manner of DPDK's rte_lpm (DIR-24-8) with a
/// smaller first level: a table of the 65 536 /16 blocks, each entry the next hops of the longest
/// prefix of 16 bits or fewer holding the block, or a group of 256 entries for its /24 blocks,
/// whose entries may in turn be groups for single addresses. A lookup is one to three loads
/// with no search; an address outside every customer prefix (most decapsulated traffic) costs
/// one. It replaced one hash lookup per prefix length present, behind a bitmap of /16 blocks.
/// Memory: 256 KiB for the first level, and 1 KiB for each /16 block holding a prefix longer than
/// /16 and each /24 block holding one longer than /24 (as rte_lpm's groups of 256 entries).
///
/// A /16 block's entry also says whether the block is special ([`SPECIAL`]), so that the one
/// load that routes an address also spares it the checks that only special addresses need.
#[derive(Debug)]
struct Ipv4Lpm {
    /// By entry value less one.
    hops: Vec<NextHops>,
    /// The /16 blocks' entries, each with its [`SPECIAL`] bit, at their [`block_index`]es.
    blocks: Box<[u32; 1 << 16]>,
    /// Groups of 256 entries, for the third octet or the fourth.
    groups: Vec<u32>,
}

impl Default for Ipv4Lpm {
    fn default() -> Ipv4Lpm {
        Ipv4Lpm { hops: Vec::new(), blocks: no_blocks(), groups: Vec::new() }
    }
}

/// A first level with no route in any block, every block special until
/// [`RouteTable::mark_special_v4`] says which are (built on the heap: it is too big for a stack).
fn no_blocks() -> Box<[u32; 1 << 16]> {
    vec![SPECIAL; 1 << 16].into_boxed_slice().try_into().expect("1 << 16 entries")
}

/// Where the /16 block of the address whose octets are `o` has its entry: its first two octets
/// as a little-endian 16-bit word, the low half of the address as a little-endian machine loads
/// it from a packet. The block's number (the first octet times 256 and the second) needs a byte
/// swap more, which cost each lookup 2 instructions. The blocks are in the order of their numbers
/// byte-swapped, so a range of them is not one run of entries.
#[inline(always)]
fn block_index(o: [u8; 4]) -> usize {
    block_index_le(u32::from_le_bytes(o))
}

/// [`block_index`] of the address whose octets are `le`'s little-endian bytes: its low half.
#[inline(always)]
fn block_index_le(le: u32) -> usize {
    // Taken from the whole address: its first two octets alone were loaded apart from the rest.
    usize::from(le as u16)
}

/// The [`block_index`] of the block numbered `number` (the top 16 bits of its addresses).
fn numbered_block_index(number: u32) -> usize {
    block_index((number << 16).to_be_bytes())
}

/// An entry: 0 for no route, a group's index with this bit set, or else next hops' index plus one.
const GROUP: u32 = 1 << 30;

/// In a /16 block's entry, besides its route: the block may hold an address of this server, a
/// martian address or an address of a port's subnet (see [`RouteTable::mark_special_v4`]). An
/// address in any other block, an ordinary one, goes by its customer route, or else out of the
/// default gateway, and nothing else about it needs checking. The top bit, set for the special
/// blocks: an ordinary block's test is of the sign, and one with no route is 0, so that neither
/// test needs a constant (as a bit set for the ordinary blocks, the encapsulation train's loop
/// held the bit in a register it took from the packet's checks: 113.9 -> 110.9 instructions a
/// packet).
const SPECIAL: u32 = 1 << 31;

impl Ipv4Lpm {
    /// Build from prefixes (host bits clear), each with its next hops.
    fn build(mut prefixes: Vec<(Ipv4Net, NextHops)>) -> Ipv4Lpm {
        let mut lpm = Ipv4Lpm::default();
        if prefixes.is_empty() {
            return lpm;
        }
        // Shorter prefixes are painted first, so that a longer one overwrites what it covers and
        // a group is created only after every prefix of 16 (or 24) bits or fewer is in place,
        // inheriting the entry it replaces.
        prefixes.sort_by_key(|(net, _)| net.prefix_len());
        for (net, hops) in prefixes {
            lpm.hops.push(hops);
            let value = lpm.hops.len() as u32;
            let (len, network) = (net.prefix_len(), u32::from(net.network()));
            if len <= 16 {
                let first = network >> 16;
                for number in first..first + (1 << (16 - len)) {
                    let block = &mut lpm.blocks[numbered_block_index(number)];
                    *block = *block & SPECIAL | value;
                }
                continue;
            }
            let block = &mut lpm.blocks[block_index(network.to_be_bytes())];
            let group = Ipv4Lpm::group_of(&mut lpm.groups, block);
            let third = group << 8 | (network >> 8 & 0xff) as usize;
            if len <= 24 {
                lpm.groups[third..third + (1 << (24 - len))].fill(value);
                continue;
            }
            let mut entry = lpm.groups[third];
            let group = Ipv4Lpm::group_of(&mut lpm.groups, &mut entry);
            lpm.groups[third] = entry;
            let fourth = group << 8 | (network & 0xff) as usize;
            lpm.groups[fourth..fourth + (1 << (32 - len))].fill(value);
        }
        lpm
    }

    /// The group of `groups` an entry points to, made (filled with the entry's value) where it is
    /// a leaf.
    fn group_of(groups: &mut Vec<u32>, entry: &mut u32) -> usize {
        // A block's entry keeps its SPECIAL bit; the group's entries are routes alone.
        if *entry & GROUP == 0 {
            let index = groups.len() >> 8;
            groups.extend(std::iter::repeat_n(*entry & !SPECIAL, 256));
            *entry = *entry & SPECIAL | GROUP | index as u32;
        }
        (*entry & !(GROUP | SPECIAL)) as usize
    }

    /// The leaf entry for `addr`: 0 for no route, else its prefix's next hops' index plus one.
    #[inline(always)]
    fn leaf(&self, addr: Ipv4Addr) -> u32 {
        let a = u32::from(addr);
        let mut entry = self.blocks[block_index(addr.octets())] & !SPECIAL;
        if entry & GROUP != 0 {
            entry = self.groups.get(((entry & !GROUP) as usize) << 8 | (a >> 8 & 0xff) as usize).map_or(0, |e| *e);
            if entry & GROUP != 0 {
                entry = self.groups.get(((entry & !GROUP) as usize) << 8 | (a & 0xff) as usize).map_or(0, |e| *e);
            }
        }
        entry
    }

    #[inline(always)]
    fn hops_of(&self, leaf: u32) -> Option<&NextHops> {
        self.hops.get((leaf as usize).checked_sub(1)?)
    }

    #[inline(always)]
    fn lookup(&self, addr: Ipv4Addr) -> Option<&NextHops> {
        self.hops_of(self.leaf(addr))
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
        let mut v4 = Vec::new();
        for (prefix, members) in by_prefix {
            let best = members.iter().map(|m| m.1).min().unwrap_or(0);
            let mut buckets = Vec::new();
            for (tunnel, _, weight) in members.iter().filter(|m| m.1 == best) {
                buckets.extend(std::iter::repeat_n(*tunnel, (*weight).max(1) as usize));
            }
            let hops = NextHops { buckets: buckets.into_boxed_slice() };
            match prefix {
                IpNet::V4(p) => v4.push((p.trunc(), hops)),
                IpNet::V6(p) => {
                    table.v6.insert(p, hops);
                }
            }
            table.len += 1;
        }
        table.v4 = Ipv4Lpm::build(v4);
        table
    }

    /// The next hops of the longest prefix holding an IPv4 address.
    #[inline(always)]
    pub fn lookup_v4(&self, addr: Ipv4Addr) -> Option<&NextHops> {
        self.v4.lookup(addr)
    }

    /// [`RouteTable::lookup_v4`] in two steps, for a caller that remembers answers: the prefix
    /// holding `addr` as a number (0 for none; one number for every address of a prefix), then
    /// ([`RouteTable::hops_of_prefix_v4`]) its next hops.
    #[inline(always)]
    pub fn prefix_v4(&self, addr: Ipv4Addr) -> u32 {
        self.v4.leaf(addr)
    }

    /// The next hops of a prefix numbered by [`RouteTable::prefix_v4`].
    #[inline(always)]
    pub fn hops_of_prefix_v4(&self, prefix: u32) -> Option<&NextHops> {
        self.v4.hops_of(prefix)
    }

    /// Mark special the /16 blocks that meet one of the `special` networks (this server's
    /// addresses, the ports' subnets, the martian ranges), and every other block ordinary: see
    /// [`SPECIAL`]. Until it is called no block is ordinary, and every address gets every check.
    pub fn mark_special_v4(&mut self, special: impl IntoIterator<Item = Ipv4Net>) {
        for entry in self.v4.blocks.iter_mut() {
            *entry &= !SPECIAL;
        }
        for net in special {
            let first = u32::from(net.network()) >> 16;
            let last = u32::from(net.broadcast()) >> 16;
            for number in first..=last {
                self.v4.blocks[numbered_block_index(number)] |= SPECIAL;
            }
        }
    }

    /// Whether `addr` is in an ordinary /16 block (not [`SPECIAL`]).
    #[inline(always)]
    pub fn is_ordinary_v4(&self, addr: Ipv4Addr) -> bool {
        self.v4().is_ordinary_v4_le(u32::from_le_bytes(addr.octets()))
    }

    /// Whether `addr` is in an ordinary /16 block that no customer prefix meets: it goes out of
    /// the default gateway, with no other check (one load and one compare).
    #[inline(always)]
    pub fn is_ordinary_unrouted_v4(&self, addr: Ipv4Addr) -> bool {
        self.v4().is_ordinary_unrouted_v4_le(u32::from_le_bytes(addr.octets()))
    }

    /// The IPv4 table's ordinary blocks, as a train's loop tests them ([`RoutesV4`]).
    #[inline(always)]
    pub fn v4(&self) -> RoutesV4<'_> {
        RoutesV4 { blocks: &self.v4.blocks, lpm: &self.v4 }
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

/// A route table's IPv4 first level as a train's loop tests it, the place of its entries held
/// in the view: read through the table for each packet, it took two loads where one does
/// (decap 107.8 -> 103.9 instructions a packet, encap 115.6 -> 114.8). Addresses are taken
/// as little-endian words of their octets (`le`), as a load takes them from a packet.
#[derive(Debug, Clone, Copy)]
pub struct RoutesV4<'a> {
    blocks: &'a [u32; 1 << 16],
    lpm: &'a Ipv4Lpm,
}

impl RoutesV4<'_> {
    /// Whether the address is in an ordinary /16 block (not [`SPECIAL`]). No martian address is,
    /// so that a train tests a source with a load of the table that routes a destination (the
    /// rest of the special blocks' sources it leaves to the express lane).
    #[inline(always)]
    pub fn is_ordinary_v4_le(self, le: u32) -> bool {
        self.blocks[block_index_le(le)] & SPECIAL == 0
    }

    /// Whether the address is in an ordinary /16 block that no customer prefix meets
    /// ([`RouteTable::is_ordinary_unrouted_v4`]).
    #[inline(always)]
    pub fn is_ordinary_unrouted_v4_le(self, le: u32) -> bool {
        self.blocks[block_index_le(le)] == 0
    }

    /// Whether `addr` is in an ordinary /16 block and in the prefix numbered `prefix`
    /// ([`RouteTable::prefix_v4`]): one load and one compare where the prefix holds the whole
    /// block, both checks where it does not.
    #[inline(always)]
    pub fn is_ordinary_in_prefix_v4(self, addr: Ipv4Addr, prefix: u32) -> bool {
        let block = self.blocks[block_index(addr.octets())];
        block == prefix || (block & SPECIAL == 0 && self.lpm.leaf(addr) == prefix)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// The longest matching prefix by brute force: the reference for the fast table.
    fn reference(routes: &[(Ipv4Net, u32)], a: Ipv4Addr) -> Option<u32> {
        routes.iter().filter(|(n, _)| n.contains(&a)).max_by_key(|(n, _)| n.prefix_len()).map(|r| r.1)
    }

    /// Check `a` against the brute force, looked up whole and in two steps, and that the
    /// prefixes' numbers are one to one with the prefixes (`numbers`: those seen so far, each
    /// with its prefix's route; 0 for no route).
    fn check(t: &RouteTable, routes: &[(Ipv4Net, u32)], a: Ipv4Addr, numbers: &mut HashMap<u32, Option<u32>>) {
        let expected = reference(routes, a);
        assert_eq!(t.lookup_v4(a).map(|h| h.pick(0).0), expected, "{a}");
        let prefix = t.prefix_v4(a);
        assert_eq!(t.hops_of_prefix_v4(prefix).map(|h| h.pick(0).0), expected, "{a}");
        assert_eq!(prefix == 0, expected.is_none(), "{a}");
        assert_eq!(*numbers.entry(prefix).or_insert(expected), expected, "{a}: a prefix's number shared");
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

    #[test]
    fn ipv4_matches_brute_force_on_random_prefixes() {
        // Prefixes of every length crowded into a few /16 blocks, so that groups of both levels
        // are made, shared and overwritten, in the order the configuration gives them.
        let mut x = 0x9e37_79b9u32;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        let mut routes = Vec::new();
        for i in 0..400u32 {
            let r = next();
            let len = (r % 33) as u8;
            let a = [0x0a14_0000, 0x0a15_0000, 0xc000_0200, 0x6400_0000][(r >> 8) as usize % 4] | next() & 0x0001_ffff;
            let n = Ipv4Net::new(Ipv4Addr::from(a), len).unwrap().trunc();
            routes.push((n, i));
        }
        // The table keeps one route per prefix: the brute force sees the same.
        routes.sort_by_key(|r| r.0);
        routes.dedup_by_key(|r| r.0);
        let t = RouteTable::build(routes.iter().map(|(n, i)| (IpNet::V4(*n), TunnelId(*i), 1, 1)));
        let mut numbers = HashMap::new();
        for (n, _) in &routes {
            let (lo, hi) = (u32::from(n.network()), u32::from(n.broadcast()));
            for p in [lo, hi, lo.wrapping_sub(1), hi.wrapping_add(1), lo + (hi - lo) / 2] {
                check(&t, &routes, Ipv4Addr::from(p), &mut numbers);
            }
        }
        for _ in 0..50_000 {
            let r = next();
            for p in [r, 0x0a14_0000 | r >> 15, 0xc000_0200 | r & 0xff] {
                check(&t, &routes, Ipv4Addr::from(p), &mut numbers);
            }
        }
        // No two prefixes share a number, and most were met.
        let mut met: Vec<Option<u32>> = numbers.values().copied().collect();
        met.sort_unstable();
        met.dedup();
        assert_eq!(met.len(), numbers.len());
        assert!(met.len() > routes.len() / 2, "{} of {} prefixes met", met.len(), routes.len());
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn ordinary_in_prefix_is_both_checks_at_once() {
        let mut t = RouteTable::build([
            (net("10.0.0.0/8"), TunnelId(0), 1, 1),
            (net("10.20.0.0/16"), TunnelId(1), 1, 1),
            (net("10.20.30.0/24"), TunnelId(2), 1, 1),
            (net("10.21.0.0/16"), TunnelId(3), 1, 1),
        ]);
        let probes: Vec<Ipv4Addr> =
            ["10.1.2.3", "10.20.1.1", "10.20.30.4", "10.20.31.4", "10.21.5.9", "10.21.6.9", "11.0.0.1"]
                .iter()
                .map(|a| a.parse().unwrap())
                .collect();
        let prefixes: Vec<u32> = probes.iter().map(|a| t.prefix_v4(*a)).collect();
        let compare = |t: &RouteTable| {
            for a in &probes {
                for p in &prefixes {
                    let both = t.is_ordinary_v4(*a) && t.prefix_v4(*a) == *p;
                    assert_eq!(t.v4().is_ordinary_in_prefix_v4(*a, *p), both, "{a} in {p}");
                }
            }
        };
        // Before any block is marked, none is ordinary.
        compare(&t);
        assert!(!t.v4().is_ordinary_in_prefix_v4(probes[1], prefixes[1]));
        t.mark_special_v4(["10.21.5.0/24".parse::<Ipv4Net>().unwrap()]);
        compare(&t);
        assert!(t.v4().is_ordinary_in_prefix_v4(probes[1], prefixes[1]), "a block the /16 holds whole");
        assert!(t.v4().is_ordinary_in_prefix_v4(probes[2], prefixes[2]), "a /24 in a group");
        assert!(t.v4().is_ordinary_in_prefix_v4(probes[3], prefixes[1]), "the /16 around the /24");
        assert!(!t.v4().is_ordinary_in_prefix_v4(probes[5], prefixes[5]), "a block meeting a special network");
        // The marks leave the routes as they were, in the blocks and in their groups.
        assert_eq!(probes.iter().map(|a| t.prefix_v4(*a)).collect::<Vec<_>>(), prefixes);
        assert!(t.lookup_v4(probes[4]).is_some() && t.lookup_v4(probes[6]).is_none());
        // Unrouted and ordinary: only the address outside every prefix and special block.
        let unrouted: Vec<bool> = probes.iter().map(|a| t.is_ordinary_unrouted_v4(*a)).collect();
        assert_eq!(unrouted, [false, false, false, false, false, false, true]);
        assert!(!t.is_ordinary_v4(probes[4]) && t.is_ordinary_v4(probes[6]));
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
