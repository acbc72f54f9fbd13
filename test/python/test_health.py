"""Health checks and drain for load balancers (docs/CLUSTER.md): GET /healthz
on the http service, the admin listener's /healthz with each service's
readiness (chat: its database answers), and --drain-delay (after SIGTERM the
health check fails first while the listeners still accept, then they close).
Each test starts a real bin/fileserver on 127.0.0.1 with a temporary root.
"""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

BIN = os.environ.get("FSRV_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "bin"))


class Server:
    """A fileserver child with the given --listen services; stderr to a file."""

    def __init__(self, services, *args):
        self.root = tempfile.mkdtemp(prefix="fsrv-health-")
        self.log = open(os.path.join(self.root, ".server.log"), "w+b")
        argv = [os.path.join(BIN, "fileserver"), "--root", self.root, "--log-level", "info"]
        for s in services:
            argv += ["--listen", "%s=127.0.0.1:0" % s]
        self.proc = subprocess.Popen(argv + list(args), stdout=subprocess.PIPE, stderr=self.log)
        self.ports = {}
        for _ in services:
            line = self.proc.stdout.readline().decode()
            if not line.startswith("listening "):
                self.proc.kill()
                raise RuntimeError("server did not start: %r (%s)" % (line, self.log_text()))
            name = line.split()[1]
            self.ports[name] = int(line.rsplit(":", 1)[1])

    def log_text(self):
        self.log.flush()
        with open(self.log.name, "rb") as f:
            return f.read().decode(errors="replace")

    def get(self, service, path, timeout=10):
        c = http.client.HTTPConnection("127.0.0.1", self.ports[service], timeout=timeout)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read().decode()
        finally:
            c.close()

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)


def file_request(port, line):
    """One course file-protocol request; the reply up to its blank line."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(line.encode() + b"\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.decode()


class HttpHealthz(unittest.TestCase):
    def test_healthz_answers_node_id_and_is_not_access_logged(self):
        srv = Server(["http"], "--node-id", "node-one")
        self.addCleanup(srv.cleanup)
        for _ in range(3):
            status, body = srv.get("http", "/healthz")
            self.assertEqual(status, 200)
            self.assertEqual(body, "ok node=node_one\n")  # sanitised as in temp names
        self.assertEqual(srv.get("http", "/listdir")[0], 200)
        time.sleep(0.3)
        log = srv.log_text()
        self.assertIn("GET /listdir", log)  # the access log works...
        self.assertNotIn("/healthz", log)   # ...and health checks are not traffic


class AdminHealthz(unittest.TestCase):
    def test_every_service_ready_with_chat_database_reachable(self):
        srv = Server(["admin", "file", "chat", "http"])
        self.addCleanup(srv.cleanup)
        status, body = srv.get("admin", "/healthz")
        self.assertEqual(status, 200, body)
        h = json.loads(body)
        self.assertTrue(h["ready"])
        self.assertFalse(h["draining"])
        self.assertEqual(h["services"]["chat"], {"ready": True, "detail": "database reachable"})
        self.assertTrue(h["services"]["file"]["ready"])
        self.assertTrue(h["services"]["http"]["ready"])
        self.assertTrue(h["node"])
        self.assertEqual(srv.get("admin", "/other")[0], 404)

    def test_chat_database_down_fails_readiness_but_files_keep_serving(self):
        # A PostgreSQL socket directory where no server runs: refused at once.
        nowhere = tempfile.mkdtemp(prefix="fsrv-nopg-")
        self.addCleanup(shutil.rmtree, nowhere, True)
        srv = Server(["admin", "file", "chat"], "--chat-db",
                     "postgresql:///chat?host=%s&user=postgres" % nowhere)
        self.addCleanup(srv.cleanup)
        t0 = time.monotonic()
        status, body = srv.get("admin", "/healthz")
        self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual(status, 503, body)
        h = json.loads(body)
        self.assertFalse(h["ready"])
        self.assertFalse(h["services"]["chat"]["ready"])
        self.assertIn("unavailable", h["services"]["chat"]["detail"])
        self.assertTrue(h["services"]["file"]["ready"])
        # The balancer's per-service checks hold no shared dependency: chat
        # stays in rotation so its clients get the clear reply below.
        self.assertEqual(srv.get("admin", "/healthz/file")[0], 200)
        self.assertEqual(srv.get("admin", "/healthz/chat")[0], 200)
        self.assertEqual(srv.get("admin", "/healthz/tftp")[0], 404)
        # Chat answers a clear error at once; the file service is unaffected.
        with socket.create_connection(("127.0.0.1", srv.ports["chat"]), timeout=10) as s:
            t0 = time.monotonic()
            s.sendall(b"auth messi surabaya\r\n")
            reply = s.recv(4096).decode()
            self.assertLess(time.monotonic() - t0, 5)
        self.assertIn("chat database unavailable", reply)
        self.assertIn('"status": "ERROR"', reply)
        self.assertEqual(json.loads(file_request(srv.ports["file"], "LIST"))["status"], "OK")


class DrainDelay(unittest.TestCase):
    def check_drain(self, *mode):
        srv = Server(["admin", "http"], "--drain-delay", "4", "--grace", "2", *mode)
        self.addCleanup(srv.cleanup)
        self.assertEqual(srv.get("http", "/healthz")[0], 200)
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        # Health fails within a moment, while the node still serves.
        deadline = t0 + 3
        while True:
            status, body = srv.get("http", "/healthz")
            if status == 503 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(status, 503)
        self.assertTrue(body.startswith("draining node="), body)
        # Well inside the 4 s delay (generous: the suites share 2 cores).
        self.assertLess(time.monotonic() - t0, 3)
        status, body = srv.get("admin", "/healthz")
        self.assertEqual(status, 503)
        self.assertTrue(json.loads(body)["draining"])
        self.assertEqual(srv.get("admin", "/healthz/http")[0], 503)
        self.assertEqual(srv.get("http", "/listdir")[0], 200)  # still accepting
        # Then the listeners close and the process ends.
        srv.proc.wait(timeout=20)
        elapsed = time.monotonic() - t0
        self.assertGreaterEqual(elapsed, 3.9)
        self.assertEqual(srv.proc.returncode, 0)

    def test_thread_mode_fails_health_then_stops_accepting(self):
        self.check_drain()

    def test_process_mode_workers_fail_health_during_the_delay(self):
        self.check_drain("--mode", "process", "--workers", "2")


if __name__ == "__main__":
    unittest.main()
