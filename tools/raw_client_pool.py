#!/usr/bin/env python3
"""A client of the file-raw service (seed 000's raw-bytes dialect) in the
shape of seed 001's client_pool.py (stdlib only).

    raw_client_pool.py [upload|download] [10MB|50MB|100MB|<N>B] N [thread|process]
        [--host H] [--port P] [--dir D]

upload: writes D/<size>_<i>.bin (random bytes) for i < N unless present and
uploads them in parallel; download: fetches <size>_<i>.bin into
D/downloads/. One line per file with its SHA-256, then a summary; exits 1
on any failure. Protocol: "UPLOAD name size\\r\\n" + the raw bytes -> one
status line; "DOWNLOAD name\\r\\n" -> "size\\r\\n" + the raw bytes; an
"ERROR ..." line for any failure.
"""

import argparse
import concurrent.futures
import hashlib
import os
import socket
import sys
import time

from marker_client_pool import CHUNK, make_file, parse_size, sha256_file


def read_line(sock, buf):
    """Reads one "\\r\\n" line; returns (line, rest of the buffer)."""
    while b"\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("connection closed before the end of a line")
        buf += data
    line, rest = buf.split(b"\r\n", 1)
    return line.decode(), rest


def upload(host, port, path, name):
    t0 = time.time()
    size = os.path.getsize(path)
    with socket.create_connection((host, port), timeout=120) as s, open(path, "rb") as f:
        s.sendall(("UPLOAD %s %d\r\n" % (name, size)).encode())
        s.sendfile(f)
        line, _ = read_line(s, b"")
    return name, line.startswith("OK "), line, sha256_file(path), time.time() - t0


def download(host, port, name, out_path):
    t0 = time.time()
    h = hashlib.sha256()
    with socket.create_connection((host, port), timeout=120) as s, open(out_path, "wb") as out:
        s.sendall(("DOWNLOAD %s\r\n" % name).encode())
        line, rest = read_line(s, b"")
        if not line.isdigit():
            return name, False, line, "", time.time() - t0
        left = int(line)
        while True:
            part = rest[:left]
            out.write(part)
            h.update(part)
            left -= len(part)
            if left == 0:
                break
            rest = s.recv(min(left, CHUNK))
            if not rest:
                return name, False, "connection closed mid-file", "", time.time() - t0
    return name, True, "ok", h.hexdigest(), time.time() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("op", choices=["upload", "download"])
    ap.add_argument("size", type=parse_size)
    ap.add_argument("n", type=int)
    ap.add_argument("pool", choices=["thread", "process"])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9000)
    ap.add_argument("--dir", default=".")
    args = ap.parse_args(argv)

    label = "%dB" % args.size
    pool_cls = (concurrent.futures.ThreadPoolExecutor if args.pool == "thread"
                else concurrent.futures.ProcessPoolExecutor)
    os.makedirs(args.dir, exist_ok=True)
    names = ["%s_%d.bin" % (label, i) for i in range(args.n)]
    t0 = time.time()
    with pool_cls(max_workers=args.n) as ex:
        if args.op == "upload":
            paths = [os.path.join(args.dir, n) for n in names]
            for p in paths:
                make_file(p, args.size)
            futures = [ex.submit(upload, args.host, args.port, p, n) for p, n in zip(paths, names)]
        else:
            os.makedirs(os.path.join(args.dir, "downloads"), exist_ok=True)
            futures = [ex.submit(download, args.host, args.port, n,
                                 os.path.join(args.dir, "downloads", n)) for n in names]
        results = [f.result() for f in concurrent.futures.as_completed(futures)]
    failed = 0
    for name, ok, msg, digest, secs in sorted(results):
        print("%s %s %s %.2fs %s" % (name, "OK" if ok else "FAIL", digest, secs, "" if ok else msg))
        failed += not ok
    total = time.time() - t0
    print("%s %d x %d bytes, %s pool: %d ok, %d failed, %.2fs, %.1f MB/s" % (
        args.op, args.n, args.size, args.pool, len(results) - failed, failed, total,
        args.n * args.size / 1e6 / total if total else 0))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
