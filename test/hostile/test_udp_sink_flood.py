"""udp-sink under a flood of source ports from one address.

Before: every new source port opened a file, whatever --udp-max-senders
said (evicted senders' files stayed open while committing): 20,000 ports of
one address took the server to its fd limit, 80,000 files, a log line per
file. Now open files stay under --udp-max-senders (+8 committing), one
address may start --udp-address-files files and store --udp-address-bytes
per --udp-address-window, drops are counted in STATS and the log lines are
rate-limited.
"""

import os
import socket
import threading
import time
import unittest

from hostile_support import HostileServer, http_get, report

PORTS = 2000
MAX_SENDERS = 8
ADDRESS_FILES = 16
OLD_EXTRA = [os.environ["HOSTILE_OLD_EXTRA"]] if os.environ.get("HOSTILE_OLD_EXTRA") else None


def fd_count(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return 0


class UdpSinkFlood(unittest.TestCase):
    MODE = "thread"

    def test_open_files_bounded_by_max_senders(self):
        self.flood("max-senders", OLD_EXTRA or ["--udp-address-files", 1 << 20], files_max=PORTS + 1)

    def test_many_source_ports_of_one_address(self):
        self.flood("quota", ["--udp-address-files", ADDRESS_FILES], files_max=ADDRESS_FILES + 1)

    def flood(self, name, extra, files_max):
        server = HostileServer(["udp-sink", "http", "file"], "--udp-max-senders", MAX_SENDERS,
                               "--udp-idle-ms", 300, *extra, mode=self.MODE)
        try:
            pids = [server.proc.pid]
            time.sleep(0.3)
            import subprocess
            pids += [int(p) for p in subprocess.run(["pgrep", "-P", str(server.proc.pid)],
                                                    capture_output=True, text=True).stdout.split()]
            base = max(fd_count(p) for p in pids)
            peak = [base]
            stop = threading.Event()

            def watch():
                while not stop.is_set():
                    peak[0] = max(peak[0], max(fd_count(p) for p in pids))
                    time.sleep(0.005)

            watcher = threading.Thread(target=watch)
            watcher.start()
            port = server.port("udp-sink")
            t0 = time.time()
            http_worst = 0.0
            for i in range(PORTS):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind(("127.0.0.1", 0))
                s.sendto(b"x" * 100, ("127.0.0.1", port))
                s.close()
                if i % 250 == 0:
                    h0 = time.time()
                    self.assertTrue(http_get(server.port("http")).startswith("HTTP/1.1 200"))
                    http_worst = max(http_worst, time.time() - h0)
            flood_s = time.time() - t0
            # Another address still gets its file.
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.2", 0))
            s.sendto(b"other", ("127.0.0.1", port))
            other_port = s.getsockname()[1]
            s.close()
            time.sleep(1.5)
            stop.set()
            watcher.join()
            files = [f for f in os.listdir(server.root) if f.startswith("udp-")]
            other = [f for f in files if f.startswith("udp-127.0.0.2-%d-" % other_port)]
            stats = server.stats().get("services", {}).get("udp-sink", {})
            log_lines = sum("udp-sink" in l for l in server.log_text().splitlines())
            report("udp-sink-flood/%s/%s" % (name, self.MODE), ports=PORTS, flood_s="%.1f" % flood_s,
                   fd_base=base, fd_peak=peak[0], files=len(files),
                   quota_dropped=stats.get("quota_dropped"),
                   senders_full_dropped=stats.get("senders_full_dropped"),
                   log_lines=log_lines, http_worst_ms="%.0f" % (http_worst * 1000),
                   rss_kb=server.rss_kb())
            self.assertLessEqual(peak[0] - base, MAX_SENDERS + 8 + 4)
            self.assertLessEqual(len(files), files_max)
            if files_max <= ADDRESS_FILES + 1:
                # The quota left the table room for another address's file.
                self.assertEqual(len(other), 1)
                self.assertGreater(stats.get("quota_dropped", 0), 0)
            self.assertLess(log_lines, 60)
        finally:
            server.stop()


class UdpSinkFloodProcessMode(UdpSinkFlood):
    MODE = "process"


if __name__ == "__main__":
    unittest.main()
