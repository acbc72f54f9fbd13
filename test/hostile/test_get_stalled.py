"""A GET that is never read holds little memory.

Before: each GET of a large file through the file protocol kept two 1 MiB
chunks (2.8 MB encoded) for as long as the client did not read: 100 such
clients raised RSS by 186 MB. Now chunks start at 48 KiB, double while the
socket takes each one at once, and fall back to 48 KiB (giving the big
buffers back) when one has to queue.
"""

import os
import socket
import time
import unittest

from hostile_support import HostileServer, connect, recv_until, report

CLIENTS = 30
SIZE = 64 << 20


class StalledGets(unittest.TestCase):
    MODE = "thread"

    def test_gets_never_read(self):
        server = HostileServer(["file"], "--min-rate", 0, mode=self.MODE)
        socks = []
        try:
            with open(os.path.join(server.root, "big.bin"), "wb") as f:
                block = os.urandom(1 << 20)
                for _ in range(SIZE >> 20):
                    f.write(block)
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
            s = socks.pop()
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


class StalledGetsProcessMode(StalledGets):
    MODE = "process"


if __name__ == "__main__":
    unittest.main()
