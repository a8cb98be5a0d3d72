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
    and its scrape of every swarm equals B's.
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

from tracker import COMPLETED, STOPPED, Client, Tracker, TrackerError, free_port

BINARY = None
NATS_SERVER = shutil.which("nats-server")
SECRET = b"5f1c3e9a0b7d4c2e8f6a1b3d5c7e9f0a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e"


def http_get(port, target):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % target).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


def cluster_stats(metrics_port):
    status, body = http_get(metrics_port, "/stats")
    assert status == 200, body
    stats = json.loads(body)
    return stats["cluster"], stats["totals"]


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
        routes = ",".join("nats://127.0.0.1:%d" % p for p in route_ports)
        self.args = [NATS_SERVER, "-a", "127.0.0.1", "-p", str(port), "-n", name,
                     "--cluster_name", "tyto-test", "--cluster", "nats://127.0.0.1:%d" % cluster_port,
                     "--routes", routes, "-l", os.path.join(directory, name + ".log")]
        self.port = port
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
        nats_ports = [free_port() for _ in range(3)]
        route_ports = [free_port() for _ in range(3)]
        cls.nats = [NatsServer("n%d" % i, nats_ports[i], route_ports[i],
                               [p for j, p in enumerate(route_ports) if j != i], cls.directory)
                    for i in range(3)]
        time.sleep(0.5)  # routes form
        cls.nodes = {}
        for name, nats_index, cores in (("a", 0, "0-1"), ("b", 1, "0-1"), ("c", 2, "0")):
            cls.nodes[name] = cls.start_node(name, nats_index, cores, free_port(), free_port())

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
            for tracker in cls.nodes.values():
                if tracker.process.poll() is None:
                    tracker.kill()
            for server in cls.nats:
                server.kill()
            shutil.rmtree(cls.directory, ignore_errors=True)

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
        client = self.client(name)
        try:
            return client.scrape(info_hashes)
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
        self.assertTrue(self.nodes["a"].wait_for_log("streamed by"), self.nodes["a"].stderr())
        self.assertEqual(self.scrape("a", hashes), self.scrape("b", hashes))
        stats, totals = cluster_stats(self.nodes["a"].metrics_port)
        self.assertEqual(stats["warm"], 1)
        self.assertGreater(totals["cluster_warm_peers"], 0)
        a.close()


if __name__ == "__main__":
    BINARY = sys.argv.pop(1)
    unittest.main(verbosity=2)
