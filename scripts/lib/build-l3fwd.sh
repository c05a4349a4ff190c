#!/usr/bin/env bash
# Builds DPDK's own IPv4 router example, l3fwd, from the source Debian ships in dpdk-doc, into
# DEST (default /tmp/anygate-bench/l3fwd): the benchmarks' reference for what routing a packet
# costs on the same source, sink and core (perf/benchlib.py, l3fwd()). Prints the binary's path.
# One change to the source: it asks every port for RX checksum offload, which the virtual
# devices lack, and would not start; nothing else is touched. Idempotent.
set -euo pipefail
dest=${1:-/tmp/anygate-bench/l3fwd}
examples=/usr/share/dpdk/examples
binary="$dest/l3fwd/build/l3fwd-shared"
if [ -x "$binary" ] && [ "$binary" -nt "$examples/l3fwd/main.c" ]; then
  echo "$binary"
  exit 0
fi
[ -d "$examples/l3fwd" ] || { echo "build-l3fwd: $examples/l3fwd missing (package dpdk-doc)" >&2; exit 1; }
rm -rf "$dest"
mkdir -p "$dest"
cp -r "$examples/l3fwd" "$examples/common" "$dest/"
offload='.offloads = RTE_ETH_RX_OFFLOAD_CHECKSUM,'
grep -qF "$offload" "$dest/l3fwd/main.c" || { echo "build-l3fwd: the RX offload line changed in main.c" >&2; exit 1; }
sed -i "s/\.offloads = RTE_ETH_RX_OFFLOAD_CHECKSUM,/.offloads = 0,/" "$dest/l3fwd/main.c"
make -C "$dest/l3fwd" PKGCONF=pkg-config >"$dest/build.log" 2>&1 || { tail -30 "$dest/build.log" >&2; exit 1; }
echo "$binary"
