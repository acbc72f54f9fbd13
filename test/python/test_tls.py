"""TLS under the listeners (`--listen SERVICE=PORT,tls`, docs/TLS.md), over
real sockets with real clients: curl over HTTPS (--cacert), the file
protocol through Python's ssl module, openssl s_client per TLS version, a
flood of half-open handshakes and a stalled one against --request-timeout,
and the start-up errors for missing or bad certificate files.

The certificate is `make certs`' (build/certs, or $FSRV_CERTS); without it
the test makes its own pair with the same openssl command.
FSRV_TLS_FLOOD=full (make test-tls) floods with 500 half-open clients
instead of 150.
"""

import base64
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from fsrv_server import BIN, FsrvServer, connect, recv_until

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.join(HERE, "..", "..")
FLOOD = 500 if os.environ.get("FSRV_TLS_FLOOD") == "full" else 150


def make_pair(folder):
    """A self-signed ECDSA pair in `folder`, as `make certs` makes it."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "3650", "-subj", "/CN=localhost", "-addext",
         "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout",
         os.path.join(folder, "key.pem"), "-out", os.path.join(folder, "cert.pem")],
        check=True, capture_output=True)


def two_pairs(folder):
    """Two pairs (make_pair) in `folder`'s new subfolders "a" and "b":
    (folder a, folder b, their certificates as DER {"A": ..., "B": ...})."""
    pairs, der = [], {}
    for name in ("a", "b"):
        p = os.path.join(folder, name)
        os.makedirs(p)
        make_pair(p)
        with open(os.path.join(p, "cert.pem")) as f:
            der[name.upper()] = ssl.PEM_cert_to_DER_cert(f.read())
        pairs.append(p)
    return pairs[0], pairs[1], der


def unverified_tls(port):
    """A TLS connection to 127.0.0.1:port that accepts any certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx.wrap_socket(connect(port), server_hostname="127.0.0.1")


def setUpModule():
    global CERTS, CERT, KEY, TMP
    TMP = tempfile.mkdtemp(prefix="fsrv-tls-")
    CERTS = os.environ.get("FSRV_CERTS", os.path.join(REPO, "build", "certs"))
    if not os.path.exists(os.path.join(CERTS, "cert.pem")):
        CERTS = TMP
        make_pair(CERTS)
    CERT = os.path.join(CERTS, "cert.pem")
    KEY = os.path.join(CERTS, "key.pem")


def tearDownModule():
    shutil.rmtree(TMP, ignore_errors=True)


def tls_args():
    return ["--tls-cert", CERT, "--tls-key", KEY]


def client_context():
    return ssl.create_default_context(cafile=CERT)


def tls_connect(port, timeout=20):
    raw = connect(port, timeout=timeout)
    return client_context().wrap_socket(raw, server_hostname="127.0.0.1")


def curl(*args):
    return subprocess.run(["curl", "-sS", "--cacert", CERT, *args], capture_output=True,
                          timeout=120)


class HttpsTest(unittest.TestCase):
    def check_get_and_upload(self, mode):
        with FsrvServer(["http=127.0.0.1:0,tls"], *tls_args(), mode=mode) as srv:
            port = srv.port("http")
            data = os.urandom(5 * 1024 * 1024 + 123)  # several records and chunks
            with open(os.path.join(srv.root, "blob.bin"), "wb") as f:
                f.write(data)
            got = curl("https://127.0.0.1:%d/blob.bin" % port)
            self.assertEqual(got.returncode, 0, got.stderr)
            self.assertEqual(got.stdout, data)
            # Uploads through both routes; the stored bytes compared.
            src = os.path.join(srv.root, "..", "fsrv-tls-up-%d" % os.getpid())
            up = os.urandom(3 * 1024 * 1024 + 7)
            with open(src, "wb") as f:
                f.write(up)
            try:
                put = curl("-T", src, "https://127.0.0.1:%d/put.bin" % port)
                self.assertEqual(put.returncode, 0, put.stderr)
                post = curl("--data-binary", "@" + src,
                            "https://127.0.0.1:%d/upload/post.bin" % port)
                self.assertEqual(post.returncode, 0, post.stderr)
                self.assertIn(b"uploaded successfully", post.stdout)
            finally:
                os.unlink(src)
            for name in ("put.bin", "post.bin"):
                with open(os.path.join(srv.root, name), "rb") as f:
                    self.assertEqual(f.read(), up, name)
            # Keep-alive: several requests on one TLS connection.
            urls = ["-o", "/dev/null", "https://127.0.0.1:%d/put.bin" % port] * 3
            many = curl("-w", "%{num_connects} ", *urls)
            self.assertEqual(many.stdout.split(), [b"1", b"0", b"0"])
            status, body = 0, b""
            s = tls_connect(port)
            try:
                s.sendall(b"GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                body = recv_until(s, b"\0", limit=1 << 22)
            finally:
                s.close()
            stats = json.loads(body.split(b"\r\n\r\n", 1)[1])
            tls = stats["services"]["tls"]
            self.assertGreaterEqual(tls["handshakes"]["ok"], 5)
            self.assertGreaterEqual(tls["sends"]["userspace"], 1)
        self.assertIn("kTLS", srv.log_text())

    def test_curl_gets_and_uploads_over_https_thread_mode(self):
        self.check_get_and_upload("thread")

    def test_curl_gets_and_uploads_over_https_process_mode(self):
        self.check_get_and_upload("process")

    def test_slow_reader_of_a_big_https_get_keeps_server_memory_bounded(self):
        # The body is read and encrypted in chunks only as the socket takes
        # them: a reader that stalls holds the server's memory at a few MiB.
        with FsrvServer(["http=127.0.0.1:0,tls"], *tls_args(), "--min-rate", 0) as srv:
            size = 96 * 1024 * 1024
            with open(os.path.join(srv.root, "big.bin"), "wb") as f:
                f.truncate(size)
            before = srv.rss_kb()
            s = tls_connect(srv.port("http"))
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
                s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
                got = len(s.recv(65536))
                time.sleep(2)  # stalled: the server must stop producing
                peak = srv.rss_kb()
                deadline = time.monotonic() + 120
                while got < size and time.monotonic() < deadline:
                    chunk = s.recv(1 << 20)
                    if not chunk:
                        break
                    got += len(chunk)
            finally:
                s.close()
            self.assertGreater(got, size)  # the head and the whole body came
            self.assertLess(peak - before, 24 * 1024, "server grew %d KiB" % (peak - before))

    def test_listening_line_says_tls_and_clear_listeners_stay_clear(self):
        with FsrvServer(["http=127.0.0.1:0,tls", "http=127.0.0.1:0"], *tls_args()) as srv:
            self.assertEqual(len(srv.order), 2)
            tls_port, clear_port = srv.order[0][1], srv.order[1][1]
            got = subprocess.run(["curl", "-sS", "http://127.0.0.1:%d/healthz" % clear_port],
                                 capture_output=True, timeout=30)
            self.assertEqual(got.returncode, 0, got.stderr)
            got = curl("https://127.0.0.1:%d/healthz" % tls_port)
            self.assertEqual(got.returncode, 0, got.stderr)
        cmd = [os.path.join(BIN, "fileserver"), "--host", "127.0.0.1", "--port", "0",
               "--listen", "http=127.0.0.1:0,tls", *tls_args()]
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as p:
            try:
                line = p.stdout.readline().decode().strip()
            finally:
                p.terminate()
                p.wait(timeout=20)
        self.assertRegex(line, r"^listening http on 127\.0\.0\.1:\d+ \(tls\)$")
        listed = subprocess.run([os.path.join(BIN, "fileserver"), "--services", *tls_args()],
                                capture_output=True, text=True, timeout=30).stdout
        self.assertRegex(listed, r"http +0\.0\.0\.0:8443 .*\(tls\)")
        self.assertRegex(listed, r"file +0\.0\.0\.0:6667 .*\(tls\)")


class FileProtocolTlsTest(unittest.TestCase):
    def check_upload_then_get(self, mode):
        with FsrvServer(["file=127.0.0.1:0,tls"], *tls_args(), mode=mode) as srv:
            port = srv.port("file")
            data = os.urandom(4 * 1024 * 1024 + 1)
            s = tls_connect(port)
            try:
                s.sendall(b"UPLOAD big.bin " + base64.b64encode(data) + b"\r\n\r\n")
                reply = json.loads(recv_until(s, b"\r\n\r\n", timeout=60))
                self.assertEqual(reply["status"], "OK", reply)
                s.sendall(b"GET big.bin\r\n\r\n")
                got = json.loads(recv_until(s, b"\r\n\r\n", limit=1 << 30, timeout=60))
                self.assertEqual(got["status"], "OK")
                self.assertEqual(base64.b64decode(got["data_file"]), data)
                s.sendall(b"LIST\r\n\r\n")
                listed = json.loads(recv_until(s, b"\r\n\r\n"))
                self.assertIn("big.bin", listed["data"])
            finally:
                s.close()
            with open(os.path.join(srv.root, "big.bin"), "rb") as f:
                self.assertEqual(f.read(), data)

    def test_upload_then_get_over_tls_thread_mode(self):
        self.check_upload_then_get("thread")

    def test_upload_then_get_over_tls_process_mode(self):
        self.check_upload_then_get("process")

    def test_pipelined_requests_in_one_write_all_answered(self):
        # More requests than one loop turn answers (the session yields):
        # the rest wait decrypted inside OpenSSL and must still be served.
        with FsrvServer(["file=127.0.0.1:0,tls"], *tls_args()) as srv:
            with open(os.path.join(srv.root, "x.txt"), "wb") as f:
                f.write(b"12345")
            n = 300
            s = tls_connect(srv.port("file"))
            try:
                s.sendall(b"SIZE x.txt\r\n\r\n" * n)
                got = b""
                deadline = time.monotonic() + 30
                while got.count(b"\r\n\r\n") < n and time.monotonic() < deadline:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    got += chunk
            finally:
                s.close()
            replies = [json.loads(r) for r in got.split(b"\r\n\r\n") if r]
            self.assertEqual(len(replies), n)
            self.assertTrue(all(r["status"] == "OK" for r in replies), replies[:3])

    def test_a_clear_text_client_on_a_tls_listener_is_closed_and_others_served(self):
        with FsrvServer(["file=127.0.0.1:0,tls"], *tls_args()) as srv:
            port = srv.port("file")
            with connect(port) as s:
                s.sendall(b"LIST\r\n\r\n")
                got = recv_until(s, b"\r\n\r\n", timeout=10)
            self.assertNotIn(b"OK", got)  # a TLS alert at most, then EOF
            t = tls_connect(port)
            try:
                t.sendall(b"LIST\r\n\r\n")
                self.assertEqual(json.loads(recv_until(t, b"\r\n\r\n"))["status"], "OK")
            finally:
                t.close()


class RefusalTest(unittest.TestCase):
    def check_busy_is_silent(self, mode):
        # Beyond --max-conns a clear-text busy reply would only corrupt the
        # client's handshake: a TLS listener just closes.
        with FsrvServer(["file=127.0.0.1:0,tls"], *tls_args(), "--max-conns", 1,
                        mode=mode) as srv:
            first = tls_connect(srv.port("file"))
            try:
                first.sendall(b"PING\r\n\r\n")
                self.assertIn(b"connected", recv_until(first, b"\r\n\r\n"))
                with connect(srv.port("file")) as second:
                    got = recv_until(second, b"\r\n\r\n", timeout=10)
                self.assertEqual(got, b"")
            finally:
                first.close()

    def test_refused_tls_client_is_closed_without_clear_text_thread_mode(self):
        self.check_busy_is_silent("thread")

    def test_refused_tls_client_is_closed_without_clear_text_process_mode(self):
        self.check_busy_is_silent("process")


class VersionsTest(unittest.TestCase):
    def s_client(self, port, version):
        return subprocess.run(
            ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-CAfile", CERT,
             "-" + version, "-cipher", "DEFAULT@SECLEVEL=0", "-brief"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)

    def test_tls12_and_tls13_accepted_tls11_and_tls10_refused(self):
        with FsrvServer(["http=127.0.0.1:0,tls"], *tls_args()) as srv:
            port = srv.port("http")
            for version, name in (("tls1_2", "TLSv1.2"), ("tls1_3", "TLSv1.3")):
                got = self.s_client(port, version)
                with self.subTest(version=version):
                    self.assertIn("Protocol version: " + name, got.stderr + got.stdout)
                    self.assertIn("Verification: OK", got.stderr + got.stdout)
            for version in ("tls1_1", "tls1"):
                got = self.s_client(port, version)
                with self.subTest(version=version):
                    self.assertNotEqual(got.returncode, 0)
                    self.assertNotIn("Protocol version:", got.stderr + got.stdout)
            # The server still serves after the refusals.
            ok = curl("https://127.0.0.1:%d/healthz" % port)
            self.assertEqual(ok.returncode, 0, ok.stderr)
            self.assertTrue(srv.wait_log("TLS handshake from 127.0.0.1"))


class HandshakeTimeoutTest(unittest.TestCase):
    def check_flood(self, mode):
        timeout_s = 2
        with FsrvServer(["http=127.0.0.1:0,tls", "file=127.0.0.1:0"], *tls_args(),
                        "--request-timeout", timeout_s, "--max-conns", 2 * FLOOD + 100,
                        "--max-conns-per-address", 0, mode=mode) as srv:
            port = srv.port("http")
            # A real ClientHello's first bytes, then silence: half-open
            # handshakes. Plus one that connects and says nothing at all.
            # --max-conns leaves the http listener's share (all but the
            # slots kept for the file listener) room for the flood + one.
            hello = client_hello_prefix(port)
            flood = []
            for i in range(FLOOD):
                s = connect(port)
                if i > 0:
                    s.sendall(hello)
                flood.append(s)
            try:
                # Other clients are served during the flood.
                got = curl("https://127.0.0.1:%d/healthz" % port)
                self.assertEqual(got.returncode, 0, got.stderr)
                # Every stalled client is closed at the timeout, none long after.
                deadline = time.monotonic() + timeout_s + 25
                open_ones = list(flood)
                while open_ones and time.monotonic() < deadline:
                    still = []
                    for s in open_ones:
                        s.settimeout(0.01)
                        try:
                            if s.recv(4096) == b"":
                                continue
                        except socket.timeout:
                            still.append(s)
                            continue
                        except OSError:
                            continue
                        still.append(s)
                    open_ones = still
                    time.sleep(0.2)
                self.assertEqual(open_ones, [], "%d stalled handshakes still open" % len(open_ones))
                # Their slots are back: the server holds no connection but STATS'.
                for _ in range(50):
                    stats = srv.stats()
                    if stats.get("connections", {}).get("active") == 1:
                        break
                    time.sleep(0.2)
                self.assertEqual(stats["connections"]["active"], 1, stats.get("connections"))
                self.assertGreaterEqual(stats["services"]["tls"]["handshakes"]["failed"], FLOOD)
                self.assertGreaterEqual(
                    stats["services"]["limits"]["closed"]["request_timeout"], FLOOD)
                again = curl("https://127.0.0.1:%d/healthz" % port)
                self.assertEqual(again.returncode, 0, again.stderr)
            finally:
                for s in flood:
                    s.close()

    def test_half_open_handshakes_are_closed_at_the_request_timeout_thread_mode(self):
        self.check_flood("thread")

    def test_half_open_handshakes_are_closed_at_the_request_timeout_process_mode(self):
        self.check_flood("process")


def client_hello_prefix(port):
    """The first 60 bytes of a real ClientHello (the rest never comes)."""
    inc = ssl.MemoryBIO()
    out = ssl.MemoryBIO()
    obj = client_context().wrap_bio(inc, out, server_hostname="127.0.0.1")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = out.read()
    return hello[:60]


class ReloadTest(unittest.TestCase):
    """SIGHUP reads --tls-cert and --tls-key again in every serving process:
    new handshakes get the new pair, an open connection keeps its own, a
    bad key file keeps the pair in force (docs/TLS.md, Reloading)."""

    def served_der(self, port):
        with unverified_tls(port) as s:
            der = s.getpeercert(binary_form=True)
            s.sendall(b"LIST\r\n\r\n")
            self.assertEqual(json.loads(recv_until(s, b"\r\n\r\n"))["status"], "OK")
            return der

    def check_reload(self, mode, serving):
        folder = tempfile.mkdtemp(prefix="fsrv-tls-reload-")
        try:
            pair_a, pair_b, der = two_pairs(folder)
            self.assertNotEqual(der["A"], der["B"])
            cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
            shutil.copy(os.path.join(pair_a, "cert.pem"), cert)
            shutil.copy(os.path.join(pair_a, "key.pem"), key)
            args = ["--tls-cert", cert, "--tls-key", key]
            if mode == "process":
                args += ["--workers", "2"]
            with FsrvServer(["file=127.0.0.1:0,tls"], *args, mode=mode) as srv:
                port = srv.port("file")
                # Several connections: in process mode they spread over the workers.
                for _ in range(6):
                    self.assertEqual(self.served_der(port), der["A"])
                held = unverified_tls(port)
                try:
                    self.assertEqual(held.getpeercert(binary_form=True), der["A"])
                    shutil.copy(os.path.join(pair_b, "cert.pem"), cert)
                    shutil.copy(os.path.join(pair_b, "key.pem"), key)
                    srv.proc.send_signal(signal.SIGHUP)
                    self.assertTrue(srv.wait_log("TLS certificate %s" % cert, serving),
                                    srv.log_text())
                    for _ in range(6):
                        self.assertEqual(self.served_der(port), der["B"])
                    # The connection opened under A is still served.
                    held.sendall(b"LIST\r\n\r\n")
                    self.assertEqual(json.loads(recv_until(held, b"\r\n\r\n"))["status"],
                                     "OK")
                finally:
                    held.close()
                with open(key, "w") as f:
                    f.write("garbage, not a key\n")
                srv.proc.send_signal(signal.SIGHUP)
                self.assertTrue(srv.wait_log("the certificate in force stays", serving),
                                srv.log_text())
                self.assertIn("--tls-key %s" % key, srv.log_text())
                for _ in range(6):
                    self.assertEqual(self.served_der(port), der["B"])
                self.assertIsNone(srv.proc.poll())
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def test_new_paths_in_the_config_file_wait_for_a_restart(self):
        folder = tempfile.mkdtemp(prefix="fsrv-tls-reload-")
        try:
            pair_a, pair_b, der = two_pairs(folder)
            der_a = der["A"]
            root = os.path.join(folder, "root")
            os.makedirs(root)
            config = os.path.join(folder, "fsrv.toml")

            def write_config(pair):
                with open(config, "w") as f:
                    f.write('root = "%s"\nhost = "127.0.0.1"\ntls-cert = "%s"\n'
                            'tls-key = "%s"\n[services.file]\nlisten = ["127.0.0.1:0,tls"]\n'
                            % (root, os.path.join(pair, "cert.pem"),
                               os.path.join(pair, "key.pem")))

            write_config(pair_a)
            with FsrvServer((), "--config", config, root=root, expect=1, host=None) as srv:
                port = srv.port("file")
                self.assertEqual(self.served_der(port), der_a)
                write_config(pair_b)
                srv.proc.send_signal(signal.SIGHUP)
                self.assertTrue(srv.wait_log("tls-cert changed: it takes effect after a restart"),
                                srv.log_text())
                self.assertTrue(srv.wait_log("TLS certificate %s" % os.path.join(pair_a,
                                                                                 "cert.pem")),
                                srv.log_text())
                self.assertEqual(self.served_der(port), der_a)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def test_sighup_reloads_the_pair_and_keeps_it_on_a_bad_key_thread_mode(self):
        self.check_reload("thread", 1)

    def test_sighup_reloads_the_pair_and_keeps_it_on_a_bad_key_process_mode(self):
        self.check_reload("process", 2)


class BadCertificateTest(unittest.TestCase):
    def run_server(self, *args):
        root = tempfile.mkdtemp(prefix="fsrv-tls-root-")
        try:
            return subprocess.run(
                [os.path.join(BIN, "fileserver"), "--host", "127.0.0.1", "--root", root,
                 "--listen", "http=127.0.0.1:0,tls", *args],
                capture_output=True, text=True, timeout=30)
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def test_missing_bad_or_mismatched_files_exit_2_naming_the_file(self):
        garbage = os.path.join(TMP, "garbage.pem")
        with open(garbage, "w") as f:
            f.write("not a pem file\n")
        other = os.path.join(TMP, "other")
        os.makedirs(other, exist_ok=True)
        make_pair(other)
        missing = os.path.join(TMP, "missing.pem")
        cases = [
            ((), "--tls-cert is required"),
            (("--tls-cert", CERT), "--tls-key is required"),
            (("--tls-cert", missing, "--tls-key", KEY), missing),
            (("--tls-cert", CERT, "--tls-key", missing), missing),
            (("--tls-cert", garbage, "--tls-key", KEY), garbage),
            (("--tls-cert", CERT, "--tls-key", garbage), garbage),
            (("--tls-cert", CERT, "--tls-key", os.path.join(other, "key.pem")),
             "does not match"),
        ]
        for args, text in cases:
            with self.subTest(args=args):
                got = self.run_server(*args)
                self.assertEqual(got.returncode, 2, got.stderr)
                self.assertIn(text, got.stderr)


if __name__ == "__main__":
    unittest.main()
