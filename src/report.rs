//! Counters as JSON, and the live per-tunnel view on the terminal.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use crate::esp::sa::{SaCounters, SaReport};
use crate::pipeline::{Counters, DropReason, PuntReason};
use crate::slowpath::SlowPathCounters;

/// Each worker's share of the traffic, for the JSON counters (how evenly RSS spreads the load).
pub fn workers_json(workers: &[Counters]) -> Value {
    json!(workers.iter().map(|w| json!({"rx_packets": w.rx_packets, "tx_packets": w.tx_packets})).collect::<Vec<_>>())
}

/// All counters as one JSON object: totals, drops and punts by reason, per tunnel by name.
pub fn counters_json(c: &Counters, tunnel_names: &[(u32, String)], slow: &SlowPathCounters) -> Value {
    let drops: Map<String, Value> =
        DropReason::ALL.iter().map(|r| (r.name().to_string(), json!(c.drops[r.index()]))).collect();
    let punts: Map<String, Value> =
        PuntReason::ALL.iter().map(|r| (r.name().to_string(), json!(c.punts[r.index()]))).collect();
    let mut tunnels = Map::new();
    let by_slot = sas_by_slot(c);
    for (slot, name) in tunnel_names {
        let t = c.tunnels.get(*slot as usize).copied().unwrap_or_default();
        let sas: Vec<Value> = by_slot
            .get(slot)
            .into_iter()
            .flatten()
            .map(|s| {
                json!({
                    "spi": format!("{:#010x}", s.spi),
                    "direction": s.direction,
                    "packets": s.counters.packets,
                    "bytes": s.counters.bytes,
                    "drops": s.counters.drops,
                })
            })
            .collect();
        tunnels.insert(
            name.clone(),
            json!({
                "ingress_packets": t.ingress_packets,
                "ingress_bytes": t.ingress_bytes,
                "egress_packets": t.egress_packets,
                "egress_bytes": t.egress_bytes,
                "drops": t.drops,
                "sas": sas,
            }),
        );
    }
    json!({
        "rx_packets": c.rx_packets,
        "rx_bytes": c.rx_bytes,
        "tx_packets": c.tx_packets,
        "tx_bytes": c.tx_bytes,
        "icmp_errors": c.icmp_errors,
        "fragments": c.fragments,
        "drops": drops,
        "punts": punts,
        "tunnels": tunnels,
        "slow_path": slow,
    })
}

/// One screen of live figures: per tunnel packets/s and bits/s each way, then drops by reason,
/// from two samples `seconds` apart.
pub fn live_view(now: &Counters, before: &Counters, seconds: f64, tunnel_names: &[(u32, String)]) -> String {
    let rate = |a: u64, b: u64| (a.saturating_sub(b)) as f64 / seconds.max(1e-9);
    let mut out = format!(
        "{:<16} {:>12} {:>12} {:>12} {:>12} {:>10}\n",
        "tunnel", "in pkt/s", "in bit/s", "out pkt/s", "out bit/s", "drops"
    );
    let now_by_slot = sas_by_slot(now);
    let before_by_key: HashMap<_, SaCounters> = before.sas.iter().map(|b| (b.key(), b.counters)).collect();
    for (slot, name) in tunnel_names {
        let n = now.tunnels.get(*slot as usize).copied().unwrap_or_default();
        let b = before.tunnels.get(*slot as usize).copied().unwrap_or_default();
        out.push_str(&format!(
            "{:<16} {:>12.0} {:>12} {:>12.0} {:>12} {:>10}\n",
            name,
            rate(n.ingress_packets, b.ingress_packets),
            human_bits(8.0 * rate(n.ingress_bytes, b.ingress_bytes)),
            rate(n.egress_packets, b.egress_packets),
            human_bits(8.0 * rate(n.egress_bytes, b.egress_bytes)),
            n.drops,
        ));
        for sa in now_by_slot.get(slot).into_iter().flatten() {
            let was = before_by_key.get(&sa.key()).copied().unwrap_or_default();
            let (pps, bps) =
                (rate(sa.counters.packets, was.packets), human_bits(8.0 * rate(sa.counters.bytes, was.bytes)));
            let spi = format!("  sa {:08x}", sa.spi);
            let (in_p, in_b, out_p, out_b) = match sa.direction {
                crate::config::SaDirection::Inbound => (format!("{pps:.0}"), bps, String::new(), String::new()),
                crate::config::SaDirection::Outbound => (String::new(), String::new(), format!("{pps:.0}"), bps),
            };
            out.push_str(&format!(
                "{spi:<16} {in_p:>12} {in_b:>12} {out_p:>12} {out_b:>12} {:>10}\n",
                sa.counters.drops
            ));
        }
    }
    let drops: Vec<String> = DropReason::ALL
        .iter()
        .filter(|r| now.drops[r.index()] > 0)
        .map(|r| format!("{}={}", r.name(), now.drops[r.index()]))
        .collect();
    out.push_str(&format!(
        "total rx {:.0} pkt/s tx {:.0} pkt/s; drops: {}\n",
        rate(now.rx_packets, before.rx_packets),
        rate(now.tx_packets, before.tx_packets),
        if drops.is_empty() { "none".to_string() } else { drops.join(" ") }
    ));
    out
}

fn human_bits(bps: f64) -> String {
    match bps {
        b if b >= 1e9 => format!("{:.2}G", b / 1e9),
        b if b >= 1e6 => format!("{:.2}M", b / 1e6),
        b if b >= 1e3 => format!("{:.1}k", b / 1e3),
        b => format!("{b:.0}"),
    }
}

/// The SA reports grouped by tunnel counter slot: indexed once, as a server may carry 100 000 SAs.
fn sas_by_slot(c: &Counters) -> HashMap<u32, Vec<&SaReport>> {
    let mut by_slot: HashMap<u32, Vec<&SaReport>> = HashMap::new();
    for sa in c.sas.iter() {
        by_slot.entry(sa.tunnel_slot).or_default().push(sa);
    }
    by_slot
}
