//! Bringing the dataplane up: EAL arguments from the configuration, the packet pool, and the
//! ports with one RX queue per worker and one TX queue per worker plus the slow path's.

use dpdk_bindings::{Eal, Mempool, Port, PortConfig};

use std::sync::Arc;

use crate::config::Config;
use crate::slowpath::{SlowPath, SlowTx};
use crate::tables::{SlotMap, Tables};
use crate::worker::{self, Worker, WorkerHandle};

/// The started DPDK side.
#[derive(Debug)]
pub struct Dataplane {
    pub eal: &'static Eal,
    pub pool: Mempool,
    /// In configuration order.
    pub ports: Vec<Port>,
    pub macs: Vec<[u8; 6]>,
    pub workers: u16,
    /// How the slow path sends.
    pub slow_tx: SlowTx,
}

/// What runs on the started ports: the tables, the workers (to be launched on their lcores), the
/// control thread's handles to them, and the slow path.
#[derive(Debug)]
pub struct Pipeline {
    /// Counter slots of the tunnels, kept across reloads.
    pub slots: SlotMap,
    pub tables: Arc<Tables>,
    pub workers: Vec<Worker>,
    pub handles: Vec<WorkerHandle>,
    pub slow: SlowPath,
}

/// Whether a device string names a PCI device (`0000:01:00.0`) rather than a virtual one.
fn is_pci(device: &str) -> bool {
    let name = device.split(',').next().unwrap_or(device);
    name.contains(':') && name.contains('.')
}

/// The EAL arguments for a configuration: the cores, the devices, then the configured extras.
/// Where the extras map lcores to CPUs themselves (`--lcores`, e.g. `0@0,1@1,2@1` to put two
/// workers on one CPU), the cores are lcore ids and no `-l` list is given.
pub fn eal_args(config: &Config, lcores: &str, devices: &[String]) -> Vec<String> {
    let mut args = Vec::new();
    if !config.dataplane.eal_args.iter().any(|a| a.starts_with("--lcores")) {
        args.extend(["-l".to_string(), lcores.to_string()]);
    }
    args.extend(["--main-lcore".to_string(), config.dataplane.main_core.to_string()]);
    if !devices.iter().any(|d| is_pci(d)) {
        args.push("--no-pci".into());
    }
    for d in devices {
        args.push(if is_pci(d) { "-a" } else { "--vdev" }.into());
        args.push(d.clone());
    }
    args.push("--log-level=lib.eal:error".into());
    args.extend(config.dataplane.eal_args.iter().cloned());
    args
}

impl Dataplane {
    /// Initialise the EAL and start the ports (`devices` in configuration order) with an RX and a
    /// TX queue for each of `workers` workers. A slow path on a thread of its own
    /// (`slow_path_thread`) gets one more TX queue where every port has one to spare, and sends
    /// through the first worker otherwise; one sharing the worker's thread shares its queue 0.
    pub fn start(
        config: &Config,
        lcores: &str,
        devices: &[String],
        workers: u16,
        slow_path_thread: bool,
    ) -> Result<Dataplane, String> {
        let args = eal_args(config, lcores, devices);
        let eal = Eal::init(&args).map_err(|e| format!("{e} (EAL arguments: {})", args.join(" ")))?;
        let pool = Mempool::new(eal, "anygate_pkts", config.dataplane.mbufs, 256, 2048 + 128)
            .map_err(|e| format!("{e} (are hugepages reserved? scripts/setup.sh does it)"))?;
        let mut found = Vec::new();
        for (cfg, device) in config.ports.iter().zip(devices) {
            let name = device.split(',').next().unwrap_or(device);
            let port = Port::by_name(eal, name).map_err(|e| format!("port {}: {e}", cfg.name))?;
            let (_, max_tx) = port.max_queues().map_err(|e| format!("port {}: {e}", cfg.name))?;
            // The TAP driver takes only as many TX queues as RX queues: none to spare.
            let max_tx = if name.starts_with("net_tap") || name.starts_with("net_tun") { workers } else { max_tx };
            found.push((cfg, port, max_tx));
        }
        let spare = found.iter().all(|(_, _, max_tx)| *max_tx > workers);
        let (tx_queues, slow_tx) = match (slow_path_thread, spare) {
            (false, _) => (workers, SlowTx::Queue(0)),
            (true, true) => (workers + 1, SlowTx::Queue(workers)),
            (true, false) => (workers, SlowTx::ViaWorker),
        };
        let mut ports = Vec::new();
        let mut macs = Vec::new();
        for (cfg, port, _) in found {
            let queues = PortConfig {
                rx_queues: workers,
                tx_queues,
                rx_descriptors: config.dataplane.rx_descriptors,
                tx_descriptors: config.dataplane.tx_descriptors,
            };
            port.configure(&queues, &pool).map_err(|e| format!("port {}: {e}", cfg.name))?;
            // The pipeline writes and checks MACs itself, so a configured MAC holds even where the
            // driver cannot take it (net_pcap, net_null).
            let mac = match cfg.mac {
                Some(mac) => {
                    let _ = port.set_mac(mac);
                    mac
                }
                None => port.mac(),
            };
            port.set_promiscuous(true).map_err(|e| format!("port {}: {e}", cfg.name))?;
            port.start().map_err(|e| format!("port {}: {e}", cfg.name))?;
            macs.push(mac);
            ports.push(port);
        }
        Ok(Dataplane { eal, pool, ports, macs, workers, slow_tx })
    }

    /// Compile the configuration into tables and make one worker per RX queue, each with the
    /// handle the control thread keeps, and the slow path that serves them.
    pub fn pipeline(&self, config: &Config) -> Pipeline {
        let mut slots = SlotMap::default();
        let tables = Arc::new(Tables::build(config, &self.macs, &mut slots));
        let (workers, handles) = (0..self.workers)
            .map(|queue| {
                let (links, handle) = worker::links(slots.len());
                let w = Worker::new(
                    queue,
                    self.ports.clone(),
                    self.pool,
                    tables.clone(),
                    config.dataplane.icmp_errors_per_second,
                    links,
                );
                (w, handle)
            })
            .unzip();
        let mut slow = SlowPath::new(self.pool, self.ports.clone(), self.slow_tx, tables.clone());
        slow.prime(dpdk_bindings::tsc());
        Pipeline { slots, tables, workers, handles, slow }
    }

    /// Stop and close the ports (pcap devices write out their files here).
    pub fn close(&self) {
        for p in &self.ports {
            let _ = p.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(eal_args: &str) -> Config {
        Config::parse(&format!(
            "[dataplane]\ncores = [1, 2]\neal_args = {eal_args}\n\n[[ports]]\nname = \"wan\"\ndevice = \"net_null0\"\n"
        ))
        .expect("configuration")
    }

    #[test]
    fn cores_go_to_eal_as_a_list_unless_lcores_map_them() {
        let devices = vec!["net_null0".to_string(), "0000:3b:00.0".to_string()];
        let args = eal_args(&config(r#"["--in-memory"]"#), "0,1,2", &devices);
        assert_eq!(args[..4], ["-l", "0,1,2", "--main-lcore", "0"]);
        assert!(args.windows(2).any(|w| w == ["--vdev", "net_null0"]));
        assert!(args.windows(2).any(|w| w == ["-a", "0000:3b:00.0"]));
        assert!(!args.contains(&"--no-pci".to_string()), "a PCI device is named");

        let args = eal_args(&config(r#"["--lcores=0@0,1@1,2@1"]"#), "0,1,2", &devices[..1]);
        assert!(!args.contains(&"-l".to_string()));
        assert!(args.contains(&"--lcores=0@0,1@1,2@1".to_string()) && args.contains(&"--no-pci".to_string()));
    }
}
