"""The http service through the standard library only, the way the course's
Python HTTP clients talk to it (http.client and urllib, no third-party
module): list, upload, download, delete, the tugas 8 form POST, and the
course upload client's stray CRLF after its body.

Each test class starts a real bin/fileserver with one http listener on a
free port and a temporary root. Run with `python3 -m unittest` (the
Makefile's test-run target does, with FSRV_BIN set).
"""

import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import unittest
import urllib.error
import urllib.parse
import urllib.request

BIN = os.environ.get("FSRV_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "bin"))


class HttpServer:
    """A fileserver child serving http on 127.0.0.1 with a temporary root."""

    def __init__(self, *args):
        self.root = tempfile.mkdtemp(prefix="fsrv-http-py-")
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "fileserver"), "--host", "127.0.0.1", "--root", self.root,
             "--log-level", "warn", "--listen", "http=0", *args],
            stdout=subprocess.PIPE)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("listening http on "):
            self.stop()
            raise RuntimeError("server did not start: %r" % line)
        self.port = int(line.rsplit(":", 1)[1])
        self.base = "http://127.0.0.1:%d" % self.port

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc.stdout.close()
        shutil.rmtree(self.root, ignore_errors=True)
        return rc


class CourseHttpClient(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = HttpServer("--mode", "process", "--workers", "2")

    @classmethod
    def tearDownClass(cls):
        rc = cls.server.stop()
        if rc != 0:
            raise AssertionError("server exited with %r" % rc)

    def conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)

    def test_index_page_heading(self):
        with urllib.request.urlopen(self.server.base + "/") as r:
            self.assertEqual(r.status, 200)
            self.assertIn("<h1>SERVER HTTP</h1>", r.read().decode())
            self.assertRegex(r.headers["Server"], r"^fsrv/\d+\.\d+\.\d+$")
            self.assertTrue(r.headers["Date"].endswith("GMT"))

    def test_upload_list_download_delete(self):
        data = os.urandom(300000) + b"\r\n\x00tail"
        c = self.conn()
        c.request("POST", "/upload/kursus.bin", body=data)
        r = c.getresponse()
        self.assertEqual((r.status, r.read()), (200, b"File kursus.bin uploaded successfully"))
        # Same connection (keep-alive): list, download, delete.
        c.request("GET", "/listdir")
        r = c.getresponse()
        files = json.loads(r.read())
        entry = [f for f in files if f["name"] == "kursus.bin"]
        self.assertEqual(len(entry), 1)
        self.assertEqual(entry[0]["size"], len(data))
        self.assertIsInstance(entry[0]["modified"], float)
        self.assertEqual([f["name"] for f in files], sorted(f["name"] for f in files))
        c.request("GET", "/kursus.bin")
        r = c.getresponse()
        self.assertEqual(hashlib.sha256(r.read()).hexdigest(), hashlib.sha256(data).hexdigest())
        self.assertEqual(r.getheader("Content-Type"), "application/octet-stream")
        c.request("DELETE", "/delete/kursus.bin")
        r = c.getresponse()
        self.assertEqual((r.status, r.read()), (200, b"File kursus.bin deleted successfully"))
        c.request("DELETE", "/delete/kursus.bin")
        r = c.getresponse()
        self.assertEqual((r.status, r.read()), (404, b"File not found"))
        c.close()

    def test_put_created_then_replaced(self):
        c = self.conn()
        c.request("PUT", "/put.txt", body=b"one")
        r = c.getresponse()
        r.read()
        self.assertEqual(r.status, 201)
        c.request("PUT", "/put.txt", body=b"two")
        r = c.getresponse()
        r.read()
        self.assertEqual(r.status, 204)
        c.close()
        with urllib.request.urlopen(self.server.base + "/put.txt") as r:
            self.assertEqual(r.read(), b"two")

    def test_form_post_like_tugas_8(self):
        body = urllib.parse.urlencode({"kirim": "ISI LAH & ok"}).encode()
        req = urllib.request.Request(self.server.base + "/sending.html", data=body)
        with urllib.request.urlopen(req) as r:
            text = r.read().decode()
        fields, _, headers = text.partition("\r\n\r\n")
        self.assertEqual(fields, "kirim=ISI LAH & ok")
        self.assertIn("Content-Type: application/x-www-form-urlencoded", headers)
        self.assertIn("Content-Length: %d" % len(body), headers)
        with urllib.request.urlopen(self.server.base + "/sending.html") as r:
            self.assertIn('name="kirim"', r.read().decode())

    def test_missing_file_is_404_and_traversal_is_refused(self):
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(self.server.base + "/no-such-file")
        self.assertEqual(e.exception.code, 404)
        c = self.conn()
        c.request("GET", "/%2e%2e%2fetc%2fpasswd")
        r = c.getresponse()
        self.assertIn(r.status, (403, 404))
        self.assertNotIn(b"root:", r.read())
        c.close()

    def test_course_upload_client_raw_socket_with_stray_crlf(self):
        # The course's upload client: HTTP/1.0, Content-Length body, then an
        # extra "\r\n"; it reads once after the blank line.
        payload = b"course bytes\x00\xff"
        head = ("POST /upload/raw.bin HTTP/1.0\r\nContent-Length: %d\r\n\r\n" % len(payload)).encode()
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=30) as s:
            s.sendall(head + payload + b"\r\n")
            reply = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                reply += chunk
        self.assertTrue(reply.startswith(b"HTTP/1.1 200 OK\r\n"), reply)
        self.assertTrue(reply.endswith(b"\r\n\r\nFile raw.bin uploaded successfully"), reply)
        with open(os.path.join(self.server.root, "raw.bin"), "rb") as f:
            self.assertEqual(f.read(), payload)

    def test_stats_json_counts_statuses(self):
        with urllib.request.urlopen(self.server.base + "/stats") as r:
            stats = json.loads(r.read())
        self.assertIn("status", stats["services"]["http"])
        # This class's other tests ran first (alphabetical order): 200s counted.
        self.assertGreater(stats["services"]["http"]["status"]["200"], 0)
        self.assertGreater(stats["services"]["http"]["requests"], 0)


if __name__ == "__main__":
    unittest.main()
