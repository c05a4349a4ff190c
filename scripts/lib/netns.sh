# Helpers for the tests that put anygate and its peers in network namespaces; source it.

# veth NS_A DEV_A NS_B DEV_B: a veth pair between two namespaces, both ends up, with the offloads off:
# af_packet must be handed finished frames, as a real NIC's peer sends them (see demo.sh).
veth() {
  ip link add "$2" netns "$1" type veth peer name "$4" netns "$3"
  ip netns exec "$1" ethtool -K "$2" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
  ip netns exec "$3" ethtool -K "$4" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
  ip -n "$1" link set "$2" up
  ip -n "$3" link set "$4" up
}

# start_anygate NS BINARY WORK: run anygate on WORK/anygate.toml in NS (counters, IKE log and output in
# WORK), set anygate_pid, and return once it runs; its kernel side of the ports stays quiet.
start_anygate() {
  local ns=$1 binary=$2 work=$3
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip netns exec "$ns" "$binary" run --config "$work/anygate.toml" --stats-interval 0 \
    --counters "$work/counters.json" --ike-log "$work/ike.log" >"$work/anygate.out" 2>"$work/anygate.err" &
  anygate_pid=$!
  for _ in $(seq 100); do
    grep -q "running" "$work/anygate.err" 2>/dev/null && return 0
    kill -0 "$anygate_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "anygate did not start:" >&2
  cat "$work/anygate.err" >&2
  return 1
}

# ike_test_dataplane NODE_ID: the [dataplane] section of the IKE interop tests' anygate (one worker
# on core 1, EAL in memory).
ike_test_dataplane() {
  cat <<EOF2
[dataplane]
cores = [1]
main_core = 0
eal_args = ["--in-memory", "--no-telemetry"]
node_id = $1
EOF2
}

# ike_test_tunnels PSK [IKE_LINES]: the [ike] section (with IKE_LINES added to it) and the two IPsec
# tunnels the IKE interop tests bring up:
# t1 on 203.0.113.1, identified by name (RFC822, FQDN, KEY_ID under account "acct", domain
# "ipsec.example.net"), and t2 on 203.0.113.2, identified by its router's address 192.0.2.2.
ike_test_tunnels() {
  cat <<EOF2

[ike]
account_id = "acct"
domain = "ipsec.example.net"
${2:-}

[[ipsec_tunnels]]
name = "t1"
anycast_endpoint = "203.0.113.1"
psk = "$1"

[[ipsec_tunnels]]
name = "t2"
anycast_endpoint = "203.0.113.2"
customer_endpoint = "192.0.2.2"
psk = "$1"
EOF2
}

# fresh_namespaces NS...: each namespace made anew (one left by an earlier run removed first), with
# its loopback up.
fresh_namespaces() {
  local ns
  for ns in "$@"; do
    ip netns del "$ns" 2>/dev/null || true
    ip netns add "$ns"
    ip -n "$ns" link set lo up
  done
}

# teardown WORK NS...: stop anygate (anygate_pid) if it runs, stop what runs in the namespaces and
# remove them, and remove WORK unless ANYGATE_TEST_KEEP is set.
teardown() {
  local work=$1 ns
  shift
  if [ -n "${anygate_pid:-}" ] && kill -0 "$anygate_pid" 2>/dev/null; then
    kill -TERM "$anygate_pid"
    wait "$anygate_pid" 2>/dev/null
  fi
  for ns in "$@"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
    ip netns del "$ns" 2>/dev/null
  done
  if [ -n "${ANYGATE_TEST_KEEP:-}" ]; then echo "files kept in $work"; else rm -rf "$work"; fi
}

# ipsec_test_topology P: the IPsec interop tests' namespaces and links, P-gw running anygate
# between an internet client and the customer router P-site:
#   P-client 198.51.100.10 [P-c] --- [P-inet] 198.51.100.1  P-gw  192.0.2.1 [P-transit] --- [P-s] 192.0.2.2 P-site
# The site's host 10.10.0.1 is on P-site's loopback, and P-site reaches the anycast endpoints
# (203.0.113.0/24) through P-gw.
ipsec_test_topology() {
  local p=$1
  fresh_namespaces "$p-client" "$p-gw" "$p-site"
  veth "$p-client" "$p-c" "$p-gw" "$p-inet"
  veth "$p-gw" "$p-transit" "$p-site" "$p-s"
  ip -n "$p-client" addr add 198.51.100.10/24 dev "$p-c"
  ip -n "$p-client" route add default via 198.51.100.1
  ip -n "$p-site" addr add 192.0.2.2/24 dev "$p-s"
  ip -n "$p-site" route add 203.0.113.0/24 via 192.0.2.1
  ip -n "$p-site" addr add 10.10.0.1/32 dev lo
}

# ipsec_test_ports P: anygate's two [[ports]] on that topology (DPDK net_af_packet).
ipsec_test_ports() {
  cat <<EOF2
[[ports]]
name = "internet"
device = "net_af_packet0,iface=$1-inet"
address = "198.51.100.1/24"

[[ports]]
name = "transit"
device = "net_af_packet1,iface=$1-transit"
address = "192.0.2.1/24"
EOF2
}

udp_stream_py=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/udp_stream.py

# udp_streams_start COUNT SECONDS: numbered UDP streams (udp_stream.py) of COUNT datagrams, 100 a
# second, from the client to the site's host 10.10.0.1 and back, each end receiving for at most
# SECONDS; on that topology, with the script's $client, $site and $work.
udp_streams_start() {
  local count=$1 seconds=$2
  ip netns exec "$site" /usr/bin/python3 "$udp_stream_py" recv 7001 "$seconds" >"$work/at-site.json" &
  udp_stream_pids=($!)
  ip netns exec "$client" /usr/bin/python3 "$udp_stream_py" recv 7002 "$seconds" >"$work/at-client.json" &
  udp_stream_pids+=($!)
  # Both receivers bound before the first datagram is sent.
  for _ in $(seq 50); do
    ip netns exec "$site" ss -ulnH 'sport = :7001' | grep -q . &&
      ip netns exec "$client" ss -ulnH 'sport = :7002' | grep -q . && break
    sleep 0.1
  done
  ip netns exec "$client" /usr/bin/python3 "$udp_stream_py" send 10.10.0.1 7001 "$count" 100 \
    >"$work/from-client.txt" &
  udp_stream_pids+=($!)
  ip netns exec "$site" /usr/bin/python3 "$udp_stream_py" send 198.51.100.10 7002 "$count" 100 10.10.0.1 \
    >"$work/from-site.txt" &
  udp_stream_pids+=($!)
}

# udp_streams_check COUNT THROUGH: wait for the streams to end; fail (the script's fail) unless
# every number arrived at both ends. THROUGH says what they went through.
udp_streams_check() {
  local count=$1 through=$2
  wait "${udp_stream_pids[@]}" || fail "the UDP stream"
  /usr/bin/python3 - "$work/at-site.json" "$work/at-client.json" "$count" "$through" <<'PY' ||
import json, sys
count = int(sys.argv[3])
for path, way in ((sys.argv[1], "client -> site"), (sys.argv[2], "site -> client")):
    r = json.loads(open(path).read())
    assert r["count"] == count and r["distinct"] == count and r["missing"] == 0, (way, r)
print(f"numbered UDP stream: {count} of {count} datagrams each way through {sys.argv[4]}, none lost, "
      "counted at both ends")
PY
    fail "datagrams lost in a rekey"
}

# wait_for PATTERN TENTHS [FILE] [N]: wait up to TENTHS tenths of a second until FILE (the
# script's $work/ike.log, anygate's IKE event log) has at least N (1) lines matching PATTERN.
wait_for() {
  local file=${3:-$work/ike.log} n=${4:-1}
  for _ in $(seq "$2"); do [ "$(grep -c -- "$1" "$file" 2>/dev/null)" -ge "$n" ] && return 0; sleep 0.1; done
  return 1
}

# swan_spis: the SPIs of the Child SA strongSwan ($work/swan/charon.log) reported last, "IN OUT"
# as strongSwan sees them.
swan_spis() {
  local spis
  spis=$(grep -o 'CHILD_SA net{[0-9]*} established with SPIs [0-9a-f]*_i [0-9a-f]*_o' "$work/swan/charon.log" | tail -1)
  [ -n "$spis" ] || return 1
  spis=${spis##*SPIs }
  echo "${spis%%_i*} $(sed 's/.*_i \([0-9a-f]*\)_o/\1/' <<<"$spis")"
}
