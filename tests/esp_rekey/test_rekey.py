#!/usr/bin/python3
"""Rekey of manually keyed ESP SAs under traffic, through the real processor (`anygate run` on a
DPDK net_af_packet port), with the configuration reload (SIGHUP) as the rekey: zero packets lost,
asserted by counting every packet each way.

    this script (customer router and internet side)        anygate (DPDK)
    agk1 02:00:00:00:00:fe  --------- veth ---------  agk0 02:00:00:00:01:01, 192.0.2.1
                                                       anycast 192.0.2.100, tunnel to 198.51.100.10

Inbound, the router sends numbered packets 10.20.0.7 -> 203.0.113.5 in ESP; anygate decrypts them
and sends them out in clear. Outbound, the internet side sends numbered packets 203.0.113.5 ->
10.20.0.9 in clear; anygate encrypts them and the router decrypts them with whichever SA the SPI
names. Both streams run at a steady rate while the SAs change:

    v1  inbound A,     outbound A'
    v2  inbound A + B, outbound A' + B'   (B' takes over at once; once B is installed the router
                                           moves to B, for a while mixing A and B as a router with
                                           packets of the old SA still queued would)
    v3  inbound B,     outbound B'        (the old SAs deleted)

Every number must arrive exactly once each way, A' must stop where B' starts, and anygate's own
counters (per tunnel, per SA, drops) must agree with what was sent and seen on the wire.

The ESP of the fast path here is built with python3-cryptography's AES-GCM (scapy is too slow to
encrypt a thousand packets a second); scapy's SecurityAssociation checks that construction and a
sample of the decryptions, so the reference stays independent of anygate.

Runs in a private network namespace (re-executes itself under `unshare -n`): nothing touches the
host's network, and the namespace goes away with the last process in it."""

import collections
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

ANYGATE = os.environ.get("ANYGATE", os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../target/debug/anygate"))
NETNS_MARK = "ANYGATE_REKEY_IN_NETNS"

PORT_IF, PEER_IF = "agk0", "agk1"
PORT_MAC, GW_MAC = "02:00:00:00:01:01", "02:00:00:00:00:fe"
ANYCAST, CUSTOMER = "192.0.2.100", "198.51.100.10"
SITE_SRC, SITE_DST, CLIENT = "10.20.0.7", "10.20.0.9", "203.0.113.5"
TUNNEL = "site"

# SPIs: inbound A, B (the router's outbound SAs), outbound A', B' (anygate's).
SPI_A, SPI_B = 0x00001001, 0x00001002
SPI_A2, SPI_B2 = 0x00002001, 0x00002002

RATE = 500  # packets per second, each way
PHASE_V1 = 1.5  # seconds of traffic on v1 before the first rekey
MIXED = 0.4  # seconds during which the router alternates A and B
PHASE_V2 = 1.5  # seconds from the router's move to B until v3
PHASE_V3 = 1.5  # seconds of traffic after v3
DRAIN = 0.5  # seconds after the last packet before anygate is stopped
WAIT = 15.0  # longest wait for anygate to start or apply a reload
RX_BURST = 32  # the most packets a worker receives at once (dpdk_bindings::BURST)

MAGIC_IN, MAGIC_OUT = b"rekey-in", b"rekeyout"
PAYLOAD_LEN = 40  # magic, number, filler
ETH_IP = struct.pack("!H", 0x0800)

# Drop reasons a rekey done right can never cause; must be zero whatever else happens on the wire.
MUST_BE_ZERO = ("esp_unknown_spi", "esp_no_sa", "esp_bad_icv", "esp_replayed", "esp_malformed",
                "esp_bad_padding", "esp_bad_next_header", "esp_unknown_tunnel", "esp_crypto_failed",
                "tx_full", "slow_path_full", "mbuf_exhausted", "neighbor_unresolved", "no_egress")
# Reasons a frame the host kernel sends on its own (not part of the test) may end in. IPv6 is off
# on both interfaces and neither has an IPv4 address, so normally there is none; any such frame
# seen on the wire is counted, and these drops may not exceed that count.
CHATTER_REASONS = ("unsupported_ethertype", "martian", "no_route", "not_our_mac", "arp_not_for_us",
                   "arp_malformed", "ipv6_malformed")


def mac_bytes(mac):
    return bytes(int(x, 16) for x in mac.split(":"))


def ip_bytes(addr):
    return socket.inet_aton(addr)


def key(seed, n=20):
    """An aes128gcm16 key: 16 bytes of AES key then the 4-byte salt."""
    return bytes((seed * 29 + i * 11 + 3) & 0xFF for i in range(n))


KEYS = {SPI_A: key(1), SPI_B: key(2), SPI_A2: key(3), SPI_B2: key(4)}


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(src, dst, proto, payload, ident, ttl=64):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident & 0xFFFF, 0, ttl, proto, 0,
                      ip_bytes(src), ip_bytes(dst))
    return hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:] + payload


def udp_ipv4(src, dst, sport, dport, data, ident, ttl=64):
    length = 8 + len(data)
    pseudo = ip_bytes(src) + ip_bytes(dst) + struct.pack("!BBH", 0, 17, length)
    hdr = struct.pack("!HHHH", sport, dport, length, 0)
    c = csum(pseudo + hdr + data) or 0xFFFF
    return ipv4(src, dst, 17, hdr[:6] + struct.pack("!H", c) + data, ident, ttl)


def payload(magic, n):
    return (magic + struct.pack("!I", n)).ljust(PAYLOAD_LEN, b"\xa5")


def inner_in(n, ttl=64):
    """The n-th packet of the inbound stream, as the host behind the router sends it (TTL 64)
    or as anygate forwards it (63)."""
    return udp_ipv4(SITE_SRC, CLIENT, 5000, 40000, payload(MAGIC_IN, n), n, ttl)


def inner_out(n, ttl=64):
    """The n-th packet of the outbound stream, as the internet side sends it or (63) as anygate
    forwards it into the tunnel."""
    return udp_ipv4(CLIENT, SITE_DST, 40000, 5000, payload(MAGIC_OUT, n), n, ttl)


def plain_out(n):
    """The n-th frame of the outbound stream, from the internet side into anygate."""
    return mac_bytes(PORT_MAC) + mac_bytes(GW_MAC) + ETH_IP + inner_out(n)


def esp_seal(spi, seq, inner):
    """RFC 4303 + RFC 4106 ESP (AES-GCM, 8-byte IV = the sequence number, no ESN): the ESP part."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    k = KEYS[spi]
    header = struct.pack("!II", spi, seq)
    iv = struct.pack("!Q", seq)
    padlen = -(len(inner) + 2) % 4
    body = inner + bytes(range(1, padlen + 1)) + bytes([padlen, 4])
    return header + iv + AESGCM(k[:16]).encrypt(k[16:] + iv, body, header)


def esp_open(esp):
    """Decrypt an ESP packet anygate sent: (spi, seq, inner IP packet); raises if it does not
    authenticate or its trailer is wrong."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    spi, seq = struct.unpack("!II", esp[:8])
    k = KEYS[spi]
    plain = AESGCM(k[:16]).decrypt(k[16:] + esp[8:16], esp[16:], esp[:8])
    padlen, nh = plain[-2], plain[-1]
    if nh != 4:
        raise ValueError(f"next header {nh}")
    if plain[-2 - padlen:-2] != bytes(range(1, padlen + 1)):
        raise ValueError("bad padding")
    return spi, seq, plain[:-2 - padlen]


def esp_in_frame(spi, seq, n):
    esp = esp_seal(spi, seq, inner_in(n))
    return mac_bytes(PORT_MAC) + mac_bytes(GW_MAC) + ETH_IP + ipv4(CUSTOMER, ANYCAST, 50, esp, seq)


def scapy_sa(spi, toward_anygate):
    from scapy.all import ESP, IP
    from scapy.layers.ipsec import SecurityAssociation
    return SecurityAssociation(ESP, spi=spi, crypt_algo="AES-GCM", crypt_key=KEYS[spi], auth_algo="NULL",
                               auth_key=None,
                               tunnel_header=IP(src=CUSTOMER, dst=ANYCAST) if toward_anygate else None)


def check_against_scapy():
    """The hand-built frames are what scapy builds for the same fields."""
    from scapy.all import ESP, IP, UDP, Ether, Raw
    for spi, seq, n in ((SPI_A, 1, 0), (SPI_B, 77, 12345)):
        ref = scapy_sa(spi, True).encrypt(IP(inner_in(n)), seq_num=seq, iv=struct.pack("!Q", seq))
        assert bytes(ref[ESP]) == esp_seal(spi, seq, inner_in(n)), "ESP differs from scapy's"
    n = 4242
    ref = (Ether(src=GW_MAC, dst=PORT_MAC) / IP(src=CLIENT, dst=SITE_DST, id=n, ttl=64, flags=0)
           / UDP(sport=40000, dport=5000) / Raw(payload(MAGIC_OUT, n)))
    assert bytes(ref) == plain_out(n), "plain frame differs from scapy's"


def scapy_open(frame):
    """scapy's decryption of an ESP frame from anygate: the inner IP packet."""
    from scapy.all import IP
    spi = struct.unpack("!I", frame[34:38])[0]
    return bytes(scapy_sa(spi, False).decrypt(IP(frame[14:]))[IP].payload)


def config(sas):
    """The configuration with these static SAs: (spi, direction)."""
    text = f"""[dataplane]
cores = [1]
main_core = 0
eal_args = ["--in-memory", "--no-telemetry"]

[[ports]]
name = "wan"
device = "net_af_packet0,iface={PORT_IF}"
mac = "{PORT_MAC}"
address = "192.0.2.1/24"
gateway = "192.0.2.254"
gateway_mac = "{GW_MAC}"

[[ipsec_tunnels]]
name = "{TUNNEL}"
customer_endpoint = "{CUSTOMER}"
anycast_endpoint = "{ANYCAST}"
# Each SA has its own anti-replay window: B starting again at 1 while A is far ahead must pass.
replay_protection = true
"""
    for spi, direction in sas:
        text += f"""
[[ipsec_tunnels.static_sas]]
spi = {spi:#x}
direction = "{direction}"
transform = "aes128gcm16"
encryption_key = "{KEYS[spi].hex()}"
"""
    text += f'\n[[routes]]\nprefix = "10.20.0.0/16"\nnexthop = "{TUNNEL}"\n'
    return text


V1 = [(SPI_A, "inbound"), (SPI_A2, "outbound")]
V2 = V1 + [(SPI_B, "inbound"), (SPI_B2, "outbound")]
V3 = [(SPI_B, "inbound"), (SPI_B2, "outbound")]


def sh(*args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)


def sysctl(path, value):
    try:
        with open(os.path.join("/proc/sys", path), "w") as f:
            f.write(value)
    except FileNotFoundError:
        pass  # no IPv6 in this kernel: nothing to turn off


def make_link():
    """A veth pair in this (private) namespace: agk0 for anygate, agk1 for this script."""
    # The kernel must stay quiet on both ends: no IPv6 (router solicitations, MLD), no addresses.
    sysctl("net/ipv6/conf/all/disable_ipv6", "1")
    sysctl("net/ipv6/conf/default/disable_ipv6", "1")
    sh("ip", "link", "set", "lo", "up")  # scapy wants an address on lo
    sh("ip", "link", "add", PORT_IF, "type", "veth", "peer", "name", PEER_IF)
    sh("ip", "link", "set", PEER_IF, "address", GW_MAC)
    for dev in (PORT_IF, PEER_IF):
        # Offloads would hand half-made frames (checksums left to a NIC) to the other end.
        subprocess.run(["ethtool", "-K", dev, "tx", "off", "rx", "off", "tso", "off", "gso", "off", "gro", "off"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sh("ip", "link", "set", dev, "up")


class Wire:
    """The script's end of the link: one socket sends, another sees every frame on agk1 both ways
    (what went out is counted too, so that anygate's rx figure can be compared with the wire)."""

    def __init__(self):
        self.tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        self.tx.bind((PEER_IF, 0))
        self.rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        # Room for the whole run, so a slow moment of this script never loses a frame.
        self.rx.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE
        self.rx.bind((PEER_IF, 0))
        self.rx.setblocking(False)
        self.received = []  # frames from anygate, in arrival order
        self.sent_seen = 0  # frames of the test seen leaving agk1
        self.chatter = []  # frames neither side of the test sent

    def send(self, frame):
        self.tx.send(frame)

    def drain(self):
        while True:
            try:
                frame, addr = self.rx.recvfrom(4096)
            except BlockingIOError:
                return
            if addr[2] == socket.PACKET_OUTGOING:
                if is_test_frame(frame):
                    self.sent_seen += 1
                else:
                    self.chatter.append(frame)
            elif frame[6:12] == mac_bytes(PORT_MAC):
                self.received.append(frame)
            else:
                self.chatter.append(frame)

    def socket_drops(self):
        # PACKET_STATISTICS: (packets, drops), reset by the read.
        packets, drops = struct.unpack("II", self.rx.getsockopt(263, 6, 8))
        return drops


def is_test_frame(frame):
    if frame[12:14] != ETH_IP or frame[6:12] != mac_bytes(GW_MAC):
        return False
    src = socket.inet_ntoa(frame[26:30])
    return (frame[23] == 50 and src == CUSTOMER) or (frame[23] == 17 and src == CLIENT)


class Anygate:
    def __init__(self, work):
        self.work = work
        self.cfg = os.path.join(work, "anygate.toml")
        self.counters_file = os.path.join(work, "counters.json")
        self.err_path = os.path.join(work, "anygate.err")
        self.out_path = os.path.join(work, "anygate.out")
        self.proc = None

    def write(self, sas):
        tmp = self.cfg + ".tmp"
        with open(tmp, "w") as f:
            f.write(config(sas))
        os.replace(tmp, self.cfg)

    def start(self):
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.proc = subprocess.Popen(
                [ANYGATE, "run", "--config", self.cfg, "--stats-interval", "0", "--counters", self.counters_file],
                stdout=out, stderr=err)

    def stderr(self):
        with open(self.err_path, errors="replace") as f:
            return f.read()

    def reloads(self):
        return self.stderr().count("anygate: reloaded")

    def installed(self):
        """(spi, direction) of the SAs the worker reports (counters file, once a second)."""
        try:
            with open(self.counters_file) as f:
                c = json.load(f)
        except (FileNotFoundError, ValueError):
            return set()
        return {(int(s["spi"], 16), s["direction"]) for s in c["tunnels"].get(TUNNEL, {}).get("sas", [])}

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def hup(self):
        self.proc.send_signal(signal.SIGHUP)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=WAIT)
        with open(self.out_path) as f:
            return self.proc.returncode, f.read()

    def kill(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()


class Failure(Exception):
    pass


class Run:
    """The traffic and the rekeys, in one thread: each tick sends one packet each way and drains
    the wire, and the phases move on from what anygate reports, never from guessed delays."""

    def __init__(self, ag, wire):
        self.ag, self.wire = ag, wire
        self.n_in = self.n_out = 0  # numbers sent so far each way
        self.seq = {SPI_A: 0, SPI_B: 0}  # the router's ESP sequence numbers
        self.in_spi = []  # SPI each inbound number was sent with
        self.marks = {}  # event -> (inbound number, outbound number) when it happened
        self.tick = 1.0 / RATE
        self.next = time.monotonic()

    def mark(self, event):
        self.marks[event] = (self.n_in, self.n_out)

    def send_one(self, router_spi):
        if router_spi is not None:
            self.seq[router_spi] += 1
            self.wire.send(esp_in_frame(router_spi, self.seq[router_spi], self.n_in))
            self.in_spi.append(router_spi)
            self.n_in += 1
            self.wire.send(plain_out(self.n_out))
            self.n_out += 1
        self.wire.drain()
        self.next += self.tick
        delay = self.next - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        elif delay < -0.05:
            self.next = time.monotonic()  # fell behind (a busy machine): carry on, do not burst

    def traffic(self, seconds, spi_of):
        """Send for `seconds`; spi_of(i) gives the router's SPI for the i-th packet of the phase."""
        end = time.monotonic() + seconds
        i = 0
        while time.monotonic() < end:
            self.send_one(spi_of(i))
            i += 1

    def until(self, what, cond, spi):
        """Keep the traffic going on `spi` until cond() holds."""
        end = time.monotonic() + WAIT
        last_check = 0.0
        while True:
            now = time.monotonic()
            if now - last_check > 0.02:
                last_check = now
                if cond():
                    return
                if not self.ag.alive():
                    raise Failure(f"anygate exited while waiting for {what}")
            if now > end:
                raise Failure(f"timed out waiting for {what}")
            self.send_one(spi)

    def idle(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.wire.drain()
            time.sleep(0.01)
        self.wire.drain()

    def go(self):
        ag = self.ag
        ag.write(V1)
        ag.start()
        end = time.monotonic() + WAIT
        while "anygate: running" not in ag.stderr():
            if not ag.alive() or time.monotonic() > end:
                raise Failure("anygate did not start")
            time.sleep(0.05)
        # The worker lists the SAs once it has installed them.
        while not set(V1) <= ag.installed():
            if not ag.alive() or time.monotonic() > end:
                raise Failure("the v1 SAs were never reported installed")
            time.sleep(0.05)
        self.wire.drain()
        self.next = time.monotonic()

        self.mark("start")
        self.traffic(PHASE_V1, lambda i: SPI_A)

        # v2: B and B' added, A and A' kept. B' takes over the outbound traffic at once.
        ag.write(V2)
        self.mark("v2 sighup")
        ag.hup()
        self.until("the v2 reload", lambda: ag.reloads() >= 1, SPI_A)
        self.mark("v2 reloaded")
        # The router moves to B only once anygate's worker reports B installed, as an IKE peer
        # would only once the CREATE_CHILD_SA exchange is done.
        self.until("SA B installed on the worker", lambda: set(V2) <= ag.installed(), SPI_A)
        self.mark("router on B")
        # Packets of A still queued behind the first packets of B (a router with several queues,
        # or reordering on the way): A and B alternate for a while.
        self.traffic(MIXED, lambda i: SPI_B if i % 2 == 0 else SPI_A)
        self.mark("router B only")
        self.traffic(PHASE_V2 - MIXED, lambda i: SPI_B)

        # v3: the old SAs deleted.
        ag.write(V3)
        self.mark("v3 sighup")
        ag.hup()
        self.until("the v3 reload", lambda: ag.reloads() >= 2, SPI_B)
        self.mark("v3 reloaded")
        self.traffic(PHASE_V3, lambda i: SPI_B)
        self.mark("end")
        self.idle(DRAIN)


def analyse(run, wire, counters, stderr):
    """Every check; returns the list of failures and prints the figures."""
    fails = []

    def expect(cond, what):
        print(("  ok    " if cond else "  FAIL  ") + what)
        if not cond:
            fails.append(what)

    got_in = collections.Counter()
    got_out = collections.Counter()
    out_by_spi = collections.defaultdict(list)  # spi -> [(esp seq, number)] in arrival order
    out_spi_order = []  # the SPI of each outbound ESP packet, in arrival order
    bad = []
    scapy_checked = 0
    for frame in wire.received:
        try:
            if frame[:6] != mac_bytes(GW_MAC) or frame[12:14] != ETH_IP or frame[14] != 0x45:
                raise ValueError("not IPv4 to the gateway")
            ip = frame[14:]
            src, dst, proto = socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20]), ip[9]
            if csum(ip[:20]) != 0:
                raise ValueError("bad IPv4 checksum")
            if proto == 50 and (src, dst) == (ANYCAST, CUSTOMER):
                spi, seq, inner = esp_open(ip[20:struct.unpack("!H", ip[2:4])[0]])
                if not inner[28:].startswith(MAGIC_OUT):
                    raise ValueError("unknown inner payload")
                n = struct.unpack("!I", inner[28 + len(MAGIC_OUT):28 + len(MAGIC_OUT) + 4])[0]
                if inner != inner_out(n, ttl=63):
                    raise ValueError(f"outbound {n}: inner packet differs")
                got_out[n] += 1
                out_by_spi[spi].append((seq, n))
                out_spi_order.append(spi)
                # scapy decrypts the first packet of each SA and every 200th.
                if len(out_by_spi[spi]) == 1 or n % 200 == 0:
                    if scapy_open(frame) != inner:
                        raise ValueError(f"outbound {n}: scapy decrypts it differently")
                    scapy_checked += 1
            elif proto == 17 and (src, dst) == (SITE_SRC, CLIENT):
                data = ip[28:]
                if not data.startswith(MAGIC_IN):
                    raise ValueError("unknown UDP payload")
                n = struct.unpack("!I", data[len(MAGIC_IN):len(MAGIC_IN) + 4])[0]
                if ip[:struct.unpack("!H", ip[2:4])[0]] != inner_in(n, ttl=63):
                    raise ValueError(f"inbound {n}: decrypted packet differs")
                got_in[n] += 1
            else:
                raise ValueError(f"unexpected {src} -> {dst} proto {proto}")
        except Exception as e:  # noqa: BLE001 - each bad frame is reported, not just the first
            bad.append(f"{e}: {frame[:64].hex()}")

    # --- what was sent, phase by phase ----------------------------------------------------------
    m = run.marks
    n_in, n_out = run.n_in, run.n_out
    sent_in_by_spi = collections.Counter(run.in_spi)
    print(f"  sent: {n_in} inbound (A {sent_in_by_spi[SPI_A]}, B {sent_in_by_spi[SPI_B]}), {n_out} outbound, "
          f"{RATE}/s each way")
    events = ["start", "v2 sighup", "v2 reloaded", "router on B", "router B only", "v3 sighup", "v3 reloaded", "end"]
    for a, b in zip(events, events[1:]):
        print(f"    {a:>13} .. {b:<13} inbound {m[a][0]:>5}..{m[b][0] - 1:<5} outbound {m[a][1]:>5}..{m[b][1] - 1:<5}")

    # --- exactly once, each way -----------------------------------------------------------------
    def once(got, n, what):
        missing = [i for i in range(n) if got[i] == 0]
        dups = sorted(i for i, c in got.items() if c > 1)
        extra = sorted(i for i in got if i >= n)
        detail = f"missing {len(missing)} {missing[:20]}, duplicated {len(dups)} {dups[:20]}, unknown {extra[:20]}"
        expect(not missing and not dups and not extra, f"{what}: {sum(got.values())} of {n} received exactly once ({detail})")

    expect(not bad, f"every frame from anygate well-formed ({len(bad)} not: {bad[:5]})")
    once(got_in, n_in, "inbound (ESP decrypted by anygate)")
    once(got_out, n_out, "outbound (ESP from anygate decrypted here)")
    in_a = [i for i, s in enumerate(run.in_spi) if s == SPI_A]
    in_b = [i for i, s in enumerate(run.in_spi) if s == SPI_B]
    lost_a = sum(1 for i in in_a if got_in[i] == 0)
    lost_b = sum(1 for i in in_b if got_in[i] == 0)
    mixed = range(m["router on B"][0], m["router B only"][0])
    expect(in_a and in_b and lost_a == 0 and lost_b == 0,
           f"inbound carried on both SAs: A {len(in_a) - lost_a}/{len(in_a)}, B {len(in_b) - lost_b}/{len(in_b)}, "
           f"{len(mixed)} of them alternating A and B")

    # --- outbound: A' then B', each numbered from 1 without a gap --------------------------------
    counts = {spi: len(v) for spi, v in out_by_spi.items()}
    print(f"  outbound ESP by SPI: " + ", ".join(f"{spi:#010x}: {c}" for spi, c in sorted(counts.items())))
    expect(set(counts) == {SPI_A2, SPI_B2}, "outbound ESP seen with A' and B' and no other SPI")
    switch = out_spi_order.index(SPI_B2) if SPI_B2 in out_spi_order else len(out_spi_order)
    expect(all(s == SPI_A2 for s in out_spi_order[:switch]) and all(s == SPI_B2 for s in out_spi_order[switch:]),
           "A' only before B', never after (the new SA takes over in one step)")
    for spi in (SPI_A2, SPI_B2):
        seqs = [s for s, _ in out_by_spi.get(spi, [])]
        expect(seqs == list(range(1, len(seqs) + 1)), f"{spi:#010x}: ESP sequence numbers 1..{len(seqs)} in order")
    if out_by_spi.get(SPI_A2) and out_by_spi.get(SPI_B2):
        last_a, first_b = out_by_spi[SPI_A2][-1][1], out_by_spi[SPI_B2][0][1]
        expect(first_b == last_a + 1, f"outbound number {last_a} was the last on A', {first_b} the first on B'")
        # A worker applies SA updates between two bursts: once anygate has said "reloaded", at most
        # one burst more goes out on A'.
        expect(first_b <= m["v2 reloaded"][1] + RX_BURST,
               f"B' took over with the v2 reload (SIGHUP at outbound {m['v2 sighup'][1]}, "
               f"\"reloaded\" seen at {m['v2 reloaded'][1]}, first on B' {first_b})")
    expect(scapy_checked >= 2, f"scapy decrypted {scapy_checked} of them identically")

    # --- anygate's own figures --------------------------------------------------------------------
    t = counters["tunnels"][TUNNEL]
    sas = {(int(s["spi"], 16), s["direction"]): s for s in t["sas"]}
    print(f"  anygate {TUNNEL}: ingress {t['ingress_packets']}, egress {t['egress_packets']}, drops {t['drops']}; "
          + ", ".join(f"{d[:3]} {spi:#010x} {s['packets']}" for (spi, d), s in sorted(sas.items())))
    inner_len = len(inner_in(0))
    expect((t["ingress_packets"], t["ingress_bytes"]) == (n_in, n_in * inner_len),
           f"tunnel ingress counts {n_in} packets, {n_in * inner_len} bytes")
    expect((t["egress_packets"], t["egress_bytes"]) == (n_out, n_out * inner_len),
           f"tunnel egress counts {n_out} packets, {n_out * inner_len} bytes")
    expect(t["drops"] == 0, "no drop on the tunnel")
    want_sas = {(SPI_A, "inbound"): sent_in_by_spi[SPI_A], (SPI_B, "inbound"): sent_in_by_spi[SPI_B],
                (SPI_A2, "outbound"): counts.get(SPI_A2, 0), (SPI_B2, "outbound"): counts.get(SPI_B2, 0)}
    got_sas = {k: (s["packets"], s["drops"]) for k, s in sas.items()}
    expect(got_sas == {k: (v, 0) for k, v in want_sas.items()},
           "per-SA packets, deleted SAs included, are what was sent on A and B and seen on A' and B' "
           f"({', '.join(f'{spi:#x} {d}: {p} ({dr} drops)' for (spi, d), (p, dr) in sorted(got_sas.items()))})")

    drops = {k: v for k, v in counters["drops"].items() if v}
    punts = {k: v for k, v in counters["punts"].items() if v}
    print(f"  anygate drops: {drops or 'none'}; punts: {punts or 'none'}; "
          f"host chatter on the wire: {len(wire.chatter)} frame(s)")
    expect(all(counters["drops"][r] == 0 for r in MUST_BE_ZERO), f"zero drops for {', '.join(MUST_BE_ZERO)}")
    other = {k: v for k, v in drops.items() if k not in CHATTER_REASONS}
    expect(not other, f"no other drop reason ({other})")
    explained = sum(v for k, v in drops.items() if k in CHATTER_REASONS) + sum(punts.values())
    expect(explained <= len(wire.chatter),
           f"drops and punts ({explained}) no more than the host's own frames ({len(wire.chatter)})")
    expect(counters["rx_packets"] == wire.sent_seen + len(wire.chatter),
           f"anygate received {counters['rx_packets']} frames: the {wire.sent_seen} sent "
           f"+ {len(wire.chatter)} of the host")
    expect(counters["tx_packets"] == len(wire.received),
           f"anygate sent {counters['tx_packets']} frames, {len(wire.received)} arrived")
    expect(wire.sent_seen == n_in + n_out, f"all {n_in + n_out} frames of the test left agk1")

    reloads = stderr.count("anygate: reloaded")
    complaints = [line for line in stderr.splitlines()
                  if line.startswith("anygate:") and not line.startswith(("anygate: running", "anygate: reloaded",
                                                                           "anygate: stopped"))]
    expect(reloads == 2 and not complaints, f"2 reloads applied, nothing refused ({complaints})")
    return fails


def main():
    if os.geteuid() != 0:
        sys.exit("test_rekey: needs root (network namespace, hugepages)")
    if os.environ.get(NETNS_MARK) != "1":
        env = dict(os.environ, **{NETNS_MARK: "1"})
        os.execvpe("unshare", ["unshare", "--net", "--", sys.executable, os.path.abspath(__file__)] + sys.argv[1:], env)
    sys.stdout.reconfigure(line_buffering=True)
    started = time.monotonic()
    make_link()
    check_against_scapy()
    wire = Wire()
    with tempfile.TemporaryDirectory(prefix="anygate-rekey.") as work:
        ag = Anygate(work)
        run = Run(ag, wire)
        fails = []
        counters = None
        try:
            run.go()
            rc, out = ag.stop()
            if rc != 0:
                raise Failure(f"anygate exited with {rc}")
            wire.drain()
            if wire.socket_drops():
                raise Failure("the capture socket dropped frames: counting would blame anygate for them")
            counters = json.loads(out)
            print(f"rekey under traffic ({ANYGATE})")
            fails = analyse(run, wire, counters, ag.stderr())
        except Failure as e:
            fails = [str(e)]
            print(f"  FAIL  {e}")
        finally:
            ag.kill()
        elapsed = time.monotonic() - started
        if fails:
            print("--- anygate stderr (tail)")
            print("\n".join(ag.stderr().splitlines()[-30:]))
            if counters:
                print("--- anygate counters")
                print(json.dumps({k: counters[k] for k in ("rx_packets", "tx_packets", "tunnels")}))
            print(f"test_rekey: {len(fails)} check(s) failed ({elapsed:.1f} s)")
            sys.exit(1)
        print(f"test_rekey: passed ({elapsed:.1f} s)")


if __name__ == "__main__":
    main()
