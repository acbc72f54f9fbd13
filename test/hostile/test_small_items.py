"""The smaller hostile-client items: HTTP/0.9 request lines, the form
echo's memory budget, process mode under a low descriptor limit."""

import os
import resource
import socket
import time
import unittest

from hostile_support import HostileServer, connect, file_ping, recv_until, report


class Http09(unittest.TestCase):
    def test_http09_request_line_gets_505_at_once(self):
        # Before: the parser waited for a version; the client got 408 after
        # --idle-timeout (60 s). docs/services/http.md promises 505.
        server = HostileServer(["http"])
        try:
            with connect(server.port("http")) as s:
                t0 = time.time()
                s.sendall(b"GET /\r\n")
                got = recv_until(s, b"\r\n", timeout=5)
            report("http09", reply=repr(got[:40]), took_s="%.2f" % (time.time() - t0))
            self.assertTrue(got.startswith(b"HTTP/1.1 505 HTTP Version Not Supported"), got)
        finally:
            server.stop()


class FormBodyBudget(unittest.TestCase):
    CLIENTS = 120
    BODY = 1000000

    def test_form_bodies_share_a_memory_budget(self):
        # Before: 400 connections posting 1 MB each to the form echo held
        # 434 MB. Now the bodies of one process share 64 MiB; beyond, 503.
        server = HostileServer(["http"], "--min-rate", 0)
        socks = []
        try:
            rss0 = server.rss_kb()
            head = ("POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                    "Content-Type: application/x-www-form-urlencoded\r\n\r\n" % self.BODY).encode()
            body = b"a=" + b"x" * (self.BODY - 3)  # all but the last byte: held
            for _ in range(self.CLIENTS):
                s = connect(server.port("http"))
                s.sendall(head)
                try:
                    s.sendall(body)
                except OSError:
                    pass
                socks.append(s)
            time.sleep(1.5)
            rss1 = server.rss_kb()
            refused = 0
            for s in socks:
                s.settimeout(0.05)
                try:
                    if b" 503 " in s.recv(200):
                        refused += 1
                except OSError:
                    pass
            report("form-budget", clients=self.CLIENTS, body_bytes=self.BODY,
                   rss_growth_mb="%.0f" % ((rss1 - rss0) / 1024), refused_503=refused)
            self.assertGreater(refused, 0)
            self.assertLess(rss1 - rss0, 100 * 1024)
        finally:
            for s in socks:
                s.close()
            server.stop()


class LowFdLimit(unittest.TestCase):
    def test_process_mode_with_udp_under_ulimit_256(self):
        # Before: the worker's fcntl(F_DUPFD, 256) failed (EINVAL) under
        # `ulimit -n 256` and the worker restarted in a loop.
        def limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

        server = HostileServer(["udp-sink", "file"], "--udp-idle-ms", 200, mode="process",
                               preexec=limit)
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.sendto(b"hello", ("127.0.0.1", server.port("udp-sink")))
            s.close()
            time.sleep(1.5)
            files = [f for f in os.listdir(server.root) if f.startswith("udp-")]
            status = file_ping(server.port("file"))
            restarts = server.log_text().count("restarting")
            report("ulimit-256/process", files=len(files), file=status, restarts=restarts)
            self.assertEqual(status, "OK")
            self.assertEqual(len(files), 1)
            self.assertEqual(restarts, 0)
        finally:
            server.stop()


if __name__ == "__main__":
    unittest.main()
