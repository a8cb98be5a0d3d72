"""End-to-end: periodic snapshots (README "Snapshots", issue 21 §3). Announce, wait for a
periodic snapshot, kill -9, restart on the same file: the swarms are back, aged by the downtime;
the shards' loop-stall counters did not rise while snapshots were taken."""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import unittest

from tracker import COMPLETED, Client, Tracker, free_port, http_get

BINARY = None
PERIODIC = "periodic snapshot: "


def sanitized(binary):
    """Whether the binary is an AddressSanitizer build."""
    linked = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    return "libasan" in linked


def stats(port):
    status, body = http_get(port, "/stats")
    assert status == 200, body
    return json.loads(body)


class PeriodicSnapshots(unittest.TestCase):
    def start(self, port, metrics_port, path):
        return Tracker(BINARY, ["--udp", "127.0.0.1:%d" % port, "--udp", "[::1]:%d" % port,
                                "--cores", "0-1", "--snapshot-path", path,
                                "--snapshot-interval-s", "1",
                                "--metrics", "127.0.0.1:%d" % metrics_port,
                                "--metrics-allow", "127.0.0.1/32"],
                       [("127.0.0.1", port)])

    def fill(self, port, hashes, big_peers):
        for n, info_hash in enumerate(hashes):
            for host in ("127.0.0.1", "::1"):
                client = Client((host, port))
                client.connect()
                for i in range(n % 7 + 1):
                    client.announce(info_hash, 9000 + i, left=1)
                client.announce(info_hash, 9500, left=0, event=COMPLETED)
                client.close()
        # One swarm larger than a slice (1 KiB: ~110 IPv4 peers): split over many records.
        clients = [Client(("127.0.0.1", port), source="127.0.0.%d" % (2 + i)) for i in range(4)]
        try:
            for client in clients:
                client.connect()
            for i in range(big_peers):
                clients[i % 4].announce(hashes[0], 10000 + i // 4, left=1)
        finally:
            for client in clients:
                client.close()

    def scrape(self, port, hashes):
        client = Client(("127.0.0.1", port))
        try:
            client.connect()
            return [tuple(entry) for entry in client.scrape(hashes)]
        finally:
            client.close()

    def test_swarms_survive_kill_9_after_a_periodic_snapshot(self):
        port, metrics_port = free_port(), free_port()
        hashes = [os.urandom(20) for _ in range(60)]
        big_peers = 2400
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "tyto.snapshot")
            tracker = self.start(port, metrics_port, path)
            try:
                self.fill(port, hashes, big_peers)
                before = self.scrape(port, hashes)
                before_stats = stats(metrics_port)
                stalls_before = before_stats["totals"]["loop_turns_over_1ms"]
                written_before = before_stats["snapshot"]["written"]
                # Snapshots asked for after the fill ended: wait for two more to be written.
                seen = tracker.log_count(PERIODIC)
                self.assertTrue(tracker.wait_for_log(PERIODIC, seen + 3, seconds=60),
                                tracker.stderr())
                after_stats = stats(metrics_port)
                stalls_after = after_stats["totals"]["loop_turns_over_1ms"]
                self.assertGreaterEqual(after_stats["snapshot"]["written"], 3)
                self.assertEqual(after_stats["snapshot"]["failures"], 0)
                self.assertEqual(after_stats["snapshot"]["last_swarms"], len(hashes))
                self.assertGreater(after_stats["snapshot"]["last_bytes"], 9 * big_peers)
                status, metrics = http_get(metrics_port, "/metrics")
                self.assertIn("tyto_snapshot_written_total ", metrics)
                # No loop turn over 1 ms came from the snapshots (a turn spends at most
                # ~200 us of slices). Shared CPUs preempt a turn past 1 ms now and then, with or
                # without snapshots: one is tolerated in a release build. Sanitizer builds
                # (ASan: -O0, turns several times slower, the shards busy through each
                # snapshot) report and do not assert, as issue 21 §2 asks of its turn checks:
                # on a VM whose host takes a CPU away for 1-8 ms several times a second (Linux
                # 6.18, firecracker: 28 such stalls in 5 s of an idle core, and the thread's CPU
                # clock runs on through them), 3 to 7 turns of the shards' busy seconds passed
                # 1 ms with the bound in place, as many as slicing without it would add.
                snapshots = after_stats["snapshot"]["written"] - written_before
                stalls = stalls_after - stalls_before
                if sanitized(BINARY):
                    print("snapshot_e2e: loop_turns_over_1ms rose by %d during %d periodic "
                          "snapshots (sanitizer build: reported, not asserted)" %
                          (stalls, snapshots), file=sys.stderr)
                else:
                    self.assertLessEqual(stalls, 1, "loop_turns_over_1ms rose during %d "
                                         "periodic snapshots" % snapshots)
            finally:
                stderr = tracker.kill()
            self.assertIn(PERIODIC + "%d swarms" % len(hashes), stderr)
            self.assertTrue(os.path.exists(path))
            downtime_s = 3
            time.sleep(downtime_s)
            tracker = self.start(port, metrics_port, path)
            try:
                after = self.scrape(port, hashes)
                status, body = http_get(metrics_port, "/stats/swarm?info_hash=" + hashes[5].hex())
                self.assertEqual(status, 200, body)
                age_s = json.loads(body)["age_s"]
            finally:
                code, _, stderr = tracker.stop()
            self.assertEqual(code, 0, stderr)
            self.assertEqual(after, before)
            peers = sum(2 * (n % 7 + 2) for n in range(len(hashes))) + big_peers
            self.assertIn("snapshot: restored %d swarms with %d peers" % (len(hashes), peers),
                          stderr)
            # Aged by the downtime (what aging does to each peer is the stores' unit tests').
            written_ago = re.search(r"written (\d+) s ago; every peer is aged by that", stderr)
            self.assertIsNotNone(written_ago, stderr)
            self.assertGreaterEqual(int(written_ago.group(1)), downtime_s)
            self.assertGreaterEqual(age_s, 0)
            # The graceful stop still writes its own snapshot to the same path.
            self.assertIn("snapshot: %d swarms written to %s" % (len(hashes), path), stderr)


if __name__ == "__main__":
    BINARY = sys.argv.pop(1)
    unittest.main(verbosity=2)
