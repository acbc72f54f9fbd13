"""Pool clients against file-marker and file-raw.

tools/marker_client_pool.py (seed 001's client_pool.py shape: bare commands,
READY, each 1 MiB chunk base64-encoded on its own, __END__) and
tools/raw_client_pool.py (seed 000's raw-bytes dialect) upload then download
N files in thread and process pools of 1 and 5, 10 MB and 100 MB (1 MB and
3 MB with FSRV_SMALL); the stored and the downloaded files must hash equal
to the originals. Server in thread mode for the whole grid and in process
mode for the 10 MB rows.
"""

import hashlib
import os
import shutil
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(HERE, "..", "..", "tools")
sys.path.insert(0, TOOLS)

import marker_client_pool  # noqa: E402
import raw_client_pool  # noqa: E402

from fsrv_server import FsrvServer

SMALL = bool(os.environ.get("FSRV_SMALL"))
SIZES = ["1000000B", "3000000B"] if SMALL else ["10MB", "100MB"]


class DialectServer(FsrvServer):
    """bin/fileserver with file-marker and file-raw listeners on free ports
    (test/python/fsrv_server.py)."""

    def __init__(self, *args):
        super().__init__(["file-marker", "file-raw"], *args, log_level="warn",
                         prefix="fsrv-dialects-")


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


class PoolTest(unittest.TestCase):
    MODE = ()
    SIZES = SIZES

    @classmethod
    def setUpClass(cls):
        cls.server = DialectServer(*cls.MODE)
        cls.work = tempfile.mkdtemp(prefix="fsrv-pool-client-")

    @classmethod
    def tearDownClass(cls):
        rc = cls.server.stop()
        shutil.rmtree(cls.work, ignore_errors=True)
        assert rc == 0, rc

    def run_pool(self, module, service, size, n, pool):
        port = self.server.ports[service]
        work = os.path.join(self.work, "%s-%s-%d-%s" % (service, size, n, pool))
        args = [size, str(n), pool, "--port", str(port), "--dir", work]
        self.assertEqual(module.main(["upload"] + args), 0)
        self.assertEqual(module.main(["download"] + args), 0)
        label = "%dB" % marker_client_pool.parse_size(size)
        for i in range(n):
            name = "%s_%d.bin" % (label, i)
            original = sha(os.path.join(work, name))
            self.assertEqual(sha(os.path.join(self.server.root, name)), original, name)
            self.assertEqual(sha(os.path.join(work, "downloads", name)), original, name)
            os.remove(os.path.join(self.server.root, name))
        shutil.rmtree(work)

    def grid(self, module, service):
        for size in self.SIZES:
            for pool in ("thread", "process"):
                for n in (1, 5):
                    with self.subTest(size=size, pool=pool, n=n):
                        self.run_pool(module, service, size, n, pool)

    def test_file_marker_seed_client_pool(self):
        self.grid(marker_client_pool, "file-marker")

    def test_file_raw_client_pool(self):
        self.grid(raw_client_pool, "file-raw")


class PoolProcessModeTest(PoolTest):
    MODE = ("--mode", "process", "--workers", "2")
    SIZES = SIZES[:1]


if __name__ == "__main__":
    unittest.main()
