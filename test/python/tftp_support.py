"""Shared helpers of the TFTP tests (test_tftp.py, test_tftp_lossy.py) and
bench/udp.sh: start our server or Debian's tftpd-hpa on a free port
with a temporary root, run the real clients (curl, tftp-hpa, atftp), and a
small raw-socket TFTP client for the packets no real client sends.

Environment: FSRV_BIN (folder of bin/fileserver); TFTP_TEST_SERVER=hpa runs
the tests that do not need our server's options against tftpd-hpa instead
(used to validate the tests themselves).
"""

import hashlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

from fsrv_server import KeptRootServer

BIN = os.environ.get("FSRV_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "bin"))

OP_RRQ, OP_WRQ, OP_DATA, OP_ACK, OP_ERROR, OP_OACK = 1, 2, 3, 4, 5, 6

# curl's exit codes for TFTP errors received from the server (curl(1) EXIT
# CODES 68..74: not found, permission, disk full, illegal op, unknown TID,
# exists, no such user) and its own TFTP "protocol error" (71 is shared).
CURL_TFTP_ERRORS = {68, 69, 70, 71, 72, 73, 74}


def use_hpa():
    """True when the tests run against tftpd-hpa (TFTP_TEST_SERVER=hpa)."""
    return os.environ.get("TFTP_TEST_SERVER") == "hpa"


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                return h.hexdigest()
            h.update(chunk)


def make_file(path, size, seed):
    """A file of `size` pseudo-random bytes (written in 1 MiB pieces, never
    held whole in memory); returns its sha256."""
    import random
    rnd = random.Random(seed)
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 1 << 20)
            chunk = rnd.randbytes(n)
            h.update(chunk)
            f.write(chunk)
            left -= n
    return h.hexdigest()


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def server_in_parent(prefix, start):
    """(parent, server): a fresh folder `parent` whose only entry is the
    root "root", and the server `start(root)` made on it (the folder is
    removed again if that fails). Anything a server writes outside its root
    then shows up as a sibling."""
    parent = tempfile.mkdtemp(prefix=prefix)
    root = os.path.join(parent, "root")
    os.mkdir(root)
    try:
        return parent, start(root)
    except Exception:
        shutil.rmtree(parent, ignore_errors=True)
        raise


class OurServer(KeptRootServer):
    """bin/fileserver serving tftp (and the file service, for STATS) on
    127.0.0.1 with a temporary root (test/python/fsrv_server.py); stop()
    keeps the root and sets `stderr` to the server's whole log, cleanup()
    removes the root."""

    kind = "fsrv"

    def __init__(self, *args, root=None, stats=True):
        super().__init__(["tftp", "file"] if stats else ["tftp"], *args, log_level=None,
                         root=root, prefix="fsrv-tftp-")
        self.port = self.ports["tftp"]
        self.file_port = self.ports.get("file")

    def alive(self):
        return self.proc.poll() is None

    def stats(self):
        """data.services.tftp of the STATS reply (a dict)."""
        return super().stats(self.file_port)["services"]["tftp"]


class HpaServer:
    """Debian's tftpd-hpa in the foreground on a free port (never port 69),
    chrooted to a temporary root, creating files on WRQ."""

    kind = "hpa"

    def __init__(self, *args, root=None):
        self.root = root or tempfile.mkdtemp(prefix="hpa-tftp-")
        for _ in range(5):
            self.port = free_udp_port()
            self.proc = subprocess.Popen(
                ["in.tftpd", "--foreground", "--listen", "--address",
                 "127.0.0.1:%d" % self.port, "--secure", "--create", "--user", "root",
                 "--blocksize", "65464", *args, self.root],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(0.2)
            if self.proc.poll() is None:
                return
        raise RuntimeError("in.tftpd did not start")

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
        return self.proc.returncode

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


# --- real clients: each returns (exit code, output text) -----------------

def run(cmd, timeout):
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=timeout)
        return p.returncode, (p.stdout + p.stderr).decode(errors="replace")
    except subprocess.TimeoutExpired:
        return -1, "client timed out after %ss: %s" % (timeout, " ".join(cmd))


def curl_get(port, name, out, blksize=None, timeout=60, host="127.0.0.1"):
    cmd = ["curl", "-sS", "tftp://%s:%d/%s" % (host, port, name), "-o", out]
    if blksize:
        cmd += ["--tftp-blksize", str(blksize)]
    return run(cmd, timeout)


def curl_put(port, local, name, blksize=None, timeout=60, host="127.0.0.1"):
    cmd = ["curl", "-sS", "-T", local, "tftp://%s:%d/%s" % (host, port, name)]
    if blksize:
        cmd += ["--tftp-blksize", str(blksize)]
    return run(cmd, timeout)


def atftp_cmd(get, port, name, local, blksize=None, windowsize=None, client_timeout=None,
              tsize=False):
    cmd = ["atftp", "-g" if get else "-p", "-r", name, "-l", local]
    if blksize:
        cmd += ["--option", "blksize %d" % blksize]
    if windowsize:
        cmd += ["--option", "windowsize %d" % windowsize]
    if tsize:
        cmd += ["--option", "tsize"]
    if client_timeout:
        cmd += ["--tftp-timeout", str(client_timeout)]
    return cmd + ["127.0.0.1", str(port)]


def atftp_get(port, name, local, blksize=None, windowsize=None, timeout=60, **kw):
    return run(atftp_cmd(True, port, name, local, blksize, windowsize, **kw), timeout)


def atftp_put(port, local, name, blksize=None, windowsize=None, timeout=60, **kw):
    return run(atftp_cmd(False, port, name, local, blksize, windowsize, **kw), timeout)


def hpa_get(port, name, local, binary, timeout=60):
    """tftp-hpa's client; binary=False keeps its default (netascii)."""
    cmd = ["tftp", "127.0.0.1", str(port)]
    if binary:
        cmd += ["-m", "binary"]
    return run(cmd + ["-c", "get", name, local], timeout)


def hpa_put(port, local, name, binary, timeout=60):
    cmd = ["tftp", "127.0.0.1", str(port)]
    if binary:
        cmd += ["-m", "binary"]
    return run(cmd + ["-c", "put", local, name], timeout)


# --- raw packets -----------------------------------------------------------

def request(opcode, name, mode=b"octet", options=()):
    """An RRQ/WRQ: name and mode NUL-terminated, then option name/value pairs."""
    if isinstance(name, str):
        name = name.encode()
    pkt = struct.pack("!H", opcode) + name + b"\0" + mode + b"\0"
    for k, v in options:
        pkt += (k if isinstance(k, bytes) else k.encode()) + b"\0"
        pkt += (v if isinstance(v, bytes) else str(v).encode()) + b"\0"
    return pkt


def ack(block):
    return struct.pack("!HH", OP_ACK, block & 0xFFFF)


def data(block, payload):
    return struct.pack("!HH", OP_DATA, block & 0xFFFF) + payload


def parse(pkt):
    """(opcode, fields): DATA -> (block, payload), ACK -> block, ERROR ->
    (code, message), OACK -> {name: value}."""
    op = struct.unpack("!H", pkt[:2])[0] if len(pkt) >= 2 else None
    if op == OP_DATA:
        return op, (struct.unpack("!H", pkt[2:4])[0], pkt[4:])
    if op == OP_ACK:
        return op, struct.unpack("!H", pkt[2:4])[0]
    if op == OP_ERROR:
        return op, (struct.unpack("!H", pkt[2:4])[0], pkt[4:].split(b"\0")[0].decode(
            errors="replace"))
    if op == OP_OACK:
        parts = pkt[2:].split(b"\0")
        return op, {parts[i].decode().lower(): parts[i + 1].decode()
                    for i in range(0, len(parts) - 1, 2)}
    return op, pkt[2:]


class Raw:
    """A UDP socket speaking raw TFTP to a server's main port."""

    def __init__(self, port, timeout=2.0):
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(timeout)
        self.peer = None  # the transfer's address once the server answered

    def send(self, pkt, to=None):
        self.sock.sendto(pkt, to or self.peer or ("127.0.0.1", self.port))

    def recv(self, timeout=None):
        """(opcode, fields, source address) or None on silence."""
        if timeout is not None:
            self.sock.settimeout(timeout)
        try:
            pkt, src = self.sock.recvfrom(70000)
        except socket.timeout:
            return None
        op, fields = parse(pkt)
        return op, fields, src

    def recv_after(self, last_acked):
        """recv(), skipping repeated ACKs of blocks up to `last_acked`: a
        server whose timeout ran out before our next DATA repeats its last
        ACK, a duplicate a client ignores (RFC 1350 section 2)."""
        while True:
            got = self.recv()
            if got is None or got[0] != OP_ACK or got[1] > last_acked:
                return got

    def close(self):
        self.sock.close()


def raw_get(port, name, options=(), timeout=5.0):
    """Download `name` with the raw client (window 1, no retransmits: for
    loss-free checks). Returns (bytes, oack dict) or raises AssertionError
    with the ERROR received."""
    r = Raw(port, timeout)
    try:
        r.send(request(OP_RRQ, name, options=options))
        out = bytearray()
        oack = {}
        blksize = 512
        expect = 1
        while True:
            got = r.recv()
            if got is None:
                raise AssertionError("raw_get %s: no answer" % name)
            op, fields, src = got
            r.peer = src
            if op == OP_ERROR:
                raise AssertionError("raw_get %s: ERROR %d %s" % (name, *fields))
            if op == OP_OACK:
                oack = fields
                blksize = int(fields.get("blksize", 512))
                r.send(ack(0))
                continue
            if op == OP_DATA:
                block, payload = fields
                if block == expect & 0xFFFF:
                    out += payload
                    expect += 1
                r.send(ack(block))
                if len(payload) < blksize:
                    return bytes(out), oack
    finally:
        r.close()
