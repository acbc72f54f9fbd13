"""Shared helpers of the hostile-client tests (make test-hostile).

HostileServer starts bin/fileserver on free ports of 127.0.0.1 with the
given listeners and options, reads the "listening SERVICE on HOST:PORT"
lines, and stops it (SIGTERM, then SIGKILL) and removes its root on exit,
on failure too. Every test prints the figures it measured with report().
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("FSRV_BIN", os.path.join(HERE, "..", "..", "bin"))


def report(name, **figures):
    """One line of measured figures on stdout (kept in the CI log)."""
    text = " ".join("%s=%s" % (k, v) for k, v in figures.items())
    print("\n[hostile] %s: %s" % (name, text), flush=True)


class HostileServer:
    """bin/fileserver with `listeners` (service names, each on port 0)."""

    def __init__(self, listeners, *args, mode="thread", log_level="info", preexec=None):
        self.root = tempfile.mkdtemp(prefix="fsrv-hostile-")
        self.log_path = os.path.join(self.root + ".log")
        cmd = [os.path.join(BIN, "fileserver"), "--host", "127.0.0.1", "--root", self.root,
               "--log-level", log_level, "--mode", mode]
        for l in listeners:
            cmd += ["--listen", l if "=" in l else l + "=0"]
        cmd += [str(a) for a in args]
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log,
                                     preexec_fn=preexec)
        self.ports = {}
        self.order = []
        for _ in listeners:
            line = self.proc.stdout.readline().decode()
            m = re.match(r"listening (\S+) on .*:(\d+)$", line.strip())
            if not m:
                log = self.log_text()
                self.stop()
                raise RuntimeError("server did not start: %r\n%s" % (line, log))
            self.ports.setdefault(m.group(1), int(m.group(2)))
            self.order.append((m.group(1), int(m.group(2))))

    def port(self, service):
        return self.ports[service]

    def log_text(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def rss_kb(self):
        """Resident set of the server and its children, in KiB."""
        total = 0
        pids = [self.proc.pid]
        try:
            out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True,
                                 text=True).stdout
            pids += [int(p) for p in out.split()]
        except OSError:
            pass
        for pid in pids:
            try:
                with open("/proc/%d/status" % pid) as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1])
            except OSError:
                pass
        return total

    def stats(self, file_port=None):
        """The STATS data object, through the file listener."""
        port = file_port or self.ports["file"]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"STATS\r\n\r\n")
            data = b""
            while not data.endswith(b"\r\n\r\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        try:
            got = json.loads(data.decode())["data"]
        except (ValueError, KeyError):
            return {}
        return got if isinstance(got, dict) else {}  # {} when refused (busy)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)
        try:
            os.unlink(self.log_path)
        except OSError:
            pass


def connect(port, source=None, timeout=10):
    """A TCP connection to 127.0.0.1:port, from `source` (e.g. 127.0.0.2)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if source:
        s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def recv_until(s, end, limit=1 << 20, timeout=10):
    """Bytes read until `end` is seen, EOF or `timeout` seconds."""
    s.settimeout(timeout)
    data = b""
    deadline = time.time() + timeout
    while end not in data and len(data) < limit and time.time() < deadline:
        try:
            chunk = s.recv(65536)
        except (socket.timeout, ConnectionError):
            break
        if not chunk:
            break
        data += chunk
    return data


def closed_by_server(s, wait=0.0):
    """True if the server closed `s` (EOF or reset), waiting up to `wait` s."""
    import select
    r, _, _ = select.select([s], [], [], wait)
    if not r:
        return False
    try:
        s.setblocking(False)
        data = s.recv(65536)
        while data:
            data = s.recv(65536)
        return True
    except BlockingIOError:
        return False
    except (ConnectionError, OSError):
        return True
    finally:
        s.setblocking(True)


def file_ping(port, source=None):
    """LIST through the file protocol; returns the reply's status or the error."""
    try:
        with connect(port, source) as s:
            s.sendall(b"LIST\r\n\r\n")
            reply = recv_until(s, b"\r\n\r\n")
        return json.loads(reply.decode())["status"] if reply else "closed"
    except (OSError, ValueError) as e:
        return "error: %s" % e


def http_get(port, path="/", source=None):
    """The status line of GET `path` (HTTP/1.0), or the error."""
    try:
        with connect(port, source) as s:
            s.sendall(("GET %s HTTP/1.0\r\nHost: x\r\n\r\n" % path).encode())
            reply = recv_until(s, b"\r\n")
        return reply.split(b"\r\n", 1)[0].decode(errors="replace") or "closed"
    except OSError as e:
        return "error: %s" % e
