#!/usr/bin/python3
"""Captures whose packets break trains, and worker-rate configurations for them: what trains cost
where few or none form (the README's table under "Trains").

usage: train_cases.py OUTDIR

Each case is a capture OUTDIR/CASE.pcap of 1 024 small frames (84 B GRE, 60 B plain; 8 flows,
addressed as gen_pcaps.py addresses the benchmark's) and a configuration OUTDIR/CASE.toml for
`worker-rate` (one worker on lcore 1, a net_pcap source, a net_null sink), with
OUTDIR/CASE-vg.toml beside it for callgrind (no hugepages, fewer mbufs):
  gre_alt     two tunnels' GRE packets alternating;
  plain_alt   packets for two customer prefixes (two tunnels) alternating;
  mix_alt     one tunnel's GRE packets and plain packets for a customer prefix alternating;
  gre_stray   one tunnel's GRE packets, every 8th a plain packet for a customer prefix;
  gre_halves  16 GRE packets of one tunnel, then 16 of another, and so on.
Decapsulated packets are for 100.100.0.9, which leaves by the default gateway: an inner
destination in a customer prefix would be sent back into its tunnel.

Then, for instance:
  target/release/worker-rate --config OUTDIR/mix_alt.toml --core 1 --warmup 1 --window 3
"""

import os
import struct
import sys

from benchlib import ports_config
from gen_pcaps import ANYCAST, CUSTOMER, GW_MAC, PORT_MAC, SMALL_INNER, ipv4, plain_frame, write_pcap

OTHER_CUSTOMER = bytes([198, 51, 100, 11])
OUT_OF_PREFIXES = bytes([100, 100, 0, 9])

TUNNELS = """
[[gre_tunnels]]
name = "bench"
customer_endpoint = "198.51.100.10"
anycast_endpoint = "192.0.2.1"

[[gre_tunnels]]
name = "bench2"
customer_endpoint = "198.51.100.11"
anycast_endpoint = "192.0.2.1"

[[routes]]
prefix = "10.20.0.0/16"
nexthop = "bench"

[[routes]]
prefix = "10.21.0.0/16"
nexthop = "bench2"
"""


def udp_packet(i, dst):
    """The `i`th packet's inner IPv4 packet (UDP, flow i % 8, small) for `dst`."""
    flow = i % 8
    body = bytes((i + k) & 0xFF for k in range(SMALL_INNER - 28))
    udp = struct.pack("!HHHH", 10000 + flow, 20000, 8 + len(body), 0) + body
    return ipv4(bytes([10, 10, 0, flow]), dst, 17, udp, i)


def gre(i, customer):
    """A GRE frame from `customer` whose inner packet leaves by the default gateway."""
    outer = ipv4(customer, ANYCAST, 47, struct.pack("!HH", 0, 0x0800) + udp_packet(i, OUT_OF_PREFIXES), 0)
    return PORT_MAC + GW_MAC + b"\x08\x00" + outer


def plain(i, prefix=20):
    """A plain frame for customer prefix 10.`prefix`/16."""
    return plain_frame(udp_packet(i, bytes([10, prefix, 0, i % 8])))


CASES = {
    "gre_alt": lambda i: gre(i, CUSTOMER if i % 2 == 0 else OTHER_CUSTOMER),
    "plain_alt": lambda i: plain(i, 20 if i % 2 == 0 else 21),
    "mix_alt": lambda i: gre(i, CUSTOMER) if i % 2 == 0 else plain(i),
    "gre_stray": lambda i: plain(i) if i % 8 == 7 else gre(i, CUSTOMER),
    "gre_halves": lambda i: gre(i, CUSTOMER if (i // 16) % 2 == 0 else OTHER_CUSTOMER),
}


def main():
    out = os.path.abspath(sys.argv[1])
    os.makedirs(out, exist_ok=True)
    for name, frame in CASES.items():
        pcap = f"{out}/{name}.pcap"
        write_pcap(pcap, [frame(i) for i in range(1024)])
        config = ports_config(pcap, "02:00:00:00:01:01", "192.0.2.1/24") + TUNNELS
        with open(f"{out}/{name}.toml", "w") as f:
            f.write(config)
        no_huge = config.replace('eal_args = ["--in-memory", "--no-telemetry"]',
                                 'eal_args = ["--no-huge", "-m", "1024", "--no-telemetry"]')
        with open(f"{out}/{name}-vg.toml", "w") as f:
            f.write(no_huge.replace("mbufs = 262143", "mbufs = 16383"))
        print(f"{name}: {pcap}")


if __name__ == "__main__":
    main()
