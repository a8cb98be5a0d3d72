"""End-to-end: a private tracker in a cluster (README "Cluster", private mode; issue 20). Two tyto
nodes share one store (an SQLite file, and a real PostgreSQL the test starts when Debian's
postgresql is installed) and one nats-server on loopback. Scripted clients (HTTP and UDP with
BEP 41 passkeys) report growing counters and move between the nodes:
  - a client that moves is credited exactly once: each byte it reports, from its first report to
    its last, is credited once, with the torrent's factor, whether it moved after its previous
    node's baseline reached the next node (the baseline travelled with the peer) or at once (the
    store's arbitration between the nodes' batches);
  - kill -9 of a node at random moments while its clients fail over to the other node at once:
    nothing is lost and nothing doubled, then the node comes back and the clients move again.
Every wait is bounded; every process is stopped by its pid."""
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import private_test
import private_pg_test
from private_test import NONE, STARTED, T1, failure, http_announce
from tracker import STOPPED
from tracker import Client, Tracker, free_port, http_get, url_data_options

BINARY = None
NATS_SERVER = shutil.which("nats-server")
SECRET = b"8c3e1f5a7b9d0c2e4f6a8b0d1c3e5f7a9b0c2d4e6f8a1b3c5d7e9f0a2b4c6d8e"
PASSKEYS = {1: "alice-Key_1", 4: "dave"}


class SqliteStore:
    name = "sqlite"

    def __init__(self, directory):
        self.path = os.path.join(directory, "tyto.db")
        private_test.run_migrate(self.path)
        self.site = private_test.Site(self.path)
        for user, passkey in PASSKEYS.items():
            self.site.user(user, passkey)
        self.site.torrent(10, T1, upload_factor=2.0)

    def uri(self):
        return "sqlite:" + self.path

    def transfer(self, user, torrent):
        """(uploaded, uploaded_real) or None."""
        row = self.site.transfer(user, torrent)
        return None if row is None else (row[0], row[2])

    def close(self):
        pass


class PostgresStore:
    name = "postgresql"

    def __init__(self, directory):
        self.pg = private_pg_test.Postgres()
        result = subprocess.run([BINARY, "--storage", self.pg.uri(), "--migrate", "--metrics",
                                 "off", "--allow-root"], capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, result.stderr
        for user, passkey in PASSKEYS.items():
            self.pg.sql("INSERT INTO tyto_users (user_id, passkey) VALUES (%d, '%s')" %
                        (user, passkey))
        self.pg.sql("INSERT INTO tyto_torrents (torrent_id, info_hash, upload_factor) "
                    "VALUES (10, '%s', 2.0)" % T1.hex())

    def uri(self):
        return self.pg.uri()

    def transfer(self, user, torrent):
        text = self.pg.sql("SELECT uploaded, uploaded_real FROM tyto_transfers WHERE user_id = %d "
                           "AND torrent_id = %d" % (user, torrent)).strip()
        return None if not text else tuple(int(v) for v in text.split("|"))

    def close(self):
        self.pg.stop()


class ScriptedClient:
    """One peer (user, peer_id) announcing to whichever node it is sent to, over HTTP or UDP."""

    def __init__(self, index, user, protocol):
        self.index, self.user, self.protocol = index, user, protocol
        self.peer_id = b"-KL0001-%012d" % index
        self.uploaded = 1000 * (index + 1)
        self.first = self.uploaded
        self.udp = {}

    def announce(self, node, event=NONE):
        passkey = PASSKEYS[self.user]
        if self.protocol == "http":
            reply = http_announce(node.port, passkey, T1, self.peer_id,
                                  peer_port=9000 + self.index, uploaded=self.uploaded, left=1,
                                  event=event)
            assert failure(reply) == "", failure(reply)
            return
        client = self.udp.get(node.port)
        if client is None:
            client = self.udp[node.port] = Client(("127.0.0.1", node.port))
            client.connect()
        client.announce(T1, 9000 + self.index, left=1, peer_id=self.peer_id, event=event,
                        uploaded=self.uploaded,
                        options=url_data_options(b"/%s/announce" % passkey.encode()))

    def forget(self, node):
        """The node went away: its UDP socket (and connection id) with it."""
        client = self.udp.pop(node.port, None)
        if client is not None:
            client.close()

    def close(self):
        for client in self.udp.values():
            client.close()


class Relay:
    """A TCP relay on loopback to PostgreSQL's Unix socket that can be cut (every connection
    closed, new ones refused) and restored: one node's database out of reach, the other's not."""

    def __init__(self, socket_path):
        self.socket_path = socket_path
        self.port = free_port()
        self.listener = None
        self.connections = []
        self.threads = []
        self.lock = threading.Lock()
        self.restore()

    def restore(self):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.listener = listener
        self.start(self.accept, listener)

    def start(self, target, *args):
        thread = threading.Thread(target=target, args=args, daemon=True)
        self.threads.append(thread)
        thread.start()

    def accept(self, listener):
        while True:  # ends when cut() closes the listener
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                server.connect(self.socket_path)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.connections += [client, server]
            self.start(self.pipe, client, server)
            self.start(self.pipe, server, client)

    @staticmethod
    def pipe(source, sink):
        while True:  # ends when either socket is closed
            try:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
            except OSError:
                break
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        with self.lock:
            connections, self.connections = self.connections, []
        for end in connections:
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            end.close()

    def close(self):
        self.cut()
        for thread in self.threads:
            thread.join(timeout=5)


@unittest.skipIf(NATS_SERVER is None, "nats-server is not installed")
class ClusterPrivateBase:
    store_class = None

    def setUp(self):
        self.store = None
        self.nats = None
        self.nodes = {}
        self.dead_logs = []  # (name, stderr) of nodes killed
        self.directory = tempfile.mkdtemp(prefix="tyto-cluster-private-")
        # A cleanup, not tearDown: it runs when setUp fails half-way too.
        self.addCleanup(self.stop_everything)
        self.secret_file = os.path.join(self.directory, "secret")
        with open(self.secret_file, "wb") as f:
            f.write(SECRET)
        os.chmod(self.secret_file, 0o600)
        self.store = self.store_class(self.directory)
        self.nats_port = free_port()
        self.nats = subprocess.Popen([NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.nats_port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.nats_port), timeout=0.5).close()
                break
            except OSError:
                self.assertLess(time.time(), deadline, "nats-server did not start")
                time.sleep(0.05)
        self.ports = {name: (free_port(), free_port()) for name in ("a", "b")}
        for name in ("a", "b"):
            self.start_node(name)

    def stop_everything(self):
        for node in self.nodes.values():
            if node.process.poll() is None:
                node.kill()
        if self.nats is not None:
            self.nats.kill()
            self.nats.wait(timeout=10)
        if self.store is not None:
            self.store.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def logs(self):
        runs = self.dead_logs + [(name, node.stderr()) for name, node in self.nodes.items()]
        return "\n".join("%s: %s" % (name, line) for name, text in runs
                         for line in text.splitlines()
                         if "warning" in line or "error" in line or "journal" in line)

    def start_node(self, name, storage_uri=None):
        port, metrics_port = self.ports[name]
        node = Tracker(BINARY, [
            "--private", "--storage", storage_uri or self.store.uri(),
            "--storage-journal", os.path.join(self.directory, name + ".journal"),
            "--udp", "127.0.0.1:%d" % port, "--http", "127.0.0.1:%d" % port,
            "--cores", "0-1" if name == "a" else "0",
            "--metrics", "127.0.0.1:%d" % metrics_port, "--metrics-allow", "127.0.0.1/32",
            "--cluster-nats", "nats://127.0.0.1:%d" % self.nats_port, "--cluster-node", name,
            "--cluster-secret-file", self.secret_file, "--cluster-publish-interval-ms", "50"],
            [("127.0.0.1", port)])
        node.port, node.metrics_port, node.name = port, metrics_port, name
        self.assertTrue(node.wait_for_log("cluster: warm (", seconds=15), node.stderr())
        self.nodes[name] = node
        return node

    def totals(self, node):
        status, body = http_get(node.metrics_port, "/stats")
        self.assertEqual(status, 200, body)
        return json.loads(body)["totals"]

    def wait_baselines(self, node, count, seconds=10):
        """Until `node`'s shards adopted at least `count` baselines from the other node."""
        deadline = time.time() + seconds
        while self.totals(node).get("cluster_baselines_adopted", 0) < count:
            self.assertLess(time.time(), deadline, "%s adopted %d baselines, not %d" % (
                node.name, self.totals(node).get("cluster_baselines_adopted", 0), count))
            time.sleep(0.05)

    def stop_nodes(self):
        for name, node in self.nodes.items():
            if node.process.poll() is not None:
                continue
            code, counters, stderr = node.stop()
            self.assertEqual(code, 0, stderr[-4000:])
            self.assertNotIn("Sanitizer", stderr)

    def assert_credited_once(self, clients):
        expected = {}
        for client in clients:
            expected[client.user] = expected.get(client.user, 0) + client.uploaded - client.first
        for user, real in expected.items():
            row = self.store.transfer(user, 10)
            self.assertIsNotNone(row, user)
            # T1's upload factor is 2: the credited bytes are twice the real ones.
            self.assertEqual(row, (2 * real, real), "user %d (%s)\n%s" % (
                user, self.store.name, self.logs()[-6000:]))

    def test_moving_clients_are_credited_once(self):
        rng = random.Random(int(os.environ.get("TYTO_TEST_SEED", "0")) or None)
        clients = [ScriptedClient(i, (1, 4)[i % 2], ("http", "udp")[i // 2]) for i in range(4)]
        a, b = self.nodes["a"], self.nodes["b"]
        for client in clients:
            client.announce(a, STARTED)
        # The first sightings reach B (announces before that would be first sightings there).
        self.wait_baselines(b, len(clients))
        adopted_before = self.totals(a).get("cluster_baselines_adopted", 0)
        for round_index in range(12):
            for client in clients:
                client.uploaded += rng.randrange(1, 5000)
                client.announce(rng.choice((a, b)))
            if round_index % 3 == 2:
                time.sleep(1.3)  # batches written (1 s) and their baselines published
        # Some moves waited for the baseline, the others were arbitrated by the store.
        self.assertGreater(self.totals(a).get("cluster_baselines_adopted", 0), adopted_before)
        self.stop_nodes()  # a graceful stop writes what is left
        for client in clients:
            client.close()
        self.assert_credited_once(clients)

    def test_kill_9_of_a_node_loses_and_doubles_nothing(self):
        rng = random.Random(int(os.environ.get("TYTO_TEST_SEED", "0")) or None)
        clients = [ScriptedClient(i, (1, 4)[i % 2], ("http", "udp")[i % 3 == 0]) for i in range(6)]
        for client in clients:
            client.announce(self.nodes["a"], STARTED)
        self.wait_baselines(self.nodes["b"], len(clients))
        kills = 0
        for round_index in range(9):
            at = self.nodes["a"] if round_index % 2 == 0 else self.nodes["b"]
            for client in clients:
                client.uploaded += rng.randrange(1, 5000)
                client.announce(at)
            if round_index % 3 == 1:
                # kill -9 before, during or after the batch holding these announces; the
                # clients fail over to the other node at once, then the node comes back.
                time.sleep(rng.uniform(0.0, 1.3))
                victim = at.name
                self.dead_logs.append((victim, self.nodes[victim].kill()))
                kills += 1
                other = self.nodes["b" if victim == "a" else "a"]
                for client in clients:
                    client.forget(self.nodes[victim])
                    client.uploaded += rng.randrange(1, 5000)
                    client.announce(other)
                self.start_node(victim)
                time.sleep(1.3)  # the failover's baselines reach the restarted node
        for client in clients:
            client.uploaded += 1
            client.announce(self.nodes["b"])
        self.stop_nodes()
        for client in clients:
            client.close()
        self.assertEqual(kills, 3)
        self.assert_credited_once(clients)


class SqliteClusterPrivateTest(ClusterPrivateBase, unittest.TestCase):
    store_class = SqliteStore


@unittest.skipIf(private_pg_test.postgres_bin() is None,
                 "PostgreSQL's server is not installed (package postgresql)")
class PostgresClusterPrivateTest(ClusterPrivateBase, unittest.TestCase):
    store_class = PostgresStore

    def storage(self, node):
        status, body = http_get(node.metrics_port, "/stats")
        self.assertEqual(status, 200, body)
        return json.loads(body)["storage"]

    def test_a_node_whose_database_is_out_of_reach_credits_nothing_twice_or_never(self):
        """Node A loses its database (B keeps its own connection): A's batch with the clients'
        next announces goes to A's journal, their baselines travel to B, the clients move to B,
        which commits first; two stop there, one of them starting again at once. When A's
        database is back, A's journalled batch lands last and is arbitrated: every byte is
        credited once (B's batch credited the span A owed; A's is cut to nothing of it)."""
        pg = self.store.pg
        relay = Relay(os.path.join(pg.directory, ".s.PGSQL.%d" % pg.port))
        self.addCleanup(relay.close)
        code, _, stderr = self.nodes["a"].stop()
        self.assertEqual(code, 0, stderr[-4000:])
        a = self.start_node("a", "postgresql://postgres@127.0.0.1:%d/tyto?sslmode=disable&"
                                 "tyto_timeout_ms=3000" % relay.port)
        b = self.nodes["b"]
        clients = [ScriptedClient(i, (1, 4)[i % 2], ("http", "udp")[i // 2]) for i in range(4)]
        expected = {1: 0, 4: 0}
        for client in clients:
            client.announce(a, STARTED)
        self.wait_baselines(b, len(clients))
        adopted = self.totals(b).get("cluster_baselines_adopted", 0)
        relay.cut()
        for client in clients:
            client.uploaded += 1000 + client.index
            client.announce(a)
        # A's flush fails: the batch is journalled, and its baselines published once it is.
        deadline = time.time() + 15
        while self.storage(a)["batches_journalled"] < 1:
            self.assertLess(time.time(), deadline, "A journalled nothing\n" + a.stderr()[-3000:])
            time.sleep(0.05)
        self.wait_baselines(b, adopted + len(clients))
        written_by_b = self.storage(b)["batches_written"]
        for client in clients:
            client.uploaded += 300 + client.index
            client.announce(b, STOPPED if client.index < 2 else NONE)
            expected[client.user] += 1300 + 2 * client.index
        restarted = clients[0]  # started again at once: a new session, its counters from 50
        restarted.uploaded = 50
        restarted.announce(b, STARTED)
        deadline = time.time() + 15
        while self.storage(b)["batches_written"] == written_by_b:  # B commits first
            self.assertLess(time.time(), deadline, "B wrote nothing\n" + b.stderr()[-3000:])
            time.sleep(0.05)
        time.sleep(1.2)  # and every batch B forms with these
        credited_by_b = {user: self.store.transfer(user, 10) for user in expected}
        self.assertEqual(credited_by_b, {user: (2 * real, real) for user, real in
                                         expected.items()}, self.logs()[-6000:])
        self.assertGreater(self.storage(a)["journal_bytes"], 0)
        relay.restore()
        deadline = time.time() + 40
        while self.storage(a)["journal_bytes"] != 0:
            self.assertLess(time.time(), deadline, "A's journal was not written\n" +
                            a.stderr()[-3000:])
            time.sleep(0.1)
        # A's batch landed last and changed nothing: B's had credited A's span already.
        self.assertEqual({user: self.store.transfer(user, 10) for user in expected},
                         credited_by_b, self.logs()[-6000:])
        restarted.uploaded = 250
        restarted.announce(b)
        expected[restarted.user] += 200
        self.stop_nodes()
        for client in clients:
            client.close()
        self.assertEqual({user: self.store.transfer(user, 10) for user in expected},
                         {user: (2 * real, real) for user, real in expected.items()},
                         self.logs()[-6000:])


if __name__ == "__main__":
    BINARY = os.path.abspath(sys.argv.pop(1))
    private_test.BINARY = BINARY
    private_pg_test.BINARY = BINARY
    unittest.main(verbosity=2)
