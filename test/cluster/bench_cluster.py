#!/usr/bin/env python3
"""make bench-cluster: throughput of one fsrv node direct against HAProxy in
front of 1 and of 3 nodes, in one run on one stack (tools/cluster.sh):

- file GET and UPLOAD aggregate: bin/stress with BENCH_CLIENTS clients at
  once, each one GET (or UPLOAD) of BENCH_SIZE bytes (course protocol,
  base64, content checked by xxHash), best of BENCH_RUNS;
- chat messages/s: BENCH_CLIENTS senders (one persistent connection each,
  their own token) sending for BENCH_SECONDS; the receiver's inbox is then
  checked to hold every acknowledged message.

"HAProxy, 1 node" disables node2 and node3 through HAProxy's runtime API;
"3 nodes" enables them again. On 2 shared cores the three nodes, HAProxy,
two bricks, three FUSE clients, PostgreSQL and the clients all share the
same CPUs: the ratio measures the proxy's overhead, not scaling.
Prints a markdown table (docs/PERFORMANCE.md keeps the last one).
"""

import re
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_cluster as tc  # noqa: E402  (clients and the stack driver)

SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "12"))
STRESS_SIZE = int(os.environ.get("BENCH_SIZE", "20000000"))
STRESS_RUNS = int(os.environ.get("BENCH_RUNS", "3"))


def runtime_api(command):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect("/run/haproxy.sock")
    s.sendall(command.encode() + b"\n")
    out = tc.fsrv_server.recv_all(s, 4096)
    s.close()
    return out.decode()


def set_nodes(count):
    for backend in ("file", "chat"):
        for n in (2, 3):
            verb = "enable" if n <= count else "disable"
            runtime_api("%s server %s/node%d" % (verb, backend, n))
    time.sleep(1.0)


def stress(addr, op):
    """bin/stress: STRESS_CLIENTS clients at once, each one GET (download) or
    UPLOAD of STRESS_SIZE bytes, content checked (xxHash); aggregate MB/s."""
    out = subprocess.run(
        [os.path.join(tc.BIN, "stress"), "--host", addr, "--port", str(tc.FILE), "--op", op,
         "--size", str(STRESS_SIZE), "--clients", str(CLIENTS), "--server-workers", "2",
         "--mode-label", "process", "--cache-dir", os.path.join(tc.DIR, "stress-cache")]
        + (["--verify-uploads"] if op == "upload" else []),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300).stdout
    m = re.search(r"aggregate ([\d.]+) MB/s; client ok (\d+) failed (\d+)", out)
    if not m:
        raise RuntimeError("stress: " + out[-500:])
    return float(m.group(1)), int(m.group(3))


def bench_files(addr):
    """Best of STRESS_RUNS for GET and for UPLOAD; failures summed."""
    get = up = 0.0
    failed = 0
    for _ in range(STRESS_RUNS):
        g, f1 = stress(addr, "download")
        u, f2 = stress(addr, "upload")
        get, up, failed = max(get, g), max(up, u), failed + f1 + f2
    return get, up, failed


def bench_chat(addr):
    recv = tc.ChatClient(addr)
    assert recv.login("henderson")["status"] == "OK"
    recv.inbox()
    stop = threading.Event()
    sent = [0] * CLIENTS
    errors = [0]

    def sender(k):
        c = tc.ChatClient(addr)
        c.login("messi")
        while not stop.is_set():
            r = c.sendmessage("henderson", "b%d-%d" % (k, sent[k]))
            if r["status"] == "OK":
                sent[k] += 1
            else:
                errors[0] += 1
        c.close()

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(CLIENTS)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(SECONDS)
    stop.set()
    for t in threads:
        t.join()
    secs = time.monotonic() - t0
    got = len(tc.inbox_messages(recv.inbox()))
    recv.close()
    assert got == sum(sent), "inbox holds %d of %d acknowledged messages" % (got, sum(sent))
    return sum(sent) / secs, errors[0]


def inside():
    rows = []
    # node1 direct is measured first and again last: the spread of the two
    # is the noise of this shared machine.
    for label, addr, nodes in (("node1 direct", tc.NODES[1], None),
                               ("HAProxy, 1 node", tc.FRONT, 1),
                               ("HAProxy, 3 nodes", tc.FRONT, 3),
                               ("node1 direct (again)", tc.NODES[1], None)):
        if nodes is not None:
            set_nodes(nodes)
        get, up, ferr = bench_files(addr)
        msgs, cerr = bench_chat(addr)
        rows.append((label, get, up, msgs, ferr + cerr))
        print("bench %s: GET %.0f MB/s, UPLOAD %.0f MB/s (%d failed), chat %.0f msg/s (%d errors)"
              % (label, get, up, ferr, msgs, cerr), flush=True)
    base = rows[0]
    print()
    print("| path | GET MB/s | vs direct | UPLOAD MB/s | vs direct | chat msg/s | vs direct | failures |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, get, up, msgs, err in rows:
        print("| %s | %.0f | %.2f | %.0f | %.2f | %.0f | %.2f | %d |"
              % (label, get, get / base[1], up, up / base[2], msgs, msgs / base[3], err))
    print()
    print("(%d clients at once, each one GET or UPLOAD of %d bytes, best of %d runs, bin/stress;"
          " chat: %d senders for %g s, every acknowledged message found in the inbox)"
          % (CLIENTS, STRESS_SIZE, STRESS_RUNS, CLIENTS, SECONDS))


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if os.environ.get("FSRV_IN_NS") == "1":
        tc.DIR = os.environ["FSRV_CLUSTER_DIR"]
        inside()
        return
    d = tempfile.mkdtemp(prefix="fsrv-cluster-bench-")
    rc = 1
    try:
        subprocess.run([tc.CLUSTER, "up", "--dir", d, "--bin", tc.BIN], check=True,
                       stdout=subprocess.DEVNULL)
        env = ["env", "FSRV_IN_NS=1", "FSRV_CLUSTER_DIR=" + d, "FSRV_BIN=" + tc.BIN,
               "BENCH_SECONDS=%g" % SECONDS, "BENCH_CLIENTS=%d" % CLIENTS,
               "BENCH_SIZE=%d" % STRESS_SIZE, "BENCH_RUNS=%d" % STRESS_RUNS]
        rc = subprocess.run([tc.CLUSTER, "exec", "--dir", d, "--"] + env +
                            [sys.executable, os.path.abspath(__file__)]).returncode
    finally:
        subprocess.run([tc.CLUSTER, "down", "--dir", d])
    sys.exit(rc)


if __name__ == "__main__":
    main()
