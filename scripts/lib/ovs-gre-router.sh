#!/usr/bin/env bash
# A customer GRE router that is not ours: Open vSwitch's userspace (netdev) datapath inside a network
# namespace (the kernel here has no GRE). It carries the namespace's traffic for REMOTE_NETS in GRE
# (protocol 0x0800 / 0x86DD, no Ethernet inside) toward the anycast endpoint and decapsulates GRE from
# it toward the namespace, as a customer's edge router does for a GRE tunnel to anygate.
#
# usage: ovs-gre-router.sh up   NS UNDERLAY_IF LOCAL_IP/LEN UNDERLAY_GW UNDERLAY_GW_MAC ANYCAST_IP
#                               INNER_IP/LEN INNER_IP6/LEN REMOTE_NET...
#        ovs-gre-router.sh down NS
# UNDERLAY_GW_MAC pins the next hop toward the anycast endpoint (OVS otherwise learns it by snooping
# ARP and drops what it encapsulates before that).
set -euo pipefail
cmd=$1 ns=$2
run=/tmp/anygate-ovs-$ns
export OVS_RUNDIR=$run OVS_DBDIR=$run OVS_LOGDIR=$run
vsctl() { ovs-vsctl --db="unix:$run/db.sock" "$@"; }
in_ns() { ip netns exec "$ns" "$@"; }

case $cmd in
  down)
    for p in vswitchd ovsdb; do
      if [ -f "$run/$p.pid" ]; then kill "$(cat "$run/$p.pid")" 2>/dev/null || true; fi
    done
    rm -rf "$run"
    exit 0
    ;;
  up) ;;
  *) echo "usage: $0 up|down NS ..." >&2; exit 2 ;;
esac

underlay=$3 local=$4 gw=$5 gw_mac=$6 anycast=$7 inner=$8 inner6=$9
shift 9
rm -rf "$run"
mkdir -p "$run"
ovsdb-tool create "$run/conf.db" /usr/share/openvswitch/vswitch.ovsschema
in_ns ovsdb-server "$run/conf.db" --remote="punix:$run/db.sock" --pidfile="$run/ovsdb.pid" --detach \
  --log-file="$run/ovsdb.log" 2>/dev/null
vsctl --no-wait init
in_ns ovs-vswitchd "unix:$run/db.sock" --pidfile="$run/vswitchd.pid" --detach --log-file="$run/vswitchd.log" \
  2>/dev/null

# br-phy owns the underlay address: GRE toward the router is addressed to br-phy's MAC and LOCAL_IP.
vsctl add-br br-phy -- set bridge br-phy datapath_type=netdev -- add-port br-phy "$underlay"
in_ns ip addr add "$local" dev br-phy
in_ns ip link set br-phy up
in_ns ip link set "$underlay" up
# br-int carries the inner packets; gre0 is an L3 port (packet_type=legacy_l3), so two flows per
# address family move IP between the namespace (LOCAL) and the tunnel.
vsctl add-br br-int -- set bridge br-int datapath_type=netdev -- add-port br-int gre0 -- set interface gre0 \
  type=gre options:remote_ip="$anycast" options:local_ip="${local%/*}" options:packet_type=legacy_l3 \
  ofport_request=10
in_ns ip addr add "$inner" dev br-int
in_ns ip -6 addr add "$inner6" dev br-int nodad
in_ns ip link set br-int up
brmac=$(in_ns cat /sys/class/net/br-int/address)
for l3 in ip ipv6; do
  in_ns ovs-ofctl add-flow "unix:$run/br-int.mgmt" "priority=10,in_port=LOCAL,$l3,actions=output:10"
  in_ns ovs-ofctl add-flow "unix:$run/br-int.mgmt" "priority=10,in_port=10,$l3,actions=mod_dl_dst:$brmac,LOCAL"
done
in_ns ip route add "$anycast/32" via "$gw" dev br-phy
in_ns ovs-appctl -t "$(ls "$run"/ovs-vswitchd.*.ctl)" tnl/arp/set br-phy "$gw" "$gw_mac" >/dev/null
# Inner routes point at a made-up next hop on br-int with a static neighbour: the flows ignore MACs.
in_ns ip neigh replace 169.254.0.1 lladdr 02:00:00:00:fe:fe dev br-int nud permanent
in_ns ip route add 169.254.0.1/32 dev br-int
in_ns ip -6 neigh replace fe80::fe lladdr 02:00:00:00:fe:fe dev br-int nud permanent
for net in "$@"; do
  case $net in
    *:*) in_ns ip -6 route add "$net" via fe80::fe dev br-int ;;
    *) in_ns ip route add "$net" via 169.254.0.1 dev br-int onlink ;;
  esac
done
