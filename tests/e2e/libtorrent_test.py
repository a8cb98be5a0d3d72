"""Real clients: a libtorrent seeder and a libtorrent leecher on loopback that can only find each
other through tyto's tracker (DHT, local discovery, UPnP and NAT-PMP off). Passes when the leecher
has the whole file, within a bounded time."""
import hashlib
import os
import sys
import tempfile
import time
import unittest

import libtorrent as lt

from tracker import Tracker, free_port

BINARY = None
TIMEOUT_S = 90


def session(listen_port):
    settings = {
        "listen_interfaces": "127.0.0.1:%d" % listen_port,
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": lt.alert.category_t.error_notification | lt.alert.category_t.tracker_notification
        | lt.alert.category_t.status_notification,
        "announce_to_all_trackers": True,
        "announce_to_all_tiers": True,
        "min_announce_interval": 1,
    }
    return lt.session(settings)


def make_torrent(directory, tracker_url):
    payload = os.path.join(directory, "payload.bin")
    with open(payload, "wb") as f:
        f.write(os.urandom(3 * 1024 * 1024 + 12345))
    storage = lt.file_storage()
    lt.add_files(storage, payload)
    torrent = lt.create_torrent(storage, piece_size=256 * 1024)
    torrent.add_tracker(tracker_url)
    lt.set_piece_hashes(torrent, directory)
    return lt.torrent_info(lt.bencode(torrent.generate())), payload


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def download(test, tracker_url):
    with tempfile.TemporaryDirectory() as seed_dir, tempfile.TemporaryDirectory() as leech_dir:
        info, payload = make_torrent(seed_dir, tracker_url)
        seeder = session(free_port())
        leecher = session(free_port())
        seeder.add_torrent({"ti": info, "save_path": seed_dir, "flags": lt.torrent_flags.seed_mode})
        handle = leecher.add_torrent({"ti": lt.torrent_info(info), "save_path": leech_dir})
        deadline = time.time() + TIMEOUT_S
        while time.time() < deadline:
            status = handle.status()
            if status.is_seeding:
                break
            for s in (seeder, leecher):
                for alert in s.pop_alerts():
                    if isinstance(alert, (lt.tracker_error_alert,)):
                        print("tracker error:", alert.message(), file=sys.stderr)
            time.sleep(0.2)
        status = handle.status()
        test.assertTrue(status.is_seeding, "download incomplete after %d s: %.1f %%" %
                        (TIMEOUT_S, status.progress * 100))
        test.assertEqual(digest(os.path.join(leech_dir, "payload.bin")), digest(payload))


class LibtorrentOverUdp(unittest.TestCase):
    def test_download_completes_through_tyto_udp(self):
        port = free_port()
        tracker = Tracker(BINARY, ["--udp", "127.0.0.1:%d" % port, "--http", "127.0.0.1:%d" % port, "--cores", "0-1"],
                          [("127.0.0.1", port)])
        try:
            download(self, "udp://127.0.0.1:%d/announce" % port)
        finally:
            code, counters, stderr = tracker.stop()
        self.assertEqual(code, 0, stderr)
        self.assertGreaterEqual(counters["udp_announces"], 2)


if __name__ == "__main__":
    BINARY = sys.argv.pop(1)
    unittest.main(verbosity=2)
