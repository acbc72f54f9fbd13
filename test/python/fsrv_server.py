"""The one bin/fileserver wrapper of the Python tests (test/python,
test/hostile, test/cluster): starts the server on free ports of 127.0.0.1
with the given listeners and options, reads its "listening SERVICE on
HOST:PORT" lines, keeps its log in a file, and stops it (SIGTERM, then
SIGKILL after 20 s) and removes the root it made, on failure too.

    with FsrvServer(["file", "http"], "--grace", "2", mode="process") as srv:
        srv.port("http"); srv.file_request("LIST"); srv.http_get("/healthz")

Plus terminate (a server process started by hand), the small socket
helpers the tests share (connect, recv_until,
recv_all, read_course_reply, file_request) and the course's chat client
(ChatClient).
"""

import http.client
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

# "listening http on 127.0.0.1:PORT", then the listener's policy if any: " (ro)".
LISTENING = re.compile(r"listening (\S+) on [^ ]*:(\d+)(?: \(.*\))?$")


class FsrvServer:
    """bin/fileserver with `listeners`: service names (each on port 0 of
    --host 127.0.0.1) or full --listen values ("file=127.0.0.1:0,max-conns=5").
    `root`: served folder (default: a temporary one, removed by stop());
    `mode`, `log_level`, `host`: passed when given; `env`: the server's
    environment (default: this process's); `expect`: listening
    lines to read (default one per listener; a --config start names its
    own, and may leave host and log level to the file)."""

    def __init__(self, listeners=(), *args, mode=None, log_level="info", root=None, expect=None,
                 preexec=None, prefix="fsrv-test-", host="127.0.0.1", env=None):
        self.own_root = root is None
        self.root = tempfile.mkdtemp(prefix=prefix) if root is None else root
        fd, self.log_path = tempfile.mkstemp(prefix=prefix, suffix=".log")
        os.close(fd)
        cmd = [os.path.join(BIN, "fileserver"), "--root", self.root]
        if host:
            cmd += ["--host", host]
        if log_level:
            cmd += ["--log-level", log_level]
        if mode:
            cmd += ["--mode", mode]
        for listener in listeners:
            cmd += ["--listen", listener if "=" in listener else listener + "=0"]
        cmd += [str(a) for a in args]
        self.log = open(self.log_path, "wb")
        self.final_log = b""  # the whole log once stopped
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log,
                                     preexec_fn=preexec, env=env)
        self.ports = {}  # service -> its first listener's port
        self.order = []  # (service, port) per listening line
        for _ in range(len(listeners) if expect is None else expect):
            line = self.proc.stdout.readline().decode()
            m = LISTENING.match(line.strip())
            if not m:
                log = self.log_text()
                self.stop()
                raise RuntimeError("server did not start: %r\n%s" % (line, log))
            self.ports.setdefault(m.group(1), int(m.group(2)))
            self.order.append((m.group(1), int(m.group(2))))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def port(self, service):
        return self.ports[service]

    def log_text(self):
        """What the server wrote on stderr so far."""
        if self.log.closed:
            return self.final_log.decode(errors="replace")
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_log(self, text, count=1, timeout=10):
        """True once `text` stands `count` times in the log (polled)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log_text().count(text) >= count:
                return True
            time.sleep(0.05)
        return False

    def rss_kb(self):
        """Resident set of the server and its children, in KiB."""
        total = 0
        pids = [self.proc.pid]
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True,
                             text=True).stdout
        pids += [int(p) for p in out.split()]
        for pid in pids:
            try:
                with open("/proc/%d/status" % pid) as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1])
            except OSError:
                pass
        return total

    def file_request(self, line, service="file"):
        """One file-protocol request; its reply parsed ({} when not JSON)."""
        try:
            return json.loads(file_request(self.ports[service], line))
        except ValueError:
            return {}

    def stats(self, file_port=None):
        """The STATS data object, through the file listener ({} if refused)."""
        port = file_port or self.ports["file"]
        try:
            got = json.loads(file_request(port, "STATS"))["data"]
        except (ValueError, KeyError):
            return {}
        return got if isinstance(got, dict) else {}

    def http_get(self, path, service="http", headers=None, timeout=10):
        """GET `path` on the service's listener: (status, body bytes)."""
        c = http.client.HTTPConnection("127.0.0.1", self.ports[service], timeout=timeout)
        try:
            c.request("GET", path, headers=headers or {})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def stop(self, remove_root=None):
        """SIGTERM, then SIGKILL after 20 s; removes the root when it made it
        (or as `remove_root` says). Returns the exit code. Idempotent; the
        log stays readable (log_text) afterwards."""
        if self.proc.poll() is None:
            terminate(self.proc, 20, communicate=False)
        if self.proc.stdout and not self.proc.stdout.closed:
            self.proc.stdout.close()
        if not self.log.closed:
            self.log.close()
        if os.path.exists(self.log_path):
            with open(self.log_path, "rb") as f:
                self.final_log = f.read()
            os.unlink(self.log_path)
        if self.own_root if remove_root is None else remove_root:
            shutil.rmtree(self.root, ignore_errors=True)
        return self.proc.returncode

    cleanup = stop


class KeptRootServer(FsrvServer):
    """An FsrvServer whose stop() keeps the root (the test reads what the
    server wrote there afterwards) and sets `stderr` to the server's whole
    log; cleanup() removes the root."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.stderr = b""

    def stop(self):
        """SIGTERM and wait; returns the exit code."""
        rc = super().stop(remove_root=False)
        self.stderr = self.final_log
        return rc

    def cleanup(self):
        super().stop(remove_root=True)


def terminate(proc, timeout, communicate=True):
    """Stops a server process started by hand: SIGTERM, then SIGKILL after
    `timeout` s. `communicate`: read its pipes to the end (Popen.communicate)
    rather than only wait for it."""
    finish = proc.communicate if communicate else proc.wait
    proc.send_signal(signal.SIGTERM)
    try:
        finish(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        finish()


def connect(port, source=None, timeout=10):
    """A TCP connection to 127.0.0.1:port, from `source` (e.g. 127.0.0.2)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if source:
        s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def recv_until(s, end, limit=1 << 20, timeout=10):
    """Bytes read until `end` is seen, EOF, `limit` bytes or `timeout` s."""
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


def recv_all(s, size=65536):
    """Every byte read from `s` until the peer closes, `size` bytes a read
    (the socket's own timeout applies)."""
    data = b""
    while True:
        chunk = s.recv(size)
        if not chunk:
            return data
        data += chunk


def read_course_reply(s, size=65536):
    """The course clients' read loop: bytes until the reply ends with a
    blank line ("\r\n\r\n") or the peer closes, `size` bytes a read."""
    chunks, tail = [], b""
    while True:
        data = s.recv(size)
        if not data:
            break
        chunks.append(data)
        tail = (tail + data)[-4:]
        if tail == b"\r\n\r\n":
            break
    return b"".join(chunks)


def exchange(port, data, timeout=30, host="127.0.0.1"):
    """Sends `data` on a new connection and returns every byte the server
    sends until it closes (HTTP/1.0 or "Connection: close" requests)."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(data)
        return recv_all(s)


class ChatClient:
    """chat-cli.py's ChatClient (the course's "tugas 5" chat client) on one
    persistent connection: raw() sends one request and returns the reply
    bytes, read 64 at a time as chat-cli.py does, up to its blank line (or
    what came before the server closed); sendstring() returns it parsed
    (ConnectionError if the server closed first)."""

    def __init__(self, port, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=30)
        self.tokenid = ""

    def close(self):
        self.sock.close()

    def raw(self, string):
        self.sock.sendall(string.encode())
        received = b""
        while True:
            data = self.sock.recv(64)
            if not data:
                return received
            received += data
            if received[-4:] == b"\r\n\r\n":
                return received

    def sendstring(self, string):
        reply = self.raw(string)
        if not reply.endswith(b"\r\n\r\n"):
            raise ConnectionError("closed")
        return json.loads(reply.decode())

    # The course client's commands ("... \r\n", with its space before CRLF).
    def login(self, username, password):
        result = self.sendstring("auth {} {} \r\n".format(username, password))
        if result["status"] == "OK":
            self.tokenid = result["tokenid"]
        return result

    def sendmessage(self, usernameto, message):
        return self.sendstring("send {} {} {} \r\n".format(self.tokenid, usernameto, message))

    def inbox(self):
        return self.sendstring("inbox {} \r\n".format(self.tokenid))


def file_request(port, line, timeout=10):
    """One course file-protocol request on a new connection; the reply text
    up to its blank line."""
    with connect(port, timeout=timeout) as s:
        s.sendall(line.encode() + b"\r\n\r\n")
        return recv_until(s, b"\r\n\r\n", limit=1 << 30, timeout=timeout).decode(
            errors="replace")
