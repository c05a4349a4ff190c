//! What the responder is told about its tunnels, and how a peer's identity selects one.
//!
//! A peer names its tunnel in IDi (the product's four ID forms): RFC822
//! `ipsec@<tunnel>.<account>.<domain>`, FQDN `<tunnel>.<account>.<domain>`, KEY_ID
//! `<account>_<tunnel>`, or ID_IPV4_ADDR (its customer endpoint) where the tunnel has one and no
//! other tunnel shares that pair of endpoints. Names compare without regard to ASCII case. The
//! tunnel must also be reached on its own anycast endpoint.

use std::net::Ipv4Addr;

use crate::crypto::prf::SecretBytes;
use crate::wire::{IdType, Identification};

/// One IPsec tunnel, as the responder sees it.
#[derive(Debug, Clone)]
pub struct TunnelPolicy {
    /// The tunnel's ID (the `<tunnel>` of its IKE IDs), also its name in the dataplane.
    pub name: String,
    /// The pre-shared key.
    pub psk: SecretBytes,
    /// The address the peer sends IKE to.
    pub anycast_endpoint: Ipv4Addr,
    /// The peer's address, where it is fixed.
    pub customer_endpoint: Option<Ipv4Addr>,
    /// Whether a Child SA may use NULL encryption.
    pub allow_null_cipher: bool,
}

/// Bounds on IKE SAs that have not authenticated yet: what a flood of IKE_SA_INIT from strangers
/// may cost (RFC 7296 2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HalfOpenLimits {
    /// Half-open IKE SAs, in total, from which on an IKE_SA_INIT must bring a cookie.
    pub cookie_threshold: usize,
    /// Half-open IKE SAs one address may hold; past it, its IKE_SA_INIT is dropped.
    pub per_peer: usize,
    /// Half-open IKE SAs in total; past it, every IKE_SA_INIT is dropped.
    pub total: usize,
}

impl Default for HalfOpenLimits {
    fn default() -> Self {
        Self { cookie_threshold: 64, per_peer: 8, total: 8192 }
    }
}

/// When the responder speaks first: liveness checks toward a silent peer and SA lifetimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// How long an IKE SA may go without a message from its peer before we ask whether it is
    /// alive (an empty INFORMATIONAL request); `None`: never.
    pub liveness_after: Option<std::time::Duration>,
    /// The waits between our request and its retransmissions; after the last one, without an
    /// answer, the peer is taken for gone and its IKE SA and Child SAs end.
    pub retransmits: [std::time::Duration; 5],
    /// The hard lifetime of a Child SA: past it, it is deleted and the peer told.
    pub child_sa_lifetime: std::time::Duration,
    /// When we rekey a Child SA ourselves (its soft lifetime), less up to a tenth at random so
    /// that Child SAs agreed together spread their rekeys; `None`: never. Routers usually rekey
    /// first; this keeps a tunnel up when its router's lifetime is longer than our hard one.
    pub child_sa_rekey_after: Option<std::time::Duration>,
    /// The hard lifetime of an IKE SA: past it, it is deleted with its Child SAs, the peer told.
    pub ike_sa_lifetime: std::time::Duration,
}

impl Default for Timers {
    fn default() -> Self {
        use std::time::Duration;
        Self {
            liveness_after: Some(Duration::from_secs(30)),
            // 2 + 4 + 8 + 16 + 32 s: about a minute before a silent peer is given up.
            retransmits: [2, 4, 8, 16, 32].map(Duration::from_secs),
            child_sa_lifetime: Duration::from_secs(8 * 3600),
            // 90% of the hard lifetime.
            child_sa_rekey_after: Some(Duration::from_secs(8 * 3600 * 9 / 10)),
            ike_sa_lifetime: Duration::from_secs(24 * 3600),
        }
    }
}

/// Everything the responder is configured with.
#[derive(Debug, Clone)]
pub struct ResponderPolicy {
    /// This server's node ID, carried in the top bits of every SPI it allocates.
    pub node_id: u16,
    /// The account the tunnels belong to (the `<account>` of their IKE IDs).
    pub account_id: String,
    /// The domain of RFC822 and FQDN IDs.
    pub domain: String,
    /// The tunnels.
    pub tunnels: Vec<TunnelPolicy>,
    /// Bounds on half-open IKE SAs.
    pub half_open: HalfOpenLimits,
    /// Liveness checks and lifetimes.
    pub timers: Timers,
    /// IKE fragmentation (RFC 7383).
    pub fragmentation: crate::fragment::Fragmentation,
}

impl ResponderPolicy {
    /// The tunnel that `id` names, reached on `local`; `None` for an unknown or ambiguous ID.
    pub fn tunnel_for(&self, id: &Identification, local: Ipv4Addr) -> Option<usize> {
        let text = || std::str::from_utf8(&id.data).ok().map(str::to_ascii_lowercase);
        let name = match id.id_type {
            IdType::RFC822_ADDR => {
                let text = text()?;
                let fqdn = text.strip_prefix("ipsec@")?;
                self.tunnel_from_fqdn(fqdn)?
            }
            IdType::FQDN => self.tunnel_from_fqdn(&text()?)?,
            IdType::KEY_ID => {
                let text = text()?;
                let prefix = format!("{}_", self.account_id.to_ascii_lowercase());
                text.strip_prefix(&prefix)?.to_string()
            }
            IdType::IPV4_ADDR => {
                let address = Ipv4Addr::from(<[u8; 4]>::try_from(id.data.as_slice()).ok()?);
                let mut matching = self
                    .tunnels
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| t.anycast_endpoint == local && t.customer_endpoint == Some(address));
                let (index, _) = matching.next()?;
                return matching.next().is_none().then_some(index);
            }
            _ => return None,
        };
        self.tunnels.iter().position(|t| t.name.eq_ignore_ascii_case(&name) && t.anycast_endpoint == local)
    }

    /// `<tunnel>` from `<tunnel>.<account>.<domain>` (already lower case).
    fn tunnel_from_fqdn(&self, fqdn: &str) -> Option<String> {
        let suffix = format!(".{}.{}", self.account_id, self.domain).to_ascii_lowercase();
        let tunnel = fqdn.strip_suffix(&suffix)?;
        (!tunnel.is_empty() && !tunnel.contains('.')).then(|| tunnel.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tunnel(name: &str, anycast: [u8; 4], customer: Option<[u8; 4]>) -> TunnelPolicy {
        TunnelPolicy {
            name: name.into(),
            psk: zeroize::Zeroizing::new(b"psk".to_vec()),
            anycast_endpoint: anycast.into(),
            customer_endpoint: customer.map(Ipv4Addr::from),
            allow_null_cipher: false,
        }
    }

    fn policy() -> ResponderPolicy {
        ResponderPolicy {
            node_id: 0,
            account_id: "acct42".into(),
            domain: "ipsec.example.net".into(),
            tunnels: vec![
                tunnel("paris", [192, 0, 2, 10], Some([198, 51, 100, 1])),
                tunnel("lyon", [192, 0, 2, 10], Some([198, 51, 100, 2])),
                tunnel("nice", [192, 0, 2, 10], Some([198, 51, 100, 2])),
                tunnel("brest", [192, 0, 2, 20], None),
            ],
            half_open: HalfOpenLimits::default(),
            timers: Timers::default(),
            fragmentation: crate::fragment::Fragmentation::default(),
        }
    }

    fn id(id_type: IdType, data: &[u8]) -> Identification {
        Identification::new(id_type, data.to_vec())
    }

    #[test]
    fn each_id_form_selects_its_tunnel() {
        let p = policy();
        let local = Ipv4Addr::new(192, 0, 2, 10);
        let cases: &[(IdType, &[u8], Option<usize>)] = &[
            (IdType::RFC822_ADDR, b"ipsec@paris.acct42.ipsec.example.net", Some(0)),
            (IdType::RFC822_ADDR, b"IPSEC@Lyon.ACCT42.ipsec.example.NET", Some(1)),
            (IdType::FQDN, b"nice.acct42.ipsec.example.net", Some(2)),
            (IdType::KEY_ID, b"acct42_paris", Some(0)),
            (IdType::IPV4_ADDR, &[198, 51, 100, 1], Some(0)),
            // lyon and nice share the endpoint pair: their IPv4 ID names neither.
            (IdType::IPV4_ADDR, &[198, 51, 100, 2], None),
            (IdType::IPV4_ADDR, &[198, 51, 100, 9], None),
            (IdType::RFC822_ADDR, b"paris.acct42.ipsec.example.net", None),
            (IdType::RFC822_ADDR, b"ipsec@paris.other.ipsec.example.net", None),
            (IdType::FQDN, b"x.paris.acct42.ipsec.example.net", None),
            (IdType::FQDN, b"acct42.ipsec.example.net", None),
            (IdType::KEY_ID, b"other_paris", None),
            (IdType::KEY_ID, b"acct42_unknown", None),
            (IdType::DER_ASN1_DN, b"CN=paris", None),
            (IdType::FQDN, &[0xff, 0xfe], None),
            // brest is on another anycast endpoint.
            (IdType::FQDN, b"brest.acct42.ipsec.example.net", None),
        ];
        for (id_type, data, expected) in cases {
            assert_eq!(p.tunnel_for(&id(*id_type, data), local), *expected, "{id_type:?} {data:?}");
        }
        assert_eq!(p.tunnel_for(&id(IdType::FQDN, b"brest.acct42.ipsec.example.net"), [192, 0, 2, 20].into()), Some(3));
    }
}
