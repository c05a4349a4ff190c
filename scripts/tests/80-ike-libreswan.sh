#!/usr/bin/env bash
# A second, independent IKEv2 stack against anygate's responder: Libreswan 4.10's pluto (unpacked by
# scripts/setup.sh, never installed) in a network namespace initiates to anygate on a net_af_packet
# port, for each IKE suite and ID type. Pluto must report the IKE SA established and anygate must
# install the Child SA in its dataplane with the SPIs pluto reports. Without NAT the session stays
# on UDP 500 and the Child SA is raw ESP. (Pluto cannot install ESP itself in this kernel, so no
# traffic goes through these tunnels; scripts/tests/70-ipsec-strongswan.sh carries traffic.)
#
#   anygate (DPDK), agl-gw                         Libreswan, agl-site
#   192.0.2.1 [transit] -------------------------- 192.0.2.2
#   anycast 203.0.113.1 (t1), 203.0.113.2 (t2)     10.10.0.1 (t1), 10.20.0.1 (t2) on lo
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
libreswan=${ANYGATE_LIBRESWAN:-/opt/anygate/libreswan}
[ -x "$libreswan/usr/libexec/ipsec/pluto" ] || { echo "Libreswan is not unpacked: run scripts/setup.sh" >&2; exit 1; }
cargo build -q --bin anygate
anygate=$root/target/debug/anygate
. scripts/lib/netns.sh

gw=agl-gw site=agl-site
work=$(mktemp -d /tmp/anygate-libreswan.XXXXXX)
anygate_pid=
stop_pluto() {
  local pid
  pid=$(cat "$work/run/pluto/pluto.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$work/run/pluto"
}
cleanup() {
  set +e
  stop_pluto
  teardown "$work" $gw $site
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  echo "--- anygate"; tail -n 20 "$work/anygate.err"
  echo "--- IKE log"; tail -n 20 "$work/ike.log"
  echo "--- pluto"; tail -n 30 "$work/pluto.log"; cat "$work/whack.log" 2>/dev/null
  exit 1
}

fresh_namespaces $gw $site
veth $gw agl-transit $site agl-s
ip -n $site addr add 192.0.2.2/24 dev agl-s
ip -n $site route add 203.0.113.0/24 via 192.0.2.1
ip -n $site addr add 10.10.0.1/32 dev lo
ip -n $site addr add 10.20.0.1/32 dev lo

psk=test-only-psk-0123456789abcdef
cat >"$work/anygate.toml" <<EOF
$(ike_test_dataplane 9)

[[ports]]
name = "transit"
device = "net_af_packet0,iface=agl-transit"
address = "192.0.2.1/24"

$(ike_test_tunnels "$psk")
EOF
start_anygate $gw "$anygate" "$work" || fail "anygate did not start"
ip netns exec $site ping -c 1 -W 3 192.0.2.1 >/dev/null || fail "no underlay between pluto and anygate"

mkdir -p "$work/nss" "$work/run"
certutil -N -d "sql:$work/nss" --empty-password
installed=0
# case: name, ike=, esp=, leftid, the ID type it must arrive as, tunnel, anycast endpoint, site prefix
run_case() {
  local name=$1 ike=$2 esp=$3 id=$4 id_type=$5 tunnel=$6 anycast=$7 subnet=$8
  cat >"$work/ipsec.conf" <<CONF
config setup
    logfile=$work/pluto.log
    logappend=no

conn t
    ikev2=insist
    authby=secret
    left=192.0.2.2
    leftid=$id
    leftsubnet=$subnet
    leftupdown=/bin/true
    right=$anycast
    rightid=$anycast
    rightsubnet=198.51.100.0/24
    ike=$ike
    esp=$esp
    keyingtries=1
    auto=add
CONF
  printf '%s %s : PSK "%s"\n' "$id" "$anycast" "$psk" >"$work/ipsec.secrets"
  : >"$work/pluto.log"
  ip netns exec $site unshare -m --propagation private sh -c "mkdir -p /usr/libexec/ipsec && \
    mount --bind $libreswan/usr/libexec/ipsec /usr/libexec/ipsec && mount --bind $work/run /run && \
    mkdir -p /run/pluto && exec $libreswan/usr/libexec/ipsec/pluto --config $work/ipsec.conf \
    --secretsfile $work/ipsec.secrets --nssdir $work/nss --rundir /run/pluto --logfile $work/pluto.log" \
    >"$work/pluto.out" 2>&1 </dev/null
  for _ in $(seq 50); do [ -S "$work/run/pluto/pluto.ctl" ] && break; sleep 0.1; done
  [ -S "$work/run/pluto/pluto.ctl" ] || fail "$name: pluto did not start: $(cat "$work/pluto.out")"
  local whack=("$libreswan/usr/libexec/ipsec/whack" --ctlsocket "$work/run/pluto/pluto.ctl")
  # Pluto adds the connection (through addconn) after its socket appears: initiate once it has.
  for _ in $(seq 50); do grep -q '"t": added IKEv2 connection' "$work/pluto.log" && break; sleep 0.1; done
  "${whack[@]}" --name t --initiate --asynchronous >"$work/whack.log" 2>&1 || true
  # Pluto establishes the IKE SA and agrees the Child SA, then fails to install its own ESP SAs (no
  # ESP in this kernel), naming the SPI it would send with: anygate's inbound SPI.
  local spi=
  for _ in $(seq 100); do
    spi=$(grep -m1 -o "Add SA esp\.[0-9a-f]*@$anycast" "$work/pluto.log" || true)
    [ -n "$spi" ] && break
    sleep 0.1
  done
  grep -q "initiator established IKE SA; authenticated peer using authby=secret" "$work/pluto.log" ||
    fail "$name: pluto has no IKE SA"
  [ -n "$spi" ] || fail "$name: pluto agreed no Child SA"
  spi=${spi#Add SA esp.}; spi=$(printf '%08x' "0x${spi%@*}")
  for _ in $(seq 30); do
    grep -q "installed on every worker for tunnel $tunnel: .* in $spi" "$work/ike.log" && break
    sleep 0.1
  done
  grep -q "installed on every worker for tunnel $tunnel: .* in $spi" "$work/ike.log" ||
    fail "$name: anygate did not install inbound SPI $spi"
  local suite
  suite=$(grep -o "IKE SA established for tunnel $tunnel ($id_type [^)]*): [^\"]*" "$work/ike.log" | tail -1)
  [ -n "$suite" ] || fail "$name: no IKE SA for tunnel $tunnel with an ID of type $id_type"
  installed=$((installed + 1))
  stop_pluto
  suite=${suite#*tunnel $tunnel }
  echo "$name: pluto's IKE SA up, at anygate ${suite}; Child SA with inbound SPI $spi installed"
}

run_case "AES-GCM-256/SHA2-384/group 20, RFC822 ID, ESP AES-GCM-256" 'aes_gcm256-sha2_384;dh20' aes_gcm256-null \
  ipsec@t1.acct.ipsec.example.net RFC822_ADDR t1 203.0.113.1 10.10.0.0/24
run_case "AES-GCM-128/SHA2-256/group 14, FQDN ID, ESP AES-CBC-256+SHA2-256" 'aes_gcm128-sha2_256;modp2048' \
  aes256-sha2_256 @t1.acct.ipsec.example.net FQDN t1 203.0.113.1 10.10.0.0/24
run_case "AES-CBC-256+SHA2-256/SHA2-256/group 5, KEY_ID, ESP AES-GCM-128" 'aes256-sha2_256;modp1536' \
  aes_gcm128-null "@#$(printf acct_t1 | od -An -tx1 | tr -d ' \n')" KEY_ID t1 203.0.113.1 10.10.0.0/24
run_case "AES-GCM-256/SHA2-512/group 20, IPv4 ID, ESP AES-CBC-128+SHA1" 'aes_gcm256-sha2_512;dh20' \
  aes128-sha1 192.0.2.2 IPV4_ADDR t2 203.0.113.2 10.20.0.0/24

/usr/bin/python3 - "$work/ike.log" "$psk" <<'PY' || fail "IKE event log"
import json, sys
text = open(sys.argv[1]).read()
assert sys.argv[2] not in text, "the pre-shared key is in the log"
events = [json.loads(line) for line in text.splitlines()]
established = [e for e in events if e["message"].startswith("IKE SA established")]
assert len(established) >= 4, established
assert all(e["local_port"] == 500 and e["remote_port"] == 500 for e in established), "no NAT: IKE stays on 500"
raw = [e for e in events if e["message"].startswith("Child SA established") and "raw ESP" in e["message"]]
assert len(raw) >= 4, "no NAT: the Child SAs are raw ESP"
print(f"IKE event log: {len(established)} IKE SAs on UDP 500, {len(raw)} raw ESP Child SAs, no secret")
PY
