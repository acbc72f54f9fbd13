"""Accounts (--users) on auth= listeners: HTTP Basic auth by role, the file
protocol's AUTH command, hash-password, bad users files, SIGHUP reload, and
the failed-login throttle (bounded memory, other addresses unaffected)."""

import base64
import http.client
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from fsrv_server import BIN, FsrvServer, connect, recv_until

FILESERVER = os.path.join(BIN, "fileserver")
ROLES = {"reader": "read", "writer": "write", "boss": "admin"}


def users_line(name, role, password):
    out = subprocess.run([FILESERVER, "hash-password", name, role], input=password + "\n",
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


def basic(name, password):
    token = base64.b64encode(("%s:%s" % (name, password)).encode()).decode()
    return {"Authorization": "Basic " + token}


class AuthTestBase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="fsrv-auth-")
        cls.users = os.path.join(cls.dir, "users")
        with open(cls.users, "w") as f:
            f.write("# accounts for the auth tests\n")
            for name, role in ROLES.items():
                f.write(users_line(name, role, "pw-" + name))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    @staticmethod
    def put(root, name, data):
        """Writes the file `name` of the served `root`."""
        with open(os.path.join(root, name), "wb") as f:
            f.write(data)

    def assertRootHolds(self, root, files):
        """The served `root` holds exactly `files` (name -> content)."""
        for name, data in files.items():
            with open(os.path.join(root, name), "rb") as f:
                self.assertEqual(f.read(), data, name)
        self.assertEqual(sorted(os.listdir(root)), sorted(files))


class HttpServerTestBase(AuthTestBase):
    """One http server (auth=write) over the accounts, for the whole class."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = FsrvServer(["http=127.0.0.1:0,auth=write"], "--users", cls.users)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        super().tearDownClass()


class HttpBasicAuth(HttpServerTestBase):

    def request(self, method, path, body=None, headers=None, source=None):
        c = http.client.HTTPConnection("127.0.0.1", self.server.port("http"), timeout=15,
                                       source_address=(source, 0) if source else None)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, r.read(), r.getheader("WWW-Authenticate")
        finally:
            c.close()

    def path(self, name):
        return os.path.join(self.server.root, name)

    def test_anonymous_and_wrong_password_get_401_with_a_challenge(self):
        status, _, challenge = self.request("PUT", "/a.txt", b"x")
        self.assertEqual(status, 401)
        self.assertIn('Basic realm="fsrv"', challenge)
        status, body, challenge = self.request("PUT", "/a.txt", b"x", basic("writer", "wrong"))
        self.assertEqual(status, 401, body)
        self.assertIsNotNone(challenge)
        status, _, _ = self.request("PUT", "/a.txt", b"x", basic("nobody", "pw-writer"))
        self.assertEqual(status, 401)
        self.assertFalse(os.path.exists(self.path("a.txt")))
        # Reads stay open on auth=write.
        status, _, _ = self.request("GET", "/listdir")
        self.assertEqual(status, 200)

    def test_roles(self):
        status, _, _ = self.request("PUT", "/r.txt", b"reader", basic("reader", "pw-reader"))
        self.assertEqual(status, 403)
        self.assertFalse(os.path.exists(self.path("r.txt")))
        status, _, _ = self.request("PUT", "/w.txt", b"writer", basic("writer", "pw-writer"))
        self.assertIn(status, (200, 201))
        with open(self.path("w.txt"), "rb") as f:
            self.assertEqual(f.read(), b"writer")
        status, _, _ = self.request("POST", "/upload/p.txt", b"post", basic("writer", "pw-writer"))
        self.assertIn(status, (200, 201))
        for who in ("reader", "writer"):
            status, _, _ = self.request("DELETE", "/w.txt", None, basic(who, "pw-" + who))
            self.assertEqual(status, 403, who)
        self.assertTrue(os.path.exists(self.path("w.txt")))
        status, _, _ = self.request("DELETE", "/w.txt", None, basic("boss", "pw-boss"))
        self.assertIn(status, (200, 204))
        self.assertFalse(os.path.exists(self.path("w.txt")))

    def test_whoami_and_login_for_the_web_page(self):
        import json
        status, body, _ = self.request("GET", "/whoami")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), {"user": None, "role": "anonymous",
                                            "listener": "auth=write", "accounts": True,
                                            "upload": False, "delete": False})
        status, body, _ = self.request("GET", "/whoami", None, basic("writer", "pw-writer"))
        w = json.loads(body)
        self.assertEqual((w["user"], w["role"], w["upload"], w["delete"]),
                         ("writer", "write", True, False))
        status, body, _ = self.request("GET", "/whoami", None, basic("writer", "nope"))
        self.assertEqual(status, 401)
        status, _, challenge = self.request("GET", "/login")
        self.assertEqual(status, 401)
        self.assertIn("Basic", challenge)
        status, _, _ = self.request("GET", "/login", None, basic("boss", "pw-boss"))
        self.assertEqual(status, 303)
        status, page, _ = self.request("GET", "/")
        self.assertEqual(status, 200)
        self.assertIn(b"/whoami", page)

    def test_foreign_origin_delete_refused_while_logged_in(self):
        with open(self.path("keep.txt"), "wb") as f:
            f.write(b"keep")
        port = self.server.port("http")
        headers = dict(basic("boss", "pw-boss"), Origin="http://evil.example")
        status, _, _ = self.request("DELETE", "/keep.txt", None, headers)
        self.assertEqual(status, 403)
        self.assertTrue(os.path.exists(self.path("keep.txt")))
        headers["Origin"] = "http://127.0.0.1:%d" % port
        status, _, _ = self.request("DELETE", "/keep.txt", None, headers)
        self.assertIn(status, (200, 204))

class FailedLoginThrottle(HttpServerTestBase):
    """Its own server: the flood blocks 127.0.0.1 for a minute."""

    request = HttpBasicAuth.request

    def test_failed_logins_bounded_and_other_addresses_unaffected(self):
        c = http.client.HTTPConnection("127.0.0.1", self.server.port("http"), timeout=30)
        statuses = set()
        rss_before = None
        for i in range(1000):
            c.request("PUT", "/flood-%d.txt" % i, body=b"x",
                      headers=basic("writer", "guess-%d" % i))
            r = c.getresponse()
            r.read()
            statuses.add(r.status)
            if i == 50:
                rss_before = self.server.rss_kb()
            if r.getheader("Connection", "").lower() == "close":
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", self.server.port("http"), timeout=30)
        c.close()
        rss_after = self.server.rss_kb()
        self.assertEqual(statuses, {401})
        self.assertLess(rss_after - rss_before, 8 * 1024, (rss_before, rss_after))
        self.assertFalse(any(n.startswith("flood-") for n in os.listdir(self.server.root)))
        self.assertTrue(self.server.wait_log("blocked for the rest of the minute"))
        # The blocked address cannot log in even with the right password...
        status, body, _ = self.request("PUT", "/late.txt", b"x", basic("writer", "pw-writer"))
        self.assertEqual(status, 401, body)
        self.assertIn(b"too many failed logins", body)
        # ...but another address can.
        status, _, _ = self.request("PUT", "/other.txt", b"ok", basic("writer", "pw-writer"),
                                    source="127.0.0.2")
        self.assertIn(status, (200, 201))


class FileProtocolAuth(AuthTestBase):
    def test_auth_write_listener(self):
        with FsrvServer(["file=127.0.0.1:0,auth=write"], "--users", self.users) as server:
            port = server.port("file")
            payload = base64.b64encode(b"hello").decode()
            with connect(port) as s:
                s.sendall(("UPLOAD a.txt %s\r\n" % payload).encode())
                reply = recv_until(s, b"\n")
                self.assertIn(b"ERROR", reply)
                self.assertIn(b"authentication required", reply)
                s.sendall(b"AUTH writer wrong\r\n")
                reply = recv_until(s, b"\n")
                self.assertIn(b"ERROR", reply)
                self.assertIn(b"bad user name or password", reply)
                s.sendall(b"LIST\r\n")  # reads stay open
                self.assertIn(b"OK", recv_until(s, b"\n"))
                s.sendall(b"AUTH writer pw-writer\r\n")
                reply = recv_until(s, b"\n")
                self.assertIn(b"authenticated as writer (role write)", reply)
                s.sendall(("UPLOAD a.txt %s\r\n" % payload).encode())
                self.assertIn(b"OK", recv_until(s, b"\n"))
                s.sendall(b"DELETE a.txt\r\n")
                self.assertIn(b"permission denied", recv_until(s, b"\n"))
            with open(os.path.join(server.root, "a.txt"), "rb") as f:
                self.assertEqual(f.read(), b"hello")

    def test_filecli_user(self):
        with FsrvServer(["file=127.0.0.1:0,auth=write"], "--users", self.users) as server:
            src = os.path.join(self.dir, "up.txt")
            with open(src, "wb") as f:
                f.write(b"from filecli")
            cli = [os.path.join(BIN, "filecli"), "-H", "127.0.0.1", "-p",
                   str(server.port("file"))]
            out = subprocess.run(cli + ["upload", src], capture_output=True, text=True,
                                 timeout=30, stdin=subprocess.DEVNULL)
            self.assertNotEqual(out.returncode, 0)
            self.assertIn("authentication required", out.stderr + out.stdout)
            env = dict(os.environ, FSRV_PASSWORD="pw-writer")
            out = subprocess.run(cli + ["--user", "writer", "upload", src], capture_output=True,
                                 text=True, timeout=30, env=env)
            self.assertEqual(out.returncode, 0, out.stderr)
            out = subprocess.run(cli + ["--user", "writer", "delete", "up.txt"], input="wrong\n",
                                 capture_output=True, text=True, timeout=30)
            self.assertEqual(out.returncode, 1)
            self.assertIn("bad user name or password", out.stderr)
            with open(os.path.join(server.root, "up.txt"), "rb") as f:
                self.assertEqual(f.read(), b"from filecli")

    def test_auth_all_listener_refuses_reads_before_auth(self):
        with FsrvServer(["file=127.0.0.1:0,auth=all"], "--users", self.users) as server:
            with connect(server.port("file")) as s:
                s.sendall(b"LIST\r\n")
                self.assertIn(b"authentication required", recv_until(s, b"\n"))
                s.sendall(b"PING\r\n")
                self.assertIn(b"connected", recv_until(s, b"\n"))
                s.sendall(b"AUTH reader pw-reader\r\nLIST\r\n")
                got = recv_until(s, b"[")
                self.assertIn(b"role read", got)

    def test_auth_on_an_open_listener_is_an_error(self):
        with FsrvServer(["file=127.0.0.1:0"], "--users", self.users) as server:
            got = server.file_request("AUTH writer pw-writer")
            self.assertEqual(got.get("status"), "ERROR")


def recv_text(s, text, timeout=10):
    """Bytes read until `text` is among them (the seed dialects' replies have
    no terminator), EOF or `timeout` s."""
    return recv_until(s, text.encode(), timeout=timeout)


class MarkerAuth(AuthTestBase):
    """AUTH on file-marker (seed 001's dialect): its own words, the file
    protocol's roles; the dialect has no delete verb."""

    def upload(self, s, name, data):
        s.sendall(("UPLOAD %s\n" % name).encode())
        got = b""
        deadline = time.monotonic() + 10
        ends = (b"READY", b"password)", b"may not upload")  # READY or a refusal's end
        while time.monotonic() < deadline and not got.endswith(ends):
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        if got != b"READY":
            return got
        s.sendall(base64.b64encode(data) + b"__END__")
        return recv_text(s, "successful")

    def test_auth_write_listener_roles(self):
        with FsrvServer(["file-marker=127.0.0.1:0,auth=write"], "--users", self.users) as server:
            self.put(server.root, "keep.txt", b"old")
            with connect(server.port("file-marker")) as s:
                # No account: refused before READY, nothing changes on disk.
                got = self.upload(s, "keep.txt", b"new")
                self.assertEqual(got, b"Upload failed: authentication required: upload needs an "
                                 b"account (AUTH user password)")
                s.sendall(b"LIST\n")  # reads stay open
                self.assertEqual(recv_text(s, "keep.txt"), b"keep.txt")
                s.sendall(b"AUTH writer wrong\n")
                self.assertEqual(recv_text(s, "password"),
                                 b"Authentication failed: bad user name or password")
                s.sendall(b"AUTH reader pw-reader\n")
                self.assertEqual(recv_text(s, ")"), b"Authenticated as reader (role read)")
                got = self.upload(s, "keep.txt", b"new")
                self.assertEqual(got, b"Upload failed: permission denied: your role may not upload")
                s.sendall(b"AUTH writer\n")
                self.assertEqual(recv_text(s, "password"), b"usage: AUTH user password")
                s.sendall(b"AUTH writer pw-writer\n")
                self.assertEqual(recv_text(s, ")"), b"Authenticated as writer (role write)")
                self.assertEqual(self.upload(s, "w.txt", b"by writer"), b"Upload successful")
            with connect(server.port("file-marker")) as s:
                s.sendall(b"AUTH boss pw-boss")  # unterminated, as the seed's client sends
                self.assertEqual(recv_text(s, ")"), b"Authenticated as boss (role admin)")
                self.assertEqual(self.upload(s, "keep.txt", b"by boss"), b"Upload successful")
            self.assertRootHolds(server.root, {"w.txt": b"by writer", "keep.txt": b"by boss"})

    def test_auth_all_refuses_list_and_download_before_auth(self):
        with FsrvServer(["file-marker=127.0.0.1:0,auth=all"], "--users", self.users,
                        mode="process") as server:
            self.put(server.root, "a.txt", b"abc")
            with connect(server.port("file-marker")) as s:
                s.sendall(b"LIST\n")
                self.assertEqual(recv_text(s, "password)"),
                                 b"Error: authentication required: read needs an account "
                                 b"(AUTH user password)")
                s.sendall(b"DOWNLOAD a.txt\n")
                self.assertIn(b"authentication required", recv_text(s, "password)"))
                s.sendall(b"AUTH reader pw-reader\n")
                self.assertIn(b"role read", recv_text(s, ")"))
                s.sendall(b"DOWNLOAD a.txt\n")
                self.assertEqual(recv_text(s, "__END__"), base64.b64encode(b"abc") + b"__END__")

    def test_auth_on_an_open_listener_is_refused(self):
        with FsrvServer(["file-marker=127.0.0.1:0"], "--users", self.users) as server:
            with connect(server.port("file-marker")) as s:
                s.sendall(b"AUTH writer pw-writer\n")
                self.assertEqual(recv_text(s, "accounts"),
                                 b"Authentication failed: this listener takes no accounts")


class RawAuth(AuthTestBase):
    """AUTH on file-raw (seed 000's dialect): "OK ..." / "ERROR ..." lines; a
    refused upload's payload is read and dropped, the connection stays in
    step. The dialect has no delete verb."""

    def upload(self, s, name, data):
        s.sendall(("UPLOAD %s %d\r\n" % (name, len(data))).encode() + data)
        return recv_until(s, b"\r\n")

    def test_auth_write_listener_roles(self):
        with FsrvServer(["file-raw=127.0.0.1:0,auth=write"], "--users", self.users,
                        mode="process") as server:
            self.put(server.root, "keep.bin", b"old")
            with connect(server.port("file-raw")) as s:
                got = self.upload(s, "keep.bin", b"new\r\nLIST\r\n")  # the payload is dropped
                self.assertEqual(got, b"ERROR authentication required: upload needs an account "
                                 b"(AUTH user password)\r\n")
                s.sendall(b"LIST\r\n")  # reads stay open, the stream in step
                self.assertEqual(recv_until(s, b"\r\n\r\n"), b"keep.bin\r\n\r\n")
                s.sendall(b"AUTH writer wrong\r\n")
                self.assertEqual(recv_until(s, b"\r\n"),
                                 b"ERROR AUTH: bad user name or password\r\n")
                s.sendall(b"AUTH reader pw-reader\r\n")
                self.assertEqual(recv_until(s, b"\r\n"),
                                 b"OK authenticated as reader (role read)\r\n")
                self.assertEqual(self.upload(s, "keep.bin", b"new"),
                                 b"ERROR permission denied: your role may not upload\r\n")
                s.sendall(b"AUTH a b c\r\n")
                self.assertEqual(recv_until(s, b"\r\n"), b"ERROR usage: AUTH user password\r\n")
                s.sendall(b"AUTH writer pw-writer\r\n")
                self.assertEqual(recv_until(s, b"\r\n"),
                                 b"OK authenticated as writer (role write)\r\n")
                self.assertEqual(self.upload(s, "w.bin", b"\x00by writer\n"),
                                 b"OK w.bin uploaded (11 bytes)\r\n")
            with connect(server.port("file-raw")) as s:
                s.sendall(b"AUTH boss pw-boss\r\n")
                self.assertEqual(recv_until(s, b"\r\n"),
                                 b"OK authenticated as boss (role admin)\r\n")
                self.assertEqual(self.upload(s, "keep.bin", b"boss"),
                                 b"OK keep.bin uploaded (4 bytes)\r\n")
            self.assertRootHolds(server.root, {"w.bin": b"\x00by writer\n", "keep.bin": b"boss"})

    def test_auth_all_refuses_list_and_download_before_auth(self):
        with FsrvServer(["file-raw=127.0.0.1:0,auth=all"], "--users", self.users) as server:
            self.put(server.root, "a.bin", b"abc")
            with connect(server.port("file-raw")) as s:
                s.sendall(b"LIST\r\n")
                self.assertEqual(recv_until(s, b"\r\n"),
                                 b"ERROR authentication required: read needs an account "
                                 b"(AUTH user password)\r\n")
                s.sendall(b"DOWNLOAD a.bin\r\n")
                self.assertIn(b"ERROR authentication required", recv_until(s, b"\r\n"))
                s.sendall(b"AUTH reader pw-reader\r\nLIST\r\nDOWNLOAD a.bin\r\n")
                got = recv_until(s, b"3\r\nabc")
                self.assertEqual(got, b"OK authenticated as reader (role read)\r\n"
                                 b"a.bin\r\n\r\n3\r\nabc")

    def test_auth_on_an_open_listener_is_an_error(self):
        with FsrvServer(["file-raw=127.0.0.1:0"], "--users", self.users) as server:
            with connect(server.port("file-raw")) as s:
                s.sendall(b"AUTH writer pw-writer\r\n")
                self.assertEqual(recv_until(s, b"\r\n"),
                                 b"ERROR AUTH: this listener takes no accounts\r\n")


class DialectLoginThrottle(AuthTestBase):
    def test_failed_logins_on_one_dialect_block_the_address_on_the_other(self):
        # One authenticator per serving process: a guesser gets its 10 a
        # minute per address across every service, not 10 per dialect.
        with FsrvServer(["file-raw=127.0.0.1:0,auth=write", "file-marker=127.0.0.1:0,auth=write"],
                        "--users", self.users) as server:
            with connect(server.port("file-raw"), timeout=60) as s:
                for i in range(12):
                    s.sendall(b"AUTH writer guess-%d\r\n" % i)
                    reply = recv_until(s, b"\r\n", timeout=60)
                    self.assertTrue(reply.startswith(b"ERROR AUTH: "), reply)
                self.assertIn(b"too many failed logins", reply)
            with connect(server.port("file-marker")) as s:
                s.sendall(b"AUTH writer pw-writer\n")
                self.assertIn(b"Authentication failed: too many failed logins",
                              recv_text(s, " s", timeout=20))
            with connect(server.port("file-marker"), source="127.0.0.2") as s:
                s.sendall(b"AUTH writer pw-writer\n")
                self.assertEqual(recv_text(s, ")"), b"Authenticated as writer (role write)")


class UsersFile(AuthTestBase):
    def test_hash_password_round_trip(self):
        line = users_line("carol", "admin", "s3cret")
        name, hashed, role = line.strip().split(":")
        self.assertEqual((name, role), ("carol", "admin"))
        self.assertTrue(hashed.startswith("$argon2id$"))
        self.assertIn("m=65536,t=2", hashed)  # libsodium's interactive limits
        out = subprocess.run([FILESERVER, "hash-password", "carol", "root"], input="x\n",
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 2)

    def test_bad_file_exits_2_naming_file_and_line(self):
        bad = os.path.join(self.dir, "bad-users")
        with open(bad, "w") as f:
            f.write("# comment\n\n" + users_line("ok", "read", "pw") + "x:$argon2id$nope:reader\n")
        out = subprocess.run([FILESERVER, "--users", bad, "--listen", "file=127.0.0.1:0,auth=write",
                              "--root", self.dir], capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assertIn(bad + ":4:", out.stderr)

    def test_auth_without_users_exits_2(self):
        out = subprocess.run([FILESERVER, "--listen", "http=127.0.0.1:0,auth=all", "--root",
                              self.dir], capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 2)
        self.assertIn("needs --users", out.stderr)

    def test_sighup_reloads_with_connections_open(self):
        users = os.path.join(self.dir, "reload-users")
        shutil.copy(self.users, users)
        for mode in ("thread", "process"):
            with FsrvServer(["file=127.0.0.1:0,auth=write"], "--users", users,
                            mode=mode) as server:
                port = server.port("file")
                held = connect(port)
                held.sendall(b"AUTH writer pw-writer\r\n")
                self.assertIn(b"authenticated", recv_until(held, b"\n"))
                with open(users, "a") as f:
                    f.write(users_line("newbie", "write", "pw-newbie"))
                server.proc.send_signal(signal.SIGHUP)
                self.assertTrue(server.wait_log("account(s)"), server.log_text())
                with connect(port) as s:
                    s.sendall(b"AUTH newbie pw-newbie\r\n")
                    self.assertIn(b"authenticated", recv_until(s, b"\n"), mode)
                # The open connection keeps its account.
                held.sendall(("UPLOAD h.txt %s\r\n" % base64.b64encode(b"h").decode()).encode())
                self.assertIn(b"OK", recv_until(held, b"\n"))
                # A bad file on reload keeps the accounts in force.
                with open(users, "a") as f:
                    f.write("broken line\n")
                server.proc.send_signal(signal.SIGHUP)
                self.assertTrue(server.wait_log("the accounts in force stay"), server.log_text())
                with connect(port) as s:
                    s.sendall(b"AUTH newbie pw-newbie\r\n")
                    self.assertIn(b"authenticated", recv_until(s, b"\n"), mode)
                held.close()
            shutil.copy(self.users, users)


if __name__ == "__main__":
    unittest.main()
