"""End-to-end completed counts (README "Completed counts"): with storage.uri on an SQLite file,
a torrent's completed count ("downloaded" in scrapes) outlives its swarm and a restart without a
snapshot, in public and in private mode, and is in tyto_completions exactly once."""
import http.client
import os
import sqlite3
import sys
import tempfile
import time
import unittest
from urllib.parse import quote_from_bytes

import private_test
from http_test import bdecode
from private_test import Site, http_announce, run_migrate
from tracker import COMPLETED, STARTED, STOPPED, Client, Tracker, free_port

BINARY = None
T1 = bytes(range(1, 21))
T2 = bytes(range(40, 60))


def persisted(database, info_hash):
    db = sqlite3.connect(database, timeout=10)
    try:
        rows = db.execute("SELECT completed FROM tyto_completions WHERE info_hash = ?",
                          (info_hash.hex(),)).fetchall()
    finally:
        db.close()
    return rows[0][0] if rows else None


def wait_persisted(database, info_hash, expected, seconds=10):
    """Polls until tyto_completions holds `expected` (the storage thread writes once a second)."""
    deadline = time.time() + seconds
    found = None
    while time.time() < deadline:
        found = persisted(database, info_hash)
        if found == expected:
            return
        time.sleep(0.1)
    raise AssertionError("tyto_completions(%s) is %r, not %r" % (info_hash.hex(), found, expected))


class CompletionsTest(unittest.TestCase):
    def setUp(self):
        self.directory = tempfile.mkdtemp(prefix="tyto-completions-")
        self.database = os.path.join(self.directory, "tyto.db")
        self.port = free_port()
        self.tracker = None

    def tearDown(self):
        if self.tracker is not None and self.tracker.process.poll() is None:
            self.tracker.kill()

    def start(self, extra=(), storage_options=""):
        # completed_keep_s 0: a swarm goes with its last peer, so only the store can remember.
        self.tracker = Tracker(BINARY, [
            "--storage", "sqlite:" + self.database + storage_options, "--storage-node", "test",
            "--completed-keep-s", "0", "--udp", "127.0.0.1:%d" % self.port,
            "--http", "127.0.0.1:%d" % self.port, "--cores", "0-1"] + list(extra),
            [("127.0.0.1", self.port)])
        client = Client(("127.0.0.1", self.port))
        client.connect()
        return client

    def stop(self):
        code, counters, stderr = self.tracker.stop()
        self.assertEqual(code, 0, stderr)
        return counters

    def downloaded(self, client, info_hash):
        seeders, completed, leechers = client.scrape([info_hash])[0]
        return completed

    def test_public_count_outlives_the_swarm_and_a_restart_without_snapshot(self):
        client = self.start()
        peer = os.urandom(20)
        client.announce(T1, 6881, left=100, event=STARTED, peer_id=peer)
        client.announce(T1, 6881, left=0, event=COMPLETED, peer_id=peer)
        client.announce(T1, 6881, left=0, event=COMPLETED, peer_id=peer)  # counted once per peer
        client.announce(T1, 6881, left=0, event=STOPPED, peer_id=peer)
        # The swarm is gone (no peer, nothing kept): the scrape answers the persisted count.
        self.assertEqual(client.scrape([T1])[0], (0, 1, 0))
        self.assertEqual(self.downloaded(client, T2), 0)
        wait_persisted(self.database, T1, 1)
        client.close()
        counters = self.stop()
        self.assertEqual(counters["completions_handed"], 1)
        self.assertEqual(counters["completions_torrents"], 1)
        self.assertEqual(persisted(self.database, T1), 1)
        self.assertIsNone(persisted(self.database, T2))

        # No snapshot: the count comes back from the table alone.
        client = self.start()
        self.assertEqual(client.scrape([T1])[0], (0, 1, 0))
        reply = client.announce(T1, 6882, left=0, event=COMPLETED)
        self.assertEqual(reply["seeders"], 1)
        self.assertEqual(self.downloaded(client, T1), 2)
        wait_persisted(self.database, T1, 2)  # written while running, not only at stop
        client.close()
        self.tracker.kill()  # no graceful stop: what was written stays, nothing is added twice

        client = self.start()
        self.assertEqual(client.scrape([T1])[0], (0, 2, 0))
        client.close()
        self.stop()
        self.assertEqual(persisted(self.database, T1), 2)

    def test_journal_replay_after_kill_9_adds_once(self):
        client = self.start(storage_options="?busy_timeout_ms=50")
        client.announce(T1, 6881, left=0, event=STARTED)  # the database exists and is migrated
        site = sqlite3.connect(self.database, timeout=10, isolation_level=None)
        site.execute("BEGIN IMMEDIATE")  # the site holds the write lock: batches fail
        client.announce(T2, 6881, left=0, event=COMPLETED)
        client.announce(T2, 6882, left=0, event=COMPLETED)
        journal = self.database + ".tyto-journal"
        deadline = time.time() + 10
        while not (os.path.exists(journal) and os.path.getsize(journal) > 0):
            self.assertLess(time.time(), deadline, "nothing journalled")
            time.sleep(0.1)
        client.close()
        self.tracker.kill()
        site.execute("COMMIT")
        site.close()
        self.assertIsNone(persisted(self.database, T2))
        # The journal's counts are answered at once, and written once.
        client = self.start()
        self.assertEqual(self.downloaded(client, T2), 2)
        wait_persisted(self.database, T2, 2)
        client.close()
        self.stop()
        self.assertEqual(os.path.getsize(journal), 0)
        client = self.start()
        self.assertEqual(self.downloaded(client, T2), 2)
        client.close()
        self.stop()
        self.assertEqual(persisted(self.database, T2), 2)

    def test_private_mode_keeps_the_count_too(self):
        run_migrate(self.database)
        site = Site(self.database)
        site.user(1, "alice")
        site.torrent(10, T1)
        self.start(["--private"]).close()
        peer = b"-qB4500-" + b"c" * 12
        http_announce(self.port, "alice", T1, peer, left=10, event=STARTED)
        http_announce(self.port, "alice", T1, peer, left=0, downloaded=10, event=COMPLETED)
        http_announce(self.port, "alice", T1, peer, left=0, downloaded=10, event=STOPPED)
        wait_persisted(self.database, T1, 1)
        self.stop()
        client = self.start(["--private"])
        client.close()
        scraped = http_scrape(self.port, "alice", T1)
        self.assertEqual(scraped[b"downloaded"], 1)
        self.stop()
        self.assertEqual(persisted(self.database, T1), 1)


def http_scrape(port, passkey, info_hash):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("GET", "/%s/scrape?info_hash=%s" % (passkey, quote_from_bytes(info_hash)))
    body = connection.getresponse().read()
    connection.close()
    return bdecode(body)[0][b"files"][info_hash]


if __name__ == "__main__":
    BINARY = private_test.BINARY = sys.argv.pop(1)
    unittest.main(verbosity=2)
