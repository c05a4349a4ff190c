"""What the throughput benchmarks share: testpmd io on a capture, and anygate's worker on a
configuration, each on lcore 1 with a net_pcap infinite_rx source and a net_null sink."""

import json
import os
import re
import statistics
import subprocess


def ports_config(pcap, mac, address):
    """The configuration both benchmarks share: one worker on lcore 1, a net_pcap source replaying
    `pcap` (port address `address`, MAC `mac`) and a net_null sink behind a static gateway."""
    return f"""
[dataplane]
cores = [1]
main_core = 0
mbufs = 262143
eal_args = ["--in-memory", "--no-telemetry"]

[[ports]]
name = "src"
device = "net_pcap0,rx_pcap={pcap},infinite_rx=1"
mac = "{mac}"
address = "{address}"

[[ports]]
name = "sink"
device = "net_null0,no-rx=1"
address = "203.0.113.1/24"
gateway = "203.0.113.254"
gateway_mac = "02:00:00:00:02:02"
"""


def testpmd(pcap, warmup, window):
    cmd = ["dpdk-testpmd", "-l", "0,1", "--no-pci", "--in-memory", "--no-telemetry",
           "--log-level=lib.eal:error", "--vdev", f"net_pcap0,rx_pcap={pcap},infinite_rx=1",
           "--vdev", "net_null0,no-rx=1", "--", "--forward-mode=io", "--nb-cores=1",
           "--stats-period", "1", "--total-num-mbufs=262144"]
    seconds = int(warmup + window + 2)
    out = subprocess.run(["timeout", "-s", "INT", str(seconds)] + cmd, capture_output=True, text=True).stdout
    # Per period, one block per port; port 1's Tx-pps is the forwarded rate.
    rates = []
    for block in re.split(r"NIC statistics for port ", out)[1:]:
        if block.startswith("1 "):
            m = re.search(r"Tx-pps:\s+(\d+)", block)
            if m:
                rates.append(int(m.group(1)) / 1e6)
    rates = [r for r in rates[int(warmup):] if r > 0]
    if not rates:
        raise RuntimeError(f"testpmd gave no rate for {pcap}:\n{out[-2000:]}")
    return statistics.median(rates)


def anygate(perf_bin, config, warmup, window):
    out = subprocess.run([os.path.join(perf_bin, "worker-rate"), "--config", config, "--core", "1",
                          "--warmup", str(warmup), "--window", str(window)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"worker-rate failed: {out.stderr}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["drops"] or result["punts"]:
        raise RuntimeError(f"worker-rate dropped or punted packets: {result}")
    return result["mpps"]
