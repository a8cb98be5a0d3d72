"""End-to-end: operating tyto — configuration checks, privilege drop (as root), and later the
access list, metrics and snapshots."""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

from tracker import Client, Tracker, TrackerError, free_port, http_get

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
            metrics_port = free_port()
            tracker = Tracker(BINARY, listen_flags(port) + ["--user", "nobody", "--chroot", jail,
                                                            "--metrics",
                                                            "127.0.0.1:%d" % metrics_port],
                              [("127.0.0.1", port)], env=env)
            try:
                pid = tracker.process.pid
                # Shards answer as soon as they are bound; the drop follows within moments.
                deadline = time.time() + 10
                while True:
                    with open("/proc/%d/status" % pid) as status:
                        ids = {line.split(":")[0]: line.split()[1:] for line in status
                               if line.startswith(("Uid:", "Gid:", "Groups:"))}
                    if ids["Uid"] != ["0"] * 4 or time.time() > deadline:
                        break
                    time.sleep(0.05)
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
                # And the ops thread, whose poll the drop's setuid broadcast interrupts, serves.
                status, body = http_get(metrics_port, "/stats")
                self.assertEqual(status, 200)
                self.assertEqual(json.loads(body)["shards_unanswered"], 0)
            finally:
                code, _, stderr = tracker.stop()
            self.assertEqual(code, 0, stderr)
            self.assertIn("running as nobody", stderr)
            self.assertNotIn("poll:", stderr)


def prometheus(text):
    """{(name, shard): value} of a Prometheus text page."""
    values = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        name, value = line.rsplit(" ", 1)
        shard = None
        if "{" in name:
            name, label = name[:-1].split("{")
            shard = label.split('"')[1]
        values[(name, shard)] = float(value)
    return values


class MetricsAndStatistics(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.port = free_port()
        cls.metrics_port = free_port()
        # Statistics windows are the announce interval: 60 s, one second at speedup 60 (peers
        # then expire after 7 s).
        cls.tracker = Tracker(BINARY, ["--udp", "127.0.0.1:%d" % cls.port,
                                       "--http", "127.0.0.1:%d" % cls.port, "--cores", "0-1",
                                       "--metrics", "127.0.0.1:%d" % cls.metrics_port,
                                       "--metrics-allow", "127.0.0.1/32", "--interval", "60",
                                       "--test-clock-speedup", "60"],
                              [("127.0.0.1", cls.port)])

    @classmethod
    def tearDownClass(cls):
        code, _, stderr = cls.tracker.stop()
        assert code == 0, stderr

    def announce(self, info_hash, count, first_port=10000, left=1):
        client = Client(("127.0.0.1", self.port))
        try:
            for i in range(count):
                client.connect()
                client.announce(info_hash, first_port + i, left=left)
        finally:
            client.close()

    def test_metrics_count_requests_per_shard(self):
        status, before = http_get(self.metrics_port, "/metrics")
        self.assertEqual(status, 200)
        self.assertIn("# TYPE tyto_udp_announces_total counter", before)
        self.assertIn("# TYPE tyto_swarms gauge", before)
        self.assertIn("# TYPE tyto_loop_turn_max_us gauge", before)
        values = prometheus(before)
        self.assertEqual(values[("tyto_shards", None)], 2)
        self.assertEqual(values[("tyto_shards_unanswered", None)], 0)
        self.assertIn(("tyto_udp_announces_total", "1"), values)
        announces = sum(v for (n, _), v in values.items() if n == "tyto_udp_announces_total")
        self.announce(os.urandom(20), 7)
        after = prometheus(http_get(self.metrics_port, "/metrics")[1])
        self.assertEqual(sum(v for (n, _), v in after.items() if n == "tyto_udp_announces_total"),
                         announces + 7)
        stats = json.loads(http_get(self.metrics_port, "/stats")[1])
        self.assertEqual(stats["shards"], 2)
        self.assertEqual(len(stats["per_shard"]), 2)
        self.assertGreaterEqual(stats["totals"]["udp_announces"], announces + 7)
        self.assertEqual(stats["totals"]["udp_announces"],
                         sum(s["counters"]["udp_announces"] for s in stats["per_shard"]))
        # The longest turn is a maximum: the totals' is the largest shard's, not a sum.
        self.assertEqual(stats["totals"]["loop_turn_max_us"],
                         max(s["counters"]["loop_turn_max_us"] for s in stats["per_shard"]))

    def test_a_slow_client_does_not_hold_up_the_others(self):
        # Connections that send half a request head and wait: the ops thread serves the others
        # meanwhile (one poll over every connection), and gives each slow one 2 s.
        slow = [socket.create_connection(("127.0.0.1", self.metrics_port), timeout=5)
                for _ in range(3)]
        try:
            for s in slow:
                s.sendall(b"GET /metrics HTTP/1.1\r\n")
            started = time.monotonic()
            for _ in range(5):
                status, body = http_get(self.metrics_port, "/stats")
                self.assertEqual(status, 200)
                self.assertEqual(json.loads(body)["shards_unanswered"], 0)
            self.assertLess(time.monotonic() - started, 1.5)
            for s in slow:  # then the slow ones are given up on: closed without a reply
                self.assertEqual(s.recv(100), b"")
        finally:
            for s in slow:
                s.close()

    def test_clients_outside_the_allowlist_get_403(self):
        status, body = http_get(self.metrics_port, "/metrics", source="127.0.0.2")
        self.assertEqual(status, 403)
        self.assertNotIn("tyto_", body)
        self.assertEqual(http_get(self.metrics_port, "/nothing")[0], 404)

    def test_swarm_statistics_by_hex_or_percent_encoded_hash(self):
        info_hash = os.urandom(20)
        self.announce(info_hash, 5)
        self.announce(info_hash, 2, first_port=20000, left=0)
        for form in (info_hash.hex(), info_hash.hex().upper(), urllib.parse.quote(info_hash)):
            status, body = http_get(self.metrics_port, "/stats/swarm?info_hash=" + form)
            self.assertEqual(status, 200, body)
            swarm = json.loads(body)
            self.assertEqual(swarm["info_hash"], info_hash.hex())
            self.assertEqual((swarm["seeders"], swarm["leechers"], swarm["completed"]), (2, 5, 0))
            self.assertAlmostEqual(swarm["seeder_ratio"], 2 / 7, places=3)
            self.assertEqual(swarm["flags"], [])
        self.assertEqual(http_get(self.metrics_port, "/stats/swarm?info_hash=" + "00" * 20)[0], 404)
        self.assertEqual(http_get(self.metrics_port, "/stats/swarm?info_hash=xyz")[0], 400)
        self.assertEqual(http_get(self.metrics_port, "/stats/swarm")[0], 400)

    def test_top_swarms_across_shards(self):
        hashes = [os.urandom(20) for _ in range(4)]
        for i, info_hash in enumerate(hashes):
            self.announce(info_hash, 50 + i, first_port=30000)  # above the other tests
        status, body = http_get(self.metrics_port, "/stats/top?by=leechers&n=3")
        self.assertEqual(status, 200, body)
        top = json.loads(body)["swarms"]
        self.assertEqual([s["info_hash"] for s in top], [h.hex() for h in reversed(hashes)][:3])
        self.assertEqual([s["leechers"] for s in top], [53, 52, 51])
        self.assertEqual(http_get(self.metrics_port, "/stats/top?by=nonsense")[0], 400)
        self.assertEqual(http_get(self.metrics_port, "/stats/top?n=0")[0], 400)

    def test_a_leecher_surge_is_flagged_after_its_window(self):
        info_hash = os.urandom(20)
        self.announce(info_hash, 40, first_port=40000)
        deadline = time.time() + 10
        while True:  # windows close lazily: the query closes the one that ended
            status, body = http_get(self.metrics_port, "/stats/swarm?info_hash=" + info_hash.hex())
            # A shard that does not answer within the ops server's second (TSan on a loaded
            # machine) gets a 503; the next query asks again.
            swarm = json.loads(body) if status == 200 else {"flags": []}
            if "leecher_surge" in swarm["flags"] or time.time() > deadline:
                break
            time.sleep(0.05)
        self.assertIn("leecher_surge", swarm["flags"])
        self.assertEqual(swarm["joins_last_window"], 40)


def write_list(path, hashes, comment="# test list"):
    """Replaces the file the way an operator's script should: write aside, then rename."""
    with open(path + ".tmp", "w") as file:
        file.write(comment + "\n" + "".join(h.hex() + "\n" for h in hashes))
    os.rename(path + ".tmp", path)


class BusyPoll(unittest.TestCase):
    def requests_spaced(self, busy_poll_us):
        """20 connects 20 ms apart to a one-shard tracker; returns its exit counters."""
        port = free_port()
        tracker = Tracker(BINARY, ["--udp", "127.0.0.1:%d" % port, "--cores", "0",
                                   "--busy-poll-us", str(busy_poll_us)], [("127.0.0.1", port)])
        try:
            client = Client(("127.0.0.1", port))
            for _ in range(20):
                time.sleep(0.02)
                client.connect()
            client.close()
        finally:
            code, counters, stderr = tracker.stop()
        self.assertEqual(code, 0, stderr)
        return counters

    def test_the_loop_polls_between_requests_instead_of_sleeping(self):
        sleeping = self.requests_spaced(0)
        polling = self.requests_spaced(100000)  # 100 ms: longer than the gaps
        self.assertGreaterEqual(sleeping["sleeps"], 20)  # one sleep per gap at least
        self.assertLess(polling["sleeps"], 10)  # only before the first and after the last
        self.assertGreater(polling["loop_turns"], 10 * sleeping["loop_turns"])


class AccessLists(unittest.TestCase):
    def test_whitelist_reloads_on_change_and_sighup_without_losing_packets_or_peers(self):
        port = free_port()
        a, b = os.urandom(20), os.urandom(20)
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "allowed.txt")
            write_list(path, [a])
            tracker = Tracker(BINARY, ["--udp", "127.0.0.1:%d" % port, "--http",
                                       "127.0.0.1:%d" % port, "--cores", "0-1",
                                       "--access-mode", "whitelist", "--access-list", path],
                              [("127.0.0.1", port)])
            answered, lost, stop = [0], [0], threading.Event()

            def load():  # one peer of `a` re-announcing as fast as it is answered
                client = Client(("127.0.0.1", port), timeout=2)
                client.connect()
                deadline = time.time() + 60
                while not stop.is_set() and time.time() < deadline:
                    try:
                        client.announce(a, 7000, left=0)
                        answered[0] += 1
                    except TrackerError:  # once `a` leaves the list: still an answer
                        answered[0] += 1
                    except socket.timeout:
                        lost[0] += 1
                client.close()

            def allowed(info_hash, peer_port):
                client = Client(("127.0.0.1", port))
                try:
                    client.connect()
                    client.announce(info_hash, peer_port, left=1)
                    return True
                except TrackerError as error:
                    self.assertIn("not allowed", str(error))
                    return False
                finally:
                    client.close()

            thread = threading.Thread(target=load)
            thread.start()
            try:
                self.assertTrue(allowed(a, 8001))
                self.assertFalse(allowed(b, 8001))
                with socket.create_connection(("127.0.0.1", port)) as http:
                    http.sendall(("GET /announce?info_hash=%s&peer_id=%s&port=1&left=1 HTTP/1.0\r\n\r\n" %
                                  (urllib.parse.quote(b), "P" * 20)).encode())
                    self.assertIn(b"info_hash not allowed", http.recv(4096))
                # The file changes: b is allowed within the once-a-second look.
                changed = "access list file changed: access list reloaded"
                write_list(path, [a, b])
                self.assertTrue(tracker.wait_for_log(changed, 1))
                self.assertTrue(allowed(b, 8002))
                # A broken file keeps the previous list.
                with open(path + ".tmp", "w") as file:
                    file.write("not a hash\n")
                os.rename(path + ".tmp", path)
                self.assertTrue(tracker.wait_for_log("keeping the previous access list"))
                self.assertTrue(allowed(b, 8003))
                # SIGHUP: a change the file watch cannot see (same inode, size and times).
                write_list(path, [a, b])
                self.assertTrue(tracker.wait_for_log(changed, 2))  # the watch has this inode now
                before = os.stat(path)
                with open(path, "r+") as file:  # now only b, same size: "a" becomes a comment
                    file.write("# test list\n" + b.hex() + "\n#" + a.hex()[1:] + "\n")
                os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
                time.sleep(1.5)  # more than one look at the file
                self.assertTrue(allowed(a, 8005))  # not noticed without the signal
                self.assertEqual(tracker.log_count(changed), 2)
                tracker.process.send_signal(signal.SIGHUP)
                self.assertTrue(tracker.wait_for_log("SIGHUP: access list reloaded"))
                self.assertFalse(allowed(a, 8006))
                # Peers of a swarm now refused stay (nothing is dropped on a reload).
                client = Client(("127.0.0.1", port))
                client.connect()
                seeders, _, leechers = client.scrape([a])[0]
                client.close()
                self.assertGreaterEqual(seeders + leechers, 2)
            finally:
                stop.set()
                thread.join()
                code, counters, stderr = tracker.stop()
            self.assertEqual(code, 0, stderr)
            self.assertGreater(answered[0], 100)
            self.assertEqual(lost[0], 0)
            self.assertIn("keeping the previous access list", stderr)
            self.assertIn("SIGHUP: access list reloaded", stderr)
            self.assertGreaterEqual(counters["announces_denied"], 3)

    def test_a_bad_list_at_start_is_refused(self):
        with tempfile.NamedTemporaryFile("w", suffix=".txt") as file:
            file.write("00" * 20 + "\nzz\n")
            file.flush()
            result = run("--access-mode", "blacklist", "--access-list", file.name,
                         "--check-config", "--allow-root")
            self.assertEqual(result.returncode, 2)
            self.assertIn("%s:2: not an info_hash" % file.name, result.stderr)


class Snapshots(unittest.TestCase):
    def start(self, port, path):
        return Tracker(BINARY, ["--udp", "127.0.0.1:%d" % port, "--udp", "[::1]:%d" % port,
                                "--http", "127.0.0.1:%d" % port, "--cores", "0-1",
                                "--snapshot-path", path],
                       [("127.0.0.1", port)])

    def scrape(self, port, hashes):
        client = Client(("127.0.0.1", port))
        try:
            client.connect()
            return client.scrape(hashes)
        finally:
            client.close()

    def fill(self, port, hashes):
        for n, info_hash in enumerate(hashes):
            for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
                client = Client((host, port))
                client.connect()
                for i in range(n + 2):
                    client.announce(info_hash, 9000 + i, left=1)
                client.announce(info_hash, 9500, left=0, event=1)  # a completed download
                client.close()

    def test_swarms_survive_a_restart(self):
        port = free_port()
        hashes = [os.urandom(20) for _ in range(5)]
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "tyto.snapshot")
            tracker = self.start(port, path)
            try:
                self.fill(port, hashes)
                before = self.scrape(port, hashes)
            finally:
                code, _, stderr = tracker.stop()
            self.assertEqual(code, 0, stderr)
            self.assertIn("snapshot: %d swarms written" % len(hashes), stderr)
            self.assertTrue(os.path.exists(path))
            self.assertFalse(os.path.exists(path + ".tmp"))
            self.assertEqual(before[0], (2, 2, 4))  # (seeders, completed, leechers), both families
            tracker = self.start(port, path)
            try:
                after = self.scrape(port, hashes)
            finally:
                code, _, stderr = tracker.stop()
            self.assertEqual(code, 0, stderr)
            self.assertIn("snapshot: restored %d swarms with %d peers" %
                          (len(hashes), sum(2 * (n + 3) for n in range(len(hashes)))), stderr)
            self.assertEqual(after, before)

    def test_a_corrupt_or_foreign_snapshot_is_refused_and_the_tracker_starts_empty(self):
        port = free_port()
        info_hash = os.urandom(20)
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "tyto.snapshot")
            tracker = self.start(port, path)
            try:
                self.fill(port, [info_hash])
            finally:
                tracker.stop()
            with open(path, "r+b") as file:
                file.seek(60)
                byte = file.read(1)
                file.seek(60)
                file.write(bytes([byte[0] ^ 0x40]))
            for expected in ("snapshot checksum mismatch", "not a tyto snapshot"):
                tracker = self.start(port, path)
                try:
                    self.assertEqual(self.scrape(port, [info_hash]), [(0, 0, 0)])
                finally:
                    code, _, stderr = tracker.stop()
                self.assertEqual(code, 0, stderr)
                self.assertIn("refused: " + expected, stderr)
                with open(path, "wb") as file:
                    file.write(b"# not a snapshot at all\n" * 4)


if __name__ == "__main__":
    BINARY = sys.argv.pop(1)
    unittest.main(verbosity=2)
