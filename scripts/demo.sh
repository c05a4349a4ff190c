#!/usr/bin/env bash
# The demo: anygate on DPDK ports (net_af_packet) in a network namespace, between an internet client
# and two customer sites: one whose edge router is Open vSwitch's userspace GRE, and a branch whose
# router is strongSwan, which brings an IPsec tunnel up with anygate's IKEv2 responder. Ping and TCP go
# from the client to a host behind each router and back, and the other way, IPv4 and IPv6 through the
# GRE tunnel, IPv4 through the IPsec tunnel; then steady traffic runs while anygate shows its live
# per-tunnel figures.
#
#   internet client            anygate (DPDK)                          customer sites
#   agd-client                 agd-gw                                  agd-site (GRE)
#   198.51.100.10 ----------- 198.51.100.1   [internet]
#   2001:db8:100::10          2001:db8:100::1
#                              192.0.2.1     [transit] ------------- 192.0.2.2 OVS br-phy
#                              anycast 203.0.113.1 <== GRE tunnel ==> 192.0.2.2
#                                                                      10.10.0.1, 2001:db8:10::1 behind it
#                                                                      agd-branch (IPsec)
#                              100.64.0.1    [branch] -------------- 100.64.0.2 strongSwan
#                              anycast 203.0.113.1 <== ESP (IKEv2) ==> 100.64.0.2
#                                                                      10.30.0.1 behind it
#
# usage: scripts/demo.sh [--duration SECONDS] [--workers N] [--check]
#   --duration  how long the steady traffic and live figures run (default 30; 0: until Ctrl-C)
#   --workers   poll-mode workers (default 1), each with its own queue pair of both ports; the
#               kernel spreads flows over the queues (PACKET_FANOUT hash). With more workers than
#               spare CPUs they share CPU 1 (EAL --lcores), which is for testing, not speed.
#   --check     the test: assert every check, reload the configuration under traffic (no packet may
#               be lost), and compare anygate's per-tunnel counters with the GRE router's
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

duration=30 check=0 workers=1
while [ $# -gt 0 ]; do
  case $1 in
    --duration) duration=$2; shift 2 ;;
    --workers) workers=$2; shift 2 ;;
    --check) check=1; shift ;;
    *) sed -n '2,20p' "$0" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "demo: needs root (network namespaces, hugepages)" >&2; exit 1; }

scripts/setup.sh >/dev/null
if [ $check = 1 ]; then
  cargo build --quiet --bin anygate
  anygate=$root/target/debug/anygate
else
  echo "demo: building anygate (release)"
  cargo build --quiet --release --bin anygate
  anygate=$root/target/release/anygate
fi

client=agd-client gw=agd-gw site=agd-site branch=agd-branch
work=$(mktemp -d /tmp/anygate-demo.XXXXXX)
anygate_pid= tcpdump_pid= tcpdump_esp_pid= traffic_pids=()
failures=0

cleanup() {
  set +e
  stop_traffic
  [ -z "$tcpdump_pid" ] || kill "$tcpdump_pid" 2>/dev/null
  [ -z "$tcpdump_esp_pid" ] || kill "$tcpdump_esp_pid" 2>/dev/null
  if [ -n "$anygate_pid" ] && kill -0 "$anygate_pid" 2>/dev/null; then
    kill -TERM "$anygate_pid"
    wait "$anygate_pid" 2>/dev/null
  fi
  scripts/lib/ovs-gre-router.sh down $site
  scripts/lib/strongswan-router.sh stop "$work/swan"
  for ns in $client $gw $site $branch; do
    ip netns pids $ns 2>/dev/null | xargs -r kill 2>/dev/null
    ip netns del $ns 2>/dev/null
  done
  if [ -n "${ANYGATE_DEMO_KEEP:-}" ]; then echo "demo: files kept in $work"; else rm -rf "$work"; fi
}
# Background traffic runs in subshells: stop their children with them.
stop_traffic() {
  local p
  for p in "${traffic_pids[@]}"; do
    pkill -P "$p" 2>/dev/null
    kill "$p" 2>/dev/null
  done
  traffic_pids=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\n== %s\n' "$*"; }
in_client() { ip netns exec $client "$@"; }
in_gw() { ip netns exec $gw "$@"; }
in_site() { ip netns exec $site "$@"; }
pass() { echo "  ok    $*"; }
fail() { echo "  FAIL  $*"; failures=$((failures + 1)); }

# --- the three namespaces, joined by two veth pairs --------------------------------------------------
for ns in $client $gw $site $branch; do
  ip netns del $ns 2>/dev/null || true
  ip netns add $ns
  ip -n $ns link set lo up
done
ip link add agc-eth netns $client type veth peer name agd-inet netns $gw
ip link add agd-transit netns $gw type veth peer name ags-ul netns $site
ip link add agd-branch netns $gw type veth peer name agb-ul netns $branch
# Stable MACs, so the GRE router's next hop can be pinned before the first packet.
ip -n $gw link set agd-inet address 02:a9:00:00:00:01
ip -n $gw link set agd-transit address 02:a9:00:00:00:02
# The kernel leaves TCP/UDP checksums and segmentation to the NIC on a veth; af_packet would then
# hand DPDK half-made packets. A real NIC's peer sends finished frames: turn the offloads off.
for dev in "$client agc-eth" "$gw agd-inet" "$gw agd-transit" "$site ags-ul" "$gw agd-branch" "$branch agb-ul"; do
  set -- $dev
  ip netns exec "$1" ethtool -K "$2" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
done
# anygate owns agd-gw's ports through DPDK: its kernel must stay quiet on them.
in_gw sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip -n $gw link set agd-inet up
ip -n $gw link set agd-transit up
ip -n $gw link set agd-branch up

in_client ip addr add 198.51.100.10/24 dev agc-eth
in_client ip -6 addr add 2001:db8:100::10/64 dev agc-eth nodad
in_client ip link set agc-eth up
in_client ip route add default via 198.51.100.1
in_client ip -6 route add default via 2001:db8:100::1
in_site sysctl -qw net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0
# The branch: its router's uplink, and a host address behind it (on lo).
in_branch() { ip netns exec $branch "$@"; }
in_branch ip addr add 100.64.0.2/24 dev agb-ul
in_branch ip link set agb-ul up
in_branch ip route add 203.0.113.0/24 via 100.64.0.1
in_branch ip addr add 10.30.0.1/32 dev lo
psk=demo-only-psk-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')

# --- anygate ----------------------------------------------------------------------------------------
# Workers are lcores 1..N; with more than one, EAL's --lcores puts them all on CPU 1.
cores=$(seq -s, 1 "$workers")
lcore_map=
if [ "$workers" -gt 1 ]; then
  lcore_map=", \"--lcores=0@0,$(seq -s, -f '%g@1' 1 "$workers")\""
fi
write_config() { # $1: file, $2: extra TOML appended (a second tunnel for the reload)
  cat >"$1" <<EOF
[dataplane]
cores = [$cores]
main_core = 0
eal_args = ["--in-memory", "--no-telemetry"$lcore_map]

[[ports]]
name = "internet"
device = "net_af_packet0,iface=agd-inet,qpairs=$workers"
address = "198.51.100.1/24"
address6 = "2001:db8:100::1/64"

[[ports]]
name = "transit"
device = "net_af_packet1,iface=agd-transit,qpairs=$workers"
address = "192.0.2.1/24"

[[ports]]
name = "branch"
device = "net_af_packet2,iface=agd-branch,qpairs=$workers"
address = "100.64.0.1/24"

[ike]
account_id = "demo"
domain = "ipsec.example.net"

[[gre_tunnels]]
name = "site1"
customer_gre_endpoint = "192.0.2.2"
cloudflare_gre_endpoint = "203.0.113.1"
interface_address = "10.212.0.0/31"
ttl = ${ttl:-64}

[[routes]]
prefix = "10.10.0.0/24"
nexthop = "site1"

[[routes]]
prefix = "2001:db8:10::/64"
nexthop = "site1"

[[ipsec_tunnels]]
name = "branch1"
anycast_endpoint = "203.0.113.1"
psk = "$psk"

[[routes]]
prefix = "10.30.0.0/24"
nexthop = "branch1"
${2:-}
EOF
}
write_config "$work/anygate.toml"
say "anygate on DPDK net_af_packet ports in $gw"
$anygate check --config "$work/anygate.toml" >/dev/null
# Started directly (not through a shell function) so that the pid is anygate's own.
ip netns exec $gw "$anygate" run --config "$work/anygate.toml" --counters "$work/counters.json" \
  --ike-log "$work/ike.log" >"$work/anygate.out" 2>"$work/anygate.err" &
anygate_pid=$!
for _ in $(seq 100); do
  grep -q "running" "$work/anygate.err" 2>/dev/null && break
  kill -0 $anygate_pid 2>/dev/null || { cat "$work/anygate.err" >&2; exit 1; }
  sleep 0.1
done
grep "running" "$work/anygate.err"

# Every GRE packet on the wire between anygate and the customer router, for the count at the end.
ip -n $site link set ags-ul up
ip netns exec $site tcpdump -i ags-ul -s 128 -B 32768 --immediate-mode -U -w "$work/gre.pcap" 'ip proto 47' 2>"$work/tcpdump.err" &
tcpdump_pid=$!
for _ in $(seq 50); do grep -q "listening" "$work/tcpdump.err" && break; sleep 0.1; done
grep -q "listening" "$work/tcpdump.err" || { cat "$work/tcpdump.err" >&2; exit 1; }

say "customer site: Open vSwitch userspace GRE router in $site"
scripts/lib/ovs-gre-router.sh up $site ags-ul 192.0.2.2/24 192.0.2.1 02:a9:00:00:00:02 203.0.113.1 \
  10.10.0.1/24 2001:db8:10::1/64 198.51.100.0/24 2001:db8:100::/64
echo "  GRE 192.0.2.2 <-> 203.0.113.1, behind it 10.10.0.1 and 2001:db8:10::1"

say "branch: strongSwan in $branch brings an IPsec tunnel up with anygate's IKEv2 responder"
# Every ESP packet between anygate and the branch router (ESP in UDP 4500; IKE has a zero marker).
ip netns exec $branch tcpdump -i agb-ul -s 128 -B 32768 --immediate-mode -U -w "$work/esp.pcap" \
  'udp port 4500 and udp[8:4] != 0' 2>"$work/tcpdump-esp.err" &
tcpdump_esp_pid=$!
for _ in $(seq 50); do grep -q "listening" "$work/tcpdump-esp.err" && break; sleep 0.1; done
scripts/lib/strongswan-router.sh config "$work/swan" 100.64.0.2 203.0.113.1 aes256gcm16-prfsha384-ecp384 aes256gcm16 \
  ipsec@branch1.demo.ipsec.example.net 10.30.0.0/24 198.51.100.0/24 "$psk"
scripts/lib/strongswan-router.sh start $branch "$work/swan"
if scripts/lib/strongswan-router.sh initiate "$work/swan" net; then
  for _ in $(seq 30); do grep -q "installed on every worker" "$work/ike.log" && break; sleep 0.1; done
  grep -h "IKE SA established\|installed on every worker" "$work/ike.log" |
    /usr/bin/python3 -c 'import json, sys; [print("  anygate:", json.loads(l)["message"]) for l in sys.stdin]'
else
  fail "swanctl --initiate: $(tail -n 3 "$work/swan/initiate.log")"
fi

# --- checks -----------------------------------------------------------------------------------------
pings=0
ping_check() { # NS FROM-NAME DST [SOURCE]
  local ns=$1 what=$2 dst=$3 out
  if out=$(ip netns exec "$ns" ping -c 5 -i 0.2 -W 2 ${4:+-I $4} "$dst" 2>&1) && grep -q " 0% packet loss" <<<"$out"; then
    pass "ping $what -> $dst: 5/5, $(grep -o 'rtt.*' <<<"$out" | cut -d' ' -f4 | cut -d/ -f2) ms avg"
  else
    fail "ping $what -> $dst: $(grep -o '[0-9]*% packet loss' <<<"$out" || echo "$out")"
  fi
  pings=$((pings + 5))
}
tcp_check() { # NS FROM-NAME DST
  local out
  if out=$(ip netns exec "$1" /usr/bin/python3 scripts/lib/tcp_echo.py send "$3" 5001 1000000 2>&1); then
    pass "$2: $out"
  else
    fail "$2: $out"
  fi
}
# The first packets wait for neighbour resolution; one ping each way warms the path.
in_client ping -c 1 -W 3 10.10.0.1 >/dev/null 2>&1 || true
in_client ping -c 1 -W 3 2001:db8:10::1 >/dev/null 2>&1 || true
in_client ping -c 1 -W 3 10.30.0.1 >/dev/null 2>&1 || true

say "ping through the GRE tunnel"
ping_check $client client 10.10.0.1
ping_check $client client 2001:db8:10::1
ping_check $site site 198.51.100.10
ping_check $site site 2001:db8:100::10
ping_check $site "site (underlay)" 203.0.113.1

say "ping through the IPsec tunnel"
esp_pings_before=$pings
ping_check $client client 10.30.0.1
ping_check $branch "branch (from 10.30.0.1)" 198.51.100.10 10.30.0.1
esp_pings=$((pings - esp_pings_before))

say "TCP through the GRE tunnel (1 MB echoed each way, MSS clamped)"
for ns in $client $site; do
  for a in 0.0.0.0 ::; do
    ip netns exec $ns /usr/bin/python3 scripts/lib/tcp_echo.py serve $a 5001 &
    traffic_pids+=($!)
  done
done
sleep 0.5
tcp_check $client "client -> site  " 10.10.0.1
tcp_check $client "client -> site  " 2001:db8:10::1
tcp_check $site "site   -> client" 198.51.100.10
tcp_check $site "site   -> client" 2001:db8:100::10

say "TCP through the IPsec tunnel (1 MB echoed each way, MSS clamped)"
in_branch /usr/bin/python3 scripts/lib/tcp_echo.py serve 0.0.0.0 5001 &
traffic_pids+=($!)
sleep 0.3
tcp_check $client "client -> branch" 10.30.0.1
tcp_check $branch "branch -> client" 198.51.100.10

if [ $check = 1 ]; then
  say "configuration reload under traffic (SIGHUP): no packet lost"
  in_client ping -q -c 600 -i 0.005 -W 2 10.10.0.1 >"$work/reload-ping.txt" 2>&1 &
  flood=$!
  sleep 0.5
  ttl=63 write_config "$work/anygate.toml" '
[[gre_tunnels]]
name = "site2"
customer_endpoint = "192.0.2.3"
anycast_endpoint = "203.0.113.1"

[[routes]]
prefix = "10.20.0.0/16"
nexthop = "site2"'
  kill -HUP $anygate_pid
  sleep 0.5
  echo 'this is not TOML' >"$work/anygate.toml"
  kill -HUP $anygate_pid
  sleep 0.5
  write_config "$work/anygate.toml"
  kill -HUP $anygate_pid
  wait $flood || true
  loss=$(grep -o '[0-9.]*% packet loss' "$work/reload-ping.txt" || echo "no result")
  reloads=$(grep -c "anygate: reloaded" "$work/anygate.err" || true)
  refused=$(grep -c "reload refused" "$work/anygate.err" || true)
  if [ "$loss" = "0% packet loss" ] && [ "$reloads" = 2 ] && [ "$refused" = 1 ]; then
    pass "600 pings at 200/s across 3 reloads (2 applied, 1 refused): $loss"
  else
    fail "reload: $loss, $reloads applied, $refused refused"
    cat "$work/reload-ping.txt" "$work/anygate.err"
  fi
  pings=$((pings + 600))
  ping_check $client "client (after reload)" 10.10.0.1
  ping_check $client "client (after reload)" 10.30.0.1
  esp_pings=$((esp_pings + 5))
fi

if [ $check = 0 ]; then
  say "steady traffic through the tunnel; anygate's live figures (Ctrl-C stops)"
  (while true; do in_client /usr/bin/python3 scripts/lib/tcp_echo.py send 10.10.0.1 5001 4000000 >/dev/null 2>&1; sleep 0.3; done) &
  traffic_pids+=($!)
  in_client ping -q -i 0.01 10.10.0.1 >/dev/null 2>&1 &
  traffic_pids+=($!)
  in_site ping -q -i 0.02 2001:db8:100::10 >/dev/null 2>&1 &
  traffic_pids+=($!)
  (while true; do in_client /usr/bin/python3 scripts/lib/tcp_echo.py send 10.30.0.1 5001 4000000 >/dev/null 2>&1; sleep 0.3; done) &
  traffic_pids+=($!)
  in_branch ping -q -i 0.01 198.51.100.10 >/dev/null 2>&1 &
  traffic_pids+=($!)
  tail -n 0 -f "$work/anygate.out" &
  traffic_pids+=($!)
  if [ "$duration" = 0 ]; then
    wait $anygate_pid
  else
    sleep "$duration"
  fi
fi

# --- stop, then compare what anygate counted with the GRE packets seen on the wire -----------------------
stop_traffic || true
sleep 1
kill -TERM $anygate_pid
wait $anygate_pid || fail "anygate exited with an error"
anygate_pid=
grep -q "anygate: stopped" "$work/anygate.err" && pass "anygate stopped cleanly on SIGTERM" \
  || fail "anygate did not report a clean stop"

kill -INT $tcpdump_pid 2>/dev/null || { echo "tcpdump ended early:"; cat "$work/tcpdump.err"; }
wait $tcpdump_pid || true
tcpdump_pid=
kill -INT $tcpdump_esp_pid 2>/dev/null || { echo "tcpdump (ESP) ended early:"; cat "$work/tcpdump-esp.err"; }
wait $tcpdump_esp_pid || true
tcpdump_esp_pid=

say "per-tunnel counters beside the GRE packets captured between anygate and the router"
echo "  capture: $(grep -h 'captured\|dropped by kernel' "$work/tcpdump.err" | paste -sd, -)"
/usr/bin/python3 - "$work/counters.json" "$work/gre.pcap" "$((pings - esp_pings))" "$work/esp.pcap" "$esp_pings" <<'EOF' || failures=$((failures + 1))
import json, sys
from scapy.all import GRE, IP, rdpcap
c = json.load(open(sys.argv[1]))
pings = int(sys.argv[3])
wire = {"in": [0, 0], "out": [0, 0]}
for p in rdpcap(sys.argv[2]):
    ip = p[IP]
    # Inner bytes: the outer IPv4 length less its header and the GRE header (with its options).
    inner = ip.len - 4 * ip.ihl - len(p[GRE]) + len(p[GRE].payload)
    if (ip.src, ip.dst) == ("192.0.2.2", "203.0.113.1"):
        wire["in"][0] += 1
        wire["in"][1] += inner
    elif (ip.src, ip.dst) == ("203.0.113.1", "192.0.2.2"):
        wire["out"][0] += 1
        wire["out"][1] += inner
t = c["tunnels"]["site1"]
print(f"  anygate site1: in {t['ingress_packets']} pkts {t['ingress_bytes']} B, "
      f"out {t['egress_packets']} pkts {t['egress_bytes']} B, drops {t['drops']}")
print(f"  on the wire:   in {wire['in'][0]} pkts {wire['in'][1]} B, out {wire['out'][0]} pkts {wire['out'][1]} B")
drops = {k: v for k, v in c["drops"].items() if v}
punts = {k: v for k, v in c["punts"].items() if v}
print(f"  anygate drops: {drops or 'none'}; punts: {punts or 'none'}")
ok = True
def expect(cond, what):
    global ok
    print(("  ok    " if cond else "  FAIL  ") + what)
    ok = ok and cond
expect((t["ingress_packets"], t["ingress_bytes"]) == tuple(wire["in"]),
       "ingress: every GRE packet the router sent was decapsulated and counted, bytes too")
expect((t["egress_packets"], t["egress_bytes"]) == tuple(wire["out"]),
       "egress: every packet anygate counted into the tunnel is on the wire, bytes too")
expect(t["ingress_packets"] > pings and t["egress_packets"] > pings,
       f"more than the {pings} echo packets each way (TCP too)")
esp_pings = int(sys.argv[5])
esp = {"in": 0, "out": 0}
for p in rdpcap(sys.argv[4]):
    ip = p[IP]
    if (ip.src, ip.dst) == ("100.64.0.2", "203.0.113.1"):
        esp["in"] += 1
    elif (ip.src, ip.dst) == ("203.0.113.1", "100.64.0.2"):
        esp["out"] += 1
b = c["tunnels"]["branch1"]
print(f"  anygate branch1: in {b['ingress_packets']} pkts, out {b['egress_packets']} pkts, drops {b['drops']}")
print(f"  ESP on the wire: in {esp['in']} pkts, out {esp['out']} pkts")
expect(b["ingress_packets"] == esp["in"] and b["egress_packets"] == esp["out"],
       "IPsec: every ESP packet each way is counted by the tunnel, and none more")
expect(b["ingress_packets"] > esp_pings and b["egress_packets"] > esp_pings,
       f"more than the {esp_pings} echo packets each way through ESP (TCP too)")
ike = c["ike"]["counters"]
expect(ike["child_sas_installed"] == 1 and ike["ike_sas_established"] == 1 and ike["refusals"] == 0,
       f"IKE: one IKE SA and one Child SA, nothing refused ({ike})")
workers = c.get("workers", [])
print(f"  per worker:    rx {[w['rx_packets'] for w in workers]} tx {[w['tx_packets'] for w in workers]}")
if len(workers) > 1:
    expect(all(w["rx_packets"] > 0 for w in workers), f"all {len(workers)} workers received traffic")
sys.exit(0 if ok else 1)
EOF

if [ $failures -gt 0 ]; then
  echo
  echo "demo: $failures check(s) failed"
  echo "--- anygate stderr"; cat "$work/anygate.err"
  exit 1
fi
echo
echo "demo: all checks passed"
