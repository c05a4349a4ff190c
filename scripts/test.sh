#!/usr/bin/env bash
# The one test command: installs what is missing, then lints, unit and integration tests, pcap tests
# through the real DPDK pipeline, the demo's traffic check and short fuzz runs.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

step() { printf '\n== %s\n' "$*"; }

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "unit and DPDK integration tests"
cargo test --workspace --quiet

for t in scripts/tests/*.sh; do
  [ -e "$t" ] || continue
  step "$t"
  "$t"
done
echo
echo "all tests passed"
