"""TFTP against clients that never acknowledge.

Before: 512-600 RRQs never ACKed locked every other client out ("server
busy: too many transfers") for about 63 s, each holding a read chunk (up to
~2 MB at blksize 65464); a plain RRQ from a source that never answers got
88-196 times its size back (the first DATA and five retransmissions), and
every garbage datagram on the request port got an ERROR. Now one address
may hold 32 transfers and 4 not yet heard from (beyond those, its requests
are dropped silently), an unheard transfer sends its first packet 4 times
and ends, RRQ buffers grow only after the first ACK, and ERROR replies on
the request port are limited to 50 a second.

A windowed WRQ (RFC 7440) whose sender outran the disk held every byte it
had sent: the blocks the upload engine could not take yet were appended to
one buffer whose consumed front was freed only when it emptied, which a
steady fast sender never let happen (a 100 MB write at windowsize 16 took
the server from 13 to 144-240 MB). Now what waits for the engine is at
most the held bound (8 MiB) plus a window.
"""

import os
import select
import socket
import struct
import time
import unittest

from hostile_support import HostileServer, report

BLOCK = 512


def rrq(name, options=None):
    p = b"\x00\x01" + name.encode() + b"\0octet\0"
    for k, v in (options or {}).items():
        p += k.encode() + b"\0" + str(v).encode() + b"\0"
    return p


def fetch(port, name, source="127.0.0.1", timeout=10):
    """A plain lock-step RRQ (blksize 512); returns the bytes or the ERROR text."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((source, 0))
    s.settimeout(timeout)
    try:
        s.sendto(rrq(name), ("127.0.0.1", port))
        data = b""
        expect = 1
        while True:
            pkt, addr = s.recvfrom(70000)
            op, num = struct.unpack("!HH", pkt[:4])
            if op == 5:
                return "ERROR %d %s" % (num, pkt[4:-1].decode(errors="replace"))
            if op != 3:
                continue
            if num == expect:
                data += pkt[4:]
                expect += 1
            s.sendto(struct.pack("!HH", 4, num), addr)
            if num == expect - 1 and len(pkt) - 4 < BLOCK:
                return data
    except socket.timeout:
        return "timeout"
    finally:
        s.close()


class TftpHostile(unittest.TestCase):
    MODE = "thread"

    def setUp(self):
        self.server = HostileServer(["tftp", "file"], "--tftp-timeout", 0.5, mode=self.MODE)
        self.port = self.server.port("tftp")
        self.content = os.urandom(100000)
        with open(os.path.join(self.server.root, "f.bin"), "wb") as f:
            f.write(self.content)

    def tearDown(self):
        self.server.stop()

    def test_unacknowledged_requests_do_not_lock_others_out(self):
        rss0 = self.server.rss_kb()
        socks = []
        for _ in range(600):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.2", 0))
            s.sendto(rrq("f.bin", {"blksize": 65464}), ("127.0.0.1", self.port))
            socks.append(s)
        time.sleep(0.3)
        rss1 = self.server.rss_kb()
        t0 = time.time()
        got = fetch(self.port, "f.bin")
        took = time.time() - t0
        for s in socks:
            s.close()
        stats = self.server.stats()["services"]["tftp"]
        report("tftp-unacked/" + self.MODE, rrqs=600, rss_before_kb=rss0, rss_after_kb=rss1,
               other_client=("ok" if got == self.content else got), other_client_s="%.2f" % took,
               refused_unheard=stats.get("refused", {}).get("unheard"))
        self.assertEqual(got, self.content)
        self.assertLess(rss1 - rss0, 64 * 1024)

    def test_reflection_to_a_silent_source_is_bounded(self):
        socks = []
        sent = 0
        for _ in range(50):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.3", 0))
            p = rrq("f.bin")
            s.sendto(p, ("127.0.0.1", self.port))
            sent += len(p)
            socks.append(s)
        received = 0
        deadline = time.time() + 8.5
        while time.time() < deadline:
            r, _, _ = select.select(socks, [], [], 0.2)
            for s in r:
                received += len(s.recv(70000))
        for s in socks:
            s.close()
        ratio = received / sent
        report("tftp-reflection/" + self.MODE, rrqs=50, bytes_in=sent, bytes_out=received,
               ratio="%.1f" % ratio)
        # At most 4 unheard transfers, each its first DATA 4 times.
        self.assertLessEqual(received, 4 * 4 * (BLOCK + 4) + 600)

    def test_garbage_errors_are_rate_limited(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.4", 0))
        t0 = time.time()
        for _ in range(2000):
            s.sendto(b"\x00\x07garbage", ("127.0.0.1", self.port))
        replies = 0
        s.settimeout(0.5)
        try:
            while True:
                s.recv(1000)
                replies += 1
        except socket.timeout:
            pass
        elapsed = time.time() - t0
        s.close()
        report("tftp-garbage/" + self.MODE, garbage=2000, error_replies=replies,
               elapsed_s="%.1f" % elapsed)
        self.assertLessEqual(replies, 50 * (int(elapsed) + 2))
        self.assertEqual(fetch(self.port, "f.bin"), self.content)


class TftpHostileProcessMode(TftpHostile):
    MODE = "process"


def wrq_windowed(port, name, blocks, payload, windowsize=16, timeout=5.0):
    """A WRQ at blksize len(payload) and `windowsize` (RFC 7440) that sends
    `blocks` blocks of `payload` and then a short last one, each window as
    fast as the socket takes it; a timeout resends from the last ACK.
    Returns the final ACK's block number or the ERROR text."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    s.settimeout(timeout)
    opts = {"blksize": len(payload), "windowsize": windowsize}
    s.sendto(b"\x00\x02" + rrq(name, opts)[2:], ("127.0.0.1", port))
    try:
        pkt, addr = s.recvfrom(70000)
        if pkt[:2] != b"\x00\x06":
            return "no OACK: %r" % pkt[:60]
        fields = pkt[2:].split(b"\0")
        got = dict(zip(fields[0::2], fields[1::2]))
        window = int(got.get(b"windowsize", b"1"))
        acked = 0
        last = blocks + 1  # the short block ends the transfer
        while True:
            for n in range(acked + 1, min(acked + window, last) + 1):
                data = payload if n <= blocks else b"end"
                s.sendto(struct.pack("!HH", 3, n & 0xFFFF) + data, addr)
            try:
                pkt, _ = s.recvfrom(70000)
            except socket.timeout:
                continue  # resend the window from the last ACK
            op, num = struct.unpack("!HH", pkt[:4])
            if op == 5:
                return "ERROR %d %s" % (num, pkt[4:-1].decode(errors="replace"))
            # The ACK's 16-bit number, placed at or after the last ACK.
            acked += (num - acked) & 0xFFFF
            if acked >= last:
                return acked
    finally:
        s.close()


class TftpWindowedWrite(unittest.TestCase):
    """A windowed WRQ faster than the disk holds a bounded amount."""
    MODE = "thread"

    def setUp(self):
        self.server = HostileServer(["tftp", "file"], mode=self.MODE)
        self.port = self.server.port("tftp")

    def tearDown(self):
        self.server.stop()

    def test_a_fast_windowed_write_holds_a_bounded_amount(self):
        payload = os.urandom(65464)
        blocks = 1500  # 98 MB
        rss0 = self.server.rss_kb()
        peak = [rss0]
        done = []

        def sample():
            while not done:
                peak[0] = max(peak[0], self.server.rss_kb())
                time.sleep(0.005)
        import threading
        t = threading.Thread(target=sample)
        t.start()
        try:
            t0 = time.time()
            last = wrq_windowed(self.port, "w.bin", blocks, payload)
            took = time.time() - t0
        finally:
            done.append(1)
            t.join()
        path = os.path.join(self.server.root, "w.bin")
        size = os.path.getsize(path) if os.path.exists(path) else -1
        report("tftp-windowed-wrq/" + self.MODE, bytes=blocks * len(payload) + 3,
               seconds="%.2f" % took, rss_before_kb=rss0, rss_peak_kb=peak[0])
        self.assertEqual(last, blocks + 1)
        self.assertEqual(size, blocks * len(payload) + 3)
        with open(path, "rb") as f:
            self.assertEqual(f.read(len(payload)), payload)
        # 8 MiB held for the engine, its chunk buffers, a window and slack.
        self.assertLess(peak[0] - rss0, 32 * 1024)


class TftpWindowedWriteProcessMode(TftpWindowedWrite):
    MODE = "process"


if __name__ == "__main__":
    unittest.main()
