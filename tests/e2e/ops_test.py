"""End-to-end: operating tyto — configuration checks, privilege drop (as root), and later the
access list, metrics and snapshots."""
import os
import subprocess
import sys
import tempfile
import unittest

from tracker import Client, Tracker, free_port

BINARY = None
SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(*args):
    return subprocess.run([BINARY] + list(args), capture_output=True, text=True, timeout=30)


def listen_flags(port):
    return ["--udp", "127.0.0.1:%d" % port, "--http", "127.0.0.1:%d" % port, "--cores", "0"]


class Configuration(unittest.TestCase):
    def test_check_config_accepts_the_example_and_the_printed_configuration(self):
        example = os.path.join(SOURCE_ROOT, "tools", "tyto.example.toml")
        result = run("--config", example, "--check-config", "--allow-root")
        self.assertEqual(result.returncode, 0, result.stderr)
        printed = run("--config", example, "--interval", "600", "--print-config")
        self.assertEqual(printed.returncode, 0, printed.stderr)
        with tempfile.NamedTemporaryFile("w", suffix=".toml") as file:
            file.write(printed.stdout)
            file.flush()
            again = run("--config", file.name, "--print-config")
            self.assertEqual(again.stdout, printed.stdout)
            self.assertIn("interval_s = 600", again.stdout)

    def test_check_config_refuses_a_bad_file_with_its_line(self):
        with tempfile.NamedTemporaryFile("w", suffix=".toml") as file:
            file.write("[http]\nidle_timeout_s = 30\nidle_timout_s = 5\n")
            file.flush()
            result = run("--config", file.name, "--check-config")
            self.assertEqual(result.returncode, 2)
            self.assertIn("%s:3: unknown key 'http.idle_timout_s'" % file.name, result.stderr)
        result = run("--check-config", "--user", "no-such-user-here")
        self.assertEqual(result.returncode, 2)
        self.assertIn("no such user", result.stderr)


@unittest.skipUnless(os.geteuid() == 0, "privilege drop needs root (CI runs as root)")
class PrivilegeDrop(unittest.TestCase):
    def test_root_is_refused_without_a_user(self):
        port = free_port()
        result = subprocess.run([BINARY] + listen_flags(port) + ["--metrics", "off"],
                                capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 2)
        self.assertIn("refusing to run as root", result.stderr)

    def test_binds_then_drops_to_the_user_and_chroots(self):
        port = free_port()
        with tempfile.TemporaryDirectory() as jail:
            os.chmod(jail, 0o755)
            # LeakSanitizer reads /proc at exit, which the chroot hides.
            env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
            tracker = Tracker(BINARY, listen_flags(port) + ["--user", "nobody", "--chroot", jail],
                              [("127.0.0.1", port)], env=env)
            try:
                pid = tracker.process.pid
                with open("/proc/%d/status" % pid) as status:
                    ids = {line.split(":")[0]: line.split()[1:] for line in status
                           if line.startswith(("Uid:", "Gid:", "Groups:"))}
                self.assertEqual(ids["Uid"], ["65534"] * 4)
                self.assertEqual(ids["Gid"], ["65534"] * 4)
                self.assertNotIn("0", ids["Groups"])
                self.assertEqual(os.readlink("/proc/%d/root" % pid), os.path.realpath(jail))
                # Still a tracker after the drop: announces are answered.
                client = Client(("127.0.0.1", port))
                client.connect()
                reply = client.announce(os.urandom(20), 6881, left=1)
                self.assertEqual(reply["leechers"], 1)
                client.close()
            finally:
                code, _, stderr = tracker.stop()
            self.assertEqual(code, 0, stderr)
            self.assertIn("running as nobody", stderr)


if __name__ == "__main__":
    BINARY = sys.argv.pop(1)
    unittest.main(verbosity=2)
