#!/usr/bin/env bash
# GRE throughput on one worker core beside dpdk-testpmd io and DPDK's l3fwd on the same captures
# and core, with OVS-DPDK's recorded ratios beside them (perf/gre_bench.py). Arguments go to
# gre_bench.py (--reps N, --window S, --cases gre_small,plain_small,...). Takes about 10 minutes
# with 3 repetitions.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
cargo build --quiet --release -p anygate-perf --bin worker-rate
l3fwd=$(scripts/lib/build-l3fwd.sh)
exec /usr/bin/python3 perf/gre_bench.py --l3fwd "$l3fwd" "$@"
