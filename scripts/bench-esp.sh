#!/usr/bin/env bash
# ESP throughput on one worker core beside dpdk-testpmd io on the same captures and core, AES-GCM
# alone (intel-ipsec-mb, aws-lc-rs) on the same core, and DPDK's ipsec-secgw on the same captures
# where it is built (SECGW=path/to/ipsec-secgw; the benchmark writes its configurations), for 128-
# and 256-bit keys, three sizes and IMIX; then small packets over 1, 1 000, 16 000 and 100 000
# inbound SAs (secgw too, with the same SAs). Arguments go to perf/esp_bench.py (--reps N,
# --window S, --cases esp_in_small,..., --sa-counts 1,1000). Then the SA install latency
# (perf/src/bin/sa-install.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
cargo build --quiet --release -p anygate-perf --bin worker-rate --bin aead-rate --bin sa-install
secgw=()
if [ -n "${SECGW:-}" ]; then secgw=(--secgw "$SECGW"); fi
/usr/bin/python3 perf/esp_bench.py "${secgw[@]}" "$@"
# How long an SA takes to be active on the worker while it carries the small-packet ESP load.
/usr/bin/python3 perf/esp_bench.py --print-config /tmp/anygate-bench/esp/esp_in_small.pcap > /tmp/anygate-bench/sa-install.toml
echo "SA install latency (add / delete until the worker has filed it), 2000 SAs:"
target/release/sa-install --config /tmp/anygate-bench/sa-install.toml --count 2000
