//! The `anygate` command: run the processor, check a configuration, or feed a capture through the
//! real DPDK pipeline.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anygate::config::Config;
use anygate::dataplane::{Dataplane, Pipeline};
use anygate::esp::sink::{static_specs, sync_static, SaState};
use anygate::esp::RingSaSink;
use anygate::ike::IkeRunner;
use anygate::pipeline::Counters;
use anygate::report;
use anygate::tables::Tables;
use anygate::worker::{Update, WorkerHandle};
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "anygate", version, about = "Anycast GRE and IPsec tunnel endpoint on DPDK")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the processor: workers on their cores, live per-tunnel figures; SIGHUP reloads the
    /// configuration, SIGINT or SIGTERM stop it.
    Run {
        #[arg(long)]
        config: PathBuf,
        /// Seconds between two screens of live figures (0: none).
        #[arg(long, default_value_t = 1)]
        stats_interval: u64,
        /// Write all counters as JSON to this file at every interval.
        #[arg(long)]
        counters: Option<PathBuf>,
        /// Append the IKE event log (one JSON line per event) to this file instead of standard
        /// error.
        #[arg(long)]
        ike_log: Option<PathBuf>,
    },
    /// Validate a configuration and print it as it will be used, defaults filled in.
    Check {
        #[arg(long)]
        config: PathBuf,
    },
    /// Feed a capture through the real DPDK pipeline (net_pcap devices) on one core, write what
    /// the processor sends, and print the counters as JSON once the input is drained.
    Pcap {
        #[arg(long)]
        config: PathBuf,
        /// Frames received on the first port.
        #[arg(long = "in")]
        input: PathBuf,
        /// Frames sent on the first port; other ports write next to it, named OUT.PORT.pcap.
        #[arg(long = "out")]
        output: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { config } => check(&config),
        Command::Run { config, stats_interval, counters, ike_log } => {
            run(&config, stats_interval, counters.as_deref(), ike_log.as_deref())
        }
        Command::Pcap { config, input, output } => pcap(&config, &input, &output),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("anygate: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: &Path) -> Result<Config, String> {
    Config::load(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn check(path: &Path) -> Result<(), String> {
    let config = load(path)?;
    let text = serde_json::to_string_pretty(&config.to_json()).map_err(|e| e.to_string())?;
    // A reader that stops early (`| head`) is not an error.
    let _ = writeln!(std::io::stdout().lock(), "{text}");
    Ok(())
}

/// The latest counters of each worker.
fn per_worker(handles: &mut [WorkerHandle]) -> Vec<Counters> {
    handles.iter_mut().map(|h| h.counters.read().clone()).collect()
}

/// The sum of the workers' counters.
fn total(workers: &[Counters]) -> Counters {
    let mut sum = Counters::default();
    for w in workers {
        sum.add(w);
    }
    sum
}

fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

fn run(path: &Path, stats_interval: u64, counters_file: Option<&Path>, ike_log: Option<&Path>) -> Result<(), String> {
    let mut config = load(path)?;
    let log: Box<dyn Write + Send> = match ike_log {
        Some(p) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| format!("{}: {e}", p.display()))?,
        ),
        None => Box::new(std::io::stderr()),
    };
    let mut ike = IkeRunner::new(&config, log)?;
    let cores = config.dataplane.cores.clone();
    let mut lcores = vec![config.dataplane.main_core];
    lcores.extend(&cores);
    let lcores = lcores.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",");
    let devices: Vec<String> = config.ports.iter().map(|p| p.device.clone()).collect();
    let dp = Dataplane::start(&config, &lcores, &devices, cores.len() as u16, true)?;
    let Pipeline { mut slots, mut tables, workers, mut handles, mut slow } = dp.pipeline(&config);
    // Tables replaced by a reload, kept here until no worker holds them any more, so that the
    // last reference (and the freeing of their maps) goes away on this thread, not a worker's.
    let mut retired: Vec<Arc<Tables>> = Vec::new();

    let stop = Arc::new(AtomicBool::new(false));
    for (mut w, lcore) in workers.into_iter().zip(&cores) {
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

    // Static SAs go to the workers once they run (their rings drain from then on).
    let mut sa_state = SaState::default();
    let mut installed_static = static_specs(&config, config.dataplane.node_id);
    let sink = &mut RingSaSink {
        handles: &mut handles,
        tables: &tables,
        state: &mut sa_state,
        make_room: &mut std::thread::yield_now,
    };
    for e in sync_static(sink, &[], &installed_static) {
        eprintln!("anygate: {e}");
    }

    let terminate = Arc::new(AtomicBool::new(false));
    let reload = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, terminate.clone()).map_err(|e| e.to_string())?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGHUP, reload.clone()).map_err(|e| e.to_string())?;
    eprintln!(
        "anygate: running {} worker(s) on core(s) {:?}, {} port(s), {} GRE tunnel(s), {} IPsec tunnel(s), \
         {} static SA(s), {} route(s)",
        cores.len(),
        cores,
        dp.ports.len(),
        config.gre_tunnels.len(),
        config.ipsec_tunnels.len(),
        installed_static.len(),
        config.routes.len()
    );

    let interval = Duration::from_secs(stats_interval.max(1));
    let mut last_report = Instant::now();
    let mut before = Counters::default();
    while !terminate.load(Ordering::Relaxed) {
        let busy = slow.poll(&mut handles, dpdk_bindings::tsc());
        let time = Instant::now();
        ike.receive(time, slow.take_ike());
        let sink = &mut RingSaSink {
            handles: &mut handles,
            tables: &tables,
            state: &mut sa_state,
            make_room: &mut std::thread::yield_now,
        };
        ike.poll(time, &config, sink, &mut |local, remote, message| {
            slow.send_ike(local, remote, message, dpdk_bindings::tsc())
        });
        slow.flush(&mut handles);
        if busy == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
        retired.retain(|t| Arc::strong_count(t) > 1);
        if reload.swap(false, Ordering::Relaxed) {
            match load(path) {
                Ok(new) if new.ports != config.ports => {
                    eprintln!("anygate: reload refused: ports changed; a restart is needed to change ports")
                }
                Ok(new) => {
                    let new_tables = Arc::new(Tables::build(&new, &dp.macs, &mut slots));
                    for h in handles.iter_mut() {
                        if h.updates.push(Update::Tables(new_tables.clone())).is_err() {
                            eprintln!("anygate: a worker's update ring is full; reload not applied everywhere");
                        }
                    }
                    slow.set_tables(new_tables.clone());
                    retired.push(std::mem::replace(&mut tables, new_tables));
                    let wanted = static_specs(&new, new.dataplane.node_id);
                    let sink = &mut RingSaSink {
                        handles: &mut handles,
                        tables: &tables,
                        state: &mut sa_state,
                        make_room: &mut std::thread::yield_now,
                    };
                    for e in sync_static(sink, &installed_static, &wanted) {
                        eprintln!("anygate: {e}");
                    }
                    if let Err(e) = ike.reload(&new, sink) {
                        eprintln!("anygate: IKE responder keeps its previous policy: {e}");
                    }
                    installed_static = wanted;
                    eprintln!(
                        "anygate: reloaded: {} GRE tunnel(s), {} IPsec tunnel(s), {} static SA(s), {} route(s)",
                        new.gre_tunnels.len(),
                        new.ipsec_tunnels.len(),
                        installed_static.len(),
                        new.routes.len()
                    );
                    config = new;
                }
                Err(e) => eprintln!("anygate: reload refused, configuration unchanged: {e}"),
            }
        }
        let elapsed = last_report.elapsed();
        if elapsed >= interval {
            let workers = per_worker(&mut handles);
            let now = total(&workers);
            let names = slots.names();
            if stats_interval > 0 {
                println!("{}", report::live_view(&now, &before, elapsed.as_secs_f64(), &names));
            }
            if let Some(f) = counters_file {
                let mut json = report::counters_json(&now, &names, &slow.counters);
                json["workers"] = report::workers_json(&workers);
                json["ike"] = ike.status_json();
                if let Err(e) = write_atomically(f, &json.to_string()) {
                    eprintln!("anygate: cannot write {}: {e}", f.display());
                }
            }
            before = now;
            last_report = Instant::now();
        }
    }
    stop.store(true, Ordering::Relaxed);
    for lcore in &cores {
        dp.eal.wait(*lcore);
    }
    let workers = per_worker(&mut handles);
    let mut json = report::counters_json(&total(&workers), &slots.names(), &slow.counters);
    json["workers"] = report::workers_json(&workers);
    json["ike"] = ike.status_json();
    if let Some(f) = counters_file {
        let _ = write_atomically(f, &json.to_string());
    }
    println!("{}", serde_json::to_string_pretty(&json).unwrap_or_default());
    dp.close();
    eprintln!("anygate: stopped");
    Ok(())
}

/// The number of frames in a pcap file (classic format, either byte order).
fn count_pcap_frames(path: &Path) -> Result<u64, String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let bad = || format!("{}: not a pcap file", path.display());
    let magic = data.get(0..4).ok_or_else(bad)?;
    let little = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => return Err(bad()),
    };
    let mut at = 24;
    let mut frames = 0;
    while at + 16 <= data.len() {
        let b = [data[at + 8], data[at + 9], data[at + 10], data[at + 11]];
        let len = if little { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) } as usize;
        at += 16 + len;
        frames += 1;
    }
    Ok(frames)
}

fn pcap(path: &Path, input: &Path, output: &Path) -> Result<(), String> {
    let config = load(path)?;
    let frames = count_pcap_frames(input)?;
    let empty = std::env::temp_dir().join(format!("anygate-empty-{}.pcap", std::process::id()));
    let mut header = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    header.extend_from_slice(&[0; 8]);
    header.extend_from_slice(&65535u32.to_le_bytes());
    header.extend_from_slice(&1u32.to_le_bytes());
    std::fs::write(&empty, &header).map_err(|e| e.to_string())?;
    let devices: Vec<String> = config
        .ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if i == 0 {
                format!("net_pcap0,rx_pcap={},tx_pcap={}", input.display(), output.display())
            } else {
                format!("net_pcap{i},rx_pcap={},tx_pcap={}.{}.pcap", empty.display(), output.display(), p.name)
            }
        })
        .collect();
    let lcores = config.dataplane.main_core.to_string();
    // One thread runs the worker and the slow path: they share TX queue 0.
    let dp = Dataplane::start(&config, &lcores, &devices, 1, false)?;
    let Pipeline { slots, tables, mut workers, mut handles, mut slow } = dp.pipeline(&config);
    let mut sa_state = SaState::default();
    let sink = &mut RingSaSink {
        handles: &mut handles,
        tables: &tables,
        state: &mut sa_state,
        make_room: &mut || workers[0].finish(),
    };
    let errors = sync_static(sink, &[], &static_specs(&config, config.dataplane.node_id));
    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    let w = &mut workers[0];
    // The static SAs are in place before the first frame is read.
    w.finish();

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut settle = 0;
    loop {
        w.poll();
        slow.poll(&mut handles, dpdk_bindings::tsc());
        if dp.ports[0].stats().rx_packets >= frames {
            // A few more rounds for what the slow path and workers still hold.
            settle += 1;
            if settle > 64 {
                break;
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "input not drained after 60 s ({} of {frames} frames read)",
                dp.ports[0].stats().rx_packets
            ));
        }
    }
    w.finish();
    slow.poll(&mut handles, dpdk_bindings::tsc());
    let mut json = report::counters_json(&total(&per_worker(&mut handles)), &slots.names(), &slow.counters);
    json["input_frames"] = serde_json::json!(frames);
    json["ports"] = serde_json::json!(config
        .ports
        .iter()
        .zip(&dp.macs)
        .map(|(p, m)| serde_json::json!({"name": p.name, "mac": anygate::config::format_mac(m)}))
        .collect::<Vec<_>>());
    dp.close();
    let _ = std::fs::remove_file(&empty);
    println!("{}", serde_json::to_string_pretty(&json).unwrap_or_default());
    Ok(())
}
