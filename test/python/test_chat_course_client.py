"""The chat service through a client written like the course's
chat-cli.py (socket + json only): one persistent connection, requests sent
as "<command> \\r\\n", replies read until "\\r\\n\\r\\n".

Every test asserts the exact reply bytes chat_server.py would send
(json.dumps defaults + "\\r\\n\\r\\n"). The server runs with a chat and a
file listener (`--listen chat=0 --listen file=0`): the file listener's STATS
reply tells which worker process served what, for the process-mode tests.
Run with `python3 -m unittest` (make test-run sets FSRV_BIN).
"""

import json
import os
import re
import shutil
import signal
import socket
import tempfile
import time
import unittest

from fsrv_server import ChatClient, FsrvServer, recv_all


UUID4 = re.compile(rb'^\{"status": "OK", "tokenid": "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-'
                   rb'[89ab][0-9a-f]{3}-[0-9a-f]{12}"\}\r\n\r\n$')


def error_reply(message):
    return ('{"status": "ERROR", "message": "%s"}\r\n\r\n' % message).encode()


class Server(FsrvServer):
    """A fileserver child with a chat and a file listener on 127.0.0.1
    (test/python/fsrv_server.py); a given `root` is kept by stop()."""

    def __init__(self, *args, root=None):
        super().__init__(["chat", "file"], *args, log_level="error", root=root,
                         prefix="fsrv-chat-")
        self.port = self.ports["chat"]
        self.file_port = self.ports["file"]

    def stats(self):
        """The file protocol's STATS data object (parsed)."""
        return super().stats(self.file_port)


def counter(obj, path):
    """A counter from a STATS object: "services/chat/commands/send/ok" -> nested keys."""
    for part in path.split("/"):
        if not isinstance(obj, dict) or part not in obj:
            return 0
        obj = obj[part]
    return obj if isinstance(obj, (int, float)) else 0


class ChatThreadMode(unittest.TestCase):
    def setUp(self):
        self.server = Server()

    def tearDown(self):
        self.server.stop()

    def client(self):
        c = ChatClient(self.server.port)
        self.addCleanup(c.close)
        return c

    def test_auth_reply_bytes(self):
        c = self.client()
        ok = c.raw("auth messi surabaya \r\n")
        self.assertRegex(ok, UUID4)
        self.assertEqual(c.raw("auth nobody surabaya \r\n"), error_reply("User Tidak Ada"))
        self.assertEqual(c.raw("auth messi salah \r\n"), error_reply("Password Salah"))
        # A bare "\n" ends a line too; two logins give two different tokens.
        other = c.raw("auth messi surabaya\n")
        self.assertRegex(other, UUID4)
        self.assertNotEqual(ok, other)

    def test_send_inbox_round_trip_exact_bytes(self):
        messi, hend = self.client(), self.client()
        self.assertEqual(messi.login("messi", "surabaya")["status"], "OK")
        self.assertEqual(hend.login("henderson", "surabaya")["status"], "OK")
        sent = b'{"status": "OK", "message": "Message Sent"}\r\n\r\n'
        self.assertEqual(messi.raw("send %s henderson halo  apa kabar \r\n" % messi.tokenid), sent)
        self.assertEqual(messi.raw("send %s henderson caf\u00e9 \u2603\r\n" % messi.tokenid), sent)
        self.assertEqual(hend.raw("send %s henderson catatan \r\n" % hend.tokenid), sent)
        got = hend.raw("inbox %s \r\n" % hend.tokenid)
        self.assertEqual(
            got,
            b'{"status": "OK", "messages": {"messi": ['
            b'{"msg_from": "Lionel Messi", "msg_to": "Jordan Henderson", "msg": "halo  apa kabar"}, '
            b'{"msg_from": "Lionel Messi", "msg_to": "Jordan Henderson", "msg": "caf\\u00e9 \\u2603"}], '
            b'"henderson": [{"msg_from": "Jordan Henderson", "msg_to": "Jordan Henderson", '
            b'"msg": "catatan"}]}}\r\n\r\n')
        # Reading emptied the queues.
        self.assertEqual(hend.raw("inbox %s \r\n" % hend.tokenid),
                         b'{"status": "OK", "messages": {}}\r\n\r\n')
        self.assertEqual(messi.inbox(), {"status": "OK", "messages": {}})

    def test_listuser_and_logout(self):
        messi, hend = self.client(), self.client()
        messi.login("messi", "surabaya")
        hend.login("henderson", "surabaya")
        self.assertEqual(messi.raw("listuser %s \r\n" % messi.tokenid),
                         b'{"status": "OK", "listuseraktif": "messi henderson "}\r\n\r\n')
        second = self.client()
        second.login("messi", "surabaya")
        self.assertEqual(
            messi.raw("logout %s \r\n" % messi.tokenid),
            b'{"status": "OK", "messages": "Terima Kash Telah Menggunakan Service Ini"}\r\n\r\n')
        # Every session of the user ended, the other user's did not.
        for c in (messi, second):
            self.assertEqual(c.raw("inbox %s \r\n" % c.tokenid),
                             error_reply("Informasi tidak ditemukan"))
        self.assertEqual(hend.raw("listuser %s \r\n" % hend.tokenid),
                         b'{"status": "OK", "listuseraktif": "henderson "}\r\n\r\n')

    def test_every_error_reply(self):
        c = self.client()
        c.login("lineker", "surabaya")
        t = c.tokenid
        cases = [
            ("hello \r\n", "**Protocol Tidak Benar"),
            ("AUTH messi surabaya \r\n", "**Protocol Tidak Benar"),
            ("\r\n", "**Protocol Tidak Benar"),
            ("auth messi \r\n", "--Protocol Tidak Benar"),
            ("auth \r\n", "--Protocol Tidak Benar"),
            ("send %s \r\n" % t, "--Protocol Tidak Benar"),
            ("send \r\n", "--Protocol Tidak Benar"),
            ("inbox \r\n", "--Protocol Tidak Benar"),
            ("listuser\r\n", "--Protocol Tidak Benar"),
            ("logout \r\n", "--Protocol Tidak Benar"),
            ("inbox 00000000-0000-4000-8000-000000000000 \r\n", "Informasi tidak ditemukan"),
            ("send badtoken messi hi \r\n", "Informasi tidak ditemukan"),
            ("listuser nope \r\n", "Informasi tidak ditemukan"),
            ("logout nope \r\n", "Informasi tidak ditemukan"),
            ("send %s ronaldo hi \r\n" % t, "User Tidak Ditemukan"),
            ("auth ronaldo x \r\n", "User Tidak Ada"),
            ("auth lineker Surabaya \r\n", "Password Salah"),
        ]
        for line, message in cases:
            with self.subTest(line=line):
                self.assertEqual(c.raw(line), error_reply(message))
        # The session is still usable after all of that.
        self.assertEqual(c.inbox(), {"status": "OK", "messages": {}})

    def test_pipelined_lines_answered_in_order(self):
        c = self.client()
        c.login("messi", "surabaya")
        t = c.tokenid
        c.sock.sendall(("send %s lineker satu \r\nsend %s lineker dua \r\nhello\r\n"
                        "inbox %s \r\n" % (t, t, t)).encode())
        want = (b'{"status": "OK", "message": "Message Sent"}\r\n\r\n' * 2 +
                error_reply("**Protocol Tidak Benar") +
                b'{"status": "OK", "messages": {}}\r\n\r\n')
        got = b""
        while len(got) < len(want):
            data = c.sock.recv(65536)
            self.assertTrue(data, "connection closed early: %r" % got)
            got += data
        self.assertEqual(got, want)

    def test_one_megabyte_line_error_close_server_alive(self):
        c = self.client()
        try:
            c.sock.sendall(b"send " + b"x" * (1 << 20) + b" \r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed after its reply; the reply is still queued for us
        got = b""
        try:
            while True:
                data = c.sock.recv(65536)
                if not data:
                    break
                got += data
        except ConnectionResetError:
            pass
        self.assertEqual(got, error_reply("Baris Terlalu Panjang (maks 65536 byte)"))
        # The server keeps serving.
        fresh = self.client()
        self.assertEqual(fresh.login("messi", "surabaya")["status"], "OK")

    def test_chat_directory_hidden_from_file_service(self):
        c = self.client()
        c.login("messi", "surabaya")
        self.assertTrue(os.path.exists(os.path.join(self.server.root, ".chat", "chat.db")))
        with socket.create_connection(("127.0.0.1", self.server.file_port), timeout=30) as s:
            s.sendall(b"LIST\r\nGET .chat\r\nSIZE .chat\r\nDELETE .chat\r\nQUIT\r\n")
            data = recv_all(s)
        replies = [json.loads(r) for r in data.decode().split("\r\n\r\n") if r]
        self.assertEqual(replies[0]["status"], "OK")
        self.assertEqual(replies[0]["data"], [])
        for r in replies[1:4]:
            self.assertEqual(r["status"], "ERROR")
            self.assertIn("invalid name", r["data"])
        self.assertTrue(os.path.exists(os.path.join(self.server.root, ".chat", "chat.db")))


class ChatIdle(unittest.TestCase):
    def test_quiet_connection_stays_open_partial_line_is_closed(self):
        # An unfinished line is the request timeout's (from its first byte).
        server = Server("--idle-timeout", "1", "--request-timeout", "1")
        self.addCleanup(server.stop)
        quiet = ChatClient(server.port)
        self.addCleanup(quiet.close)
        quiet.login("messi", "surabaya")
        slow = ChatClient(server.port)
        self.addCleanup(slow.close)
        slow.sock.sendall(b"auth mes")  # never finished
        time.sleep(2.5)
        # chat-cli.py's connection, idle between commands, still works...
        self.assertEqual(quiet.raw("inbox %s \r\n" % quiet.tokenid),
                         b'{"status": "OK", "messages": {}}\r\n\r\n')
        # ...while the unfinished line was dropped with its connection.
        self.assertTrue(closed_within(slow.sock, 5))


def closed_within(sock, timeout):
    sock.settimeout(timeout)
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


class ChatPersistence(unittest.TestCase):
    def test_restart_between_send_and_inbox(self):
        root = tempfile.mkdtemp(prefix="fsrv-chat-")
        self.addCleanup(shutil.rmtree, root, True)
        server = Server(root=root)
        a = ChatClient(server.port)
        a.login("messi", "surabaya")
        self.assertEqual(a.sendmessage("lineker", "sebelum restart")["message"], "Message Sent")
        a.close()
        server.stop()
        server = Server(root=root)
        try:
            b = ChatClient(server.port)
            b.login("lineker", "surabaya")
            self.assertEqual(
                b.raw("inbox %s \r\n" % b.tokenid),
                b'{"status": "OK", "messages": {"messi": [{"msg_from": "Lionel Messi", '
                b'"msg_to": "Gary Lineker", "msg": "sebelum restart"}]}}\r\n\r\n')
            b.close()
        finally:
            server.stop()

    def test_session_survives_restart_and_expires_when_idle(self):
        root = tempfile.mkdtemp(prefix="fsrv-chat-")
        self.addCleanup(shutil.rmtree, root, True)
        server = Server("--chat-session-ttl", "1", root=root)
        a = ChatClient(server.port)
        a.login("messi", "surabaya")
        a.close()
        server.stop()
        server = Server("--chat-session-ttl", "1", root=root)
        try:
            b = ChatClient(server.port)
            # Same token after the restart: sessions live in the database.
            self.assertEqual(b.raw("inbox %s \r\n" % a.tokenid),
                             b'{"status": "OK", "messages": {}}\r\n\r\n')
            time.sleep(1.5)
            self.assertEqual(b.raw("inbox %s \r\n" % a.tokenid),
                             error_reply("Informasi tidak ditemukan"))
            b.close()
        finally:
            server.stop()


class ChatProcessMode(unittest.TestCase):
    def setUp(self):
        self.server = Server("--mode", "process", "--workers", "3")

    def tearDown(self):
        self.server.stop()

    def worker_serving(self, before, path):
        """The pid of the one worker whose counter `path` grew since `before`."""
        after = self.server.stats()["workers"]
        grew = [w["pid"] for w, b in zip(after, before) if counter(w, path) > counter(b, path)]
        self.assertEqual(len(grew), 1, "counter %s: %r" % (path, after))
        return grew[0]

    def connect_on_new_worker(self, avoid_pid):
        """A logged-in... client whose connection a worker other than
        `avoid_pid` holds (connections are spread over the workers)."""
        for _ in range(30):
            before = self.server.stats()["workers"]
            c = ChatClient(self.server.port)
            c.raw("hello\r\n")  # the connection is accepted and counted
            pid = self.worker_serving(before, "services/chat/connections/total")
            if pid != avoid_pid:
                return c, pid
            c.close()
        self.fail("every connection landed on worker %d" % avoid_pid)

    def test_two_clients_on_different_workers(self):
        before = self.server.stats()["workers"]
        messi = ChatClient(self.server.port)
        self.addCleanup(messi.close)
        messi.login("messi", "surabaya")
        pid_a = self.worker_serving(before, "services/chat/commands/auth/ok")
        hend, pid_b = self.connect_on_new_worker(pid_a)
        self.addCleanup(hend.close)
        self.assertNotEqual(pid_a, pid_b)
        hend.login("henderson", "surabaya")
        for i in range(5):
            self.assertEqual(messi.sendmessage("henderson", "ping %d" % i)["message"],
                             "Message Sent")
            self.assertEqual(hend.sendmessage("messi", "pong %d" % i)["message"], "Message Sent")
        self.assertEqual(hend.inbox()["messages"]["messi"],
                         [{"msg_from": "Lionel Messi", "msg_to": "Jordan Henderson",
                           "msg": "ping %d" % i} for i in range(5)])
        self.assertEqual(messi.inbox()["messages"]["henderson"],
                         [{"msg_from": "Jordan Henderson", "msg_to": "Lionel Messi",
                           "msg": "pong %d" % i} for i in range(5)])
        self.assertEqual(messi.raw("listuser %s \r\n" % messi.tokenid),
                         b'{"status": "OK", "listuseraktif": "messi henderson "}\r\n\r\n')

    def test_sigkill_worker_after_message_sent(self):
        sender = ChatClient(self.server.port)
        sender.login("messi", "surabaya")
        before = self.server.stats()["workers"]
        self.assertEqual(sender.sendmessage("henderson", "jangan hilang")["message"],
                         "Message Sent")
        pid = self.worker_serving(before, "services/chat/commands/send/ok")
        os.kill(pid, signal.SIGKILL)
        # The killed worker's connection is gone.
        sender.sock.settimeout(10)
        try:
            self.assertEqual(sender.sock.recv(10), b"")
        except ConnectionResetError:
            pass
        sender.close()
        deadline = time.time() + 20
        while True:
            pids = [w["pid"] for w in self.server.stats()["workers"]]
            if pid not in pids and all(p > 0 for p in pids):
                break
            self.assertLess(time.time(), deadline, "worker not restarted: %r" % pids)
            time.sleep(0.1)
        reader = ChatClient(self.server.port)
        self.addCleanup(reader.close)
        reader.login("henderson", "surabaya")
        self.assertEqual(
            reader.raw("inbox %s \r\n" % reader.tokenid),
            b'{"status": "OK", "messages": {"messi": [{"msg_from": "Lionel Messi", '
            b'"msg_to": "Jordan Henderson", "msg": "jangan hilang"}]}}\r\n\r\n')


if __name__ == "__main__":
    unittest.main()
