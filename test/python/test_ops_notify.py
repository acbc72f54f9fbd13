"""systemd readiness (Type=notify) through the real binary: the test plays
the service manager with a datagram socket in NOTIFY_SOCKET and checks that
READY=1 comes once every listener is bound, STOPPING=1 when the drain starts,
and that only the main process speaks (prefork workers inherit the socket).
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

BIN = os.environ.get("FSRV_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "bin"))


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

    def run_server(self, *args):
        env = dict(os.environ, NOTIFY_SOCKET=self.sock_path)
        proc = subprocess.Popen(
            [os.path.join(BIN, "fileserver"), "--root", os.path.join(self.dir, "root"),
             "--listen", "echo=127.0.0.1:0", "--listen", "http=127.0.0.1:0",
             "--listen", "udp-sink=127.0.0.1:0", "--grace", "2", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        return proc

    def check(self, *args):
        proc = self.run_server(*args)
        got = self.messages("READY")
        # Every listener was printed (bound) before READY was sent.
        lines = [proc.stdout.readline() for _ in range(3)]
        self.assertTrue(all(l.startswith("listening ") for l in lines), lines)
        ready = got[-1]
        self.assertEqual(ready["READY"], "1")
        self.assertEqual(ready["MAINPID"], str(proc.pid))
        self.assertIn("3 listener", ready["STATUS"])
        # The service answers once READY says so.
        port = int(lines[0].rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.sendall(b"x")
            self.assertEqual(c.recv(1), b"x")
        proc.send_signal(signal.SIGTERM)
        got = self.messages("STOPPING")
        self.assertEqual(got[-1]["STOPPING"], "1")
        proc.communicate(timeout=20)
        self.assertEqual(proc.returncode, 0)
        # Nothing else arrived: no worker spoke.
        self.sock.settimeout(0.5)
        with self.assertRaises(socket.timeout):
            print(self.sock.recvfrom(4096))

    def test_thread_mode_says_ready_then_stopping(self):
        self.check()

    def test_process_mode_only_the_master_speaks(self):
        self.check("--mode", "process", "--workers", "2")

    def test_without_notify_socket_nothing_changes(self):
        proc = subprocess.Popen(
            [os.path.join(BIN, "fileserver"), "--root", os.path.join(self.dir, "root"),
             "--listen", "echo=127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"})
        self.assertTrue(proc.stdout.readline().startswith("listening echo"))
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
        self.assertEqual(proc.returncode, 0)


if __name__ == "__main__":
    unittest.main()
