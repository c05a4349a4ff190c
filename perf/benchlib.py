"""What the throughput benchmarks share: testpmd io on a capture, and anygate's worker on a
configuration, each on lcore 1 with a net_pcap infinite_rx source and a net_null sink."""

import json
import os
import re
import socket
import statistics
import subprocess
import tempfile
import time


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


def l3fwd(binary, pcap, warmup, window):
    """DPDK's l3fwd (LPM, its SSE path, packet types parsed in software: the source gives none)
    on lcore 1, routing every IPv4 packet of `pcap` to the sink. Its rate is the sink's TX packets
    over the window, read each second through DPDK's telemetry socket (l3fwd prints no rate)."""
    work = tempfile.mkdtemp(prefix="anygate-l3fwd.")
    rules4, rules6 = os.path.join(work, "v4.cfg"), os.path.join(work, "v6.cfg")
    with open(rules4, "w") as f:
        f.write("R0.0.0.0/1 1\nR128.0.0.0/1 1\n")
    with open(rules6, "w") as f:
        f.write("R2001:db8::/32 1\n")
    prefix = os.path.basename(work)
    sock = f"/var/run/dpdk/{prefix}/dpdk_telemetry.v2"
    cmd = [binary, "-l", "1", "--no-pci", "--in-memory", "--file-prefix", prefix, "--log-level=lib.eal:error",
           "--vdev", f"net_pcap0,rx_pcap={pcap},infinite_rx=1", "--vdev", "net_null0,no-rx=1", "--",
           "-p", "0x3", "--config", "(0,0,1)", "--parse-ptype", "--rx-queue-size", "65535", f"--rule_ipv4={rules4}",
           f"--rule_ipv6={rules6}", "--eth-dest=1,02:00:00:00:02:02"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def stats(port):
        """Port `port`'s counters; None before the socket and the port are up."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
                s.connect(sock)
                s.recv(4096)
                s.send(f"/ethdev/stats,{port}".encode())
                return json.loads(s.recv(65536)).get("/ethdev/stats")
        except OSError:
            return None

    def sent():
        sink = stats(1)
        if sink is None:
            raise RuntimeError(f"l3fwd's telemetry stopped answering on {pcap}")
        return sink["opackets"], time.monotonic()

    try:
        # The warm-up starts at the first packet sent, after the ports and routes are set up.
        deadline = time.monotonic() + 20
        while not (sink := stats(1)) or sink["opackets"] == 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"l3fwd sent nothing on {pcap}:\n{proc.communicate()[0][-2000:]}")
            time.sleep(0.05)
        time.sleep(warmup)
        rates, (count, at) = [], sent()
        for _ in range(max(1, round(window))):
            time.sleep(window / max(1, round(window)))
            later, later_at = sent()
            rates.append((later - count) / (later_at - at) / 1e6)
            count, at = later, later_at
        # Every packet received was routed to the sink (none dropped by its checks). The sink is
        # read after the source, so what l3fwd sends between the two reads (a millisecond is
        # some 50 000 packets, and a busy machine can take longer) counts as sent: only more
        # received than sent says anything.
        received = (stats(0) or {}).get("ipackets", 0)
        count = sent()[0]
        if received - count > received / 1000:
            raise RuntimeError(f"l3fwd received {received} packets of {pcap} and sent {count}")
    finally:
        proc.send_signal(2)
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        for f in (rules4, rules6):
            os.unlink(f)
        os.rmdir(work)
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
