#!/usr/bin/env bash
# Rekey of manually keyed ESP SAs under traffic, through `anygate run` on a net_af_packet port in a
# private network namespace: the configuration reload (SIGHUP) adds the new SAs beside the old ones,
# the peer moves over, a second reload deletes the old ones, and every packet of a steady stream
# each way is counted: none may be lost or duplicated, and anygate's counters must agree.
# ANYGATE=/path/to/anygate runs that binary instead of building target/debug/anygate.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/setup.sh >/dev/null
if [ -z "${ANYGATE:-}" ]; then
  cargo build --quiet --bin anygate
  ANYGATE=target/debug/anygate
fi
# Debian's scapy is installed for the system interpreter.
ANYGATE=$ANYGATE /usr/bin/python3 tests/esp_rekey/test_rekey.py
