#!/usr/bin/env bash
# Installs what anygate needs to build, test and run its demo on Debian 12, and reserves hugepages.
# Idempotent: a second run changes nothing. Needs root.
set -euo pipefail

packages=(
  # DPDK 22.11 (the EAL, PMDs as plugins, testpmd) and what bindgen needs to read its headers
  dpdk dpdk-dev libdpdk-dev libclang-dev clang pkg-config libpcap-dev
  # AES-GCM for ESP: Intel's multi-buffer crypto library (the one under DPDK's crypto_ipsec_mb)
  libipsec-mb-dev
  # the GRE benchmark's routing reference: DPDK's l3fwd, built from the example source Debian ships
  dpdk-doc make gcc
  # independent packet reference and capture tools for the tests
  python3-scapy python3-cryptography tshark tcpdump
  # network namespaces, ping and TCP for the demo and interop tests
  iproute2 iputils-ping netcat-openbsd procps ethtool
  # holds back IKE messages (not ESP) in an interop test, so that two rekeys cross
  nftables
  # the demo's GRE customer router (Open vSwitch userspace datapath)
  openvswitch-switch
  # the IPsec customer router of the interop tests (userspace ESP through kernel-libipsec)
  strongswan-charon strongswan-swanctl libcharon-extra-plugins
  libstrongswan-extra-plugins libstrongswan-standard-plugins
  # the libraries of Libreswan's pluto, the second IKEv2 initiator of the interop tests (its own
  # package conflicts with strongSwan's: it is unpacked below, never installed)
  libnss3-tools libcurl3-nss libevent-core-2.1-7 libevent-pthreads-2.1-7 libldns3 libunbound8 libcap-ng0
  dns-root-data
  # unpacks Debian 13's strongSwan 6 (below), the interop tests' raw-ESP router
  debootstrap
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # openvswitch-switch and strongSwan start services through invoke-rc.d; nothing here runs them as
  # services (the scripts start their own daemons inside namespaces), so keep package installs from
  # starting them.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
  rm -f /usr/sbin/policy-rc.d
fi

# Libreswan, unpacked where the interop test looks for it.
libreswan=${ANYGATE_LIBRESWAN:-/opt/anygate/libreswan}
if [ ! -x "$libreswan/usr/libexec/ipsec/pluto" ]; then
  download=$(mktemp -d)
  (cd "$download" && { apt-get download -qq libreswan 2>/dev/null || { apt-get update -qq && apt-get download -qq libreswan; }; })
  mkdir -p "$libreswan"
  dpkg -x "$download"/libreswan_*.deb "$libreswan"
  rm -rf "$download"
fi

# strongSwan 6 (Debian 13, trixie) in a chroot of Debian's own packages, where the raw-ESP interop
# case runs it: 5.9.8's kernel-libipsec always sends ESP in UDP. About 300 MB, under a minute.
swan6=${ANYGATE_STRONGSWAN6:-/opt/anygate/strongswan-trixie}
if [ ! -x "$swan6/usr/lib/ipsec/charon" ]; then
  mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$mirror" ] || mirror=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  rm -rf "$swan6.partial"
  debootstrap --variant=minbase \
    --include=strongswan-charon,strongswan-swanctl,libcharon-extra-plugins,libstrongswan-extra-plugins,libstrongswan-standard-plugins \
    trixie "$swan6.partial" "${mirror:-http://deb.debian.org/debian}" >/dev/null
  mv "$swan6.partial" "$swan6"
fi

# cargo-fuzz needs a nightly toolchain only when the fuzz targets are built; the tests run them briefly.
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install --quiet --locked cargo-fuzz
fi

# 2 MiB hugepages for the DPDK mempools (the EAL runs --in-memory, so nothing needs mounting).
want=${ANYGATE_HUGEPAGES:-1024}
have=$(cat /proc/sys/vm/nr_hugepages)
if [ "$have" -lt "$want" ]; then
  echo "$want" > /proc/sys/vm/nr_hugepages
fi
echo "setup: packages present, $(cat /proc/sys/vm/nr_hugepages) hugepages"
