//! anygate: an anycast GRE and IPsec tunnel endpoint, a DPDK poll-mode packet processor.
//!
//! The packet [`pipeline`] is pure functions over packet bytes ([`wire`] holds the header views);
//! [`tables`] are what each worker looks packets up in; [`config`] reads the configuration file.
#![forbid(unsafe_code)]

pub mod config;
pub mod dataplane;
pub mod esp;
pub mod ike;
pub mod pipeline;
pub mod report;
pub mod secret;
pub mod slowpath;
pub mod tables;
pub mod wire;
pub mod worker;
