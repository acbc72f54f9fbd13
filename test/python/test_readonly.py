"""Read-only listeners (--listen SERVICE=PORT,ro): every write and delete
verb of every service is refused in that protocol's own words, nothing on
disk changes, and reads keep working; a service that cannot honour a key
refuses to start (exit 2)."""

import base64
import http.client
import os
import socket
import struct
import subprocess
import time
import unittest

from fsrv_server import BIN, FsrvServer, connect, recv_all, recv_until

KEEP = b"the original bytes\n"


def snapshot(root):
    """name -> bytes of every entry of the root (hidden ones included)."""
    out = {}
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                out[name] = f.read()
        else:
            out[name] = None
    return out


class ReadOnlyListeners(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = FsrvServer(["file=127.0.0.1:0,ro", "http=127.0.0.1:0,ro",
                                 "session=127.0.0.1:0,ro", "file-marker=127.0.0.1:0,ro",
                                 "file-raw=127.0.0.1:0,ro", "tftp=127.0.0.1:0,ro",
                                 "udp-sink=127.0.0.1:0,ro"])
        with open(os.path.join(cls.server.root, "keep.txt"), "wb") as f:
            f.write(KEEP)
        cls.before = snapshot(cls.server.root)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def assertUnchanged(self):
        self.assertEqual(snapshot(self.server.root), self.before)

    def test_listening_lines_show_ro(self):
        # FsrvServer parsed them; the raw lines carry the policy.
        out = subprocess.run([os.path.join(BIN, "fileserver"), "--listen", "http=8885,ro",
                              "--listen", "file=6666,auth=write", "--services"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("(ro)", out.stdout)
        self.assertIn("(auth=write)", out.stdout)
        self.assertIn("[listener keys: ro, auth]", out.stdout)

    def test_file_upload_and_delete_refused(self):
        port = self.server.port("file")
        payload = base64.b64encode(b"new bytes").decode()
        for line in ("UPLOAD keep.txt " + payload, "UPLOAD fresh.txt " + payload,
                     "DELETE keep.txt"):
            with connect(port) as s:
                s.sendall(line.encode() + b"\r\n")
                reply = recv_until(s, b"\n").decode()
            self.assertIn('"status": "ERROR"', reply.replace('":"', '": "'), line)
            self.assertIn("read-only", reply, line)
        # Reads still work on the same connection kind.
        got = self.server.file_request("GET keep.txt")
        self.assertEqual(got.get("status"), "OK", got)
        self.assertUnchanged()

    def test_file_upload_refusal_keeps_the_connection_in_step(self):
        with connect(self.server.port("file")) as s:
            s.sendall(b"UPLOAD x.txt " + base64.b64encode(b"x" * 100000) + b"\r\nPING\r\n")
            replies = recv_until(s, b"connected")
        self.assertIn(b"read-only", replies)
        self.assertIn(b"connected", replies)
        self.assertUnchanged()

    def http(self, method, path, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.server.port("http"), timeout=10)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def test_http_writes_get_403(self):
        form = (b"--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.txt\"\r\n"
                b"Content-Type: text/plain\r\n\r\nform bytes\r\n--XX--\r\n")
        cases = [("PUT", "/keep.txt", b"new", {}), ("PUT", "/fresh.txt", b"new", {}),
                 ("POST", "/upload/fresh.txt", b"new", {}),
                 ("POST", "/upload", form, {"Content-Type": "multipart/form-data; boundary=XX"}),
                 ("DELETE", "/keep.txt", None, {}), ("DELETE", "/delete/keep.txt", None, {})]
        for method, path, body, headers in cases:
            status, text = self.http(method, path, body, headers)
            self.assertEqual(status, 403, (method, path, text))
            self.assertIn(b"read-only", text)
        status, text = self.http("GET", "/keep.txt")
        self.assertEqual((status, text), (200, KEEP))
        self.assertUnchanged()

    def test_session_rm_answers_minus_one_and_upload_closes(self):
        port = self.server.port("session")
        name = b"keep.txt"
        with connect(port) as s:
            s.sendall(b"rm")
            self.assertEqual(recv_until(s, b"ready"), b"ready")
            s.sendall(struct.pack("<h", len(name)) + name + b"Y")
            got = b""
            while len(got) < 4:
                got += s.recv(4 - len(got))
            self.assertEqual(struct.unpack("<i", got)[0], -1)
            s.sendall(b"size")  # the session is still in step
            self.assertEqual(recv_until(s, b"ready"), b"ready")
            s.sendall(struct.pack("<h", len(name)) + name)
            got = b""
            while len(got) < 4:
                got += s.recv(4 - len(got))
            self.assertEqual(struct.unpack("<i", got)[0], len(KEEP))
        with connect(port) as s:
            s.sendall(b"upload")
            self.assertEqual(recv_until(s, b"ready"), b"ready")
            s.sendall(struct.pack("<h", len(name)) + name + struct.pack("<i", 3) + b"abc")
            s.settimeout(10)
            rest = recv_all(s, 100)
            self.assertNotIn(b"received", rest)
        self.assertTrue(self.server.wait_log("read-only listener: upload refused"))
        self.assertUnchanged()

    def test_marker_upload_refused(self):
        with connect(self.server.port("file-marker")) as s:
            s.sendall(b"UPLOAD keep.txt\n")
            s.settimeout(10)
            reply = s.recv(200)
        self.assertTrue(reply.startswith(b"Upload failed: read-only"), reply)
        self.assertUnchanged()

    def test_raw_upload_refused_after_its_payload(self):
        with connect(self.server.port("file-raw")) as s:
            s.sendall(b"UPLOAD keep.txt 5\r\nABCDELIST\r\n")
            # The ERROR line, then LIST's names and its blank line (one read or more).
            got = recv_until(s, b"\r\n\r\n")
        reply, _, listing = got.partition(b"\r\n")
        self.assertTrue(reply.startswith(b"ERROR read-only"), got)
        self.assertIn(b"keep.txt", listing)
        self.assertUnchanged()

    def test_tftp_wrq_gets_error_2(self):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(10)
            s.sendto(b"\x00\x02fresh.txt\x00octet\x00", ("127.0.0.1", self.server.port("tftp")))
            data, _ = s.recvfrom(600)
        opcode, code = struct.unpack("!HH", data[:4])
        self.assertEqual((opcode, code), (5, 2), data)
        self.assertUnchanged()

    def sink_dropped(self):
        return self.server.stats().get("services", {}).get("udp-sink", {}).get(
            "readonly_dropped", 0)

    def test_udp_sink_drops_and_counts(self):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _ in range(5):
                s.sendto(b"datagram", ("127.0.0.1", self.server.port("udp-sink")))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            # STATS through the file listener: reads are allowed on ro.
            if self.sink_dropped() >= 5:
                break
            time.sleep(0.1)
        self.assertGreaterEqual(self.sink_dropped(), 5)
        listeners = self.server.stats()["services"]["http"]["listeners"]
        self.assertEqual(listeners, {"ro": 1})
        time.sleep(0.3)
        self.assertUnchanged()


class OpenListenersUnchanged(unittest.TestCase):
    def test_same_service_open_and_ro_side_by_side(self):
        with FsrvServer(["file=127.0.0.1:0", "file=127.0.0.1:0,ro"]) as server:
            open_port, ro_port = server.order[0][1], server.order[1][1]
            payload = base64.b64encode(b"abc").decode()
            with connect(open_port) as s:
                s.sendall(("UPLOAD a.txt %s\r\n" % payload).encode())
                self.assertIn(b"OK", recv_until(s, b"\n"))
            with connect(ro_port) as s:
                s.sendall(b"DELETE a.txt\r\n")
                self.assertIn(b"read-only", recv_until(s, b"\n"))
            with open(os.path.join(server.root, "a.txt"), "rb") as f:
                self.assertEqual(f.read(), b"abc")


class KeysAServiceCannotHonour(unittest.TestCase):
    def test_exit_2_naming_the_listener(self):
        for spec, words in (("tftp=127.0.0.1:0,auth=write", "auth="),
                            ("chat=127.0.0.1:0,ro", "',ro'"),
                            ("session=127.0.0.1:0,auth=all", "auth="),
                            ("file=127.0.0.1:0,bogus", "bad key")):
            out = subprocess.run([os.path.join(BIN, "fileserver"), "--root", "/nonexistent-ro",
                                  "--listen", spec], capture_output=True, text=True, timeout=30)
            self.assertEqual(out.returncode, 2, (spec, out.stdout, out.stderr))
            self.assertIn(words, out.stderr, spec)


if __name__ == "__main__":
    unittest.main()
