"""Real clients across a tyto cluster (issue 20): two NATS servers routed on loopback, node A on
one and node B on the other. A libtorrent seeder announces only to A and two libtorrent leechers
only to B (different tracker URLs, DHT, local discovery and peer exchange off): they can only
find the seeder through the cluster. Once over HTTP, once over UDP; each passes when both
leechers hold the whole file, byte for byte, within a bounded time. Every process is stopped by
its pid."""
import os
import shutil
import sys
import tempfile
import time
import unittest

import libtorrent as lt

import clients_test
import cluster_test
from clients_test import digest, session, wait_for_tracker_reply
from cluster_test import NATS_SERVER, SECRET, NatsServer
from tracker import Client, Tracker, free_port

BINARY = None
TIMEOUT_S = 60


def make_torrent(directory):
    payload = os.path.join(directory, "payload.bin")
    with open(payload, "wb") as f:
        f.write(os.urandom(1024 * 1024 + 777))
    storage = lt.file_storage()
    lt.add_files(storage, payload)
    torrent = lt.create_torrent(storage, 64 * 1024, flags=lt.create_torrent.v1_only)
    lt.set_piece_hashes(torrent, directory)
    return lt.torrent_info(lt.bencode(torrent.generate())), payload


@unittest.skipIf(NATS_SERVER is None, "nats-server is not installed")
class ClusterRealClients(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.directory = tempfile.mkdtemp(prefix="tyto-cluster-clients-")
        cls.secret_file = os.path.join(cls.directory, "secret")
        with open(cls.secret_file, "wb") as f:
            f.write(SECRET)
        os.chmod(cls.secret_file, 0o600)
        ports, routes = [free_port() for _ in range(2)], [free_port() for _ in range(2)]
        cls.nats = [NatsServer("n%d" % i, ports[i], routes[i], [routes[1 - i]], cls.directory)
                    for i in range(2)]
        time.sleep(0.5)  # the route forms
        cls.nodes = {}
        for index, name in enumerate("ab"):
            port = free_port()
            args = ["--udp", "127.0.0.1:%d" % port, "--http", "127.0.0.1:%d" % port,
                    "--cores", "0", "--cluster-node", name,
                    "--cluster-secret-file", cls.secret_file,
                    "--cluster-publish-interval-ms", "50",
                    "--cluster-nats", "nats://127.0.0.1:%d" % cls.nats[index].port]
            node = Tracker(BINARY, args, [("127.0.0.1", port)])
            node.port = port
            cls.nodes[name] = node
            assert node.wait_for_log("cluster: warm (", seconds=15), node.stderr()

    @classmethod
    def tearDownClass(cls):
        for node in cls.nodes.values():
            if node.process.poll() is None:
                node.kill()
        for server in cls.nats:
            server.kill()
        shutil.rmtree(cls.directory, ignore_errors=True)

    def seeders_on(self, name, info_hash):
        client = Client(("127.0.0.1", self.nodes[name].port))
        try:
            client.connect()
            return client.scrape([info_hash])[0][0]
        finally:
            client.close()

    def swarm(self, url_of):
        with tempfile.TemporaryDirectory() as seed_dir:
            info, payload = make_torrent(seed_dir)
            info_hash = info.info_hash().to_bytes()
            started = time.time()
            seeder = session(free_port())
            seeder.add_torrent({"ti": info, "save_path": seed_dir,
                                "flags": lt.torrent_flags.seed_mode,
                                "trackers": [url_of(self.nodes["a"].port)]})
            wait_for_tracker_reply(self, seeder)
            # The leechers ask B once the seeder is there; B only knows it through the cluster.
            deadline = time.time() + 5
            while self.seeders_on("b", info_hash) != 1 and time.time() < deadline:
                time.sleep(0.02)
            self.assertEqual(self.seeders_on("b", info_hash), 1)
            sessions, handles, directories = [seeder], [], []
            for _ in range(2):
                directories.append(tempfile.mkdtemp(dir=self.directory))
                sessions.append(session(free_port()))
                handles.append(sessions[-1].add_torrent({
                    "ti": lt.torrent_info(info), "save_path": directories[-1],
                    "trackers": [url_of(self.nodes["b"].port)]}))
            deadline = time.time() + TIMEOUT_S
            while time.time() < deadline and not all(h.status().is_seeding for h in handles):
                clients_test.print_tracker_errors(sessions)
                time.sleep(0.1)
            took = time.time() - started
            for n, handle in enumerate(handles):
                self.assertTrue(handle.status().is_seeding, "leecher %d: %.1f %%" % (
                    n, handle.status().progress * 100))
                self.assertEqual(digest(os.path.join(directories[n], "payload.bin")),
                                 digest(payload))
            print("\n  both leechers (on B) complete %.2f s after the seeder (on A) started" % took,
                  file=sys.stderr)
            for s in sessions:
                s.pause()

    def test_http_seeder_on_a_leechers_on_b(self):
        self.swarm(lambda port: "http://127.0.0.1:%d/announce" % port)

    def test_udp_seeder_on_a_leechers_on_b(self):
        self.swarm(lambda port: "udp://127.0.0.1:%d/announce" % port)


if __name__ == "__main__":
    BINARY = sys.argv.pop(1)
    clients_test.BINARY = cluster_test.BINARY = BINARY
    unittest.main(verbosity=2)
