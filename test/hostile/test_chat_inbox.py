"""A full chat inbox of invalid UTF-8 asked for by clients that do not read:
each reply is about six times the inbox (every 0xFF byte is written as
"\\ufffd", as json.dumps writes it), and it is written in pieces as the
client reads, so the server holds about the write queue's high water per
connection, not the reply. The replies, read at last, are whole and exact,
and each message is delivered once."""

import json
import socket
import time
import unittest

from hostile_support import HostileServer, recv_until, report

MESSAGE = 60000  # bytes of 0xFF per message (a chat line is at most 64 KiB)
USERS = ["messi", "henderson", "lineker"]


def slow_reader(port):
    """A connection with a tiny receive buffer (a client that barely reads)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.settimeout(60)
    s.connect(("127.0.0.1", port))
    return s


def ask(s, line):
    s.sendall(line + b"\r\n")
    return json.loads(recv_until(s, b"\r\n\r\n").decode())


def login(s, user):
    reply = ask(s, b"auth %s surabaya" % user.encode())
    assert reply["status"] == "OK", reply
    return reply["tokenid"].encode()


class ChatInboxNotRead(unittest.TestCase):
    def test_full_inboxes_asked_and_not_read(self):
        server = HostileServer(["chat"], "--workers", "2")
        try:
            port = server.port("chat")
            sent = {}
            with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
                for i, user in enumerate(USERS):
                    token = login(s, user)
                    to = USERS[(i + 1) % len(USERS)]
                    sent[to] = 0
                    while True:
                        r = ask(s, b"send " + token + b" " + to.encode() + b" " +
                                b"\xff" * MESSAGE)
                        if r["status"] != "OK":
                            self.assertIn("Inbox Penuh", r["message"])
                            break
                        sent[to] += 1
            self.assertTrue(all(n >= 10 for n in sent.values()), sent)
            readers = {u: slow_reader(port) for u in USERS}
            tokens = {u: login(readers[u], u) for u in USERS}
            time.sleep(0.3)
            before = server.rss_kb()
            for u in USERS:
                readers[u].sendall(b"inbox " + tokens[u] + b"\r\n")
            time.sleep(2.0)  # the server encodes what it can; nobody reads
            held_kb = server.rss_kb() - before
            reply_bytes = {}
            for u in USERS:
                raw = recv_until(readers[u], b"\r\n\r\n", limit=64 << 20, timeout=60)
                reply_bytes[u] = len(raw)
                reply = json.loads(raw.decode())
                self.assertEqual(reply["status"], "OK")
                (sender, messages), = reply["messages"].items()
                self.assertEqual(len(messages), sent[u])
                for m in messages:
                    self.assertEqual(m["msg"], "\ufffd" * MESSAGE)
                    self.assertEqual(m["msg_to"], {"messi": "Lionel Messi",
                                                   "henderson": "Jordan Henderson",
                                                   "lineker": "Gary Lineker"}[u])
                # Exactly once: read, so gone.
                self.assertEqual(ask(readers[u], b"inbox " + tokens[u]),
                                 {"status": "OK", "messages": {}})
                readers[u].close()
            total = sum(reply_bytes.values())
            report("chat-inbox-not-read", replies=len(USERS), reply_mb="%.1f" % (total / 1e6),
                   server_held_mb="%.1f" % (held_kb / 1024))
            # Built whole, the three replies alone would be `total` bytes.
            self.assertGreater(total, 15e6)
            # (Measured: 23 MB when each reply was one string, 7 MB in pieces:
            # the fetched messages themselves, about 1 MiB per inbox, stay.)
            self.assertLess(held_kb * 1024, total / 2, "the server held the replies")
        finally:
            server.stop()


if __name__ == "__main__":
    unittest.main()
