//! The configuration file (TOML): read, validated, and turned into typed values.
//!
//! Every error names the field it is about (`gre_tunnels[1].mtu: ...`). The product's own field
//! names `customer_gre_endpoint` / `cloudflare_gre_endpoint` are accepted as aliases.

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use ipnet::{Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

mod ike;
mod ipsec;

use ike::{ike_config, RawIke};
pub use ike::{
    IkeConfig, DEFAULT_ACCOUNT_ID, DEFAULT_IKE_DOMAIN, MAX_IKE_FRAGMENTS, MAX_IKE_FRAGMENT_SIZE, MIN_REKEY_SECONDS,
};
pub use ipsec::{IpsecTunnelConfig, SaDirection, StaticSaConfig};

/// The longest tunnel name (as the product's tunnel objects allow).
pub const MAX_NAME_LEN: usize = 15;
/// The smallest tunnel MTU.
pub const MIN_MTU: u16 = 576;
/// The default GRE tunnel MTU: 1500 less the outer IPv4 and GRE headers.
pub const DEFAULT_GRE_MTU: u16 = 1476;
/// The default TCP MSS for GRE tunnels: the MTU less 40 bytes of IPv4 and TCP headers.
pub const DEFAULT_GRE_MSS: u16 = 1436;
/// The default IPsec tunnel MTU: room for the largest ESP overhead (outer IPv4, UDP, ESP header,
/// CBC IV, padding, trailer, ICV) in 1500 bytes.
pub const DEFAULT_IPSEC_MTU: u16 = 1400;
/// The default TCP MSS for IPsec tunnels.
pub const DEFAULT_IPSEC_MSS: u16 = 1360;
/// The most Child SAs one tunnel may have in each direction.
pub const MAX_SAS_PER_TUNNEL: usize = 100;
/// The default TTL of the outer header.
pub const DEFAULT_TTL: u8 = 64;

/// A configuration error, naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The field, as a path (`ports[0].address`); empty for the file as a whole.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError { field: field.into(), message: message.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

// The file as written: strings where addresses go, so that errors can name the field.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    dataplane: RawDataplane,
    #[serde(default)]
    ports: Vec<RawPort>,
    #[serde(default)]
    gre_tunnels: Vec<RawGreTunnel>,
    #[serde(default)]
    ipsec_tunnels: Vec<ipsec::RawIpsecTunnel>,
    #[serde(default)]
    routes: Vec<RawRoute>,
    #[serde(default)]
    ike: RawIke,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDataplane {
    cores: Option<Vec<u32>>,
    main_core: Option<u32>,
    eal_args: Option<Vec<String>>,
    mbufs: Option<u32>,
    rx_descriptors: Option<u16>,
    tx_descriptors: Option<u16>,
    icmp_errors_per_second: Option<u32>,
    node_id: Option<u16>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPort {
    name: String,
    device: String,
    address: Option<String>,
    gateway: Option<String>,
    gateway_mac: Option<String>,
    address6: Option<String>,
    gateway6: Option<String>,
    gateway6_mac: Option<String>,
    mac: Option<String>,
    vlan: Option<u16>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGreTunnel {
    name: String,
    #[serde(alias = "customer_gre_endpoint")]
    customer_endpoint: String,
    #[serde(alias = "cloudflare_gre_endpoint")]
    anycast_endpoint: String,
    interface_address: Option<String>,
    interface_address6: Option<String>,
    description: Option<String>,
    ttl: Option<u8>,
    mtu: Option<u16>,
    mss: Option<u16>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    prefix: String,
    nexthop: String,
    priority: Option<u32>,
    weight: Option<u32>,
    description: Option<String>,
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Config {
    pub dataplane: Dataplane,
    pub ports: Vec<PortConfig>,
    pub gre_tunnels: Vec<GreTunnelConfig>,
    pub ipsec_tunnels: Vec<IpsecTunnelConfig>,
    pub routes: Vec<RouteConfig>,
    pub ike: IkeConfig,
}

/// The largest node ID: ESP SPIs give it their top 8 bits.
pub const MAX_NODE_ID: u16 = 255;

/// Cores and DPDK settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dataplane {
    /// Worker cores, one poll-mode worker each.
    pub cores: Vec<u32>,
    /// The core of the control and slow-path thread.
    pub main_core: u32,
    /// Further EAL arguments (`--no-pci`, `--in-memory`, ...).
    pub eal_args: Vec<String>,
    /// Mbufs in the packet pool.
    pub mbufs: u32,
    pub rx_descriptors: u16,
    pub tx_descriptors: u16,
    /// ICMP errors (fragmentation needed, time exceeded, packet too big) each worker may send per second.
    pub icmp_errors_per_second: u32,
    /// This server's number in its fleet (0 alone): in the top bits of SPIs and IVs it makes.
    pub node_id: u16,
}

/// One port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortConfig {
    pub name: String,
    /// The DPDK device string (`net_tap0,iface=ag0`, a PCI address, ...).
    pub device: String,
    pub address: Option<Ipv4Net>,
    pub gateway: Option<Ipv4Addr>,
    #[serde(serialize_with = "serialize_mac")]
    pub gateway_mac: Option<[u8; 6]>,
    pub address6: Option<Ipv6Net>,
    pub gateway6: Option<Ipv6Addr>,
    #[serde(serialize_with = "serialize_mac")]
    pub gateway6_mac: Option<[u8; 6]>,
    /// A MAC address to set on the port instead of the device's own.
    #[serde(serialize_with = "serialize_mac")]
    pub mac: Option<[u8; 6]>,
    /// An 802.1Q VLAN the port's traffic is tagged with.
    pub vlan: Option<u16>,
}

/// One GRE tunnel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GreTunnelConfig {
    pub name: String,
    pub customer_endpoint: Ipv4Addr,
    pub anycast_endpoint: Ipv4Addr,
    pub interface_address: Option<Ipv4Net>,
    pub interface_address6: Option<Ipv6Net>,
    pub description: Option<String>,
    pub ttl: u8,
    pub mtu: u16,
    /// The MSS SYNs through the tunnel are clamped to; 0 turns clamping off.
    pub mss: u16,
}

/// A customer route: a prefix sent through a tunnel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteConfig {
    pub prefix: ipnet::IpNet,
    pub nexthop: String,
    /// Lower wins.
    pub priority: u32,
    /// Share of the flows among routes of equal priority.
    pub weight: u32,
    pub description: Option<String>,
}

fn parse_v4(field: String, text: &str) -> Result<Ipv4Addr, ConfigError> {
    text.parse().map_err(|_| ConfigError::new(field, format!("{text:?} is not an IPv4 address")))
}

fn parse_v6(field: String, text: &str) -> Result<Ipv6Addr, ConfigError> {
    text.parse().map_err(|_| ConfigError::new(field, format!("{text:?} is not an IPv6 address")))
}

fn parse_net4(field: String, text: &str) -> Result<Ipv4Net, ConfigError> {
    text.parse().map_err(|_| {
        ConfigError::new(field, format!("{text:?} is not an IPv4 address with a prefix length (a.b.c.d/n)"))
    })
}

fn parse_net6(field: String, text: &str) -> Result<Ipv6Net, ConfigError> {
    text.parse().map_err(|_| ConfigError::new(field, format!("{text:?} is not an IPv6 address with a prefix length")))
}

/// Parse a MAC address written `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

fn mac(field: String, text: &str) -> Result<[u8; 6], ConfigError> {
    parse_mac(text).ok_or_else(|| ConfigError::new(field, format!("{text:?} is not a MAC address (aa:bb:cc:dd:ee:ff)")))
}

fn check_name(field: String, name: &str) -> Result<(), ConfigError> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(ConfigError::new(field, format!("{name:?} must be 1 to {MAX_NAME_LEN} characters")));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(ConfigError::new(field, format!("{name:?} may hold only letters, digits, '_' and '-'")));
    }
    Ok(())
}

impl Config {
    /// Read and validate a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new("", format!("cannot read {}: {e}", path.display())))?;
        Config::parse(&text)
    }

    /// Parse and validate a configuration.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let message = e.message().to_string();
            let at = e.span().map(|s| {
                let line = text[..s.start.min(text.len())].lines().count().max(1);
                format!(" (line {line})")
            });
            ConfigError::new("", format!("{message}{}", at.unwrap_or_default()))
        })?;
        Config::validate(raw)
    }

    fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
        let d = raw.dataplane;
        let cores = d.cores.unwrap_or_else(|| vec![1]);
        let main_core = d.main_core.unwrap_or(0);
        if cores.is_empty() {
            return Err(ConfigError::new("dataplane.cores", "at least one worker core is needed"));
        }
        let mut seen = HashSet::new();
        for (i, core) in cores.iter().enumerate() {
            if *core == main_core || !seen.insert(*core) {
                return Err(ConfigError::new(
                    format!("dataplane.cores[{i}]"),
                    format!("core {core} is given twice (main_core is {main_core})"),
                ));
            }
        }
        let mbufs = d.mbufs.unwrap_or(16383);
        if mbufs < 1024 {
            return Err(ConfigError::new("dataplane.mbufs", format!("{mbufs} is under the minimum 1024")));
        }
        let node_id = d.node_id.unwrap_or(0);
        if node_id > MAX_NODE_ID {
            return Err(ConfigError::new(
                "dataplane.node_id",
                format!("{node_id} is over {MAX_NODE_ID}: ESP SPIs carry the node ID in their top 8 bits"),
            ));
        }
        let dataplane = Dataplane {
            cores,
            main_core,
            eal_args: d.eal_args.unwrap_or_else(|| vec!["--in-memory".into(), "--no-telemetry".into()]),
            mbufs,
            rx_descriptors: d.rx_descriptors.unwrap_or(1024),
            tx_descriptors: d.tx_descriptors.unwrap_or(1024),
            icmp_errors_per_second: d.icmp_errors_per_second.unwrap_or(100),
            node_id,
        };

        if raw.ports.is_empty() {
            return Err(ConfigError::new("ports", "at least one port is needed"));
        }
        let mut ports = Vec::new();
        let mut port_names = HashSet::new();
        for (i, p) in raw.ports.into_iter().enumerate() {
            let f = |name: &str| format!("ports[{i}].{name}");
            check_name(f("name"), &p.name)?;
            if !port_names.insert(p.name.clone()) {
                return Err(ConfigError::new(f("name"), format!("port {:?} is defined twice", p.name)));
            }
            if p.device.trim().is_empty() {
                return Err(ConfigError::new(f("device"), "a DPDK device string is needed"));
            }
            let address = p.address.as_deref().map(|t| parse_net4(f("address"), t)).transpose()?;
            let gateway = p.gateway.as_deref().map(|t| parse_v4(f("gateway"), t)).transpose()?;
            if let (Some(gw), Some(net)) = (gateway, address) {
                if !net.contains(&gw) || gw == net.addr() {
                    return Err(ConfigError::new(f("gateway"), format!("{gw} is not another address in {net}")));
                }
            }
            if gateway.is_some() && address.is_none() {
                return Err(ConfigError::new(f("gateway"), "a gateway needs an address on the port"));
            }
            let address6 = p.address6.as_deref().map(|t| parse_net6(f("address6"), t)).transpose()?;
            let gateway6 = p.gateway6.as_deref().map(|t| parse_v6(f("gateway6"), t)).transpose()?;
            if gateway6.is_some() && address6.is_none() {
                return Err(ConfigError::new(f("gateway6"), "an IPv6 gateway needs an IPv6 address on the port"));
            }
            if let Some(v) = p.vlan {
                if v == 0 || v > 4094 {
                    return Err(ConfigError::new(f("vlan"), format!("{v} is not a VLAN id (1-4094)")));
                }
            }
            ports.push(PortConfig {
                name: p.name,
                device: p.device,
                address,
                gateway,
                gateway_mac: p.gateway_mac.as_deref().map(|t| mac(f("gateway_mac"), t)).transpose()?,
                address6,
                gateway6,
                gateway6_mac: p.gateway6_mac.as_deref().map(|t| mac(f("gateway6_mac"), t)).transpose()?,
                mac: p.mac.as_deref().map(|t| mac(f("mac"), t)).transpose()?,
                vlan: p.vlan,
            });
        }

        let mut gre_tunnels = Vec::new();
        let mut tunnel_names = HashSet::new();
        let mut endpoint_pairs = HashSet::new();
        for (i, t) in raw.gre_tunnels.into_iter().enumerate() {
            let f = |name: &str| format!("gre_tunnels[{i}].{name}");
            check_name(f("name"), &t.name)?;
            if !tunnel_names.insert(t.name.clone()) {
                return Err(ConfigError::new(f("name"), format!("tunnel {:?} is defined twice", t.name)));
            }
            let customer_endpoint = parse_v4(f("customer_endpoint"), &t.customer_endpoint)?;
            let anycast_endpoint = parse_v4(f("anycast_endpoint"), &t.anycast_endpoint)?;
            for (name, addr) in [("customer_endpoint", customer_endpoint), ("anycast_endpoint", anycast_endpoint)] {
                if addr.is_unspecified() || addr.is_multicast() || addr.is_broadcast() || addr.is_loopback() {
                    return Err(ConfigError::new(f(name), format!("{addr} cannot be a tunnel endpoint")));
                }
            }
            if !endpoint_pairs.insert((anycast_endpoint, customer_endpoint)) {
                return Err(ConfigError::new(
                    f("customer_endpoint"),
                    format!("another GRE tunnel already joins {anycast_endpoint} and {customer_endpoint}"),
                ));
            }
            let (ttl, mtu, mss) = sizes(&f, t.ttl, t.mtu, t.mss, DEFAULT_GRE_MTU, DEFAULT_GRE_MSS)?;
            let (interface_address, interface_address6) =
                interface_addresses(&f, t.interface_address.as_deref(), t.interface_address6.as_deref())?;
            gre_tunnels.push(GreTunnelConfig {
                name: t.name,
                customer_endpoint,
                anycast_endpoint,
                interface_address,
                interface_address6,
                description: t.description,
                ttl,
                mtu,
                mss,
            });
        }

        let mut ipsec_tunnels = Vec::new();
        let mut inbound_spis = HashSet::new();
        for (i, t) in raw.ipsec_tunnels.into_iter().enumerate() {
            ipsec_tunnels.push(ipsec::tunnel(i, t, &mut tunnel_names, &mut inbound_spis)?);
        }

        let mut routes = Vec::new();
        for (i, r) in raw.routes.into_iter().enumerate() {
            let f = |name: &str| format!("routes[{i}].{name}");
            let prefix: ipnet::IpNet = r.prefix.parse().map_err(|_| {
                ConfigError::new(f("prefix"), format!("{:?} is not a prefix (a.b.c.d/n or x::/n)", r.prefix))
            })?;
            if prefix.trunc() != prefix {
                return Err(ConfigError::new(
                    f("prefix"),
                    format!("{prefix} has host bits set (did you mean {}?)", prefix.trunc()),
                ));
            }
            if !tunnel_names.contains(&r.nexthop) {
                return Err(ConfigError::new(f("nexthop"), format!("no tunnel is named {:?}", r.nexthop)));
            }
            let weight = r.weight.unwrap_or(1);
            if weight == 0 || weight > 255 {
                return Err(ConfigError::new(f("weight"), format!("{weight} is not in 1-255")));
            }
            routes.push(RouteConfig {
                prefix,
                nexthop: r.nexthop,
                priority: r.priority.unwrap_or(100),
                weight,
                description: r.description,
            });
        }
        let ike = ike_config(raw.ike)?;
        Ok(Config { dataplane, ports, gre_tunnels, ipsec_tunnels, routes, ike })
    }

    /// Every IPv4 address of this server: port addresses and anycast endpoints.
    pub fn local_v4(&self) -> Vec<Ipv4Addr> {
        let mut v: Vec<Ipv4Addr> = self.ports.iter().filter_map(|p| p.address.map(|a| a.addr())).collect();
        v.extend(self.gre_tunnels.iter().map(|t| t.anycast_endpoint));
        v.extend(self.ipsec_tunnels.iter().map(|t| t.anycast_endpoint));
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The configuration as JSON for `anygate check`, secrets redacted.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// A tunnel's inside addresses, IPv4 and IPv6, where given.
fn interface_addresses(
    f: &dyn Fn(&str) -> String,
    v4: Option<&str>,
    v6: Option<&str>,
) -> Result<(Option<Ipv4Net>, Option<Ipv6Net>), ConfigError> {
    Ok((
        v4.map(|a| parse_net4(f("interface_address"), a)).transpose()?,
        v6.map(|a| parse_net6(f("interface_address6"), a)).transpose()?,
    ))
}

/// A tunnel's TTL, MTU and MSS, defaults filled in and checked.
fn sizes(
    f: &dyn Fn(&str) -> String,
    ttl: Option<u8>,
    mtu: Option<u16>,
    mss: Option<u16>,
    default_mtu: u16,
    default_mss: u16,
) -> Result<(u8, u16, u16), ConfigError> {
    let mtu = mtu.unwrap_or(default_mtu);
    if mtu < MIN_MTU {
        return Err(ConfigError::new(f("mtu"), format!("{mtu} is under the minimum {MIN_MTU}")));
    }
    if mtu > 9000 {
        return Err(ConfigError::new(f("mtu"), format!("{mtu} is over the maximum 9000")));
    }
    // The default MSS follows a smaller MTU down (MTU less 40 bytes of IPv4 and TCP headers).
    let mss = mss.unwrap_or(default_mss.min(mtu - 40));
    if mss != 0 && (mss < 536 || mss > mtu - 40) {
        return Err(ConfigError::new(f("mss"), format!("{mss} must be 0 (off) or 536 to {} (mtu - 40)", mtu - 40)));
    }
    let ttl = ttl.unwrap_or(DEFAULT_TTL);
    if ttl == 0 {
        return Err(ConfigError::new(f("ttl"), "0 would drop every packet at the first hop"));
    }
    Ok((ttl, mtu, mss))
}

fn serialize_mac<S: serde::Serializer>(mac: &Option<[u8; 6]>, s: S) -> Result<S::Ok, S::Error> {
    match mac {
        Some(m) => s.serialize_str(&format_mac(m)),
        None => s.serialize_none(),
    }
}

/// Format a MAC address.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// Whether an address is one a router never forwards to or from.
pub fn is_martian(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => a.is_unspecified() || a.is_loopback() || a.is_multicast() || a.is_broadcast(),
        IpAddr::V6(a) => a.is_unspecified() || a.is_loopback() || a.is_multicast(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const GOOD: &str = r#"
[dataplane]
cores = [1]

[[ports]]
name = "wan"
device = "net_tap0,iface=ag0"
address = "192.0.2.1/24"
gateway = "192.0.2.254"
gateway_mac = "02:00:00:00:00:fe"

[[gre_tunnels]]
name = "site1"
customer_gre_endpoint = "198.51.100.10"
cloudflare_gre_endpoint = "192.0.2.100"
interface_address = "10.212.0.0/31"

[[routes]]
prefix = "10.20.0.0/16"
nexthop = "site1"
priority = 100
"#;

    pub(crate) fn error_of(text: &str) -> ConfigError {
        Config::parse(text).expect_err("must be refused")
    }

    #[test]
    fn a_good_file_gets_its_defaults() {
        let c = Config::parse(GOOD).unwrap();
        let t = &c.gre_tunnels[0];
        assert_eq!(t.customer_endpoint, Ipv4Addr::new(198, 51, 100, 10));
        assert_eq!(t.anycast_endpoint, Ipv4Addr::new(192, 0, 2, 100));
        assert_eq!((t.ttl, t.mtu, t.mss), (64, 1476, 1436));
        assert_eq!(c.ports[0].gateway_mac, Some([2, 0, 0, 0, 0, 0xfe]));
        assert_eq!(c.routes[0].weight, 1);
        assert_eq!(c.local_v4(), vec![Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 100)]);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (GOOD.replace("\"198.51.100.10\"", "\"198.51.100\""), "gre_tunnels[0].customer_endpoint"),
            (GOOD.replace("name = \"site1\"", "name = \"a-name-far-too-long\""), "gre_tunnels[0].name"),
            (GOOD.replace("interface_address = \"10.212.0.0/31\"", "mtu = 500"), "gre_tunnels[0].mtu"),
            (GOOD.replace("nexthop = \"site1\"", "nexthop = \"site2\""), "routes[0].nexthop"),
            (GOOD.replace("192.0.2.254", "192.0.3.254"), "ports[0].gateway"),
            (GOOD.replace("10.20.0.0/16", "10.20.0.1/16"), "routes[0].prefix"),
            (GOOD.replace("02:00:00:00:00:fe", "02:00:00:00:fe"), "ports[0].gateway_mac"),
            (GOOD.replace("cores = [1]", "cores = [0]"), "dataplane.cores[0]"),
            (GOOD.replace("interface_address = \"10.212.0.0/31\"", "mss = 1500"), "gre_tunnels[0].mss"),
        ];
        for (text, field) in cases {
            assert_eq!(error_of(&text).field, field, "{text}");
        }
    }

    #[test]
    fn duplicate_tunnel_names_are_refused() {
        let twice = format!(
            "{GOOD}\n[[gre_tunnels]]\nname = \"site1\"\ncustomer_endpoint = \"198.51.100.11\"\nanycast_endpoint = \"192.0.2.100\"\n"
        );
        let e = error_of(&twice);
        assert_eq!(e.field, "gre_tunnels[1].name");
        assert!(e.message.contains("defined twice"), "{e}");
    }

    #[test]
    fn unknown_fields_and_bad_toml_are_refused_with_a_line() {
        let e = error_of(&GOOD.replace("priority = 100", "priorty = 100"));
        assert!(e.message.contains("priorty"), "{e}");
        assert!(e.message.contains("line"), "{e}");
    }

    #[test]
    fn the_node_id_fits_an_spi() {
        assert_eq!(error_of(&GOOD.replace("cores = [1]", "cores = [1]\nnode_id = 256")).field, "dataplane.node_id");
        assert_eq!(
            Config::parse(&GOOD.replace("cores = [1]", "cores = [1]\nnode_id = 255")).unwrap().dataplane.node_id,
            255
        );
    }

    #[test]
    fn mac_parsing() {
        assert_eq!(parse_mac("02:00:5e:10:00:01"), Some([2, 0, 0x5e, 0x10, 0, 1]));
        assert_eq!(parse_mac("02:00:5e:10:00"), None);
        assert_eq!(parse_mac("02:00:5e:10:00:01:02"), None);
        assert_eq!(parse_mac("zz:00:5e:10:00:01"), None);
        assert_eq!(format_mac(&[2, 0, 0x5e, 0x10, 0, 1]), "02:00:5e:10:00:01");
    }
}
