#!/usr/bin/python3
"""ESP throughput on one worker core, beside dpdk-testpmd io on the same captures and core, the
crypto library's own AES-GCM rate on the same core, and DPDK's ipsec-secgw on the same captures.

usage: esp_bench.py [--reps N] [--warmup S] [--window S] [--cases a,b] [--sa-counts 1,1000,16000,100000]
                    [--pcaps DIR] [--perf-bin DIR] [--secgw PATH] [--print-config PCAP]

The captures are ipsec-secgw's reference inputs (RFC 4106 AES-GCM; inbound SA spi 101 from
172.16.2.1 to 172.16.1.1, outbound spi 201; inner IPv4/UDP, 8 flows; 46 / 442 / 1330-byte inner
packets and a 7:4:1 mix of them), with 128- and 256-bit keys, made here with scapy when DIR lacks
them. Per repetition and case: testpmd --forward-mode=io on lcore 1, then anygate's worker on
lcore 1 (perf/src/bin/worker-rate.rs: the real worker, pipeline and SA database, static SAs
installed through the SA seam), then AES-GCM alone sealing or opening the same bytes on cpu 1
(perf/src/bin/aead-rate.rs), from intel-ipsec-mb (what the dataplane runs) and from aws-lc-rs (for
comparison), then, where --secgw names a built ipsec-secgw, secgw on lcore 1 with the same SAs.
The input loops, repeating sequence numbers: anti-replay is off, as for secgw. The table gives
min / median / max over the repetitions and ratios of the medians. Without secgw, the figures it
reached on this machine with the same method are printed where there are some, marked as
recorded.

Then the lookup cost: small packets decrypted with 1, 1 000, 16 000 and 100 000 inbound SAs
installed (tunnels of 100 SAs each), one packet per SA in turn, so that every SA is looked up and
used, each SA's packets for an inner address of their own; secgw, where given, with the same SAs
and one inbound policy each.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import tempfile
import time

from benchlib import anygate, ports_config, testpmd

HERE = os.path.dirname(os.path.abspath(__file__))

# (direction, capture, label, inner bytes (mean for IMIX), key bits, secgw Mpps recorded here with
# the same method: legacy mode, median of 3, AES-128-GCM only)
CASES = [
    ("decrypt", "esp_in_small", "114 B", 46, 128, 11.27),
    ("decrypt", "esp_in_512", "510 B", 442, 128, 8.17),
    ("decrypt", "esp_in_1400", "1398 B", 1330, 128, 5.47),
    ("decrypt", "esp_in_imix", "IMIX", 285, 128, None),
    ("encrypt", "plain_out_small", "60 B", 46, 128, 11.41),
    ("encrypt", "plain_out_512", "456 B", 442, 128, 7.85),
    ("encrypt", "plain_out_1400", "1344 B", 1330, 128, 5.35),
    ("encrypt", "plain_out_imix", "IMIX", 285, 128, None),
    ("decrypt", "esp_in_small_256", "114 B", 46, 256, None),
    ("decrypt", "esp_in_512_256", "510 B", 442, 256, None),
    ("decrypt", "esp_in_1400_256", "1398 B", 1330, 256, None),
    ("decrypt", "esp_in_imix_256", "IMIX", 285, 256, None),
    ("encrypt", "plain_out_small_256", "60 B", 46, 256, None),
    ("encrypt", "plain_out_512_256", "456 B", 442, 256, None),
    ("encrypt", "plain_out_1400_256", "1344 B", 1330, 256, None),
    ("encrypt", "plain_out_imix_256", "IMIX", 285, 256, None),
]
# IMIX: 7 small, 4 medium, 1 large inner packet in every 12 (the classic 7:4:1 mix, on the sizes
# of secgw's captures).
IMIX = [46] * 7 + [442] * 4 + [1330]
SIZES = {"small": [46], "512": [442], "1400": [1330], "imix": IMIX}

KEYS = {
    128: (bytes(range(0x10, 0x20)) + bytes.fromhex("a1a2a3a4"), bytes(range(0x20, 0x30)) + bytes.fromhex("b1b2b3b4")),
    256: (bytes(range(0x30, 0x50)) + bytes.fromhex("c1c2c3c4"), bytes(range(0x50, 0x70)) + bytes.fromhex("d1d2d3d4")),
}
PORT_MAC, SENDER_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"

TUNNEL = """
[[ipsec_tunnels]]
name = "bench"
customer_endpoint = "172.16.2.1"
anycast_endpoint = "172.16.1.1"

[[ipsec_tunnels.static_sas]]
spi = 101
direction = "inbound"
transform = "aes{bits}gcm16"
encryption_key = "{in_key}"

[[ipsec_tunnels.static_sas]]
spi = 201
direction = "outbound"
transform = "aes{bits}gcm16"
encryption_key = "{out_key}"

[[routes]]
prefix = "192.168.20.0/24"
nexthop = "bench"
"""


def config(pcap, bits=128, extra_sas=0):
    """The benchmark configuration: one tunnel with one SA each way, and `extra_sas` more inbound
    SAs (SPI 0x10000 + i, key sa_key(i)) on tunnels of 100 SAs each, which the SA-count captures
    spread their packets over."""
    in_key, out_key = KEYS[bits]
    parts = [ports_config(pcap, PORT_MAC, "172.16.1.1/24"),
             TUNNEL.format(bits=bits, in_key=in_key.hex(), out_key=out_key.hex())]
    for t in range((extra_sas + 99) // 100):
        parts.append(f'\n[[ipsec_tunnels]]\nname = "s{t}"\nanycast_endpoint = "172.16.1.1"\n')
        for i in range(t * 100, min(extra_sas, t * 100 + 100)):
            parts.append(f'[[ipsec_tunnels.static_sas]]\nspi = {0x10000 + i}\ndirection = "inbound"\n'
                         f'transform = "aes128gcm16"\nencryption_key = "{sa_key(i).hex()}"\n')
    return "".join(parts)


def sa_key(i):
    """The AES-128-GCM key and salt (20 bytes) of extra SA i."""
    return (i.to_bytes(4, "big") * 5)


def inner(i, ip_len, dst_net, src_net, dst=None):
    """Inner IPv4/UDP packet i of secgw's captures (8 flows), for `dst` where given."""
    from scapy.all import IP, UDP, Raw
    f = i % 8
    p = IP(src=f"{src_net}.{1 + f}", dst=dst or f"{dst_net}.{1 + f}", ttl=64, id=i & 0xFFFF) / \
        UDP(sport=10000 + f, dport=20000 + f) / Raw(bytes((i + k) & 0xFF for k in range(ip_len - 28)))
    return IP(bytes(p))


def generate(out, n=1024):
    """The reference captures (same keys, SPIs, addresses, sizes and flows as secgw's), sealed by
    scapy's own ESP, for both key sizes."""
    from scapy.all import IP, Ether, wrpcap
    from scapy.layers.ipsec import ESP, SecurityAssociation
    os.makedirs(out, exist_ok=True)
    for name, sizes in SIZES.items():
        for bits, suffix in ((128, ""), (256, "_256")):
            sa = SecurityAssociation(ESP, spi=101, crypt_algo="AES-GCM", crypt_key=KEYS[bits][0],
                                     tunnel_header=IP(src="172.16.2.1", dst="172.16.1.1"))
            esp = [Ether(src=SENDER_MAC, dst=PORT_MAC) /
                   sa.encrypt(inner(i, sizes[i % len(sizes)], "192.168.10", "10.1.0")) for i in range(n)]
            wrpcap(f"{out}/esp_in_{name}{suffix}.pcap", esp)
        plain = [Ether(src=SENDER_MAC, dst=PORT_MAC) / inner(i, sizes[i % len(sizes)], "192.168.20", "10.2.0")
                 for i in range(n)]
        wrpcap(f"{out}/plain_out_{name}.pcap", plain)
        wrpcap(f"{out}/plain_out_{name}_256.pcap", plain)


def many_inner_dst(i):
    """The inner destination of SA i's packets in the SA-count captures: one address per SA
    (10.64.0.0/10), so that secgw's inbound policy check can tell the SAs apart."""
    a = (10 << 24) | (64 << 16) | i
    return f"{a >> 24}.{(a >> 16) & 0xFF}.{(a >> 8) & 0xFF}.{a & 0xFF}"


def generate_many(path, count):
    """Small ESP packets (46-byte inner) spread over `count` inbound SAs, one packet per SA in
    turn, each SA's inner packet for its own address, sealed with the cryptography package's
    AES-GCM (fast enough for 100 000 SAs)."""
    import struct
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from scapy.all import IP, Ether, wrpcap
    frames = []
    for i in range(count):
        key = sa_key(i)
        plain = inner(i, 46, None, "10.1.0", dst=many_inner_dst(i))
        payload = bytes(plain) + bytes([0, 4])  # no padding (46 + 2 is aligned), IPv4
        header = struct.pack("!II", 0x10000 + i, 1)
        iv = struct.pack("!Q", i + 1)
        sealed = AESGCM(key[:16]).encrypt(key[16:] + iv, payload, header)
        esp = header + iv + sealed
        frames.append(Ether(src=SENDER_MAC, dst=PORT_MAC) / IP(src="172.16.2.1", dst="172.16.1.1", proto=50) / esp)
    wrpcap(path, frames)


def secgw_many_config(count):
    """ipsec-secgw's configuration for the SA-count captures: the same `count` inbound SAs, each
    with the policy for its packets' inner address (secgw checks that a decrypted packet matches
    a policy protected by the SA that decrypted it)."""
    lines = []
    for i in range(count):
        spi = 0x10000 + i
        lines.append(f"sp ipv4 in esp protect {spi} pri 1 dst {many_inner_dst(i)}/32 sport 0:65535 dport 0:65535\n")
        lines.append(f"sa in {spi} aead_algo aes-128-gcm aead_key {sa_key(i).hex(':')} mode ipv4-tunnel "
                     f"src 172.16.2.1 dst 172.16.1.1\n")
    lines.append("rt ipv4 dst 10.64.0.0/10 port 1\n")
    return "".join(lines)


def aead(perf_bin, sizes, decrypt, seconds, library):
    """AES-GCM alone over the same bytes; for a mix, the rate of its packets in turn (each size's
    time per packet, weighted by its share)."""
    def rate(inner):
        cmd = ["taskset", "-c", "1", os.path.join(perf_bin, "aead-rate"), "--inner", str(inner),
               "--seconds", str(seconds / len(set(sizes))), "--library", library] + (["--open"] if decrypt else [])
        return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)["mpps"]
    rates = {n: rate(n) for n in set(sizes)}
    return len(sizes) / sum(1 / rates[n] for n in sizes)


def secgw_config(decrypt, bits):
    """ipsec-secgw's SA, SP and route for a direction and key size, in its configuration syntax
    (the same SAs as anygate's configuration)."""
    in_key, out_key = KEYS[bits]
    if decrypt:
        return (f"sp ipv4 in esp protect 101 pri 1 dst 192.168.10.0/24 sport 0:65535 dport 0:65535\n"
                f"sa in 101 aead_algo aes-{bits}-gcm aead_key {in_key.hex(':')} mode ipv4-tunnel "
                f"src 172.16.2.1 dst 172.16.1.1\nrt ipv4 dst 192.168.10.0/24 port 1\n")
    return (f"sp ipv4 out esp protect 201 pri 1 dst 192.168.20.0/24 sport 0:65535 dport 0:65535\n"
            f"sa out 201 aead_algo aes-{bits}-gcm aead_key {out_key.hex(':')} mode ipv4-tunnel "
            f"src 172.16.1.1 dst 172.16.2.1\nrt ipv4 dst 172.16.2.1/32 port 1\n")


def secgw(binary, cfg, pcap, decrypt, warmup, window, mbufs=None):
    """ipsec-secgw (legacy mode, ipsec_mb AES-GCM PMD) on lcore 1: its cumulative "Total packets
    sent" line, read twice a window apart. `mbufs` sizes its packet pool (net_pcap holds the
    whole capture in mbufs)."""
    cmd = ["stdbuf", "-oL", binary, "-l", "1", "--no-pci", "--in-memory", "--no-telemetry",
           "--log-level=lib.eal:error", "--vdev", f"net_pcap0,rx_pcap={pcap},infinite_rx=1",
           "--vdev", "net_null1,no-rx=1", "--vdev", "crypto_aesni_gcm0", "--", "-p", "0x3",
           "-f", cfg, "--config", "(0,0,1)", "-t", "1"] + (["-u", "0x1"] if decrypt else []) + \
        (["-s", str(mbufs)] if mbufs else [])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    samples, start = [], None
    try:
        for line in proc.stdout:
            m = re.search(r"Total packets sent:\s+(\d+)", line)
            if not m:
                continue
            now = time.monotonic()
            start = start or now
            if now - start >= warmup:
                samples.append((now, int(m.group(1))))
            if samples and now - samples[0][0] >= window:
                break
    finally:
        proc.kill()
        proc.wait()
    if len(samples) < 2:
        raise RuntimeError("secgw printed no counters")
    (t0, n0), (t1, n1) = samples[0], samples[-1]
    return (n1 - n0) / (t1 - t0) / 1e6


def sa_counts(args, work, counts, with_secgw):
    """Small-packet decryption with 1, 1 000, 16 000, 100 000 ... inbound SAs installed, every SA
    in use, beside testpmd io on the same capture (its distinct packets also cost the source more)
    and, where it is built, ipsec-secgw with the same SAs."""
    rates, io, peer = {}, {}, {}
    for count in counts:
        pcap = os.path.join(args.pcaps, f"esp_in_many_{count}.pcap")
        if not os.path.exists(pcap):
            generate_many(pcap, count)
        path = os.path.join(work, f"sas_{count}.toml")
        with open(path, "w") as f:
            f.write(config(pcap, extra_sas=count))
        cfg = os.path.join(work, f"secgw_sas_{count}.cfg")
        with open(cfg, "w") as f:
            f.write(secgw_many_config(count))
        rates[count], io[count], peer[count] = [], [], []
        for rep in range(args.reps):
            io[count].append(testpmd(pcap, args.warmup, args.window))
            rates[count].append(anygate(args.perf_bin, path, args.warmup + count / 50000, args.window))
            line = (f"rep {rep + 1}: decrypt 114 B over {count} SAs: testpmd io {io[count][-1]:6.2f}   "
                    f"anygate {rates[count][-1]:6.2f}")
            if with_secgw:
                # secgw builds its policy ACL and one crypto session per SA before it forwards.
                warmup = args.warmup + 1 + count / 10000
                peer[count].append(secgw(args.secgw, cfg, pcap, True, warmup, args.window, mbufs=262143))
                line += f"   secgw {peer[count][-1]:6.2f}"
            print(line + " Mpps", flush=True)
    print()
    print("| inbound SAs installed (each in use) | anygate Mpps min / med / max | against the fewest | "
          "testpmd io Mpps (med) | anygate / testpmd | secgw Mpps (med) | secgw against its fewest | "
          "anygate / secgw |")
    print("|---|---|---|---|---|---|---|---|")
    base = statistics.median(rates[counts[0]])
    peer_base = statistics.median(peer[counts[0]]) if peer[counts[0]] else None
    for count in counts:
        r, t = rates[count], statistics.median(io[count])
        a = statistics.median(r)
        cells = "not measured | - | -"
        if peer[count]:
            s = statistics.median(peer[count])
            cells = f"{s:.2f} | {s / peer_base:.3f} | {a / s:.3f}"
        print(f"| {count} | {min(r):.2f} / {a:.2f} / {max(r):.2f} | "
              f"{a / base:.3f} | {t:.2f} | {a / t:.3f} | {cells} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--window", type=float, default=3.0)
    ap.add_argument("--cases", default="", help="capture names, comma-separated (default: all)")
    ap.add_argument("--sa-counts", default="1,1000,16000,100000",
                    help="SA counts for the lookup-cost run, comma-separated; empty: skip it")
    ap.add_argument("--pcaps", default="/tmp/anygate-bench/esp")
    ap.add_argument("--perf-bin", default=os.path.join(HERE, "..", "target", "release"))
    ap.add_argument("--secgw", default="", help="a built ipsec-secgw to measure beside anygate")
    ap.add_argument("--print-config", metavar="PCAP", help="print the configuration for PCAP and stop")
    args = ap.parse_args()
    if args.print_config:
        print(config(args.print_config))
        return
    cases = [c for c in CASES if not args.cases or c[1] in args.cases.split(",")]
    with_secgw = bool(args.secgw and os.access(args.secgw, os.X_OK))

    if not os.path.exists(os.path.join(args.pcaps, "plain_out_imix_256.pcap")):
        generate(args.pcaps)
    work = tempfile.mkdtemp(prefix="anygate-esp-bench.")
    results = {c[1]: {"anygate": [], "testpmd": [], "aead": [], "awslc": [], "secgw": []} for c in cases}
    for rep in range(args.reps):
        for direction, name, label, inner_len, bits, _ in cases:
            decrypt = direction == "decrypt"
            pcap = os.path.join(args.pcaps, f"{name}.pcap")
            path = os.path.join(work, f"{name}.toml")
            with open(path, "w") as f:
                f.write(config(pcap, bits))
            sizes = SIZES[name.split("_")[2]]
            r = results[name]
            r["testpmd"].append(testpmd(pcap, args.warmup, args.window))
            r["anygate"].append(anygate(args.perf_bin, path, args.warmup, args.window))
            r["aead"].append(aead(args.perf_bin, sizes, decrypt, args.window, "ipsec-mb"))
            r["awslc"].append(aead(args.perf_bin, sizes, decrypt, args.window / 2, "aws-lc"))
            if with_secgw:
                cfg = os.path.join(work, f"secgw_{name}.cfg")
                with open(cfg, "w") as f:
                    f.write(secgw_config(decrypt, bits))
                r["secgw"].append(secgw(args.secgw, cfg, pcap, decrypt, args.warmup + 1, args.window))
            line = (f"rep {rep + 1}: {direction} AES-{bits}-GCM {label:<7} testpmd io {r['testpmd'][-1]:6.2f}   "
                    f"anygate {r['anygate'][-1]:6.2f}   AES-GCM alone: ipsec-mb {r['aead'][-1]:6.2f} "
                    f"aws-lc {r['awslc'][-1]:6.2f}")
            if with_secgw:
                line += f"   secgw {r['secgw'][-1]:6.2f}"
            print(line + " Mpps", flush=True)

    if cases:
        print()
        print("| direction | AES-GCM | frames | anygate Mpps min / med / max | Gbit/s inner | testpmd io "
              "| ipsec-mb AES-GCM alone | aws-lc AES-GCM alone | secgw Mpps | anygate / secgw "
              "| anygate / ipsec-mb alone |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
    for direction, name, label, inner_len, bits, recorded in cases:
        r = results[name]
        a, t, c, w = (statistics.median(r[k]) for k in ("anygate", "testpmd", "aead", "awslc"))
        s = statistics.median(r["secgw"]) if r["secgw"] else recorded
        secgw_cells = (f"{s:.2f}{'' if r['secgw'] else ' (recorded)'} | {a / s:.3f}" if s else "not measured | -")
        print(f"| {direction} | {bits} | {label} | {min(r['anygate']):.2f} / {a:.2f} / {max(r['anygate']):.2f} | "
              f"{a * inner_len * 8 / 1000:.1f} | {t:.2f} | {c:.2f} | {w:.2f} | {secgw_cells} | {a / c:.3f} |")

    if args.sa_counts:
        print()
        sa_counts(args, work, [int(n) for n in args.sa_counts.split(",")], with_secgw)


if __name__ == "__main__":
    main()
