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
import select
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

from fsrv_server import FsrvServer, exchange, terminate

BIN = os.environ.get("FSRV_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "bin"))


class HttpServer(FsrvServer):
    """A fileserver child serving http on 127.0.0.1 with a temporary root
    (test/python/fsrv_server.py)."""

    def __init__(self, *args):
        super().__init__(["http"], *args, log_level="warn", prefix="fsrv-http-py-")
        self.port = self.ports["http"]
        self.base = "http://127.0.0.1:%d" % self.port


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

    def test_index_page_lists_files_without_javascript(self):
        # A socket or requests client runs no script: the list is in the
        # page as sent, every name escaped and its link percent-encoded.
        names = {"list-me.txt": b"12345", 'a&b <i>"q".txt': b"x" * 2048}
        for name, data in names.items():
            with open(os.path.join(self.server.root, name), "wb") as f:
                f.write(data)
        try:
            page = exchange(self.server.port, b"GET / HTTP/1.0\r\n\r\n").decode()
            self.assertIn('<tr data-name="list-me.txt"><td class="name">list-me.txt</td>'
                          '<td class="num">5 B</td>', page)
            self.assertIn('href="/list-me.txt"', page)
            esc = "a&amp;b &lt;i&gt;&quot;q&quot;.txt"
            self.assertIn('<td class="name">%s</td><td class="num">2.0 KiB</td>' % esc, page)
            self.assertIn('href="/a%26b%20%3Ci%3E%22q%22.txt"', page)
            self.assertNotIn("<i>", page)
            # The link downloads the file.
            with urllib.request.urlopen(self.server.base + "/a%26b%20%3Ci%3E%22q%22.txt") as r:
                self.assertEqual(r.read(), b"x" * 2048)
        finally:
            for name in names:
                os.unlink(os.path.join(self.server.root, name))

    def test_multipart_post_to_upload_stores_the_file(self):
        # Three student clients post a file as multipart/form-data to
        # /upload with no name in the path (as requests.post(files=...) does).
        data = os.urandom(200000) + b"\r\n--notit\r\n"
        boundary = "----studentclient7d3"
        body = (("--%s\r\nContent-Disposition: form-data; name=\"file\"; "
                 "filename=\"tugas.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                 % boundary).encode() + data + ("\r\n--%s--\r\n" % boundary).encode())
        req = urllib.request.Request(
            self.server.base + "/upload", data=body, method="POST",
            headers={"Content-Type": "multipart/form-data; boundary=" + boundary})
        with urllib.request.urlopen(req) as r:
            self.assertEqual(r.status, 200)
            self.assertEqual(r.read(), b"File tugas.bin uploaded successfully")
        with open(os.path.join(self.server.root, "tugas.bin"), "rb") as f:
            self.assertEqual(f.read(), data)
        os.unlink(os.path.join(self.server.root, "tugas.bin"))
        # JSON to /upload: a 4xx that says what to send, not a false 200.
        req = urllib.request.Request(
            self.server.base + "/upload", data=b'{"name": "x.txt", "data": "aGk="}',
            method="POST", headers={"Content-Type": "application/json"})
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(req)
        self.assertEqual(cm.exception.code, 400)
        self.assertIn(b"multipart/form-data", cm.exception.read())

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
        reply = exchange(self.server.port, head + payload + b"\r\n")
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



class CoursePorts(unittest.TestCase):
    """`make run-server` (tools/run-server.sh, --all-services) listens on the
    course's tugas 6 and tugas 8 ports too, and answers their clients."""

    HOST = "127.0.0.23"  # the course ports on an address no other test uses

    def test_tugas_6_and_8_ports_in_run_server(self):
        root = tempfile.mkdtemp(prefix="fsrv-ports-")
        script = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "run-server.sh")
        env = dict(os.environ, HOST=self.HOST, ROOT=root, SERVER_ARGS="--log-level warn")
        proc = subprocess.Popen(["bash", script, BIN], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            out, buf = [], b""
            deadline = time.monotonic() + 30
            fd = proc.stdout.fileno()
            while not any("listening http on %s:10002" % self.HOST in l for l in out):
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([fd], [], [], left)[0]:
                    self.fail("no listener on port 10002 within 30 s: %r" % out)
                chunk = os.read(fd, 65536)
                if not chunk:
                    err = proc.stderr.read().decode()
                    if "cannot bind" in err:
                        self.skipTest("a course port is taken on this machine: " + err)
                    self.fail("server ended: %r %r" % (out, err))
                buf += chunk
                out = buf.decode().splitlines()
            table = "\n".join(out)
            for port in (8885, 10001, 10002):
                self.assertIn("http         %s:%d" % (self.HOST, port), table)
                self.assertIn("listening http on %s:%d" % (self.HOST, port), table)
            # tugas 6: "GET / HTTP/1.0" typed into telnet (CR LF line ends).
            reply = exchange(10001, b"GET / HTTP/1.0\r\n\r\n", timeout=10, host=self.HOST)
            self.assertTrue(reply.startswith(b"HTTP/1.1 200 OK\r\n"), reply[:200])
            self.assertIn(b"<h1>SERVER HTTP</h1>", reply)
            # tugas 8: the form, and its POST echoed.
            conn = http.client.HTTPConnection(self.HOST, 10002, timeout=10)
            conn.request("GET", "/sending.html")
            page = conn.getresponse().read()
            self.assertIn(b'name="kirim"', page)
            conn.request("POST", "/sending.html", body="kirim=ISILAH",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
            self.assertTrue(conn.getresponse().read().startswith(b"kirim=ISILAH\r\n\r\n"))
            conn.close()
        finally:
            terminate(proc, 20)
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
