#!/usr/bin/env bash
# IKE alone against a real initiator: strongSwan (Debian's charon, kernel-libipsec) in one network
# namespace brings IKE and Child SAs up with ike-agent's responder on kernel UDP sockets in another,
# for each IKE suite and ID type; a wrong pre-shared key must fail. The dataplane is not involved.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -q -p ike-agent --example udp_responder
responder=$PWD/target/debug/examples/udp_responder
swan=$PWD/scripts/lib/strongswan-router.sh

work=$(mktemp -d /tmp/anygate-ike.XXXXXX)
ns_i=ag-ike-i ns_r=ag-ike-r
cleanup() {
  "$swan" stop "$work/swan" 2>/dev/null || true
  pkill -f "$responder" 2>/dev/null || true
  ip netns del $ns_i 2>/dev/null || true
  ip netns del $ns_r 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
cleanup_namespaces() { ip netns del $ns_i 2>/dev/null || true; ip netns del $ns_r 2>/dev/null || true; }
cleanup_namespaces
ip netns add $ns_i
ip netns add $ns_r
ip link add ag-ike0 netns $ns_i type veth peer name ag-ike1 netns $ns_r
ip -n $ns_i addr add 192.0.2.1/24 dev ag-ike0
ip -n $ns_r addr add 192.0.2.2/24 dev ag-ike1
for ns in $ns_i $ns_r; do ip -n $ns link set lo up; done
ip -n $ns_i link set ag-ike0 up
ip -n $ns_r link set ag-ike1 up
ip -n $ns_i addr add 198.51.100.1/32 dev lo

psk=test-only-psk-0123456789abcdef
printf '%s' "$psk" > "$work/psk"

# case: name, IKE proposal, ESP proposal, local ID, pre-shared key, expected result
run_case() {
  local name=$1 ike=$2 esp=$3 id=$4 key=$5 expect=$6
  "$swan" config "$work/swan" 192.0.2.1 192.0.2.2 "$ike" "$esp" "$id" 198.51.100.0/24 0.0.0.0/0 "$key"
  ip netns exec $ns_r "$responder" 192.0.2.2 acct example.net t1 "$work/psk" 20 > "$work/responder.log" 2>&1 &
  local responder_pid=$!
  SWAN_ROUTES=no "$swan" start $ns_i "$work/swan"
  local result=up
  "$swan" initiate "$work/swan" net || result=refused
  # The responder prints its Child SA just after sending the IKE_AUTH response that strongSwan
  # has already taken: it is waited for, not cut short by the kill below.
  if [ "$result" = up ]; then
    for _ in $(seq 50); do grep -q "child t1 in" "$work/responder.log" && break; sleep 0.1; done
  fi
  "$swan" stop "$work/swan"
  kill $responder_pid 2>/dev/null || true
  wait $responder_pid 2>/dev/null || true
  if [ "$result" = up ]; then
    # Both sides name the same Child SA SPIs.
    local spis
    spis=$(grep -o 'CHILD_SA net{[0-9]*} established with SPIs [0-9a-f]*_i [0-9a-f]*_o' "$work/swan/charon.log" | head -1)
    local in_i=${spis##*SPIs } ; in_i=${in_i%%_i*}
    local out_i=${spis##*_i } ; out_i=${out_i%_o}
    if ! grep -q "child t1 in $out_i out $in_i" "$work/responder.log"; then
      echo "$name: SPIs differ: strongSwan '$spis'"; cat "$work/responder.log"; exit 1
    fi
  fi
  if [ "$result" != "$expect" ]; then
    echo "$name: expected $expect, got $result"
    tail -n 20 "$work/swan/initiate.log"; cat "$work/responder.log"; exit 1
  fi
  echo "$name: $result ($(grep -o 'IKE SA established.*' "$work/responder.log" | head -1 || grep -o 'IKE_AUTH refused.*' "$work/responder.log" | head -1))"
}

run_case "AES-GCM-256/SHA2-384/group 20, RFC822 ID" aes256gcm16-prfsha384-ecp384 aes256gcm16 \
  ipsec@t1.acct.example.net "$psk" up
run_case "AES-GCM-128/SHA2-256/group 14, FQDN ID" aes128gcm16-prfsha256-modp2048 aes128-sha256 \
  t1.acct.example.net "$psk" up
run_case "AES-CBC-256+SHA2-256/SHA2-512/group 5, KEY_ID" aes256-sha256-prfsha512-modp1536 aes256-sha1 \
  '"keyid:acct_t1"' "$psk" up
run_case "wrong pre-shared key" aes256gcm16-prfsha384-ecp384 aes256gcm16 \
  ipsec@t1.acct.example.net not-the-key refused
