//! IPsec tunnels in the configuration: `[[ipsec_tunnels]]` and their manually keyed
//! `[[ipsec_tunnels.static_sas]]`.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

use super::{
    check_name, interface_addresses, is_martian, parse_v4, sizes, ConfigError, DEFAULT_IPSEC_MSS, DEFAULT_IPSEC_MTU,
    MAX_SAS_PER_TUNNEL,
};
use crate::esp::Transform;
use crate::secret::Secret;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIpsecTunnel {
    name: String,
    customer_endpoint: Option<String>,
    #[serde(alias = "cloudflare_endpoint")]
    anycast_endpoint: String,
    interface_address: Option<String>,
    interface_address6: Option<String>,
    description: Option<String>,
    psk: Option<String>,
    #[serde(default)]
    replay_protection: bool,
    #[serde(default)]
    allow_null_cipher: bool,
    ttl: Option<u8>,
    mtu: Option<u16>,
    mss: Option<u16>,
    #[serde(default)]
    static_sas: Vec<RawStaticSa>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStaticSa {
    spi: u32,
    direction: String,
    transform: String,
    encryption_key: Option<String>,
    integrity_key: Option<String>,
    #[serde(default)]
    esn: bool,
    #[serde(default)]
    udp_encapsulation: bool,
    remote_port: Option<u16>,
    local_ts: Option<Vec<String>>,
    remote_ts: Option<Vec<String>>,
}

/// One IPsec tunnel: its SAs come from the IKEv2 responder (keyed with `psk`) or, for manual
/// keying, from `static_sas`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IpsecTunnelConfig {
    pub name: String,
    /// The customer router's address, where known in advance (needed by outbound static SAs).
    pub customer_endpoint: Option<Ipv4Addr>,
    pub anycast_endpoint: Ipv4Addr,
    pub interface_address: Option<Ipv4Net>,
    pub interface_address6: Option<Ipv6Net>,
    pub description: Option<String>,
    pub psk: Option<Secret>,
    /// A 64-packet anti-replay window on inbound SAs (off by default: every server of an anycast
    /// fleet sees only part of a tunnel's packets).
    pub replay_protection: bool,
    /// Whether SAs with NULL encryption are accepted.
    pub allow_null_cipher: bool,
    pub ttl: u8,
    pub mtu: u16,
    pub mss: u16,
    pub static_sas: Vec<StaticSaConfig>,
}

/// Which way an SA carries packets, seen from this server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SaDirection {
    /// From the customer router to us: we decrypt.
    Inbound,
    /// From us to the customer router: we encrypt.
    Outbound,
}

/// A manually keyed SA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaticSaConfig {
    pub spi: u32,
    pub direction: SaDirection,
    pub transform: Transform,
    pub encryption_key: Secret,
    pub integrity_key: Secret,
    /// ESP in UDP (RFC 3948) on port 4500, to `remote_port` of the customer endpoint.
    pub udp_encapsulation: bool,
    pub remote_port: u16,
    /// The traffic selectors on our side and on the customer's.
    pub local_ts: Vec<IpNet>,
    pub remote_ts: Vec<IpNet>,
}

/// Check one `[[ipsec_tunnels]]` entry (number `i`); its name joins `tunnel_names`, its inbound
/// SPIs `inbound_spis`.
pub(super) fn tunnel(
    i: usize,
    t: RawIpsecTunnel,
    tunnel_names: &mut HashSet<String>,
    inbound_spis: &mut HashSet<(Ipv4Addr, u32)>,
) -> Result<IpsecTunnelConfig, ConfigError> {
    let f = |name: &str| format!("ipsec_tunnels[{i}].{name}");
    check_name(f("name"), &t.name)?;
    if !tunnel_names.insert(t.name.clone()) {
        return Err(ConfigError::new(f("name"), format!("tunnel {:?} is defined twice", t.name)));
    }
    let anycast_endpoint = parse_v4(f("anycast_endpoint"), &t.anycast_endpoint)?;
    let customer_endpoint = t.customer_endpoint.as_deref().map(|a| parse_v4(f("customer_endpoint"), a)).transpose()?;
    for (name, addr) in [("anycast_endpoint", Some(anycast_endpoint)), ("customer_endpoint", customer_endpoint)] {
        if let Some(a) = addr.filter(|a| is_martian(IpAddr::V4(*a))) {
            return Err(ConfigError::new(f(name), format!("{a} cannot be a tunnel endpoint")));
        }
    }
    let (ttl, mtu, mss) = sizes(&f, t.ttl, t.mtu, t.mss, DEFAULT_IPSEC_MTU, DEFAULT_IPSEC_MSS)?;
    let (interface_address, interface_address6) =
        interface_addresses(&f, t.interface_address.as_deref(), t.interface_address6.as_deref())?;
    let psk = t.psk.map(|p| Secret::new(p.into_bytes()));
    if psk.as_ref().is_some_and(|p| p.len() < 8) {
        return Err(ConfigError::new(f("psk"), "a pre-shared key needs at least 8 characters"));
    }
    let mut static_sas = Vec::new();
    for (j, sa) in t.static_sas.into_iter().enumerate() {
        let g = |name: &str| format!("ipsec_tunnels[{i}].static_sas[{j}].{name}");
        let sa = static_sa(&g, sa, t.allow_null_cipher)?;
        if sa.direction == SaDirection::Inbound && !inbound_spis.insert((anycast_endpoint, sa.spi)) {
            return Err(ConfigError::new(
                g("spi"),
                format!("inbound SPI {:#x} is used twice on {anycast_endpoint}", sa.spi),
            ));
        }
        if sa.direction == SaDirection::Outbound && customer_endpoint.is_none() {
            return Err(ConfigError::new(g("direction"), "an outbound static SA needs the tunnel's customer_endpoint"));
        }
        static_sas.push(sa);
    }
    for dir in [SaDirection::Inbound, SaDirection::Outbound] {
        if static_sas.iter().filter(|s| s.direction == dir).count() > MAX_SAS_PER_TUNNEL {
            return Err(ConfigError::new(
                f("static_sas"),
                format!("more than {MAX_SAS_PER_TUNNEL} SAs in one direction"),
            ));
        }
    }
    Ok(IpsecTunnelConfig {
        name: t.name,
        customer_endpoint,
        anycast_endpoint,
        interface_address,
        interface_address6,
        description: t.description,
        psk,
        replay_protection: t.replay_protection,
        allow_null_cipher: t.allow_null_cipher,
        ttl,
        mtu,
        mss,
        static_sas,
    })
}

/// A static SA, checked: its transform, key lengths, SPI, selectors.
fn static_sa(f: &dyn Fn(&str) -> String, sa: RawStaticSa, allow_null: bool) -> Result<StaticSaConfig, ConfigError> {
    // 0 never goes on the wire (RFC 4303 2.1); 1-255 are reserved for IANA's future use but
    // accepted for manual keying, as other implementations do.
    if sa.spi == 0 {
        return Err(ConfigError::new(f("spi"), "0 is not a valid SPI"));
    }
    let direction = match sa.direction.as_str() {
        "inbound" | "in" => SaDirection::Inbound,
        "outbound" | "out" => SaDirection::Outbound,
        other => {
            return Err(ConfigError::new(f("direction"), format!("{other:?} is neither \"inbound\" nor \"outbound\"")))
        }
    };
    if sa.esn {
        return Err(ConfigError::new(f("esn"), "extended sequence numbers are not supported"));
    }
    let transform: Transform = sa.transform.parse().map_err(|e: String| ConfigError::new(f("transform"), e))?;
    if transform.is_null() && !allow_null {
        return Err(ConfigError::new(
            f("transform"),
            format!("{transform} has no encryption; the tunnel must set allow_null_cipher = true"),
        ));
    }
    let key = |name: &str, text: Option<String>, want: usize| -> Result<Secret, ConfigError> {
        let secret = match text {
            Some(t) => {
                Secret::from_hex(&t).map_err(|e| ConfigError::new(f(name), format!("not a hexadecimal key: {e}")))?
            }
            None => Secret::new(Vec::new()),
        };
        if secret.len() != want {
            return Err(ConfigError::new(
                f(name),
                format!("{transform} needs {want} bytes here, {} given", secret.len()),
            ));
        }
        Ok(secret)
    };
    let encryption_key = key("encryption_key", sa.encryption_key, transform.encryption_key_len())?;
    let integrity_key = key("integrity_key", sa.integrity_key, transform.integrity_key_len())?;
    let selectors = |name: &str, list: Option<Vec<String>>| -> Result<Vec<IpNet>, ConfigError> {
        let Some(list) = list else {
            return Ok(vec![IpNet::V4(Ipv4Net::default()), IpNet::V6(Ipv6Net::default())]);
        };
        if list.is_empty() {
            return Err(ConfigError::new(f(name), "at least one prefix is needed"));
        }
        list.iter()
            .map(|t| {
                t.parse::<IpNet>()
                    .map(|n| n.trunc())
                    .map_err(|_| ConfigError::new(f(name), format!("{t:?} is not a prefix")))
            })
            .collect()
    };
    Ok(StaticSaConfig {
        spi: sa.spi,
        direction,
        transform,
        encryption_key,
        integrity_key,
        udp_encapsulation: sa.udp_encapsulation,
        remote_port: sa.remote_port.unwrap_or(4500),
        local_ts: selectors("local_ts", sa.local_ts)?,
        remote_ts: selectors("remote_ts", sa.remote_ts)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{error_of, GOOD};
    use crate::config::Config;

    const IPSEC: &str = r#"
[[ipsec_tunnels]]
name = "ipsec1"
customer_endpoint = "198.51.100.20"
anycast_endpoint = "192.0.2.100"
psk = "correct horse battery"

[[ipsec_tunnels.static_sas]]
spi = 0x1000
direction = "inbound"
transform = "aes128gcm16"
encryption_key = "000102030405060708090a0b0c0d0e0f10111213"

[[ipsec_tunnels.static_sas]]
spi = 0x2000
direction = "outbound"
transform = "aes256-sha256"
encryption_key = "000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f"
integrity_key = "000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f"
remote_ts = ["10.40.0.0/16"]
"#;

    #[test]
    fn ipsec_tunnels_get_their_defaults_and_keys_stay_hidden() {
        let c = Config::parse(&format!("{GOOD}{IPSEC}")).unwrap();
        let t = &c.ipsec_tunnels[0];
        assert_eq!((t.ttl, t.mtu, t.mss, t.replay_protection, t.allow_null_cipher), (64, 1400, 1360, false, false));
        assert_eq!(t.static_sas.len(), 2);
        assert_eq!(t.static_sas[0].encryption_key.len(), 20);
        assert_eq!(t.static_sas[1].remote_ts, vec!["10.40.0.0/16".parse::<IpNet>().unwrap()]);
        assert_eq!(t.static_sas[0].local_ts.len(), 2, "0.0.0.0/0 and ::/0 by default");
        assert!(c.local_v4().contains(&Ipv4Addr::new(192, 0, 2, 100)));
        let shown = c.to_json().to_string();
        assert!(!shown.contains("0405060708") && !shown.contains("horse"), "{shown}");
        assert!(!format!("{c:?}").contains("horse"));
    }

    #[test]
    fn ipsec_errors_name_the_field() {
        let base = format!("{GOOD}{IPSEC}");
        let cases = [
            (base.replace("aes128gcm16", "aes128gcm16-esn"), "ipsec_tunnels[0].static_sas[0].transform"),
            (base.replace("aes128gcm16", "null-sha256"), "ipsec_tunnels[0].static_sas[0].transform"),
            (base.replace("0e0f10111213", "0e0f1011"), "ipsec_tunnels[0].static_sas[0].encryption_key"),
            (base.replace("spi = 0x1000", "spi = 0"), "ipsec_tunnels[0].static_sas[0].spi"),
            (base.replace("\"outbound\"", "\"sideways\""), "ipsec_tunnels[0].static_sas[1].direction"),
            (base.replace("customer_endpoint = \"198.51.100.20\"\n", ""), "ipsec_tunnels[0].static_sas[1].direction"),
            (base.replace("psk = \"correct horse battery\"", "psk = \"short\""), "ipsec_tunnels[0].psk"),
            (base.replace("10.40.0.0/16", "10.40.0.0/33"), "ipsec_tunnels[0].static_sas[1].remote_ts"),
            (base.replace("name = \"ipsec1\"", "name = \"site1\""), "ipsec_tunnels[0].name"),
            (format!("{base}\n[[ipsec_tunnels.static_sas]]\nspi = 0x1000\ndirection = \"in\"\ntransform = \"aes128gcm16\"\nencryption_key = \"000102030405060708090a0b0c0d0e0f10111213\"\n"), "ipsec_tunnels[0].static_sas[2].spi"),
        ];
        for (text, field) in cases {
            let e = error_of(&text);
            assert_eq!(e.field, field, "{e}");
            assert!(!e.message.contains("0405060708") && !e.message.contains("horse"), "{e}");
        }
        let e = error_of(&base.replace("transform = \"aes128gcm16\"", "transform = \"aes128gcm16\"\nesn = true"));
        assert_eq!(e.field, "ipsec_tunnels[0].static_sas[0].esn");
        let null_ok = base.replace("aes128gcm16", "null-sha1").replace(
            "encryption_key = \"000102030405060708090a0b0c0d0e0f10111213\"",
            "integrity_key = \"000102030405060708090a0b0c0d0e0f10111213\"",
        );
        assert!(Config::parse(&null_ok.replace("psk =", "allow_null_cipher = true\npsk =")).is_ok());
    }
}
