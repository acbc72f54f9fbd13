"""A GET that is never read holds little memory.

Before: each GET of a large file through the file protocol kept two 1 MiB
chunks (2.8 MB encoded) for as long as the client did not read: 100 such
clients raised RSS by 186 MB. Now chunks start at 48 KiB, double while the
socket takes each one at once, and fall back to 48 KiB (giving the big
buffers back) when one has to queue.

The kernel's side: each such socket's send queue grew to tcp_wmem's
maximum (4 MiB here) of data the client never read, kernel memory that no
RSS shows: 100 stalled GETs held 4,228 KiB of TCP memory each. Every
listener now sets TCP_NOTSENT_LOWAT (limits::kUnsentBytesPerConnection),
which bounds the unsent part, on every TCP service at once.
"""

import os
import re
import socket
import subprocess
import time
import unittest

from hostile_support import HostileServer, connect, file_ping, http_get, recv_until, report

CLIENTS = 30
SIZE = 64 << 20
# The kernel bound: limits::kUnsentBytesPerConnection (128 KiB) plus one
# 64 KiB segment send(2) may add past it, with room to spare; the queue
# without the bound reaches tcp_wmem's maximum (4 MiB on Debian).
MAX_SEND_QUEUE = 512 << 10
QUEUE_CLIENTS = 10  # per service


def write_big(root, size):
    """A file of `size` random bytes (whole MiB) named big.bin in `root`."""
    with open(os.path.join(root, "big.bin"), "wb") as f:
        block = os.urandom(1 << 20)
        for _ in range(size >> 20):
            f.write(block)


def read_late(s):
    """Reads a file-protocol GET reply on `s` to its terminator (or EOF),
    closes `s` and returns the bytes received."""
    got = 0
    s.settimeout(30)
    while True:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        got += len(chunk)
        if chunk.endswith(b"\r\n\r\n"):
            break
    s.close()
    return got


def send_queues(port):
    """sk_wmem_queued (skmem's w: bytes in the send queue) of every
    established socket whose local port is `port`, from `ss -tm`."""
    out = subprocess.run(["ss", "-Htmn", "state", "established", "( sport = :%d )" % port],
                         capture_output=True, text=True, check=True).stdout
    return [int(w) for w in re.findall(r"skmem:\([^)]*\bw(\d+)", out)]


class StalledGets(unittest.TestCase):
    MODE = "thread"

    def test_gets_never_read(self):
        server = HostileServer(["file"], "--min-rate", 0, mode=self.MODE)
        socks = []
        try:
            write_big(server.root, SIZE)
            time.sleep(0.5)
            rss0 = server.rss_kb()
            for _ in range(CLIENTS):
                s = connect(server.port("file"))
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
                s.sendall(b"GET big.bin\r\n\r\n")
                socks.append(s)
            time.sleep(3)
            rss1 = server.rss_kb()
            per_conn = (rss1 - rss0) / CLIENTS
            # The server still answers others at once.
            with connect(server.port("file")) as o:
                o.sendall(b"LIST\r\n\r\n")
                other = recv_until(o, b"\r\n\r\n", timeout=5)
            # And a stalled reader that starts reading gets every byte.
            got = read_late(socks.pop())
            report("get-never-read/" + self.MODE, clients=CLIENTS, file_mb=SIZE >> 20,
                   rss_before_kb=rss0, rss_after_kb=rss1, per_conn_kb="%.0f" % per_conn,
                   late_reader_bytes=got)
            self.assertIn(b"OK", other)
            self.assertLess(per_conn, 512)
            self.assertGreater(got, SIZE * 4 // 3)
        finally:
            for s in socks:
                s.close()
            server.stop()

    def test_kernel_send_queue_is_bounded(self):
        """GETs never read, through the file protocol (base64 chunks) and
        http (sendfile): the server's send queue for each stays under
        MAX_SEND_QUEUE, and a late reader still gets every byte."""
        server = HostileServer(["file", "http"], "--min-rate", 0, mode=self.MODE)
        socks = []
        try:
            write_big(server.root, 32 << 20)
            requests = {"file": b"GET big.bin\r\n\r\n",
                        "http": b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n"}
            for service, request in requests.items():
                for _ in range(QUEUE_CLIENTS):
                    s = connect(server.port(service))
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
                    s.sendall(request)
                    socks.append(s)
            time.sleep(3)  # the queues fill within milliseconds; this is margin
            queues = {svc: send_queues(server.port(svc)) for svc in requests}
            # Another client is served at once on both services meanwhile.
            other_file = file_ping(server.port("file"))
            other_http = http_get(server.port("http"), "/listdir")
            got = read_late(socks.pop(0))  # a file-protocol GET read late
            report("get-send-queue/" + self.MODE, clients_per_service=QUEUE_CLIENTS,
                   **{"%s_max_kib" % svc: max(q, default=0) >> 10 for svc, q in queues.items()},
                   **{"%s_sum_kib" % svc: sum(q) >> 10 for svc, q in queues.items()},
                   late_reader_bytes=got)
            self.assertEqual(other_file, "OK")
            self.assertIn(" 200 ", other_http)
            for svc, q in queues.items():
                self.assertEqual(len(q), QUEUE_CLIENTS, "%s: %r" % (svc, q))
                self.assertLess(max(q), MAX_SEND_QUEUE, "%s send queues (bytes): %r" % (svc, q))
            self.assertGreater(got, (32 << 20) * 4 // 3)
        finally:
            for s in socks:
                s.close()
            server.stop()


class StalledGetsProcessMode(StalledGets):
    MODE = "process"


if __name__ == "__main__":
    unittest.main()
