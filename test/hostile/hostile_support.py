"""Shared helpers of the hostile-client tests (make test-hostile).

HostileServer is the tests' one server wrapper (FsrvServer of
test/python/fsrv_server.py) in thread mode by default. Every test prints
the figures it measured with report().
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
from fsrv_server import BIN, FsrvServer, connect, recv_until  # noqa: E402,F401


def report(name, **figures):
    """One line of measured figures on stdout (kept in the CI log)."""
    text = " ".join("%s=%s" % (k, v) for k, v in figures.items())
    print("\n[hostile] %s: %s" % (name, text), flush=True)


class HostileServer(FsrvServer):
    """FsrvServer (test/python/fsrv_server.py) in thread mode by default."""

    def __init__(self, listeners, *args, mode="thread", log_level="info", preexec=None):
        super().__init__(listeners, *args, mode=mode, log_level=log_level, preexec=preexec,
                         prefix="fsrv-hostile-")


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
