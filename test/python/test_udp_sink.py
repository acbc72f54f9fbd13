"""The udp-sink service with senders written like the course's
tugas 2 client (`for b in data: sock.sendto(bytes([b]), addr)`) and with
bin/udpsend. Each test starts a real bin/fileserver in thread mode with a
temporary root and checks the committed files byte for byte.
"""

import glob
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from fsrv_server import KeptRootServer

BIN = os.environ.get("FSRV_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "bin"))

# The course's demo image is 6766 bytes.
COURSE_SIZE = 6766


class SinkServer(KeptRootServer):
    """A fileserver child with one udp-sink listener on 127.0.0.1
    (test/python/fsrv_server.py); stop() keeps the root and sets `stderr`
    to the server's whole log, cleanup() removes the root."""

    def __init__(self, *args):
        super().__init__(["udp-sink"], *args, prefix="fsrv-udp-")
        self.port = self.ports["udp-sink"]

    def files_of(self, port):
        return glob.glob(os.path.join(self.root, "udp-127.0.0.1-%d-*.bin" % port))

    def wait_file(self, port, timeout=10.0):
        """The committed file of sender `port` (its content), or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.files_of(port)
            if found:
                with open(found[0], "rb") as f:
                    return f.read()
            time.sleep(0.02)
        return None


def course_send(port, data):
    """The course's client: one byte per datagram, as fast as Python goes."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    addr = ("127.0.0.1", port)
    for b in data:
        sock.sendto(bytes([b]), addr)
    src = sock.getsockname()[1]
    sock.close()
    return src


class UdpSinkTest(unittest.TestCase):
    def setUp(self):
        self.server = None

    def tearDown(self):
        if self.server:
            self.server.cleanup()

    def test_course_sender_ten_runs_every_byte(self):
        # 1 s of silence ends a sender's file: a Python sender stalled by a
        # loaded machine (the suites run side by side) must not be cut in two.
        self.server = SinkServer("--udp-idle-ms", "1000")
        rnd = random.Random(11)
        for run in range(10):
            data = bytes(rnd.randrange(256) for _ in range(COURSE_SIZE))
            src = course_send(self.server.port, data)
            got = self.server.wait_file(src)
            self.assertIsNotNone(got, "run %d: no file committed" % run)
            self.assertEqual(len(got), COURSE_SIZE, "run %d" % run)
            self.assertEqual(got, data, "run %d: bytes differ" % run)
        self.assertEqual(self.server.stop(), 0)
        self.assertIn(b"6766 datagrams, 6766 bytes from 127.0.0.1:", self.server.stderr)
        self.assertIn(b"SO_RCVBUF", self.server.stderr)
        # Nothing but the ten files (no temporaries left).
        self.assertEqual(len(os.listdir(self.server.root)), 10)

    def test_udpsend_chunks_and_one_byte(self):
        # A sender's file ends --udp-idle-ms after its last datagram: 1 s, so
        # a loaded machine pausing udpsend between two datagrams (one run in
        # a full suite at load 16 failed with 300 ms) does not cut one send
        # into two files.
        self.server = SinkServer("--udp-idle-ms", "1000")
        src_path = os.path.join(tempfile.mkdtemp(prefix="fsrv-udpsend-"), "blob.bin")
        data = random.Random(5).randbytes(1 << 20)
        with open(src_path, "wb") as f:
            f.write(data)
        try:
            for chunk, datagrams in (("1000", 1049), ("65507", 17)):
                before = set(os.listdir(self.server.root))
                out = subprocess.run(
                    [os.path.join(BIN, "udpsend"), "-p", str(self.server.port), src_path,
                     "--chunk", chunk],
                    capture_output=True, check=True, timeout=60).stdout.decode()
                self.assertIn("sent %d datagrams, %d bytes" % (datagrams, len(data)), out)
                deadline = time.monotonic() + 10
                new = set()
                while time.monotonic() < deadline and not new:
                    new = set(os.listdir(self.server.root)) - before
                    time.sleep(0.05)
                self.assertEqual(len(new), 1, chunk)
                with open(os.path.join(self.server.root, new.pop()), "rb") as f:
                    self.assertEqual(f.read(), data, chunk)
            # The course's way, rate-limited: 2000 bytes at 20000 B/s >= 0.09 s.
            small = data[:2000]
            with open(src_path, "wb") as f:
                f.write(small)
            before = set(os.listdir(self.server.root))
            t0 = time.monotonic()
            out = subprocess.run(
                [os.path.join(BIN, "udpsend"), "-p", str(self.server.port), src_path,
                 "--rate", "20000"],
                capture_output=True, check=True, timeout=60).stdout.decode()
            self.assertGreaterEqual(time.monotonic() - t0, 0.09)
            self.assertIn("sent 2000 datagrams, 2000 bytes", out)
            deadline = time.monotonic() + 10
            new = set()
            while time.monotonic() < deadline and not new:
                new = set(os.listdir(self.server.root)) - before
                time.sleep(0.05)
            with open(os.path.join(self.server.root, new.pop()), "rb") as f:
                self.assertEqual(f.read(), small)
        finally:
            shutil.rmtree(os.path.dirname(src_path), ignore_errors=True)

    def test_max_upload_discards_and_keeps_serving(self):
        self.server = SinkServer("--udp-idle-ms", "200", "--max-upload", "1000")
        big = course_send(self.server.port, b"x" * 1500)
        ok = course_send(self.server.port, b"y" * 1000)
        self.assertEqual(self.server.wait_file(ok), b"y" * 1000)
        time.sleep(0.5)
        self.assertEqual(self.server.files_of(big), [])
        self.assertEqual(self.server.stop(), 0)
        self.assertIn(b"over --max-upload", self.server.stderr)
        self.assertEqual(len(os.listdir(self.server.root)), 1)  # no temporary left

    def test_max_senders_commits_oldest_and_shutdown_commits_rest(self):
        self.server = SinkServer("--udp-idle-ms", "60000", "--udp-max-senders", "2")
        socks = []
        ports = []
        for i in range(3):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
            s.sendto(bytes([65 + i]) * 10, ("127.0.0.1", self.server.port))
            time.sleep(0.1)
        # The third sender pushed out the first long before its 60 s idle.
        self.assertEqual(self.server.wait_file(ports[0], timeout=5), b"A" * 10)
        self.assertEqual(self.server.files_of(ports[1]), [])
        self.assertEqual(self.server.stop(), 0)
        # Shutdown commits what is open.
        self.assertEqual(self.server.wait_file(ports[1], timeout=1), b"B" * 10)
        self.assertEqual(self.server.wait_file(ports[2], timeout=1), b"C" * 10)
        for s in socks:
            s.close()

    def test_process_mode_worker_one_receives_and_survives_restart(self):
        self.server = SinkServer("--mode", "process", "--workers", "2", "--udp-idle-ms", "1000")
        rnd = random.Random(12)
        for run in range(3):
            data = bytes(rnd.randrange(256) for _ in range(COURSE_SIZE))
            src = course_send(self.server.port, data)
            self.assertEqual(self.server.wait_file(src), data, "run %d" % run)
        # SIGKILL every worker: the master restarts them and slot 1 inherits
        # the same socket again.
        kids = subprocess.run(["pgrep", "-P", str(self.server.proc.pid)],
                              capture_output=True, text=True).stdout.split()
        self.assertEqual(len(kids), 2)
        for pid in kids:
            os.kill(int(pid), signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            now = subprocess.run(["pgrep", "-P", str(self.server.proc.pid)],
                                 capture_output=True, text=True).stdout.split()
            if len(now) == 2 and not set(now) & set(kids):
                break
            time.sleep(0.05)
        data = bytes(rnd.randrange(256) for _ in range(COURSE_SIZE))
        src = course_send(self.server.port, data)
        self.assertEqual(self.server.wait_file(src), data, "after restart")
        # Shutdown commits an open file in the worker too.
        late = course_send(self.server.port, b"late")
        self.server.stderr = b""
        self.assertEqual(self.server.stop(), 0)
        self.assertEqual(self.server.wait_file(late, timeout=1), b"late")

    def test_all_services_in_process_mode_serves_udp(self):
        # 127.0.0.9: the course ports on an address no other test uses.
        root = tempfile.mkdtemp(prefix="fsrv-udp-")
        proc = subprocess.Popen(
            [os.path.join(BIN, "fileserver"), "--root", root, "--mode", "process",
             "--workers", "1", "--all-services", "--host", "127.0.0.9", "--udp-idle-ms", "200"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            lines = []
            while True:
                line = proc.stdout.readline().decode()
                if not line:
                    break
                lines.append(line.strip())
                if line.startswith("listening udp-sink"):
                    break
            self.assertIn("listening udp-sink on 127.0.0.9:5005", lines)
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.sendto(b"hi", ("127.0.0.9", 5005))
            sock.close()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not any(
                    n.startswith("udp-") for n in os.listdir(root)):
                time.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=20)
        try:
            self.assertEqual(proc.returncode, 0)
            names = [n for n in os.listdir(root) if n.startswith("udp-")]
            self.assertEqual(len(names), 1)
            with open(os.path.join(root, names[0]), "rb") as f:
                self.assertEqual(f.read(), b"hi")
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def test_port_in_use_is_a_startup_error(self):
        busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        busy.bind(("127.0.0.1", 0))
        root = tempfile.mkdtemp(prefix="fsrv-udp-")
        try:
            r = subprocess.run(
                [os.path.join(BIN, "fileserver"), "--root", root,
                 "--listen", "udp-sink=127.0.0.1:%d" % busy.getsockname()[1]],
                capture_output=True, timeout=30)
            self.assertEqual(r.returncode, 2)
            self.assertIn(b"cannot bind udp-sink on udp 127.0.0.1:", r.stderr)
        finally:
            busy.close()
            shutil.rmtree(root, ignore_errors=True)

    def test_same_port_for_tcp_and_udp_is_allowed(self):
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        root = tempfile.mkdtemp(prefix="fsrv-udp-")
        proc = subprocess.Popen(
            [os.path.join(BIN, "fileserver"), "--root", root, "--listen",
             "echo=127.0.0.1:%d" % port, "--listen", "udp-sink=127.0.0.1:%d" % port],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            self.assertEqual(proc.stdout.readline().decode().strip(),
                             "listening echo on 127.0.0.1:%d" % port)
            self.assertEqual(proc.stdout.readline().decode().strip(),
                             "listening udp-sink on 127.0.0.1:%d" % port)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=15)
            proc.stdout.close()
            shutil.rmtree(root, ignore_errors=True)

    def test_services_lists_udp_sink(self):
        out = subprocess.run([os.path.join(BIN, "fileserver"), "--services", "--porcelain"],
                             capture_output=True, check=True, timeout=30).stdout.decode()
        self.assertIn("udp-sink\t5005\t", out)

    def test_listening_lines_in_order_with_tcp(self):
        root = tempfile.mkdtemp(prefix="fsrv-udp-")
        proc = subprocess.Popen(
            [os.path.join(BIN, "fileserver"), "--root", root, "--listen", "echo=127.0.0.1:0",
             "--listen", "udp-sink=127.0.0.1:0", "--listen", "file=127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            lines = [proc.stdout.readline().decode().split(" on ")[0] for _ in range(3)]
            self.assertEqual(lines, ["listening echo", "listening udp-sink", "listening file"])
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=15)
            proc.stdout.close()
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
