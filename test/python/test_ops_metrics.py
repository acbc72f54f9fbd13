"""GET /metrics (Prometheus text format 0.0.4) through the real binary:
scraped while a load of file-protocol and HTTP requests runs, every scrape
is well-formed and its counters never go down; once the load is over the
counters equal what the load did, in thread mode and in process mode
(where any worker renders the sum over every process).
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import unittest
import urllib.request

from fsrv_server import FsrvServer, file_request

BIN = os.environ.get("FSRV_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "bin"))

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? '
                    r'(-?[0-9.eE+-]+|NaN|[+-]Inf)$')


def parse(text):
    """{(name, labels): value}; asserts the 0.0.4 shape on the way."""
    samples = {}
    typed = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in ("counter", "gauge", "histogram"), line
            assert name not in typed, "TYPE twice: " + name
            typed[name] = kind
            continue
        m = SAMPLE.match(line)
        assert m, "bad sample line: %r" % line
        name = m.group(1)
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        if name not in typed and typed.get(family) == "histogram":
            name = family + name[len(family):]
            assert (m.group(2) or "").find("le=") >= 0 or not name.endswith("_bucket"), line
        else:
            assert name in typed, "sample before its TYPE: " + line
        if typed.get(name) == "counter":
            assert name.endswith("_total"), "counter without _total: " + name
        samples[(name, m.group(2) or "")] = float(m.group(3))
    assert text.endswith("\n")
    return samples


class MetricsTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="fsrv-metrics-")
        self.root = os.path.join(self.dir, "root")
        os.makedirs(self.root)
        with open(os.path.join(self.root, "data.bin"), "wb") as f:
            f.write(os.urandom(30000))

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, *args):
        srv = FsrvServer(["http", "file"], "--grace", "2", *args, root=self.root,
                         log_level=None)
        self.addCleanup(srv.stop)
        return srv.ports

    def scrape(self, port):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
            self.assertEqual(r.headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8")
            return parse(r.read().decode())

    def file_get(self, port, name):
        return json.loads(file_request(port, "GET " + name, timeout=20))["status"]

    def check(self, mode, *args):
        ports = self.start(*args)
        gets, misses, http_gets, clients = 25, 5, 20, 4
        errors = []

        def client():
            try:
                for _ in range(gets):
                    if self.file_get(ports["file"], "data.bin") != "OK":
                        errors.append("GET failed")
                for _ in range(misses):
                    if self.file_get(ports["file"], "absent.bin") != "ERROR":
                        errors.append("missing file not an ERROR")
                for _ in range(http_gets):
                    with urllib.request.urlopen("http://127.0.0.1:%d/data.bin" % ports["http"],
                                                timeout=20) as r:
                        if len(r.read()) != 30000:
                            errors.append("short http body")
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))

        threads = [threading.Thread(target=client) for _ in range(clients)]
        for t in threads:
            t.start()
        # Scrape while the load runs: well-formed, and no counter goes down.
        previous = {}
        scrapes = 0
        while any(t.is_alive() for t in threads) or scrapes < 3:
            now = self.scrape(ports["http"])
            scrapes += 1
            for key, value in previous.items():
                if key[0].endswith("_total"):
                    self.assertGreaterEqual(now.get(key, 0), value, key)
            previous = now
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        m = self.scrape(ports["http"])
        file_get = lambda result: m[("fsrv_requests_total",
                                     '{service="file",verb="GET",result="%s"}' % result)]
        self.assertEqual(file_get("ok"), clients * gets)
        self.assertEqual(file_get("failed"), clients * misses)
        self.assertEqual(m[("fsrv_service_connections_total", '{service="file"}')],
                         clients * (gets + misses))
        # Every /metrics scrape but this one was answered 200 and counted too.
        self.assertGreaterEqual(m[("fsrv_responses_total", '{service="http",code="200"}')],
                                clients * http_gets + scrapes)
        self.assertGreater(m[("fsrv_sent_bytes_total", "")],
                           clients * (gets * 40000 + http_gets * 30000))
        self.assertEqual(m[("fsrv_connections_refused_total", "")], 0)
        # The file service's duration histogram counted every request once,
        # its buckets cumulative, +Inf equal to the count.
        buckets = [(float(re.search(r'le="([^"]+)"', k[1]).group(1)), v) for k, v in m.items()
                   if k[0] == "fsrv_request_duration_seconds_bucket" and 'service="file"' in k[1]]
        buckets.sort()
        self.assertEqual(buckets[-1][0], float("inf"))
        self.assertEqual([v for _, v in buckets], sorted(v for _, v in buckets))
        count = m[("fsrv_request_duration_seconds_count", '{service="file"}')]
        self.assertEqual(count, clients * (gets + misses))
        self.assertEqual(buckets[-1][1], count)
        self.assertGreater(m[("fsrv_request_duration_seconds_sum", '{service="file"}')], 0)
        self.assertGreaterEqual(m[("fsrv_request_duration_seconds_count", '{service="http"}')],
                                clients * http_gets)
        self.assertGreaterEqual(m[("fsrv_connections_open", "")], 1)  # this scrape
        # The executor queue depth is a gauge over every process, back to 0
        # once the load is over (the unit test ExecutorGauge sees it rise).
        self.assertEqual(m[("fsrv_executor_queue_depth", "")], 0)
        version = subprocess.run([os.path.join(BIN, "fileserver"), "--version"],
                                 capture_output=True, text=True).stdout.split()[1]
        build = [k for k in m if k[0] == "fsrv_build_info"]
        self.assertEqual(len(build), 1)
        self.assertIn('version="%s"' % version, build[0][1])
        self.assertIn('mode="%s"' % mode, build[0][1])

    def test_scrape_under_load_thread_mode(self):
        self.check("thread")

    def test_scrape_under_load_process_mode_sums_the_workers(self):
        self.check("process", "--mode", "process", "--workers", "3")


if __name__ == "__main__":
    unittest.main()
