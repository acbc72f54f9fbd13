"""Access log (--access-log), log files (--log-file), --log-format json and
SIGUSR1 reopening, through the real binary: Combined Log Format for http,
one line per request for file and tftp, and a rotation by rename + SIGUSR1
under load that loses no line, in thread and process mode.
"""

import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

from fsrv_server import FsrvServer, file_request

BIN = os.environ.get("FSRV_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "bin"))

CLF = re.compile(r'^(\S+) - - \[(\d\d)/(\w{3})/(\d{4}):(\d\d):(\d\d):(\d\d) \+0000\] '
                 r'"([^"\\]*(?:\\.[^"\\]*)*)" (\d{3}) (\d+|-) '
                 r'"([^"\\]*(?:\\.[^"\\]*)*)" "([^"\\]*(?:\\.[^"\\]*)*)"$')
OTHER = re.compile(r'^\[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\] (\S+) (\S+) (\S+) '
                   r'"([^"]*)" (ok|failed) (\d+) (\d+\.\d{6})$')


class Server(FsrvServer):
    """http, file, tftp and session listeners on 127.0.0.1, the root under
    `dir` (test/python/fsrv_server.py)."""

    def __init__(self, dir, *args):
        root = os.path.join(dir, "root")
        os.makedirs(root, exist_ok=True)
        super().__init__(["http", "file", "tftp", "session"], "--grace", "2", *args,
                         log_level=None, root=root, prefix="fsrv-logs-")

    def http_get(self, path, headers=None):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.ports["http"], path),
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def file_request(self, line):
        return json.loads(file_request(self.ports["file"], line))

    def tftp_get(self, name):
        """RRQ in octet mode for a file of at most 511 bytes: one DATA, one ACK."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.sendto(struct.pack("!H", 1) + name.encode() + b"\0octet\0",
                     ("127.0.0.1", self.ports["tftp"]))
            data, peer = s.recvfrom(600)
            self.assertion = struct.unpack("!HH", data[:4])
            s.sendto(struct.pack("!HH", 4, 1), peer)
            return data[4:]


def wait_lines(path, n, timeout=10):
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        if os.path.exists(path):
            with open(path) as f:
                lines = f.read().splitlines()
            if len(lines) >= n:
                return lines
        time.sleep(0.05)
    return lines


class AccessLogTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="fsrv-logs-")
        self.log = os.path.join(self.dir, "access.log")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, *args):
        server = Server(self.dir, "--access-log", self.log, *args)
        self.addCleanup(server.stop)
        return server

    def test_http_lines_are_combined_log_format_and_other_services_one_line_each(self):
        server = self.start()
        with open(os.path.join(server.root, "a.txt"), "wb") as f:
            f.write(b"hello access log\n")
        status, body = server.http_get("/a.txt", {"User-Agent": 'probe "7"',
                                                  "Referer": "http://example.test/x"})
        self.assertEqual(status, 200)
        self.assertEqual(server.http_get("/missing.txt")[0], 404)
        self.assertEqual(server.file_request("GET a.txt")["status"], "OK")
        self.assertEqual(server.file_request("GET nope.txt")["status"], "ERROR")
        self.assertEqual(server.tftp_get("a.txt"), b"hello access log\n")
        with socket.create_connection(("127.0.0.1", server.ports["session"]), timeout=10) as s:
            s.sendall(b"connme")
            self.assertEqual(s.recv(9), b"connected")
        lines = wait_lines(self.log, 6)
        self.assertEqual(len(lines), 6, lines)
        http = [CLF.match(l) for l in lines if CLF.match(l)]
        self.assertEqual(len(http), 2, lines)
        self.assertEqual(http[0].group(1), "127.0.0.1")
        self.assertEqual(http[0].group(8), "GET /a.txt HTTP/1.1")
        self.assertEqual(http[0].group(9), "200")
        self.assertEqual(http[0].group(10), str(len(body)))
        self.assertEqual(http[0].group(11), "http://example.test/x")
        self.assertEqual(http[0].group(12), 'probe \\"7\\"')
        self.assertEqual(http[1].group(9), "404")
        others = [OTHER.match(l) for l in lines if OTHER.match(l)]
        self.assertEqual([(m.group(1), m.group(3), m.group(4), m.group(5)) for m in others],
                         [("file", "GET", "a.txt", "ok"), ("file", "GET", "nope.txt", "failed"),
                          ("tftp", "RRQ", "a.txt", "ok"), ("session", "connme", "", "ok")])
        self.assertRegex(others[0].group(2), r"^127\.0\.0\.1:\d+$")
        # GET's reply carries the base64 of the file: more bytes than the file.
        self.assertGreater(int(others[0].group(6)), 17)
        self.assertEqual(int(others[2].group(6)), 17)
        self.assertEqual(int(others[3].group(6)), len(b"connected"))

    def test_json_format_gives_one_object_per_line_in_both_logs(self):
        server_log = os.path.join(self.dir, "server.log")
        server = self.start("--log-format", "json", "--log-file", server_log)
        self.assertEqual(server.http_get("/listdir")[0], 200)
        self.assertEqual(server.file_request("LIST")["status"], "OK")
        lines = wait_lines(self.log, 2)
        objs = [json.loads(l) for l in lines]
        self.assertEqual([o["service"] for o in objs], ["http", "file"])
        self.assertEqual(objs[0]["status"], "200")
        self.assertEqual(objs[0]["request"], "GET /listdir HTTP/1.1")
        self.assertEqual(objs[1]["verb"], "LIST")
        for o in objs:
            self.assertRegex(o["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertIsInstance(o["duration_s"], float)
        server.stop()
        with open(server_log) as f:
            logged = [json.loads(l) for l in f.read().splitlines()]
        self.assertTrue(any("shutting down" in o["msg"] for o in logged))
        self.assertTrue(all(o["level"] in ("error", "warn", "info", "debug") for o in logged))

    def rotate_under_load(self, *args):
        server = self.start("--log-file", os.path.join(self.dir, "server.log"), *args)
        stop = threading.Event()
        done = []
        errors = []

        def load():
            try:
                i = 0
                while not stop.is_set():
                    status, _ = server.http_get("/listdir?i=%d" % i)
                    i += 1
                    if status != 200:
                        errors.append(status)
                    done.append(i)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))

        clients = [threading.Thread(target=load) for _ in range(3)]
        for t in clients:
            t.start()
        try:
            # Rotate twice while the load runs, as logrotate would: rename,
            # then SIGUSR1; each time once the live file has 50 lines.
            rotated = []
            for k in (1, 2, 3):
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and len(wait_lines(self.log, 50, 0.05)) < 50:
                    pass
                if k == 3:
                    break
                os.rename(self.log, self.log + ".%d" % k)
                os.rename(os.path.join(self.dir, "server.log"),
                          os.path.join(self.dir, "server.log.%d" % k))
                rotated.append(self.log + ".%d" % k)
                server.proc.send_signal(signal.SIGUSR1)
        finally:
            stop.set()
            for t in clients:
                t.join(timeout=60)
        self.assertEqual(errors, [])
        server.stop()
        counts = []
        for path in rotated + [self.log]:
            with open(path) as f:
                counts.append(len([l for l in f.read().splitlines() if CLF.match(l)]))
        # No line lost, none doubled, and each file got its share.
        self.assertEqual(sum(counts), len(done), counts)
        self.assertTrue(all(c >= 50 for c in counts), counts)
        with open(os.path.join(self.dir, "server.log")) as f:
            self.assertIn("shutting down", f.read())

    def test_rename_and_sigusr1_lose_no_line_thread_mode(self):
        self.rotate_under_load()

    def test_rename_and_sigusr1_lose_no_line_process_mode(self):
        self.rotate_under_load("--mode", "process", "--workers", "2")

    def test_an_unwritable_access_log_stops_the_start_with_exit_2(self):
        r = subprocess.run([os.path.join(BIN, "fileserver"), "--root", self.dir,
                            "--access-log", os.path.join(self.dir, "no", "such", "dir.log")],
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 2)
        self.assertIn("cannot open access log", r.stderr)


if __name__ == "__main__":
    unittest.main()
