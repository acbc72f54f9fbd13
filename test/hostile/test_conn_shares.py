"""One listener's clients, or one address, cannot take every connection.

Before: --max-conns was one pool for every listener, so idle chat
connections (chat keeps them on purpose) up to --max-conns made file, http
and every other service answer "server busy" to everyone. Now each listener
has its share (some slots kept for it) and each source address a cap.
"""

import time
import unittest

from hostile_support import (HostileServer, closed_by_server, connect, file_ping, http_get,
                             report)

MAX_CONNS = 60
FLOOD = 200


def flood(port, n, source=None):
    """`n` idle connections to `port`; returns (held, refused) after they settle."""
    socks = []
    for _ in range(n):
        try:
            socks.append(connect(port, source))
        except OSError:
            pass
    time.sleep(1.0)
    held = [s for s in socks if not closed_by_server(s, 0)]
    for s in socks:
        if s not in held:
            s.close()
    return held, len(socks) - len(held)


class ListenerShares(unittest.TestCase):
    MODE = "thread"

    def test_idle_chat_flood_leaves_file_and_http_served(self):
        server = HostileServer(["chat", "file", "http"], "--max-conns", MAX_CONNS,
                               mode=self.MODE)
        held = []
        try:
            held, refused = flood(server.port("chat"), FLOOD)
            file_ok = sum(file_ping(server.port("file")) == "OK" for _ in range(10))
            http_ok = sum(http_get(server.port("http")).startswith("HTTP/1.1 200")
                          for _ in range(10))
            stats = server.stats()
            chat = stats.get("services", {}).get("chat", {}).get("connections", {})
            refused_share = chat.get("refused", {}).get("share", 0)
            report("listener-share/" + self.MODE, chat_flood=FLOOD, chat_held=len(held),
                   chat_refused=refused, chat_share=chat.get("share"),
                   refused_share=refused_share, file_ok="%d/10" % file_ok,
                   http_ok="%d/10" % http_ok)
            self.assertEqual(file_ok, 10)
            self.assertEqual(http_ok, 10)
            self.assertLess(len(held), MAX_CONNS)
            self.assertGreater(refused_share, 0)
        finally:
            for s in held:
                s.close()
            server.stop()

    def test_explicit_share_caps_its_listener(self):
        server = HostileServer(["chat=0,max-conns=5", "file"], mode=self.MODE)
        held = []
        try:
            held, refused = flood(server.port("chat"), 20)
            report("explicit-share/" + self.MODE, asked=5, held=len(held), refused=refused)
            self.assertEqual(len(held), 5)
            self.assertEqual(file_ping(server.port("file")), "OK")
        finally:
            for s in held:
                s.close()
            server.stop()

    def test_one_address_cannot_hold_more_than_its_cap(self):
        server = HostileServer(["chat", "file"], "--max-conns-per-address", 10,
                               mode=self.MODE)
        held = []
        try:
            # The attacker is 127.0.0.2; the other clients come from 127.0.0.1.
            held, refused = flood(server.port("chat"), 50, source="127.0.0.2")
            others = [connect(server.port("chat")) for _ in range(5)]
            time.sleep(0.5)
            others_held = sum(not closed_by_server(s, 0) for s in others)
            for s in others:
                s.close()
            file_ok = file_ping(server.port("file"))
            stats = server.stats()
            chat = stats["services"]["chat"]["connections"]
            report("per-address/" + self.MODE, flood=50, held=len(held), refused=refused,
                   other_address_held="%d/5" % others_held, file=file_ok,
                   refused_address=chat["refused"]["address"])
            self.assertEqual(len(held), 10)
            self.assertEqual(others_held, 5)
            self.assertEqual(file_ok, "OK")
            self.assertGreater(chat["refused"]["address"], 0)
        finally:
            for s in held:
                s.close()
            server.stop()

    def test_slots_come_back_when_connections_close(self):
        server = HostileServer(["chat=0,max-conns=5", "file"], mode=self.MODE)
        try:
            for round_ in range(3):
                held, _ = flood(server.port("chat"), 8)
                self.assertEqual(len(held), 5, "round %d" % round_)
                for s in held:
                    s.close()
                time.sleep(0.5)
        finally:
            server.stop()


class ListenerSharesProcessMode(ListenerShares):
    MODE = "process"


if __name__ == "__main__":
    unittest.main()
