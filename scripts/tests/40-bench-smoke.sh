#!/usr/bin/env bash
# The benchmarks' machinery, briefly (one repetition of a few cases, debug build): captures
# generated and checked with scapy, testpmd io and DPDK's l3fwd (built from Debian's example source)
# measured, anygate's worker run on the same captures with no packet dropped or punted (GRE and
# ESP), the crypto library's reference rate, the SA install latency, and the IKE handshake
# generator against the responder. Prints figures; asserts no speed (see the README's benchmarks).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --quiet -p anygate-perf --bin worker-rate --bin aead-rate --bin sa-install --bin ike-bench
l3fwd=$(scripts/lib/build-l3fwd.sh)
/usr/bin/python3 perf/gre_bench.py --reps 1 --warmup 0.5 --window 1 --cases gre_small,plain_small \
  --perf-bin target/debug --pcaps /tmp/anygate-bench/pcap --l3fwd "$l3fwd"
/usr/bin/python3 perf/esp_bench.py --reps 1 --warmup 0.5 --window 1 --cases esp_in_small,plain_out_1400 --sa-counts 1,1000 \
  --perf-bin target/debug --pcaps /tmp/anygate-bench/esp
/usr/bin/python3 perf/esp_bench.py --print-config /tmp/anygate-bench/esp/esp_in_small.pcap > /tmp/anygate-bench/sa-install.toml
target/debug/sa-install --config /tmp/anygate-bench/sa-install.toml --count 200
# The IKE handshake generator against anygate's responder on loopback, briefly.
target/debug/ike-bench respond --bind 127.0.0.1:5500 --seconds 4 >/tmp/anygate-bench/ike-responder.json &
responder=$!
# The generator's connected socket fails on the first ICMP unreachable: wait for the bind.
for _ in $(seq 50); do ss -ulnH 'sport = :5500' | grep -q . && break; sleep 0.1; done
target/debug/ike-bench load --target 127.0.0.1:5500 --seconds 1 --warmup 0.5 --window 8 | tee /tmp/anygate-bench/ike-load.json
wait $responder
/usr/bin/python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["completed"] > 0 and r["failed"] == 0 and r["refused"] == 0, r' \
  /tmp/anygate-bench/ike-load.json
echo "(a debug build: these figures are not the benchmarks'; scripts/bench-gre.sh and scripts/bench-esp.sh measure)"
