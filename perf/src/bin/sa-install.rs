//! How long an SA takes to become active on every worker: the time from the SA seam's `add`
//! (compiled once per worker, pushed through each worker's update ring) until every worker has
//! filed it between two bursts and said so (its published count of applied SA changes), while
//! the workers carry the configuration's traffic (a `net_pcap` source with `infinite_rx=1`).
//! Prints the latency percentiles (hdrhistogram) of adds and of deletes as one JSON line.
//!
//! usage: sa-install --config FILE [--count N] [--workers N]

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anygate::config::{Config, SaDirection};
use anygate::dataplane::{Dataplane, Pipeline};
use anygate::esp::sink::{static_specs, sync_static, SaState};
use anygate::esp::{RingSaSink, SaSink, SaSpec};
use anygate::secret::Secret;
use anygate::worker::WorkerHandle;
use clap::Parser;
use hdrhistogram::Histogram;
use serde_json::json;

#[derive(Parser, Debug)]
struct Args {
    #[arg(long)]
    config: PathBuf,
    /// SAs added (and deleted) one after another.
    #[arg(long, default_value_t = 2000)]
    count: u32,
    /// Workers, each on its own lcore after the main one (EAL --lcores maps them onto CPUs).
    #[arg(long, default_value_t = 1)]
    workers: u16,
}

/// Wait until every worker has applied `want` SA changes; false after a second.
fn wait_applied(handles: &mut [WorkerHandle], want: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        if handles.iter_mut().all(|h| h.counters.read().sa_updates >= want) {
            return true;
        }
        std::hint::spin_loop();
    }
    false
}

fn percentiles(h: &Histogram<u64>) -> serde_json::Value {
    json!({
        "p50_us": h.value_at_quantile(0.5) as f64 / 1000.0,
        "p99_us": h.value_at_quantile(0.99) as f64 / 1000.0,
        "max_us": h.max() as f64 / 1000.0,
        "count": h.len(),
    })
}

fn main() -> Result<(), String> {
    let args = Args::parse();
    let config = Config::load(&args.config).map_err(|e| e.to_string())?;
    let cores = &config.dataplane.cores;
    let mut lcores = vec![config.dataplane.main_core];
    lcores.extend(cores.iter().take(usize::from(args.workers)));
    let lcore_list = lcores.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",");
    let devices: Vec<String> = config.ports.iter().map(|p| p.device.clone()).collect();
    let dp = Dataplane::start(&config, &lcore_list, &devices, args.workers, true)?;
    let Pipeline { mut workers, mut handles, mut slow, tables, .. } = dp.pipeline(&config);
    let mut state = SaState::default();
    let errors = sync_static(
        &mut RingSaSink {
            handles: &mut handles,
            tables: &tables,
            state: &mut state,
            make_room: &mut || workers.iter_mut().for_each(|w| w.finish()),
        },
        &[],
        &static_specs(&config, 0),
    );
    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    let stop = Arc::new(AtomicBool::new(false));
    for (mut w, lcore) in workers.into_iter().zip(&lcores[1..]) {
        let stop = stop.clone();
        dp.eal
            .launch(*lcore, move || {
                while !stop.load(Ordering::Relaxed) {
                    w.poll();
                }
                w.finish();
                0
            })
            .map_err(|e| e.to_string())?;
    }
    let tunnel = config.ipsec_tunnels.first().ok_or("the configuration needs an IPsec tunnel")?;
    let mut applied = static_specs(&config, 0).len() as u64;
    if !wait_applied(&mut handles, applied) {
        return Err("the static SAs were not applied".into());
    }
    // Traffic runs a moment first, so that the workers are in their steady loop.
    std::thread::sleep(Duration::from_millis(500));

    let mut adds = Histogram::<u64>::new(3).map_err(|e| e.to_string())?;
    let mut deletes = Histogram::<u64>::new(3).map_err(|e| e.to_string())?;
    let mut late = 0;
    for i in 0..args.count {
        let spec = SaSpec {
            tunnel: tunnel.name.clone(),
            spi: 0x4000_0000 + i,
            direction: SaDirection::Inbound,
            transform: "aes256gcm16".parse().map_err(|e: String| e)?,
            encryption_key: Secret::new(vec![i as u8; 36]),
            integrity_key: Secret::new(Vec::new()),
            local: tunnel.anycast_endpoint,
            remote: tunnel.customer_endpoint.unwrap_or(Ipv4Addr::UNSPECIFIED),
            udp: None,
            local_ts: vec!["0.0.0.0/0".parse().map_err(|_| "ts")?],
            remote_ts: vec!["0.0.0.0/0".parse().map_err(|_| "ts")?],
            replay_protection: false,
            ttl: 64,
            node_id: 0,
        };
        for (histogram, add) in [(&mut adds, true), (&mut deletes, false)] {
            let start = Instant::now();
            let mut sink = RingSaSink {
                handles: &mut handles,
                tables: &tables,
                state: &mut state,
                make_room: &mut std::thread::yield_now,
            };
            let result =
                if add { sink.add(&spec) } else { sink.delete(spec.direction, &spec.tunnel, spec.local, spec.spi) };
            result.map_err(|e| e.to_string())?;
            applied += 1;
            if !wait_applied(&mut handles, applied) {
                late += 1;
            }
            histogram.record(start.elapsed().as_nanos() as u64).map_err(|e| e.to_string())?;
        }
        slow.poll(&mut handles, dpdk_bindings::tsc());
    }
    stop.store(true, Ordering::Relaxed);
    for lcore in &lcores[1..] {
        dp.eal.wait(*lcore);
    }
    let rx: u64 = handles.iter_mut().map(|h| h.counters.read().rx_packets).sum();
    println!(
        "{}",
        json!({"workers": args.workers, "add": percentiles(&adds), "delete": percentiles(&deletes),
               "over_one_second": late, "packets_meanwhile": rx})
    );
    dp.close();
    Ok(())
}
