"""Password guessing on the chat: one address that keeps failing is refused
at once after LoginThrottle's limit (no Argon2id verification is run for
it), while another address still logs in; the counter in STATS shows it."""

import json
import time
import unittest

from hostile_support import HostileServer, connect, recv_until, report

LIMIT = 10  # LoginThrottle::kMaxFailures


def auth(port, password, source=None):
    """One course-style auth on a new connection: the reply object."""
    with connect(port, source) as s:
        s.sendall(("auth messi %s \r\n" % password).encode())
        return json.loads(recv_until(s, b"\r\n\r\n").decode())


class ChatLoginFlood(unittest.TestCase):
    def check(self, mode, workers):
        server = HostileServer(["chat", "file"], "--workers", workers, mode=mode)
        try:
            port = server.port("chat")
            # Each process keeps its own table, so one address has at most
            # LIMIT failures per worker and window verified.
            plain = [auth(port, "wrong%d" % i) for i in range(LIMIT * workers)]
            self.assertTrue(all(r["status"] == "ERROR" for r in plain), plain)
            t0 = time.time()
            later = [auth(port, "wrong") for _ in range(50)]
            took = time.time() - t0
            self.assertTrue(all(r["status"] == "ERROR" for r in later), later)
            verified = sum("too many failed logins" not in r["message"] for r in plain + later)
            self.assertLessEqual(verified, LIMIT * workers, "passwords verified past the limit")
            for r in later[-10:]:
                self.assertIn("too many failed logins", r["message"])
            # Even the right password waits out the window from this address...
            self.assertIn("too many failed logins", auth(port, "surabaya")["message"])
            # ...while another address logs in.
            other = auth(port, "surabaya", source="127.0.0.2")
            self.assertEqual(other["status"], "OK", other)
            throttled = server.stats()["services"]["chat"]["logins_throttled"]
            report("chat-login-flood-" + mode, attempts=len(plain) + len(later),
                   verified=verified, refused_ms_each="%.1f" % (1000 * took / len(later)),
                   throttled_in_stats=throttled)
            self.assertGreaterEqual(throttled, 10)
        finally:
            server.stop()

    def test_thread_mode(self):
        self.check("thread", 4)

    def test_process_mode(self):
        self.check("process", 2)


if __name__ == "__main__":
    unittest.main()
