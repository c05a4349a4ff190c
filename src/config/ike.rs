//! The `[ike]` section: the identities routers name their tunnels with, flood limits, timers and
//! IKE fragmentation, for the IKEv2 responder.

use serde::{Deserialize, Serialize};

use super::ConfigError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIke {
    account_id: Option<String>,
    domain: Option<String>,
    cookie_threshold: Option<usize>,
    half_open_per_peer: Option<usize>,
    half_open_max: Option<usize>,
    liveness_check_seconds: Option<u64>,
    child_sa_lifetime_seconds: Option<u64>,
    child_sa_rekey_seconds: Option<u64>,
    ike_sa_lifetime_seconds: Option<u64>,
    retransmit_start_ms: Option<u64>,
    fragmentation: Option<bool>,
    fragment_size: Option<usize>,
    max_fragments: Option<u16>,
}

/// What the IKEv2 responder needs besides the tunnels: the names customer routers identify
/// themselves with (`ipsec@<tunnel>.<account_id>.<domain>`, `<tunnel>.<account_id>.<domain>`,
/// `<account_id>_<tunnel>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IkeConfig {
    pub account_id: String,
    pub domain: String,
    /// Half-open IKE SAs from which on IKE_SA_INIT must bring a cookie.
    pub cookie_threshold: usize,
    /// Half-open IKE SAs one address may hold.
    pub half_open_per_peer: usize,
    /// Half-open IKE SAs in total.
    pub half_open_max: usize,
    /// Seconds of silence from a peer before its liveness is checked; 0: never.
    pub liveness_check_seconds: u64,
    /// Hard lifetimes, in seconds: past them an SA is deleted and the peer told.
    pub child_sa_lifetime_seconds: u64,
    pub ike_sa_lifetime_seconds: u64,
    /// When we rekey a Child SA ourselves (its soft lifetime, less up to a tenth at random), in
    /// seconds; 0: never. Default: 90% of the hard lifetime.
    pub child_sa_rekey_seconds: u64,
    /// The wait before our first retransmission of a request of ours; each next one waits twice
    /// as long, and a peer that answers none of the five is taken for gone.
    pub retransmit_start_ms: u64,
    /// IKE fragmentation (RFC 7383) offered and accepted.
    pub fragmentation: bool,
    /// The largest IP datagram of one of our IKE fragments.
    pub fragment_size: usize,
    /// The most fragments a peer's message may come in.
    pub max_fragments: u16,
}

/// The shortest soft lifetime of a Child SA: rekeys more often than this do nothing for security
/// and cost a key exchange each.
pub const MIN_REKEY_SECONDS: u64 = 5;

/// The largest IKE fragment datagram: a jumbo frame.
pub const MAX_IKE_FRAGMENT_SIZE: usize = 9000;
/// The most fragments a peer's message may be allowed: enough for the largest post-quantum key
/// exchanges at the smallest fragment size, not so many that reassembly costs a lot.
pub const MAX_IKE_FRAGMENTS: u16 = 1024;

/// The account a configuration without `[ike]` identifies its tunnels under.
pub const DEFAULT_ACCOUNT_ID: &str = "default";
/// The domain of IKE identities when none is configured (`.invalid` never resolves: RFC 2606).
pub const DEFAULT_IKE_DOMAIN: &str = "ipsec.anygate.invalid";

/// The `[ike]` section, defaults filled in. The account ID and the domain become parts of the
/// identities routers send, so they hold only what a DNS label and a KEY_ID can.
pub(super) fn ike_config(raw: RawIke) -> Result<IkeConfig, ConfigError> {
    let account_id = raw.account_id.unwrap_or_else(|| DEFAULT_ACCOUNT_ID.into());
    let label = |c: char| c.is_ascii_alphanumeric() || c == '-';
    if account_id.is_empty() || account_id.len() > 63 || !account_id.chars().all(label) {
        return Err(ConfigError::new(
            "ike.account_id",
            format!("{account_id:?} must be 1 to 63 letters, digits or '-' (one DNS label)"),
        ));
    }
    let domain = raw.domain.unwrap_or_else(|| DEFAULT_IKE_DOMAIN.into());
    let domain_ok =
        domain.len() <= 200 && domain.split('.').all(|l| !l.is_empty() && l.len() <= 63 && l.chars().all(label));
    if !domain_ok {
        return Err(ConfigError::new("ike.domain", format!("{domain:?} is not a domain name (labels joined by '.')")));
    }
    let defaults = ike_agent::policy::HalfOpenLimits::default();
    let half_open_max = raw.half_open_max.unwrap_or(defaults.total);
    let cookie_threshold = raw.cookie_threshold.unwrap_or(defaults.cookie_threshold);
    let half_open_per_peer = raw.half_open_per_peer.unwrap_or(defaults.per_peer);
    if half_open_max == 0 || half_open_per_peer == 0 {
        return Err(ConfigError::new("ike.half_open_max", "half_open_max and half_open_per_peer must be at least 1"));
    }
    if cookie_threshold > half_open_max {
        return Err(ConfigError::new(
            "ike.cookie_threshold",
            format!("{cookie_threshold} is above half_open_max {half_open_max}: cookies would never be asked for"),
        ));
    }
    let timers = ike_agent::policy::Timers::default();
    let liveness_check_seconds =
        raw.liveness_check_seconds.unwrap_or_else(|| timers.liveness_after.map_or(0, |d| d.as_secs()));
    let child_sa_lifetime_seconds = raw.child_sa_lifetime_seconds.unwrap_or(timers.child_sa_lifetime.as_secs());
    let ike_sa_lifetime_seconds = raw.ike_sa_lifetime_seconds.unwrap_or(timers.ike_sa_lifetime.as_secs());
    // Shorter than a few minutes, a lifetime ends SAs faster than routers rekey them.
    for (field, value) in [
        ("ike.child_sa_lifetime_seconds", child_sa_lifetime_seconds),
        ("ike.ike_sa_lifetime_seconds", ike_sa_lifetime_seconds),
    ] {
        if !(60..=7 * 86_400).contains(&value) {
            return Err(ConfigError::new(field, format!("{value} s: a lifetime must be 60 s to 7 days")));
        }
    }
    let child_sa_rekey_seconds = raw.child_sa_rekey_seconds.unwrap_or(child_sa_lifetime_seconds / 10 * 9);
    if child_sa_rekey_seconds != 0 && !(MIN_REKEY_SECONDS..child_sa_lifetime_seconds).contains(&child_sa_rekey_seconds)
    {
        return Err(ConfigError::new(
            "ike.child_sa_rekey_seconds",
            format!(
                "{child_sa_rekey_seconds} s: a rekey must come {MIN_REKEY_SECONDS} s at least after the Child SA is \
                 agreed and before its lifetime of {child_sa_lifetime_seconds} s ends (0: never)"
            ),
        ));
    }
    let retransmit_start_ms = raw.retransmit_start_ms.unwrap_or(timers.retransmits[0].as_millis() as u64);
    if !(100..=10_000).contains(&retransmit_start_ms) {
        return Err(ConfigError::new(
            "ike.retransmit_start_ms",
            format!("{retransmit_start_ms} ms: the first retransmission must wait 100 ms to 10 s"),
        ));
    }
    let fragments = ike_agent::fragment::Fragmentation::default();
    let fragment_size = raw.fragment_size.unwrap_or(fragments.fragment_size);
    let fragment_sizes = ike_agent::fragment::MIN_FRAGMENT_SIZE..=MAX_IKE_FRAGMENT_SIZE;
    if !fragment_sizes.contains(&fragment_size) {
        return Err(ConfigError::new(
            "ike.fragment_size",
            format!(
                "{fragment_size} bytes: an IKE fragment's datagram must be {} to {} bytes",
                fragment_sizes.start(),
                fragment_sizes.end()
            ),
        ));
    }
    let max_fragments = raw.max_fragments.unwrap_or(fragments.max_fragments);
    if !(1..=MAX_IKE_FRAGMENTS).contains(&max_fragments) {
        return Err(ConfigError::new(
            "ike.max_fragments",
            format!("{max_fragments}: a peer's message may come in 1 to {MAX_IKE_FRAGMENTS} fragments"),
        ));
    }
    Ok(IkeConfig {
        account_id,
        domain: domain.to_ascii_lowercase(),
        cookie_threshold,
        half_open_per_peer,
        half_open_max,
        liveness_check_seconds,
        child_sa_lifetime_seconds,
        ike_sa_lifetime_seconds,
        child_sa_rekey_seconds,
        retransmit_start_ms,
        fragmentation: raw.fragmentation.unwrap_or(fragments.enabled),
        fragment_size,
        max_fragments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{error_of, GOOD};
    use crate::config::Config;

    #[test]
    fn ike_identities_timers_and_fragments() {
        let c = Config::parse(GOOD).unwrap();
        assert_eq!((c.ike.account_id.as_str(), c.ike.domain.as_str()), (DEFAULT_ACCOUNT_ID, DEFAULT_IKE_DOMAIN));
        let c = Config::parse(&format!("{GOOD}\n[ike]\naccount_id = \"acct-7\"\ndomain = \"IPsec.Example.NET\"\n"))
            .unwrap();
        assert_eq!((c.ike.account_id.as_str(), c.ike.domain.as_str()), ("acct-7", "ipsec.example.net"));
        for (ike, field) in [
            ("account_id = \"a_b\"", "ike.account_id"),
            ("account_id = \"\"", "ike.account_id"),
            ("domain = \"example..net\"", "ike.domain"),
            ("domain = \"exa mple.net\"", "ike.domain"),
            ("cookie_threshold = 100\nhalf_open_max = 50", "ike.cookie_threshold"),
            ("half_open_per_peer = 0", "ike.half_open_max"),
            ("child_sa_lifetime_seconds = 10", "ike.child_sa_lifetime_seconds"),
            ("ike_sa_lifetime_seconds = 999999999", "ike.ike_sa_lifetime_seconds"),
            ("fragment_size = 100", "ike.fragment_size"),
            ("fragment_size = 65536", "ike.fragment_size"),
            ("max_fragments = 0", "ike.max_fragments"),
            ("retransmit_start_ms = 50", "ike.retransmit_start_ms"),
            ("child_sa_rekey_seconds = 4", "ike.child_sa_rekey_seconds"),
            ("child_sa_lifetime_seconds = 600\nchild_sa_rekey_seconds = 600", "ike.child_sa_rekey_seconds"),
        ] {
            assert_eq!(error_of(&format!("{GOOD}\n[ike]\n{ike}\n")).field, field, "{ike}");
        }
        let c = Config::parse(&format!("{GOOD}\n[ike]\ncookie_threshold = 5\nhalf_open_per_peer = 2\n")).unwrap();
        assert_eq!((c.ike.cookie_threshold, c.ike.half_open_per_peer, c.ike.half_open_max), (5, 2, 8192));
        assert_eq!((c.ike.fragmentation, c.ike.fragment_size, c.ike.max_fragments), (true, 1280, 64));
        assert_eq!(c.ike.retransmit_start_ms, 2000);
        assert_eq!((c.ike.child_sa_lifetime_seconds, c.ike.child_sa_rekey_seconds), (28_800, 25_920), "90%");
        let c = Config::parse(&format!("{GOOD}\n[ike]\nchild_sa_lifetime_seconds = 600\n")).unwrap();
        assert_eq!(c.ike.child_sa_rekey_seconds, 540);
        let c = Config::parse(&format!("{GOOD}\n[ike]\nchild_sa_rekey_seconds = 0\n")).unwrap();
        assert_eq!(c.ike.child_sa_rekey_seconds, 0, "never");
        let c =
            Config::parse(&format!("{GOOD}\n[ike]\nfragmentation = false\nfragment_size = 576\nmax_fragments = 8\n"))
                .unwrap();
        assert_eq!((c.ike.fragmentation, c.ike.fragment_size, c.ike.max_fragments), (false, 576, 8));
    }
}
