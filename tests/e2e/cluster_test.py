"""End-to-end: a tyto cluster (README "Cluster", issue 20). Three real nats-server processes
clustered on loopback, three tyto nodes each on its own NATS server (node A and B with two
shards, C with one, so a batch is routed both straight and by the receiver's own shard_of):
  - an announce on A is in B's and C's scrape within 1 s, and in the peers they hand out;
    a completion is counted once everywhere; a stop removes the peer everywhere;
  - a UDP connection id from one node is valid on the others;
  - hostile messages on the cluster's subjects (another secret, altered, truncated, absurd counts
    under a valid MAC) are refused and counted and change nothing; a replayed batch changes
    nothing; a batch this test makes with the right secret is applied (the codec is the one the
    README documents);
  - kill -9 of one NATS server: replication goes on through the others;
  - kill -9 of node A: B and C keep A's swarms; A restarted with no snapshot is warm within 10 s
    and its scrape of every swarm equals B's;
  - node C stopped (SIGSTOP) for 10 s while A and B add peers (50 000 of them), stop one and
    count a completion: resumed (SIGCONT), it agrees with them within 3 s, from what NATS held
    for it (its server neither cuts it as a slow consumer nor as stale, it does not reconnect);
  - all three NATS servers killed for 10 s: every node answers UDP and HTTP announces and scrapes
    from its own state; restarted, the nodes reconnect, new announces replicate again, and a
    re-announce repairs whatever the outage's announces left unreplicated;
  - (ClusterExpiry, two nodes on a fast test clock) a silent peer leaves both nodes' scrapes at
    the same moment.
Every wait is bounded; every process is stopped by its pid."""
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest
from urllib.parse import quote_from_bytes

from http_test import announce_target, bdecode
from tracker import COMPLETED, STOPPED, Client, Tracker, TrackerError, free_port, http_get

BINARY = None
NATS_SERVER = shutil.which("nats-server")
SECRET = b"5f1c3e9a0b7d4c2e8f6a1b3d5c7e9f0a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e"


def cluster_stats(metrics_port):
    status, body = http_get(metrics_port, "/stats")
    assert status == 200, body
    stats = json.loads(body)
    return stats["cluster"], stats["totals"]


def wait_until(predicate, seconds, step_s=0.05):
    """Polls `predicate` until it holds or `seconds` pass; returns the seconds it took, or None."""
    started = time.time()
    while True:
        if predicate():
            return time.time() - started
        if time.time() - started > seconds:
            return None
        time.sleep(step_s)


def http_scrape(port, info_hash):
    """(seeders, completed, leechers) from the HTTP scrape, as the UDP scrape orders them."""
    status, body = http_get(port, "/scrape?info_hash=" + quote_from_bytes(info_hash, safe=""),
                            raw=True)
    assert status == 200, body
    files = bdecode(body)[0][b"files"]
    entry = files.get(info_hash, {b"complete": 0, b"downloaded": 0, b"incomplete": 0})
    return entry[b"complete"], entry[b"downloaded"], entry[b"incomplete"]


def http_announce(port, info_hash, peer_port, left, event=None):
    status, body = http_get(port, announce_target(info_hash, peer_port, left, event=event),
                            raw=True)
    reply = bdecode(body)[0]
    assert status == 200 and b"failure reason" not in reply, body
    return reply


# --- The batch format (cluster/replication_batch.hpp), written independently of the C++ codec ---

def cluster_key(secret):
    return hashlib.blake2b(secret, key=b"tyto cluster replication key v1", digest_size=32).digest()


def sign(body, key):
    return body + hmac.new(key, body, hashlib.sha512).digest()[:32]


def batch_bytes(key, origin, sequence, changes, shards=1, shard=0, base_ms=None, count=None):
    base_ms = int(time.time() * 1000) if base_ms is None else base_ms
    body = b"TYRB" + bytes([1, len(origin)]) + origin
    body += struct.pack(">HHQQI", shards, shard, sequence, base_ms,
                        len(changes) if count is None else count)
    return sign(body + b"".join(changes), key)


def peer_change(info_hash, ip, port, seeder, age_s=0):
    return bytes([8 if seeder else 0]) + info_hash + socket.inet_aton(ip) + struct.pack(
        ">HH", port, age_s)


def completed_change(info_hash, count):
    return bytes([2]) + info_hash + struct.pack(">H", count)


class NatsServer:
    """One nats-server of a three-server cluster on loopback."""

    def __init__(self, name, port, cluster_port, route_ports, directory):
        """cluster_port None: a server alone."""
        self.args = [NATS_SERVER, "-a", "127.0.0.1", "-p", str(port), "-n", name,
                     "-l", os.path.join(directory, name + ".log")]
        if cluster_port is not None:
            routes = ",".join("nats://127.0.0.1:%d" % p for p in route_ports)
            self.args += ["--cluster_name", "tyto-test",
                          "--cluster", "nats://127.0.0.1:%d" % cluster_port, "--routes", routes]
        self.port = port
        self.log_path = os.path.join(directory, name + ".log")
        self.start()

    def start(self):
        self.process = subprocess.Popen(self.args, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nats-server on %d did not start" % self.port)

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()


def nats_publish(port, subject, payload):
    """Publishes one message with the NATS text protocol (what any client of the cluster's
    subjects could send), then waits for the server's PONG so it was taken."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.recv(4096)  # INFO
        s.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\n')
        s.sendall(b"PUB %s %d\r\n" % (subject.encode(), len(payload)) + payload + b"\r\nPING\r\n")
        data = b""
        deadline = time.time() + 5
        while b"PONG" not in data and time.time() < deadline:
            data += s.recv(4096)
        assert b"PONG" in data, data


@unittest.skipIf(NATS_SERVER is None, "nats-server is not installed")
class Cluster(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.directory = tempfile.mkdtemp(prefix="tyto-cluster-")
        cls.secret_file = os.path.join(cls.directory, "secret")
        with open(cls.secret_file, "wb") as f:
            f.write(SECRET + b"\n")
        os.chmod(cls.secret_file, 0o600)
        cls.nats, cls.nodes = [], {}
        try:
            nats_ports = [free_port() for _ in range(3)]
            route_ports = [free_port() for _ in range(3)]
            for i in range(3):
                cls.nats.append(NatsServer("n%d" % i, nats_ports[i], route_ports[i],
                                           [p for j, p in enumerate(route_ports) if j != i],
                                           cls.directory))
            time.sleep(0.5)  # routes form
            for name, nats_index, cores in (("a", 0, "0-1"), ("b", 1, "0-1"), ("c", 2, "0")):
                cls.nodes[name] = cls.start_node(name, nats_index, cores, free_port(), free_port())
        except BaseException:
            # unittest skips tearDownClass when setUpClass fails: stop what started, by pid.
            cls.kill_all()
            raise

    @classmethod
    def kill_all(cls):
        for tracker in cls.nodes.values():
            if tracker.process.poll() is None:
                tracker.kill()
        for server in cls.nats:
            server.kill()
        shutil.rmtree(cls.directory, ignore_errors=True)

    @classmethod
    def start_node(cls, name, nats_index, cores, port, metrics_port):
        # Every server is listed: a node whose server dies goes on through another.
        servers = [cls.nats[nats_index]] + [n for i, n in enumerate(cls.nats) if i != nats_index]
        args = ["--udp", "127.0.0.1:%d" % port, "--http", "127.0.0.1:%d" % port, "--cores", cores,
                "--metrics", "127.0.0.1:%d" % metrics_port, "--metrics-allow", "127.0.0.1/32",
                "--cluster-node", name, "--cluster-secret-file", cls.secret_file,
                "--cluster-publish-interval-ms", "50"]
        for server in servers:
            args += ["--cluster-nats", "nats://127.0.0.1:%d" % server.port]
        tracker = Tracker(BINARY, args, [("127.0.0.1", port)])
        tracker.port, tracker.metrics_port, tracker.cores = port, metrics_port, cores
        tracker.nats_index = nats_index
        assert tracker.wait_for_log("cluster: warm (", seconds=15), tracker.stderr()
        return tracker

    @classmethod
    def tearDownClass(cls):
        try:
            cls.stop_nodes()
        finally:
            cls.kill_all()

    @classmethod
    def stop_nodes(cls):
        """A graceful stop of every node: exit status 0 and no sanitizer report (the cluster
        thread's shutdown frees what the queues hold; TSan exits non-zero on a race)."""
        for name, tracker in cls.nodes.items():
            if tracker.process.poll() is not None:
                continue
            code, counters, stderr = tracker.stop()
            assert code == 0, (name, code, stderr[-4000:])
            assert "Sanitizer" not in stderr, (name, stderr[-4000:])
            if name != "a":  # A was restarted moments ago
                assert counters.get("cluster_batches_in", 0) > 0, (name, counters)

    def client(self, name):
        client = Client(("127.0.0.1", self.nodes[name].port))
        client.connect()
        return client

    def scrape(self, name, info_hashes):
        """The node's UDP scrape of any number of swarms (70 to a request)."""
        client = self.client(name)
        try:
            return [row for at in range(0, len(info_hashes), 70)
                    for row in client.scrape(info_hashes[at:at + 70])]
        finally:
            client.close()

    def wait_scrape(self, names, info_hashes, expected, seconds=1.0):
        """Polls the nodes' scrapes until they equal `expected`; returns what they last said."""
        deadline = time.time() + seconds
        while True:
            seen = {name: self.scrape(name, info_hashes) for name in names}
            if all(value == expected for value in seen.values()) or time.time() > deadline:
                return seen
            time.sleep(0.02)

    def test_1_an_announce_reaches_every_node_within_a_second(self):
        info_hash = os.urandom(20)
        a = self.client("a")
        a.announce(info_hash, 7001, left=0)            # seeder
        a.announce(info_hash, 7002, left=100)          # leecher
        started = time.time()
        seen = self.wait_scrape(["b", "c"], [info_hash], [(1, 0, 1)])
        took = time.time() - started
        for name in ("b", "c"):
            self.assertEqual(seen[name], [(1, 0, 1)], (name, seen))
        self.assertLess(took, 1.0)
        # Their peers: a leecher announcing to C gets both of A's peers.
        c = self.client("c")
        reply = c.announce(info_hash, 7003, left=50)
        self.assertEqual(sorted(reply["peers"]), [("127.0.0.1", 7001), ("127.0.0.1", 7002)])
        # A completion on B is counted once on every node; a stop on A leaves everywhere.
        b = self.client("b")
        peer_id = os.urandom(20)
        b.announce(info_hash, 7004, left=10, peer_id=peer_id)
        b.announce(info_hash, 7004, left=0, event=COMPLETED, peer_id=peer_id)
        seen = self.wait_scrape(["a", "b", "c"], [info_hash], [(2, 1, 2)])
        for name in ("a", "b", "c"):
            self.assertEqual(seen[name], [(2, 1, 2)], (name, seen))
        a.announce(info_hash, 7002, left=100, event=STOPPED)
        seen = self.wait_scrape(["a", "b", "c"], [info_hash], [(2, 1, 1)])
        for name in ("a", "b", "c"):
            self.assertEqual(seen[name], [(2, 1, 1)], (name, seen))
        for client in (a, b, c):
            client.close()

    def test_2_a_connection_id_from_one_node_is_valid_on_another(self):
        a = self.client("a")
        on_b = Client(("127.0.0.1", self.nodes["b"].port))
        on_b.sock.close()
        on_b.sock = a.sock  # the same client address and port, talking to B now
        on_b.address = ("127.0.0.1", self.nodes["b"].port)
        reply = on_b.announce(os.urandom(20), 7100, left=0, connection_id=a.connection_id)
        self.assertEqual(reply["seeders"], 1)
        with self.assertRaises(TrackerError):  # a made-up id is still refused
            on_b.announce(os.urandom(20), 7100, connection_id=a.connection_id ^ 1)
        a.close()

    def test_3_hostile_messages_are_refused_and_counted(self):
        info_hash = os.urandom(20)
        good_key, other_key = cluster_key(SECRET), cluster_key(SECRET[::-1])
        subject = "tyto.tyto.swarm.1.0"
        nats_port = self.nats[0].port
        before = {name: cluster_stats(self.nodes[name].metrics_port)[0] for name in "abc"}
        change = peer_change(info_hash, "10.9.8.7", 6881, seeder=True)
        origin = b"mallory"
        sequence = int(time.time() * 1e6)
        nats_publish(nats_port, subject, batch_bytes(other_key, origin, sequence, [change]))
        altered = bytearray(batch_bytes(good_key, origin, sequence, [change]))
        altered[len(altered) // 2] ^= 1
        nats_publish(nats_port, subject, bytes(altered))
        nats_publish(nats_port, subject, b"TYRB\x01")
        nats_publish(nats_port, subject,
                     batch_bytes(good_key, origin, sequence, [change], count=100000))
        nats_publish(nats_port, subject,
                     batch_bytes(good_key, origin, sequence, [change], shards=1, shard=1))
        expected = {"refused_bad_mac": 2, "refused_too_short": 1, "refused_bad_count": 1,
                    "refused_bad_header": 1}
        deadline = time.time() + 3
        while time.time() < deadline:
            after = {name: cluster_stats(self.nodes[name].metrics_port)[0] for name in "abc"}
            if all(after[n][k] - before[n][k] >= v for n in "abc" for k, v in expected.items()):
                break
            time.sleep(0.05)
        for name in "abc":
            for counter, count in expected.items():
                self.assertEqual(after[name][counter] - before[name][counter], count,
                                 (name, counter))
        self.assertEqual(self.scrape("b", [info_hash]), [(0, 0, 0)])
        # The same change under the right secret is applied; its replay (same sequence) and a
        # completed count sent twice under one sequence change nothing more.
        good = batch_bytes(good_key, origin, sequence,
                           [change, completed_change(info_hash, 2)])
        nats_publish(nats_port, subject, good)
        seen = self.wait_scrape(["a", "b", "c"], [info_hash], [(1, 2, 0)], seconds=2)
        for name in "abc":
            self.assertEqual(seen[name], [(1, 2, 0)], (name, seen))
        nats_publish(nats_port, subject, good)
        nats_publish(nats_port, subject, batch_bytes(good_key, origin, sequence - 1,
                                                     [completed_change(info_hash, 5)]))
        time.sleep(0.5)
        for name in "abc":
            self.assertEqual(self.scrape(name, [info_hash]), [(1, 2, 0)], name)
            self.assertGreaterEqual(
                cluster_stats(self.nodes[name].metrics_port)[0]["batches_duplicate"]
                - before[name]["batches_duplicate"], 2)

    def test_4_one_nats_server_killed_replication_goes_on(self):
        self.nats[0].kill()  # node A's own server
        try:
            info_hash = os.urandom(20)
            deadline = time.time() + 10
            a = self.client("a")
            a.announce(info_hash, 7201, left=0)
            seen = None
            while time.time() < deadline:
                a.announce(info_hash, 7201, left=0)  # re-announced: one may go out unconnected
                seen = self.wait_scrape(["b", "c"], [info_hash], [(1, 0, 0)], seconds=0.5)
                if all(value == [(1, 0, 0)] for value in seen.values()):
                    break
            for name in ("b", "c"):
                self.assertEqual(seen[name], [(1, 0, 0)], (name, seen))
            a.close()
        finally:
            self.nats[0].start()
            time.sleep(0.5)

    def test_5_a_node_killed_loses_nothing_and_restarts_warm(self):
        hashes = [os.urandom(20) for _ in range(30)]
        a = self.client("a")
        for n, info_hash in enumerate(hashes):
            for i in range(n % 4 + 1):
                a.announce(info_hash, 7300 + i, left=i % 2)
        expected = [(sum(1 for i in range(n % 4 + 1) if i % 2 == 0), 0,
                     sum(1 for i in range(n % 4 + 1) if i % 2 == 1)) for n in range(len(hashes))]
        seen = self.wait_scrape(["b", "c"], hashes, expected, seconds=2)
        for name in ("b", "c"):
            self.assertEqual(seen[name], expected, name)
        old = self.nodes["a"]
        old.kill()
        time.sleep(0.3)
        for name in ("b", "c"):  # A's swarms stay until their peers' own timeout
            self.assertEqual(self.scrape(name, hashes), expected, name)
        started = time.time()
        self.nodes["a"] = self.start_node("a", old.nats_index, old.cores, old.port,
                                          old.metrics_port)
        took = time.time() - started
        self.assertLess(took, 10)
        # Warm only once every shard restored every piece: a scrape at once sees them all (when
        # warm was declared on the last piece's arrival, TSan's slower shards failed this).
        self.assertTrue(self.nodes["a"].wait_for_log("restored by every shard"),
                        self.nodes["a"].stderr())
        self.assertEqual(self.scrape("a", hashes), self.scrape("b", hashes))
        stats, totals = cluster_stats(self.nodes["a"].metrics_port)
        self.assertEqual(stats["warm"], 1)
        self.assertGreater(totals["cluster_warm_peers"], 0)
        a.close()

    def assertSameSwarms(self, seen, expected, name):
        """Equal scrapes, told as a count of swarms that differ (a diff of 5 000 is no help)."""
        differing = [(i, a, b) for i, (a, b) in enumerate(zip(seen, expected)) if a != b]
        self.assertEqual(len(seen), len(expected), name)
        self.assertEqual(len(differing), 0, "%s differs on %d of %d swarms, such as %s" % (
            name, len(differing), len(expected), differing[:3]))

    def blast(self, name, hashes, peers_per_hash):
        """Announces `peers_per_hash` seeders on every swarm without waiting for the replies (as
        fast as a busy tracker sees them); the node may drop some: compare with its scrape."""
        client = self.client(name)
        sent = 0
        for info_hash in hashes:
            for i in range(peers_per_hash):
                client.sock.sendto(struct.pack(
                    ">QII20s20sQQQIIIiH", client.connection_id, 1, sent, info_hash,
                    os.urandom(20), 0, 0, 0, 0, 0, 0, 0, 10000 + i), client.address)
                sent += 1
                if sent % 100 == 0:
                    time.sleep(0.001)
        client.close()

    def test_6_a_paused_node_catches_up_after_sigcont(self):
        kept = os.urandom(20)
        added = [os.urandom(20) for _ in range(20)]
        bulk = [os.urandom(20) for _ in range(5000)]
        a, b = self.client("a"), self.client("b")
        leaving, finishing = os.urandom(20), os.urandom(20)
        a.announce(kept, 7401, left=0)
        a.announce(kept, 7402, left=10, peer_id=leaving)
        b.announce(kept, 7403, left=10, peer_id=finishing)
        seen = self.wait_scrape("abc", [kept], [(1, 0, 2)])
        for name in "abc":
            self.assertEqual(seen[name], [(1, 0, 2)], name)
        c = self.nodes["c"]  # one shard: the smallest queue from its bridge
        server = self.nats[c.nats_index]
        before = cluster_stats(c.metrics_port)[0]
        log_before = len(server.log())
        os.kill(c.process.pid, signal.SIGSTOP)
        stopped = time.time()
        try:
            # A stop (on A), a completion (on B), twenty new swarms (on A), 50 000 peers in 5 000
            # swarms (on A), then five seconds later more peers (on B): the later batches are
            # old when C applies them.
            a.announce(kept, 7402, left=10, event=STOPPED, peer_id=leaving)
            b.announce(kept, 7403, left=0, event=COMPLETED, peer_id=finishing)
            for n, info_hash in enumerate(added):
                a.announce(info_hash, 7410 + n, left=n % 2)
            self.blast("a", bulk, 10)
            time.sleep(max(0.0, stopped + 5 - time.time()))
            for info_hash in added[:5]:
                b.announce(info_hash, 7450, left=5)
            expected = [(2, 1, 0)] + [(1 - n % 2, 0, n % 2 + (1 if n < 5 else 0))
                                      for n in range(len(added))]
            seen = self.wait_scrape("ab", [kept] + added, expected)
            for name in "ab":
                self.assertEqual(seen[name], expected, name)
            expected += self.scrape("a", bulk)
            # Most of the 50 000 arrive in the ASan build, more than C's 32 768-slot queue takes
            # at once (what caught the drop-on-full-queue bug); about 17 000 under TSan, whose
            # slower node drops more of the blast: there it checks the catch-up alone.
            self.assertGreater(sum(seeders for seeders, _, _ in expected), 10000)
            time.sleep(max(0.0, stopped + 10 - time.time()))
        finally:
            os.kill(c.process.pid, signal.SIGCONT)
        resumed = time.time()
        paused_s = resumed - stopped
        hashes = [kept] + added + bulk
        seen = self.wait_scrape("c", hashes, expected, seconds=10)
        took = time.time() - resumed
        after = cluster_stats(c.metrics_port)[0]
        print("\n  paused %.1f s; C agreed on %d swarms (%d peers) %.3f s after SIGCONT "
              "(agreed: %s; %d changes in, %d deferred)" %
              (paused_s, len(hashes), sum(s + l for s, _, l in expected), took,
               seen["c"] == expected, after["changes_in"] - before["changes_in"],
               after["changes_in_deferred"] - before["changes_in_deferred"]), file=sys.stderr)
        self.assertSameSwarms(seen["c"], expected, "C")
        self.assertLessEqual(took, 3.0)
        self.assertSameSwarms(self.scrape("b", hashes), expected, "B")
        # It caught up from what NATS held for it: its server kept the connection (not a slow
        # consumer, not stale) and libnats did not reconnect (which would have lost messages).
        server_log = server.log()[log_before:]
        self.assertNotIn("Slow Consumer", server_log)
        self.assertNotIn("Stale", server_log)
        self.assertEqual(after["connected"], 1)
        self.assertEqual(after["reconnects"], before["reconnects"])
        self.assertEqual(after["messages_dropped"], before["messages_dropped"])
        a.close()
        b.close()

    def test_7_all_nats_servers_down_nodes_serve_alone_then_reconnect(self):
        names = "abc"
        known = os.urandom(20)  # a swarm every node holds before the outage
        a = self.client("a")
        a.announce(known, 7501, left=0)
        seen = self.wait_scrape(names, [known], [(1, 0, 0)])
        for name in names:
            self.assertEqual(seen[name], [(1, 0, 0)], name)
        before = {name: cluster_stats(self.nodes[name].metrics_port)[0] for name in names}
        for server in self.nats:
            server.kill()
        down = time.time()
        outage = os.urandom(20)
        try:
            took = wait_until(lambda: all(
                cluster_stats(self.nodes[name].metrics_port)[0]["connected"] == 0
                for name in names), seconds=5)
            self.assertIsNotNone(took, "a node still says it is connected")
            # Every node serves from its own state: its own announces (UDP and HTTP), and the
            # swarm replicated before the outage.
            for n, name in enumerate(names):
                node = self.nodes[name]
                client = self.client(name)
                reply = client.announce(outage, 7510 + n, left=0)
                self.assertEqual((reply["seeders"], reply["leechers"]), (1, 0), name)
                reply = http_announce(node.port, outage, 7520 + n, left=10)
                self.assertEqual((reply[b"complete"], reply[b"incomplete"]), (1, 1), name)
                self.assertEqual(client.scrape([outage, known]), [(1, 0, 1), (1, 0, 0)], name)
                self.assertEqual(http_scrape(node.port, outage), (1, 0, 1), name)
                self.assertEqual(http_scrape(node.port, known), (1, 0, 0), name)
                client.close()
            time.sleep(max(0.0, down + 10 - time.time()))
            for name in names:  # still alone, still answering
                self.assertEqual(self.scrape(name, [outage, known]), [(1, 0, 1), (1, 0, 0)])
                self.assertEqual(cluster_stats(self.nodes[name].metrics_port)[0]["connected"], 0)
        finally:
            restarting = time.time()
            for server in self.nats:
                server.start()
        restarted = time.time()
        reconnected_s = wait_until(lambda: all(
            stats["connected"] == 1 and stats["reconnects"] > before[name]["reconnects"]
            for name, stats in ((name, cluster_stats(self.nodes[name].metrics_port)[0])
                                for name in names)), seconds=10, step_s=0.01)
        self.assertIsNotNone(reconnected_s, {
            name: cluster_stats(self.nodes[name].metrics_port)[0] for name in names})
        # New announces replicate again (the servers' routes form again meanwhile).
        fresh = os.urandom(20)
        started = time.time()
        replicated_s = None
        while time.time() - started < 10:
            a.announce(fresh, 7530, left=0)
            seen = self.wait_scrape("bc", [fresh], [(1, 0, 0)], seconds=0.5)
            if all(value == [(1, 0, 0)] for value in seen.values()):
                replicated_s = time.time() - started
                break
        self.assertIsNotNone(replicated_s, seen)
        # The outage's announces: each node holds its own; what the others hold of them is what
        # libnats's reconnect buffer carried over (soft state: re-announces repair the rest).
        carried = {name: self.scrape(name, [outage]) for name in names}
        print("\n  NATS down %.1f s; the three servers took %.2f s to start; every node "
              "reconnected %.2f s after the first started; an announce replicated %.2f s after "
              "that; the outage swarm, reconnected: %s" %
              (restarting - down, restarted - restarting, restarted - restarting + reconnected_s,
               replicated_s, carried), file=sys.stderr)
        for n, name in enumerate(names):
            client = self.client(name)
            client.announce(outage, 7510 + n, left=0)
            client.close()
            http_announce(self.nodes[name].port, outage, 7520 + n, left=10)
        seen = self.wait_scrape(names, [outage, known], [(3, 0, 3), (1, 0, 0)])
        for name in names:
            self.assertEqual(seen[name], [(3, 0, 3), (1, 0, 0)], name)
        a.close()


@unittest.skipIf(NATS_SERVER is None, "nats-server is not installed")
class ClusterExpiry(unittest.TestCase):
    """Agreement on expiry (README "Cluster"): a peer expires from its last announce wherever it
    was made, so the nodes drop a silent peer together, although they started at different
    moments and sweep on their own. Both nodes' test clocks run 60 times as fast as Unix time from
    the epoch (the shortest peer timeout, 2 x 60 + 300 = 420 s, passes in 7 s; a 7-second stamp
    unit in 0.12 s); the nodes start 1.3 s (78 test seconds, 11 units) apart."""

    SPEEDUP = 60

    @classmethod
    def setUpClass(cls):
        cls.directory = tempfile.mkdtemp(prefix="tyto-cluster-expiry-")
        cls.secret_file = os.path.join(cls.directory, "secret")
        with open(cls.secret_file, "wb") as f:
            f.write(SECRET)
        os.chmod(cls.secret_file, 0o600)
        cls.nats, cls.nodes = None, {}
        try:
            cls.nats = NatsServer("x0", free_port(), None, [], cls.directory)
            # A with two shards, B with one: their sweeps visit the swarms in other orders.
            for name, cores in (("a", "0-1"), ("b", "0")):
                port = free_port()
                args = ["--udp", "127.0.0.1:%d" % port, "--http", "127.0.0.1:%d" % port,
                        "--cores", cores,
                        "--cluster-node", name, "--cluster-secret-file", cls.secret_file,
                        "--cluster-nats", "nats://127.0.0.1:%d" % cls.nats.port,
                        "--cluster-publish-interval-ms", "20",
                        "--interval", "60", "--test-clock-speedup", str(cls.SPEEDUP)]
                tracker = Tracker(BINARY, args, [("127.0.0.1", port)])
                tracker.port = port
                cls.nodes[name] = tracker
                assert tracker.wait_for_log("cluster: warm (", seconds=15), tracker.stderr()
                time.sleep(1.3)
        except BaseException:
            cls.kill_all()
            raise

    @classmethod
    def kill_all(cls):
        for tracker in cls.nodes.values():
            if tracker.process.poll() is None:
                tracker.kill()
        if cls.nats is not None:
            cls.nats.kill()
        shutil.rmtree(cls.directory, ignore_errors=True)

    @classmethod
    def tearDownClass(cls):
        try:
            for name, tracker in cls.nodes.items():
                if tracker.process.poll() is None:
                    code, _, stderr = tracker.stop()
                    assert code == 0, (name, code, stderr[-4000:])
                    assert "Sanitizer" not in stderr, (name, stderr[-4000:])
        finally:
            cls.kill_all()

    def scrape(self, name, info_hashes):
        client = Client(("127.0.0.1", self.nodes[name].port))
        try:
            client.connect()
            return client.scrape(info_hashes)
        finally:
            client.close()

    def test_a_silent_peer_leaves_every_node_at_the_same_moment(self):
        # 24 swarms, each with one peer announced once on A or on B, spread over 1.2 s (72 test
        # seconds: several stamp units), then silent.
        hashes = [os.urandom(20) for _ in range(24)]
        for i, info_hash in enumerate(hashes):
            client = Client(("127.0.0.1", self.nodes["a" if i % 2 == 0 else "b"].port))
            client.connect()
            client.announce(info_hash, 7100 + i, left=i % 3)
            client.close()
            time.sleep(0.05)
        # Polled together until every swarm is gone from both (the timeout is 7 s from the last
        # announce; at most 15 s): when each node first answered a swarm empty.
        gone = {"a": {}, "b": {}}
        seen_on_both = set()
        deadline = time.time() + 15
        while time.time() < deadline and any(len(g) < len(hashes) for g in gone.values()):
            rows = {name: self.scrape(name, hashes) for name in ("a", "b")}
            now = time.time()
            for i, info_hash in enumerate(hashes):
                # A UDP scrape row: seeders, completed, leechers.
                if all(rows[name][i][0] + rows[name][i][2] == 1 for name in ("a", "b")):
                    seen_on_both.add(info_hash)
                for name in ("a", "b"):
                    if rows[name][i][0] + rows[name][i][2] == 0:
                        gone[name].setdefault(info_hash, now)
            time.sleep(0.01)
        self.assertEqual(len(seen_on_both), len(hashes), "every peer reached both nodes")
        for name in ("a", "b"):
            self.assertEqual(len(gone[name]), len(hashes), name)
        apart_s = [abs(gone["a"][h] - gone["b"][h]) for h in hashes]
        print("expiry: nodes apart by at most %.3f s (%.1f test seconds; stamp unit 7)"
              % (max(apart_s), max(apart_s) * self.SPEEDUP), file=sys.stderr)
        # Polling both takes a few ms; a unit is 0.12 s. Unaligned clocks or a sweep's position
        # would put the nodes seconds apart (11 units of start offset, a sweep period of 105 test
        # seconds).
        self.assertLess(max(apart_s), 0.35, apart_s)


if __name__ == "__main__":
    BINARY = sys.argv.pop(1)
    unittest.main(verbosity=2)
