"""Real clients on a private tracker: a libtorrent seeder and two leechers, each a user of its own
with its own passkey URL, over HTTP in one run and UDP (BEP 41 URL data) in the other, on loopback
with DHT, local discovery and peer exchange off. The download completes, and afterwards
tyto_transfers credits the seeder with what libtorrent says it uploaded and each leecher with what
it downloaded, and records one snatch per leecher."""
import os
import sys
import tempfile
import time
import unittest

import libtorrent as lt

import clients_test
import private_test
from clients_test import digest, session
from private_test import Site, run_migrate
from tracker import Tracker, free_port

BINARY = None
TIMEOUT_S = 90
USERS = {1: "seeder-key", 2: "leecher-one", 3: "leecher-two"}


def make_torrent(directory):
    payload = os.path.join(directory, "payload.bin")
    with open(payload, "wb") as f:
        f.write(os.urandom(2 * 1024 * 1024 + 4321))
    storage = lt.file_storage()
    lt.add_files(storage, payload)
    torrent = lt.create_torrent(storage, 256 * 1024, flags=lt.create_torrent.v1_only)
    torrent.set_priv(True)  # private: the tracker is the only way to find peers
    lt.set_piece_hashes(torrent, directory)
    return lt.torrent_info(lt.bencode(torrent.generate())), payload


class PrivateRealClients(unittest.TestCase):
    def setUp(self):
        self.directory = tempfile.mkdtemp(prefix="tyto-private-clients-")
        self.database = os.path.join(self.directory, "tyto.db")
        run_migrate(self.database)
        self.site = Site(self.database)
        for user_id, passkey in USERS.items():
            self.site.user(user_id, passkey)
        self.port = free_port()
        self.tracker = Tracker(BINARY, [
            "--private", "--storage", "sqlite:" + self.database,
            "--udp", "127.0.0.1:%d" % self.port, "--http", "127.0.0.1:%d" % self.port,
            "--cores", "0-1"], [("127.0.0.1", self.port)])

    def tearDown(self):
        if self.tracker.process.poll() is None:
            self.tracker.kill()

    def swarm(self, url_of):
        with tempfile.TemporaryDirectory() as seed_dir:
            info, payload = make_torrent(seed_dir)
            self.site.torrent(100, info.info_hash().to_bytes())
            time.sleep(2.5)  # the catalogue change reaches the shards (within 2 s)
            sessions, handles, leech_dirs = {}, {}, {}
            for user_id in USERS:
                sessions[user_id] = session(free_port())
                # libtorrent refuses HTTP trackers on localhost whose path is not /announce
                # (SSRF mitigation); a real tracker is not on the client's loopback.
                sessions[user_id].apply_settings({"ssrf_mitigation": False})
                params = {"ti": lt.torrent_info(info), "trackers": [url_of(USERS[user_id])]}
                if user_id == 1:
                    params.update(save_path=seed_dir, flags=lt.torrent_flags.seed_mode)
                else:
                    leech_dirs[user_id] = tempfile.mkdtemp(dir=self.directory)
                    params.update(save_path=leech_dirs[user_id])
                handles[user_id] = sessions[user_id].add_torrent(params)
            deadline = time.time() + TIMEOUT_S
            while time.time() < deadline and not all(
                    handles[user].status().is_seeding for user in (2, 3)):
                clients_test.print_tracker_errors(sessions.values())
                time.sleep(0.2)
            for user in (2, 3):
                self.assertTrue(handles[user].status().is_seeding,
                                "user %d: %.1f %%" % (user, handles[user].status().progress * 100))
                self.assertEqual(digest(os.path.join(leech_dirs[user], "payload.bin")),
                                 digest(payload))
            # The completed events are in; now every client stops (its final report).
            time.sleep(1)
            reported = {}
            for user_id, handle in handles.items():
                status = handle.status()
                reported[user_id] = (status.total_payload_upload, status.total_payload_download)
                sessions[user_id].remove_torrent(handle)
            for s in sessions.values():
                s.pause()
            self.check_accounting(reported, len(payload_bytes(payload)))

    def check_accounting(self, reported, size):
        # Within the last announce's worth: the stopped announce reports the final counters,
        # unless the client sent it before its last bytes moved.
        seeder = self.site.wait_transfer(
            1, 100, lambda row: row[2] >= reported[1][0] * 0.9 and row[2] > 0, seconds=20)
        self.assertLessEqual(seeder[2], reported[1][0])
        self.assertEqual(seeder[2], seeder[0])  # factors 1: credited = real
        self.assertIsNone(seeder[6])  # the seeder never completed here
        total_downloaded = 0
        for user in (2, 3):
            row = self.site.wait_transfer(user, 100, lambda row: row[6] is not None and
                                          row[3] >= reported[user][1] * 0.9, seconds=20)
            self.assertLessEqual(row[3], reported[user][1])
            self.assertGreater(row[3], 0)
            total_downloaded += row[3]
        # Everything the leechers got came from the seeder or from each other.
        self.assertGreaterEqual(total_downloaded, size)
        snatches = self.site.execute("SELECT count(*) FROM tyto_transfers WHERE torrent_id = 100 "
                                     "AND completed_at IS NOT NULL")[0][0]
        self.assertEqual(snatches, 2)
        code, counters, stderr = self.tracker.stop()
        self.assertEqual(code, 0, stderr)
        self.assertEqual(counters["private_refused_passkey_unknown"], 0)

    def test_swarm_over_http_is_credited(self):
        self.swarm(lambda passkey: "http://127.0.0.1:%d/%s/announce" % (self.port, passkey))

    def test_swarm_over_udp_is_credited(self):
        self.swarm(lambda passkey: "udp://127.0.0.1:%d/%s/announce" % (self.port, passkey))


def payload_bytes(path):
    with open(path, "rb") as f:
        return f.read()


if __name__ == "__main__":
    BINARY = sys.argv.pop(1)
    private_test.BINARY = clients_test.BINARY = BINARY
    unittest.main(verbosity=2)
