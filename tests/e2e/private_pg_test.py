"""End-to-end private tracker on PostgreSQL: the real binary and a real PostgreSQL server the test
starts itself (initdb in a temporary directory, a Unix socket only, as `nobody` when the test runs
as root, stopped by its pid). The site writes with psql; tyto hears its changes through
LISTEN/NOTIFY, credits announces, and loses and doubles nothing across kill -9 of tyto and of
the database server."""
import random
import subprocess
import sys
import time
import unittest

import private_test
from private_test import NONE, STARTED, T1, T2, failure, http_announce
from postgres_server import Postgres, postgres_bin
from tracker import Tracker, free_port

BINARY = None


@unittest.skipIf(postgres_bin() is None, "PostgreSQL's server is not installed (package postgresql)")
class PostgresPrivateTest(unittest.TestCase):
    def setUp(self):
        self.pg = Postgres()
        result = subprocess.run([BINARY, "--storage", self.pg.uri(), "--migrate", "--metrics",
                                 "off"], capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.pg.sql("INSERT INTO tyto_users (user_id, passkey) VALUES (1, 'alice'), (2, 'bob')")
        self.pg.sql("UPDATE tyto_users SET enabled = false WHERE user_id = 2")
        self.pg.sql("INSERT INTO tyto_torrents (torrent_id, info_hash, upload_factor) "
                    "VALUES (10, '%s', 2.0)" % T1.hex())
        self.port = free_port()
        self.tracker = None

    def tearDown(self):
        if self.tracker is not None and self.tracker.process.poll() is None:
            self.tracker.kill()
        self.pg.stop()

    def start(self):
        self.tracker = Tracker(BINARY, ["--private", "--storage", self.pg.uri(),
                                        "--storage-node", "pg-test", "--udp",
                                        "127.0.0.1:%d" % self.port, "--http",
                                        "127.0.0.1:%d" % self.port, "--cores", "0-1"],
                               [("127.0.0.1", self.port)])

    def uploaded(self, user, torrent):
        text = self.pg.sql("SELECT uploaded_real FROM tyto_transfers WHERE user_id = %d AND "
                           "torrent_id = %d" % (user, torrent)).strip()
        return int(text) if text else None

    def wait_uploaded(self, user, torrent, value, seconds=15):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if self.uploaded(user, torrent) == value:
                return
            time.sleep(0.1)
        self.fail("uploaded_real is %r, not %d" % (self.uploaded(user, torrent), value))

    def test_refusals_credits_and_notified_changes(self):
        self.start()
        peer = b"-qB4500-" + b"g" * 12
        self.assertIn("account disabled", failure(http_announce(self.port, "bob", T1, peer)))
        self.assertIn("not registered", failure(http_announce(self.port, "alice", T2, peer)))
        http_announce(self.port, "alice", T1, peer, left=5, event=STARTED)
        http_announce(self.port, "alice", T1, peer, uploaded=700, left=5)
        self.wait_uploaded(1, 10, 700)
        self.assertEqual(self.pg.sql("SELECT uploaded FROM tyto_transfers").strip(), "1400")
        # The site's changes reach tyto through NOTIFY within 2 s.
        started = time.time()
        self.pg.sql("INSERT INTO tyto_torrents (torrent_id, info_hash) VALUES (20, '%s')" %
                    T2.hex())
        while failure(http_announce(self.port, "alice", T2, peer, left=1)) != "":
            self.assertLess(time.time() - started, 2.0)
            time.sleep(0.05)
        self.pg.sql("UPDATE tyto_users SET enabled = true WHERE user_id = 2")
        while failure(http_announce(self.port, "bob", T1, peer, peer_port=7001, left=1)) != "":
            self.assertLess(time.time() - started, 4.0)
            time.sleep(0.05)
        code, counters, stderr = self.tracker.stop()
        self.assertEqual(code, 0, stderr)
        self.assertEqual(counters["private_refused_user_disabled"] >= 1, True)

    # The database server killed with -9 in the middle of batches, then restarted, while clients
    # go on announcing; tyto killed with -9 too. At the end the credits are exact.
    def test_kill_9_of_the_database_and_of_tyto_loses_and_doubles_nothing(self):
        rng = random.Random(7)
        self.start()
        peers = [b"-PG0001-%012d" % index for index in range(3)]  # the per-user limit
        uploaded = [0] * len(peers)

        def announce_all(event=NONE):
            for index, peer in enumerate(peers):
                reply = http_announce(self.port, "alice", T1, peer, peer_port=9100 + index,
                                      uploaded=uploaded[index], left=1, event=event)
                self.assertEqual(failure(reply), "")

        announce_all(STARTED)
        time.sleep(1.5)  # the first sightings are written
        for round_index in range(9):
            for index in range(len(peers)):
                uploaded[index] += rng.randrange(1, 10000)
            announce_all()
            time.sleep(rng.uniform(0.2, 1.2))
            if round_index == 2:
                self.pg.kill()  # mid-batch, maybe; tyto keeps answering
            elif round_index == 4:
                self.pg.start()
            elif round_index == 6:
                self.tracker.kill()
                self.start()
        announce_all()
        self.wait_uploaded(1, 10, sum(uploaded), seconds=30)
        time.sleep(1.5)  # a doubled batch would show now
        self.assertEqual(self.uploaded(1, 10), sum(uploaded))
        code, _, stderr = self.tracker.stop()
        self.assertEqual(code, 0, stderr)
        self.assertEqual(self.uploaded(1, 10), sum(uploaded))


if __name__ == "__main__":
    BINARY = sys.argv.pop(1)
    private_test.BINARY = BINARY
    unittest.main(verbosity=2)
