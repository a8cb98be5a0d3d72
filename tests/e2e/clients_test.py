"""Real clients: a libtorrent seeder and a leecher (libtorrent, or aria2c) on loopback that can only
find each other through tyto's tracker (DHT, local discovery, peer exchange, UPnP and NAT-PMP off),
over the UDP and the HTTP tracker protocols. Each passes when the leecher has the whole file, byte
for byte, within a bounded time."""
import hashlib
import os
import shutil
import subprocess
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
    # v1 only: aria2c speaks BitTorrent v1, and a hybrid torrent would also be announced under its
    # truncated v2 hash.
    torrent = lt.create_torrent(storage, 256 * 1024, flags=lt.create_torrent.v1_only)
    torrent.add_tracker(tracker_url)
    lt.set_piece_hashes(torrent, directory)
    metainfo = lt.bencode(torrent.generate())
    return lt.torrent_info(metainfo), payload, metainfo


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def print_tracker_errors(sessions):
    for s in sessions:
        for alert in s.pop_alerts():
            if isinstance(alert, lt.tracker_error_alert):
                print("tracker error:", alert.message(), file=sys.stderr)


def wait_for_tracker_reply(test, s):
    deadline = time.time() + TIMEOUT_S
    while time.time() < deadline:
        for alert in s.pop_alerts():
            if isinstance(alert, lt.tracker_reply_alert):
                return
            if isinstance(alert, lt.tracker_error_alert):
                print("tracker error:", alert.message(), file=sys.stderr)
        s.wait_for_alert(200)
    test.fail("the seeder got no tracker reply in %d s" % TIMEOUT_S)


def download(test, tracker_url):
    """libtorrent seeds, libtorrent leeches."""
    with tempfile.TemporaryDirectory() as seed_dir, tempfile.TemporaryDirectory() as leech_dir:
        info, payload, _ = make_torrent(seed_dir, tracker_url)
        seeder = session(free_port())
        leecher = session(free_port())
        seeder.add_torrent({"ti": info, "save_path": seed_dir, "flags": lt.torrent_flags.seed_mode})
        handle = leecher.add_torrent({"ti": lt.torrent_info(info), "save_path": leech_dir})
        deadline = time.time() + TIMEOUT_S
        while time.time() < deadline and not handle.status().is_seeding:
            print_tracker_errors((seeder, leecher))
            time.sleep(0.2)
        status = handle.status()
        test.assertTrue(status.is_seeding, "download incomplete after %d s: %.1f %%" %
                        (TIMEOUT_S, status.progress * 100))
        test.assertEqual(digest(os.path.join(leech_dir, "payload.bin")), digest(payload))


def download_with_aria2c(test, tracker_url):
    """libtorrent seeds, aria2c leeches (it exits 0 once the file is complete and verified)."""
    with tempfile.TemporaryDirectory() as seed_dir, tempfile.TemporaryDirectory() as leech_dir:
        info, payload, metainfo = make_torrent(seed_dir, tracker_url)
        seeder = session(free_port())
        seeder.add_torrent({"ti": info, "save_path": seed_dir, "flags": lt.torrent_flags.seed_mode})
        # aria2c asks the tracker once and then waits the full interval: let the seeder be there.
        wait_for_tracker_reply(test, seeder)
        torrent_path = os.path.join(leech_dir, "payload.torrent")
        with open(torrent_path, "wb") as f:
            f.write(metainfo)
        port = free_port()
        aria2c = subprocess.Popen(
            ["aria2c", "--dir", os.path.join(leech_dir, "out"), "--seed-time=0",
             "--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false",
             "--enable-peer-exchange=false", "--listen-port=%d" % port, "--bt-stop-timeout=%d" % TIMEOUT_S,
             "--check-integrity=true", "--summary-interval=0", "--console-log-level=warn",
             torrent_path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            output, _ = aria2c.communicate(timeout=TIMEOUT_S + 30)
        except subprocess.TimeoutExpired:
            aria2c.kill()
            output, _ = aria2c.communicate()
            test.fail("aria2c did not finish: " + output.decode(errors="replace")[-2000:])
        print_tracker_errors((seeder,))
        test.assertEqual(aria2c.returncode, 0, output.decode(errors="replace")[-2000:])
        test.assertEqual(digest(os.path.join(leech_dir, "out", "payload.bin")), digest(payload))


class RealClients(unittest.TestCase):
    def setUp(self):
        self.port = free_port()
        self.tracker = Tracker(BINARY, ["--udp", "127.0.0.1:%d" % self.port,
                                        "--http", "127.0.0.1:%d" % self.port, "--cores", "0-1"],
                               [("127.0.0.1", self.port)])

    def stop(self):
        code, counters, stderr = self.tracker.stop()
        self.assertEqual(code, 0, stderr)
        return counters

    def test_libtorrent_download_completes_through_tyto_udp(self):
        try:
            download(self, "udp://127.0.0.1:%d/announce" % self.port)
        finally:
            counters = self.stop()
        self.assertGreaterEqual(counters["udp_announces"], 2)

    def test_libtorrent_download_completes_through_tyto_http(self):
        try:
            download(self, "http://127.0.0.1:%d/announce" % self.port)
        finally:
            counters = self.stop()
        self.assertGreaterEqual(counters["http_announces"], 2)
        self.assertEqual(counters["udp_announces"], 0)
        # libtorrent asks "Connection: close": each announce's answer went with the close
        # linked behind it, and the download completing shows libtorrent read them whole.
        self.assertGreaterEqual(counters["tcp_closed_linked"], 2)

    @unittest.skipIf(shutil.which("aria2c") is None, "aria2c is not installed")
    def test_aria2c_download_completes_through_tyto_http(self):
        try:
            download_with_aria2c(self, "http://127.0.0.1:%d/announce" % self.port)
        finally:
            counters = self.stop()
        self.assertGreaterEqual(counters["http_announces"], 2)


if __name__ == "__main__":
    BINARY = sys.argv.pop(1)
    unittest.main(verbosity=2)
