#!/usr/bin/python3
"""ESP tunnel mode through the real DPDK pipeline, against scapy's independent ESP implementation
(SecurityAssociation): packets scapy encrypts are decrypted and routed by anygate, and packets
anygate encrypts are decrypted by scapy and checked field by field, for every transform, raw ESP
and ESP in UDP, IPv4 and IPv6 inside, with every drop reason counted."""

import json
import os
import struct
import subprocess
import tempfile
import unittest

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from scapy.all import ESP, IP, UDP, Ether, IPv6, Raw, rdpcap, wrpcap
from scapy.layers.ipsec import SecurityAssociation

ANYGATE = os.environ.get("ANYGATE", os.path.join(os.path.dirname(__file__), "../../target/debug/anygate"))
PORT_MAC = "02:00:00:00:01:01"
GW_MAC = "02:00:00:00:00:fe"
ANYCAST = "192.0.2.100"
CLIENT = "203.0.113.5"

# name in anygate -> (scapy cipher, cipher key bytes, scapy integrity, integrity key bytes)
TRANSFORMS = {
    "aes128gcm16": ("AES-GCM", 20, "NULL", 0),
    "aes256gcm16": ("AES-GCM", 36, "NULL", 0),
    "aes128-sha256": ("AES-CBC", 16, "SHA2-256-128", 32),
    "aes256-sha256": ("AES-CBC", 32, "SHA2-256-128", 32),
    "aes128-sha1": ("AES-CBC", 16, "HMAC-SHA1-96", 20),
    "aes256-sha1": ("AES-CBC", 32, "HMAC-SHA1-96", 20),
    "null-sha256": ("NULL", 0, "SHA2-256-128", 32),
    "null-sha1": ("NULL", 0, "HMAC-SHA1-96", 20),
}


def key(seed, n):
    return bytes((seed * 7 + i * 13) & 0xFF for i in range(n))


class Tunnel:
    """One IPsec tunnel of the test configuration, one transform, one SA each way."""

    def __init__(self, index, name, transform, udp=False, replay=False, remote_ts=None, v6=False):
        self.index, self.name, self.transform = index, name, transform
        self.customer = f"198.51.100.{10 + index}"
        self.prefix = f"10.{30 + index}.0.0/16"
        self.inner = f"10.{30 + index}.0.7"
        self.prefix6 = f"2001:db8:{30 + index:x}::/48" if v6 else None
        self.inner6 = f"2001:db8:{30 + index:x}::7"
        self.spi_in, self.spi_out = 0x1000 + index, 0x2000 + index
        self.udp, self.replay, self.remote_ts = udp, replay, remote_ts
        cipher, klen, auth, alen = TRANSFORMS[transform]
        self.keys = {d: (key(index * 2 + j, klen), key(index * 2 + j + 100, alen)) for j, d in enumerate(("in", "out"))}
        self.scapy = {}
        for d, spi in (("in", self.spi_in), ("out", self.spi_out)):
            ck, ak = self.keys[d]
            self.scapy[d] = SecurityAssociation(
                ESP, spi=spi, crypt_algo=cipher, crypt_key=ck or None, auth_algo=auth, auth_key=ak or None,
                tunnel_header=IP(src=self.customer, dst=ANYCAST) if d == "in" else None,
                nat_t_header=UDP(sport=4501, dport=4500) if (udp and d == "in") else None)

    def config(self):
        text = f"""
[[ipsec_tunnels]]
name = "{self.name}"
customer_endpoint = "{self.customer}"
anycast_endpoint = "{ANYCAST}"
replay_protection = {str(self.replay).lower()}
allow_null_cipher = {str(self.transform.startswith("null")).lower()}
"""
        for d, spi in (("inbound", self.spi_in), ("outbound", self.spi_out)):
            ck, ak = self.keys[d[:-5] if d == "inbound" else "out"]
            text += f"""
[[ipsec_tunnels.static_sas]]
spi = {spi}
direction = "{d}"
transform = "{self.transform}"
udp_encapsulation = {str(self.udp).lower()}
remote_port = 4501
"""
            if ck:
                text += f'encryption_key = "{ck.hex()}"\n'
            if ak:
                text += f'integrity_key = "{ak.hex()}"\n'
            if self.remote_ts:
                text += f'remote_ts = {json.dumps(self.remote_ts)}\n'
        text += f'\n[[routes]]\nprefix = "{self.prefix}"\nnexthop = "{self.name}"\n'
        if self.prefix6:
            text += f'\n[[routes]]\nprefix = "{self.prefix6}"\nnexthop = "{self.name}"\n'
        return text

    def esp_in(self, inner, seq=None):
        """A frame from the customer router: `inner` encrypted by scapy with the inbound SA."""
        pkt = self.scapy["in"].encrypt(inner, seq_num=seq)
        if self.udp:
            pkt = IP(bytes(pkt))
            pkt[UDP].len = len(pkt[UDP])
            pkt[UDP].chksum = 0
            pkt = IP(bytes(pkt))
        return Ether(src=GW_MAC, dst=PORT_MAC) / pkt

    def decrypt_out(self, frame):
        """Decrypt a frame anygate sent toward the router with scapy's outbound SA."""
        ip = frame[IP].copy()
        if self.udp:
            esp = ESP(bytes(ip[UDP].payload))
            ip = IP(src=ip.src, dst=ip.dst, proto=50) / esp
        outer = self.scapy["out"].decrypt(IP(bytes(ip)) if not self.udp else ip)
        # Tunnel mode: the decrypted payload is the inner packet.
        return outer[IP].payload


TUNNELS = [Tunnel(i, f"t-{t.replace('-', '')[:12]}", t) for i, t in enumerate(TRANSFORMS)]
TUNNELS[0].prefix6 = "2001:db8:30::/48"
UDP_TUNNEL = Tunnel(len(TUNNELS), "t-udp", "aes256gcm16", udp=True)
REPLAY_TUNNEL = Tunnel(len(TUNNELS) + 1, "t-replay", "aes128gcm16", replay=True)
TS_TUNNEL = Tunnel(len(TUNNELS) + 2, "t-ts", "aes128gcm16", remote_ts=["10.99.0.0/16"])
# ESP in UDP (NAT traversal) for every transform too.
UDP_TUNNELS = [Tunnel(len(TUNNELS) + 3 + i, f"u-{t.replace('-', '')[:12]}", t, udp=True)
               for i, t in enumerate(TRANSFORMS)]
ALL = TUNNELS + [UDP_TUNNEL, REPLAY_TUNNEL, TS_TUNNEL] + UDP_TUNNELS

CONFIG = """
[dataplane]
cores = [1]

[[ports]]
name = "wan"
device = "replaced-by-pcap"
mac = "02:00:00:00:01:01"
address = "192.0.2.1/24"
gateway = "192.0.2.254"
gateway_mac = "02:00:00:00:00:fe"
address6 = "2001:db8::1/64"
gateway6 = "2001:db8::fe"
gateway6_mac = "02:00:00:00:00:fe"
""" + "".join(t.config() for t in ALL)


def run(frames):
    """Feed frames through anygate; return (frames out, counters)."""
    with tempfile.TemporaryDirectory() as d:
        cfg = os.path.join(d, "c.toml")
        with open(cfg, "w") as f:
            f.write(CONFIG)
        inp, out = os.path.join(d, "in.pcap"), os.path.join(d, "out.pcap")
        wrpcap(inp, frames)
        res = subprocess.run([ANYGATE, "pcap", "--config", cfg, "--in", inp, "--out", out],
                             capture_output=True, text=True, timeout=120)
        if res.returncode != 0:
            raise AssertionError(f"anygate failed: {res.stderr}")
        counters = json.loads(res.stdout)
        return list(rdpcap(out)) if os.path.getsize(out) > 24 else [], counters


def sa_counters(c, tunnel, direction):
    (sa,) = [s for s in c["tunnels"][tunnel.name]["sas"] if s["direction"] == direction]
    return sa


def udp_inner(src, dst, n=3, size=40):
    return [IP(src=src, dst=dst, ttl=50, id=100 + i) / UDP(sport=1000 + i, dport=2000) / Raw(bytes([i]) * size)
            for i in range(n)]


class Decryption(unittest.TestCase):
    def test_every_transform_decrypts_and_routes(self):
        frames, sent = [], []
        for t in ALL:
            src = "10.99.0.7" if t is TS_TUNNEL else t.inner
            for inner in udp_inner(src, CLIENT):
                frames.append(t.esp_in(inner))
                sent.append((t, inner))
        out, c = run(frames)
        self.assertEqual(len(out), len(sent), c["drops"])
        for p, (t, inner) in zip(out, sent):
            with self.subTest(t.transform):
                self.assertEqual((p[Ether].dst, p[Ether].src), (GW_MAC, PORT_MAC))
                self.assertNotIn(ESP, p)
                self.assertEqual((p[IP].src, p[IP].dst, p[IP].ttl, p[IP].id), (inner.src, CLIENT, 49, inner.id))
                self.assertEqual(bytes(p[IP].payload), bytes(inner[IP].payload))
        for t in ALL:
            self.assertEqual(c["tunnels"][t.name]["ingress_packets"], 3, t.name)
            self.assertEqual(c["tunnels"][t.name]["ingress_bytes"], 3 * 68, t.name)
            self.assertEqual(sa_counters(c, t, "inbound")["packets"], 3, t.name)

    def test_inner_ipv6(self):
        t = TUNNELS[0]
        inner = IPv6(src="2001:db8:30::7", dst="2001:db9::5", hlim=9) / UDP(sport=1, dport=2) / Raw(b"v6" * 20)
        out, _ = run([t.esp_in(inner)])
        self.assertEqual(len(out), 1)
        p = out[0]
        self.assertEqual(p[Ether].type, 0x86DD)
        self.assertEqual((p[IPv6].src, p[IPv6].dst, p[IPv6].hlim), ("2001:db8:30::7", "2001:db9::5", 8))
        self.assertEqual(bytes(p[IPv6].payload), bytes(inner[IPv6].payload))


class Encryption(unittest.TestCase):
    def test_every_transform_encrypts_for_scapy(self):
        frames, sent = [], []
        for t in TUNNELS + [UDP_TUNNEL] + UDP_TUNNELS:
            for inner in udp_inner(CLIENT, t.inner):
                frames.append(Ether(src=GW_MAC, dst=PORT_MAC) / inner)
                sent.append((t, inner))
        out, c = run(frames)
        self.assertEqual(len(out), len(sent), c["drops"])
        seqs = {}
        for p, (t, inner) in zip(out, sent):
            with self.subTest(t.transform):
                self.assertEqual((p[Ether].dst, p[Ether].src), (GW_MAC, PORT_MAC))
                outer = p[IP]
                self.assertEqual((outer.src, outer.dst, outer.ttl, outer.flags.DF), (ANYCAST, t.customer, 64, 1))
                recomputed = outer.copy()
                del recomputed.chksum
                self.assertEqual(IP(bytes(recomputed)).chksum, outer.chksum, "outer header checksum")
                self.assertEqual(outer.len, len(bytes(outer)), "outer total length")
                if t.udp:
                    self.assertEqual((outer.proto, outer[UDP].sport, outer[UDP].dport), (17, 4500, 4501))
                    self.assertEqual(outer[UDP].len, len(outer) - 20)
                    esp = ESP(bytes(outer[UDP].payload))
                else:
                    self.assertEqual(outer.proto, 50)
                    esp = outer[ESP]
                self.assertEqual(esp.spi, t.spi_out)
                seqs.setdefault(t.name, []).append(esp.seq)
                plain = t.decrypt_out(p)
                self.assertEqual((plain[IP].src, plain[IP].dst, plain[IP].ttl, plain[IP].id),
                                 (CLIENT, inner.dst, 49, inner.id))
                self.assertEqual(bytes(plain[IP].payload), bytes(inner[IP].payload))
                if not t.transform.startswith("null"):
                    self.assertNotIn(bytes(inner[Raw]), bytes(p), "payload must not travel in clear")
        for t in TUNNELS + [UDP_TUNNEL] + UDP_TUNNELS:
            self.assertEqual(seqs[t.name], [1, 2, 3], t.name)
            self.assertEqual(c["tunnels"][t.name]["egress_packets"], 3)
            self.assertEqual(sa_counters(c, t, "outbound")["packets"], 3)

    def test_gcm_ivs_are_unique(self):
        t = TUNNELS[1]
        out, _ = run([Ether(src=GW_MAC, dst=PORT_MAC) / i for i in udp_inner(CLIENT, t.inner, n=20)])
        ivs = {bytes(p[ESP].data[:8]) for p in out}
        self.assertEqual(len(ivs), 20)

    def test_inner_ipv6_encrypts(self):
        t = TUNNELS[0]
        inner = IPv6(src="2001:db9::5", dst="2001:db8:30::9", hlim=20) / UDP(sport=3, dport=4) / Raw(b"x" * 30)
        out, _ = run([Ether(src=GW_MAC, dst=PORT_MAC) / inner])
        self.assertEqual(len(out), 1)
        plain = t.decrypt_out(out[0])
        self.assertEqual((plain[IPv6].dst, plain[IPv6].hlim), ("2001:db8:30::9", 19))
        self.assertEqual(bytes(plain[IPv6].payload), bytes(inner[IPv6].payload))

    def test_roundtrip_through_both_directions(self):
        """What anygate encrypts toward a router, decrypted by scapy, re-encrypted by scapy as the
        router's reply, comes back out of anygate as the original."""
        t = TUNNELS[2]
        inner = IP(src=CLIENT, dst=t.inner, ttl=30) / UDP(sport=7, dport=8) / Raw(b"ping" * 10)
        out, _ = run([Ether(src=GW_MAC, dst=PORT_MAC) / inner])
        plain = t.decrypt_out(out[0])
        reply = IP(src=plain[IP].dst, dst=plain[IP].src, ttl=30) / plain[IP].payload
        back, _ = run([t.esp_in(reply)])
        self.assertEqual(bytes(back[0][IP].payload), bytes(inner[IP].payload))


def raw_gcm(t, seq, payload, pad=None, next_header=4):
    """A hand-built AES-GCM ESP packet of tunnel t (for trailers scapy will not build)."""
    ck, _ = t.keys["in"]
    k, salt = ck[:-4], ck[-4:]
    if pad is None:
        n = (4 - (len(payload) + 2) % 4) % 4
        pad = bytes(range(1, n + 1))
    iv = struct.pack("!Q", seq)
    header = struct.pack("!II", t.spi_in, seq)
    body = payload + pad + bytes([len(pad), next_header])
    sealed = AESGCM(k).encrypt(salt + iv, body, header)
    return Ether(src=GW_MAC, dst=PORT_MAC) / IP(src=t.customer, dst=ANYCAST, proto=50) / Raw(header + iv + sealed)


class Drops(unittest.TestCase):
    def test_every_drop_reason(self):
        t = TUNNELS[0]
        inner = IP(src=t.inner, dst=CLIENT) / UDP() / Raw(b"d" * 20)
        good = t.esp_in(inner)
        tampered = bytearray(bytes(good))
        tampered[-20] ^= 1
        wrong_spi = bytearray(bytes(good))
        wrong_spi[34:38] = struct.pack("!I", 0x7777)
        cases = {
            "esp_bad_icv": Ether(bytes(tampered)),
            "esp_unknown_spi": Ether(bytes(wrong_spi)),
            "esp_malformed": Ether(src=GW_MAC, dst=PORT_MAC) / IP(src=t.customer, dst=ANYCAST, proto=50) / Raw(struct.pack("!II", t.spi_in, 1) + b"\0" * 6),
            "esp_bad_padding": raw_gcm(t, 9, bytes(inner), pad=b"\x07\x07"),
            "esp_bad_next_header": raw_gcm(t, 10, bytes(inner), next_header=17),
            "esp_dummy": raw_gcm(t, 11, b"", next_header=59),
            "esp_fragment": Ether(src=GW_MAC, dst=PORT_MAC) / IP(src=t.customer, dst=ANYCAST, proto=50, flags="MF") / Raw(bytes(good[ESP])),
            "esp_selector_mismatch": TS_TUNNEL.esp_in(IP(src="10.98.0.1", dst=CLIENT) / UDP()),
            "nat_keepalive": Ether(src=GW_MAC, dst=PORT_MAC) / IP(src=UDP_TUNNEL.customer, dst=ANYCAST) / UDP(sport=4501, dport=4500) / Raw(b"\xff"),
            "esp_no_sa": Ether(src=GW_MAC, dst=PORT_MAC) / IP(src=CLIENT, dst=TS_TUNNEL.inner) / UDP(),
        }
        out, c = run(list(cases.values()))
        self.assertEqual(out, [], [p.summary() for p in out])
        for reason in cases:
            self.assertEqual(c["drops"][reason], 1, reason)
        self.assertEqual(sum(c["drops"].values()), len(cases), {k: v for k, v in c["drops"].items() if v})

    def test_replays_pass_unless_the_tunnel_protects(self):
        frames = []
        for t in (TUNNELS[0], REPLAY_TUNNEL):
            first = t.esp_in(IP(src=t.inner, dst=CLIENT) / UDP() / Raw(b"r"), seq=5)
            older = t.esp_in(IP(src=t.inner, dst=CLIENT) / UDP() / Raw(b"o"), seq=4)
            frames += [first, first, older, first]
        out, c = run(frames)
        # Without protection all four pass; with it, the two copies of seq 5 are dropped and the
        # late seq 4 passes.
        self.assertEqual(len(out), 4 + 2)
        self.assertEqual(c["drops"]["esp_replayed"], 2)
        self.assertEqual(c["tunnels"][REPLAY_TUNNEL.name]["ingress_packets"], 2)
        self.assertEqual(sa_counters(c, REPLAY_TUNNEL, "inbound")["drops"], 2)

    def test_ike_is_punted_to_the_slow_path(self):
        ike = Raw(b"\x11" * 8 + b"\0" * 20)
        frames = [
            Ether(src=GW_MAC, dst=PORT_MAC) / IP(src="198.51.100.99", dst=ANYCAST) / UDP(sport=500, dport=500) / ike,
            Ether(src=GW_MAC, dst=PORT_MAC) / IP(src="198.51.100.99", dst=ANYCAST) / UDP(sport=4500, dport=4500) / Raw(b"\0\0\0\0") / ike,
        ]
        out, c = run(frames)
        self.assertEqual(out, [])
        self.assertEqual(c["punts"]["ike"], 2)
        self.assertEqual(c["slow_path"]["ike"], 2)


class Configuration(unittest.TestCase):
    def check(self, text):
        with tempfile.TemporaryDirectory() as d:
            cfg = os.path.join(d, "c.toml")
            with open(cfg, "w") as f:
                f.write(text)
            return subprocess.run([ANYGATE, "check", "--config", cfg], capture_output=True, text=True)

    def test_keys_are_redacted_and_esn_null_refused(self):
        res = self.check(CONFIG + '\n[[ipsec_tunnels]]\nname = "p"\nanycast_endpoint = "192.0.2.100"\npsk = "a-secret-psk-value"\n')
        self.assertEqual(res.returncode, 0, res.stderr)
        for t in ALL:
            for ck, ak in t.keys.values():
                for k in (ck, ak):
                    if k:
                        self.assertNotIn(k.hex(), res.stdout)
        self.assertNotIn("a-secret-psk-value", res.stdout)
        self.assertIn("<redacted>", res.stdout)
        res = self.check(CONFIG.replace('transform = "aes128gcm16"', 'transform = "aes128gcm16"\nesn = true', 1))
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("static_sas[0].esn", res.stderr)
        res = self.check(CONFIG.replace("allow_null_cipher = true", "allow_null_cipher = false", 1))
        self.assertIn("allow_null_cipher", res.stderr)
        self.assertNotIn(TUNNELS[0].keys["in"][0].hex(), res.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
