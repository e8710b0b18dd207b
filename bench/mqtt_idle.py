"""Opens N idle MQTT 3.1.1 connections to 127.0.0.1:<port> (CONNECT, wait for CONNACK,
then nothing but the socket) and prints the server's RSS growth per connection in KiB.

Usage: python3 mqtt_idle.py <port> <connections> <server pid>
"""

import socket
import struct
import sys
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def connect_packet(client_id, keepalive=600):
    cid = client_id.encode()
    var = struct.pack("!H", 4) + b"MQTT" + bytes([4, 0x02]) + struct.pack("!H", keepalive)
    body = var + struct.pack("!H", len(cid)) + cid
    return bytes([0x10, len(body)]) + body


def main():
    port, n, pid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    time.sleep(0.5)
    before = rss_kib(pid)
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(connect_packet(f"idle-{i}"))
        socks.append(s)
    for s in socks:
        s.settimeout(10)
        ack = s.recv(4)
        if len(ack) < 4 or ack[0] != 0x20 or ack[3] != 0:
            raise SystemExit(f"CONNACK refused: {ack!r}")
    time.sleep(1.0)
    after = rss_kib(pid)
    print(f"{(after - before) / n:.1f}")
    for s in socks:
        s.close()


main()
