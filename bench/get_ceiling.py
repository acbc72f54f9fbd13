#!/usr/bin/env python3
"""bench-get-ceiling: how fast can a file-protocol GET be on this machine?

The file protocol's GET reply carries the file as base64 in one JSON reply
(`{"status":"OK","data_namafile":N,"data_file":"<base64>"}\\r\\n\\r\\n`), so
the wire carries 4/3 of the file, and both ends do work iperf3 does not:
the server reads and encodes, the client decodes and writes. This bench
takes the GET apart on loopback, one side at a time, each figure in MB/s of
FILE bytes (10^6 bytes/s) and as a fraction of iperf3's single stream in
the same run, so the ceiling of each end is measured, not argued:

  wire only       a server that sends the reply from memory (pre-encoded)
                  to a client that only receives and discards: the
                  protocol's own ceiling, loopback copies and nothing else
  client-bound    the same memory server to bin/filecli get -o FILE: what
                  filecli (recv, decode, write) reaches with a server that
                  costs almost nothing
  server-bound    bin/fileserver (thread, then process mode) to the
                  discarding client: what our server (pread, encode, send)
                  reaches with a client that costs almost nothing
  filecli         bin/fileserver to bin/filecli, content compared after
  ... N clients   the wire-only and server-bound rows again with CLIENTS
                  (default 50) discarding clients at once, their aggregate

Then the CPU budget of one GET through filecli: the CPU each side used per
GET (the server's threads and workers from /proc/PID/task/*/schedstat,
filecli's from getrusage), and a floor built without our code: the CPU
iperf3 spends per payload byte at both ends (its -J cpu_utilization_percent)
times 4/3 for the base64 wire, plus a plain write(2) loop into a fresh file
and a pread(2) loop of the file from the page cache. Base64's encode and
decode are left out, so the floor is lower than any real GET's. Two cores
give at most twice the wall time in CPU, so no GET through filecli can be
faster than BYTES / (floor / 2): the last line prints that ceiling as a
fraction of iperf3.

Each row is the median of RUNS runs (default 5; env BENCH_RUNS), with its
spread. Env: BENCH_BYTES (default 100000000), BENCH_CLIENTS (default 50),
BENCH_DIR (scratch parent).

    python3 bench/get_ceiling.py [BIN_DIR]        (make bench-get-ceiling)
"""

import base64
import filecmp
import json
import os
import signal
import socket
import statistics
import subprocess
import resource
import sys
import tempfile
import threading
import time

BYTES = int(os.environ.get("BENCH_BYTES", "100000000"))
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "50"))
STEP_TIMEOUT = 120  # seconds for one GET: generous for 100 MB, still ends a hung run
RECV_BYTES = 4 << 20  # the discarding client's read size: one recv drains a loopback burst
IPERF_SECONDS = 3
WRITE_BYTES = 192 << 10  # the floor's write size: filecli's decoded piece (src/client/client.cpp)
PREAD_BYTES = 96 << 10  # the floor's read size: the server's pread step (limits::kGetSendChunk)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MemoryServer:
    """Answers every `GET name` line with one pre-encoded reply from memory:
    the least a server can do (sendall of a buffer, no file, no encoding)."""

    def __init__(self, name: str, data: bytes):
        b64 = base64.b64encode(data)
        head = json.dumps({"status": "OK", "data_namafile": name})[:-1]
        self.reply = memoryview(head.encode() + b', "data_file": "' + b64 + b'"}\r\n\r\n')
        self.wire_bytes = len(self.reply)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            line = b""
            while not line.endswith(b"\n"):
                got = conn.recv(4096)
                if not got:
                    break
                line += got
            if line.startswith(b"GET "):
                conn.sendall(self.reply)


def discard_get(port: int, name: str) -> float:
    """One GET over a fresh connection, reading into one reused buffer and
    keeping only the last 4 bytes (for the terminator). Returns seconds."""
    buf = bytearray(RECV_BYTES)
    view = memoryview(buf)
    tail = b""
    t0 = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=STEP_TIMEOUT) as s:
        s.sendall(b"GET " + name.encode() + b"\r\n")
        while True:
            n = s.recv_into(view)
            if n == 0:
                raise RuntimeError("connection closed before the reply's end")
            tail = (tail + bytes(view[max(0, n - 4):n]))[-4:]
            if tail == b"\r\n\r\n":
                break
    return time.perf_counter() - t0


def discard_many(port: int, name: str, clients: int) -> float:
    """CLIENTS discarding GETs at once; returns the seconds until the last
    ends (the aggregate is clients x file size over that)."""
    errors = []

    def one() -> None:
        try:
            discard_get(port, name)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=one) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} of {clients} GETs failed: {errors[0]}")
    return (time.perf_counter() - t0) / clients


def filecli_get(bin_dir: str, port: int, name: str, out: str) -> float:
    if os.path.exists(out):
        os.unlink(out)
    # The bound is coreutils' timeout, not subprocess.run(timeout=): Python
    # then polls waitpid with sleeps of 0.5 ms doubling to 50 ms, and with
    # those wake-ups beside it filecli ran at 593-869 MB/s in 14 GETs (13 of
    # them at 846-869) against 1,151-1,739 with a blocking wait and 956-1,487
    # under coreutils' timeout (same binary and servers, alternating,
    # 2026-12-07 21:10 UTC): the scheduler then kept filecli and the sender
    # on one core, it seems.
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(["timeout", str(STEP_TIMEOUT), os.path.join(bin_dir, "filecli"), "--port",
                    str(port), "get", name, "-o", out], check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    # filecli's CPU (and coreutils' timeout's, a few hundred microseconds).
    LAST_CLIENT_CPU[0] = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    return wall


LAST_CLIENT_CPU = [0.0]  # seconds of CPU of the last filecli_get's child processes


def tree_cpu(pid: int) -> float:
    """CPU seconds used so far by every thread of PID and of its child
    processes (the prefork workers), from /proc/*/task/*/schedstat
    (nanoseconds on the CPU, first field). Threads that ended are not
    counted; the server's loop and pool threads live as long as it does."""
    pids = [pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                pids.append(int(entry))
    ns = 0
    for p in pids:
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                with open(f"/proc/{p}/task/{t}/schedstat") as f:
                    ns += int(f.read().split()[0])
            except (OSError, ValueError):
                continue
    return ns / 1e9


def write_floor_s(path: str) -> float:
    """CPU seconds of writing BYTES into a fresh file with write(2) of
    WRITE_BYTES from one reused buffer: the page-cache write every client
    that stores the file pays, without receiving or decoding anything."""
    buf = memoryview(os.urandom(WRITE_BYTES))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        t0 = time.thread_time()
        left = BYTES
        while left > 0:
            left -= os.write(fd, buf[:min(left, WRITE_BYTES)])
        return time.thread_time() - t0
    finally:
        os.close(fd)
        os.unlink(path)


def pread_floor_s(path: str) -> float:
    """CPU seconds of reading the (page-cached) file with pread(2) of
    PREAD_BYTES into one reused buffer: the server's read, without encoding
    or sending."""
    buf = bytearray(PREAD_BYTES)
    fd = os.open(path, os.O_RDONLY)
    try:
        t0 = time.thread_time()
        off = 0
        while True:
            n = os.preadv(fd, [buf], off)
            if n == 0:
                break
            off += n
        return time.thread_time() - t0
    finally:
        os.close(fd)


def iperf3_mbps() -> tuple:
    """iperf3's single stream: (payload MB/s, CPU seconds of both ends per
    payload byte, from -J's cpu_utilization_percent host_total (sender) and
    remote_total (receiver))."""
    port = free_port()
    srv = subprocess.Popen(["iperf3", "-s", "-1", "-B", "127.0.0.1", "-p", str(port)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(20):
            time.sleep(0.2)
            r = subprocess.run(["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(IPERF_SECONDS), "-J"],
                               capture_output=True, text=True, timeout=IPERF_SECONDS + 20)
            if r.returncode == 0:
                end = json.loads(r.stdout)["end"]
                rate = end["sum_received"]["bits_per_second"] / 8
                cpu = end["cpu_utilization_percent"]
                cores = (cpu["host_total"] + cpu["remote_total"]) / 100
                return rate / 1e6, cores / rate
        raise RuntimeError("iperf3 did not run")
    finally:
        srv.kill()
        srv.wait()


class FileServer:
    """bin/fileserver with the file service on a free port, ROOT as root."""

    def __init__(self, bin_dir: str, root: str, mode: str):
        args = [os.path.join(bin_dir, "fileserver"), "--root", root, "--listen", "file=127.0.0.1:0",
                "--mode", mode]
        if mode == "process":
            args += ["--workers", "2"]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.port = 0
        deadline = time.time() + 10
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("listening file on "):
                self.port = int(line.rsplit(":", 1)[1])
                break
        if not self.port:
            self.stop()
            raise RuntimeError("fileserver did not start")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def measure(fn) -> list:
    fn()  # warm-up: page cache, socket buffers, the server's first chunks
    return [BYTES / fn() / 1e6 for _ in range(RUNS)]


def main() -> int:
    bin_dir = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "bin")
    rows = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as work:
        root = os.path.join(work, "root")
        os.mkdir(root)
        src = os.path.join(root, "f.bin")
        data = os.urandom(BYTES)
        with open(src, "wb") as f:
            f.write(data)
        out = os.path.join(work, "out.bin")
        iperf, iperf_cpu_per_byte = iperf3_mbps()
        print(f"bench-get-ceiling: {BYTES} bytes, {RUNS} runs per row, iperf3 {iperf:.0f} MB/s", file=sys.stderr)
        write_s = statistics.median(write_floor_s(os.path.join(work, "floor.bin")) for _ in range(RUNS))
        pread_s = statistics.median(pread_floor_s(src) for _ in range(RUNS))
        cpu_rows = []

        mem = MemoryServer("f.bin", data)
        del data
        rows.append(("wire only (memory server, discarding client)", measure(lambda: discard_get(mem.port, "f.bin"))))
        rows.append((f"wire only, {CLIENTS} clients (aggregate)",
                     measure(lambda: discard_many(mem.port, "f.bin", CLIENTS))))
        rows.append(("client-bound (memory server, filecli -o FILE)",
                     measure(lambda: filecli_get(bin_dir, mem.port, "f.bin", out))))
        if not filecmp.cmp(src, out, shallow=False):
            raise RuntimeError("filecli's copy from the memory server differs")
        mem.sock.close()
        for mode in ("thread", "process"):
            srv = FileServer(bin_dir, root, mode)
            try:
                rows.append((f"server-bound ({mode}, discarding client)",
                             measure(lambda: discard_get(srv.port, "f.bin"))))
                rows.append((f"server-bound ({mode}, {CLIENTS} clients, aggregate)",
                             measure(lambda: discard_many(srv.port, "f.bin", CLIENTS))))
                rows.append((f"filecli ({mode}, -o FILE)", measure(lambda: filecli_get(bin_dir, srv.port, "f.bin", out))))
                server_s, client_s, wall_s = [], [], []
                for _ in range(RUNS):
                    before = tree_cpu(srv.proc.pid)
                    wall_s.append(filecli_get(bin_dir, srv.port, "f.bin", out))
                    server_s.append(tree_cpu(srv.proc.pid) - before)
                    client_s.append(LAST_CLIENT_CPU[0])
                cpu_rows.append((mode, statistics.median(server_s), statistics.median(client_s),
                                 statistics.median(wall_s)))
                if not filecmp.cmp(src, out, shallow=False):
                    raise RuntimeError(f"filecli's copy from fileserver ({mode}) differs")
            finally:
                srv.stop()

    print(f"{'row':<50} {'median':>8} {'min-max':>15} {'of iperf3':>9}  (MB/s of file bytes; wire carries 4/3)")
    print(f"{'iperf3, 1 stream, 127.0.0.1 (payload)':<50} {iperf:8.0f} {'':>15} {1:9.2f}")
    for name, v in rows:
        med = statistics.median(v)
        print(f"{name:<50} {med:8.0f} {f'{min(v):.0f}-{max(v):.0f}':>15} {med / iperf:9.2f}")

    ms = 1e3
    print()
    print(f"{'CPU per GET through filecli, medians of ' + str(RUNS):<50} {'server':>8} {'filecli':>8} "
          f"{'sum':>8} {'wall':>8}  (ms; cores busy = sum / wall)")
    for mode, srv_s, cli_s, wall in cpu_rows:
        print(f"{'filecli (' + mode + ', -o FILE)':<50} {srv_s * ms:8.1f} {cli_s * ms:8.1f} "
              f"{(srv_s + cli_s) * ms:8.1f} {wall * ms:8.1f}  ({(srv_s + cli_s) / wall:.2f} cores busy)")
    wire_s = iperf_cpu_per_byte * BYTES * 4 / 3
    floor_s = wire_s + write_s + pread_s
    ceiling = BYTES / (floor_s / 2) / 1e6
    print(f"{'floor: iperf3 CPU x 4/3 (both ends)':<50} {wire_s * ms:8.1f}")
    print(f"{'floor: write(2) into a fresh file':<50} {write_s * ms:8.1f}")
    print(f"{'floor: pread(2) from the page cache':<50} {pread_s * ms:8.1f}")
    print(f"{'floor, sum (no base64 encode or decode)':<50} {floor_s * ms:8.1f}  -> two cores: at most "
          f"{ceiling:.0f} MB/s = {ceiling / iperf:.2f} of iperf3")
    return 0


if __name__ == "__main__":
    sys.exit(main())
