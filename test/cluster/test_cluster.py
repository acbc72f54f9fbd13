#!/usr/bin/env python3
"""make test-cluster: failover of a real fsrv cluster (docs/CLUSTER.md).

Run on the host, this script brings a stack up with tools/cluster.sh (HAProxy,
GlusterFS replica 2, PostgreSQL, three process-mode nodes, all in a namespace
of their own), runs itself inside that namespace, and brings the stack down
(also on failure), then checks nothing of it is left. Inside, the tests run in
order on the one stack:

1. the course's own clients (file, chat, the seed-004 HTTP client) through
   HAProxy, and a file uploaded through one node read through another;
2. a chat message sent through node 1 is read through node 3 exactly once;
3. 20 clients read one inbox through the three nodes at once: each message
   exactly once;
4. 50 clients of mixed GET/UPLOAD through HAProxy while node 2 is SIGKILLed:
   HAProxy stops routing to it within a measured time, every failed operation
   was on a connection HAProxy gave to node 2, 0 acknowledged uploads lost,
   0 corrupt GETs;
5. one GlusterFS brick process SIGKILLed mid-load: service continues, files
   intact, the brick heals after `volume start force`;
6. PostgreSQL stopped mid-load: chat answers its clear error at once, file
   and http are unaffected, chat recovers by itself after the restart;
7. two nodes uploading one name at once, 10 rounds: exactly one of the two
   contents, whole, read through a third node and on both bricks;
8. SIGTERM to a node under load (--drain-delay): HAProxy takes it out while it
   still serves, then it drains and exits; 0 failed operations.

Figures (detection time, heal time, recovery time, counts) are printed as
"figure NAME VALUE" lines.
"""

import base64
import concurrent.futures
import hashlib
import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "test", "python"))
import fsrv_server  # noqa: E402  (the course clients' shared read loops)
CLUSTER = os.path.join(REPO, "tools", "cluster.sh")
BIN = os.path.abspath(os.environ.get("FSRV_BIN", os.path.join(REPO, "bin")))
DIR = os.environ.get("FSRV_CLUSTER_DIR", "")

FRONT = "10.200.0.10"
NODES = {1: "10.200.0.2", 2: "10.200.0.3", 3: "10.200.0.4"}
FILE, HTTP, CHAT, STATS = 6666, 8885, 8889, 8404
LOG_PORT = 5514


def figure(name, value):
    print("figure %s %s" % (name, value), flush=True)


# ------------------------------------------------------------ clients

def file_command(addr, line, port=FILE, timeout=30):
    """The course client's send_command: (parsed reply, our local port)."""
    try:
        sock = socket.create_connection((addr, port), timeout=timeout)
    except OSError as e:
        raise ConnectionError("connect: %s (local port 0)" % e) from e
    local = sock.getsockname()[1]
    try:
        sock.sendall((line + "\r\n\r\n").encode())
        return json.loads(fsrv_server.read_course_reply(sock, 1 << 20).decode()), local
    except (ValueError, OSError) as e:
        raise ConnectionError("%s (local port %d)" % (e, local)) from e
    finally:
        sock.close()


class ChatClient(fsrv_server.ChatClient):
    """chat-cli.py's ChatClient (test/python/fsrv_server.py) on one
    persistent connection to a node or the front; every account's password
    is the course's "surabaya"."""

    def __init__(self, addr, port=CHAT):
        super().__init__(port, addr)

    def login(self, username, password="surabaya"):
        return super().login(username, password)


def started(target, count):
    """`count` threads running target(k) for k = 0 .. count - 1, started."""
    pool = [threading.Thread(target=target, args=(k,)) for k in range(count)]
    for t in pool:
        t.start()
    return pool


def inbox_messages(reply):
    """"sender:msg" strings of an inbox reply, in reply order."""
    out = []
    for sender, msgs in reply["messages"].items():
        out += ["%s:%s" % (sender, m["msg"]) for m in msgs]
    return out


def haproxy_servers():
    """{(backend, server): status} from the HAProxy stats page (CSV)."""
    c = http.client.HTTPConnection(FRONT, STATS, timeout=5)
    c.request("GET", "/stats;csv")
    rows = c.getresponse().read().decode().splitlines()
    c.close()
    out = {}
    for row in rows[1:]:
        f = row.split(",")
        if len(f) > 17:
            out[(f[0], f[1])] = f[17]
    return out


def wait_backend(backend, server, want, timeout):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if haproxy_servers().get((backend, server), "").startswith(want):
            return time.monotonic() - t0
        time.sleep(0.05)
    raise AssertionError("%s/%s not %s after %s s" % (backend, server, want, timeout))


class ConnLog:
    """HAProxy's per-connection log lines (syslog over UDP): which server each
    client port was given."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", LOG_PORT))
        self.sock.settimeout(0.2)
        self.by_port = {}
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        pat = re.compile(r"conn [\d.]+:(\d+) (\S+) (\S+) (\S+) (\d+)")
        while not self.stop:
            try:
                data = self.sock.recv(4096).decode(errors="replace")
            except socket.timeout:
                continue
            m = pat.search(data)
            if m:
                self.by_port.setdefault(int(m.group(1)), []).append(
                    (m.group(2), m.group(3), m.group(4)))

    def close(self):
        time.sleep(1.0)  # the last lines are sent when the connections end
        self.stop = True
        self.thread.join()
        self.sock.close()


def payload(name, size):
    """Deterministic content of an upload: anyone can check it from its name."""
    seed = hashlib.sha256(name.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def in_ns(*cmd, check=True, **kw):
    return subprocess.run(list(cmd), check=check, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, **kw)


def node_pid(n):
    with open(os.path.join(DIR, "pids", "node%d.ns" % n)) as f:
        return int(f.read().strip())


def restart_node(n):
    subprocess.run([CLUSTER, "start-node", "--dir", DIR, "--bin", BIN, str(n)], check=True,
                   env=dict(os.environ, FSRV_IN_NS="1"), stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, timeout=60)
    wait_backend("file", "node%d" % n, "UP", 20)


# ------------------------------------------------------------ tests

class Cluster(unittest.TestCase):
    def test_1_course_clients_through_haproxy(self):
        data = os.urandom(200000)
        up, _ = file_command(FRONT, "UPLOAD kursus.bin " + base64.b64encode(data).decode())
        self.assertEqual(up["status"], "OK", up)
        got, _ = file_command(FRONT, "GET kursus.bin")
        self.assertEqual(base64.b64decode(got["data_file"]), data)
        lst, _ = file_command(FRONT, "LIST")
        self.assertIn("kursus.bin", lst["data"])
        # What node 1 committed, node 2 and node 3 serve at once.
        blob = os.urandom(100000)
        up, _ = file_command(NODES[1], "UPLOAD lintas.bin " + base64.b64encode(blob).decode())
        self.assertEqual(up["status"], "OK")
        for n in (2, 3):
            got, _ = file_command(NODES[n], "GET lintas.bin")
            self.assertEqual(base64.b64decode(got["data_file"]), blob, "node %d" % n)
            self.assertIn("lintas.bin", file_command(NODES[n], "LIST")[0]["data"])
        # The seed-004 HTTP client: POST /upload, /listdir, GET, DELETE.
        body = os.urandom(150000)
        c = http.client.HTTPConnection(FRONT, HTTP, timeout=30)
        c.request("POST", "/upload/seed.bin", body=body)
        r = c.getresponse()
        self.assertEqual((r.status, r.read()), (200, b"File seed.bin uploaded successfully"))
        c.request("GET", "/listdir")
        names = [f["name"] for f in json.loads(c.getresponse().read())]
        self.assertIn("seed.bin", names)
        c.request("GET", "/seed.bin")
        self.assertEqual(c.getresponse().read(), body)
        c.request("DELETE", "/delete/seed.bin")
        self.assertEqual(c.getresponse().status, 200)
        c.close()
        # The chat client: a token from one connection works on another
        # (HAProxy may give each a different node).
        a, b = ChatClient(FRONT), ChatClient(FRONT)
        self.assertEqual(a.login("messi")["status"], "OK")
        self.assertEqual(b.login("henderson")["status"], "OK")
        self.assertEqual(a.sendmessage("henderson", "halo lewat haproxy")["status"], "OK")
        self.assertEqual(inbox_messages(b.inbox()), ["messi:halo lewat haproxy"])
        a.close()
        b.close()

    def test_2_chat_sent_through_node1_read_through_node3_once(self):
        n1, n3 = ChatClient(NODES[1]), ChatClient(NODES[3])
        self.assertEqual(n1.login("messi")["status"], "OK")
        self.assertEqual(n3.login("lineker")["status"], "OK")
        users = n1.sendstring("listuser %s \r\n" % n1.tokenid)["listuseraktif"].split()
        self.assertIn("lineker", users)  # a session made on node 3, seen by node 1
        self.assertEqual(n1.sendmessage("lineker", "dari node satu")["status"], "OK")
        self.assertEqual(inbox_messages(n3.inbox()), ["messi:dari node satu"])
        self.assertEqual(inbox_messages(n3.inbox()), [])
        # The token made on node 1 works on node 3.
        other = ChatClient(NODES[3])
        other.tokenid = n1.tokenid
        self.assertEqual(other.sendmessage("lineker", "token lintas node")["status"], "OK")
        self.assertEqual(inbox_messages(n3.inbox()), ["messi:token lintas node"])
        for c in (n1, n3, other):
            c.close()

    def test_3_twenty_readers_of_one_inbox_through_three_nodes(self):
        sender = ChatClient(FRONT)
        self.assertEqual(sender.login("messi")["status"], "OK")
        readers = []
        for i in range(20):
            c = ChatClient(NODES[1 + i % 3])
            self.assertEqual(c.login("henderson")["status"], "OK")
            readers.append(c)
        readers[0].inbox()  # start empty
        total = 300
        done = threading.Event()
        got = [[] for _ in readers]
        errors = []

        def read(k):
            try:
                while True:
                    last = done.is_set()
                    got[k] += inbox_messages(readers[k].inbox())
                    if last:
                        return
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))

        threads = [threading.Thread(target=read, args=(k,)) for k in range(len(readers))]
        for t in threads:
            t.start()
        for i in range(total):
            self.assertEqual(sender.sendmessage("henderson", "m%d" % i)["status"], "OK")
        done.set()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        every = [m for g in got for m in g]
        self.assertEqual(len(every), total, "delivered %d of %d" % (len(every), total))
        self.assertEqual(len(set(every)), total, "some message delivered twice")
        figure("inbox_readers_that_got_messages", sum(1 for g in got if g))
        for c in readers + [sender]:
            c.close()

    def test_4_node_sigkilled_under_load(self):
        seeded = {}
        for i in range(20):
            name = "seed%02d.bin" % i
            seeded[name] = payload(name, 20000 + 7919 * i)
            up, _ = file_command(FRONT, "UPLOAD %s %s" % (name, base64.b64encode(seeded[name]).decode()))
            self.assertEqual(up["status"], "OK")
        log = ConnLog()
        stop = threading.Event()
        ops = []  # (kind, ok, detail, local port)
        acked = {}  # name -> size of acknowledged uploads
        corrupt = []
        lock = threading.Lock()

        def client(k):
            rng = random.Random(k)
            n = 0
            while not stop.is_set():
                n += 1
                if rng.random() < 0.5:
                    name = rng.choice(sorted(seeded))
                    try:
                        r, port = file_command(FRONT, "GET " + name, timeout=20)
                        ok = r.get("status") == "OK"
                        if ok and base64.b64decode(r["data_file"]) != seeded[name]:
                            with lock:
                                corrupt.append(name)
                        rec = ("GET", ok, r.get("data", ""), port)
                    except ConnectionError as e:
                        rec = ("GET", False, str(e), int(str(e).rsplit(" ", 1)[1].rstrip(")")))
                else:
                    name = "load-%d-%d.bin" % (k, n)
                    size = rng.randrange(10000, 120000)
                    line = "UPLOAD %s %s" % (name, base64.b64encode(payload(name, size)).decode())
                    try:
                        r, port = file_command(FRONT, line, timeout=20)
                        ok = r.get("status") == "OK"
                        if ok:
                            with lock:
                                acked[name] = size
                        rec = ("UPLOAD", ok, r.get("data", ""), port)
                    except ConnectionError as e:
                        rec = ("UPLOAD", False, str(e), int(str(e).rsplit(" ", 1)[1].rstrip(")")))
                with lock:
                    ops.append(rec)

        pool = started(client, 50)
        time.sleep(3)
        victim = node_pid(2)
        t_kill = time.monotonic()
        os.killpg(victim, signal.SIGKILL)  # the master and its workers, as a machine dies
        self.addCleanup(restart_node, 2)  # also when an assertion below fails
        detect = wait_backend("file", "node2", "DOWN", 10)
        figure("haproxy_marks_killed_node_down_s", "%.2f" % detect)
        time.sleep(max(0.0, 4 - (time.monotonic() - t_kill)))
        stop.set()
        for t in pool:
            t.join(60)
        log.close()

        failed = [o for o in ops if not o[1]]
        figure("load_operations", len(ops))
        figure("load_failed_operations", len(failed))
        figure("load_acknowledged_uploads", len(acked))
        self.assertGreater(len(ops), 100)
        self.assertEqual(corrupt, [], "corrupt GETs")
        # Every failure was on a connection HAProxy had given to node 2. A
        # client port is reused over the test (by other file connections, by
        # the stats polls above), so the port's file-backend connections must
        # include one to node 2, and every one of them that HAProxy saw end
        # abnormally (termination state other than "--") was node 2's.
        for kind, _, detail, port in failed:
            conns = [(s, ts) for b, s, ts in log.by_port.get(port, []) if b == "file"]
            servers = {s for s, _ in conns}
            abnormal = {s for s, ts in conns if ts != "--"}
            self.assertIn("node2", servers,
                          "%s failed (%s) on port %d served by %s" % (kind, detail, port, conns))
            self.assertLessEqual(abnormal, {"node2"},
                                 "%s failed (%s) on port %d: %s" % (kind, detail, port, conns))
        # 0 acknowledged uploads lost: each reads back byte-exact through HAProxy.
        lost = []
        for name, size in sorted(acked.items()):
            r, _ = file_command(FRONT, "GET " + name)
            if r.get("status") != "OK" or base64.b64decode(r["data_file"]) != payload(name, size):
                lost.append(name)
        self.assertEqual(lost, [], "acknowledged uploads lost or wrong")

    def test_5_brick_killed_mid_load_then_heals(self):
        brick = os.path.join(DIR, "brick1")
        out = in_ns("pgrep", "-f", "glusterfsd.*--brick-name %s( |$)" % brick).stdout.split()
        self.assertEqual(len(out), 1, out)
        written = {}
        errors = []
        stop = threading.Event()

        def writer(k):
            n = 0
            while not stop.is_set():
                n += 1
                name = "brick-%d-%d.bin" % (k, n)
                data = payload(name, 30000 + 1000 * k)
                try:
                    r, _ = file_command(FRONT, "UPLOAD %s %s" % (name, base64.b64encode(data).decode()))
                    if r["status"] != "OK":
                        errors.append(r)
                        continue
                    written[name] = data
                    g, _ = file_command(FRONT, "GET " + name)
                    if base64.b64decode(g["data_file"]) != data:
                        errors.append("corrupt " + name)
                except Exception as e:  # noqa: BLE001 - reported below
                    errors.append(repr(e))

        pool = started(writer, 10)
        time.sleep(1.5)
        os.kill(int(out[0]), signal.SIGKILL)
        time.sleep(3)
        stop.set()
        for t in pool:
            t.join(60)
        self.assertEqual(errors, [], "service did not continue with one brick")
        self.assertGreater(len(written), 20)
        in_ns("gluster", "--mode=script", "volume", "start", "fsrv", "force")
        t0 = time.monotonic()
        while True:
            info = in_ns("gluster", "--mode=script", "volume", "heal", "fsrv", "info", check=False).stdout
            counts = [int(x) for x in re.findall(r"Number of entries: (\d+)", info)]
            if len(counts) == 2 and counts == [0, 0]:
                break
            self.assertLess(time.monotonic() - t0, 90, info)
            time.sleep(0.5)
        figure("brick_heal_s", "%.1f" % (time.monotonic() - t0))
        figure("brick_test_files", len(written))
        for name, data in written.items():
            for b in ("brick1", "brick2"):
                with open(os.path.join(DIR, b, name), "rb") as f:
                    self.assertEqual(f.read(), data, "%s on %s" % (name, b))

    def test_6_postgres_stopped_then_chat_recovers(self):
        pg = os.path.join(DIR, "pg")
        ctl = ["runuser", "-u", "postgres", "--", "/usr/lib/postgresql/15/bin/pg_ctl", "-D",
               os.path.join(pg, "data")]
        a, b = ChatClient(FRONT), ChatClient(FRONT)
        self.assertEqual(a.login("messi")["status"], "OK")
        self.assertEqual(b.login("henderson")["status"], "OK")
        self.assertEqual(a.sendmessage("henderson", "sebelum berhenti")["status"], "OK")
        in_ns(*ctl, "-m", "immediate", "-w", "stop")
        try:
            for i in range(10):
                t0 = time.monotonic()
                r = a.sendmessage("henderson", "saat mati %d" % i)
                self.assertLess(time.monotonic() - t0, 5)
                self.assertEqual(r["status"], "ERROR")
                self.assertIn("chat database unavailable", r["message"])
                # file and http through HAProxy are unaffected
                self.assertEqual(file_command(FRONT, "LIST")[0]["status"], "OK")
                c = http.client.HTTPConnection(FRONT, HTTP, timeout=30)
                c.request("GET", "/kursus.bin")
                r = c.getresponse()
                self.assertEqual((r.status, len(r.read())), (200, 200000))
                c.close()
            h = json.loads(in_ns("curl", "-s", "http://%s:9100/healthz" % NODES[1]).stdout)
            self.assertFalse(h["services"]["chat"]["ready"])
        finally:
            in_ns(*ctl, "-l", os.path.join(pg, "postgres.log"), "-o",
                  "-k %s -c listen_addresses=10.200.0.5 -c max_connections=300" % pg, "-w", "start")
        t0 = time.monotonic()
        while True:
            r = a.sendmessage("henderson", "setelah pulih")
            if r["status"] == "OK":
                break
            self.assertLess(time.monotonic() - t0, 20, r)
            time.sleep(0.1)
        # Each database thread of each node reconnects on its own backoff
        # (at most 2 s): the reader's may need a moment longer.
        while True:
            r = b.inbox()
            if r["status"] == "OK":
                break
            self.assertIn("chat database unavailable", r["message"])
            self.assertLess(time.monotonic() - t0, 20, r)
            time.sleep(0.1)
        figure("chat_recovery_after_postgres_restart_s", "%.2f" % (time.monotonic() - t0))
        self.assertEqual(inbox_messages(r), ["messi:sebelum berhenti", "messi:setelah pulih"])
        a.close()
        b.close()


    def test_7_two_nodes_uploading_one_name_leave_one_whole_content(self):
        # Why uploads take the named-temporary path here (docs/CLUSTER.md):
        # the FUSE mount has no O_TMPFILE.
        with self.assertRaises(OSError) as no_tmpfile:
            os.close(os.open(os.path.join(DIR, "mnt1"), os.O_TMPFILE | os.O_RDWR, 0o644))
        figure("o_tmpfile_on_glusterfs_fuse", os.strerror(no_tmpfile.exception.errno))
        self.assertEqual(no_tmpfile.exception.errno, 95)  # EOPNOTSUPP
        rounds = 10
        for r in range(rounds):
            name = "sama-%d.bin" % r
            contents = {1: payload("a%d" % r, 400000), 2: payload("b%d" % r, 300000)}
            results = {}

            def upload(n):
                results[n] = file_command(NODES[n], "UPLOAD %s %s" % (
                    name, base64.b64encode(contents[n]).decode()))[0]["status"]

            threads = [threading.Thread(target=upload, args=(n,)) for n in (1, 2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(results, {1: "OK", 2: "OK"})
            got = base64.b64decode(file_command(NODES[3], "GET " + name)[0]["data_file"])
            self.assertIn(got, (contents[1], contents[2]), "round %d: a mix" % r)
            for b in ("brick1", "brick2"):
                with open(os.path.join(DIR, b, name), "rb") as f:
                    self.assertEqual(f.read(), got, "round %d, %s" % (r, b))
        # No temporary is left on the shared root.
        left = [n for n in os.listdir(os.path.join(DIR, "brick1")) if n.startswith(".upload-")]
        self.assertEqual(left, [])

    def test_8_sigterm_drains_a_node_without_failing_clients(self):
        stop = threading.Event()
        failures, count = [], [0]

        def client(k):
            n = 0
            while not stop.is_set():
                n += 1
                name = "drain-%d-%d.bin" % (k, n)
                try:
                    r, _ = file_command(FRONT, "UPLOAD %s %s" % (
                        name, base64.b64encode(payload(name, 50000)).decode()))
                    g, _ = file_command(FRONT, "GET " + name)
                    if r["status"] != "OK" or base64.b64decode(g["data_file"]) != payload(name, 50000):
                        failures.append(name)
                except ConnectionError as e:
                    failures.append(str(e))
                count[0] += 1

        pool = started(client, 10)
        time.sleep(1.5)
        victim = node_pid(3)
        t0 = time.monotonic()
        os.kill(victim, signal.SIGTERM)  # the master: health fails, then it drains
        detect = wait_backend("file", "node3", "DOWN", 10)
        figure("haproxy_sees_draining_node_s", "%.2f" % detect)
        while time.monotonic() - t0 < 20:
            try:
                os.kill(victim, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        figure("drained_node_exit_s", "%.2f" % (time.monotonic() - t0))
        time.sleep(1)
        stop.set()
        for t in pool:
            t.join(60)
        figure("drain_test_operations", count[0])
        self.assertEqual(failures, [], "a graceful stop failed clients")
        restart_node(3)


# ------------------------------------------------------------ driver

def main():
    global DIR
    # A SIGTERM (make's timeout, Ctrl-C's cousin) still brings the stack down.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if os.environ.get("FSRV_IN_NS") == "1":
        unittest.main(argv=[sys.argv[0], "-v"] + sys.argv[1:])
        return
    DIR = tempfile.mkdtemp(prefix="fsrv-cluster-test-")
    t0 = time.monotonic()
    rc = 1
    try:
        subprocess.run([CLUSTER, "up", "--dir", DIR, "--bin", BIN], check=True)
        figure("cluster_up_s", "%.1f" % (time.monotonic() - t0))
        env = ["env", "FSRV_IN_NS=1", "FSRV_CLUSTER_DIR=" + DIR, "FSRV_BIN=" + BIN]
        rc = subprocess.run([CLUSTER, "exec", "--dir", DIR, "--"] + env +
                            [sys.executable, os.path.abspath(__file__)] + sys.argv[1:]).returncode
    finally:
        t1 = time.monotonic()
        subprocess.run([CLUSTER, "down", "--dir", DIR])
        figure("cluster_down_s", "%.1f" % (time.monotonic() - t1))
    left = subprocess.run(["pgrep", "-f", DIR], stdout=subprocess.PIPE, text=True).stdout.split()
    left = [p for p in left if int(p) != os.getpid()]
    if left or os.path.exists(DIR):
        print("cluster test: left behind: pids %s, dir exists %s" % (left, os.path.exists(DIR)))
        rc = rc or 1
    figure("test_cluster_total_s", "%.1f" % (time.monotonic() - t0))
    sys.exit(rc)


if __name__ == "__main__":
    main()
