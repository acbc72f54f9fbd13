#!/usr/bin/env python3
"""A client of the file-marker service in the shape of seed 001's
client_pool.py (stdlib only; tqdm is used for progress bars when installed).

    marker_client_pool.py [upload|download] [10MB|50MB|100MB|<N>B] N [thread|process]
        [--host H] [--port P] [--dir D]

upload: writes D/<size>_<i>.bin (random bytes) for i < N unless present and
uploads them in parallel; download: fetches <size>_<i>.bin into D/downloads/.
Prints one line per file with its SHA-256 and time, then a summary; exits 1
on any failure. Protocol as seed 001's client speaks it: the bare command
(no terminator), READY, base64 of each 1 MiB chunk encoded on its own (so
'=' padding appears mid-stream), then "__END__".
"""

import argparse
import base64
import concurrent.futures
import hashlib
import os
import socket
import sys
import time

CHUNK = 1024 * 1024  # the seed client's read size: one base64 segment each
END = b"__END__"
SIZES = {"10MB": 10 * 1000 * 1000, "50MB": 50 * 1000 * 1000, "100MB": 100 * 1000 * 1000}


def parse_size(text):
    if text in SIZES:
        return SIZES[text]
    if text.endswith("B") and text[:-1].isdigit():
        return int(text[:-1])
    raise argparse.ArgumentTypeError("size must be 10MB, 50MB, 100MB or <bytes>B")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def make_file(path, size):
    if os.path.exists(path) and os.path.getsize(path) == size:
        return
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, CHUNK)
            f.write(os.urandom(n))
            left -= n


def upload(host, port, path, name):
    """Returns (name, ok, message, sha256, seconds)."""
    t0 = time.time()
    with socket.create_connection((host, port), timeout=120) as s:
        s.sendall(("UPLOAD %s" % name).encode())
        ready = s.recv(1024).decode()
        if ready != "READY":
            return name, False, ready, "", time.time() - t0
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(CHUNK), b""):
                s.sendall(base64.b64encode(chunk))  # each chunk padded on its own
        s.sendall(END)
        reply = s.recv(1024).decode()
    return name, reply == "Upload successful", reply, sha256_file(path), time.time() - t0


def download(host, port, name, out_path):
    """Streams the base64 reply to out_path; returns (name, ok, message, sha256, seconds)."""
    t0 = time.time()
    h = hashlib.sha256()
    pending = b""  # base64 not yet decoded (kept a multiple of 4 plus the tail)
    with socket.create_connection((host, port), timeout=120) as s, open(out_path, "wb") as out:
        s.sendall(("DOWNLOAD %s" % name).encode())
        first = True
        while True:
            data = s.recv(1 << 20)
            if not data:
                return name, False, "connection closed before __END__", "", time.time() - t0
            pending += data
            if first and pending.startswith(b"File not found"[:len(pending)]):
                if pending == b"File not found":
                    return name, False, "File not found", "", time.time() - t0
                continue
            first = False
            if pending.endswith(END):
                raw = base64.b64decode(pending[:-len(END)], validate=True)
                out.write(raw)
                h.update(raw)
                break
            # Decode whole quanta, keeping 7 bytes back: the marker may start there.
            keep = len(END) + (len(pending) - len(END)) % 4
            if len(pending) > keep:
                raw = base64.b64decode(pending[:-keep], validate=True)
                out.write(raw)
                h.update(raw)
                pending = pending[-keep:]
    return name, True, "ok", h.hexdigest(), time.time() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("op", choices=["upload", "download"])
    ap.add_argument("size", type=parse_size)
    ap.add_argument("n", type=int)
    ap.add_argument("pool", choices=["thread", "process"])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8995)
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
        try:
            from tqdm import tqdm  # optional, as in the seed
            done = tqdm(concurrent.futures.as_completed(futures), total=len(futures))
        except ImportError:
            done = concurrent.futures.as_completed(futures)
        results = [f.result() for f in done]
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
