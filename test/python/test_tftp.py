"""The TFTP service from outside, with real clients: curl,
Debian's tftp-hpa and atftp, plus raw packets for what no client sends.
Every transfer is verified by sha256 against the file on the other side.

Each class starts its own bin/fileserver (thread mode unless said) with a
temporary root. TFTP_TEST_SERVER=hpa runs the client and lossy classes
against Debian's tftpd-hpa instead (to validate the tests themselves; the
classes that need our options are skipped then). The full lossy matrix with
100 MB files is test_tftp_lossy.py (make test-tftp-lossy).
"""

import os
import shutil
import subprocess
import tempfile
import time
import unittest

from tftp_relay import LossyRelay
from tftp_support import (OP_ACK, OP_DATA, OP_ERROR, OP_OACK, OP_RRQ, OP_WRQ, HpaServer,
                          OurServer, Raw, ack, atftp_cmd, atftp_get, atftp_put, curl_get,
                          curl_put, data, hpa_get, hpa_put, make_file, raw_get, request,
                          server_in_parent, sha256_file, use_hpa)

KB, MB = 1024, 1 << 20
# Over 65535 blocks of 512 bytes (32 MiB), so block numbers roll over.
ROLLOVER_SIZE = 33 * MB + 123
# Text with bare LF, CRLF, bare CR, CR NUL-like bytes and a CR at every
# 512-byte boundary region, so netascii's CR escapes straddle blocks.
NETASCII_TEXT = b"".join(
    b"line %04d\n" % i + (b"carriage\rreturn\r\n" if i % 3 == 0 else b"") +
    (b"\r" if i % 7 == 0 else b"") + (b"nul\0byte\n" if i % 11 == 0 else b"")
    for i in range(400))


def start_server(*args, **kw):
    """Our server, or tftpd-hpa when TFTP_TEST_SERVER=hpa."""
    if use_hpa():
        return HpaServer("--retransmit", "50000", **kw)
    if "--tftp-timeout" not in args:
        args = ("--tftp-timeout", "0.05") + tuple(args)
    return OurServer(*args, **kw)


def need_ours(test):
    return unittest.skipIf(use_hpa(), "needs our server's options")(test)


class ServerCase(unittest.TestCase):
    """A server per class; `self.work` is a scratch folder per test."""

    server_args = ()

    @classmethod
    def setUpClass(cls):
        # The root sits alone in a parent folder: anything written outside
        # the root shows up as a sibling.
        cls.parent, cls.server = server_in_parent(
            "fsrv-tftp-parent-", lambda root: start_server(*cls.server_args, root=root))

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()
        shutil.rmtree(cls.parent, ignore_errors=True)

    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="fsrv-tftp-work-")

    def tearDown(self):
        shutil.rmtree(self.work, ignore_errors=True)
        self.assertTrue(self.server.alive(), "server died")
        self.assertEqual(os.listdir(self.parent), ["root"], "something written outside the root")

    def put_root(self, name, size, seed):
        """A file in the server's root; returns its sha256."""
        path = os.path.join(self.server.root, name)
        digest = make_file(path, size, seed)
        os.chmod(path, 0o666)  # tftpd-hpa serves world-readable files only
        return digest

    def local(self, name, size=None, seed=0, content=None):
        path = os.path.join(self.work, name)
        if content is not None:
            with open(path, "wb") as f:
                f.write(content)
            return path
        make_file(path, size, seed)
        return path

    def root_path(self, name):
        return os.path.join(self.server.root, name)

    def assert_same(self, a, b, msg=""):
        self.assertTrue(os.path.exists(a), "%s missing %s" % (a, msg))
        self.assertTrue(os.path.exists(b), "%s missing %s" % (b, msg))
        self.assertEqual(os.path.getsize(a), os.path.getsize(b), msg)
        self.assertEqual(sha256_file(a), sha256_file(b), msg)

    def assert_no_temporaries(self):
        hidden = [n for n in os.listdir(self.server.root) if n.startswith(".")]
        self.assertEqual(hidden, [], "temporaries left in the root")


class ClientsTest(ServerCase):
    """curl, tftp-hpa and atftp unchanged against the server, loss-free."""

    # Loss-free, so nothing needs retransmitting; a 3 s interval keeps a
    # client slowed by a loaded machine (20 at once below, beside the other
    # suites) from receiving a second OACK, on which atftp 0.8 aborts
    # ("tftp: unexpected OACK"; seen with the 1 s default at load 6).
    server_args = ("--tftp-timeout", "3")

    def test_curl_get_and_put(self):
        # Not size 0: curl 7.88 fails any empty TFTP download ("(71)
        # getpeername() failed"), whichever server; atftp checks it below.
        for size in (1, 511, 512, 1 * KB, 1 * MB + 7):
            name = "curl-%d.bin" % size
            self.put_root(name, size, size)
            out = os.path.join(self.work, name)
            rc, text = curl_get(self.server.port, name, out)
            self.assertEqual(rc, 0, text)
            self.assert_same(out, self.root_path(name), "curl get %d" % size)
            up = "curl-up-%d.bin" % size
            rc, text = curl_put(self.server.port, out, up)
            self.assertEqual(rc, 0, text)
            self.assert_same(out, self.root_path(up), "curl put %d" % size)
        self.assert_no_temporaries()

    def test_empty_file_both_ways(self):
        self.put_root("empty.bin", 0, 0)
        out = os.path.join(self.work, "empty.bin")
        rc, text = atftp_get(self.server.port, "empty.bin", out)
        self.assertEqual(rc, 0, text)
        self.assertEqual(os.path.getsize(out), 0)
        rc, text = atftp_put(self.server.port, out, "empty-up.bin")
        self.assertEqual(rc, 0, text)
        self.assertEqual(os.path.getsize(self.root_path("empty-up.bin")), 0)

    def test_curl_blksizes(self):
        self.put_root("cb.bin", 300 * KB + 5, 3)
        for bs in (512, 1468, 65464):
            out = os.path.join(self.work, "cb-%d" % bs)
            rc, text = curl_get(self.server.port, "cb.bin", out, blksize=bs)
            self.assertEqual(rc, 0, text)
            self.assert_same(out, self.root_path("cb.bin"), "curl get blksize %d" % bs)
            rc, text = curl_put(self.server.port, out, "cb-up-%d.bin" % bs, blksize=bs)
            self.assertEqual(rc, 0, text)
            self.assert_same(out, self.root_path("cb-up-%d.bin" % bs), "put blksize %d" % bs)

    def test_curl_missing_file_is_tftp_error(self):
        rc, text = curl_get(self.server.port, "no-such-file", os.path.join(self.work, "x"))
        self.assertEqual(rc, 68, text)  # curl: TFTP file not found

    def test_hpa_netascii_text_arrives_identical(self):
        src = self.local("text.txt", content=NETASCII_TEXT)
        shutil.copy(src, self.root_path("text.txt"))
        os.chmod(self.root_path("text.txt"), 0o666)
        out = os.path.join(self.work, "got.txt")
        rc, text = hpa_get(self.server.port, "text.txt", out, binary=False)
        self.assertEqual(rc, 0, text)
        self.assert_same(out, src, "netascii get")
        rc, text = hpa_put(self.server.port, src, "text-up.txt", binary=False)
        self.assertEqual(rc, 0, text)
        self.assert_same(self.root_path("text-up.txt"), src, "netascii put")

    def test_hpa_binary_get_and_put(self):
        self.put_root("hb.bin", 200 * KB + 3, 4)
        out = os.path.join(self.work, "hb.bin")
        rc, text = hpa_get(self.server.port, "hb.bin", out, binary=True)
        self.assertEqual(rc, 0, text)
        self.assert_same(out, self.root_path("hb.bin"), "tftp-hpa binary get")
        rc, text = hpa_put(self.server.port, out, "hb-up.bin", binary=True)
        self.assertEqual(rc, 0, text)
        self.assert_same(out, self.root_path("hb-up.bin"), "tftp-hpa binary put")

    def test_atftp_blksize_windowsize(self):
        self.put_root("at.bin", 1 * MB + 11, 5)
        for bs, ws in ((512, None), (512, 16), (1468, 16), (65464, 1), (65464, 16)):
            tag = "bs %s ws %s" % (bs, ws)
            out = os.path.join(self.work, "at-%s-%s" % (bs, ws))
            rc, text = atftp_get(self.server.port, "at.bin", out, bs, ws)
            self.assertEqual(rc, 0, tag + text)
            self.assert_same(out, self.root_path("at.bin"), "atftp get " + tag)
            up = "at-up-%s-%s.bin" % (bs, ws)
            rc, text = atftp_put(self.server.port, out, up, bs, ws)
            self.assertEqual(rc, 0, tag + text)
            self.assert_same(out, self.root_path(up), "atftp put " + tag)
        self.assert_no_temporaries()

    def test_put_replaces_existing_file(self):
        self.put_root("rep.bin", 5000, 6)
        src = self.local("new.bin", 3000, 7)
        rc, text = curl_put(self.server.port, src, "rep.bin")
        self.assertEqual(rc, 0, text)
        self.assert_same(src, self.root_path("rep.bin"))

    def test_rollover_past_65535_blocks_both_directions(self):
        # 33 MiB at 512-byte blocks: 67585 blocks, the block number wraps.
        # curl, not atftp: atftp needs ~10 s each way for 67585 lock-step
        # blocks, curl ~2 s.
        self.put_root("big.bin", ROLLOVER_SIZE, 8)
        out = os.path.join(self.work, "big.bin")
        rc, text = curl_get(self.server.port, "big.bin", out, blksize=512, timeout=120)
        self.assertEqual(rc, 0, text)
        self.assert_same(out, self.root_path("big.bin"), "get past rollover")
        rc, text = curl_put(self.server.port, out, "big-up.bin", blksize=512, timeout=120)
        self.assertEqual(rc, 0, text)
        self.assert_same(out, self.root_path("big-up.bin"), "put past rollover")

    def test_twenty_simultaneous_mixed(self):
        procs = []
        expect = []  # (local path, root path)
        for i in range(20):
            size = (i + 1) * 37 * KB + i
            if i % 2 == 0:
                name = "cc-%d.bin" % i
                self.put_root(name, size, 100 + i)
                out = os.path.join(self.work, name)
                if i % 4 == 0:
                    cmd = ["curl", "-sS", "tftp://127.0.0.1:%d/%s" % (self.server.port, name),
                           "-o", out, "--tftp-blksize", "1468"]
                else:
                    cmd = atftp_cmd(True, self.server.port, name, out, 1468, 8)
                expect.append((out, self.root_path(name)))
            else:
                src = self.local("cu-%d.bin" % i, size, 200 + i)
                name = "cu-%d.bin" % i
                if i % 4 == 1:
                    cmd = ["curl", "-sS", "-T", src,
                           "tftp://127.0.0.1:%d/%s" % (self.server.port, name)]
                else:
                    cmd = atftp_cmd(False, self.server.port, name, src, 65464, 4)
                expect.append((src, self.root_path(name)))
            procs.append((cmd, subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                                stderr=subprocess.STDOUT)))
        for cmd, p in procs:
            out, _ = p.communicate(timeout=120)
            self.assertEqual(p.returncode, 0, "%s: %s" % (" ".join(cmd), out))
        for a, b in expect:
            self.assert_same(a, b, "concurrent")
        self.assert_no_temporaries()


# Lossy subset: (size, blksize, windowsize, direction). 1 KB at every block
# and window size both ways, 1 MB where a window or a large block keeps the
# number of round trips (and so of 50 ms loss timeouts) small, ~10 s in
# all. Not here: 1 MB RRQ at window 1 and blksize 512/1468 (2048/715 lock-step
# blocks: atftp's lost re-ACK, see LOSSY_ATTEMPTS, ends most attempts with
# ERROR 0 against a fixed retransmit interval) and 1 MB WRQ at 512/1 (13 s);
# the full matrix (1 MB and 100 MB at every size) is test_tftp_lossy.py.
LOSSY_SUBSET = [(1 * KB, bs, ws, d) for bs in (512, 1468, 65464) for ws in (1, 16)
                for d in ("get", "put")] + [
    (1 * MB, 512, 16, "get"), (1 * MB, 512, 16, "put"), (1 * MB, 1468, 1, "put"),
    (1 * MB, 1468, 16, "get"), (1 * MB, 1468, 16, "put"),
    (1 * MB, 65464, 1, "get"), (1 * MB, 65464, 1, "put"),
    (1 * MB, 65464, 16, "get"), (1 * MB, 65464, 16, "put"),
]


# Attempts per lossy cell. A failed attempt is allowed only when it ended
# with a TFTP ERROR packet, from either side, seen by the relay (the issue:
# "completes or fails with a TFTP error, never silently wrong"); the cell
# then runs again with the next seed. Why attempts fail, both atftp 0.8.0
# bugs: (1) when its ACK of an OACK is lost, the server's retransmitted
# OACK makes atftp abort ("tftp: unexpected OACK", ERROR to the server);
# (2) atftp re-ACKs a repeated DATA block only
# once ("got wrong block N, ignoring" afterwards) and every packet it
# receives restarts its own timeout, so when an ACK and its one re-ACK are
# both lost (p = 0.25% per block at 5% drop), a server that keeps
# retransmitting at a fixed interval shorter than atftp's timeout is never
# re-ACKed and ends with ERROR 0 after --tftp-retries.
LOSSY_ATTEMPTS = 5


def lossy_transfer(case, server, size, bs, ws, direction, seed, timeout=120, log=None):
    """One atftp transfer through a fresh LossyRelay, verified by sha256,
    up to LOSSY_ATTEMPTS times (see there). Returns the elapsed seconds of
    all attempts; appends one line per failed attempt to `log`."""
    name = "lossy-%d-%d-%d-%s.bin" % (size, bs, ws, direction)
    src = os.path.join(case.work, "src-" + name)
    digest = make_file(src, size, seed)
    if direction == "get":
        shutil.copy(src, os.path.join(server.root, name))
        os.chmod(os.path.join(server.root, name), 0o666)
    out = os.path.join(case.work, "out-" + name)
    total = 0.0
    failures = []
    for attempt in range(LOSSY_ATTEMPTS):
        with LossyRelay(server.port, seed=seed + 100000 * attempt) as relay:
            t0 = time.monotonic()
            if direction == "get":
                rc, text = atftp_get(relay.port, name, out, bs, ws if ws > 1 else None,
                                     timeout=timeout, client_timeout=1)
                got = out
            else:
                rc, text = atftp_put(relay.port, src, name, bs, ws if ws > 1 else None,
                                     timeout=timeout, client_timeout=1)
                got = os.path.join(server.root, name)
            elapsed = time.monotonic() - t0
            total += elapsed
            where = "%s %d B blksize %d windowsize %d attempt %d (%.1fs): %s" % (
                direction, size, bs, ws, attempt + 1, elapsed, relay.describe())
        if rc == 0:
            case.assertTrue(os.path.exists(got), where)
            case.assertEqual(sha256_file(got), digest, "WRONG CONTENT " + where)
            return total
        # Failed: the server's file must not be a wrong one (atomic upload).
        if direction == "put" and os.path.exists(got):
            case.assertEqual(sha256_file(got), digest, "wrong file after failure " + where)
            # The server committed the whole file; the client still failed.
            # tftpd-hpa does not dally after its final ACK (RFC 1350 sec. 6
            # only encourages it), so a lost final ACK leaves its client
            # timing out. atftp 0.8.0 in its default Sorcerer's Apprentice
            # mode (a DATA for every duplicate ACK) can send an empty DATA
            # n+1 after the short final block n when ACK n arrives twice,
            # then times out waiting for its ACK (seen at 100 MB, 65464/1).
            if log is not None:
                log.append("%s: client failed after the server committed the right file: %s"
                           % (where, " | ".join(text.strip().splitlines()[-2:])))
            return total
        tail = " | ".join(text.strip().splitlines()[-2:])
        # atftp's "unexpected OACK" abort is a TFTP-level failure even when
        # the relay dropped the ERROR it sends (seen in CI: errors 0).
        if relay.stats["errors"] == 0 and "unexpected OACK" not in text:
            case.fail("transfer failed without a TFTP error (rc %d) %s\n%s" % (
                rc, where, text[-500:]))
        failures.append("%s: %s" % (where, tail))
        if log is not None:
            log.append(failures[-1])
    case.fail("every attempt ended with a TFTP error:\n" + "\n".join(failures))


class LossyTest(ServerCase):
    """atftp through the lossy relay (5% drop, 1% dup, 10% reorder, delays)."""

    # 50 x 50 ms: longer than atftp's 1 s client timeout. atftp 0.8.0 answers
    # only the first duplicate of a DATA block ("got wrong block N, ignoring"
    # afterwards) and re-ACKs on its own timeout, so when its ACK is lost
    # twice the server must still be retransmitting a second later.
    server_args = ("--tftp-retries", "50")

    def test_lossy_subset(self):
        for i, (size, bs, ws, d) in enumerate(LOSSY_SUBSET):
            with self.subTest(size=size, blksize=bs, windowsize=ws, direction=d):
                lossy_transfer(self, self.server, size, bs, ws, d, seed=1000 + i)
        self.assert_no_temporaries()


def expect_error(case, r, code, what):
    got = r.recv(2.0)
    case.assertIsNotNone(got, "%s: no answer, expected ERROR %d" % (what, code))
    op, fields, _ = got
    case.assertEqual(op, OP_ERROR, "%s: expected ERROR %d, got %r" % (what, code, got))
    case.assertEqual(fields[0], code, "%s: %r" % (what, fields))
    return fields


@unittest.skipIf(use_hpa(), "our server's error contract")
class BadInputTest(ServerCase):
    """Raw packets no client sends; after each the server still serves a
    normal RRQ and nothing appears outside the root."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        path = os.path.join(cls.server.root, "ok.bin")
        cls.ok_digest = make_file(path, 3000, 9)
        with open(path, "rb") as f:
            cls.ok_bytes = f.read()

    def still_serving(self):
        got, _ = raw_get(self.server.port, "ok.bin")
        self.assertEqual(got, self.ok_bytes)

    def silence_or_error(self, pkt, code, what):
        """Send pkt to the main port; the answer must be ERROR `code` or
        nothing (dropped as unparsable). Returns the answer."""
        r = Raw(self.server.port)
        try:
            r.send(pkt)
            got = r.recv(0.5)
            if got is not None:
                self.assertEqual(got[0], OP_ERROR, "%s: %r" % (what, got))
                self.assertEqual(got[1][0], code, "%s: %r" % (what, got))
            return got
        finally:
            r.close()
            self.still_serving()

    def test_truncated_packets_dropped(self):
        for pkt in (b"", b"\x00", b"\x01"):
            r = Raw(self.server.port)
            r.send(pkt)
            self.assertIsNone(r.recv(0.3), "answer to %r" % pkt)
            r.close()
            self.still_serving()
        # A request cut inside the name or the mode: ERROR 4 or dropped.
        for pkt in (b"\x00\x01", b"\x00\x02", b"\x00\x01ok.bin", b"\x00\x01ok.bin\x00",
                    b"\x00\x01ok.bin\x00oct", b"\x00\x02x\x00octet"):
            self.silence_or_error(pkt, 4, "truncated %r" % pkt)

    def test_unknown_opcodes_error_4(self):
        for op in (0, 7, 9, 255, 0xFFFF):
            r = Raw(self.server.port)
            r.send(op.to_bytes(2, "big") + b"ok.bin\x00octet\x00")
            expect_error(self, r, 4, "opcode %d" % op)
            r.close()
        self.still_serving()

    def test_data_ack_error_on_main_port(self):
        # Not a request: an illegal operation on the main port, or dropped.
        for pkt in (data(1, b"x" * 10), ack(0), b"\x00\x05\x00\x01oops\x00"):
            got = self.silence_or_error(pkt, 4, "%r on main port" % pkt)
            if pkt.startswith(b"\x00\x05"):
                self.assertIsNone(got, "an ERROR must never be answered (RFC 1350 sec. 7)")

    def test_name_without_nul(self):
        self.silence_or_error(b"\x00\x01" + b"ok.bin", 4, "name without NUL")
        self.silence_or_error(b"\x00\x01" + b"a" * 600, 4, "long name without NUL")

    def test_bad_modes(self):
        for mode, code in ((b"mail", 4), (b"binary", 4), (b"", 4)):
            r = Raw(self.server.port)
            r.send(request(OP_RRQ, "ok.bin", mode=mode))
            expect_error(self, r, code, "mode %r" % mode)
            r.close()
        # Modes are case-insensitive (RFC 1350 sec. 5).
        r = Raw(self.server.port)
        r.send(request(OP_RRQ, "ok.bin", mode=b"OcTeT"))
        ans = r.recv()
        self.assertIsNotNone(ans)
        self.assertEqual(ans[0], OP_DATA, "mode OcTeT: %r" % (ans,))
        r.close()
        self.still_serving()

    def test_missing_and_forbidden_names(self):
        cases = [(OP_RRQ, "no-such.bin", 1), (OP_RRQ, "../etc/passwd", 2),
                 (OP_RRQ, ".hidden", 2), (OP_WRQ, "../x", 2), (OP_WRQ, "../../x", 2),
                 (OP_WRQ, ".hidden", 2), (OP_WRQ, "sub/../../x", 2)]
        for op, name, code in cases:
            r = Raw(self.server.port)
            r.send(request(op, name))
            expect_error(self, r, code, "%s %s" % ("RRQ" if op == OP_RRQ else "WRQ", name))
            r.close()
        self.still_serving()
        self.assertFalse(os.path.exists(os.path.join(self.parent, "x")))

    def test_absolute_name_stays_in_root(self):
        # /x is refused or written as x inside the root; never at /x.
        r = Raw(self.server.port)
        r.send(request(OP_WRQ, "/tftp-test-abs-%d" % os.getpid()))
        got = r.recv()
        if got and got[0] == OP_ACK:
            r.peer = got[2]
            r.send(data(1, b"abs"))
            r.recv()
        r.close()
        self.assertFalse(os.path.exists("/tftp-test-abs-%d" % os.getpid()))
        self.still_serving()

    def test_option_values(self):
        # (options, expected OACK or None when no option is acknowledged)
        cases = [
            ([("blksize", "7")], None),
            ([("blksize", "abc")], None),
            ([("blksize", "")], None),
            ([("blksize", "70000")], {"blksize": "65464"}),
            ([("blksize", "8")], {"blksize": "8"}),
            ([("timeout", "0")], None),
            ([("timeout", "256")], None),
            ([("timeout", "3")], {"timeout": "3"}),
            ([("windowsize", "0")], None),
            ([("windowsize", "65536")], None),
            ([("windowsize", "4")], {"windowsize": "4"}),
            ([("tsize", "0")], {"tsize": "3000"}),
            ([("BlkSize", "1024"), ("unknownopt", "1")], {"blksize": "1024"}),
        ]
        for options, oack in cases:
            r = Raw(self.server.port)
            r.send(request(OP_RRQ, "ok.bin", options=options))
            got = r.recv()
            self.assertIsNotNone(got, "options %r: no answer" % options)
            if oack is None:
                self.assertEqual(got[0], OP_DATA, "options %r: %r" % (options, got))
                self.assertEqual(got[1][0], 1)
                self.assertEqual(len(got[1][1]), 512, "options %r ignored: 512-byte block")
            else:
                self.assertEqual(got[0], OP_OACK, "options %r: %r" % (options, got))
                self.assertEqual(got[1], oack, "options %r" % options)
            # Give up on this transfer: an ERROR tells the server at once.
            r.send(b"\x00\x05\x00\x00done\x00", got[2])
            r.close()
        self.still_serving()

    def test_blksize_option_on_the_wire(self):
        got, oack = raw_get(self.server.port, "ok.bin", options=[("blksize", "1000")])
        self.assertEqual(oack, {"blksize": "1000"})
        self.assertEqual(got, self.ok_bytes)

    def test_ack_for_block_never_sent(self):
        r = Raw(self.server.port)
        try:
            r.send(request(OP_RRQ, "ok.bin"))
            got = r.recv()
            self.assertEqual(got[0], OP_DATA)
            self.assertEqual(got[1][0], 1)
            r.peer = got[2]
            r.send(ack(999))
            # Ignored (RFC 1350: only the ACK of the last block counts) or
            # ERROR 4; never a DATA block other than 1 (a retransmit).
            nxt = r.recv(0.5)
            if nxt is not None and nxt[0] == OP_ERROR:
                self.assertEqual(nxt[1][0], 4, repr(nxt))
            else:
                if nxt is not None:
                    self.assertEqual((nxt[0], nxt[1][0]), (OP_DATA, 1), repr(nxt))
                # The transfer goes on normally.
                out = bytearray(got[1][1])
                block = 1
                while True:
                    r.send(ack(block))
                    while True:
                        nxt = r.recv()
                        self.assertIsNotNone(nxt, "transfer stalled after bogus ACK")
                        if nxt[0] == OP_DATA and nxt[1][0] == block + 1:
                            break
                    block += 1
                    out += nxt[1][1]
                    if len(nxt[1][1]) < 512:
                        break
                r.send(ack(block))
                self.assertEqual(bytes(out), self.ok_bytes)
        finally:
            r.close()
        self.still_serving()

    def test_wrong_source_gets_error_5_and_transfer_continues(self):
        r = Raw(self.server.port)
        intruder = Raw(self.server.port)
        try:
            r.send(request(OP_RRQ, "ok.bin"))
            got = r.recv()
            self.assertEqual(got[0], OP_DATA)
            r.peer = got[2]
            intruder.send(ack(1), got[2])
            expect_error(self, intruder, 5, "packet from another port")
            # The real client is unaffected.
            r.send(ack(1))
            nxt = r.recv()
            while nxt is not None and nxt[0] == OP_DATA and nxt[1][0] == 1:
                nxt = r.recv()  # a retransmit of block 1 may be in flight
            self.assertIsNotNone(nxt)
            self.assertEqual((nxt[0], nxt[1][0]), (OP_DATA, 2), repr(nxt))
            r.send(b"\x00\x05\x00\x00done\x00")
        finally:
            r.close()
            intruder.close()
        self.still_serving()

    def test_netascii_on_the_wire(self):
        # RFC 1350 / RFC 764: LF -> CR LF, CR -> CR NUL.
        with open(self.root_path("na.txt"), "wb") as f:
            f.write(b"a\nb\rc\r\nd")
        r = Raw(self.server.port)
        r.send(request(OP_RRQ, "na.txt", mode=b"netascii"))
        ans = r.recv()
        r.close()
        self.assertEqual(ans[0], OP_DATA)
        self.assertEqual(ans[1], (1, b"a\r\nb\r\0c\r\0\r\nd"))

    def test_garbage_flood_keeps_serving(self):
        import random
        rnd = random.Random(12)
        r = Raw(self.server.port)
        for _ in range(300):
            r.send(bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 40))))
        r.close()
        self.still_serving()
        st = self.server.stats()
        self.assertGreater(st["bad_packets"], 0, st)


@unittest.skipIf(use_hpa(), "our server's options")
class AbandonedUploadTest(ServerCase):
    """--tftp-timeout 0.2 --tftp-retries 2: a WRQ whose client goes silent."""

    server_args = ("--tftp-timeout", "0.2", "--tftp-retries", "2")

    def test_abandoned_wrq_keeps_old_file(self):
        old = self.put_root("keep.bin", 10000, 10)
        before = self.server.stats()
        r = Raw(self.server.port)
        r.send(request(OP_WRQ, "keep.bin"))
        got = r.recv()
        self.assertEqual((got[0], got[1]), (OP_ACK, 0), repr(got))
        r.peer = got[2]
        r.send(data(1, b"N" * 512))
        r.send(data(2, b"N" * 512))
        # The server retransmits its last ACK `retries` times, then gives up.
        acks = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.5:
            got = r.recv(0.3)
            if got:
                acks.append((got[0], got[1]))
        r.close()
        self.assertIn((OP_ACK, 2), acks)
        self.assertLessEqual(acks.count((OP_ACK, 2)), 1 + 2 + 1, acks)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and any(
                n.startswith(".") for n in os.listdir(self.server.root)):
            time.sleep(0.05)
        self.assert_no_temporaries()
        self.assertEqual(sha256_file(self.root_path("keep.bin")), old)
        after = self.server.stats()
        self.assertEqual(after["wrq"]["failed"], before["wrq"]["failed"] + 1, after)
        self.assertGreaterEqual(after["retransmits"], before["retransmits"] + 2, after)
        # A later upload of the same name works.
        src = self.local("n.bin", 700, 11)
        rc, text = curl_put(self.server.port, src, "keep.bin")
        self.assertEqual(rc, 0, text)
        self.assert_same(src, self.root_path("keep.bin"))

    def test_abandoned_rrq_gives_up(self):
        # Our server probes the window's tail at twice the round trip,
        # doubling, inside each --tftp-timeout period (docs/services/tftp.md),
        # so block 1 is sent several times per period; after 2 periods of
        # retries (3 x 0.2 s) it gives up with ERROR 0, then stays silent.
        self.put_root("r.bin", 5000, 12)
        before = self.server.stats()
        r = Raw(self.server.port)
        r.send(request(OP_RRQ, "r.bin"))
        got = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < 4.0:
            ans = r.recv(0.3)
            if ans:
                got.append((time.monotonic() - t0, ans[0], ans[1]))
        r.close()
        self.assertTrue(got, "no DATA at all")
        self.assertEqual(got[-1][1], OP_ERROR, got)
        self.assertEqual(got[-1][2][0], 0, got)
        self.assertGreaterEqual(got[-1][0], 0.55, "gave up before 3 x 0.2 s: %r" % got)
        # With the backoff the timer fires at 0.2 + 0.4 + 0.8 = 1.4 s; the
        # bound leaves room for 2 loaded cores (1.52 s was seen), far below
        # --tftp-retries' full minute.
        self.assertLess(got[-1][0], 3.0, "still sending long after its retries: %r" % (got[-1][:2],))
        datas = [g for g in got[:-1]]
        self.assertTrue(all(g[1] == OP_DATA and g[2][0] == 1 for g in datas), got)
        # Block 1 went out before the first timer period ended (0.2 s: sent
        # at once, not by the timer; 0.12 s was seen at load 14, the open is
        # an executor call) and was still being resent in the third period
        # (retransmits up to the end, not only probes at the start).
        self.assertLess(datas[0][0], 0.2, got)
        self.assertGreaterEqual(datas[-1][0], 0.4, got)
        after = self.server.stats()
        self.assertEqual(after["rrq"]["failed"], before["rrq"]["failed"] + 1, after)
        self.assertEqual(after["retransmits"] - before["retransmits"], len(datas) - 1, after)


class SlowReackClientTest(ServerCase):
    """A client that, like Debian's atftp 0.8.0, answers a repeated DATA
    block with at most one extra ACK and otherwise re-ACKs only after its
    own timeout of silence (every packet received restarts that timeout)."""

    server_args = ("--tftp-timeout", "0.05", "--tftp-retries", "50")

    # Regression: the server used to retransmit every --tftp-timeout (with
    # tail probes in between) and never paused for 1 s, so this client never
    # re-ACKed and the server gave up with ERROR 0. With exponential backoff
    # (RFC 1123 4.2.3.2), as tftpd-hpa does, a gap of 1 s comes within a few
    # retries.
    def test_reack_after_one_second_of_silence(self):
        self.put_root("slow.bin", 2000, 21)  # 4 blocks of 512
        with open(self.root_path("slow.bin"), "rb") as f:
            want = f.read()
        r = Raw(self.server.port)
        try:
            r.send(request(OP_RRQ, "slow.bin"))
            out = bytearray()
            expect = 1
            lost_once = False
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                got = r.recv(1.0)
                if got is None:  # 1 s of silence: re-ACK what we have
                    r.send(ack(expect - 1))
                    continue
                op, fields, src = got
                r.peer = src
                self.assertNotEqual(op, OP_ERROR, "server gave up: %r" % (fields,))
                if op != OP_DATA or fields[0] != expect:
                    continue  # a repeated block: ignored, no ACK
                out += fields[1]
                expect += 1
                if expect - 1 == 2 and not lost_once:
                    lost_once = True  # this ACK (and its one re-ACK) was lost
                    continue
                r.send(ack(expect - 1))
                if len(fields[1]) < 512:
                    break
            self.assertEqual(bytes(out), want)
        finally:
            r.close()


@unittest.skipIf(use_hpa(), "our server's options")
class DallyTest(ServerCase):
    """A committed write dallies two timeouts to re-ACK a lost final DATA; a
    new request from the same address takes a dallying write's place, so
    quick uploads in a row are never refused at the per-address cap (32)."""

    server_args = ("--tftp-timeout", "5")  # each write dallies 10 s: longer than the test

    def test_forty_uploads_in_a_row_are_all_taken(self):
        for i in range(40):
            name = "dally-%d.bin" % i
            src = self.local(name, 1000 + i, i)
            rc, text = curl_put(self.server.port, src, name)
            self.assertEqual(rc, 0, "upload %d: %s" % (i, text))
            self.assert_same(src, self.root_path(name), "upload %d" % i)
        self.assert_no_temporaries()


@unittest.skipIf(use_hpa(), "our server's options")
class ReadOnlyTest(ServerCase):
    server_args = ("--tftp-read-only",)

    def test_wrq_refused_rrq_works(self):
        self.put_root("ro.bin", 2000, 13)
        src = self.local("w.bin", 100, 14)
        rc, text = curl_put(self.server.port, src, "new.bin")
        self.assertEqual(rc, 69, text)  # curl: TFTP access violation
        self.assertFalse(os.path.exists(self.root_path("new.bin")))
        r = Raw(self.server.port)
        r.send(request(OP_WRQ, "ro.bin"))
        expect_error(self, r, 2, "WRQ read-only")
        r.close()
        out = os.path.join(self.work, "ro.bin")
        rc, text = curl_get(self.server.port, "ro.bin", out)
        self.assertEqual(rc, 0, text)
        self.assert_same(out, self.root_path("ro.bin"))


@unittest.skipIf(use_hpa(), "our server's options")
class NoOverwriteTest(ServerCase):
    server_args = ("--tftp-no-overwrite",)

    def test_existing_name_error_6(self):
        old = self.put_root("exists.bin", 2000, 15)
        src = self.local("w.bin", 100, 16)
        rc, text = curl_put(self.server.port, src, "exists.bin")
        self.assertEqual(rc, 73, text)  # curl: TFTP file already exists
        self.assertEqual(sha256_file(self.root_path("exists.bin")), old)
        rc, text = atftp_put(self.server.port, src, "fresh.bin", 1468, 4)
        self.assertEqual(rc, 0, text)
        self.assert_same(src, self.root_path("fresh.bin"))
        self.assert_no_temporaries()


@unittest.skipIf(use_hpa(), "our server's options")
class MaxUploadTest(ServerCase):
    server_args = ("--max-upload", "10000")

    def test_tsize_over_limit_refused_before_data(self):
        r = Raw(self.server.port)
        r.send(request(OP_WRQ, "big.bin", options=[("tsize", "10001")]))
        expect_error(self, r, 3, "WRQ tsize over --max-upload")
        r.close()
        self.assertFalse(os.path.exists(self.root_path("big.bin")))
        # At the limit: accepted (OACK with tsize).
        r = Raw(self.server.port)
        r.send(request(OP_WRQ, "atlimit.bin", options=[("tsize", "10000")]))
        got = r.recv()
        self.assertEqual(got[0], OP_OACK, repr(got))
        self.assertEqual(got[1].get("tsize"), "10000")
        r.send(b"\x00\x05\x00\x00done\x00", got[2])
        r.close()

    def test_curl_put_over_limit(self):
        # curl sends tsize: refused up front with ERROR 3 (curl exit 70).
        src = self.local("big.bin", 20000, 17)
        rc, text = curl_put(self.server.port, src, "big.bin")
        self.assertEqual(rc, 70, text)
        self.assertFalse(os.path.exists(self.root_path("big.bin")))

    def test_no_tsize_stream_over_limit(self):
        # No tsize: the upload is cut with ERROR 3 once over the limit.
        r = Raw(self.server.port)
        r.send(request(OP_WRQ, "stream.bin"))
        got = r.recv()
        self.assertEqual((got[0], got[1]), (OP_ACK, 0))
        r.peer = got[2]
        result = None
        for block in range(1, 40):
            r.send(data(block, b"s" * 512))
            got = r.recv_after(block - 1)
            self.assertIsNotNone(got, "no answer to block %d" % block)
            if got[0] == OP_ERROR:
                result = got[1]
                break
            self.assertEqual((got[0], got[1]), (OP_ACK, block))
        r.close()
        self.assertIsNotNone(result, "20 KB accepted over --max-upload 10000")
        self.assertEqual(result[0], 3, result)
        self.assertLessEqual(block, 10000 // 512 + 1)
        time.sleep(0.2)
        self.assertFalse(os.path.exists(self.root_path("stream.bin")))
        self.assert_no_temporaries()

    def test_under_limit_works(self):
        src = self.local("small.bin", 9999, 18)
        rc, text = curl_put(self.server.port, src, "small.bin")
        self.assertEqual(rc, 0, text)
        self.assert_same(src, self.root_path("small.bin"))

    def test_exactly_the_limit_works(self):
        # 10000 bytes at blksize 512: the last block ends at the limit, and
        # a netascii-sized allowance must not refuse it.
        src = self.local("exact.bin", 10000, 20)
        rc, text = curl_put(self.server.port, src, "exact.bin")
        self.assertEqual(rc, 0, text)
        self.assert_same(src, self.root_path("exact.bin"))


@unittest.skipIf(use_hpa(), "our server's options")
class ProcessModeTest(ServerCase):
    server_args = ("--mode", "process", "--workers", "2")

    def test_get_and_put(self):
        self.put_root("pm.bin", 2 * MB + 1, 19)
        out = os.path.join(self.work, "pm.bin")
        rc, text = curl_get(self.server.port, "pm.bin", out, blksize=1468)
        self.assertEqual(rc, 0, text)
        self.assert_same(out, self.root_path("pm.bin"))
        rc, text = atftp_put(self.server.port, out, "pm-up.bin", 65464, 16)
        self.assertEqual(rc, 0, text)
        self.assert_same(out, self.root_path("pm-up.bin"))
        self.assert_no_temporaries()


@unittest.skipIf(use_hpa(), "our server's STATS")
class StatsTest(ServerCase):
    def test_counters(self):
        self.put_root("s.bin", 1000, 20)
        before = self.server.stats()
        out = os.path.join(self.work, "s.bin")
        self.assertEqual(curl_get(self.server.port, "s.bin", out)[0], 0)
        self.assertEqual(curl_put(self.server.port, out, "s2.bin")[0], 0)
        self.assertEqual(curl_get(self.server.port, "nope", out)[0], 68)
        after = self.server.stats()
        self.assertEqual(after["rrq"]["ok"], before["rrq"]["ok"] + 1, after)
        self.assertEqual(after["wrq"]["ok"], before["wrq"]["ok"] + 1, after)
        self.assertEqual(after["rrq"]["failed"], before["rrq"]["failed"] + 1, after)


if __name__ == "__main__":
    unittest.main()
