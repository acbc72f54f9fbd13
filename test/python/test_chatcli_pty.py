"""bin/chatcli driven through a pseudo-terminal: the prompt shows
the logged-in user, a send/inbox round trip prints readable lines, tab
completes command names, the up arrow recalls history (libedit).
Run with `python3 -m unittest` (make test-run sets FSRV_BIN).
"""

import os
import pty
import re
import select
import signal
import subprocess
import time
import unittest

from fsrv_server import BIN, FsrvServer


class Terminal:
    """A program on the slave side of a pty; expect() reads the master."""

    def __init__(self, argv):
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                                     start_new_session=True, env=dict(os.environ, TERM="xterm"))
        os.close(slave)
        self.seen = b""

    def send(self, data):
        os.write(self.master, data)

    def expect(self, pattern, timeout=10):
        """Reads until `pattern` (regex on bytes) matches the output seen since
        the last match; returns the match."""
        rx = re.compile(pattern)
        deadline = time.time() + timeout
        while True:
            m = rx.search(self.seen)
            if m:
                self.seen = self.seen[m.end():]
                return m
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError("no %r in %r" % (pattern, self.seen))
            r, _, _ = select.select([self.master], [], [], left)
            if r:
                try:
                    self.seen += os.read(self.master, 4096)
                except OSError:  # EIO: the program exited
                    raise AssertionError("exited before %r; output %r" % (pattern, self.seen))

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)
        os.close(self.master)


class ChatcliPty(unittest.TestCase):
    def setUp(self):
        self.server = FsrvServer(["chat"], log_level="error", prefix="fsrv-chatcli-")
        self.addCleanup(self.server.stop)
        self.port = self.server.port("chat")

    def chatcli(self):
        t = Terminal([os.path.join(BIN, "chatcli"), "-H", "127.0.0.1", "-p", str(self.port)])
        self.addCleanup(t.close)
        return t

    def test_prompt_send_inbox_completion_history(self):
        t = self.chatcli()
        t.expect(rb"connected to 127\.0\.0\.1:\d+")
        t.expect(rb"chat> ")
        t.send(b"auth messi salah\r")
        t.expect(rb"error: Password Salah")
        t.expect(rb"\nchat> ")
        t.send(b"auth messi surabaya\r")
        t.expect(rb"logged in as messi")
        t.expect(rb"messi@chat> ")
        t.send(b"send messi halo  dari pty\r")
        t.expect(rb"Message Sent")
        t.send(b"inbox\r")
        t.expect(rb"\[\d\d:\d\d:\d\d\] Lionel Messi \(messi\): halo  dari pty")
        t.send(b"inbox\r")
        t.expect(rb"no new messages")
        # Tab completes the command name.
        t.send(b"lis\t\r")
        t.expect(rb"online \(1\): messi")
        # Up arrow recalls the previous line (listuser) from the history.
        t.send(b"\x1b[A\r")
        t.expect(rb"online \(1\): messi")
        t.send(b"send ronaldo hi\r")
        t.expect(rb"error: User Tidak Ditemukan")
        t.send(b"logout\r")
        t.expect(rb"Terima Kash Telah Menggunakan Service Ini")
        t.expect(rb"\nchat> ")
        t.send(b"inbox\r")
        t.expect(rb"not logged in")
        t.send(b"quit\r")
        self.assertEqual(t.proc.wait(timeout=10), 0)

    def test_two_users_talk_through_two_terminals(self):
        a, b = self.chatcli(), self.chatcli()
        a.send(b"auth henderson surabaya\r")
        a.expect(rb"henderson@chat> ")
        b.send(b"auth lineker surabaya\r")
        b.expect(rb"lineker@chat> ")
        a.send(b"send lineker apa kabar\r")
        a.expect(rb"Message Sent")
        b.send(b"inbox\r")
        b.expect(rb"Jordan Henderson \(henderson\): apa kabar")
        b.send(b"listuser\r")
        b.expect(rb"online \(2\): henderson lineker")


if __name__ == "__main__":
    unittest.main()
