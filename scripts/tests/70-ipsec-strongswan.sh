#!/usr/bin/env bash
# IPsec tunnels negotiated by a real strongSwan router with anygate's IKEv2 responder, carrying
# traffic through the DPDK dataplane. anygate runs on net_af_packet ports in one namespace, between
# an internet client and the customer router (Debian's strongSwan 5.9.8, kernel-libipsec, which
# always sends ESP in UDP 4500). For each IKE suite and ID type the router initiates, the Child SA
# is installed in the dataplane with the SPIs strongSwan reports, ping and a TCP transfer pass both
# ways through the ESP tunnel, and the IKE event log tells what was negotiated without a secret.
# What passed on the wire is captured and decrypted by tshark with the keys strongSwan logged: IKE_AUTH
# and ESP must read as well-formed, with the identities, selectors and packets the case expects.
# One case runs trixie's strongSwan 6 (setup.sh unpacks it under /opt/anygate) with raw ESP, which
# 5.9.8 cannot send. Cases that offer PFS rekey their Child SA with it (CREATE_CHILD_SA with a KE
# payload) while a ping stream of 50 packets a second runs both ways: not one may be lost, the new
# SPIs must carry the traffic and the old SA must leave every worker on strongSwan's Delete. One
# case also rekeys the IKE SA, and one comes up while a flood of IKE_SA_INIT from spoofed sources
# keeps the responder past its cookie threshold: strongSwan answers the COOKIE challenge and gets
# through, and the half-open table never grows past the threshold.
#
#   internet client         anygate (DPDK)                        customer router (strongSwan)
#   agi-client              agi-gw                                agi-site
#   198.51.100.10 --------- 198.51.100.1 [internet]
#                           192.0.2.1    [transit] --------------- 192.0.2.2
#                           anycast 203.0.113.1 (t1), .2 (t2) <== ESP ==> site hosts 10.10.0.1 (t1),
#                                                                         10.20.0.1 (t2), on lo
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
cargo build -q --bin anygate
anygate=$root/target/debug/anygate
swan=$root/scripts/lib/strongswan-router.sh
. scripts/lib/netns.sh

client=agi-client gw=agi-gw site=agi-site
work=$(mktemp -d /tmp/anygate-ipsec.XXXXXX)
anygate_pid= echo_pids=() tcpdump_pid=
cleanup() {
  set +e
  [ -z "$tcpdump_pid" ] || kill "$tcpdump_pid" 2>/dev/null
  "$swan" stop "$work/swan" 2>/dev/null
  for p in "${echo_pids[@]}"; do kill "$p" 2>/dev/null; done
  teardown "$work" $client $gw $site
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  echo "--- anygate"; tail -n 30 "$work/anygate.err"
  echo "--- IKE log"; tail -n 20 "$work/ike.log"
  # The charon log holds keys (level 4, for decrypting the captures): leave them out.
  echo "--- strongSwan"
  grep -v -E '=> [0-9]+ bytes @|> +[0-9]+: ' "$work/swan/charon.log" | tail -n 30
  grep -v -E '=> [0-9]+ bytes @|> +[0-9]+: ' "$work/swan/initiate.log" 2>/dev/null | tail -n 10
  exit 1
}

ipsec_test_topology agi
ip -n $site addr add 10.20.0.1/32 dev lo

psk=test-only-psk-0123456789abcdef
cookie_threshold=16
liveness_answered=0
cat >"$work/anygate.toml" <<EOF
$(ike_test_dataplane 7)

$(ipsec_test_ports agi)

$(ike_test_tunnels "$psk" "cookie_threshold = $cookie_threshold
liveness_check_seconds = 3")

[[routes]]
prefix = "10.10.0.0/24"
nexthop = "t1"

[[routes]]
prefix = "10.20.0.0/24"
nexthop = "t2"
EOF
start_anygate $gw "$anygate" "$work" || fail "anygate did not start"
ip netns exec $site ping -c 1 -W 3 192.0.2.1 >/dev/null || fail "no underlay between router and anygate"

ip netns exec $site /usr/bin/python3 scripts/lib/tcp_echo.py serve 0.0.0.0 5001 &
echo_pids+=($!)
ip netns exec $client /usr/bin/python3 scripts/lib/tcp_echo.py serve 0.0.0.0 5001 &
echo_pids+=($!)

# Ping streams both ways (50 a second for 6 s) while $@ runs; none may be lost.
under_stream() {
  local host=$1 what=$2
  shift 2
  ip netns exec $client ping -q -c 300 -i 0.02 -W 2 "$host" >"$work/stream-in.txt" 2>&1 &
  local p1=$!
  ip netns exec $site ping -q -c 300 -i 0.02 -W 2 -I "$host" 198.51.100.10 >"$work/stream-out.txt" 2>&1 &
  local p2=$!
  sleep 1
  "$@"
  wait $p1 || true
  wait $p2 || true
  grep -q "300 packets transmitted, 300 received" "$work/stream-in.txt" ||
    fail "$what: packets lost client -> $host: $(tail -2 "$work/stream-in.txt")"
  grep -q "300 packets transmitted, 300 received" "$work/stream-out.txt" ||
    fail "$what: packets lost $host -> client: $(tail -2 "$work/stream-out.txt")"
}

swan_rekey() {
  swanctl --rekey --uri "unix://$work/swan/charon.vici" "$@" >"$work/swan/rekey.log" 2>&1 ||
    fail "swanctl --rekey $*: $(cat "$work/swan/rekey.log")"
}

# Rekey the Child SA (strongSwan initiates, with its PFS group) under a ping stream.
rekey_child() {
  local name=$1 tunnel=$2 host=$3 group=$4 old_in old_out new_in new_out
  read -r old_in old_out < <(swan_spis)
  under_stream "$host" "$name: Child SA rekey" rekey_child_now "$old_in"
  read -r new_in new_out < <(swan_spis)
  [ "$new_in" != "$old_in" ] || fail "$name: strongSwan did not rekey the Child SA"
  wait_for "Child SA rekeyed for tunnel $tunnel: [A-Z0-9_/]*/$group, SPIs in $new_out out $new_in" 50 ||
    fail "$name: no rekey with PFS group $group to SPIs in $new_out out $new_in"
  wait_for "removed from every worker for tunnel $tunnel: in $old_out out $old_in" 50 ||
    fail "$name: the old Child SA $old_out/$old_in was not removed"
  echo "$name: Child SA rekeyed with PFS $group to SPIs in $new_out out $new_in under 2 x 300 pings, none lost; old SA removed"
}
rekey_child_now() {
  swan_rekey --child net
  for _ in $(seq 50); do [ "$(swan_spis | cut -d' ' -f1)" != "$1" ] && return; sleep 0.1; done
}

# Rekey the IKE SA under a ping stream: the Child SA moves to the new IKE SA and keeps carrying.
rekey_ike() {
  local name=$1 tunnel=$2 host=$3
  under_stream "$host" "$name: IKE SA rekey" swan_rekey --ike anygate
  wait_for "IKE SA rekeyed for tunnel $tunnel" 50 || fail "$name: no IKE SA rekey"
  wait_for "IKE SA deleted by the peer for tunnel $tunnel: .* 0 Child SAs with it" 50 ||
    fail "$name: the old IKE SA did not end alone"
  echo "$name: IKE SA rekeyed under 2 x 300 pings, none lost; the old one deleted without its Child SA"
}

# case: name, IKE proposal, ESP proposal, the router's ID, tunnel, anycast endpoint, site host, then
# options: raw (strongSwan 6 with raw ESP), rekey=GROUP (a Child SA rekey with that PFS group),
# ike-rekey
run_case() {
  local name=$1 ike=$2 esp=$3 id=$4 tunnel=$5 anycast=$6 host=$7
  shift 7
  local raw=no pfs= ike_rekey=no flood=no opt
  for opt in "$@"; do
    case $opt in
      raw) raw=yes ;;
      flood) flood=yes ;;
      rekey=*) pfs=${opt#rekey=} ;;
      ike-rekey) ike_rekey=yes ;;
    esac
  done
  local -x SWAN_CHROOT= SWAN_RAW_ESP=no
  if [ $raw = yes ]; then
    SWAN_CHROOT=${ANYGATE_STRONGSWAN6:-/opt/anygate/strongswan-trixie} SWAN_RAW_ESP=yes
  fi
  "$swan" config "$work/swan" 192.0.2.2 "$anycast" "$ike" "$esp" "$id" "${host%.*}.0/24" 198.51.100.0/24 "$psk"
  ip netns exec $site tcpdump -i agi-s -s 0 -B 32768 --immediate-mode -U -w "$work/case.pcap" \
    'udp port 500 or udp port 4500 or ip proto 50' 2>"$work/tcpdump.err" &
  tcpdump_pid=$!
  for _ in $(seq 50); do grep -q "listening" "$work/tcpdump.err" && break; sleep 0.1; done
  # Keys in the charon log, for tshark to decrypt the capture with.
  SWAN_LOG_KEYS=1 "$swan" start $site "$work/swan"
  local flood_pid=
  if [ $flood = yes ]; then
    # 6000 spoofed IKE_SA_INIT over 4 s from the internet side; strongSwan starts once the first
    # batch is out (the flood's scapy import alone can take most of a second).
    ip netns exec $client /usr/bin/python3 scripts/lib/ike_flood.py fuzz/seeds/ike_message/strongswan-ike-sa-init \
      "$anycast" 6000 4 >"$work/flood.txt" 2>&1 &
    flood_pid=$!
    for _ in $(seq 100); do grep -q flooding "$work/flood.txt" && break; sleep 0.1; done
    grep -q flooding "$work/flood.txt" || fail "$name: the flood did not start: $(cat "$work/flood.txt")"
    sleep 0.3
  fi
  "$swan" initiate "$work/swan" net || fail "$name: swanctl --initiate"
  if [ -n "$flood_pid" ]; then
    wait $flood_pid || fail "$name: the flood: $(cat "$work/flood.txt")"
    grep -q "received COOKIE notify" "$work/swan/charon.log" || fail "$name: strongSwan got no COOKIE"
    echo "$name: $(tail -n 1 "$work/flood.txt"); strongSwan answered the COOKIE challenge and got through"
  fi
  # The SPIs strongSwan installed are the ones anygate installed, the other way round.
  local in_s out_s
  read -r in_s out_s < <(swan_spis) || fail "$name: no Child SA in the strongSwan log"
  wait_for "installed on every worker for tunnel $tunnel: .* in $out_s out $in_s" 50 ||
    fail "$name: anygate did not install SPIs in $out_s out $in_s"
  local encapsulation="ESP in UDP to port 4500"
  [ $raw = no ] || encapsulation="raw ESP"
  wait_for "Child SA established for tunnel $tunnel: .*SPIs in $out_s out $in_s, .*, $encapsulation" 50 ||
    fail "$name: the Child SA is not $encapsulation"

  local out
  out=$(ip netns exec $client ping -c 5 -i 0.2 -W 2 "$host" 2>&1) && grep -q " 0% packet loss" <<<"$out" ||
    fail "$name: ping client -> $host: $out"
  out=$(ip netns exec $site ping -c 5 -i 0.2 -W 2 -I "$host" 198.51.100.10 2>&1) && grep -q " 0% packet loss" <<<"$out" ||
    fail "$name: ping $host -> client: $out"
  out=$(ip netns exec $client /usr/bin/python3 scripts/lib/tcp_echo.py send "$host" 5001 1000000 2>&1) ||
    fail "$name: TCP client -> $host: $out"
  local tcp_in=$out
  out=$(ip netns exec $site /usr/bin/python3 scripts/lib/tcp_echo.py send 198.51.100.10 5001 300000 2>&1) ||
    fail "$name: TCP $host -> client: $out"
  kill -INT $tcpdump_pid
  wait $tcpdump_pid || true
  tcpdump_pid=
  echo "$name: up ($encapsulation), SPIs in $out_s out $in_s; ping both ways 5/5; TCP $tcp_in"
  decrypted "$id" "$anycast" "$host" $raw
  [ -z "$pfs" ] || rekey_child "$name" "$tunnel" "$host" "$pfs"
  [ $ike_rekey = no ] || rekey_ike "$name" "$tunnel" "$host"
  # anygate checks on strongSwan after 3 s without IKE: strongSwan must have seen and answered it.
  if grep -q "parsed INFORMATIONAL request [0-9]* \[ \]" "$work/swan/charon.log"; then
    liveness_answered=$((liveness_answered + 1))
  fi
  # strongSwan deletes the IKE SA: its Child SA leaves every worker.
  read -r in_s out_s < <(swan_spis)
  swanctl --terminate --uri "unix://$work/swan/charon.vici" --ike anygate --timeout 5 >/dev/null 2>&1 ||
    fail "$name: swanctl --terminate"
  wait_for "removed from every worker for tunnel $tunnel: in $out_s out $in_s" 50 ||
    fail "$name: Child SA $out_s/$in_s still installed after the IKE SA's Delete"
  "$swan" stop "$work/swan"
}

# Decrypt the case's capture with the keys strongSwan logged and check what IKE_AUTH and ESP carried.
decrypted() {
  local id=$1 anycast=$2 host=$3 raw=$4 spis
  # The IKE_SA_INIT response that made the IKE SA (a COOKIE challenge has no responder SPI).
  spis=$(tshark -r "$work/case.pcap" -Y 'isakmp.exchangetype == 34 && isakmp.flag_r == 1' \
    -T fields -e isakmp.ispi -e isakmp.rspi 2>/dev/null | awk '$2 !~ /^[0:]*$/' | head -1)
  [ -n "$spis" ] || fail "no IKE_SA_INIT response in the capture"
  rm -rf "$work/wireshark"
  /usr/bin/python3 scripts/lib/swan_keys.py "$work/swan/charon.log" ${spis//:/} "$work/wireshark/wireshark" >/dev/null ||
    fail "no keys in the charon log"
  XDG_CONFIG_HOME=$work/wireshark tshark -r "$work/case.pcap" -o esp.enable_encryption_decode:TRUE \
    -o esp.enable_authentication_check:TRUE -V >"$work/decoded.txt" 2>&1
  /usr/bin/python3 - "$work/decoded.txt" "${id//\"/}" "$anycast" "$host" "$raw" <<'PY' || fail "decrypted capture"
import re, sys
text, id_value, anycast, host, raw = open(sys.argv[1]).read(), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
if id_value.startswith("keyid:"):
    # Wireshark shows a KEY_ID as hex.
    id_value = id_value.removeprefix("keyid:").encode().hex()
frames = text.split("\nFrame ")
def count(pattern):
    return sum(1 for f in frames if re.search(pattern, f, re.S))
problems = [m for m in ("Malformed Packet", "Bad ICV", "Authentication Data \\[incorrect", "Decryption error") if m in text]
assert not problems, problems
auth = [f for f in frames if "Exchange type: IKE_AUTH (35)" in f]
assert len(auth) >= 2, "IKE_AUTH request and response"
request, response = auth[0], auth[1]
assert id_value in request and "Payload: Identification - Initiator" in request, "IDi decrypted"
assert "Payload: Traffic Selector - Initiator" in request, "TSi decrypted"
assert "Payload: Identification - Responder" in response and "ID type: IPV4_ADDR" in response and anycast in response, "IDr"
assert "Payload: Security Association" in response and "Payload: Traffic Selector - Responder" in response, "SA, TSr"
to_site = count(rf"Encapsulating Security Payload.*Internet Protocol Version 4, Src: 198\.51\.100\.10, Dst: {re.escape(host)}.*Echo \(ping\) request")
from_site = count(rf"Encapsulating Security Payload.*Internet Protocol Version 4, Src: {re.escape(host)}, Dst: 198\.51\.100\.10.*Echo \(ping\) request")
tcp = count(r"Encapsulating Security Payload.*Transmission Control Protocol")
assert to_site >= 5 and from_site >= 5, (to_site, from_site)
assert tcp > 100, tcp
esp_frames = [f for f in frames if "Encapsulating Security Payload" in f]
in_udp = sum(1 for f in esp_frames if "User Datagram Protocol" in f.split("Encapsulating Security Payload")[0])
assert in_udp == (0 if raw == "yes" else len(esp_frames)), (raw, in_udp, len(esp_frames))
print(f"  decrypted capture: IKE_AUTH with IDi {id_value}, IDr {anycast}, SA and selectors; "
      f"ESP ({'raw, protocol 50' if raw == 'yes' else 'in UDP 4500'}): {to_site} + {from_site} echo requests "
      f"each way, {tcp} TCP segments, no ICV or format error")
PY
}

run_case "AES-GCM-256/SHA2-384/group 20, RFC822 ID, ESP AES-GCM-256, PFS group 20" \
  aes256gcm16-prfsha384-ecp384 aes256gcm16-ecp384 ipsec@t1.acct.ipsec.example.net t1 203.0.113.1 10.10.0.1 \
  rekey=ECP_384 ike-rekey
run_case "AES-GCM-128/SHA2-256/group 14, FQDN ID, ESP AES-GCM-128, no PFS, under an IKE_SA_INIT flood" \
  aes128gcm16-prfsha256-modp2048 aes128gcm16 t1.acct.ipsec.example.net t1 203.0.113.1 10.10.0.1 flood
run_case "AES-CBC-256+SHA2-256/SHA2-512/group 5, KEY_ID, ESP AES-CBC-256+SHA2-256, PFS group 14" \
  aes256-sha256-prfsha512-modp1536 aes256-sha256-modp2048 '"keyid:acct_t1"' t1 203.0.113.1 10.10.0.1 \
  rekey=MODP_2048
run_case "AES-GCM-256/SHA2-256/group 20, IPv4 ID, ESP AES-CBC-128+SHA1, PFS group 5" \
  aes256gcm16-prfsha256-ecp384 aes128-sha1-modp1536 192.0.2.2 t2 203.0.113.2 10.20.0.1 rekey=MODP_1536
run_case "strongSwan 6, raw ESP: AES-GCM-256/SHA2-512/group 20, RFC822 ID, ESP AES-GCM-128, PFS group 20" \
  aes256gcm16-prfsha512-ecp384 aes128gcm16-ecp384 ipsec@t1.acct.ipsec.example.net t1 203.0.113.1 10.10.0.1 \
  raw rekey=ECP_384

[ $liveness_answered -ge 3 ] || fail "strongSwan answered anygate's liveness checks in only $liveness_answered cases"
echo "liveness checks: strongSwan received and answered them in $liveness_answered of 5 cases"

# The event log: one JSON object per line, the suites named, no secret anywhere.
/usr/bin/python3 - "$work/ike.log" "$psk" <<'PY' || fail "IKE event log"
import json, sys
path, psk = sys.argv[1], sys.argv[2]
text = open(path).read()
assert psk not in text, "the pre-shared key is in the log"
assert "answered none" not in text, "a live router was taken for gone"
events = [json.loads(line) for line in text.splitlines()]
for e in events:
    assert {"time", "level", "message"} <= e.keys(), e
established = [e for e in events if e["message"].startswith("IKE SA established")]
assert len(established) == 5, established
# strongSwan moves IKE to 4500 after IKE_SA_INIT (RFC 7296 2.23), NAT or not; ESP stays raw
# where no NAT was seen.
assert all(e["local_port"] == 4500 for e in established), established
assert all(e["remote_ip"] == "192.0.2.2" for e in established), established
print(f"IKE event log: {len(events)} JSON lines, {len(established)} IKE SAs established, no secret")
PY

kill -TERM $anygate_pid
wait $anygate_pid || fail "anygate exited with an error"
anygate_pid=
/usr/bin/python3 - "$work/counters.json" "$cookie_threshold" <<'PY' || fail "counters"
import json, sys
c = json.load(open(sys.argv[1]))
threshold = int(sys.argv[2])
ike = c["ike"]["counters"]
r = c["ike"]["responder"]
# Past the threshold only requests with a valid cookie make state: the spoofed sources never return
# one, strongSwan did.
assert r["cookies_sent"] > 1000 and r["half_open_peak"] <= threshold + 1, r
print(f"flood: {r['cookies_sent']} COOKIE challenges, at most {r['half_open_peak']} IKE SAs half-open "
      f"(threshold {threshold})")
# 5 Child SAs by IKE_AUTH, 4 by rekeys; each rekeyed one deleted, then the rest as strongSwan stops.
assert ike["child_sas_installed"] == 9 and ike["child_sas_rekeyed"] == 4 and ike["child_sas_failed"] == 0, ike
assert ike["child_sas_deleted"] == 9 and ike["ike_sas_rekeyed"] == 1, ike
assert c["ike"]["child_sas"] == [], c["ike"]["child_sas"]
t = c["tunnels"]
for name in ("t1", "t2"):
    assert t[name]["ingress_packets"] > 0 and t[name]["egress_packets"] > 0, t[name]
print("counters: 9 Child SAs installed (4 by rekeys) and all removed, 1 IKE SA rekeyed; t1 in/out %d/%d packets, t2 %d/%d" % (
    t["t1"]["ingress_packets"], t["t1"]["egress_packets"], t["t2"]["ingress_packets"], t["t2"]["egress_packets"]))
PY
