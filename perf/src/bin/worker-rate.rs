//! One throughput measurement of the real worker: the configuration's ports (a `net_pcap` source
//! with `infinite_rx=1` and a `net_null` sink), one worker on one core, the slow path on the main
//! core. After a warm-up it reads the ports' counters twice, a window apart, and prints one JSON
//! line: the sink's TX rate and what the pipeline counted, so that a run that dropped or punted is
//! seen as such. The configuration's static SAs are installed before the window, as `anygate run`
//! installs them.
//!
//! usage: worker-rate --config FILE [--core N] [--warmup SECONDS] [--window SECONDS]

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anygate::config::Config;
use anygate::dataplane::{Dataplane, Pipeline};
use anygate::esp::sink::{static_specs, sync_static, SaState};
use anygate::esp::RingSaSink;
use anygate::slowpath::SlowPath;
use clap::Parser;
use serde_json::json;

#[derive(Parser, Debug)]
struct Args {
    #[arg(long)]
    config: PathBuf,
    /// The worker's core (the main core runs the slow path and the clock).
    #[arg(long, default_value_t = 1)]
    core: u32,
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    #[arg(long, default_value_t = 3.0)]
    window: f64,
}

fn main() -> Result<(), String> {
    let args = Args::parse();
    let config = Config::load(&args.config).map_err(|e| e.to_string())?;
    let lcores = format!("{},{}", config.dataplane.main_core, args.core);
    let devices: Vec<String> = config.ports.iter().map(|p| p.device.clone()).collect();
    let dp = Dataplane::start(&config, &lcores, &devices, 1, true)?;
    let Pipeline { mut workers, mut handles, mut slow, tables, .. } = dp.pipeline(&config);
    let mut state = SaState::default();
    let mut w = workers.remove(0);
    let sink =
        &mut RingSaSink { handles: &mut handles, tables: &tables, state: &mut state, make_room: &mut || w.finish() };
    let errors = sync_static(sink, &[], &static_specs(&config, config.dataplane.node_id));
    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    // The SAs are filed before the first burst.
    w.finish();
    let stop = Arc::new(AtomicBool::new(false));
    let worker_stop = stop.clone();
    dp.eal
        .launch(args.core, move || {
            while !worker_stop.load(Ordering::Relaxed) {
                w.poll();
            }
            w.finish();
            0
        })
        .map_err(|e| e.to_string())?;
    let sink = dp.ports.len() - 1;

    let poll_for = |slow: &mut SlowPath, handles: &mut Vec<_>, d: Duration| {
        let end = Instant::now() + d;
        while Instant::now() < end {
            slow.poll(handles, dpdk_bindings::tsc());
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    poll_for(&mut slow, &mut handles, Duration::from_secs_f64(args.warmup));
    let (t0, rx0, tx0) = (Instant::now(), dp.ports[0].stats().rx_packets, dp.ports[sink].stats().tx_packets);
    poll_for(&mut slow, &mut handles, Duration::from_secs_f64(args.window));
    let (t1, rx1, tx1) = (Instant::now(), dp.ports[0].stats().rx_packets, dp.ports[sink].stats().tx_packets);
    stop.store(true, Ordering::Relaxed);
    dp.eal.wait(args.core);
    let seconds = (t1 - t0).as_secs_f64();
    let counters = handles[0].counters.read().clone();
    let drops: u64 = counters.drops.iter().sum();
    let punts: u64 = counters.punts.iter().sum();
    println!(
        "{}",
        json!({
            "mpps": (tx1 - tx0) as f64 / seconds / 1e6,
            "rx_mpps": (rx1 - rx0) as f64 / seconds / 1e6,
            "seconds": seconds,
            "rx_packets": counters.rx_packets,
            "tx_packets": counters.tx_packets,
            "drops": drops,
            "punts": punts,
        })
    );
    dp.close();
    Ok(())
}
