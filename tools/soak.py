#!/usr/bin/env python3
"""make soak: a bounded soak test of bin/fileserver in process mode.

One server (--mode process --workers 4). CLIENTS honest clients loop over
mixed LIST / GET / UPLOAD / DELETE / SIZE of 1 KB to 20 MB files on
persistent connections of the course protocol, verifying every GET against
the content of the last acknowledged upload (BLAKE2b). Every KILL_EVERY
seconds one worker is SIGKILLed. Beside them hostile clients run the
hardening issue's attacks: pipelining without reading (point 1), closing
mid-GET (2), one byte a second (3), pipelined LIST without reading (5).

At the end it checks, and prints as a table (and, with --write-doc, into
docs/RELIABILITY.md between the SOAK markers):
  - zero corrupt or lost acknowledged uploads (every name's final content,
    read from the root, is its last acknowledged content, or absent if its
    last acknowledged operation was a delete);
  - every failed honest operation was on a connection open when a worker
    was killed (accounted for by the kill);
  - server RSS (all processes) at the end within 10% of its value after the
    first minute (or a quarter of the run, when shorter);
  - descriptors of the server processes back to their starting count.

Env: SOAK_SECONDS (default 600), SOAK_CLIENTS (200), FSRV_BIN (bin).
Exit 0 only if every check holds.
"""
import base64
import datetime
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

BIN = os.environ.get("FSRV_BIN", "bin")
SECONDS = float(os.environ.get("SOAK_SECONDS", "600"))
CLIENTS = int(os.environ.get("SOAK_CLIENTS", "200"))
KILL_EVERY = 30.0          # seconds between worker kills (the rate)
FAULT_WINDOW = 3.0         # reconnect attempts this close after a kill are the kill's
RSS_TOLERANCE = 0.10       # end RSS within 10% of the reference sample
PROCESSES = 4              # client processes the honest clients are spread over
SOCKET_TIMEOUT = 60.0      # an honest operation that takes longer is a failure
WRITE_DOC = "--write-doc" in sys.argv


def blake(data):
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def pick_size(rng):
    r = rng.random()
    if r < 0.70:
        return rng.randint(1000, 64 * 1024)
    if r < 0.95:
        return rng.randint(64 * 1024, 1 << 20)
    return rng.randint(1 << 20, 20 * 1000 * 1000)


class Server:
    def __init__(self, root):
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "fileserver"), "--host", "127.0.0.1", "--port", "0", "--root", root,
             "--mode", "process", "--workers", "4", "--idle-timeout", "120", "--request-timeout", "5",
             "--log-level", "warn"],
            stdout=subprocess.PIPE)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("listening file on "):
            raise RuntimeError("server did not start: %r" % line)
        self.port = int(line.rsplit(":", 1)[1])

    def pids(self):
        try:
            with open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)) as f:
                kids = [int(x) for x in f.read().split()]
        except OSError:
            kids = []
        return [self.proc.pid] + kids

    def rss_kib(self):
        total = 0
        for pid in self.pids():
            try:
                with open("/proc/%d/status" % pid) as f:
                    m = re.search(r"VmRSS:\s+(\d+)", f.read())
                    total += int(m.group(1)) if m else 0
            except OSError:
                pass
        return total

    def fds(self):
        n = 0
        for pid in self.pids():
            try:
                n += len(os.listdir("/proc/%d/fd" % pid))
            except OSError:
                pass
        return n

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


class Conn:
    """A persistent course-protocol connection."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT)
        self.buf = bytearray()

    def request(self, line):
        self.s.sendall(line)
        start = 0
        while (i := self.buf.find(b"\r\n\r\n", start)) < 0:
            start = max(0, len(self.buf) - 3)  # linear: never rescan
            d = self.s.recv(1 << 20)
            if not d:
                raise ConnectionError("closed")
            self.buf += d
        reply = bytes(self.buf[:i])
        del self.buf[:i + 4]
        return json.loads(reply)

    def close(self):
        self.s.close()


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.ops = {}
        self.failures = []  # (time, what)
        self.corrupt = []
        self.bytes_verified = 0

    def ok(self, op):
        with self.lock:
            self.ops[op] = self.ops.get(op, 0) + 1

    def fail(self, what, since):
        """A failed operation on a connection opened at `since`."""
        with self.lock:
            self.failures.append((time.time(), what, since))


def honest(idx, port, deadline, stats, acked, lock):
    rng = random.Random(idx)
    mine = {}  # name -> digest of the last acknowledged content (None = deleted)
    conn = None
    opened = time.time()
    k = 0
    while time.time() < deadline:
        name = None
        try:
            if conn is None:
                opened = time.time()
                conn = Conn(port)
            op = rng.choices(["UPLOAD", "GET", "LIST", "SIZE", "DELETE"], [30, 35, 10, 15, 10])[0]
            live = [n for n, d in mine.items() if d is not None]
            if op in ("GET", "SIZE", "DELETE") and not live:
                op = "UPLOAD"
            if op == "UPLOAD":
                name = "c%d-%d.bin" % (idx, rng.randint(0, 5) if mine else k)
                data = rng.randbytes(pick_size(rng))
                k += 1
                r = conn.request(b"UPLOAD " + name.encode() + b" " + base64.b64encode(data) + b"\r\n")
                if r.get("status") != "OK":
                    raise RuntimeError("UPLOAD %s: %s" % (name, r))
                mine[name] = blake(data)
                with lock:
                    acked[name] = mine[name]
            elif op == "GET":
                name = rng.choice(live)
                r = conn.request(b"GET " + name.encode() + b"\r\n")
                if r.get("status") != "OK":
                    raise RuntimeError("GET %s: %s" % (name, r))
                data = base64.b64decode(r["data_file"])
                if blake(data) != mine[name]:
                    with stats.lock:
                        stats.corrupt.append(name)
                with stats.lock:
                    stats.bytes_verified += len(data)
            elif op == "SIZE":
                name = rng.choice(live)
                r = conn.request(b"SIZE " + name.encode() + b"\r\n")
                if r.get("status") != "OK":
                    raise RuntimeError("SIZE %s: %s" % (name, r))
            elif op == "DELETE":
                name = rng.choice(live)
                r = conn.request(b"DELETE " + name.encode() + b"\r\n")
                if r.get("status") != "OK":
                    raise RuntimeError("DELETE %s: %s" % (name, r))
                mine[name] = None
                with lock:
                    acked[name] = None
            else:
                r = conn.request(b"LIST\r\n")
                if r.get("status") != "OK":
                    raise RuntimeError("LIST: %s" % r)
            stats.ok(op)
        except Exception as e:  # noqa: BLE001 - every failure is recorded and judged
            stats.fail("%s: %s" % (type(e).__name__, e), opened)
            if conn is not None:
                conn.close()
            conn = None
            # An UPLOAD or DELETE cut by a kill may or may not have been
            # committed: the name's content is unknown (old or new, never a
            # mix) until it is uploaded again, so it is neither read back nor
            # judged at the end meanwhile.
            if name is not None and name in mine:
                del mine[name]
                with lock:
                    acked[name] = "uncertain"
            time.sleep(0.2)
    if conn is not None:
        conn.close()


def hostile(kind, port, deadline, counts):
    while time.time() < deadline:
        try:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.settimeout(5)
            s.connect(("127.0.0.1", port))
            if kind == "pipeline":      # point 1: requests, never read
                s.setblocking(False)
                end = min(deadline, time.time() + 10)
                while time.time() < end:
                    try:
                        s.send(b"X\n" * 32768)
                    except BlockingIOError:
                        time.sleep(0.2)
            elif kind == "list":        # point 5: LIST, never read
                s.sendall(b"LIST\r\n" * 20)
                time.sleep(min(10, max(0, deadline - time.time())))
            elif kind == "midget":      # point 2: close in the middle of a GET
                s.sendall(b"GET soak-big.bin\r\n")
                s.recv(1000)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            elif kind == "slowloris":   # point 3: one byte a second
                end = min(deadline, time.time() + 20)
                while time.time() < end:
                    s.send(b"A")
                    time.sleep(1)
            counts[kind] = counts.get(kind, 0) + 1
            s.close()
        except OSError:
            counts[kind + "-cut"] = counts.get(kind + "-cut", 0) + 1
            time.sleep(0.5)


def main():
    root = tempfile.mkdtemp(prefix="fsrv-soak-")
    with open(os.path.join(root, "soak-big.bin"), "wb") as f:
        f.write(os.urandom(32 << 20))
    server = Server(root)
    time.sleep(0.5)
    fds_start = server.fds()
    started = time.time()
    deadline = started + SECONDS
    # Clients run in child processes (PROCESSES of them, plus one for the
    # hostile clients): one interpreter with 225 threads starves some of
    # them of the GIL for minutes, and this process must stay responsive to
    # sample the server. The killer is a child process too.
    # Each kill's time is taken just before the kill: a client on the killed
    # worker sees its connection reset within milliseconds, sooner than a
    # `date` run after `kill` could write the time (CI saw 18 failures at
    # the very kill counted as "not explained" that way).
    kill_log = os.path.join(tempfile.mkdtemp(prefix="fsrv-soak-kills-"), "kills")
    killer = subprocess.Popen(
        ["bash", "-c",
         'end=$((SECONDS + %d)); while sleep %d && [ $SECONDS -lt $end ]; do '
         'v=$(pgrep -P %d | shuf -n1); t=$(date +%%s.%%N); [ -n "$v" ] && kill -9 "$v" && echo "$t" >> %s; '
         'done' % (int(SECONDS), int(KILL_EVERY), server.proc.pid, kill_log)])
    outdir = tempfile.mkdtemp(prefix="fsrv-soak-out-")
    per = (CLIENTS + PROCESSES - 1) // PROCESSES
    children = []
    for k in range(PROCESSES):
        first, count = k * per, max(0, min(per, CLIENTS - k * per))
        children.append(subprocess.Popen(
            [sys.executable, __file__, "--role", "honest", str(first), str(count), str(server.port),
             repr(deadline), os.path.join(outdir, "honest-%d.json" % k)]))
    children.append(subprocess.Popen(
        [sys.executable, __file__, "--role", "hostile", "0", "0", str(server.port), repr(deadline),
         os.path.join(outdir, "hostile.json")]))
    rss_ref = None
    ref_at = min(60.0, SECONDS / 4)
    while time.time() < deadline:
        time.sleep(0.5)
        if rss_ref is None and time.time() - started >= ref_at:
            rss_ref = server.rss_kib()
    for c in children:
        try:
            c.wait(timeout=SOCKET_TIMEOUT + 60)
        except subprocess.TimeoutExpired:
            c.kill()
    stats, acked, counts = Stats(), {}, {}
    for k in range(PROCESSES):
        try:
            with open(os.path.join(outdir, "honest-%d.json" % k)) as f:
                part = json.load(f)
        except (OSError, ValueError):
            stats.failures.append((time.time(), "client process %d gave no result" % k, started))
            continue
        for op, n in part["ops"].items():
            stats.ops[op] = stats.ops.get(op, 0) + n
        stats.failures += [tuple(x) for x in part["failures"]]
        stats.corrupt += part["corrupt"]
        stats.bytes_verified += part["bytes_verified"]
        acked.update(part["acked"])
    try:
        with open(os.path.join(outdir, "hostile.json")) as f:
            counts = json.load(f)
    except (OSError, ValueError):
        counts = {"hostile process": "gave no result"}
    shutil.rmtree(outdir, ignore_errors=True)
    killer.terminate()
    killer.wait()
    kills = []
    if os.path.exists(kill_log):
        with open(kill_log) as f:
            kills = [float(x) for x in f.read().split()]
    shutil.rmtree(os.path.dirname(kill_log), ignore_errors=True)
    time.sleep(3)  # hostile connections closed, workers settle
    rss_end = server.rss_kib()
    fds_end = server.fds()
    rc = server.stop()

    # Every name's final content is its last acknowledged content; a name
    # whose last upload was cut by a kill may hold the previous one or the
    # new one, never a mix: anything else is corrupt.
    lost, wrong = [], []
    for name, digest in acked.items():
        path = os.path.join(root, name)
        if digest == "uncertain":
            continue  # its last operation was cut by a kill: old or new content
        if digest is None:
            if os.path.exists(path):
                wrong.append(name)  # acknowledged delete, yet present
            continue
        if not os.path.exists(path):
            lost.append(name)
            continue
        with open(path, "rb") as f:
            if blake(f.read()) != digest:
                wrong.append(name)
    leftovers = [n for n in os.listdir(root) if n.startswith(".upload-")]
    # A failure is the kill's when its connection was open at a kill (it may
    # have been on the killed worker; the error surfaces at the next send or
    # read, which can be seconds later) or it came just after one.
    unaccounted = [f for f in stats.failures
                   if not any(f[2] - FAULT_WINDOW <= k <= f[0] for k in kills)]
    rss_ok = rss_ref is not None and rss_end <= rss_ref * (1 + RSS_TOLERANCE)
    checks = [
        ("corrupt GETs (content != last acknowledged upload)", len(stats.corrupt), len(stats.corrupt) == 0),
        ("acknowledged uploads lost", len(lost), not lost),
        ("files on disk != last acknowledged operation", len(wrong), not wrong),
        ("failed operations not explained by a worker kill", len(unaccounted), not unaccounted),
        ("upload temporaries left in the root", len(leftovers), not leftovers),
        ("server RSS at end vs after %.0f s (KiB)" % ref_at, "%s / %s" % (rss_end, rss_ref), rss_ok),
        ("server descriptors at end vs start", "%d / %d" % (fds_end, fds_start), fds_end == fds_start),
        ("server exit status after SIGTERM", rc, rc == 0),
    ]
    ops = sum(stats.ops.values())
    lines = [
        "| measure | value |",
        "|---|---|",
        "| date | %s |" % datetime.date.today().isoformat(),
        "| duration, honest clients, workers | %.0f s, %d, 4 (process mode) |" % (SECONDS, CLIENTS),
        "| honest operations ok | %d (%s) |" % (ops, ", ".join("%s %d" % kv for kv in sorted(stats.ops.items()))),
        "| bytes verified by hash | %.1f MB |" % (stats.bytes_verified / 1e6),
        "| worker SIGKILLs | %d |" % len(kills),
        "| honest failures (on connections open at a kill) | %d |" % len(stats.failures),
        "| hostile connections run | %s |" % ", ".join("%s %d" % kv for kv in sorted(counts.items())),
    ]
    for what, value, ok in checks:
        lines.append("| %s | %s %s |" % (what, value, "ok" if ok else "**FAILED**"))
    table = "\n".join(lines)
    print(table)
    for f in unaccounted[:10]:
        print("unaccounted failure at +%.1f s: %s" % (f[0] - started, f[1]))
    if WRITE_DOC:
        doc = "docs/RELIABILITY.md"
        text = open(doc).read()
        block = "<!-- SOAK BEGIN -->\n%s\n<!-- SOAK END -->" % table
        text = re.sub(r"<!-- SOAK BEGIN -->.*<!-- SOAK END -->", lambda _: block, text, flags=re.S)
        open(doc, "w").write(text)
    shutil.rmtree(root, ignore_errors=True)
    ok = all(c[2] for c in checks)
    print("soak: %d passed, %d failed" % (sum(c[2] for c in checks), sum(not c[2] for c in checks)))
    return 0 if ok else 1


def role(argv):
    """A client process: `--role honest|hostile FIRST COUNT PORT DEADLINE OUT`."""
    kind, first, count, port, deadline, out = argv
    first, count, port, deadline = int(first), int(count), int(port), float(deadline)
    if kind == "honest":
        stats, acked, lock = Stats(), {}, threading.Lock()
        threads = [threading.Thread(target=honest, args=(i, port, deadline, stats, acked, lock))
                   for i in range(first, first + count)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=max(0, deadline - time.time()) + SOCKET_TIMEOUT + 30)
        result = {"ops": stats.ops, "failures": stats.failures, "corrupt": stats.corrupt,
                  "bytes_verified": stats.bytes_verified, "acked": acked}
    else:
        counts = {}
        threads = []
        for k, n in (("pipeline", 10), ("list", 5), ("midget", 5), ("slowloris", 5)):
            threads += [threading.Thread(target=hostile, args=(k, port, deadline, counts))
                        for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=max(0, deadline - time.time()) + 30)
        result = counts
    with open(out, "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--role":
        sys.exit(role(sys.argv[2:]))
    sys.exit(main())
