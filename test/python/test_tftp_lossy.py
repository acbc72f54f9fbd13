"""The full lossy TFTP matrix (issue 11): atftp through LossyRelay (5% drop,
1% duplicate, 10% reorder, delays of a few ms, both directions, fixed
seeds), RRQ and WRQ, blksize 512 / 1468 / 65464, windowsize 1 / 16,
1 KB, 1 MB and 100 MB files, every transfer verified by sha256.

Runs only from `make test-tftp-lossy` (TFTP_LOSSY=1), after `make test` in
CI; budget 15 minutes on 2 shared cores. Our server runs with
`--tftp-timeout 0.05` (atftp sends no `timeout` option) and
`--tftp-retries 50` (see test_tftp.LossyTest: atftp re-ACKs a repeated
block only on its own 1 s timeout).

Which 100 MB cells fit. With window 1 every block is one round trip, and a
round trip loses its DATA or its ACK with p = 1 - 0.95^2 = 9.75%, each loss
costing one 50 ms retransmit timeout; the relay's holds and delays add
about 1.2 ms per round trip: ~6.1 ms per block. With window 16 a window
(16 DATA + 1 ACK) sees a loss with p = 1 - 0.95^17 = 58%, ~31 ms per window.
  100 MB at 512 B,   window 1:  204800 blocks x 6.1 ms = ~1250 s per direction
  100 MB at 1468 B,  window 1:   71430 blocks x 6.1 ms =  ~435 s
  100 MB at 512 B,   window 16:  12800 windows x 31 ms =  ~400 s
  100 MB at 1468 B,  window 16:   4465 windows x 31 ms =  ~140 s
  100 MB at 65464 B, window 1/16: 1602 blocks            =  ~10 s
So 100 MB runs at 65464 (both windows) and at 1468 with window 16; the
three cells that cannot fit run the largest size that does, ~60-80 s each
per direction: 512/1 at 5 MB, 512/16 at 16 MB, 1468/1 at 16 MB. Set
TFTP_LOSSY_FULL=1 to run all of them at 100 MB anyway (~1 hour).
TFTP_TEST_SERVER=hpa runs the matrix against tftpd-hpa (--retransmit 50 ms).
"""

import os
import shutil
import tempfile
import time
import unittest

from test_tftp import lossy_transfer
from tftp_support import HpaServer, OurServer, use_hpa

KB, MB = 1024, 1 << 20
FULL = os.environ.get("TFTP_LOSSY_FULL") == "1"
# One attempt's bound (seconds): a stalled client is killed, the cell fails.
ATTEMPT_TIMEOUT = 3600 if FULL else 240

# (blksize, windowsize) -> the largest size run when 100 MB cannot fit
# (see the module comment for the computed times).
REDUCED = {(512, 1): 5 * MB, (512, 16): 16 * MB, (1468, 1): 16 * MB}


def cells():
    out = []
    for size in (1 * KB, 1 * MB, 100 * MB):
        for bs in (512, 1468, 65464):
            for ws in (1, 16):
                real = size
                if size == 100 * MB and not FULL:
                    real = REDUCED.get((bs, ws), size)
                for d in ("get", "put"):
                    out.append((real, bs, ws, d))
    return out


@unittest.skipUnless(os.environ.get("TFTP_LOSSY") == "1", "make test-tftp-lossy")
class LossyMatrixTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.parent = tempfile.mkdtemp(prefix="fsrv-tftp-lossy-")
        root = os.path.join(cls.parent, "root")
        os.mkdir(root)
        if use_hpa():
            cls.server = HpaServer("--retransmit", "50000", root=root)
        else:
            cls.server = OurServer("--tftp-timeout", "0.05", "--tftp-retries", "50", root=root)
        cls.times = []
        cls.errors = []  # attempts that ended with a TFTP error

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()
        shutil.rmtree(cls.parent, ignore_errors=True)
        total = sum(t for *_, t in cls.times)
        print("\nlossy matrix: %d transfers, %.0f s" % (len(cls.times), total))
        for size, bs, ws, d, t in cls.times:
            print("  %-3s %9d B blksize %5d windowsize %2d  %6.1f s" % (d, size, bs, ws, t))
        print("attempts ended by a TFTP error (then retried): %d" % len(cls.errors))
        for line in cls.errors:
            print("  " + line)

    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="fsrv-tftp-lossy-work-")

    def tearDown(self):
        shutil.rmtree(self.work, ignore_errors=True)

    def test_matrix(self):
        for i, (size, bs, ws, d) in enumerate(cells()):
            with self.subTest(size=size, blksize=bs, windowsize=ws, direction=d):
                t0 = time.monotonic()
                try:
                    lossy_transfer(self, self.server, size, bs, ws, d, seed=5000 + i,
                                   timeout=ATTEMPT_TIMEOUT, log=self.errors)
                finally:
                    self.times.append((size, bs, ws, d, time.monotonic() - t0))
                    # Free the disk: 100 MB files pile up otherwise.
                    for folder in (self.work, self.server.root):
                        for n in os.listdir(folder):
                            if not n.startswith("."):
                                os.remove(os.path.join(folder, n))
                self.assertTrue(self.server.alive(), "server died")
        hidden = [n for n in os.listdir(self.server.root) if n.startswith(".")]
        self.assertEqual(hidden, [], "temporaries left")
        self.assertEqual(os.listdir(self.parent), ["root"])


if __name__ == "__main__":
    unittest.main()
