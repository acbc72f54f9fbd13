"""systemd readiness (Type=notify) through the real binary: the test plays
the service manager with a datagram socket in NOTIFY_SOCKET and checks that
READY=1 comes once every listener is bound, STOPPING=1 when the drain starts,
and that only the main process speaks (prefork workers inherit the socket).
"""

import os
import shutil
import signal
import socket
import tempfile
import time
import unittest

from fsrv_server import FsrvServer


class NotifyTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="fsrv-notify-")
        self.sock_path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.sock_path)
        self.sock.settimeout(10)

    def tearDown(self):
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def messages(self, until, timeout=10):
        """Datagrams (each a dict) until one holds the field `until`."""
        got = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data, _ = self.sock.recvfrom(4096)
            fields = dict(l.split("=", 1) for l in data.decode().splitlines() if "=" in l)
            got.append(fields)
            if until in fields:
                return got
        self.fail("no %s in %r" % (until, got))

    def server(self, listeners, *args, notify=True):
        env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
        if notify:
            env["NOTIFY_SOCKET"] = self.sock_path
        srv = FsrvServer(listeners, *args, env=env, log_level=None)
        self.addCleanup(srv.stop)
        return srv

    def check(self, *args):
        srv = self.server(["echo", "http", "udp-sink"], "--grace", "2", *args)
        # The three listening lines were read; READY follows the binding.
        got = self.messages("READY")
        ready = got[-1]
        self.assertEqual(ready["READY"], "1")
        self.assertEqual(ready["MAINPID"], str(srv.proc.pid))
        self.assertIn("3 listener", ready["STATUS"])
        # The service answers once READY says so.
        with socket.create_connection(("127.0.0.1", srv.port("echo")), timeout=5) as c:
            c.sendall(b"x")
            self.assertEqual(c.recv(1), b"x")
        srv.proc.send_signal(signal.SIGTERM)
        got = self.messages("STOPPING")
        self.assertEqual(got[-1]["STOPPING"], "1")
        self.assertEqual(srv.stop(), 0)
        # Nothing else arrived: no worker spoke.
        self.sock.settimeout(0.5)
        with self.assertRaises(socket.timeout):
            print(self.sock.recvfrom(4096))

    def test_thread_mode_says_ready_then_stopping(self):
        self.check()

    def test_process_mode_only_the_master_speaks(self):
        self.check("--mode", "process", "--workers", "2")

    def test_without_notify_socket_nothing_changes(self):
        srv = self.server(["echo"], notify=False)
        self.assertEqual(srv.stop(), 0)
        self.sock.settimeout(0.5)
        with self.assertRaises(socket.timeout):
            self.sock.recvfrom(4096)


if __name__ == "__main__":
    unittest.main()
