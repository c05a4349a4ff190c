#!/usr/bin/env bash
# The benchmarks' machinery, briefly (one repetition of a few cases, debug build): captures
# generated and checked with scapy, testpmd io measured, anygate's worker run on the same captures
# with no packet dropped or punted (GRE and ESP), the crypto library's reference rate, and the SA
# install latency. Prints figures; asserts no speed (see the README's benchmarks).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --quiet -p anygate-perf --bin worker-rate --bin aead-rate --bin sa-install
/usr/bin/python3 perf/gre_bench.py --reps 1 --warmup 0.5 --window 1 --cases gre_small,plain_small \
  --perf-bin target/debug --pcaps /tmp/anygate-bench/pcap
/usr/bin/python3 perf/esp_bench.py --reps 1 --warmup 0.5 --window 1 --cases esp_in_small,plain_out_1400 --sa-counts 1,1000 \
  --perf-bin target/debug --pcaps /tmp/anygate-bench/esp
/usr/bin/python3 perf/esp_bench.py --print-config /tmp/anygate-bench/esp/esp_in_small.pcap > /tmp/anygate-bench/sa-install.toml
target/debug/sa-install --config /tmp/anygate-bench/sa-install.toml --count 200
echo "(a debug build: these figures are not the benchmarks'; scripts/bench-gre.sh and scripts/bench-esp.sh measure)"
