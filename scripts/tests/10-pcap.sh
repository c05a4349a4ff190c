#!/usr/bin/env bash
# GRE through the real DPDK pipeline (net_pcap in and out), checked field by field with scapy.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --quiet --bin anygate
# Debian's scapy is installed for the system interpreter.
ANYGATE=target/debug/anygate /usr/bin/python3 tests/pcap/test_gre.py
