#!/usr/bin/env bash
# Short runs of the fuzz targets (header views, whole pipeline); a crash fails the tests and
# leaves its input under fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/../../fuzz"
seconds=${FUZZ_SECONDS:-20}
# cargo fuzz needs nightly flags; without a nightly toolchain, stable is allowed to take them.
if cargo +nightly --version >/dev/null 2>&1; then
  toolchain=(+nightly)
else
  toolchain=()
  export RUSTC_BOOTSTRAP=1
fi
for target in wire_views pipeline; do
  cargo "${toolchain[@]}" fuzz run -O "$target" -- -max_total_time="$seconds" -max_len=2048 2>&1 | tail -n 3
done
