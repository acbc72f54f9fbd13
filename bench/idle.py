#!/usr/bin/env python3
"""`make bench-idle`: memory per idle connection, ours against nginx.

    bench/idle.py BIN_DIR

For each server (ours in process and thread mode with 2 workers, serving
http and file; nginx with 2 workers serving http) it opens CONNS (10,000)
TCP connections spread over several source addresses (127.0.0.2 ...,
each address gives its own 28k ephemeral ports), holds them with no request,
and reports the growth of the summed RSS of the server's processes per
connection. The growth is counted from a warmed server: WARM (300)
connections are opened first, each with one request on http, and kept
open, so the code pages and allocator arenas a server touches once (about
0.55 MiB of libstdc++ and our own text per prefork worker, paged in at its
first connections whatever their number) are not charged to the CONNS
connections; the table also gives the growth counted from the cold start,
as this bench reported before. Then it sends one keep-alive GET of a 4 KiB file on every http
connection, reads the reply, and measures again (a connection that served
a request and waits for the next). With the connections still open, wrk
(-t2 -c50 -d5s, 4 KiB) gives the request rate beside them. The fd limit of
this process and of the servers it starts is raised to FD_LIMIT (65536, or
the hard limit if lower).

Environment: FRESH (1: serve a just-written file, see below; 0),
CONNS (10000; 6000 under a hard fd limit below 32768), WARM (300), FD_LIMIT
(65536), SETTLE (seconds after opening before measuring, 1.0).
"""
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time

# Our server admits about a third of its fd limit (it keeps descriptors for
# the files its connections open): 10,000 connections need a hard limit of
# 32k; under a lower hard limit (20,000 in this project's containers, where
# it cannot be raised) the default is 6,000.
_HARD = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
CONNS = int(os.environ.get("CONNS", "10000" if _HARD == resource.RLIM_INFINITY or _HARD >= 32768
                           else "6000"))
FD_LIMIT = int(os.environ.get("FD_LIMIT", "65536"))
SETTLE = float(os.environ.get("SETTLE", "1.0"))
WARM = int(os.environ.get("WARM", "300"))
# FRESH=1 serves a file written at start: our small-file cache does not take
# files modified in the last second, so every request of the burst goes to
# the executor at once (the residue that burst leaves in the heap shows in
# the "after one request" column).
FRESH = int(os.environ.get("FRESH", "0"))
SOURCES = [f"127.0.0.{i}" for i in range(2, 12)]


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def tree_rss_kb(pid):
    """VmRSS summed over pid and its children, KiB."""
    pids = [pid]
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
        pids += [int(p) for p in out.split()]
    except OSError:
        pass
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def wait_port(port):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def open_idle(port, n):
    socks = []
    for i in range(n):
        s = socket.socket()
        s.bind((SOURCES[i % len(SOURCES)], 0))
        s.connect(("127.0.0.1", port))
        socks.append(s)
    return socks


def one_request_each(socks):
    req = b"GET /4k.bin HTTP/1.1\r\nHost: b\r\n\r\n"
    for s in socks:
        s.sendall(req)
    bad = 0
    for s in socks:
        got = b""
        s.settimeout(30)
        while b"\r\n\r\n" not in got or len(got) < got.find(b"\r\n\r\n") + 4 + 4096:
            chunk = s.recv(65536)
            if not chunk:
                bad += 1
                break
            got += chunk
        if not got.startswith(b"HTTP/1.1 200"):
            if bad == 0:
                print(f"bench-idle: first failed reply: {got[:200]!r}", file=sys.stderr)
            bad += 1
    return bad


def wrk_rate(port):
    out = subprocess.run(["wrk", "-t2", "-c50", "-d5s", f"http://127.0.0.1:{port}/4k.bin"],
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    return 0.0


def measure(label, pid, port, http, rows):
    time.sleep(SETTLE)
    cold = tree_rss_kb(pid)
    # The warm-up: connections that page in the accept (and request) paths
    # in every worker, held open to the end so their memory stays counted
    # in the base and is not reused by the measured connections.
    warm = open_idle(port, WARM)
    bad_warm = one_request_each(warm) if http else 0
    time.sleep(SETTLE)
    base = tree_rss_kb(pid)
    socks = open_idle(port, CONNS)
    time.sleep(SETTLE)
    idle = tree_rss_kb(pid)
    row = {"label": label, "base": base, "idle": (idle - base) / CONNS,
           "cold": (idle - cold) / (CONNS + WARM)}
    if http:
        bad = one_request_each(socks)
        time.sleep(SETTLE)
        after = tree_rss_kb(pid)
        row["after"] = (after - base) / CONNS
        row["bad"] = bad + bad_warm
        row["wrk"] = wrk_rate(port)
    alive = sum(1 for s in socks if s.fileno() >= 0)
    for s in socks + warm:
        s.close()
    row["open"] = alive
    rows.append(row)
    print(f"bench-idle: {label}: {row}", file=sys.stderr)


def main():
    bin_dir = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "bin")
    global FD_LIMIT
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < FD_LIMIT:
        FD_LIMIT = hard  # raising the hard limit needs CAP_SYS_RESOURCE
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))
    if FD_LIMIT < 3 * (CONNS + WARM) + 300:
        sys.exit(f"bench-idle: fd limit {FD_LIMIT} is too low for CONNS={CONNS}")
    tmp = tempfile.mkdtemp(prefix="fsrv-bench-idle-")
    procs = []
    rows = []
    try:
        files = os.path.join(tmp, "files")
        os.makedirs(files)
        with open(os.path.join(files, "4k.bin"), "wb") as f:
            f.write(os.urandom(4096))
        if FRESH == 0:  # a static file is old: cached (ours and nginx's open_file_cache)
            old = time.time() - 60
            os.utime(os.path.join(files, "4k.bin"), (old, old))
        load = open("/proc/loadavg").read().split()[:3]
        for mode in ("process", "thread"):
            for service in ("http", "file"):
                # A fresh server per row: memory freed by one row's connections
                # would be reused by the next and hide its growth.
                (port,) = free_ports(1)
                p = subprocess.Popen(
                    [os.path.join(bin_dir, "fileserver"), "--mode", mode, "--workers", "2",
                     "--host", "127.0.0.1", "--listen", f"{service}={port}", "--root", files,
                     "--log-level", "error", "--max-conns", str(CONNS + WARM + 100),
                     "--max-conns-per-address", "0", "--idle-timeout", "600"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                procs.append(p)
                wait_port(port)
                measure(f"ours {mode}, {service}", p.pid, port, service == "http", rows)
                p.terminate()
                p.wait(timeout=30)
        (port,) = free_ports(1)
        ng = os.path.join(tmp, "nginx")
        os.makedirs(ng)
        user = "user root root;" if os.getuid() == 0 else ""
        with open(os.path.join(ng, "nginx.conf"), "w") as f:
            f.write(f"""{user}
worker_processes 2;
worker_rlimit_nofile {FD_LIMIT};
daemon off;
pid {ng}/nginx.pid;
error_log {ng}/error.log error;
events {{ worker_connections {CONNS + WARM + 1000}; }}
http {{
  access_log off; sendfile on; tcp_nopush on; keepalive_requests 100000;
  keepalive_timeout 600s; client_header_timeout 600s;
  open_file_cache max=10000 inactive=60s; open_file_cache_valid 30s;
  client_body_temp_path {ng}/body; proxy_temp_path {ng}/proxy;
  fastcgi_temp_path {ng}/fastcgi; uwsgi_temp_path {ng}/uwsgi; scgi_temp_path {ng}/scgi;
  server {{ listen 127.0.0.1:{port}; root {files}; }}
}}
""")
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        p = subprocess.Popen([nginx, "-p", ng, "-c", os.path.join(ng, "nginx.conf"), "-e",
                              os.path.join(ng, "error.log")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(p)
        wait_port(port)
        measure("nginx, http", p.pid, port, True, rows)
        p.terminate()
        p.wait(timeout=30)
        load_end = open("/proc/loadavg").read().split()[:3]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print(f"bench-idle {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {CONNS} connections "
          f"per row after {WARM} warm-up connections, from {len(SOURCES)} source addresses, "
          f"load average {' '.join(load)} -> "
          f"{' '.join(load_end)}")
    print()
    print("| server, service | RSS warmed, MiB | KiB per idle connection | "
          "KiB per connection after one request | failed replies | wrk 4 KiB req/s beside them | "
          "KiB per idle connection counted from the cold start |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        after = f"{r['after']:.2f}" if "after" in r else "-"
        bad = str(r["bad"]) if "bad" in r else "-"
        wrk = f"{r['wrk']:.0f}" if "wrk" in r else "-"
        print(f"| {r['label']} | {r['base'] / 1024:.1f} | {r['idle']:.2f} | {after} | {bad} | {wrk} "
              f"| {r['cold']:.2f} |")


if __name__ == "__main__":
    main()
