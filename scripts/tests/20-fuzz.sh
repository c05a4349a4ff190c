#!/usr/bin/env bash
# Short runs of the fuzz targets (header views, whole pipeline, IKE message codec, IKE responder); a
# crash fails the tests and leaves its input under fuzz/artifacts/.
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
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for target in wire_views pipeline ike_message ike_responder; do
  # Committed seeds (real messages) start the search beside the local corpus.
  seeds=()
  if [ -d "seeds/$target" ]; then seeds=("corpus/$target" "seeds/$target"); mkdir -p "corpus/$target"; fi
  if ! cargo "${toolchain[@]}" fuzz run -O "$target" "${seeds[@]}" -- -max_total_time="$seconds" -max_len=2048 >"$log" 2>&1; then
    # A build error or a crash: show what happened, not only the last lines.
    grep -v -E '^#[0-9]+|^INFO|^ +Compiling' "$log" | tail -n 60
    exit 1
  fi
  tail -n 2 "$log"
done
