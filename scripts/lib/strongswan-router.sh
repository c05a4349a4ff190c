#!/usr/bin/env bash
# strongSwan (Debian's charon with kernel-libipsec: userspace ESP through the TUN device ipsec0) as
# an IPsec customer router in a network namespace, run without systemd: its own strongswan.conf,
# vici socket and a private /run (charon writes /run/charon.pid), all under one folder.
#
#   strongswan-router.sh config DIR LOCAL_ADDR REMOTE_ADDR IKE_PROPOSAL ESP_PROPOSAL ID LOCAL_TS REMOTE_TS PSK
#                                         write DIR/swanctl.conf: connection "anygate" with PSK
#                                         authentication as ID, the peer identified by its
#                                         address, and one Child SA "net"
#   strongswan-router.sh start NS DIR     write DIR/strongswan.conf, start charon; DIR/swanctl.conf
#                                         must exist (it is loaded)
#   strongswan-router.sh initiate DIR CHILD [TIMEOUT]
#   strongswan-router.sh stop DIR
#
# The charon log (DIR/charon.log) holds the SAs' SPIs; with SWAN_LOG_KEYS=1 it holds their keys too
# (level 4), for decrypting captures in a test: never on a router that matters. SWAN_ROUTES=no keeps
# charon from routing the remote selectors into ipsec0 (for IKE-only tests). SWAN_CHROOT=DIR runs
# the charon of another Debian userland unpacked in DIR (setup.sh puts trixie's strongSwan 6 in
# /opt/anygate/strongswan-trixie); SWAN_RAW_ESP=yes then has kernel-libipsec send raw ESP
# (protocol 50) where no NAT is seen, which 5.9.8 cannot. Extra settings go in with
# SWAN_CHARON_EXTRA (lines in strongswan.conf's charon section, e.g. fragment_size = 300),
# SWAN_CONN_EXTRA (in the connection, e.g. fragmentation = force) and SWAN_CHILD_EXTRA (in the
# Child SA, e.g. dpd_action = restart).
set -euo pipefail

uri() { echo "unix://$1/charon.vici"; }

config() {
  local dir=$1 local_addr=$2 remote_addr=$3 ike=$4 esp=$5 id=$6 local_ts=$7 remote_ts=$8 psk=$9
  mkdir -p "$dir"
  cat >"$dir/swanctl.conf" <<CONF
connections {
  anygate {
    version = 2
    local_addrs = $local_addr
    remote_addrs = $remote_addr
    proposals = $ike
    keyingtries = 1
    ${SWAN_CONN_EXTRA:-}
    local {
      auth = psk
      id = $id
    }
    remote {
      auth = psk
      id = $remote_addr
    }
    children {
      net {
        local_ts = $local_ts
        remote_ts = $remote_ts
        esp_proposals = $esp
        ${SWAN_CHILD_EXTRA:-}
      }
    }
  }
}
secrets {
  ike-anygate {
    id-a = $id
    id-b = $remote_addr
    secret = "$psk"
  }
}
CONF
}

start() {
  local ns=$1 dir=$2 level=1
  [ "${SWAN_LOG_KEYS:-0}" = 1 ] && level=4
  mkdir -p "$dir/run"
  stop "$dir"
  cat >"$dir/strongswan.conf" <<CONF
charon {
  load_modular = no
  load = random nonce openssl kdf pem pkcs1 hmac gcm aes sha2 sha1 gmp curve25519 kernel-libipsec kernel-netlink socket-default vici updown
  install_routes = ${SWAN_ROUTES:-yes}
  retransmit_tries = 3
  ${SWAN_CHARON_EXTRA:-}
  filelog {
    main {
      path = $dir/charon.log
      default = 1
      ike = $level
      chd = $level
      ike_name = yes
      flush_line = yes
    }
  }
  plugins {
    vici {
      socket = $(uri "$dir")
    }
    kernel-libipsec {
      raw_esp = ${SWAN_RAW_ESP:-no}
    }
  }
}
CONF
  : >"$dir/charon.log"
  local run="mount --bind $dir/run /run && exec /usr/lib/ipsec/charon"
  if [ -n "${SWAN_CHROOT:-}" ]; then
    # The same paths inside the chroot (DIR bound at DIR), /dev for /dev/net/tun, its own /run.
    local root=$SWAN_CHROOT
    mkdir -p "$root$dir"
    run="mount --bind $dir $root$dir && mount --bind /dev $root/dev && mount -t proc proc $root/proc && \
         mount --bind $dir/run $root/run && exec chroot $root /usr/lib/ipsec/charon"
  fi
  STRONGSWAN_CONF=$dir/strongswan.conf setsid ip netns exec "$ns" unshare -m --propagation private \
    sh -c "$run" >"$dir/charon.out" 2>&1 </dev/null &
  for _ in $(seq 50); do [ -S "$dir/charon.vici" ] && break; sleep 0.1; done
  [ -S "$dir/charon.vici" ] || { echo "strongswan-router: charon did not start" >&2; cat "$dir/charon.out" >&2; exit 1; }
  swanctl --load-all --uri "$(uri "$dir")" --file "$dir/swanctl.conf" >"$dir/load.log" 2>&1 ||
    { cat "$dir/load.log" >&2; exit 1; }
}

initiate() {
  local dir=$1 child=$2 timeout=${3:-10}
  swanctl --initiate --uri "$(uri "$dir")" --child "$child" --timeout "$timeout" >"$dir/initiate.log" 2>&1
}

stop() {
  local dir=$1 pid
  pid=$(cat "$dir/run/charon.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$dir/charon.vici" "$dir/run/charon.pid"
  # The mount point start made in the chroot for DIR, and the folder holding it, if now empty.
  if [ -n "${SWAN_CHROOT:-}" ]; then
    rmdir "$SWAN_CHROOT$dir" "$(dirname "$SWAN_CHROOT$dir")" 2>/dev/null || true
  fi
}

cmd=${1:-}
shift || true
case $cmd in
  config | start | initiate | stop) "$cmd" "$@" ;;
  *) sed -n '2,25p' "$0" >&2; exit 2 ;;
esac
