"""`filecli shell` driven through a pseudo-terminal:
prompt, completion of commands and remote names, history, rm's Y/N
question, a transfer both ways with its progress bar; and the
non-interactive forms (-c, commands on stdin).
Run with `python3 -m unittest` (make test-run sets FSRV_BIN).
"""

import hashlib
import os
import shutil
import subprocess
import tempfile
import unittest

from test_chatcli_pty import Terminal

from fsrv_server import BIN, FsrvServer


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class FilecliShell(unittest.TestCase):
    def setUp(self):
        self.local = tempfile.mkdtemp(prefix="fsrv-shell-local-")
        self.server = FsrvServer(["file"], log_level="error", prefix="fsrv-shell-root-")
        self.addCleanup(self.server.stop)
        self.root = self.server.root
        self.port = self.server.port("file")

    def tearDown(self):
        shutil.rmtree(self.local, ignore_errors=True)

    def filecli(self, *args, **kw):
        return [os.path.join(BIN, "filecli"), "-H", "127.0.0.1", "-p", str(self.port), *args]

    def test_interactive_session(self):
        blob = os.path.join(self.local, "report-2024.bin")
        with open(blob, "wb") as f:
            f.write(os.urandom(3 * 1024 * 1024))
        with open(os.path.join(self.root, "notes.txt"), "wb") as f:
            f.write(b"12345")
        t = Terminal(["/bin/sh", "-c", "cd '%s' && exec %s" % (
            self.local, " ".join("'%s'" % a for a in self.filecli("shell")))])
        self.addCleanup(t.close)
        prompt = rb"file@127\.0\.0\.1:%d> " % self.port
        t.expect(prompt)
        # Command completion: "up<TAB>" -> "upload ", then a local path.
        t.send(b"up\treport-2024.bin\r")
        t.expect(rb"report-2024\.bin uploaded \(3145728 bytes\)")
        t.expect(prompt)
        t.send(b"ls\r")
        t.expect(rb"notes\.txt\s+5 bytes")
        t.expect(rb"report-2024\.bin\s+3145728 bytes")
        t.expect(rb"2 files, 3145733 bytes \(3\.15 MB\)")
        # Remote-name completion: "get rep<TAB>" -> "get report-2024.bin ".
        t.send(b"get rep\tcopy.bin\r")
        t.expect(rb"get report-2024\.bin \[#+\] 100%")  # the progress bar (stderr is the pty)
        t.expect(rb"report-2024\.bin -> copy\.bin \(3145728 bytes\)")
        t.expect(prompt)
        self.assertEqual(sha(os.path.join(self.local, "copy.bin")), sha(blob))
        t.send(b"size notes.txt\r")
        t.expect(rb"notes\.txt 5 bytes")
        # rm asks; N keeps the file, Y deletes it.
        t.send(b"rm notes.txt\r")
        t.expect(rb"delete notes\.txt on the server\? \(Y/N\) ")
        t.send(b"N\r")
        t.expect(rb"not deleted")
        self.assertTrue(os.path.exists(os.path.join(self.root, "notes.txt")))
        t.send(b"rm not\t\r")
        t.expect(rb"\(Y/N\) ")
        t.send(b"y\r")
        t.expect(rb"notes\.txt deleted")
        self.assertFalse(os.path.exists(os.path.join(self.root, "notes.txt")))
        # History: the up arrow recalls the previous line.
        t.send(b"connme\r")
        t.expect(rb"connected")
        t.send(b"\x1b[A\r")
        t.expect(rb"connected")
        t.send(b"lls\r")
        t.expect(rb"copy\.bin\s+3145728 bytes")
        t.send(b"byebye\r")
        self.assertEqual(t.proc.wait(timeout=10), 0)

    def test_non_interactive_commands(self):
        src = os.path.join(self.local, "a b.txt")
        with open(src, "wb") as f:
            f.write(b"spaces in the name")
        r = subprocess.run(self.filecli("shell", "-c", 'put "%s"; ls; get "a b.txt" "%s"; '
                                        'rm -f "a b.txt"; ls' % (src, self.local + "/c.txt")),
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout.decode()
        self.assertIn("a b.txt uploaded (18 bytes)", out)
        self.assertIn("1 file, 18 bytes", out)
        self.assertIn("a b.txt deleted", out)
        self.assertIn("0 files, 0 bytes", out)
        with open(self.local + "/c.txt", "rb") as f:
            self.assertEqual(f.read(), b"spaces in the name")
        # Commands on stdin; rm reads its answer from the next line; a failed
        # command makes the exit code non-zero.
        r = subprocess.run(self.filecli("shell"),
                           input=b'put "%s"\nrm x.txt\nn\nsize nope\nquit\n' % src.encode(),
                           capture_output=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"not deleted", r.stdout)
        self.assertIn(b"no such file", r.stderr)


if __name__ == "__main__":
    unittest.main()
