#!/usr/bin/python3
"""TCP echo for the demo and its test: a server that sends back what it reads, and a client that
sends random bytes, reads them back and checks they came back whole and unchanged.

usage: tcp_echo.py serve ADDRESS PORT          (runs until killed; one thread per connection)
       tcp_echo.py send  ADDRESS PORT BYTES    (exits 0 when the echo matched)
"""

import hashlib
import os
import socket
import sys
import threading


def family(address):
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def echo(conn):
    with conn:
        while True:
            data = conn.recv(65536)
            if not data:
                return
            conn.sendall(data)


def serve(address, port):
    srv = socket.socket(family(address), socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family(address) == socket.AF_INET6:
        # An IPv4 server runs beside this one on the same port.
        srv.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    srv.bind((address, port))
    srv.listen(16)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=echo, args=(conn,), daemon=True).start()


def send(address, port, size):
    payload = os.urandom(size)
    with socket.create_connection((address, port), timeout=10) as conn:
        conn.settimeout(20)
        mss = conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)

        def writer():
            conn.sendall(payload)
            conn.shutdown(socket.SHUT_WR)

        t = threading.Thread(target=writer, daemon=True)
        t.start()
        received = bytearray()
        while True:
            data = conn.recv(65536)
            if not data:
                break
            received += data
        t.join()
    ok = hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()
    print(f"tcp {address} port {port}: sent {size} bytes, echoed {len(received)}, "
          f"{'intact' if ok else 'CORRUPT'}, mss {mss}")
    return ok


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) == 5 and sys.argv[1] == "send":
        try:
            ok = send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        except OSError as e:
            print(f"tcp {sys.argv[2]} port {sys.argv[3]}: {e}")
            ok = False
        sys.exit(0 if ok else 1)
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
