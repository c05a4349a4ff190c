#!/usr/bin/env bash
# The GRE benchmark's machinery, briefly (one repetition of two cases, debug build): captures
# generated and checked with scapy, testpmd io measured, anygate's worker run on the same captures
# with no packet dropped or punted. Prints figures; asserts no speed (see the README's benchmark).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --quiet -p anygate-perf --bin gre-rate
/usr/bin/python3 perf/gre_bench.py --reps 1 --warmup 0.5 --window 1 --cases gre_small,plain_small \
  --perf-bin target/debug --pcaps /tmp/anygate-bench/pcap
echo "(a debug build: these figures are not the benchmark's; scripts/bench-gre.sh measures)"
