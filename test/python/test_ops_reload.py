"""SIGHUP reload of the --config file through the real binary: a limit
changes live with connections open (they stay, new ones follow the new
limit), the log level changes live, options that need a restart are named
in the log, and a broken file leaves the running configuration in force.
Thread and process mode.
"""

import json
import os
import shutil
import signal
import socket
import tempfile
import time
import unittest

from fsrv_server import FsrvServer


def ping(sock):
    """PING on an open file-protocol connection; the decoded reply."""
    sock.sendall(b"PING\r\n\r\n")
    data = b""
    while not data.endswith(b"\r\n\r\n"):
        chunk = sock.recv(4096)
        if not chunk:
            return None
        data += chunk
    return json.loads(data)


class ReloadTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="fsrv-reload-")
        self.config = os.path.join(self.dir, "fsrv.toml")
        self.root = os.path.join(self.dir, "root")
        os.makedirs(self.root)
        self.socks = []

    def tearDown(self):
        for s in self.socks:
            s.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def write_config(self, max_conns, extra=""):
        with open(self.config + ".tmp", "w") as f:
            f.write('root = "%s"\nmax-conns = %d\ngrace = 2\n%s'
                    '[services.file]\nlisten = ["127.0.0.1:0"]\n'
                    % (self.root, max_conns, extra))
        os.rename(self.config + ".tmp", self.config)

    def start(self, *args):
        # The file names host, log level and listener: not on the command
        # line, so a reload reads them from the file.
        self.srv = FsrvServer((), "--config", self.config, *args, root=self.root,
                              log_level=None, expect=1, host=None)
        self.addCleanup(self.srv.stop)
        self.proc = self.srv.proc
        self.port = self.srv.port("file")

    def log(self):
        return self.srv.log_text()

    def wait_log(self, text, count=1, timeout=10):
        if not self.srv.wait_log(text, count, timeout):
            self.fail("no %r (x%d) in the log:\n%s" % (text, count, self.log()))

    def connect(self):
        """A new connection: its PING reply ("OK" or the busy ERROR)."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        self.socks.append(s)
        reply = ping(s)
        return s, reply

    def hold(self, n):
        for _ in range(n):
            _, reply = self.connect()
            self.assertEqual(reply["status"], "OK", reply)

    def refused(self):
        s, reply = self.connect()
        self.socks.remove(s)
        s.close()
        return reply is None or (reply["status"] == "ERROR" and "busy" in reply["data"])

    def reload(self, count):
        self.proc.send_signal(signal.SIGHUP)
        self.wait_log("SIGHUP:", count)

    def check_limit_changes_live(self, *args):
        self.write_config(3)
        self.start(*args)
        self.hold(3)
        self.assertTrue(self.refused())
        # Raise the limit: the three stay, two more get in, the sixth not.
        self.write_config(5)
        self.reload(1)
        self.wait_log("configuration reloaded: max-conns 5")
        self.hold(2)
        self.assertTrue(self.refused())
        for s in self.socks:
            self.assertEqual(ping(s)["status"], "OK")
        # Lower it below what is open: nobody is dropped, newcomers wait.
        self.write_config(2)
        self.reload(2)
        self.wait_log("configuration reloaded: max-conns 2")
        self.assertTrue(self.refused())
        for s in self.socks:
            self.assertEqual(ping(s)["status"], "OK")
        for s in self.socks[3:]:
            s.close()
        self.socks = self.socks[:3]
        while len(self.socks) > 1:
            self.socks.pop().close()
        # One open now, limit 2: one more fits again.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            s, reply = self.connect()
            if reply and reply["status"] == "OK":
                break
            self.socks.remove(s)
            s.close()
            time.sleep(0.1)
        else:
            self.fail("the lowered limit never let a client in")

    def test_max_conns_changes_live_with_connections_open_thread_mode(self):
        self.check_limit_changes_live()

    def test_max_conns_changes_live_with_connections_open_process_mode(self):
        self.check_limit_changes_live("--mode", "process", "--workers", "2")

    def test_log_level_changes_live_and_restart_only_options_are_named(self):
        self.write_config(10)
        self.start()
        self.proc.send_signal(signal.SIGUSR1)
        self.wait_log("log files reopened", 1)
        self.write_config(10, 'log-level = "warn"\nworkers = 7\n'
                          '[services.tftp]\nretries = 9\n')
        self.reload(1)
        self.wait_log("workers changed: it takes effect after a restart")
        self.wait_log("tftp-retries changed: it takes effect after a restart")
        # At warn, the info line of SIGUSR1 is no longer written.
        self.proc.send_signal(signal.SIGUSR1)
        time.sleep(0.5)
        self.proc.send_signal(signal.SIGHUP)  # a warn line to wait for
        self.wait_log("workers changed", 2)
        self.assertEqual(self.log().count("log files reopened"), 1)

    def test_a_broken_file_keeps_the_running_configuration(self):
        self.write_config(2)
        self.start()
        with open(self.config, "a") as f:
            f.write("max-conns = = 9\n")
        self.reload(1)
        self.wait_log("the running configuration stays")
        self.assertIn(self.config + ":", self.log())
        self.hold(2)
        self.assertTrue(self.refused())
        self.assertIsNone(self.proc.poll())


if __name__ == "__main__":
    unittest.main()
