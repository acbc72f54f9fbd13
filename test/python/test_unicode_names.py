"""Non-ASCII file names through a course-style client.

The course's clients decode every recv(16) piece on its own
(`data.decode()` per chunk), so a reply carrying raw UTF-8 fails as soon
as a character is split across two reads. Our replies must be pure ASCII,
as Python's json.dumps writes them. Both server modes.
"""

import base64
import json
import os
import unittest

from test_course_client import Server

NAMES = ["abcdefg\u00e9.txt", "\u6587\u4ef6-\u30c6\u30b9\u30c8.bin", "smile-\U0001F600.dat",
         "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9.txt"]


def chunked_command(port, command_str, recv_size=16):
    """The course client's loop: decode each recv() chunk separately."""
    import socket
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        sock.sendall((command_str + "\r\n\r\n").encode())
        text = ""
        while True:
            data = sock.recv(recv_size)
            if not data:
                break
            text += data.decode()  # raises UnicodeDecodeError on a split character
            if "\r\n\r\n" in text:
                break
        return json.loads(text)
    finally:
        sock.close()


class UnicodeNamesTest(unittest.TestCase):
    MODE = ()

    def setUp(self):
        self.server = Server(*self.MODE)
        self.port = self.server.port

    def tearDown(self):
        self.assertEqual(self.server.stop(), 0)

    def test_list_get_upload_size_delete(self):
        payloads = {}
        for i, name in enumerate(NAMES):
            data = os.urandom(1000 + i)
            payloads[name] = data
            up = chunked_command(self.port, 'UPLOAD "%s" %s' % (name, base64.b64encode(data).decode()))
            self.assertEqual(up, {"status": "OK", "data": "%s uploaded (%d bytes)" % (name, len(data))})
            with open(os.path.join(self.server.root, name), "rb") as f:
                self.assertEqual(f.read(), data)
        # A file put in the root directly (the example) lists too.
        with open(os.path.join(self.server.root, "direct-\u00e9.txt"), "wb") as f:
            f.write(b"x")
        self.assertEqual(chunked_command(self.port, "LIST")["data"],
                         sorted(NAMES + ["direct-\u00e9.txt"], key=lambda n: n.encode()))
        for name, data in payloads.items():
            got = chunked_command(self.port, 'GET "%s"' % name)
            self.assertEqual(got["data_namafile"], name)
            self.assertEqual(base64.b64decode(got["data_file"]), data)
            size = chunked_command(self.port, 'SIZE "%s"' % name)
            self.assertEqual(size["data"]["name"], name)
            self.assertEqual(size["data"]["bytes"], len(data))
            self.assertEqual(chunked_command(self.port, 'DELETE "%s"' % name),
                             {"status": "OK", "data": name + " deleted"})
            err = chunked_command(self.port, 'GET "%s"' % name)
            self.assertEqual(err["status"], "ERROR")
            self.assertIn(name, err["data"])
        self.assertEqual(chunked_command(self.port, "LIST")["data"], ["direct-\u00e9.txt"])

    def test_every_reply_byte_is_ascii(self):
        with open(os.path.join(self.server.root, "\u6587.txt"), "wb") as f:
            f.write(b"abc")
        import socket
        for cmd in ["LIST", "GET \u6587.txt", "SIZE \u6587.txt", "STATS",
                    "FROB\u00e9", "GET \u00e9-missing", "GET \xff"]:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
            sock.sendall(cmd.encode("utf-8", "surrogateescape") + b"\r\n")
            raw = b""
            while not raw.endswith(b"\r\n\r\n"):
                data = sock.recv(4096)
                if not data:
                    break
                raw += data
            sock.close()
            self.assertTrue(all(b < 0x80 for b in raw), (cmd, raw))
            json.loads(raw.decode("ascii"))

    def test_invalid_utf8_name_is_refused_at_upload(self):
        sock_reply = None
        import socket
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        sock.sendall(b"UPLOAD bad\xff.txt QUJD\r\n")
        raw = b""
        while not raw.endswith(b"\r\n\r\n"):
            raw += sock.recv(4096)
        sock.close()
        sock_reply = json.loads(raw.decode("ascii"))
        self.assertEqual(sock_reply["status"], "ERROR")
        self.assertIn("not valid UTF-8", sock_reply["data"])
        self.assertEqual(os.listdir(self.server.root), [])


class UnicodeNamesProcessModeTest(UnicodeNamesTest):
    MODE = ("--mode", "process", "--workers", "2")


if __name__ == "__main__":
    unittest.main()
