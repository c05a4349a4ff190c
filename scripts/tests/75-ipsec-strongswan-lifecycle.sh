#!/usr/bin/env bash
# An IPsec tunnel through what ends tunnels, with a real strongSwan router (Debian's 5.9.8,
# kernel-libipsec) and anygate on DPDK net_af_packet ports in namespaces:
#   1. IKE fragmentation: both sides cut their IKE messages into datagrams of at most 256 bytes
#      (strongSwan with fragmentation = force); the tunnel comes up and carries traffic, and the
#      rekeys below go in fragments both ways.
#   2. A numbered UDP stream, 100 datagrams a second each way, runs while strongSwan rekeys the
#      Child SA (PFS group 20, fragmented too) and the IKE SA: every number arrives at both ends.
#   3. The router restarts (charon killed) and comes back with INITIAL_CONTACT: anygate ends its
#      old IKE SA and takes the old Child SA out of every worker before the new one goes in.
#   4. anygate restarts and forgets the tunnel: strongSwan's dead peer detection finds it gone
#      and, with dpd_action = restart, brings the tunnel up again.
#   5. The router vanishes: anygate's liveness checks go unanswered through their retransmissions
#      and the IKE SA and its Child SA are taken down.
#
#   internet client         anygate (DPDK)                        customer router (strongSwan)
#   agf-client              agf-gw                                agf-site
#   198.51.100.10 --------- 198.51.100.1 [internet]
#                           192.0.2.1    [transit] --------------- 192.0.2.2
#                           anycast 203.0.113.1 (t1) <== ESP ==>   site host 10.10.0.1 on lo
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
cargo build -q --bin anygate
anygate=$root/target/debug/anygate
swan=$root/scripts/lib/strongswan-router.sh
. scripts/lib/netns.sh

client=agf-client gw=agf-gw site=agf-site
work=$(mktemp -d /tmp/anygate-lifecycle.XXXXXX)
anygate_pid=
cleanup() {
  set +e
  "$swan" stop "$work/swan" 2>/dev/null
  teardown "$work" $client $gw $site
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  echo "--- anygate"; tail -n 30 "$work/anygate.err"
  echo "--- IKE log"; tail -n 20 "$work/ike.log"
  echo "--- strongSwan"; tail -n 40 "$work/swan/charon.log"
  exit 1
}

ipsec_test_topology agf

psk=test-only-psk-0123456789abcdef
cat >"$work/anygate.toml" <<EOF
$(ike_test_dataplane 9)

$(ipsec_test_ports agf)

$(ike_test_tunnels "$psk" "fragment_size = 256
liveness_check_seconds = 2
retransmit_start_ms = 300")

[[routes]]
prefix = "10.10.0.0/24"
nexthop = "t1"
EOF
start_anygate $gw "$anygate" "$work" || fail "anygate did not start"
ip netns exec $site ping -c 1 -W 3 192.0.2.1 >/dev/null || fail "no underlay between router and anygate"

# The router: IKE fragments of at most 256 bytes, quick retransmissions, dead peer detection after
# 2 s without a word from anygate, and the tunnel brought up again when anygate is found gone.
export SWAN_CHARON_EXTRA="fragment_size = 256
  retransmit_timeout = 1
  retransmit_base = 1.4"
export SWAN_CONN_EXTRA="fragmentation = force
    dpd_delay = 2s"
export SWAN_CHILD_EXTRA="dpd_action = restart"
"$swan" config "$work/swan" 192.0.2.2 203.0.113.1 aes256gcm16-prfsha384-ecp384 aes256gcm16-ecp384 \
  ipsec@t1.acct.ipsec.example.net 10.10.0.0/24 198.51.100.0/24 "$psk"

# The tunnel carries ping both ways, and anygate holds the SPIs strongSwan reports.
check_up() {
  local what=$1 in_s out_s out
  read -r in_s out_s < <(swan_spis) || fail "$what: no Child SA in the strongSwan log"
  wait_for "installed on every worker for tunnel t1: .* in $out_s out $in_s" 50 ||
    fail "$what: anygate did not install SPIs in $out_s out $in_s"
  out=$(ip netns exec $client ping -c 3 -i 0.2 -W 2 10.10.0.1 2>&1) && grep -q " 0% packet loss" <<<"$out" ||
    fail "$what: ping client -> site: $out"
  out=$(ip netns exec $site ping -c 3 -i 0.2 -W 2 -I 10.10.0.1 198.51.100.10 2>&1) &&
    grep -q " 0% packet loss" <<<"$out" || fail "$what: ping site -> client: $out"
  echo "$what: tunnel up, SPIs in $out_s out $in_s, ping 3/3 both ways"
}

charon_pid() { cat "$work/swan/run/charon.pid"; }

# 1. Fragmented IKE both ways.
"$swan" start $site "$work/swan"
"$swan" initiate "$work/swan" net || fail "swanctl --initiate: $(cat "$work/swan/initiate.log")"
check_up "fragmented IKE"
grep -q "splitting IKE message .* into [0-9]* fragments" "$work/swan/charon.log" ||
  fail "strongSwan sent no fragmented IKE message"

# 2. A numbered UDP stream both ways while the Child SA and then the IKE SA are rekeyed.
count=800
udp_streams_start $count 20
sleep 1.5
read -r old_in old_out < <(swan_spis)
swanctl --rekey --uri "unix://$work/swan/charon.vici" --child net >/dev/null || fail "swanctl --rekey --child"
wait_for "Child SA rekeyed for tunnel t1: [A-Z0-9_/]*/ECP_384" 50 || fail "no Child SA rekey with PFS group 20"
wait_for "removed from every worker for tunnel t1: in $old_out out $old_in" 50 ||
  fail "the rekeyed Child SA $old_out/$old_in was not removed"
sleep 1.5
swanctl --rekey --uri "unix://$work/swan/charon.vici" --ike anygate >/dev/null || fail "swanctl --rekey --ike"
wait_for "IKE SA rekeyed for tunnel t1" 50 || fail "no IKE SA rekey"
udp_streams_check $count "a Child SA rekey (PFS group 20) and an IKE SA rekey"
# anygate's IKE_AUTH response fits 256 bytes; its answers to the rekeys, with KE payloads, do not.
reassembled=$(grep -c "reassembled fragmented IKE message" "$work/swan/charon.log") ||
  fail "strongSwan reassembled no fragmented response of anygate's"
echo "strongSwan fragmented $(grep -c "splitting IKE message" "$work/swan/charon.log") IKE messages and" \
  "reassembled $reassembled fragmented responses of anygate's"

# 3. The router restarts; its new IKE SA says INITIAL_CONTACT and the old SAs go.
read -r old_in old_out < <(swan_spis)
kill -KILL "$(charon_pid)"
"$swan" stop "$work/swan"
mv "$work/swan/charon.log" "$work/swan/charon-1.log"
"$swan" start $site "$work/swan"
"$swan" initiate "$work/swan" net || fail "swanctl --initiate after the router's restart"
wait_for "the peer came back with INITIAL_CONTACT" 50 || fail "no INITIAL_CONTACT handling"
wait_for "removed from every worker for tunnel t1: in $old_out out $old_in" 50 ||
  fail "the Child SA $old_out/$old_in of the router before its restart is still installed"
check_up "router restarted with INITIAL_CONTACT, its old SAs removed"

# 4. anygate restarts: strongSwan's dead peer detection finds the IKE SA gone and starts again.
child_sas=$(grep -c 'CHILD_SA net{[0-9]*} established with SPIs' "$work/swan/charon.log")
kill -TERM $anygate_pid
wait $anygate_pid || fail "anygate exited with an error"
anygate_pid=
mv "$work/counters.json" "$work/counters-1.json"
mv "$work/ike.log" "$work/ike-1.log"
start_anygate $gw "$anygate" "$work" || fail "anygate did not start again"
wait_for "IKE SA established for tunnel t1" 300 || fail "strongSwan did not bring the tunnel up again"
# anygate logs its IKE SA before strongSwan has read the IKE_AUTH response and logged the new Child
# SA; its SPIs are read only once strongSwan has.
wait_for 'CHILD_SA net{[0-9]*} established with SPIs' 50 "$work/swan/charon.log" $((child_sas + 1)) ||
  fail "strongSwan did not report the new Child SA"
grep -q "restarting CHILD_SA net" "$work/swan/charon.log" || fail "strongSwan's DPD did not restart the Child SA"
check_up "anygate restarted, strongSwan's DPD (dpd_action = restart) brought the tunnel back"

# 5. The router vanishes: anygate's liveness checks go unanswered and its SAs are taken down.
read -r old_in old_out < <(swan_spis)
kill -KILL "$(charon_pid)"
wait_for "answered none of 5 retransmissions, 1 Child SAs with it" 300 || fail "the vanished router was not given up"
wait_for "removed from every worker for tunnel t1: in $old_out out $old_in" 50 ||
  fail "the vanished router's Child SA is still installed"
echo "router vanished: anygate's liveness checks went unanswered, its IKE SA and Child SA removed"

kill -TERM $anygate_pid
wait $anygate_pid || fail "anygate exited with an error"
anygate_pid=
/usr/bin/python3 - "$work/counters-1.json" "$work/counters.json" "$work/ike-1.log" "$work/ike.log" "$psk" <<'PY' || fail "counters"
import json, sys
first, second = (json.load(open(p)) for p in sys.argv[1:3])
psk = sys.argv[5]
for path in sys.argv[3:5]:
    assert psk not in open(path).read(), "the pre-shared key is in the IKE log"
r = first["ike"]["responder"]
assert r["fragments_received"] > 0 and r["messages_reassembled"] >= 2 and r["messages_fragmented"] >= 2, r
assert r["fragments_dropped"] == 0 and r["bad_icv"] == 0, r
assert r["initial_contact_deletes"] == 1, r
ike = first["ike"]["counters"]
assert ike["child_sas_rekeyed"] == 1 and ike["ike_sas_rekeyed"] == 1 and ike["child_sas_failed"] == 0, ike
assert second["ike"]["child_sas"] == [] and second["ike"]["ike_sas"] == [], second["ike"]
print(f"counters: {r['fragments_received']} IKE fragments received, {r['messages_reassembled']} messages "
      f"reassembled, {r['messages_fragmented']} of ours fragmented, none dropped; 1 INITIAL_CONTACT delete; "
      "nothing left installed after the router vanished")
PY
