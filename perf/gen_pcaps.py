#!/usr/bin/python3
"""The GRE benchmark's captures: GRE-in-IPv4 for decapsulation, plain IPv4/UDP for encapsulation.

usage: gen_pcaps.py OUTDIR

Addressing is that of the OVS-DPDK reference runs, so that the figures compare:
  anycast endpoint 192.0.2.1 on the port with MAC 02:00:00:00:01:01, the underlay gateway
  02:00:00:00:00:fe, customer GRE endpoint 198.51.100.10, inner 10.10.x.y -> 10.20.x.y UDP.

Files: gre_SIZE.pcap and plain_SIZE.pcap for SIZE in
  small (frames 84 / 60 B), 512, 1400 (frame bytes, no FCS), each 1024 packets over 8 flows;
  imix (7 small : 4 of 590 B : 1 of 1400 B, interleaved), 1032 packets over 8 flows;
  many (small, 100 000 packets, each its own flow);
  many8 (small, 100 000 packets over 8 flows): many's control. The source replays as many
  packets from memory as for many, and misses the cache as often, so the two differ only in
  the number of flows the pipeline sees.
Frames are written byte by byte here (fast enough for 100 000 packets); scapy, independent of
this code, decodes a sample of every file and checks its checksums and lengths.
"""

import os
import struct
import sys

GW_MAC = bytes.fromhex("0200000000fe")
PORT_MAC = bytes.fromhex("020000000101")
SRC_MAC = bytes.fromhex("020000000002")
ANYCAST = bytes([192, 0, 2, 1])
CUSTOMER = bytes([198, 51, 100, 10])
SMALL_INNER = 46  # inner IPv4 of the smallest frames: 84 B GRE frame, 60 B plain frame


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(src, dst, proto, payload, ident, df=False):
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident & 0xFFFF,
                         0x4000 if df else 0, 64, proto, 0, src, dst)
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + payload


def inner(i, flow, length):
    src = bytes([10, 10, (flow >> 8) & 0xFF, flow & 0xFF])
    dst = bytes([10, 20, (flow >> 8) & 0xFF, flow & 0xFF])
    body = bytes((i + k) & 0xFF for k in range(length - 28))
    udp = struct.pack("!HHHH", 10000 + flow % 50000, 20000, 8 + len(body), 0) + body
    return ipv4(src, dst, 17, udp, i)


def gre_frame(packet):
    outer = ipv4(CUSTOMER, ANYCAST, 47, struct.pack("!HH", 0, 0x0800) + packet, 0)
    return PORT_MAC + GW_MAC + b"\x08\x00" + outer


def plain_frame(packet):
    return PORT_MAC + SRC_MAC + b"\x08\x00" + packet


def write_pcap(path, frames):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for frame in frames:
            f.write(struct.pack("<IIII", 0, 0, len(frame), len(frame)))
            f.write(frame)


def frame_sizes(size, kind, count):
    """Frame sizes (no FCS) of a capture: the smallest GRE frame carries a 46-byte inner packet
    (84 B), the smallest plain frame is Ethernet's minimum (60 B)."""
    small = 84 if kind == "gre" else 60
    if size in ("small", "many", "many8"):
        return [small] * count
    if size in ("512", "1400"):
        return [int(size)] * count
    pattern = [small] * 7 + [590] * 4 + [1400]  # imix
    return [pattern[i % len(pattern)] for i in range(count)]


def check_with_scapy(path, kind):
    from scapy.all import GRE, IP, UDP, Ether, rdpcap
    frames = rdpcap(path, count=64)
    for f in frames:
        ip = f[IP]
        fresh = IP(bytes(ip))
        del fresh.chksum
        assert IP(bytes(fresh)).chksum == ip.chksum, f"{path}: bad IPv4 checksum"
        assert ip.len == len(f) - 14, f"{path}: bad IPv4 length"
        if kind == "gre":
            assert f[GRE].proto == 0x0800 and ip.dst == "192.0.2.1" and f[Ether].dst == "02:00:00:00:01:01"
        assert f[UDP].dport == 20000


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    sets = {"small": (1024, 8), "512": (1024, 8), "1400": (1024, 8), "imix": (1032, 8), "many": (100000, 100000),
            "many8": (100000, 8)}
    for name, (count, flows) in sets.items():
        for kind, build, overhead in (("gre", gre_frame, 38), ("plain", plain_frame, 14)):
            sizes = frame_sizes(name, kind, count)
            frames = [build(inner(i, i % flows, n - overhead)) for i, n in enumerate(sizes)]
            path = f"{out}/{kind}_{name}.pcap"
            write_pcap(path, frames)
            check_with_scapy(path, kind)
            print(f"{kind}_{name}: {count} packets, {flows} flows, frames {sorted(set(sizes))} B")


if __name__ == "__main__":
    main()
