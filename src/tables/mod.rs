//! The tables a worker holds: ports, tunnels, customer routes, its own addresses. Built whole by
//! the control thread from the configuration and handed to every worker as one immutable snapshot;
//! a reload builds a new snapshot and swaps it in between bursts.

pub mod keymap;
pub mod neighbors;
pub mod routes;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};
use rustc_hash::FxHashSet;

use crate::config::Config;
use crate::pipeline::{csum, l2};
pub use keymap::KeyMap;
pub use neighbors::Neighbors;
pub use routes::{RouteTable, RoutesV4, TunnelId};

/// A port as the pipeline sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    pub name: String,
    pub mac: [u8; 6],
    pub vlan: Option<u16>,
    pub ipv4: Option<Ipv4Net>,
    /// The broadcast address of `ipv4`, computed once: it is compared with every routed
    /// packet's destination.
    pub broadcast4: Option<Ipv4Addr>,
    /// What a little-endian load of an untagged frame's first 8 bytes, masked to 48 bits, is
    /// when the frame is for this port ([`PortInfo::express_key`]): the MAC's
    /// [`l2::mac_word`], or on a port with a VLAN a value no frame gives, so that one compare
    /// also leaves tagged ports to the full pipeline.
    pub express_mac: u64,
    /// An untagged IPv4 frame's Ethernet header from this port, as the express lane writes it.
    pub ipv4_header: l2::Ipv4HeaderWords,
    pub gateway4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Net>,
    pub gateway6: Option<Ipv6Addr>,
}

impl PortInfo {
    /// The first 6 of the 8 bytes `head` (a frame's destination MAC) as the low 48 bits of an
    /// integer, from one load, to compare with [`PortInfo::express_mac`].
    #[inline(always)]
    pub fn express_key(head: &[u8; 8]) -> u64 {
        u64::from_le_bytes(*head) & 0xffff_ffff_ffff
    }
}

/// Where a packet leaves: a port index and the neighbor it is sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Egress {
    pub port: u16,
    pub next_hop: IpAddr,
}

/// What carries a tunnel's packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelKind {
    Gre,
    /// ESP; its SAs are in each worker's SA database, by the tunnel's counter slot.
    Ipsec,
}

/// A tunnel compiled for the fast path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tunnel {
    pub name: String,
    pub kind: TunnelKind,
    /// Index of the tunnel's counters (stable across reloads).
    pub slot: u32,
    /// The customer endpoint (unspecified for an IPsec tunnel that has none configured: its SAs
    /// say where the router is).
    pub customer: Ipv4Addr,
    pub anycast: Ipv4Addr,
    pub interface_v4: Option<Ipv4Net>,
    pub ttl: u8,
    pub mtu: u16,
    pub mss: u16,
    /// How the customer endpoint is reached; None when no port can reach it.
    pub egress: Option<Egress>,
    /// Whether `egress` is the default gateway ([`Tables::default_egress_v4`]), as for nearly
    /// every customer endpoint, whose exit a context finds once.
    pub via_gateway_v4: bool,
    /// GRE: the outer IPv4 and GRE header, with total length, identification, checksum and GRE
    /// protocol 0: encapsulation ORs those four into it (`gre::write_outer`), so they stay 0.
    pub outer_template: [u8; 24],
    /// The template's IPv4 header sum ([`csum::sum`]), for [`csum::template_checksum`].
    pub outer_sum: u16,
}

impl Tunnel {
    /// Whether the tunnel is an IPsec tunnel.
    #[inline(always)]
    pub fn is_ipsec(&self) -> bool {
        self.kind == TunnelKind::Ipsec
    }

    fn outer_header(ttl: u8, anycast: Ipv4Addr, customer: Ipv4Addr) -> ([u8; 24], u16) {
        let mut h = [0u8; 24];
        h[0] = 0x45;
        // DF: the tunnel MTU keeps the outer packet within 1500 bytes; fragments are made inside.
        h[6] = 0x40;
        h[8] = ttl;
        h[9] = 47;
        h[12..16].copy_from_slice(&anycast.octets());
        h[16..20].copy_from_slice(&customer.octets());
        (h, csum::sum(&h[..20]))
    }
}

/// The whole snapshot.
#[derive(Debug)]
pub struct Tables {
    pub ports: Vec<PortInfo>,
    pub tunnels: Vec<Tunnel>,
    /// Tunnels by counter slot (the key SAs know their tunnel by).
    by_slot: Vec<Option<TunnelId>>,
    /// GRE tunnels by (anycast endpoint, customer endpoint), as one integer (a cheaper hash key).
    gre_by_endpoints: KeyMap<TunnelId>,
    /// Every IPv4 address of this server (port addresses and anycast endpoints).
    local_v4: KeyMap<()>,
    /// The tunnels' own inside addresses (the tunnel's /31 or /30 end on our side).
    interface_v4: KeyMap<TunnelId>,
    local_v6: FxHashSet<Ipv6Addr>,
    /// A bitmap of hashed IPv4 addresses of ours (local and tunnel inside addresses): a clear bit
    /// proves an address is not ours without a map lookup, which is the common case for
    /// routed packets.
    ours_v4_filter: [u64; FILTER_WORDS],
    /// The ports' IPv4 subnets (network, mask, port), for packets routed out of a port.
    connected_v4: Vec<(u32, u32, u16)>,
    /// The first octets of addresses on the ports' IPv4 subnets, a bit each: a clear bit spares
    /// a routed packet the walk of `connected_v4`, as for most of a tunnel server's traffic,
    /// whose destinations are on the internet or behind a tunnel.
    connected_v4_octets: [u64; 4],
    /// Where IPv4 off every subnet goes: the first port with a gateway.
    default_v4: Option<Egress>,
    pub routes: RouteTable,
    /// Neighbors configured with a static MAC.
    pub static_neighbors: Vec<(u16, IpAddr, [u8; 6])>,
}

const FILTER_WORDS: usize = 16;

/// Where an address falls in the filter of our addresses: a word and a bit (1024 bits).
#[inline(always)]
fn filter_position(addr: u32) -> (usize, u32) {
    let h = (u64::from(addr).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 54) as u32;
    ((h >> 6) as usize, h & 63)
}

/// The key of an IPv4 address in the tables' maps.
#[inline(always)]
fn address_key(addr: Ipv4Addr) -> u64 {
    u64::from(u32::from(addr))
}

/// The GRE tunnel map's key for a pair of endpoints.
#[inline(always)]
pub fn endpoints_key(anycast: Ipv4Addr, customer: Ipv4Addr) -> u64 {
    address_key(anycast) << 32 | address_key(customer)
}

/// Assigns each tunnel name a counter slot that stays the same across reloads.
#[derive(Debug, Default, Clone)]
pub struct SlotMap {
    slots: HashMap<String, u32>,
    next: u32,
}

impl SlotMap {
    /// The slot for a tunnel name, assigning a new one the first time.
    pub fn slot(&mut self, name: &str) -> u32 {
        if let Some(s) = self.slots.get(name) {
            return *s;
        }
        let s = self.next;
        self.next += 1;
        self.slots.insert(name.to_string(), s);
        s
    }

    /// The number of slots handed out.
    pub fn len(&self) -> usize {
        self.next as usize
    }

    /// Whether no slot was handed out.
    pub fn is_empty(&self) -> bool {
        self.next == 0
    }

    /// Tunnel names by slot.
    pub fn names(&self) -> Vec<(u32, String)> {
        let mut v: Vec<_> = self.slots.iter().map(|(n, s)| (*s, n.clone())).collect();
        v.sort();
        v
    }
}

impl Tables {
    /// Compile a configuration; `macs` are the ports' MAC addresses, in configuration order.
    pub fn build(config: &Config, macs: &[[u8; 6]], slots: &mut SlotMap) -> Tables {
        let ports: Vec<PortInfo> = config
            .ports
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mac = macs.get(i).copied().unwrap_or_default();
                PortInfo {
                    name: p.name.clone(),
                    mac,
                    vlan: p.vlan,
                    ipv4: p.address,
                    broadcast4: p.address.map(|n| n.broadcast()),
                    express_mac: if p.vlan.is_none() { l2::mac_word(mac) } else { u64::MAX },
                    ipv4_header: l2::Ipv4HeaderWords::new(mac),
                    gateway4: p.gateway,
                    ipv6: p.address6,
                    gateway6: p.gateway6,
                }
            })
            .collect();
        let mut tables = Tables {
            ports,
            tunnels: Vec::new(),
            by_slot: Vec::new(),
            gre_by_endpoints: KeyMap::default(),
            local_v4: config.local_v4().into_iter().map(|a| (address_key(a), ())).collect(),
            interface_v4: KeyMap::default(),
            local_v6: config.ports.iter().filter_map(|p| p.address6.map(|a| a.addr())).collect(),
            ours_v4_filter: [0; FILTER_WORDS],
            connected_v4: Vec::new(),
            connected_v4_octets: [0; 4],
            default_v4: None,
            routes: RouteTable::default(),
            static_neighbors: Vec::new(),
        };
        for (i, p) in tables.ports.iter().enumerate() {
            if let Some(net) = p.ipv4 {
                tables.connected_v4.push((u32::from(net.network()), u32::from(net.netmask()), i as u16));
                let first = u32::from(net.network()) >> 24;
                let count = 1u32 << 8u8.saturating_sub(net.prefix_len());
                for octet in first..first + count {
                    tables.connected_v4_octets[(octet >> 6) as usize] |= 1 << (octet & 63);
                }
            }
        }
        tables.default_v4 = tables
            .ports
            .iter()
            .enumerate()
            .find_map(|(i, p)| p.gateway4.map(|g| Egress { port: i as u16, next_hop: IpAddr::V4(g) }));
        let mut by_name = HashMap::new();
        for t in &config.gre_tunnels {
            let id = TunnelId(tables.tunnels.len() as u32);
            by_name.insert(t.name.clone(), id);
            tables.gre_by_endpoints.insert(endpoints_key(t.anycast_endpoint, t.customer_endpoint), id);
            if let Some(net) = t.interface_address {
                tables.interface_v4.insert(address_key(net.addr()), id);
            }
            let egress = tables.egress(IpAddr::V4(t.customer_endpoint));
            let (outer_template, outer_sum) = Tunnel::outer_header(t.ttl, t.anycast_endpoint, t.customer_endpoint);
            tables.tunnels.push(Tunnel {
                name: t.name.clone(),
                kind: TunnelKind::Gre,
                slot: slots.slot(&t.name),
                customer: t.customer_endpoint,
                anycast: t.anycast_endpoint,
                interface_v4: t.interface_address,
                ttl: t.ttl,
                mtu: t.mtu,
                mss: t.mss,
                egress,
                via_gateway_v4: egress.is_some() && egress == tables.default_v4,
                outer_template,
                outer_sum,
            });
        }
        for t in &config.ipsec_tunnels {
            let id = TunnelId(tables.tunnels.len() as u32);
            by_name.insert(t.name.clone(), id);
            if let Some(net) = t.interface_address {
                tables.interface_v4.insert(address_key(net.addr()), id);
            }
            let customer = t.customer_endpoint.unwrap_or(Ipv4Addr::UNSPECIFIED);
            let egress = t.customer_endpoint.and_then(|c| tables.egress(IpAddr::V4(c)));
            tables.tunnels.push(Tunnel {
                name: t.name.clone(),
                kind: TunnelKind::Ipsec,
                slot: slots.slot(&t.name),
                customer,
                anycast: t.anycast_endpoint,
                interface_v4: t.interface_address,
                ttl: t.ttl,
                mtu: t.mtu,
                mss: t.mss,
                egress,
                via_gateway_v4: egress.is_some() && egress == tables.default_v4,
                outer_template: [0; 24],
                outer_sum: 0,
            });
        }
        for (i, t) in tables.tunnels.iter().enumerate() {
            let slot = t.slot as usize;
            if tables.by_slot.len() <= slot {
                tables.by_slot.resize(slot + 1, None);
            }
            tables.by_slot[slot] = Some(TunnelId(i as u32));
        }
        let ours: Vec<u32> = tables.local_v4.keys().chain(tables.interface_v4.keys()).map(|k| k as u32).collect();
        for a in ours {
            let (word, bit) = filter_position(a);
            tables.ours_v4_filter[word] |= 1 << bit;
        }
        tables.routes = RouteTable::build(
            config
                .routes
                .iter()
                .filter_map(|r| by_name.get(&r.nexthop).map(|id| (r.prefix, *id, r.priority, r.weight))),
        );
        // Where an address may need more than its route: ours (port addresses, anycast
        // endpoints, tunnel inside addresses), the ports' subnets (their broadcast addresses and
        // on-link next hops among them), the martian ranges.
        let ours =
            tables.local_v4.keys().chain(tables.interface_v4.keys()).map(|k| Ipv4Net::from(Ipv4Addr::from(k as u32)));
        let subnets: Vec<Ipv4Net> = tables.ports.iter().filter_map(|p| p.ipv4).collect();
        let martians = crate::pipeline::ipv4::MARTIAN_NETWORKS
            .iter()
            .map(|&(net, len)| Ipv4Net::new(net, len).expect("a prefix length of 32 or less"));
        tables.routes.mark_special_v4(ours.chain(subnets).chain(martians).collect::<Vec<_>>());
        for (i, p) in config.ports.iter().enumerate() {
            if let (Some(gw), Some(mac)) = (p.gateway, p.gateway_mac) {
                tables.static_neighbors.push((i as u16, IpAddr::V4(gw), mac));
            }
            if let (Some(gw), Some(mac)) = (p.gateway6, p.gateway6_mac) {
                tables.static_neighbors.push((i as u16, IpAddr::V6(gw), mac));
            }
        }
        tables
    }

    /// The GRE tunnel joining this anycast endpoint and customer endpoint.
    #[inline(always)]
    pub fn gre_tunnel(&self, anycast: Ipv4Addr, customer: Ipv4Addr) -> Option<TunnelId> {
        self.gre_tunnel_by_key(endpoints_key(anycast, customer))
    }

    /// The GRE tunnel whose endpoints make this [`endpoints_key`].
    #[inline(always)]
    pub fn gre_tunnel_by_key(&self, key: u64) -> Option<TunnelId> {
        self.gre_by_endpoints.get(key).copied()
    }

    /// How many tunnel counter slots these tables use (the highest slot, plus one).
    pub fn slot_count(&self) -> usize {
        self.tunnels.iter().map(|t| t.slot as usize + 1).max().unwrap_or(0)
    }

    /// A tunnel by id.
    #[inline(always)]
    pub fn tunnel(&self, id: TunnelId) -> &Tunnel {
        &self.tunnels[id.0 as usize]
    }

    /// The tunnel with this counter slot, if it is still configured.
    #[inline(always)]
    pub fn tunnel_by_slot(&self, slot: u32) -> Option<TunnelId> {
        self.by_slot.get(slot as usize).copied().flatten()
    }

    /// False when the address is certainly neither one of this server's nor a tunnel's inside
    /// address; true when it may be (then ask [`Tables::is_local_v4`] and
    /// [`Tables::interface_tunnel`]).
    #[inline(always)]
    pub fn may_be_ours_v4(&self, addr: Ipv4Addr) -> bool {
        let (word, bit) = filter_position(u32::from(addr));
        self.ours_v4_filter[word] & (1 << bit) != 0
    }

    /// Whether the address is one of this server's (a port address or an anycast endpoint).
    #[inline(always)]
    pub fn is_local_v4(&self, addr: Ipv4Addr) -> bool {
        self.local_v4.contains_key(address_key(addr))
    }

    /// Whether the address is one of this server's IPv6 addresses.
    #[inline]
    pub fn is_local_v6(&self, addr: Ipv6Addr) -> bool {
        self.local_v6.contains(&addr)
    }

    /// The tunnel whose inside address (our end) this is.
    #[inline(always)]
    pub fn interface_tunnel(&self, addr: Ipv4Addr) -> Option<TunnelId> {
        self.interface_v4.get(address_key(addr)).copied()
    }

    /// Where IPv4 off every subnet goes (the first port with a gateway): [`Tables::egress`] of
    /// an address on no port's subnet.
    #[inline(always)]
    pub fn default_egress_v4(&self) -> Option<Egress> {
        self.default_v4
    }

    /// How to reach an address directly through a port: on a port's subnet it is its own next
    /// hop, otherwise it goes to the first port's gateway that has one.
    #[inline(always)]
    pub fn egress(&self, dst: IpAddr) -> Option<Egress> {
        match dst {
            IpAddr::V4(d) => {
                let a = u32::from(d);
                let octet = a >> 24;
                if self.connected_v4_octets[(octet >> 6) as usize] & (1 << (octet & 63)) != 0 {
                    for &(network, mask, port) in &self.connected_v4 {
                        if a & mask == network {
                            return Some(Egress { port, next_hop: dst });
                        }
                    }
                }
                self.default_v4
            }
            IpAddr::V6(d) => {
                if let Some(i) = self.ports.iter().position(|p| p.ipv6.is_some_and(|n| n.contains(&d))) {
                    return Some(Egress { port: i as u16, next_hop: dst });
                }
                self.ports
                    .iter()
                    .position(|p| p.gateway6.is_some())
                    .map(|i| Egress { port: i as u16, next_hop: IpAddr::V6(self.ports[i].gateway6.unwrap_or(d)) })
            }
        }
    }

    /// The source address for packets this server originates out of a port (ICMP errors).
    pub fn port_v4(&self, port: u16) -> Option<Ipv4Addr> {
        self.ports.get(port as usize).and_then(|p| p.ipv4.map(|n| n.addr()))
    }

    /// The IPv6 source address for packets this server originates out of a port.
    pub fn port_v6(&self, port: u16) -> Option<Ipv6Addr> {
        self.ports.get(port as usize).and_then(|p| p.ipv6.map(|n| n.addr()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn egress_is_the_subnet_of_a_port_or_else_the_gateway() {
        let config = Config::parse(
            r#"
[[ports]]
name = "wan"
device = "net_null0"
address = "192.0.2.1/24"
gateway = "192.0.2.254"

[[ports]]
name = "wide"
device = "net_null1"
address = "10.0.0.1/7"

[[ports]]
name = "lan"
device = "net_null2"
address = "203.0.113.1/30"
"#,
        )
        .unwrap();
        let tables = Tables::build(&config, &[[2; 6], [3; 6], [4; 6]], &mut SlotMap::default());
        let egress = |a: &str| tables.egress(a.parse().unwrap());
        let direct = |port: u16, a: &str| Some(Egress { port, next_hop: a.parse().unwrap() });
        let gateway = Some(Egress { port: 0, next_hop: "192.0.2.254".parse().unwrap() });
        for a in ["192.0.2.7", "192.0.2.255"] {
            assert_eq!(egress(a), direct(0, a), "{a}");
        }
        // A subnet wider than its first octet: 10.0.0.0/7 holds 10.x and 11.x.
        for a in ["10.20.30.40", "11.255.0.1"] {
            assert_eq!(egress(a), direct(1, a), "{a}");
        }
        assert_eq!(egress("203.0.113.2"), direct(2, "203.0.113.2"));
        // Beside a subnet's first octet, or off every subnet: the gateway.
        for a in ["192.0.3.1", "203.0.113.4", "12.0.0.1", "9.255.255.255", "198.51.100.1"] {
            assert_eq!(egress(a), gateway, "{a}");
        }
        assert_eq!(tables.ports[0].broadcast4, Some("192.0.2.255".parse().unwrap()));
        // A frame for a port matches its express key, whatever its next two bytes; none
        // matches a port with a VLAN.
        let mut frame = [0u8; 8];
        frame[..6].copy_from_slice(&tables.ports[0].mac);
        for tail in [[0u8, 0], [0xff, 0xff], [0x08, 0x00]] {
            frame[6..].copy_from_slice(&tail);
            assert_eq!(PortInfo::express_key(&frame), tables.ports[0].express_mac);
            frame[0] ^= 1;
            assert_ne!(PortInfo::express_key(&frame), tables.ports[0].express_mac);
            frame[0] ^= 1;
        }
        assert!(tables.ports.iter().all(|p| (p.express_mac == u64::MAX) == p.vlan.is_some()));
        assert_eq!(tables.ports[2].broadcast4, Some("203.0.113.3".parse().unwrap()));
    }

    #[test]
    fn an_ordinary_block_holds_nothing_but_routed_addresses() {
        let config = Config::parse(
            r#"
[[ports]]
name = "wan"
device = "net_null0"
address = "192.0.2.1/24"
gateway = "192.0.2.254"

[[ports]]
name = "wide"
device = "net_null1"
address = "10.0.0.1/7"

[[gre_tunnels]]
name = "site1"
customer_endpoint = "198.51.100.10"
anycast_endpoint = "162.159.65.1"
interface_address = "10.212.0.0/31"

[[gre_tunnels]]
name = "site2"
customer_endpoint = "198.51.100.20"
anycast_endpoint = "162.159.65.1"
interface_address = "172.31.7.0/31"

[[routes]]
prefix = "100.64.0.0/10"
nexthop = "site1"

[[routes]]
prefix = "100.80.7.0/24"
nexthop = "site2"

[[routes]]
prefix = "172.16.0.0/12"
nexthop = "site2"
"#,
        )
        .unwrap();
        let tables = Tables::build(&config, &[[2; 6], [3; 6]], &mut SlotMap::default());
        // The same routes, with no block marked, route alike.
        let unmarked = RouteTable::build(
            config.routes.iter().map(|r| (r.prefix, TunnelId(u32::from(r.nexthop == "site2")), r.priority, r.weight)),
        );
        let special = ["192.0.2.0", "10.1.255.255", "11.0.0.0", "162.159.65.1", "172.31.7.0", "0.0.0.0", "127.0.0.1"];
        for a in special.into_iter().chain(["224.0.0.5", "239.255.255.255", "255.255.255.255"]) {
            assert!(!tables.routes.is_ordinary_v4(a.parse().unwrap()), "{a}");
        }
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let (mut ordinary, mut unrouted) = (0, 0);
        for i in 0..200_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Random addresses, and every /16 block's first and last.
            let a = Ipv4Addr::from(match i {
                0..=65_535 => i << 16,
                65_536..=131_071 => (i - 65_536) << 16 | 0xffff,
                _ => x as u32,
            });
            let route = tables.routes.lookup_v4(a).map(|h| h.pick(0));
            assert_eq!(route.map(|t| t.0), unmarked.lookup_v4(a).map(|h| h.pick(0).0), "{a}");
            if tables.routes.is_ordinary_v4(a) {
                ordinary += 1;
                assert!(!tables.is_local_v4(a) && tables.interface_tunnel(a).is_none(), "{a}");
                assert!(!crate::pipeline::ipv4::martian(a), "{a}");
                assert_eq!(tables.egress(IpAddr::V4(a)), tables.default_egress_v4(), "{a}");
                assert!(tables.ports.iter().all(|p| p.broadcast4 != Some(a)), "{a}");
            }
            let ordinary_unrouted = tables.routes.is_ordinary_v4(a) && route.is_none();
            assert_eq!(tables.routes.is_ordinary_unrouted_v4(a), ordinary_unrouted, "{a}");
            unrouted += u32::from(ordinary_unrouted);
        }
        // Most of the address space is ordinary, routed or not.
        assert!(ordinary > 150_000 && unrouted > 140_000, "{ordinary} {unrouted}");
    }
}
