"""Clients written the way the course's Python clients are (stdlib only).

Each test talks to a real bin/fileserver started on a free port with a
temporary root. The helpers below mirror the course's file_client_cli.py:
one connection per request, `sendall(command + "\r\n\r\n")`, read until
"\r\n\r\n", then json.loads. Run with `python3 -m unittest` (the Makefile's
test-run target does, with FSRV_BIN set).
"""

import base64
import concurrent.futures
import hashlib
import json
import os
import socket
import time
import unittest

from fsrv_server import FsrvServer, read_course_reply



class Server(FsrvServer):
    """A fileserver child with one file listener on 127.0.0.1 and a
    temporary root (test/python/fsrv_server.py)."""

    def __init__(self, *args):
        super().__init__(["file"], *args, log_level="warn", prefix="fsrv-py-")
        self.port = self.ports["file"]


def send_command(port, command_str, terminator="\r\n\r\n", recv_size=65536, shut_wr=False):
    """The course client's send_command: returns the parsed JSON reply."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    try:
        sock.sendall((command_str + terminator).encode())
        if shut_wr:
            sock.shutdown(socket.SHUT_WR)
        return json.loads(read_course_reply(sock, recv_size).decode())
    finally:
        sock.close()


def upload_then_get(port, item):
    """One pool worker's job: upload a blob, fetch it back, compare."""
    name, data = item
    up = send_command(port, "UPLOAD %s %s" % (name, base64.b64encode(data).decode()))
    got = send_command(port, "GET " + name)
    return up["status"], base64.b64decode(got["data_file"]) == data


class CourseClientTest(unittest.TestCase):
    def setUp(self):
        self.server = Server()
        self.port = self.server.port

    def tearDown(self):
        self.assertEqual(self.server.stop(), 0)

    def put(self, name, data):
        with open(os.path.join(self.server.root, name), "wb") as f:
            f.write(data)

    def test_list_get_upload_delete(self):
        self.put("donalbebek.jpg", b"\x89PNG fake image bytes" * 100)
        self.assertEqual(send_command(self.port, "LIST"),
                         {"status": "OK", "data": ["donalbebek.jpg"]})
        got = send_command(self.port, "GET donalbebek.jpg", recv_size=16)
        self.assertEqual(got["status"], "OK")
        self.assertEqual(got["data_namafile"], "donalbebek.jpg")
        self.assertEqual(base64.b64decode(got["data_file"]), b"\x89PNG fake image bytes" * 100)

        payload = os.urandom(123457)
        up = send_command(self.port, "UPLOAD new.bin " + base64.b64encode(payload).decode())
        self.assertEqual(up, {"status": "OK", "data": "new.bin uploaded (123457 bytes)"})
        with open(os.path.join(self.server.root, "new.bin"), "rb") as f:
            self.assertEqual(f.read(), payload)

        self.assertEqual(send_command(self.port, "DELETE new.bin"),
                         {"status": "OK", "data": "new.bin deleted"})
        err = send_command(self.port, "GET new.bin")
        self.assertEqual(err["status"], "ERROR")
        self.assertIn("no such file", err["data"])

    def test_original_client_without_terminator(self):
        # The course's first client sends the bare command and waits.
        self.put("a.txt", b"abc")
        self.assertEqual(send_command(self.port, "LIST", terminator="")["data"], ["a.txt"])
        got = send_command(self.port, "GET a.txt", terminator="")
        self.assertEqual(base64.b64decode(got["data_file"]), b"abc")
        # ... and one that half-closes after sending.
        got = send_command(self.port, "GET a.txt", terminator="", shut_wr=True)
        self.assertEqual(base64.b64decode(got["data_file"]), b"abc")

    def test_bad_requests_get_clear_errors(self):
        for cmd, needle in [("FROB", "unknown command"), ("GET", "missing argument"),
                            ("GET ../etc/passwd", "invalid name"),
                            ("UPLOAD x.bin QUJ*", "invalid base64 character 0x2a at offset 3")]:
            reply = send_command(self.port, cmd)
            self.assertEqual(reply["status"], "ERROR", cmd)
            self.assertIn(needle, reply["data"], cmd)
        self.assertEqual(send_command(self.port, "LIST")["data"], [])

    def test_100mib_get_is_strict_json(self):
        data = os.urandom(100 << 20) if not os.environ.get("FSRV_SMALL") else os.urandom(1 << 20)
        self.put("big.bin", data)
        got = send_command(self.port, "GET big.bin", recv_size=1 << 20)
        self.assertNotIn("\n", got["data_file"])
        self.assertEqual(hashlib.sha256(base64.b64decode(got["data_file"], validate=True)).digest(),
                         hashlib.sha256(data).digest())

    def test_thread_and_process_pool_clients(self):
        # The course runs its clients from concurrent.futures pools.
        blobs = {"f%d.bin" % i: os.urandom(200000 + i) for i in range(10)}

        import functools
        for pool in (concurrent.futures.ThreadPoolExecutor, concurrent.futures.ProcessPoolExecutor):
            with pool(max_workers=5) as ex:
                results = list(ex.map(functools.partial(upload_then_get, self.port), blobs.items()))
            self.assertEqual(results, [("OK", True)] * len(blobs), pool.__name__)


if __name__ == "__main__":
    unittest.main()
