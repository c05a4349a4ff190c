//! Ethernet ports: found by device name, configured with N RX and TX queues (RSS across the RX
//! queues), started, polled in bursts.

use std::ffi::CString;

use crate::eal::Eal;
use crate::error::Error;
use crate::mbuf::{MbufBatch, Run};
use crate::mempool::Mempool;
use crate::sys;

// RSS hash-function bits of rte_ethdev.h (function-like macros bindgen cannot expand).
const RSS_IPV4: u64 = 1 << 2;
const RSS_FRAG_IPV4: u64 = 1 << 3;
const RSS_NONFRAG_IPV4_TCP: u64 = 1 << 4;
const RSS_NONFRAG_IPV4_UDP: u64 = 1 << 5;
const RSS_IPV6: u64 = 1 << 8;
const RSS_FRAG_IPV6: u64 = 1 << 9;
const RSS_NONFRAG_IPV6_TCP: u64 = 1 << 10;
const RSS_NONFRAG_IPV6_UDP: u64 = 1 << 11;
/// Linux ENOTSUP, returned negated by drivers lacking an operation.
const ENOTSUP: i32 = 95;

const RSS_WANTED: u64 = RSS_IPV4
    | RSS_FRAG_IPV4
    | RSS_NONFRAG_IPV4_TCP
    | RSS_NONFRAG_IPV4_UDP
    | RSS_IPV6
    | RSS_FRAG_IPV6
    | RSS_NONFRAG_IPV6_TCP
    | RSS_NONFRAG_IPV6_UDP;

/// How to set a port up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortConfig {
    /// RX queues: one per worker; with more than one, RSS spreads flows across them.
    pub rx_queues: u16,
    /// TX queues: one per worker and one for the slow path.
    pub tx_queues: u16,
    /// Descriptors per RX queue.
    pub rx_descriptors: u16,
    /// Descriptors per TX queue.
    pub tx_descriptors: u16,
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig { rx_queues: 1, tx_queues: 1, rx_descriptors: 1024, tx_descriptors: 1024 }
    }
}

/// Counters a port's driver keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// Packets the hardware dropped because no RX descriptor was free.
    pub rx_missed: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    /// RX mbuf allocation failures.
    pub rx_nombuf: u64,
}

/// One Ethernet port (an id; cheap to copy and share between workers, each using its own queues).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Port {
    id: u16,
}

impl Port {
    /// The port DPDK created for a device name (a vdev name such as `net_tap0`, or a PCI address).
    pub fn by_name(_eal: &Eal, name: &str) -> Result<Port, Error> {
        let cname = CString::new(name).map_err(|_| Error::new("port name holds a NUL", 22))?;
        let mut id = 0u16;
        // SAFETY: the EAL is initialised; cname is a valid C string and id a valid out pointer.
        let rc = unsafe { sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
        if rc != 0 {
            return Err(Error::new(format!("no DPDK port named {name}"), rc));
        }
        Ok(Port { id })
    }

    /// Create a device from a device string (`net_pcap0,rx_pcap=...`) after EAL init, and return its port.
    pub fn probe(eal: &Eal, devargs: &str) -> Result<Port, Error> {
        let cargs = CString::new(devargs).map_err(|_| Error::new("device string holds a NUL", 22))?;
        // SAFETY: the EAL is initialised; cargs is a valid C string DPDK parses and copies.
        let rc = unsafe { sys::rte_dev_probe(cargs.as_ptr()) };
        if rc != 0 {
            return Err(Error::new(format!("probe device {devargs}"), rc));
        }
        Port::by_name(eal, devargs.split(',').next().unwrap_or(devargs))
    }

    /// The number of ports DPDK knows.
    pub fn count(_eal: &Eal) -> u16 {
        // SAFETY: the EAL is initialised; this reads its device table.
        unsafe { sys::rte_eth_dev_count_avail() }
    }

    /// The port's id.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The most RX and TX queues the device takes.
    pub fn max_queues(&self) -> Result<(u16, u16), Error> {
        let mut info = sys::rte_eth_dev_info::default();
        // SAFETY: the port id is valid (from by_name/probe); info is a valid out pointer.
        let rc = unsafe { sys::rte_eth_dev_info_get(self.id, &mut info) };
        if rc != 0 {
            return Err(Error::new(format!("device info of port {}", self.id), rc));
        }
        Ok((info.max_rx_queues, info.max_tx_queues))
    }

    /// Configure the queues (RSS across the RX queues when there are several) and set the RX
    /// queues to take their mbufs from `pool`. The port must be stopped.
    pub fn configure(&self, cfg: &PortConfig, pool: &Mempool) -> Result<(), Error> {
        let mut info = sys::rte_eth_dev_info::default();
        // SAFETY: the port id is valid (from by_name/probe); info is a valid out pointer.
        let rc = unsafe { sys::rte_eth_dev_info_get(self.id, &mut info) };
        if rc != 0 {
            return Err(Error::new(format!("device info of port {}", self.id), rc));
        }
        if cfg.rx_queues > info.max_rx_queues || cfg.tx_queues > info.max_tx_queues {
            return Err(Error::new(
                format!(
                    "port {} has at most {} RX / {} TX queues, {} / {} asked",
                    self.id, info.max_rx_queues, info.max_tx_queues, cfg.rx_queues, cfg.tx_queues
                ),
                22,
            ));
        }
        let mut conf = sys::rte_eth_conf::default();
        let rss_hf = RSS_WANTED & info.flow_type_rss_offloads;
        if cfg.rx_queues > 1 && rss_hf != 0 {
            conf.rxmode.mq_mode = sys::rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
        }
        // SAFETY: valid port id; conf is a fully initialised configuration DPDK copies.
        let rc = unsafe { sys::rte_eth_dev_configure(self.id, cfg.rx_queues, cfg.tx_queues, &conf) };
        if rc != 0 {
            return Err(Error::new(format!("configure port {}", self.id), rc));
        }
        // SAFETY: valid port id.
        let socket = unsafe { sys::rte_eth_dev_socket_id(self.id) };
        let socket = if socket < 0 { sys::SOCKET_ID_ANY } else { socket } as u32;
        for q in 0..cfg.rx_queues {
            // SAFETY: valid port and queue; a null rxconf selects the driver's defaults; the pool
            // outlives the port (pools are never freed).
            let rc = unsafe {
                sys::rte_eth_rx_queue_setup(self.id, q, cfg.rx_descriptors, socket, std::ptr::null(), pool.as_ptr())
            };
            if rc != 0 {
                return Err(Error::new(format!("set up RX queue {q} of port {}", self.id), rc));
            }
        }
        for q in 0..cfg.tx_queues {
            // SAFETY: valid port and queue; a null txconf selects the driver's defaults.
            let rc = unsafe { sys::rte_eth_tx_queue_setup(self.id, q, cfg.tx_descriptors, socket, std::ptr::null()) };
            if rc != 0 {
                return Err(Error::new(format!("set up TX queue {q} of port {}", self.id), rc));
            }
        }
        Ok(())
    }

    /// Start receiving and sending.
    pub fn start(&self) -> Result<(), Error> {
        // SAFETY: valid, configured port id.
        let rc = unsafe { sys::rte_eth_dev_start(self.id) };
        if rc != 0 {
            return Err(Error::new(format!("start port {}", self.id), rc));
        }
        Ok(())
    }

    /// Stop the port (queues stop; mbufs in them are freed by the driver).
    pub fn stop(&self) -> Result<(), Error> {
        // SAFETY: valid port id; stopping a stopped port is harmless.
        let rc = unsafe { sys::rte_eth_dev_stop(self.id) };
        if rc != 0 {
            return Err(Error::new(format!("stop port {}", self.id), rc));
        }
        Ok(())
    }

    /// Stop and release the port (a pcap device flushes its output file here).
    pub fn close(&self) -> Result<(), Error> {
        self.stop()?;
        // SAFETY: valid, stopped port id; nothing uses it afterwards (the caller gives it up).
        let rc = unsafe { sys::rte_eth_dev_close(self.id) };
        if rc != 0 {
            return Err(Error::new(format!("close port {}", self.id), rc));
        }
        Ok(())
    }

    /// Accept frames for any MAC address (needed where the port's MAC is not the one peers use).
    pub fn set_promiscuous(&self, on: bool) -> Result<(), Error> {
        // SAFETY: valid port id.
        let rc = unsafe {
            if on {
                sys::rte_eth_promiscuous_enable(self.id)
            } else {
                sys::rte_eth_promiscuous_disable(self.id)
            }
        };
        // Drivers without the mode (net_null, net_pcap) answer -ENOTSUP: they receive everything anyway.
        if rc != 0 && rc != -ENOTSUP {
            return Err(Error::new(format!("promiscuous mode of port {}", self.id), rc));
        }
        Ok(())
    }

    /// The port's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        let mut addr = sys::rte_ether_addr::default();
        // SAFETY: valid port id; addr is a valid out pointer.
        unsafe { sys::rte_eth_macaddr_get(self.id, &mut addr) };
        addr.addr_bytes
    }

    /// Set the port's MAC address (where the driver allows it).
    pub fn set_mac(&self, mac: [u8; 6]) -> Result<(), Error> {
        let mut addr = sys::rte_ether_addr { addr_bytes: mac };
        // SAFETY: valid port id; addr is a valid pointer DPDK reads.
        let rc = unsafe { sys::rte_eth_dev_default_mac_addr_set(self.id, &mut addr) };
        if rc != 0 {
            return Err(Error::new(format!("set MAC address of port {}", self.id), rc));
        }
        Ok(())
    }

    /// The driver's counters.
    pub fn stats(&self) -> PortStats {
        let mut s = sys::rte_eth_stats::default();
        // SAFETY: valid port id; s is a valid out pointer.
        unsafe { sys::rte_eth_stats_get(self.id, &mut s) };
        PortStats {
            rx_packets: s.ipackets,
            tx_packets: s.opackets,
            rx_bytes: s.ibytes,
            tx_bytes: s.obytes,
            rx_missed: s.imissed,
            rx_errors: s.ierrors,
            tx_errors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        }
    }

    /// Receive up to a burst from RX queue `queue` into the empty `batch`; returns how many arrived.
    #[inline]
    pub fn rx_burst(&self, queue: u16, batch: &mut MbufBatch) -> usize {
        batch.fill_from(|slots, n| {
            // SAFETY: `slots` points to n free, null slots of the batch, laid out as `*mut rte_mbuf`
            // (Option<Mbuf> is a transparent nullable pointer); the driver writes at most n owned
            // mbufs there, which the batch then owns. Each queue is polled by one thread only.
            unsafe { sys::ag_rx_burst(self.id, queue, slots, n) }
        })
    }

    /// Send a run of a batch's mbufs ([`MbufBatch::run_while`]) on TX queue `queue`, straight
    /// from the batch's slots; those sent leave the batch, those refused stay in their slots.
    /// Returns how many were sent.
    #[inline]
    pub fn tx_burst_run(&self, queue: u16, run: Run<'_>) -> usize {
        run.send_with(|slots, n| {
            // SAFETY: `slots` holds n owned, non-null mbufs (a run holds no empty slot); the
            // driver takes ownership of the first `sent` it returns, which the batch then
            // forgets. Each queue has one sender.
            unsafe { sys::ag_tx_burst(self.id, queue, slots, n) }
        })
    }

    /// Send the batch on TX queue `queue`; what the driver accepts leaves the batch, what it refuses
    /// stays (at the front). Returns how many were sent.
    #[inline]
    pub fn tx_burst(&self, queue: u16, batch: &mut MbufBatch) -> usize {
        batch.send_with(|slots, n| {
            // SAFETY: `slots` holds n owned, non-null mbufs; the driver takes ownership of the
            // first `sent` it returns, which the batch then forgets. Each queue has one sender.
            unsafe { sys::ag_tx_burst(self.id, queue, slots, n) }
        })
    }
}
