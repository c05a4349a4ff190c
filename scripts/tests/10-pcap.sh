#!/usr/bin/env bash
# GRE and ESP through the real DPDK pipeline (net_pcap in and out), checked field by field with
# scapy (ESP against scapy's own implementation).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --quiet --bin anygate
# Debian's scapy is installed for the system interpreter.
ANYGATE=target/debug/anygate /usr/bin/python3 tests/pcap/test_gre.py
ANYGATE=target/debug/anygate /usr/bin/python3 tests/pcap/test_esp.py
