#!/usr/bin/python3
"""ESP throughput on one worker core, beside dpdk-testpmd io on the same captures and core, the
crypto library's own AES-GCM rate on the same core, and DPDK's ipsec-secgw on the same captures.

usage: esp_bench.py [--reps N] [--warmup S] [--window S] [--cases a,b] [--pcaps DIR]
                    [--perf-bin DIR] [--secgw PATH --secgw-cfg DIR] [--print-config PCAP]

The captures are ipsec-secgw's reference inputs (AES-128-GCM, RFC 4106; inbound SA spi 101 from
172.16.2.1 to 172.16.1.1, outbound spi 201; inner IPv4/UDP, 8 flows; 46 / 442 / 1330-byte inner
packets), made here with scapy when DIR lacks them. Per repetition and case: testpmd
--forward-mode=io on lcore 1, then anygate's worker on lcore 1 (perf/src/bin/worker-rate.rs:
the real worker, pipeline and SA database, static SAs installed through the SA seam), then
AES-GCM alone sealing or opening the same bytes on cpu 1 (perf/src/bin/aead-rate.rs), from
intel-ipsec-mb (what the dataplane runs) and from aws-lc-rs (for comparison), then, where
--secgw names a built ipsec-secgw and --secgw-cfg its configurations, secgw on lcore 1. The
input loops, repeating sequence numbers: anti-replay is off, as for secgw. The table gives min /
median / max over the repetitions and ratios of the medians. Without secgw, the figures it
reached on this machine with the same method are printed, marked as recorded.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import anygate, testpmd

HERE = os.path.dirname(os.path.abspath(__file__))

# (direction, capture, label, inner bytes, secgw Mpps recorded here, legacy mode, median of 3)
CASES = [
    ("decrypt", "esp_in_small", "114 B", 46, 11.27),
    ("decrypt", "esp_in_512", "510 B", 442, 8.17),
    ("decrypt", "esp_in_1400", "1398 B", 1330, 5.47),
    ("encrypt", "plain_out_small", "60 B", 46, 11.41),
    ("encrypt", "plain_out_512", "456 B", 442, 7.85),
    ("encrypt", "plain_out_1400", "1344 B", 1330, 5.35),
]

IN_KEY = bytes(range(0x10, 0x20)) + bytes.fromhex("a1a2a3a4")
OUT_KEY = bytes(range(0x20, 0x30)) + bytes.fromhex("b1b2b3b4")
PORT_MAC, SENDER_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"

CONFIG = f"""
[dataplane]
cores = [1]
main_core = 0
mbufs = 262143
eal_args = ["--in-memory", "--no-telemetry"]

[[ports]]
name = "src"
device = "net_pcap0,rx_pcap={{pcap}},infinite_rx=1"
mac = "{PORT_MAC}"
address = "172.16.1.1/24"

[[ports]]
name = "sink"
device = "net_null0,no-rx=1"
address = "203.0.113.1/24"
gateway = "203.0.113.254"
gateway_mac = "02:00:00:00:02:02"

[[ipsec_tunnels]]
name = "bench"
customer_endpoint = "172.16.2.1"
anycast_endpoint = "172.16.1.1"

[[ipsec_tunnels.static_sas]]
spi = 101
direction = "inbound"
transform = "aes128gcm16"
encryption_key = "{IN_KEY.hex()}"

[[ipsec_tunnels.static_sas]]
spi = 201
direction = "outbound"
transform = "aes128gcm16"
encryption_key = "{OUT_KEY.hex()}"

[[routes]]
prefix = "192.168.20.0/24"
nexthop = "bench"
"""


def generate(out, n=1024):
    """The reference captures (same keys, SPIs, addresses, sizes and flows as secgw's)."""
    from scapy.all import IP, UDP, Ether, Raw, wrpcap
    from scapy.layers.ipsec import ESP, SecurityAssociation
    os.makedirs(out, exist_ok=True)

    def inner(i, ip_len, dst_net, src_net):
        f = i % 8
        p = IP(src=f"{src_net}.{1 + f}", dst=f"{dst_net}.{1 + f}", ttl=64, id=i & 0xFFFF) / \
            UDP(sport=10000 + f, dport=20000 + f) / Raw(bytes((i + k) & 0xFF for k in range(ip_len - 28)))
        return IP(bytes(p))

    for name, ip_len in (("small", 46), ("512", 442), ("1400", 1330)):
        sa = SecurityAssociation(ESP, spi=101, crypt_algo="AES-GCM", crypt_key=IN_KEY,
                                 tunnel_header=IP(src="172.16.2.1", dst="172.16.1.1"))
        esp = [Ether(src=SENDER_MAC, dst=PORT_MAC) / sa.encrypt(inner(i, ip_len, "192.168.10", "10.1.0"))
               for i in range(n)]
        plain = [Ether(src=SENDER_MAC, dst=PORT_MAC) / inner(i, ip_len, "192.168.20", "10.2.0") for i in range(n)]
        wrpcap(f"{out}/esp_in_{name}.pcap", esp)
        wrpcap(f"{out}/plain_out_{name}.pcap", plain)


def aead(perf_bin, inner, decrypt, seconds, library):
    cmd = ["taskset", "-c", "1", os.path.join(perf_bin, "aead-rate"), "--inner", str(inner),
           "--seconds", str(seconds), "--library", library] + (["--open"] if decrypt else [])
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)["mpps"]


def secgw(binary, cfg_dir, pcap, decrypt, warmup, window):
    """ipsec-secgw (legacy mode, ipsec_mb AES-GCM PMD) on lcore 1: its cumulative "Total packets
    sent" line, read twice a window apart."""
    cfg = os.path.join(cfg_dir, "secgw_in.cfg" if decrypt else "secgw_out.cfg")
    cmd = ["stdbuf", "-oL", binary, "-l", "1", "--no-pci", "--in-memory", "--no-telemetry",
           "--log-level=lib.eal:error", "--vdev", f"net_pcap0,rx_pcap={pcap},infinite_rx=1",
           "--vdev", "net_null1,no-rx=1", "--vdev", "crypto_aesni_gcm0", "--", "-p", "0x3",
           "-f", cfg, "--config", "(0,0,1)", "-t", "1"] + (["-u", "0x1"] if decrypt else [])
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--window", type=float, default=3.0)
    ap.add_argument("--cases", default="")
    ap.add_argument("--pcaps", default="/tmp/anygate-bench/esp")
    ap.add_argument("--perf-bin", default=os.path.join(HERE, "..", "target", "release"))
    ap.add_argument("--secgw", default="")
    ap.add_argument("--secgw-cfg", default="")
    ap.add_argument("--print-config", metavar="PCAP", help="print the configuration for PCAP and stop")
    args = ap.parse_args()
    if args.print_config:
        print(CONFIG.format(pcap=args.print_config))
        return
    cases = [c for c in CASES if not args.cases or c[1] in args.cases.split(",")]
    with_secgw = bool(args.secgw and os.access(args.secgw, os.X_OK) and args.secgw_cfg)

    if not os.path.exists(os.path.join(args.pcaps, "plain_out_1400.pcap")):
        generate(args.pcaps)
    work = tempfile.mkdtemp(prefix="anygate-esp-bench.")
    results = {c[1]: {"anygate": [], "testpmd": [], "aead": [], "awslc": [], "secgw": []} for c in cases}
    for rep in range(args.reps):
        for direction, name, label, inner, _ in cases:
            pcap = os.path.join(args.pcaps, f"{name}.pcap")
            config = os.path.join(work, f"{name}.toml")
            with open(config, "w") as f:
                f.write(CONFIG.format(pcap=pcap))
            r = results[name]
            r["testpmd"].append(testpmd(pcap, args.warmup, args.window))
            r["anygate"].append(anygate(args.perf_bin, config, args.warmup, args.window))
            r["aead"].append(aead(args.perf_bin, inner, direction == "decrypt", args.window, "ipsec-mb"))
            r["awslc"].append(aead(args.perf_bin, inner, direction == "decrypt", args.window / 2, "aws-lc"))
            if with_secgw:
                r["secgw"].append(secgw(args.secgw, args.secgw_cfg, pcap, direction == "decrypt",
                                        args.warmup + 1, args.window))
            line = (f"rep {rep + 1}: {direction} {label:<7} testpmd io {r['testpmd'][-1]:6.2f}   "
                    f"anygate {r['anygate'][-1]:6.2f}   AES-GCM alone: ipsec-mb {r['aead'][-1]:6.2f} "
                    f"aws-lc {r['awslc'][-1]:6.2f}")
            if with_secgw:
                line += f"   secgw {r['secgw'][-1]:6.2f}"
            print(line + " Mpps", flush=True)

    print()
    print("| direction | frames | anygate Mpps min / med / max | Gbit/s inner | testpmd io | ipsec-mb AES-GCM alone "
          "| aws-lc AES-GCM alone | secgw Mpps | anygate / secgw | anygate / ipsec-mb alone | anygate / testpmd |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for direction, name, label, inner, recorded in cases:
        r = results[name]
        a, t, c, w = (statistics.median(r[k]) for k in ("anygate", "testpmd", "aead", "awslc"))
        s = statistics.median(r["secgw"]) if r["secgw"] else recorded
        mark = "" if r["secgw"] else " (recorded)"
        print(f"| {direction} | {label} | {min(r['anygate']):.2f} / {a:.2f} / {max(r['anygate']):.2f} | "
              f"{a * inner * 8 / 1000:.1f} | {t:.2f} | {c:.2f} | {w:.2f} | {s:.2f}{mark} | {a / s:.3f} | {a / c:.3f} | "
              f"{a / t:.3f} |")


if __name__ == "__main__":
    main()
