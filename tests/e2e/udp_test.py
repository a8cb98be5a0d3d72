"""End-to-end: the real tyto binary with 2 shards on 127.0.0.1 and ::1, real UDP sockets."""
import os
import random
import socket
import struct
import sys
import time
import unittest

from tracker import (ANNOUNCE, COMPLETED, CONNECT, ERROR, PROTOCOL_ID, SCRAPE, STARTED, STOPPED,
                     Client, Tracker, TrackerError, free_port)

BINARY = None


class UdpTracker(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.port = free_port()
        cls.v4 = ("127.0.0.1", cls.port)
        cls.v6 = ("::1", cls.port)
        cls.tracker = Tracker(BINARY, ["--udp", "127.0.0.1:%d" % cls.port, "--http", "127.0.0.1:%d" % cls.port,
                                       "--udp", "[::1]:%d" % cls.port, "--cores", "0-1"],
                              [cls.v4, cls.v6])

    @classmethod
    def tearDownClass(cls):
        code, counters, stderr = cls.tracker.stop()
        cls.counters = counters
        assert code == 0, stderr
        # The battery of bad packets must have been counted, not silently ignored.
        assert counters["udp_malformed"] >= 5, counters
        assert counters["udp_bad_connection_id"] >= 2, counters
        # With two shards and many source ports, some announces crossed shards.
        assert counters["announces_forwarded"] > 0, counters

    def client(self, source="127.0.0.1", family=4):
        client = Client(self.v4 if family == 4 else self.v6, source=source)
        client.connect()
        self.addCleanup(client.close)
        return client

    def test_connect_v4_and_v6(self):
        for address in (self.v4, self.v6):
            client = Client(address)
            self.addCleanup(client.close)
            first = client.connect()
            self.assertNotEqual(first, 0)
            # Stateless ids: the same client gets a valid id again (time slot may differ).
            client.connect()

    def test_leecher_and_seeder_find_each_other(self):
        info_hash = os.urandom(20)
        leecher = self.client("127.0.0.2")
        seeder = self.client("127.0.0.3")
        reply = leecher.announce(info_hash, port=6881, left=1000, event=STARTED)
        self.assertEqual((reply["seeders"], reply["leechers"]), (0, 1))
        self.assertEqual(reply["peers"], [])  # never the requester itself
        self.assertEqual(reply["interval"], 1800)
        reply = seeder.announce(info_hash, port=6882, left=0, event=STARTED)
        self.assertEqual((reply["seeders"], reply["leechers"]), (1, 1))
        self.assertEqual(reply["peers"], [("127.0.0.2", 6881)])
        reply = leecher.announce(info_hash, port=6881, left=500)
        self.assertEqual(reply["peers"], [("127.0.0.3", 6882)])
        # Seeders get leechers only: a second seeder sees the leecher, not the other seeder.
        other = self.client("127.0.0.4")
        reply = other.announce(info_hash, port=6883, left=0)
        self.assertEqual(reply["peers"], [("127.0.0.2", 6881)])
        # Completion counted once; stop removes the peer.
        leecher.announce(info_hash, port=6881, left=0, event=COMPLETED)
        leecher.announce(info_hash, port=6881, left=0, event=COMPLETED)
        self.assertEqual(seeder.scrape([info_hash]), [(3, 1, 0)])
        reply = leecher.announce(info_hash, port=6881, left=0, event=STOPPED)
        self.assertEqual(reply["peers"], [])
        self.assertEqual(seeder.scrape([info_hash]), [(2, 1, 0)])

    def test_swarms_are_coherent_whichever_shard_receives(self):
        # Many sockets (different source ports and addresses) land on both shards' sockets.
        hashes = [os.urandom(20) for _ in range(40)]
        clients = [self.client("127.0.0.%d" % (10 + i)) for i in range(12)]
        for i, client in enumerate(clients):
            for info_hash in hashes:
                reply = client.announce(info_hash, port=7000 + i, left=(0 if i % 3 == 0 else 1))
                # Every earlier announcer of this hash is in the swarm, from any shard.
                self.assertEqual(reply["seeders"] + reply["leechers"], i + 1)
        seeders = len([i for i in range(12) if i % 3 == 0])
        for start in range(0, len(hashes), 20):
            batch = hashes[start:start + 20]
            for result in clients[-1].scrape(batch):
                self.assertEqual(result, (seeders, 0, 12 - seeders))

    def test_scrape_of_74_hashes_gathers_every_shard(self):
        client = self.client("127.0.0.5")
        hashes = [os.urandom(20) for _ in range(74)]
        for n, info_hash in enumerate(hashes[:30]):
            for k in range(n % 3 + 1):
                client.announce(info_hash, port=8000 + k, left=k)
        expected = []
        for n in range(74):
            if n < 30:
                count = n % 3 + 1
                expected.append((1, 0, count - 1))
            else:
                expected.append((0, 0, 0))
        self.assertEqual(client.scrape(hashes), expected)

    def test_ipv6_peers_are_18_bytes_and_apart_from_ipv4(self):
        info_hash = os.urandom(20)
        v4 = self.client("127.0.0.6")
        v4.announce(info_hash, port=9001, left=5)
        v6 = self.client("::1", family=6)
        reply = v6.announce(info_hash, port=9002, left=5)
        self.assertEqual(reply["peers"], [])  # the IPv4 peer is not mixed into an IPv6 reply
        v6b = Client(self.v6)
        self.addCleanup(v6b.close)
        v6b.connect()
        reply = v6b.announce(info_hash, port=9003, left=0)
        self.assertEqual(reply["peers"], [("::1", 9002)])

    def test_numwant_default_and_limit(self):
        info_hash = os.urandom(20)
        client = self.client("127.0.0.7")
        for port in range(1, 81):
            client.announce(info_hash, port=port, left=1)
        self.assertEqual(len(client.announce(info_hash, port=100, left=1, numwant=-1)["peers"]), 50)
        # 0 is none (the counts alone), not the default: only a negative numwant is.
        reply = client.announce(info_hash, port=100, left=1, numwant=0)
        self.assertEqual((len(reply["peers"]), reply["leechers"]), (0, 81))
        self.assertEqual(len(client.announce(info_hash, port=100, left=1, numwant=7)["peers"]), 7)
        peers = client.announce(info_hash, port=100, left=1, numwant=1000)["peers"]
        self.assertEqual(len(peers), 80)
        self.assertNotIn(("127.0.0.7", 100), peers)
        self.assertEqual(len(set(peers)), 80)

    def test_bad_packets_then_valid_clients_are_served(self):
        client = self.client("127.0.0.8")
        tid = 0x01020304
        # Too short for anything: dropped silently.
        for size in (0, 1, 7, 8, 11, 15):
            self.assertIsNone(client.raw(os.urandom(size)[:size] if size else b""))
        # Wrong protocol id on a connect: not our protocol, dropped.
        self.assertIsNone(client.raw(struct.pack(">QII", 0x1234, CONNECT, tid)))
        # Oversized datagram: dropped.
        self.assertIsNone(client.raw(b"\x00" * 3000))
        # Unknown action with a transaction id: BEP 15 error.
        reply = client.raw(struct.pack(">QII", client.connection_id, 77, tid) + b"\x00" * 20)
        self.assertIsNotNone(reply)
        self.assertEqual(struct.unpack(">II", reply[:8]), (ERROR, tid))
        # Forged connection id: an error, never peers.
        info_hash = os.urandom(20)
        self.client("127.0.0.9").announce(info_hash, port=1234, left=1)
        with self.assertRaises(TrackerError):
            client.announce(info_hash, port=5555, left=0, connection_id=random.getrandbits(64))
        forged = Client(self.v4, source="127.0.0.8")
        self.addCleanup(forged.close)
        forged.connection_id = random.getrandbits(64)
        with self.assertRaises(TrackerError):
            forged.scrape([info_hash])
        # A connection id issued to another client (other source address) is refused too.
        other = self.client("127.0.0.10")
        with self.assertRaises(TrackerError):
            client.announce(info_hash, port=5555, left=0, connection_id=other.connection_id)
        # Malformed BEP 41 option: URL data length past the end.
        with self.assertRaises(TrackerError):
            client.announce(info_hash, port=5555, left=0, options=b"\x02\xff/abc")
        # Scrape with a partial info_hash.
        reply = client.raw(struct.pack(">QII", client.connection_id, SCRAPE, tid) + b"\x01" * 30)
        self.assertEqual(struct.unpack(">II", reply[:8]), (ERROR, tid))
        # Valid BEP 41 options are accepted (nop, URL data, end).
        reply = client.announce(info_hash, port=5555, left=0,
                                options=b"\x01\x02\x05/anno\x02\x04unce\x00")
        self.assertEqual(reply["peers"], [("127.0.0.9", 1234)])
        # And a brand-new client is still served.
        fresh = self.client("127.0.0.11")
        self.assertEqual(fresh.announce(info_hash, port=4321, left=1)["seeders"], 1)


class AnnounceSteering(unittest.TestCase):
    def test_info_hash_steering_takes_announces_to_their_shard_without_a_hop(self):
        for steering in ("hash", "info_hash"):
            port = free_port()
            address = ("127.0.0.1", port)
            tracker = Tracker(BINARY, ["--udp", "127.0.0.1:%d" % port, "--http", "127.0.0.1:%d" % port,
                                       "--cores", "0-1", "--udp-steering", steering], [address])
            try:
                client = Client(address)  # one source port: the kernel hash picks one shard for all
                self.addCleanup(client.close)
                client.connect()
                hashes = [os.urandom(20) for _ in range(64)]
                for info_hash in hashes:
                    self.assertEqual(client.announce(info_hash, port=2000, left=0)["seeders"], 1)
                for info_hash in hashes:  # the second peer sees the first: same owning shard
                    reply = client.announce(info_hash, port=2001, left=1)
                    self.assertEqual((reply["seeders"], reply["leechers"]), (1, 1))
            finally:
                code, counters, stderr = tracker.stop()
            self.assertEqual(code, 0, stderr)
            self.assertEqual(counters["udp_announces"], 128)
            if steering == "info_hash":
                self.assertEqual(counters["announces_forwarded"], 0)
            else:  # about half the swarms live on the other shard
                self.assertGreater(counters["announces_forwarded"], 20)


class ExpiringConnectionIds(unittest.TestCase):
    def test_expired_connection_id_is_refused_and_peers_expire(self):
        port = free_port()
        address = ("127.0.0.1", port)
        # The shard clock runs 200× faster: 5 s of real time are 1000 s of tracker time.
        # This tracker sends with one SENDMSG SQE per reply, the other send path.
        tracker = Tracker(BINARY, ["--udp", "127.0.0.1:%d" % port, "--http", "127.0.0.1:%d" % port, "--cores", "0-1",
                                   "--test-clock-speedup", "200", "--udp-send", "uring"],
                          [address])
        try:
            client = Client(address, source="127.0.0.12")
            self.addCleanup(client.close)
            info_hash = os.urandom(20)
            client.connect()
            client.announce(info_hash, port=1000, left=1)
            time.sleep(5)
            with self.assertRaises(TrackerError):
                client.announce(info_hash, port=1000, left=1)
            client.connect()
            reply = client.announce(info_hash, port=1001, left=1)
            self.assertEqual(reply["leechers"], 2)
            # Peer timeout is 3900 s and a sweep takes at most a quarter of it: after 30 s
            # (6000 tracker s) both peers are gone.
            time.sleep(30)
            client.connect()
            self.assertEqual(client.scrape([info_hash]), [(0, 0, 0)])
        finally:
            code, counters, stderr = tracker.stop()
        self.assertEqual(code, 0, stderr)
        self.assertGreaterEqual(counters["peers_expired"], 2)


if __name__ == "__main__":
    BINARY = sys.argv.pop(1)
    unittest.main(verbosity=2)
