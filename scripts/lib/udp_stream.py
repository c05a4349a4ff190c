#!/usr/bin/python3
"""A stream of numbered UDP datagrams, counted at both ends.

  udp_stream.py send HOST PORT COUNT RATE [SOURCE]   send COUNT datagrams at RATE a second, each
                                                     carrying its number; print how many went out
  udp_stream.py recv PORT SECONDS                    receive for at most SECONDS (or until the
                                                     last number and a quiet second); print a JSON
                                                     line: received, distinct, missing (the first
                                                     few), duplicates, out of order

The receiver knows the count from each datagram, so it tells which numbers never came.
"""
import errno
import json
import socket
import struct
import sys
import time

HEADER = struct.Struct("!II")  # number, count
PAYLOAD = 64


def send(host, port, count, rate, source=None):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if source:
        sock.bind((source, 0))
    interval = 1.0 / rate
    unreachable, longest = 0, 0.0
    start = time.monotonic()
    for number in range(count):
        # Paced against the start, so that a slow send does not stretch the stream.
        delay = start + number * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        datagram = HEADER.pack(number, count).ljust(PAYLOAD, b"\0")
        # A router may drop its route into the tunnel for a moment while it swaps Child SAs
        # (strongSwan's kernel-libipsec does): the datagram waits for it, for up to 5 s.
        refused = time.monotonic()
        while True:
            try:
                sock.sendto(datagram, (host, port))
                break
            except OSError as e:
                if e.errno != errno.ENETUNREACH or time.monotonic() - refused > 5.0:
                    raise
                unreachable += 1
                longest = max(longest, time.monotonic() - refused)
                time.sleep(0.001)
    waited = f", {unreachable} sends refused for want of a route (the longest wait {longest * 1000:.0f} ms)"
    print(f"sent {count}{waited if unreachable else ''}")


def recv(port, seconds):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", port))
    deadline = time.monotonic() + seconds
    seen, received, duplicates, out_of_order, last, count = set(), 0, 0, 0, -1, None
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, min(1.0, deadline - time.monotonic())))
        try:
            data = sock.recv(2048)
        except socket.timeout:
            if count is not None and last == count - 1:
                break
            continue
        if len(data) < HEADER.size:
            continue
        number, count = HEADER.unpack_from(data)
        received += 1
        if number in seen:
            duplicates += 1
        elif number < last:
            out_of_order += 1
        seen.add(number)
        last = max(last, number)
    missing = sorted(set(range(count or 0)) - seen)
    print(json.dumps({
        "count": count, "received": received, "distinct": len(seen), "missing": len(missing),
        "first_missing": missing[:10], "duplicates": duplicates, "out_of_order": out_of_order,
    }))


if __name__ == "__main__":
    if sys.argv[1:2] == ["send"] and len(sys.argv) in (6, 7):
        send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), *sys.argv[6:])
    elif sys.argv[1:2] == ["recv"] and len(sys.argv) == 4:
        recv(int(sys.argv[2]), float(sys.argv[3]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
