"""The configuration file of bin/fileserver (--config FILE, TOML), its
--print-config and --version, through the real binary: the round trip
(--print-config read back prints the same), command-line overrides, every
bad file refused with exit 2 naming the file, the line and the key, every
command-line option having a key, and a server started from a file.
"""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import unittest

from fsrv_server import exchange, terminate

BIN = os.environ.get("FSRV_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "bin"))
FILESERVER = os.path.join(BIN, "fileserver")
REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
EXAMPLE = os.path.join(REPO, "deploy", "fsrv.toml")

# Options that are commands, not settings: no key in a file.
COMMANDS = {"help", "config", "print-config", "version", "services", "porcelain"}


def run(*args, timeout=20):
    return subprocess.run([FILESERVER, *args], capture_output=True, text=True, timeout=timeout)


class ConfigTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="fsrv-config-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def print_config(self, *args):
        r = run(*args, "--print-config")
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def assert_round_trip(self, printed):
        """`printed` read back with --config prints itself again."""
        path = self.write("round.toml", printed)
        self.assertEqual(self.print_config("--config", path), printed)

    def test_print_config_round_trips_defaults_files_and_command_lines(self):
        self.assert_round_trip(self.print_config())
        self.assert_round_trip(self.print_config("--config", EXAMPLE))
        cli = self.print_config("--max-conns", "77", "--idle-timeout", "2.5", "--tftp-read-only",
                                "--listen", "http=127.0.0.1:0", "--listen", "echo=[::1]:31000",
                                "--listen", "http=8885", "--root", 'we"ird\\dir',
                                "--mode", "process", "--log-level", "debug")
        self.assertIn("max-conns = 77\n", cli)
        self.assertIn("idle-timeout = 2.5\n", cli)
        self.assertIn('root = "we\\"ird\\\\dir"\n', cli)
        self.assertRegex(cli, r'\[services.http\]\nlisten = \["127.0.0.1:0", "8885"\]\n')
        self.assertRegex(cli, r'\[services.tftp\]\n(.*\n)*read-only = true\n')
        self.assert_round_trip(cli)

    def test_file_values_apply_and_the_command_line_overrides_them(self):
        path = self.write("a.toml", 'max-conns = 50\nlog-level = "warn"\n'
                          '[services.echo]\nlisten = ["127.0.0.1:0"]\n'
                          '[services.tftp]\nretries = 9\n')
        out = self.print_config("--config", path)
        self.assertIn("max-conns = 50\n", out)
        self.assertIn('log-level = "warn"\n', out)
        self.assertIn("retries = 9\n", out)
        self.assertRegex(out, r'\[services.echo\]\nlisten = \["127.0.0.1:0"\]')
        out = self.print_config("--config", path, "--max-conns", "7", "--tftp-retries", "1",
                                "--listen", "http=127.0.0.1:0")
        self.assertIn("max-conns = 7\n", out)
        self.assertIn("retries = 1\n", out)
        self.assertIn('log-level = "warn"\n', out)  # not on the command line: the file's
        # A list on the command line replaces the file's list.
        self.assertNotIn("[services.echo]", out)
        self.assertRegex(out, r'\[services.http\]\nlisten = \["127.0.0.1:0"\]')

    def test_each_bad_file_exits_2_naming_file_line_and_key(self):
        cases = [
            ("port = 6666\nnope = 1\n", 2, "nope", "unknown key"),
            ("\n\nport = \"abc\"\n", 3, "port", "--port"),
            ("max-conns = 0\n", 1, "max-conns", "not in range"),
            ('mode = "fork"\n', 1, "mode", "fork"),
            ("port = [1, 2]\n", 1, "port", "one value"),
            ("tftp-read-only = 1\n", 1, "tftp-read-only", "true or false"),
            ('config = "other.toml"\n', 1, "config", "command-line option only"),
            ("services = true\n", 1, "services", "[services.NAME]"),
            ("[x]\ny = 1\n", 1, "x", "unknown table"),
            ('[services.nope]\nlisten = ["1"]\n', 1, "services.nope", "unknown service"),
            ('[services.http]\nlisten = ["127.0.0.1:99999"]\n', 2, "services.http.listen",
             "bad port"),
            ("[services.http]\nport = 1\n", 2, "services.http.port", "unknown key"),
            ("[services.tftp]\n\nretries = \"x\"\n", 3, "services.tftp.retries", "--tftp-retries"),
            ("when = 1979-05-27\n", 1, "when", "unknown key"),
            ("idle-timeout = 2020-01-01\n", 1, "idle-timeout", "string, number or boolean"),
        ]
        for text, line, key, why in cases:
            with self.subTest(text=text):
                path = self.write("bad.toml", text)
                r = run("--config", path)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn("%s:%d: key '%s': " % (path, line, key), r.stderr)
                self.assertIn(why, r.stderr)
                self.assertEqual(r.stdout, "")  # nothing was served

    def test_toml_syntax_errors_and_missing_files_exit_2_with_the_line(self):
        path = self.write("syntax.toml", "port = 1\nroot = = 2\n")
        r = run("--config", path)
        self.assertEqual(r.returncode, 2)
        self.assertIn(path + ":2: ", r.stderr)
        r = run("--config", os.path.join(self.dir, "absent.toml"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("absent.toml", r.stderr)

    def test_every_bad_key_is_reported_in_file_order(self):
        path = self.write("many.toml", "zz = 1\n[services.http]\nport = 1\nlisten = [\"x:port\"]\n")
        r = run("--config", path)
        self.assertEqual(r.returncode, 2)
        lines = [int(m) for m in re.findall(re.escape(path) + r":(\d+): ", r.stderr)]
        self.assertEqual(lines, [1, 3, 4])

    def test_every_command_line_option_has_a_key_and_the_example_names_it(self):
        help_text = run("--help").stdout
        options = set(re.findall(r"--([a-z][a-z0-9-]*)", help_text.split("Options:")[1]))
        printed = self.print_config("--listen", "http=127.0.0.1:0")
        with open(EXAMPLE) as f:
            example = f.read()
        services = [l.split("\t")[0] for l in run("--services", "--porcelain").stdout.splitlines()]
        keys_printed = set(re.findall(r"^#? ?([a-z][a-z0-9-]*) = ", printed, re.M))
        keys_example = set(re.findall(r"^#? ?([a-z][a-z0-9-]*) = ", example, re.M))
        for opt in sorted(options - COMMANDS):
            # A key NAME, or KEY under [services.SERVICE] for SERVICE-KEY.
            spellings = {opt} | {opt[len(s) + 1:] for s in services if opt.startswith(s + "-")}
            with self.subTest(option=opt):
                self.assertTrue(spellings & keys_printed, "--print-config lacks --%s" % opt)
                self.assertTrue(spellings & keys_example,
                                "deploy/fsrv.toml does not describe --%s" % opt)

    def test_version_names_the_release_and_the_commit(self):
        r = run("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^fsrv \d+\.\d+\.\d+ \(commit ([0-9a-f]{7,40}|unknown)\)\n$")
        try:
            head = subprocess.run(["git", "-C", REPO, "rev-parse", "--short=12", "HEAD"],
                                  capture_output=True, text=True).stdout.strip()
        except OSError:
            head = ""
        if head:
            # Built from this checkout (maybe an older commit of it).
            commit = re.search(r"commit ([0-9a-f]+)", r.stdout)
            if commit:
                self.assertEqual(subprocess.run(
                    ["git", "-C", REPO, "cat-file", "-t", commit.group(1)],
                    capture_output=True, text=True).stdout.strip(), "commit")

    def test_a_server_started_from_a_file_serves_its_listeners(self):
        root = os.path.join(self.dir, "root")
        path = self.write("serve.toml", 'root = "%s"\nlog-level = "warn"\n'
                          '[services.echo]\nlisten = ["127.0.0.1:0"]\n'
                          '[services.http]\nlisten = ["127.0.0.1:0"]\n' % root)
        proc = subprocess.Popen([FILESERVER, "--config", path], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            ports = {}
            for _ in range(2):
                line = proc.stdout.readline()
                m = re.match(r"listening (\S+) on 127.0.0.1:(\d+)", line)
                self.assertIsNotNone(m, line)
                ports[m.group(1)] = int(m.group(2))
            with socket.create_connection(("127.0.0.1", ports["echo"]), timeout=5) as s:
                s.sendall(b"ping")
                self.assertEqual(s.recv(4), b"ping")
            reply = exchange(ports["http"],
                             b"GET /listdir HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                             timeout=5)
            head = reply.split(b"\r\n\r\n")[0].decode()
            self.assertTrue(head.startswith("HTTP/1.1 200"), head)
            version = run("--version").stdout.split()[1]
            self.assertIn("\r\nServer: fsrv/%s\r\n" % version, head + "\r\n")
        finally:
            terminate(proc, 15)
        self.assertEqual(proc.returncode, 0)


if __name__ == "__main__":
    unittest.main()
