"""Slow requests are cut on every TCP service, from one place.

Before: --request-timeout and --min-rate held only in the file protocol; an
HTTP header trickled a byte at a time, a session upload frame, a file-raw or
file-marker payload, a chat line that never ends each held a connection for
as long as the client kept trickling (every byte restarted the idle timer).
Now the connection layer times a request's head from its first byte
(--request-timeout) and measures every payload and reply against --min-rate
over --min-rate-window; the reason is logged at info level. Idle time
between requests is each service's own policy: echo, chat and session keep
a paused interactive client.
"""

import socket
import struct
import threading
import time
import unittest

from hostile_support import HostileServer, connect, recv_until, report

REQUEST_TIMEOUT = 2
MIN_RATE = 2000
WINDOW = 1
# An attacker that is never cut would hold the connection this long.
GIVE_UP = 15


def trickle(sock, head, byte, every=0.25, give_up=GIVE_UP):
    """Sends `head`, then `byte` every `every` s until the server closes the
    connection. Returns (seconds held after the head, bytes the server sent)."""
    sock.sendall(head)
    t0 = time.time()
    got = b""
    sock.settimeout(every)
    while time.time() - t0 < give_up:
        try:
            sock.sendall(byte)
        except OSError:
            break
        try:
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
        except socket.timeout:
            continue
        except OSError:
            break
    return time.time() - t0, got


class SlowRequests(unittest.TestCase):
    MODE = "thread"

    @classmethod
    def setUpClass(cls):
        cls.server = HostileServer(
            ["http", "session", "file-raw", "file-marker", "chat", "file", "echo"],
            "--request-timeout", REQUEST_TIMEOUT, "--min-rate", MIN_RATE, "--min-rate-window",
            WINDOW, "--idle-timeout", 30, mode=cls.MODE)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def cut(self, name, service, head, byte, limit, every=0.25):
        with connect(self.server.port(service)) as s:
            held, got = trickle(s, head, byte, every=every)
        report("slow/%s/%s" % (name, self.MODE), held_s="%.1f" % held,
               limit_s=limit, reply=repr(got[:60]))
        self.assertLess(held, limit + 4, "%s held %.1f s" % (name, held))
        return got

    def test_http_header_trickled(self):
        got = self.cut("http-header", "http", b"GET / HTTP/1.1\r\nHost: x\r\n", b"X",
                       REQUEST_TIMEOUT)
        self.assertIn(b"408", got)

    def test_http_body_trickled(self):
        head = (b"POST /upload/slow.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
        self.cut("http-body", "http", head, b"Z", WINDOW)

    def test_http_form_body_trickled(self):
        head = (b"POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n\r\n")
        self.cut("http-form-body", "http", head, b"Z", WINDOW)

    def test_session_upload_frame_trickled(self):
        # The header frame (h name length, name, i size) a byte every 0.5 s:
        # 14 bytes would take 7 s.
        frame = struct.pack("<h", 8) + b"slow.bin" + struct.pack("<i", 100000)
        with connect(self.server.port("session")) as s:
            s.sendall(b"upload")
            self.assertEqual(recv_until(s, b"ready"), b"ready")
            t0 = time.time()
            s.settimeout(0.5)
            for b in frame:
                try:
                    s.sendall(bytes([b]))
                    if s.recv(100) == b"":
                        break
                except socket.timeout:
                    continue
                except OSError:
                    break
            else:
                # The frame got through: the payload trickles on until cut.
                trickle(s, b"", b"P")
            held = time.time() - t0
        report("slow/session-frame/%s" % self.MODE, held_s="%.1f" % held,
               limit_s=REQUEST_TIMEOUT)
        self.assertLess(held, REQUEST_TIMEOUT + 3)

    def test_session_upload_payload_trickled(self):
        with connect(self.server.port("session")) as s:
            s.sendall(b"upload")
            recv_until(s, b"ready")
            frame = struct.pack("<h", 8) + b"slow.bin" + struct.pack("<i", 100000)
            held, _ = trickle(s, frame, b"P")
        report("slow/session-payload/%s" % self.MODE, held_s="%.1f" % held, limit_s=WINDOW)
        self.assertLess(held, WINDOW + 4)

    def test_file_raw_payload_trickled(self):
        self.cut("file-raw-payload", "file-raw", b"UPLOAD slow.bin 100000\r\n", b"R", WINDOW)

    def test_file_marker_payload_trickled(self):
        with connect(self.server.port("file-marker")) as s:
            s.sendall(b"UPLOAD slow.bin\n")
            self.assertIn(b"READY", recv_until(s, b"READY"))
            held, _ = trickle(s, b"", b"Q")
        report("slow/file-marker-payload/%s" % self.MODE, held_s="%.1f" % held, limit_s=WINDOW)
        self.assertLess(held, WINDOW + 4)

    def test_file_payload_trickled(self):
        self.cut("file-payload", "file", b"UPLOAD slow.bin ", b"Q", WINDOW)

    def test_chat_line_never_ends(self):
        self.cut("chat-line", "chat", b"auth messi", b"x", REQUEST_TIMEOUT)

    def test_file_line_never_ends(self):
        # Faster than --legacy-idle-ms (200 ms), which would run "LISS..." as is.
        got = self.cut("file-line", "file", b"LIS", b"S", REQUEST_TIMEOUT, every=0.05)
        self.assertIn(b"request timeout", got)

    def test_reason_is_logged(self):
        with connect(self.server.port("chat")) as s:
            trickle(s, b"auth", b"y")
        time.sleep(0.2)
        log = self.server.log_text()
        self.assertIn("closing chat connection from 127.0.0.1: request timeout", log)

    def test_get_never_read_is_cut(self):
        path = self.server.root + "/big.bin"
        with open(path, "wb") as f:
            f.write(b"\0" * (32 << 20))
        with connect(self.server.port("file-raw")) as s:
            s.sendall(b"DOWNLOAD big.bin\r\n")
            t0 = time.time()
            s.settimeout(GIVE_UP)
            time.sleep(WINDOW * 4)
            # The server gave up on the stalled reader: the stream ends early.
            got = 0
            try:
                while True:
                    chunk = s.recv(1 << 20)
                    if not chunk:
                        break
                    got += len(chunk)
            except OSError:
                pass
        report("slow/get-never-read/%s" % self.MODE, got_bytes=got, size=32 << 20,
               held_s="%.1f" % (time.time() - t0))
        self.assertLess(got, 32 << 20)


class PausedInteractiveClients(unittest.TestCase):
    """Idle policy per service: echo, session, chat keep a paused client;
    the file protocol keeps its idle timeout."""

    MODE = "thread"

    @classmethod
    def setUpClass(cls):
        cls.server = HostileServer(["echo", "session", "chat", "file"], "--idle-timeout", 1,
                                   mode=cls.MODE)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def _paused_past_idle_timeout(self, service, first, second):
        """A round trip (request, reply), a pause past the idle timeout, then
        a second one: its reply must come (the service keeps idle clients)."""
        with connect(self.server.port(service)) as s:
            s.sendall(first[0])
            self.assertEqual(recv_until(s, first[1]), first[1])
            time.sleep(2.5)
            s.sendall(second[0])
            got = recv_until(s, second[1], timeout=5)
        report("idle/%s/%s" % (service, self.MODE), idle_timeout_s=1, paused_s=2.5,
               reply=repr(got))
        self.assertEqual(got, second[1])

    def test_echo_paused_past_idle_timeout(self):
        self._paused_past_idle_timeout("echo", (b"first\n", b"first\n"),
                                       (b"second\n", b"second\n"))

    def test_session_paused_past_idle_timeout(self):
        self._paused_past_idle_timeout("session", (b"connme", b"connected"),
                                       (b"connme", b"connected"))

    def test_chat_paused_past_idle_timeout(self):
        with connect(self.server.port("chat")) as s:
            time.sleep(2.5)
            s.sendall(b"auth messi surabaya\r\n")
            got = recv_until(s, b"\r\n\r\n", timeout=5)
        self.assertIn(b"OK", got)

    def test_file_keeps_its_idle_timeout(self):
        with connect(self.server.port("file")) as s:
            t0 = time.time()
            got = recv_until(s, b"\r\n\r\n", timeout=10)
        report("idle/file/%s" % self.MODE, idle_timeout_s=1, closed_after_s="%.1f" % (
            time.time() - t0), reply=repr(got[:60]))
        self.assertIn(b"idle timeout", got)
        log = self.server.log_text()
        self.assertIn("closing file connection from 127.0.0.1: idle timeout", log)


class SlowRequestsProcessMode(SlowRequests):
    MODE = "process"


class PausedInteractiveClientsProcessMode(PausedInteractiveClients):
    MODE = "process"


if __name__ == "__main__":
    unittest.main()
