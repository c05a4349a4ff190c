#!/usr/bin/env bash
# The IKEv2 handshake rate of anygate's responder beside strongSwan's, under the same load
# generator in the same run: IKE_SA_INIT + IKE_AUTH with one Child SA, group 20, AES-GCM-256,
# PRF SHA2-384, a pre-shared key; each completed IKE SA is deleted again (not timed).
#
#   scripts/bench-ike.sh [REPS] [SECONDS] [WINDOW]      (default 3 repetitions of 5 s, 64 in flight)
#
# The responder under test runs alone on CPU 1 (anygate's responder, the slow path's state
# machine on a kernel UDP socket; or strongSwan 5.9.8's charon, every thread of it), the
# generator (perf/src/bin/ike-bench.rs, our initiator) on CPU 0, in two network namespaces joined
# by a veth pair. Prints each run and the medians, with the responders' CPU time per handshake.
# strongSwan is set up as a server would be: a large IKE SA table, no half-open or cookie limits
# in the way of one busy peer, logging at level 0, Child SAs installed in kernel-libipsec.
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-3} seconds=${2:-5} window=${3:-64}
cargo build --release -q -p anygate-perf --bin ike-bench
bench=$PWD/target/release/ike-bench
gen=agb-gen resp=agb-resp
work=$(mktemp -d /tmp/anygate-ike-bench.XXXXXX)
cleanup() {
  set +e
  [ -f "$work/run/charon.pid" ] && kill "$(cat "$work/run/charon.pid")" 2>/dev/null
  for ns in $gen $resp; do
    ip netns pids $ns 2>/dev/null | xargs -r kill 2>/dev/null
    ip netns del $ns 2>/dev/null
  done
  rm -rf "$work"
}
trap cleanup EXIT
for ns in $gen $resp; do
  ip netns del $ns 2>/dev/null || true
  ip netns add $ns
  ip -n $ns link set lo up
done
ip link add agb-g netns $gen type veth peer name agb-r netns $resp
ip -n $gen addr add 10.99.0.1/24 dev agb-g
ip -n $resp addr add 10.99.0.2/24 dev agb-r
ip -n $gen link set agb-g up
ip -n $resp link set agb-r up
ip netns exec $gen ping -c 1 -W 2 10.99.0.2 >/dev/null

mkdir -p "$work/run"
cat >"$work/swanctl.conf" <<EOF
connections {
  bench {
    version = 2
    local_addrs = 10.99.0.2
    proposals = aes256gcm16-prfsha384-ecp384
    local {
      auth = psk
      id = 10.99.0.2
    }
    remote {
      auth = psk
      id = %any
    }
    children {
      net {
        local_ts = 0.0.0.0/0
        remote_ts = 198.51.100.0/24
        esp_proposals = aes256gcm16
      }
    }
  }
}
secrets {
  ike-bench {
    secret = "ike-bench-shared-key-not-a-secret"
  }
}
EOF
cat >"$work/strongswan.conf" <<EOF
charon {
  load_modular = no
  load = random nonce openssl kdf pem pkcs1 hmac gcm aes sha2 curve25519 kernel-libipsec kernel-netlink socket-default vici
  install_routes = no
  ikesa_table_size = 4096
  ikesa_table_segments = 16
  init_limit_half_open = 0
  block_threshold = 1000000
  cookie_threshold = 1000000
  filelog {
    main {
      path = $work/charon.log
      default = 0
    }
  }
  plugins {
    vici {
      socket = unix://$work/charon.vici
    }
  }
}
EOF

# run_load: the generator against 10.99.0.2:500; its JSON line.
run_load() {
  ip netns exec $gen taskset -c 0 "$bench" load --target 10.99.0.2:500 --seconds "$seconds" --warmup 1 \
    --window "$window"
}

anygate_run() {
  ip netns exec $resp taskset -c 1 "$bench" respond --bind 10.99.0.2:500 --seconds $((seconds + 3)) \
    >"$work/responder.json" &
  local pid=$!
  sleep 0.3
  run_load >"$work/load.json"
  wait $pid
  /usr/bin/python3 -c 'import json,sys; l=json.load(open(sys.argv[1])); r=json.load(open(sys.argv[2])); l["responder_cpu_per_handshake_us"]=r["cpu_per_handshake_us"]; print(json.dumps(l))' \
    "$work/load.json" "$work/responder.json"
}

strongswan_run() {
  STRONGSWAN_CONF=$work/strongswan.conf setsid ip netns exec $resp unshare -m --propagation private \
    sh -c "mount --bind $work/run /run && exec taskset -c 1 /usr/lib/ipsec/charon" >"$work/charon.out" 2>&1 </dev/null &
  for _ in $(seq 50); do [ -S "$work/charon.vici" ] && break; sleep 0.1; done
  swanctl --load-all --uri "unix://$work/charon.vici" --file "$work/swanctl.conf" >/dev/null 2>&1
  local pid
  pid=$(cat "$work/run/charon.pid")
  # Every thread of charon on CPU 1, as the responder under test.
  taskset -a -p -c 1 "$pid" >/dev/null
  local cpu0
  cpu0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  run_load >"$work/load.json"
  local cpu1 ticks
  cpu1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  ticks=$(getconf CLK_TCK)
  kill "$pid"
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$work/charon.vici"
  # charon's CPU time over the whole run (warm-up included), per handshake measured.
  /usr/bin/python3 -c 'import json,sys; l=json.load(open(sys.argv[1])); c=(int(sys.argv[3])-int(sys.argv[2]))/int(sys.argv[4]); n=l["completed"]*(1+float(sys.argv[5])/l["seconds"]); l["responder_cpu_per_handshake_us"]=c*1e6/n if n else 0; print(json.dumps(l))' \
    "$work/load.json" "$cpu0" "$cpu1" "$ticks" 1
}

: >"$work/results"
for rep in $(seq "$reps"); do
  line=$(anygate_run)
  echo "anygate    run $rep: $line"
  echo "anygate $line" >>"$work/results"
  line=$(strongswan_run)
  echo "strongSwan run $rep: $line"
  echo "strongswan $line" >>"$work/results"
done
/usr/bin/python3 - "$work/results" <<'PY'
import json, statistics, sys
runs = {"anygate": [], "strongswan": []}
for line in open(sys.argv[1]):
    who, data = line.split(" ", 1)
    runs[who].append(json.loads(data))
def median(who, f):
    return statistics.median(f(r) for r in runs[who])
rows = []
for who, name in (("anygate", "anygate responder"), ("strongswan", "strongSwan 5.9.8 charon")):
    rate = median(who, lambda r: r["handshakes_per_second"])
    lat = {q: median(who, lambda r: r["latency_ms"][q]) for q in ("p50", "p90", "p99", "p999")}
    cpu = median(who, lambda r: r["responder_cpu_per_handshake_us"])
    gen = median(who, lambda r: r["generator_cpu_share"])
    fails = sum(r["failed"] + r["refused"] for r in runs[who])
    rows.append((name, rate, lat, cpu, gen, fails))
    print(f"{name:26} {rate:8.0f} handshakes/s   latency p50 {lat['p50']:.2f} p90 {lat['p90']:.2f} "
          f"p99 {lat['p99']:.2f} p99.9 {lat['p999']:.2f} ms   responder CPU {cpu:.0f} us/handshake   "
          f"generator CPU {gen:.0%}   failed {fails}")
ratio = rows[0][1] / rows[1][1] if rows[1][1] else float("inf")
cpu_ratio = rows[1][3] / rows[0][3] if rows[0][3] else float("inf")
print(f"anygate / strongSwan: {ratio:.1f}x the handshake rate, {cpu_ratio:.1f}x less responder CPU per handshake "
      f"(medians of {len(runs['anygate'])} runs, one responder core each)")
PY
