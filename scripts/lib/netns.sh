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
