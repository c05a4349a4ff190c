#!/usr/bin/env bash
# anygate rekeys Child SAs itself, against a real strongSwan router (Debian's 5.9.8,
# kernel-libipsec) that never rekeys on its own (rekey_time = 0), anygate on DPDK net_af_packet
# ports in namespaces, while a numbered UDP stream runs both ways at 100 datagrams a second:
#   1. At its soft lifetime (child_sa_rekey_seconds = 6) anygate rekeys the Child SA, with the PFS
#      group the router listed (20), installs the new one both ways and deletes the old one once
#      strongSwan has answered; twice.
#   2. Crossing rekeys (RFC 7296 2.8.1): IKE from anygate to the router is held back (nftables in
#      the router's namespace drops UDP 4500 with the non-ESP marker, by exchange and flags; ESP
#      passes) while anygate's next rekey goes out and strongSwan is told to rekey the same Child
#      SA. anygate answers strongSwan's request; then its own request is let through, so that each
#      side has the other's rekey in hand while its own is unanswered; then its answer; then its
#      Deletes. Both sides settle on the same Child SA by the nonces, and the loser deletes its
#      redundant one.
#   Every number of the stream arrives at both ends, and both sides end with the same one Child SA.
#
#   internet client         anygate (DPDK)                        customer router (strongSwan)
#   agr-client              agr-gw                                agr-site
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

client=agr-client gw=agr-gw site=agr-site
work=$(mktemp -d /tmp/anygate-our-rekeys.XXXXXX)
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
  echo "--- IKE log"; tail -n 30 "$work/ike.log"
  echo "--- strongSwan"; tail -n 50 "$work/swan/charon.log"
  exit 1
}

ipsec_test_topology agr

psk=test-only-psk-0123456789abcdef
cat >"$work/anygate.toml" <<EOF
$(ike_test_dataplane 11)

$(ipsec_test_ports agr)

$(ike_test_tunnels "$psk" "child_sa_rekey_seconds = 6
retransmit_start_ms = 1000")

[[routes]]
prefix = "10.10.0.0/24"
nexthop = "t1"
EOF
start_anygate $gw "$anygate" "$work" || fail "anygate did not start"
ip netns exec $site ping -c 1 -W 3 192.0.2.1 >/dev/null || fail "no underlay between router and anygate"

# The router never rekeys the Child SA by itself, and retransmits quickly.
export SWAN_CHARON_EXTRA="retransmit_timeout = 1
  retransmit_base = 1.4"
export SWAN_CHILD_EXTRA="rekey_time = 0"
"$swan" config "$work/swan" 192.0.2.2 203.0.113.1 aes256gcm16-prfsha384-ecp384 aes256gcm16-ecp384 \
  ipsec@t1.acct.ipsec.example.net 10.10.0.0/24 198.51.100.0/24 "$psk"

"$swan" start $site "$work/swan"
"$swan" initiate "$work/swan" net || fail "swanctl --initiate: $(cat "$work/swan/initiate.log")"
wait_for "Child SA installed on every worker for tunnel t1" 50 || fail "the tunnel did not come up"
out=$(ip netns exec $client ping -c 3 -i 0.2 -W 2 10.10.0.1 2>&1) && grep -q " 0% packet loss" <<<"$out" ||
  fail "ping client -> site: $out"
out=$(ip netns exec $site ping -c 3 -i 0.2 -W 2 -I 10.10.0.1 198.51.100.10 2>&1) &&
  grep -q " 0% packet loss" <<<"$out" || fail "ping site -> client: $out"

count=2600
udp_streams_start $count 40

# 1. Two rekeys of anygate's, each old Child SA deleted once the router has answered.
wait_for "deleted after its rekey" 150 "$work/ike.log" 2 || fail "anygate did not rekey the Child SA twice"
grep -q "rekeying Child SA .* of tunnel t1 (AES_GCM_16_256/ECP_384)" "$work/ike.log" ||
  fail "anygate's rekey did not offer PFS group 20"
[ "$(grep -c "received DELETE for ESP CHILD_SA" "$work/swan/charon.log")" -ge 2 ] ||
  fail "strongSwan did not see anygate delete the rekeyed Child SAs"
echo "anygate rekeyed the Child SA twice at its soft lifetime (PFS group 20) and deleted each old one"

# 2. Crossing rekeys: hold back, separately, anygate's CREATE_CHILD_SA requests, its answers and
# its INFORMATIONAL requests (Deletes) to the router. IKE behind the UDP header and the non-ESP
# marker: exchange type at bit 240, flags (0x20: response) at bit 248.
hold() {
  ip netns exec $site nft -a -e add rule inet hold input udp dport 4500 @th,64,32 0 "$@" drop |
    sed -n 's/.*# handle \([0-9]*\)$/\1/p'
}
ip netns exec $site nft add table inet hold
ip netns exec $site nft add chain inet hold input '{ type filter hook input priority 0; }'
requests=$(hold @th,240,8 36 @th,248,8 \& 0x20 == 0)
answers=$(hold @th,248,8 \& 0x20 == 0x20)
deletes=$(hold @th,240,8 37 @th,248,8 \& 0x20 == 0)
[ -n "$requests" ] && [ -n "$answers" ] && [ -n "$deletes" ] || fail "nftables rules"
wait_for "rekeying Child SA" 100 "$work/ike.log" 3 || fail "anygate did not start its third rekey"
swanctl --rekey --uri "unix://$work/swan/charon.vici" --child net >/dev/null || fail "swanctl --rekey --child"
wait_for "generating CREATE_CHILD_SA request" 20 "$work/swan/charon.log" || fail "strongSwan did not rekey"
sleep 0.5
ip netns exec $site nft delete rule inet hold input handle "$requests"
wait_for "rekeyed by both sides at once" 50 || fail "anygate saw no collision"
ip netns exec $site nft delete rule inet hold input handle "$answers"
wait_for "CHILD_SA rekey collision" 50 "$work/swan/charon.log" || fail "strongSwan saw no collision"
ip netns exec $site nft delete rule inet hold input handle "$deletes"
winner=$(grep -o "rekeyed by both sides at once: [a-z' ]* stays" "$work/ike.log" | sed 's/.*once: //')
swan_saw=$(grep -o 'CHILD_SA rekey collision [a-z]*' "$work/swan/charon.log")
echo "crossing rekeys: at anygate $winner, at strongSwan $swan_saw"
case "$winner/$swan_saw" in
  "ours stays/CHILD_SA rekey collision lost") removed=4 ;; # the old one, and strongSwan's redundant one
  "the peer's stays/CHILD_SA rekey collision won") removed=3 ;; # the old one; ours never went in
  *) fail "the two sides settled the collision differently" ;;
esac
# The winner's Delete of the old Child SA, and the loser's of its redundant one.
wait_for "Child SA removed from every worker for tunnel t1" 100 "$work/ike.log" $removed ||
  fail "the Child SAs the collision left were not removed"

udp_streams_check $count "anygate's rekeys and crossing rekeys"

# Both sides hold the same one Child SA: strongSwan's installed SPIs are anygate's, reversed. Looked
# at just after a rekey of anygate's has ended, five seconds before the next one.
done_rekeys=$(grep -c "deleted after its rekey" "$work/ike.log")
wait_for "deleted after its rekey" 100 "$work/ike.log" $((done_rekeys + 1)) || fail "anygate stopped rekeying"
sas=$(swanctl --list-sas --uri "unix://$work/swan/charon.vici")
# Of the Child SAs listed, those INSTALLED (strongSwan keeps a rekeyed one a while as DELETED).
installed() { awk -v way="$1" '/^ *net: /{on = /INSTALLED/} on && $1 == way {print substr($2, 1, 8)}' <<<"$sas"; }
swan_in=$(installed in)
swan_out=$(installed out)
[ "$(wc -w <<<"$swan_in")" = 1 ] || fail "strongSwan holds Child SAs in $swan_in: $sas"
out=$(ip netns exec $client ping -c 3 -i 0.2 -W 2 10.10.0.1 2>&1) && grep -q " 0% packet loss" <<<"$out" ||
  fail "ping client -> site after the collision: $out"
kill -TERM $anygate_pid
wait $anygate_pid || fail "anygate exited with an error"
anygate_pid=
/usr/bin/python3 - "$work/counters.json" "$swan_in" "$swan_out" "$work/ike.log" "$psk" <<'PY' || fail "counters"
import json, sys
status = json.load(open(sys.argv[1]))["ike"]
swan_in, swan_out = sys.argv[2], sys.argv[3]
assert sys.argv[5] not in open(sys.argv[4]).read(), "the pre-shared key is in the IKE log"
children = [(c["inbound_spi"], c["outbound_spi"]) for c in status["child_sas"]]
assert children == [(swan_out, swan_in)], (children, swan_in, swan_out)
r, ike = status["responder"], status["counters"]
assert r["child_rekeys_started"] >= 3 and r["rekey_collisions"] == 1, r
assert ike["child_sas_failed"] == 0, ike
print(f"both sides hold one Child SA, in {swan_out} out {swan_in} at anygate; {r['child_rekeys_started']} rekeys "
      f"started by anygate, {r['rekey_collisions']} collision")
PY
