#!/usr/bin/env python3
"""Quick figures for the chat and session services.

  bench/chat-session.py [BIN_DIR] [--mb 100] [--messages 500] [--clients 8]

Starts bin/fileserver (thread mode, temporary root) with a chat and a session
listener, then measures:
  - chat: `send` round trips per second on one connection and on --clients
    connections at once (each send is one SQLite commit, synchronous=FULL:
    an fsync per message), then one `inbox` of everything;
  - session: one --mb MiB upload and download with the seed client's steps.
"""

import argparse
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time


def start(bin_dir, root):
    proc = subprocess.Popen(
        [os.path.join(bin_dir, "fileserver"), "--host", "127.0.0.1", "--listen", "chat=0",
         "--listen", "session=0", "--root", root, "--log-level", "error"],
        stdout=subprocess.PIPE)
    ports = {}
    for _ in range(2):
        m = re.match(r"listening (\w+) on .*:(\d+)$", proc.stdout.readline().decode().strip())
        ports[m.group(1)] = int(m.group(2))
    return proc, ports


def ask(sock, line):
    sock.sendall(line.encode() + b" \r\n")
    data = b""
    while not data.endswith(b"\r\n\r\n"):
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError
        data += chunk
    return data


def chat_sender(port, count, out):
    s = socket.create_connection(("127.0.0.1", port))
    token = re.search(rb'"tokenid": "([^"]+)"', ask(s, "auth messi surabaya")).group(1).decode()
    for i in range(count):
        assert b"Message Sent" in ask(s, "send %s henderson pesan nomor %d" % (token, i))
    out.append(count)
    s.close()


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(min(1 << 20, n - len(buf)))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin", nargs="?", default="bin")
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--messages", type=int, default=500)
    ap.add_argument("--clients", type=int, default=8)
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="fsrv-bench-")
    proc, ports = start(args.bin, root)
    try:
        done = []
        t0 = time.perf_counter()
        chat_sender(ports["chat"], args.messages, done)
        dt = time.perf_counter() - t0
        print("chat send, 1 connection: %d messages in %.2f s = %.0f msg/s" %
              (args.messages, dt, args.messages / dt))
        done = []
        each = args.messages // args.clients
        threads = [threading.Thread(target=chat_sender, args=(ports["chat"], each, done))
                   for _ in range(args.clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        dt = time.perf_counter() - t0
        print("chat send, %d connections: %d messages in %.2f s = %.0f msg/s" %
              (args.clients, sum(done), dt, sum(done) / dt))
        s = socket.create_connection(("127.0.0.1", ports["chat"]))
        token = re.search(rb'"tokenid": "([^"]+)"',
                          ask(s, "auth henderson surabaya")).group(1).decode()
        t0 = time.perf_counter()
        reply = ask(s, "inbox " + token)
        dt = time.perf_counter() - t0
        print("chat inbox of %d messages: %.1f ms, %d reply bytes" %
              (reply.count(b'"msg": '), dt * 1000, len(reply)))
        s.close()

        size = args.mb << 20
        chunk = os.urandom(1 << 20)
        s = socket.create_connection(("127.0.0.1", ports["session"]))
        t0 = time.perf_counter()
        s.send(b"upload")
        assert s.recv(1024) == b"ready"
        s.send(struct.pack("h", 8) + b"big.data" + struct.pack("i", size))
        for _ in range(args.mb):
            s.sendall(chunk)
        assert s.recv(1024) == b"received"
        server_s = struct.unpack("f", recv_exact(s, 4))[0]
        dt = time.perf_counter() - t0
        print("session upload %d MiB: %.2f s = %.0f MB/s (server says %.2f s)" %
              (args.mb, dt, size / dt / 1e6, server_s))
        t0 = time.perf_counter()
        s.send(b"download")
        assert s.recv(1024) == b"ready"
        s.send(struct.pack("h", 8) + b"big.data")
        n = struct.unpack("i", recv_exact(s, 4))[0]
        got = 0
        while got < n:
            got += len(s.recv(min(1 << 20, n - got)))
        s.send(b"1")
        server_s = struct.unpack("f", recv_exact(s, 4))[0]
        dt = time.perf_counter() - t0
        print("session download %d MiB: %.2f s = %.0f MB/s (server says %.2f s)" %
              (args.mb, dt, n / dt / 1e6, server_s))
        s.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
