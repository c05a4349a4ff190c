#!/usr/bin/env bash
# The demo's traffic check: anygate on net_af_packet ports between an internet client and an Open
# vSwitch GRE customer router; ping and TCP both ways, IPv4 and IPv6 inner, reload under traffic, and
# the per-tunnel counters equal to the GRE packets captured on the wire.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec scripts/demo.sh --check
