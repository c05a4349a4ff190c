#!/usr/bin/env bash
# The demo's traffic check: anygate on net_af_packet ports between an internet client, an Open
# vSwitch GRE customer router and a strongSwan IPsec router that brings its tunnel up with anygate's
# IKEv2 responder; ping and TCP both ways through both tunnels (IPv4 and IPv6 inner through GRE),
# reload under traffic, and the per-tunnel counters equal to the GRE and ESP packets captured on the
# wire. Once with one worker (the
# demo as shown), once with two workers on their own queues (counters summed over workers, the slow
# path sending through the first worker, the kernel spreading flows over the queues).
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/demo.sh --check
scripts/demo.sh --check --workers 2
