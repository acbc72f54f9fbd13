"""Health checks and drain for load balancers (docs/CLUSTER.md): GET /healthz
on the http service, the admin listener's /healthz with each service's
readiness (chat: its database answers), and --drain-delay (after SIGTERM the
health check fails first while the listeners still accept, then they close).
Each test starts a real bin/fileserver on 127.0.0.1 with a temporary root.
"""

import json
import shutil
import signal
import socket
import tempfile
import time
import unittest

from fsrv_server import FsrvServer, file_request


class Server(FsrvServer):
    """The tests' server wrapper; get() answers (status, body text)."""

    def __init__(self, services, *args):
        super().__init__(services, *args, prefix="fsrv-health-")

    def get(self, service, path, timeout=10):
        status, body = self.http_get(path, service, timeout=timeout)
        return status, body.decode()


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

    def test_admin_metrics_equal_the_http_ones(self):
        srv = Server(["admin", "file", "http"])
        self.addCleanup(srv.cleanup)
        for _ in range(3):
            self.assertEqual(json.loads(file_request(srv.ports["file"], "LIST"))["status"], "OK")
        status, body = srv.get("admin", "/metrics")
        self.assertEqual(status, 200, body)
        line = 'fsrv_requests_total{service="file",verb="LIST",result="ok"} 3'
        self.assertIn(line, body)
        self.assertIn(line, srv.get("http", "/metrics")[1])

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
        if "--loops" in mode:  # a new connection may land on either loop
            for _ in range(6):
                self.assertEqual(srv.get("http", "/healthz")[0], 503)
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

    def test_thread_mode_with_two_loops_fails_health_on_each(self):
        self.check_drain("--loops", "2")

    def test_process_mode_workers_fail_health_during_the_delay(self):
        self.check_drain("--mode", "process", "--workers", "2")


if __name__ == "__main__":
    unittest.main()
