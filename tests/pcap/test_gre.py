#!/usr/bin/python3
"""GRE through the real DPDK pipeline: captures built with scapy (an implementation independent of
ours) go through `anygate pcap` (net_pcap in and out), and what comes out is decoded with scapy and
checked field by field, with the counters the processor prints."""

import json
import os
import subprocess
import tempfile
import unittest

from scapy.all import (ARP, GRE, ICMP, IP, TCP, UDP, Ether, ICMPv6EchoReply, ICMPv6EchoRequest,
                       ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6NDOptDstLLAddr, ICMPv6NDOptSrcLLAddr,
                       ICMPv6PacketTooBig, IPv6, Raw, defragment, in6_getnsma, in6_getnsmac,
                       inet_pton, rdpcap, socket, wrpcap)

ANYGATE = os.environ.get("ANYGATE", os.path.join(os.path.dirname(__file__), "../../target/debug/anygate"))
PORT_MAC = "02:00:00:00:01:01"
GW_MAC = "02:00:00:00:00:fe"
ANYCAST = "192.0.2.100"
CUSTOMER = "198.51.100.10"
PORT_IP = "192.0.2.1"
CLIENT = "203.0.113.5"

CONFIG = """
[dataplane]
cores = [1]

[[ports]]
name = "wan"
device = "replaced-by-pcap"
mac = "02:00:00:00:01:01"
address = "192.0.2.1/24"
gateway = "192.0.2.254"
{gateway_mac}
address6 = "2001:db8::1/64"
gateway6 = "2001:db8::fe"
gateway6_mac = "02:00:00:00:00:fe"

[[gre_tunnels]]
name = "site1"
customer_gre_endpoint = "198.51.100.10"
cloudflare_gre_endpoint = "192.0.2.100"
interface_address = "10.212.0.0/31"

[[routes]]
prefix = "10.20.0.0/16"
nexthop = "site1"

[[routes]]
prefix = "2001:db8:20::/48"
nexthop = "site1"
"""


def run(frames, gateway_mac=True):
    """Feed frames through anygate; return (frames out, counters)."""
    with tempfile.TemporaryDirectory() as d:
        cfg = os.path.join(d, "c.toml")
        with open(cfg, "w") as f:
            f.write(CONFIG.format(gateway_mac='gateway_mac = "02:00:00:00:00:fe"' if gateway_mac else ""))
        inp, out = os.path.join(d, "in.pcap"), os.path.join(d, "out.pcap")
        wrpcap(inp, frames)
        res = subprocess.run([ANYGATE, "pcap", "--config", cfg, "--in", inp, "--out", out],
                             capture_output=True, text=True, timeout=120)
        if res.returncode != 0:
            raise AssertionError(f"anygate failed: {res.stderr}")
        counters = json.loads(res.stdout)
        return list(rdpcap(out)) if os.path.getsize(out) > 24 else [], counters


def from_gw(payload):
    return Ether(src=GW_MAC, dst=PORT_MAC) / payload


def gre_in(inner, **gre):
    return from_gw(IP(src=CUSTOMER, dst=ANYCAST) / GRE(**gre) / inner)


def checksum_ok(pkt, layer):
    """Whether scapy computes the same checksum as the one in the packet."""
    got = pkt[layer].chksum
    clone = pkt[layer].copy()
    del clone.chksum
    if layer in (TCP, UDP, ICMP) and IP in pkt:
        clone = pkt[IP].copy()
        del clone[layer].chksum
        return IP(bytes(clone))[layer].chksum == got
    return layer(bytes(clone)).chksum == got


NEW_GW_MAC = "02:00:00:00:00:fd"
BURST = 32


def kept_train_across_a_gateway_move(frame):
    """Bursts of 32 (net_pcap reads that many a poll, and the slow path runs between polls): the
    gateway's ARP reply and frames for another MAC (dropped) while the worker learns it, bursts
    of `frame(i)` (a train's packets, leaving by the gateway), the gateway's reply from its new
    MAC, more bursts. Checks that the first packets leave by the old MAC, that none goes back to
    it once one went to the new MAC, and that the last two bursts (the worker had the new MAC
    before them) go to the new one. Gives (the train's frames out, counters)."""
    def reply(mac):
        return Ether(src=mac, dst=PORT_MAC) / ARP(op=2, hwsrc=mac, psrc="192.0.2.254", hwdst=PORT_MAC, pdst=PORT_IP)
    stray = Ether(src=GW_MAC, dst="02:00:00:00:09:09") / IP(src=CLIENT, dst="10.20.0.7") / UDP()
    frames = [reply(GW_MAC)] + [stray] * (2 * BURST - 1)
    frames += [frame(i) for i in range(2 * BURST)]
    frames += [reply(NEW_GW_MAC)] + [frame(i) for i in range(2 * BURST, 6 * BURST - 1)]
    out, c = run(frames, gateway_mac=False)
    sent = [p for p in out if ARP not in p]
    tc = unittest.TestCase()
    tc.assertEqual(len(sent), 6 * BURST - 1)
    macs = [p[Ether].dst for p in sent]
    tc.assertEqual(macs[0], GW_MAC)
    moved = macs.index(NEW_GW_MAC)
    tc.assertGreaterEqual(moved, 2 * BURST)
    tc.assertEqual(macs[moved:], [NEW_GW_MAC] * (len(macs) - moved))
    tc.assertLessEqual(moved, len(macs) - 2 * BURST)
    tc.assertEqual(c["drops"]["not_our_mac"], 2 * BURST - 1)
    return sent, c


class Decapsulation(unittest.TestCase):
    def test_inner_ipv4_is_routed_out_with_ttl_decremented(self):
        inner = IP(src="10.20.0.7", dst=CLIENT, ttl=50, id=77) / UDP(sport=1000, dport=2000) / Raw(b"a" * 40)
        out, c = run([gre_in(inner)] * 3)
        self.assertEqual(len(out), 3)
        for p in out:
            self.assertEqual((p[Ether].dst, p[Ether].src, p[Ether].type), (GW_MAC, PORT_MAC, 0x0800))
            self.assertNotIn(GRE, p)
            self.assertEqual((p[IP].src, p[IP].dst, p[IP].ttl, p[IP].id), ("10.20.0.7", CLIENT, 49, 77))
            self.assertTrue(checksum_ok(p, IP))
            self.assertEqual(bytes(p[IP].payload), bytes(inner[IP].payload))
        t = c["tunnels"]["site1"]
        self.assertEqual(t["ingress_packets"], 3)
        self.assertEqual(t["ingress_bytes"], 3 * len(inner))

    def test_a_train_of_one_tunnels_packets_is_decapsulated_alike(self):
        # From a tunnel's second packet in a burst on, the worker takes its packets in a train:
        # a TCP SYN in it is clamped, and a packet that is not the train's (TTL 1: time
        # exceeded, sent back into the tunnel) leaves it to the express lane and the full
        # pipeline, in order. So does a frame with bytes after its packet (a trailer), which is
        # forwarded without them and counted received with them.
        udp = [IP(src="10.20.0.7", dst=CLIENT, ttl=50, id=i) / UDP(sport=1000 + i, dport=2000) / Raw(b"t" * (i + 1))
               for i in range(6)]
        syn = IP(src="10.20.0.7", dst=CLIENT, ttl=50, id=99) / TCP(sport=1, dport=2, flags="S", options=[("MSS", 1460)])
        expired = IP(src="10.20.0.7", dst=CLIENT, ttl=1, id=98) / UDP(sport=7, dport=7)
        inners = udp[:3] + [syn] + udp[3:5] + [expired] + udp[5:]
        frames = [gre_in(i) for i in inners]
        frames[1] = Ether(bytes(frames[1]) + b"\x00" * 6)
        self.assertEqual(len(frames[1]), len(gre_in(inners[1])) + 6)
        out, c = run(frames)
        forwarded = [p for p in out if GRE not in p]
        errors = [p for p in out if GRE in p]
        sent = [i for i in inners if i.ttl > 1]
        self.assertEqual(len(forwarded), len(sent))
        for p, i in zip(forwarded, sent):
            self.assertEqual((p[Ether].dst, p[Ether].src), (GW_MAC, PORT_MAC))
            self.assertEqual((p[IP].src, p[IP].dst, p[IP].ttl, p[IP].id, p[IP].len), ("10.20.0.7", CLIENT, 49, i.id, len(i)))
            self.assertTrue(checksum_ok(p, IP))
            if TCP in i:
                self.assertEqual(dict(p[TCP].options)["MSS"], 1436)
                self.assertTrue(checksum_ok(p, TCP))
            else:
                self.assertEqual(bytes(p[IP].payload), bytes(i[IP].payload))
        self.assertEqual(len(errors), 1)
        self.assertEqual((errors[0][GRE][IP].dst, errors[0][GRE][ICMP].type), ("10.20.0.7", 11))
        # Every packet came out of the tunnel, the expired one too.
        t = c["tunnels"]["site1"]
        self.assertEqual(t["ingress_packets"], len(inners))
        self.assertEqual(t["ingress_bytes"], sum(len(i) for i in inners))
        # The train counts the bytes it received and sent once, at its end.
        self.assertEqual(c["rx_bytes"], sum(len(f) for f in frames))
        self.assertEqual((c["tx_packets"], c["tx_bytes"]), (len(out), sum(len(p) for p in out)))

    def test_a_kept_train_leaves_by_the_gateways_new_mac(self):
        # A worker keeps the train a burst boarded for the bursts after it, until its neighbors
        # (or tables) change. The gateway is learned by ARP, then answers again from another MAC:
        # once the worker has it, the tunnel's packets go to the new MAC, the kept train's too.
        out, c = kept_train_across_a_gateway_move(
            lambda i: gre_in(IP(src="10.20.0.7", dst=CLIENT, ttl=50, id=i) / UDP(sport=1000, dport=2000)))
        self.assertEqual(c["tunnels"]["site1"]["ingress_packets"], len(out))
        self.assertEqual([p[IP].id for p in out if GRE not in p], list(range(len(out))))

    def test_inner_ipv6(self):
        inner = IPv6(src="2001:db8:20::7", dst="2001:db9::5", hlim=9) / UDP(sport=1, dport=2) / Raw(b"v6")
        out, _ = run([gre_in(inner, proto=0x86DD)])
        self.assertEqual(len(out), 1)
        p = out[0]
        self.assertEqual(p[Ether].type, 0x86DD)
        self.assertEqual((p[IPv6].src, p[IPv6].dst, p[IPv6].hlim), ("2001:db8:20::7", "2001:db9::5", 8))
        self.assertEqual(bytes(p[IPv6].payload), bytes(inner[IPv6].payload))

    def test_gre_checksum_and_sequence_are_accepted(self):
        inner = IP(src="10.20.0.7", dst=CLIENT) / UDP() / Raw(b"c" * 10)
        with_csum = from_gw(IP(src=CUSTOMER, dst=ANYCAST) / GRE(chksum_present=1, seqnum_present=1, sequence_number=5) / inner)
        out, c = run([with_csum])
        self.assertEqual(len(out), 1)
        self.assertEqual(out[0][IP].dst, CLIENT)


class Encapsulation(unittest.TestCase):
    def test_customer_prefix_goes_into_the_tunnel(self):
        inner = IP(src=CLIENT, dst="10.20.1.2", ttl=64, flags="DF") / UDP(sport=5, dport=6) / Raw(b"b" * 100)
        out, c = run([from_gw(inner)] * 2)
        self.assertEqual(len(out), 2)
        for p in out:
            self.assertEqual((p[Ether].dst, p[Ether].src), (GW_MAC, PORT_MAC))
            o = p[IP]
            self.assertEqual((o.src, o.dst, o.proto, o.ttl, o.ihl), (ANYCAST, CUSTOMER, 47, 64, 5))
            self.assertEqual(o.len, 20 + 4 + len(inner))
            self.assertTrue(o.flags.DF)
            self.assertTrue(checksum_ok(p, IP))
            self.assertEqual((p[GRE].chksum_present, p[GRE].key_present, p[GRE].seqnum_present, p[GRE].proto),
                             (0, 0, 0, 0x0800))
            i = p[GRE].payload
            self.assertEqual((i.src, i.dst, i.ttl), (CLIENT, "10.20.1.2", 63))
            self.assertEqual(bytes(i.payload), bytes(inner.payload))
            self.assertEqual(IP(bytes(i)).chksum, i.chksum)
        self.assertEqual(c["tunnels"]["site1"]["egress_packets"], 2)
        self.assertEqual(c["tunnels"]["site1"]["egress_bytes"], 2 * len(inner))

    def test_a_kept_train_into_a_tunnel_leaves_by_the_gateways_new_mac(self):
        # As for decapsulation: the customer endpoint is reached by the gateway.
        out, c = kept_train_across_a_gateway_move(
            lambda i: from_gw(IP(src=CLIENT, dst="10.20.1.2", ttl=64, id=i) / UDP(sport=5, dport=6)))
        self.assertEqual(c["tunnels"]["site1"]["egress_packets"], len(out))
        self.assertEqual({p[IP].dst for p in out}, {CUSTOMER})
        # In order, each with an outer identification of its own.
        self.assertEqual([p[GRE][IP].id for p in out], list(range(len(out))))
        self.assertEqual(len({p[IP].id for p in out}), len(out))

    def test_a_train_into_one_prefixs_tunnel_is_encapsulated_alike(self):
        # From a prefix's second packet in a burst on, the worker takes its packets in a train:
        # a TCP SYN in it is clamped, and a packet too big for the tunnel (DF: fragmentation
        # needed, back to the sender) leaves it to the full pipeline, in order.
        udp = [IP(src=CLIENT, dst=f"10.20.1.{i}", ttl=64, id=i, flags="DF") / UDP(sport=5, dport=6) / Raw(b"e" * (i + 1))
               for i in range(6)]
        syn = IP(src=CLIENT, dst="10.20.1.9", ttl=64, id=99) / TCP(sport=1, dport=2, flags="S", options=[("MSS", 1460)])
        too_big = IP(src=CLIENT, dst="10.20.1.8", ttl=64, id=98, flags="DF") / UDP(sport=7, dport=7) / Raw(b"x" * 1460)
        inners = udp[:3] + [syn] + udp[3:5] + [too_big] + udp[5:]
        frames = [from_gw(i) for i in inners]
        # Two frames padded to Ethernet's least size, as a router pads them: sent without the
        # padding, counted received with it.
        for k in (1, 2):
            frames[k] = Ether(bytes(frames[k]) + b"\x00" * (60 - len(frames[k])))
        self.assertEqual((len(frames[1]), len(frames[2])), (60, 60))
        out, c = run(frames)
        into_tunnel = [p for p in out if GRE in p]
        errors = [p for p in out if GRE not in p]
        sent = [i for i in inners if i is not too_big]
        self.assertEqual(len(into_tunnel), len(sent))
        ids = set()
        for p, i in zip(into_tunnel, sent):
            self.assertEqual((p[Ether].dst, p[Ether].src), (GW_MAC, PORT_MAC))
            o = p[IP]
            self.assertEqual((o.src, o.dst, o.proto, o.ttl, o.len), (ANYCAST, CUSTOMER, 47, 64, 24 + len(i)))
            self.assertTrue(checksum_ok(p, IP))
            ids.add(o.id)
            g = p[GRE].payload
            self.assertEqual((g.src, g.dst, g.ttl, g.id), (CLIENT, i.dst, 63, i.id))
            self.assertEqual(IP(bytes(g)).chksum, g.chksum)
            if TCP in i:
                self.assertEqual(dict(p[GRE][TCP].options)["MSS"], 1436)
            else:
                self.assertEqual(bytes(g.payload), bytes(i.payload))
        self.assertEqual(len(ids), len(sent), "each outer header its own identification")
        self.assertEqual(len(errors), 1)
        self.assertEqual((errors[0][IP].dst, errors[0][ICMP].type, errors[0][ICMP].code), (CLIENT, 3, 4))
        t = c["tunnels"]["site1"]
        self.assertEqual(t["egress_packets"], len(sent))
        self.assertEqual(t["egress_bytes"], sum(len(i) for i in sent))
        self.assertEqual(c["rx_bytes"], sum(len(f) for f in frames))
        self.assertEqual((c["tx_packets"], c["tx_bytes"]), (len(out), sum(len(p) for p in out)))

    def test_ipv6_customer_prefix(self):
        inner = IPv6(src="2001:db9::5", dst="2001:db8:20::9", hlim=64) / UDP() / Raw(b"x" * 30)
        out, _ = run([from_gw(inner)])
        self.assertEqual(len(out), 1)
        self.assertEqual(out[0][GRE].proto, 0x86DD)
        self.assertEqual(out[0][GRE][IPv6].hlim, 63)
        self.assertEqual(bytes(out[0][GRE][IPv6].payload), bytes(inner[IPv6].payload))

    def test_no_route_is_dropped_and_counted(self):
        out, c = run([from_gw(IP(src=CLIENT, dst="10.99.0.1") / UDP())])
        self.assertEqual(out, [])
        self.assertEqual(c["drops"]["no_route"], 1)


class MssClamping(unittest.TestCase):
    def test_syn_and_syn_ack_are_clamped_both_ways(self):
        syn_in = from_gw(IP(src=CLIENT, dst="10.20.1.2") / TCP(sport=40000, dport=80, flags="S",
                                                                options=[("MSS", 1460), ("SAckOK", b"")]))
        syn_ack_out = gre_in(IP(src="10.20.1.2", dst=CLIENT) / TCP(sport=80, dport=40000, flags="SA",
                                                                options=[("MSS", 1460)]))
        small = from_gw(IP(src=CLIENT, dst="10.20.1.2") / TCP(flags="S", options=[("MSS", 1200)]))
        out, _ = run([syn_in, syn_ack_out, small])
        self.assertEqual(len(out), 3)
        into_tunnel = out[0][GRE][TCP]
        self.assertEqual(dict(into_tunnel.options)["MSS"], 1436)
        inner = out[0][GRE][IP]
        self.assertEqual(IP(bytes(inner))[TCP].chksum, into_tunnel.chksum)
        clone = IP(bytes(inner))
        del clone[TCP].chksum
        self.assertEqual(IP(bytes(clone))[TCP].chksum, into_tunnel.chksum, "TCP checksum updated")
        from_tunnel = out[1]
        self.assertEqual(dict(from_tunnel[TCP].options)["MSS"], 1436)
        self.assertTrue(checksum_ok(from_tunnel, TCP))
        self.assertEqual(dict(out[2][GRE][TCP].options)["MSS"], 1200, "a smaller MSS is left alone")


class Mtu(unittest.TestCase):
    def test_df_set_gets_fragmentation_needed(self):
        big = IP(src=CLIENT, dst="10.20.1.2", flags="DF") / UDP() / Raw(b"z" * 1472)
        out, c = run([from_gw(big)])
        self.assertEqual(len(out), 1)
        p = out[0]
        self.assertEqual((p[IP].src, p[IP].dst, p[IP].proto), (ANYCAST, CLIENT, 1))
        self.assertEqual((p[ICMP].type, p[ICMP].code, p[ICMP].nexthopmtu), (3, 4, 1476))
        self.assertTrue(checksum_ok(p, ICMP))
        quoted = p[ICMP].payload
        self.assertEqual((quoted.src, quoted.dst), (CLIENT, "10.20.1.2"))
        self.assertEqual(c["drops"]["too_big"], 1)
        self.assertEqual(c["icmp_errors"], 1)

    def test_df_clear_is_fragmented_inside_the_tunnel(self):
        big = IP(src=CLIENT, dst="10.20.1.2", id=4242) / UDP(sport=9, dport=9) / Raw(bytes(range(256)) * 6)
        out, c = run([from_gw(big)])
        self.assertEqual(len(out), 2)
        frags = []
        for p in out:
            self.assertLessEqual(len(p[IP]), 1500)
            self.assertEqual((p[IP].src, p[IP].dst), (ANYCAST, CUSTOMER))
            frags.append(p[GRE][IP])
            self.assertLessEqual(len(frags[-1]), 1476)
        whole = defragment([IP(bytes(f)) for f in frags])
        self.assertEqual(len(whole), 1)
        self.assertEqual(bytes(whole[0][IP].payload), bytes(big[IP].payload))
        self.assertEqual(c["fragments"], 2)

    def test_ipv6_too_big_gets_packet_too_big(self):
        big = IPv6(src="2001:db9::5", dst="2001:db8:20::9") / UDP() / Raw(b"q" * 1500)
        out, c = run([from_gw(big)])
        self.assertEqual(len(out), 1)
        p = out[0]
        self.assertIn(ICMPv6PacketTooBig, p)
        self.assertEqual(p[ICMPv6PacketTooBig].mtu, 1476)
        self.assertEqual((p[IPv6].src, p[IPv6].dst), ("2001:db8::1", "2001:db9::5"))
        self.assertEqual(c["drops"]["too_big"], 1)

    def test_ttl_expiring_gets_time_exceeded(self):
        out, c = run([from_gw(IP(src=CLIENT, dst="10.20.1.2", ttl=1) / UDP())])
        self.assertEqual(len(out), 1)
        self.assertEqual((out[0][ICMP].type, out[0][ICMP].code), (11, 0))
        self.assertEqual(c["drops"]["ttl_exceeded"], 1)


class HostAddresses(unittest.TestCase):
    def test_arp_for_our_addresses_is_answered(self):
        ask = lambda ip: Ether(src=GW_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=GW_MAC, psrc="192.0.2.254", pdst=ip)
        out, c = run([ask(ANYCAST), ask(PORT_IP), ask("192.0.2.77")])
        self.assertEqual(len(out), 2)
        for p, ip in zip(out, [ANYCAST, PORT_IP]):
            self.assertEqual((p[Ether].dst, p[Ether].src), (GW_MAC, PORT_MAC))
            self.assertEqual((p[ARP].op, p[ARP].hwsrc, p[ARP].psrc, p[ARP].hwdst, p[ARP].pdst),
                             (2, PORT_MAC, ip, GW_MAC, "192.0.2.254"))
        self.assertEqual(c["drops"]["arp_not_for_us"], 1)

    def test_next_hop_is_resolved_by_arp(self):
        packet = from_gw(IP(src=CLIENT, dst="10.20.1.2") / UDP())
        reply = Ether(src=GW_MAC, dst=PORT_MAC) / ARP(op=2, hwsrc=GW_MAC, psrc="192.0.2.254", hwdst=PORT_MAC, pdst=PORT_IP)
        out, c = run([packet, reply], gateway_mac=False)
        requests = [p for p in out if ARP in p]
        self.assertGreaterEqual(len(requests), 1)
        r = requests[0]
        self.assertEqual((r[Ether].dst, r[ARP].op, r[ARP].psrc, r[ARP].pdst, r[ARP].hwsrc),
                         ("ff:ff:ff:ff:ff:ff", 1, PORT_IP, "192.0.2.254", PORT_MAC))
        sent = [p for p in out if GRE in p]
        self.assertEqual(len(sent), 1, "the held packet goes once the gateway answers")
        self.assertEqual(sent[0][Ether].dst, GW_MAC)
        self.assertEqual(c["punts"]["resolve"], 1)
        self.assertEqual(c["slow_path"]["neighbors_learned"], 1)

    def test_echo_to_the_anycast_endpoint_is_answered(self):
        out, _ = run([from_gw(IP(src=CLIENT, dst=ANYCAST) / ICMP(id=7, seq=3) / Raw(b"ping"))])
        self.assertEqual(len(out), 1)
        p = out[0]
        self.assertEqual((p[IP].src, p[IP].dst, p[ICMP].type, p[ICMP].id, p[ICMP].seq), (ANYCAST, CLIENT, 0, 7, 3))
        self.assertTrue(checksum_ok(p, ICMP))
        self.assertEqual(bytes(p[ICMP].payload), b"ping")

    def test_echo_to_our_tunnel_end_goes_back_through_the_tunnel(self):
        out, _ = run([gre_in(IP(src="10.212.0.1", dst="10.212.0.0") / ICMP(id=1, seq=1))])
        self.assertEqual(len(out), 1)
        p = out[0]
        self.assertEqual((p[IP].src, p[IP].dst), (ANYCAST, CUSTOMER))
        inner = p[GRE][IP]
        self.assertEqual((inner.src, inner.dst, inner[ICMP].type), ("10.212.0.0", "10.212.0.1", 0))

    def test_neighbor_solicitation_for_our_address_is_advertised(self):
        ns = (Ether(src=GW_MAC, dst="33:33:ff:00:00:01") /
              IPv6(src="2001:db8::fe", dst="ff02::1:ff00:1", hlim=255) /
              ICMPv6ND_NS(tgt="2001:db8::1") / ICMPv6NDOptSrcLLAddr(lladdr=GW_MAC))
        out, _ = run([ns])
        self.assertEqual(len(out), 1)
        p = out[0]
        self.assertEqual((p[Ether].src, p[Ether].dst), (PORT_MAC, GW_MAC))
        self.assertEqual((p[IPv6].src, p[IPv6].dst, p[IPv6].hlim), ("2001:db8::1", "2001:db8::fe", 255))
        na = p[ICMPv6ND_NA]
        self.assertEqual((na.tgt, na.S, na.R), ("2001:db8::1", 1, 0))
        self.assertEqual(p[ICMPv6NDOptDstLLAddr].lladdr, PORT_MAC)
        fresh = p[IPv6].copy()
        del fresh[ICMPv6ND_NA].cksum
        self.assertEqual(IPv6(bytes(fresh))[ICMPv6ND_NA].cksum, na.cksum, "ICMPv6 checksum")

    def test_ipv6_next_hop_is_resolved_by_neighbor_discovery(self):
        # Decapsulated IPv6 for a host on the port's own subnet: its MAC is asked for first.
        packet = gre_in(IPv6(src="2001:db8:20::1", dst="2001:db8::77") / UDP(dport=53), proto=0x86DD)
        host_mac = "02:00:00:00:00:77"
        na = (Ether(src=host_mac, dst=PORT_MAC) / IPv6(src="2001:db8::77", dst="2001:db8::1", hlim=255) /
              ICMPv6ND_NA(tgt="2001:db8::77", S=1, R=0, O=1) / ICMPv6NDOptDstLLAddr(lladdr=host_mac))
        out, c = run([packet, na])
        solicitations = [p for p in out if ICMPv6ND_NS in p]
        self.assertGreaterEqual(len(solicitations), 1)
        ns = solicitations[0]
        group = socket.inet_ntop(socket.AF_INET6, in6_getnsma(inet_pton(socket.AF_INET6, "2001:db8::77")))
        self.assertEqual((ns[Ether].dst, ns[IPv6].dst, ns[IPv6].hlim, ns[ICMPv6ND_NS].tgt),
                         (in6_getnsmac(inet_pton(socket.AF_INET6, group)), group, 255, "2001:db8::77"))
        self.assertEqual(ns[ICMPv6NDOptSrcLLAddr].lladdr, PORT_MAC)
        sent = [p for p in out if UDP in p and IPv6 in p and p[IPv6].dst == "2001:db8::77"]
        self.assertEqual(len(sent), 1, "the held packet goes once the host answers")
        self.assertEqual((sent[0][Ether].dst, sent[0][IPv6].hlim), (host_mac, 63))
        self.assertEqual(c["punts"]["resolve"], 1)
        self.assertEqual(c["slow_path"]["neighbors_learned"], 1)

    def test_ipv6_echo_is_answered(self):
        out, _ = run([from_gw(IPv6(src="2001:db9::5", dst="2001:db8::1") / ICMPv6EchoRequest(id=2, seq=4))])
        self.assertEqual(len(out), 1)
        self.assertIn(ICMPv6EchoReply, out[0])
        self.assertEqual(out[0][IPv6].dst, "2001:db9::5")


class DropReasons(unittest.TestCase):
    def test_every_bad_input_is_dropped_under_its_reason(self):
        inner = IP(src="10.20.0.7", dst=CLIENT) / UDP()
        cases = {
            "gre_unknown_tunnel": from_gw(IP(src="198.51.100.99", dst=ANYCAST) / GRE() / inner),
            "gre_bad_version": from_gw(IP(src=CUSTOMER, dst=ANYCAST) / GRE(version=1) / inner),
            "gre_bad_checksum": from_gw(IP(src=CUSTOMER, dst=ANYCAST) / GRE(chksum_present=1, chksum=0x1234) / inner),
            "gre_truncated": from_gw(IP(src=CUSTOMER, dst=ANYCAST, proto=47) / Raw(b"\x80\x00\x08")),
            "gre_key_mismatch": from_gw(IP(src=CUSTOMER, dst=ANYCAST) / GRE(key_present=1, key=9) / inner),
            "gre_unsupported_protocol": from_gw(IP(src=CUSTOMER, dst=ANYCAST) / GRE(proto=0x6558) / Raw(b"\0" * 20)),
            "gre_fragment": from_gw(IP(src=CUSTOMER, dst=ANYCAST, flags="MF") / GRE() / inner),
            "inner_malformed": from_gw(IP(src=CUSTOMER, dst=ANYCAST) / GRE(proto=0x0800) / Raw(b"\x45\x00")),
            "ipv4_bad_checksum": from_gw(IP(src=CLIENT, dst="10.20.1.1", chksum=0x1111) / UDP()),
            "ipv4_malformed": Ether(src=GW_MAC, dst=PORT_MAC, type=0x0800) / Raw(b"\x45\x00\x00"),
            "ipv6_malformed": Ether(src=GW_MAC, dst=PORT_MAC, type=0x86DD) / Raw(b"\x60\x00"),
            "not_our_mac": Ether(src=GW_MAC, dst="02:00:00:00:09:09") / IP(src=CLIENT, dst="10.20.1.1") / UDP(),
            "unsupported_ethertype": Ether(src=GW_MAC, dst=PORT_MAC, type=0x88CC) / Raw(b"\0" * 46),
            "martian": from_gw(IP(src=CLIENT, dst="224.0.0.9") / UDP()),
            "vlan_mismatch": Ether(src=GW_MAC, dst=PORT_MAC, type=0x8100) / Raw(b"\x00\x05\x08\x00" + bytes(inner)),
        }
        out, c = run(list(cases.values()))
        self.assertEqual(out, [], [p.summary() for p in out])
        for reason in cases:
            self.assertEqual(c["drops"][reason], 1, reason)
        self.assertEqual(sum(c["drops"].values()), len(cases))
        self.assertEqual(c["tunnels"]["site1"]["drops"], 5)


if __name__ == "__main__":
    unittest.main(verbosity=2)
