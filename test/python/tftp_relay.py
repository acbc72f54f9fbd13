"""A lossy UDP relay for TFTP tests: this kernel has no netem
qdisc, so faults are injected in-process, between the client and the server.

    relay = LossyRelay(server_port, seed=1234)   # thread starts at once
    # point curl/atftp at 127.0.0.1:relay.port ...
    relay.close()

Every datagram, in both directions, is put through the same seeded
`random.Random`: dropped (`drop`, default 5%), duplicated (`dup`, 1%),
held back and released after the next datagram of the same direction
(`reorder`, 10%; a held datagram with no follower is released after
`HOLD_FLUSH_S`), and delayed by a few milliseconds (`delay_ms` range for a
`delay` fraction of datagrams). The seed is fixed per test; set the
environment variable TFTP_RELAY_SEED to replay a failing run with the seed
that its failure message printed (`describe()`).

OACKs are not duplicated by default (`no_dup`): atftp 0.8.0 aborts the
transfer with "tftp: unexpected OACK" when a second copy of the OACK
arrives after its ACK 0 (a client bug, not the server's); pass `no_dup=()`
to duplicate everything.

TFTP's port change (RFC 1350 section 4, "transfer identifiers"): the client
talks to the relay's single port. For each client address the relay opens
its own upstream socket, so the server sees one distinct peer per client.
A request (RRQ/WRQ) goes to the server's main port; the first reply after a
request comes from the transfer's ephemeral port, which the relay then
locks onto for that client (as a real client locks onto the first TID it
sees); datagrams from any other server port are dropped and counted in
`stats["foreign"]` (a direct client would answer them with ERROR 5).
Replies to the client are all sent from the relay's port, which the client
takes as the transfer's TID.
"""

import heapq
import os
import random
import select
import socket
import sys
import threading
import time

# The largest UDP payload over IPv4 (65535 - 20 IP - 8 UDP); TFTP's largest
# DATA is 65464 + 4 bytes, so a read buffer this size never truncates.
MAX_DATAGRAM = 65507
# A held (reordered) datagram with no follower within this long is sent
# anyway: a stalled window must not wait for a retransmit timeout because of
# the relay alone.
HOLD_FLUSH_S = 0.003
# Upstream sockets of clients that have been silent this long are closed.
IDLE_CLIENT_S = 60.0
# Socket buffers: a 16-block window of 65464-byte blocks is ~1 MB in flight.
SOCK_BUF = 4 << 20

OP_RRQ, OP_WRQ, OP_OACK = 1, 2, 6


def env_seed(default):
    """The seed to use: TFTP_RELAY_SEED from the environment if set."""
    value = os.environ.get("TFTP_RELAY_SEED")
    return int(value) if value else default


class _Client:
    """Relay state of one client address."""

    def __init__(self, addr):
        self.addr = addr
        self.up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.up.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCK_BUF)
        self.up.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCK_BUF)
        self.up.bind(("127.0.0.1", 0))
        self.up.setblocking(False)
        self.server_tid = None  # the transfer's port once learned
        self.last = time.monotonic()


class LossyRelay:
    """The relay thread and its sockets; see the module comment."""

    def __init__(self, server_port, seed=1, server_host="127.0.0.1", drop=0.05, dup=0.01,
                 reorder=0.10, delay=0.10, delay_ms=(1.0, 4.0), no_dup=(OP_OACK,)):
        self.seed = env_seed(seed)
        self.rng = random.Random(self.seed)
        self.server = (server_host, server_port)
        self.drop, self.dup, self.reorder = drop, dup, reorder
        self.delay, self.delay_ms = delay, delay_ms
        self.no_dup = set(no_dup)
        self.trace = bool(os.environ.get("TFTP_RELAY_TRACE"))
        self.t0 = time.monotonic()
        self.stats = {k: 0 for k in ("in", "out", "dropped", "duplicated", "reordered",
                                     "delayed", "foreign", "errors")}
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCK_BUF)
        self.front.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCK_BUF)
        self.front.bind(("127.0.0.1", 0))
        self.front.setblocking(False)
        self.port = self.front.getsockname()[1]
        self.clients = {}  # client addr -> _Client
        self.by_sock = {}  # upstream socket -> _Client
        self.queue = []  # heap of (release time, seq, socket, bytes, destination)
        self.seq = 0
        self.held = {}  # direction key -> (socket, bytes, destination, held since)
        self.lock = threading.Lock()
        self.stopping = False
        self.wake_r, self.wake_w = socket.socketpair()
        self.thread = threading.Thread(target=self._run, name="tftp-relay", daemon=True)
        self.thread.start()

    def describe(self):
        """One line for failure messages: the seed to replay and the counts."""
        return "relay seed %d (replay: TFTP_RELAY_SEED=%d) stats %s" % (
            self.seed, self.seed, self.stats)

    def close(self):
        self.stopping = True
        self.wake_w.send(b"x")
        self.thread.join(timeout=5)
        for c in self.clients.values():
            c.up.close()
        self.front.close()
        self.wake_r.close()
        self.wake_w.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- the thread -------------------------------------------------------

    def _run(self):
        while not self.stopping:
            now = time.monotonic()
            timeout = 0.5
            if self.queue:
                timeout = min(timeout, max(0.0, self.queue[0][0] - now))
            if self.held:
                oldest = min(h[3] for h in self.held.values())
                timeout = min(timeout, max(0.0, oldest + HOLD_FLUSH_S - now))
            socks = [self.front, self.wake_r] + list(self.by_sock)
            try:
                readable, _, _ = select.select(socks, [], [], timeout)
            except (OSError, ValueError):
                break
            for s in readable:
                if s is self.wake_r:
                    continue
                # Drain what is there (bounded, so timers still run).
                for _ in range(64):
                    try:
                        data, src = s.recvfrom(MAX_DATAGRAM)
                    except OSError:  # BlockingIOError: drained
                        break
                    if s is self.front:
                        self._from_client(data, src)
                    else:
                        self._from_server(self.by_sock[s], data, src)
            self._release_due()
            self._expire_idle()

    def _from_client(self, data, src):
        c = self.clients.get(src)
        if c is None:
            c = _Client(src)
            self.clients[src] = c
            self.by_sock[c.up] = c
        c.last = time.monotonic()
        opcode = int.from_bytes(data[:2], "big") if len(data) >= 2 else 0
        if opcode in (OP_RRQ, OP_WRQ) or c.server_tid is None:
            # A (re)sent request goes to the main port, as it would directly.
            if opcode in (OP_RRQ, OP_WRQ):
                c.server_tid = None
            dest = self.server
        else:
            dest = (self.server[0], c.server_tid)
        self._impair(("up", src), c.up, data, dest)

    def _from_server(self, c, data, src):
        c.last = time.monotonic()
        if c.server_tid is None:
            c.server_tid = src[1]
        elif src[1] != c.server_tid:
            self.stats["foreign"] += 1
            return
        self._impair(("down", c.addr), self.front, data, c.addr)

    def _impair(self, key, sock, data, dest):
        """Drop / duplicate / reorder / delay one datagram (the seeded draw
        order is fixed: drop, dup, reorder, delay)."""
        self.stats["in"] += 1
        if data[:2] == b"\x00\x05":
            self.stats["errors"] += 1  # a TFTP ERROR, from either side
        r = self.rng
        if r.random() < self.drop:
            self.stats["dropped"] += 1
            self._trace(key, data, "DROP")
            return
        copies = 1
        if r.random() < self.dup and int.from_bytes(data[:2], "big") not in self.no_dup:
            self.stats["duplicated"] += 1
            copies = 2
        hold = r.random() < self.reorder
        delay = 0.0
        if r.random() < self.delay:
            self.stats["delayed"] += 1
            delay = r.uniform(*self.delay_ms) / 1000.0
        now = time.monotonic()
        self._trace(key, data, "%s%s%s" % ("dup " if copies == 2 else "",
                                            "hold " if hold else "",
                                            "+%.1fms" % (delay * 1000) if delay else ""))
        # A held datagram of this direction goes out right after this one.
        previous = self.held.pop(key, None)
        if hold and previous is None:
            self.held[key] = (sock, data, dest, now)
            self.stats["reordered"] += 1
            copies -= 1
        for _ in range(copies):
            self._schedule(now + delay, sock, data, dest)
        if previous is not None:
            self._schedule(now + delay, previous[0], previous[1], previous[2])
        self._release_due()

    def _trace(self, key, data, what):
        """TFTP_RELAY_TRACE=1: one stderr line per datagram and decision."""
        if not self.trace:
            return
        op = int.from_bytes(data[:2], "big") if len(data) >= 2 else -1
        block = int.from_bytes(data[2:4], "big") if op in (3, 4, 5) and len(data) >= 4 else ""
        sys.stderr.write("relay %8.3f %-4s %s op %d %s len %d %s\n" % (
            time.monotonic() - self.t0, key[0], key[1][1], op, block, len(data), what))

    def _schedule(self, when, sock, data, dest):
        self.seq += 1
        heapq.heappush(self.queue, (when, self.seq, sock, data, dest))

    def _release_due(self):
        now = time.monotonic()
        for key, (sock, data, dest, since) in list(self.held.items()):
            if now - since >= HOLD_FLUSH_S:
                del self.held[key]
                self._schedule(now, sock, data, dest)
        while self.queue and self.queue[0][0] <= now:
            _, _, sock, data, dest = heapq.heappop(self.queue)
            try:
                sock.sendto(data, dest)
                self.stats["out"] += 1
            except OSError:
                pass  # a closed client or a full buffer is just one more loss

    def _expire_idle(self):
        now = time.monotonic()
        for addr, c in list(self.clients.items()):
            if now - c.last > IDLE_CLIENT_S:
                del self.clients[addr]
                del self.by_sock[c.up]
                c.up.close()
