"""End-to-end: the operator's dashboard (GET / on the metrics listener) in headless Chromium,
driven over the DevTools protocol, after a scripted load of UDP and HTTP announces.

Usage: dashboard_test.py TYTO CHROMIUM OUT_DIR (screenshots go to OUT_DIR)."""
import base64
import json
import os
import socket
import sys
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

from devtools import Chromium
from tracker import Client, Tracker, free_port

BINARY = CHROMIUM = OUT_DIR = None


def http_get(port, target):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, target), timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def http_announce(port, info_hash, peer_port, left):
    query = urllib.parse.urlencode({"info_hash": info_hash, "peer_id": os.urandom(20),
                                    "port": peer_port, "uploaded": 0, "downloaded": 0,
                                    "left": left, "compact": 1})
    with urllib.request.urlopen("http://127.0.0.1:%d/announce?%s" % (port, query),
                                timeout=5) as reply:
        assert reply.status == 200
        return reply.read()


class Flood(threading.Thread):
    """One peer announcing ~40 times a second: `announce_flood` after each 6 s window."""

    def __init__(self, port, info_hash):
        super().__init__(daemon=True)
        self.port, self.info_hash, self.stopping, self.count = port, info_hash, threading.Event(), 0

    def run(self):
        client = Client(("127.0.0.1", self.port))
        peer_id = os.urandom(20)
        try:
            deadline = time.time() + 120  # bounded even if stop() is never called
            while not self.stopping.is_set() and time.time() < deadline:
                if self.count % 20 == 0:
                    client.connect()
                client.announce(self.info_hash, 7000, left=5, peer_id=peer_id)
                self.count += 1
                self.stopping.wait(0.025)
        finally:
            client.close()

    def stop(self):
        self.stopping.set()
        self.join(timeout=10)


# JavaScript run in the page.
COUNT_LINE_PIXELS = """(() => {
  const canvas = document.getElementById(%r);
  const hex = getComputedStyle(document.documentElement).getPropertyValue(%r).trim();
  const want = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let count = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] > 200 && Math.abs(data[i] - want[0]) + Math.abs(data[i + 1] - want[1]) +
        Math.abs(data[i + 2] - want[2]) < 40) count++;
  }
  return count;
})()"""
CARDS = """Object.fromEntries([...document.querySelectorAll('.card .value')].map(
  (v) => [v.id.replace('total-', ''), {value: Number(v.dataset.value), text: v.textContent}]))"""
SHARD_CELLS = """[...document.querySelectorAll('#shards tr')].slice(1).map((tr) => Object.fromEntries(
  [...tr.querySelectorAll('td')].map((td) => [td.dataset.key, Number(td.dataset.value)])))"""


class Dashboard(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.port, cls.metrics_port = free_port(), free_port()
        # Windows are the interval: 60 s, 6 s at speedup 10 (peers expire after ~42 s).
        cls.tracker = Tracker(BINARY, ["--udp", "127.0.0.1:%d" % cls.port,
                                       "--http", "127.0.0.1:%d" % cls.port, "--cores", "0-1",
                                       "--metrics", "127.0.0.1:%d" % cls.metrics_port,
                                       "--metrics-allow", "127.0.0.1/32", "--interval", "60",
                                       "--test-clock-speedup", "10"],
                              [("127.0.0.1", cls.port)])
        cls.browser = None
        cls.flood = None
        try:
            cls.started = time.monotonic()
            cls.load()
            cls.browser = Chromium(CHROMIUM)
            for domain in ("Runtime", "Log", "Network", "Page"):
                cls.browser.call(domain + ".enable")
            cls.viewport(1280, 800, mobile=False)
            # The page's own requests are checked, not only what its Content-Security-Policy
            # would let through (the header is checked on its own).
            cls.browser.call("Page.setBypassCSP", {"enabled": True})
            cls.browser.call("Page.navigate", {"url": cls.url()})
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.flood is not None:
            cls.flood.stop()
        if cls.browser is not None:
            cls.browser.stop()
        code, _, stderr = cls.tracker.stop()
        assert code == 0, stderr

    @classmethod
    def url(cls):
        return "http://127.0.0.1:%d/" % cls.metrics_port

    @classmethod
    def viewport(cls, width, height, mobile):
        cls.browser.call("Emulation.setDeviceMetricsOverride",
                         {"width": width, "height": height, "deviceScaleFactor": 1,
                          "mobile": mobile})

    @classmethod
    def load(cls):
        """Swarms of 2..13 peers over UDP and HTTP, scrapes, one bad packet, and a flood."""
        client = Client(("127.0.0.1", cls.port))
        cls.swarms = [os.urandom(20) for _ in range(12)]
        try:
            client.connect()
            for i, info_hash in enumerate(cls.swarms):
                for peer in range(2 + i):
                    client.announce(info_hash, 10000 + peer, left=0 if peer % 3 == 0 else 100)
            client.scrape(cls.swarms[:5])
            client.raw(b"\x00" * 20)  # malformed: counted, maybe answered with an error
        finally:
            client.close()
        for peer in range(4):
            http_announce(cls.port, cls.swarms[0], 20000 + peer, left=50)
        urllib.request.urlopen("http://127.0.0.1:%d/scrape?info_hash=%s" % (
            cls.port, urllib.parse.quote_from_bytes(cls.swarms[1])), timeout=5).read()
        cls.flooded = os.urandom(20)
        cls.flood = Flood(cls.port, cls.flooded)
        cls.flood.start()

    def js(self, expression):
        return self.browser.evaluate(expression)

    def wait_js(self, expression, seconds=20):
        return self.browser.wait_for(expression, seconds)

    def screenshot(self, name, full_page=False):
        options = {"format": "png"}
        if full_page:  # the whole page, at the viewport's width
            size = self.browser.call("Page.getLayoutMetrics")["cssContentSize"]
            options.update(captureBeyondViewport=True, clip={
                "x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
        data = self.browser.call("Page.captureScreenshot", options)["data"]
        path = os.path.join(OUT_DIR, name)
        with open(path, "wb") as file:
            file.write(base64.b64decode(data))
        return path

    def test_the_dashboard(self):
        # One method, in order: the page is one browser session; each step needs the last.
        self.assertTrue(self.wait_js("window.tytoDashboard && window.tytoDashboard.polls >= 1"),
                        "the page never polled")
        self.check_the_history_is_there_at_once()
        self.assertTrue(self.wait_js("window.tytoDashboard.polls >= 3"))
        self.check_the_charts_are_drawn()
        self.check_a_flagged_swarm_shows_its_flag()
        self.check_the_search_box_finds_a_swarm()
        self.flood.stop()
        self.check_the_totals_equal_stats()
        self.check_optional_sections_get_a_panel()
        self.take_screenshots()
        self.check_nothing_failed_and_nothing_left_the_tracker()

    def check_the_history_is_there_at_once(self):
        # The tracker kept the seconds before the page opened: its first answer draws them.
        seconds_up = time.monotonic() - self.started
        points = int(self.js("document.getElementById('chart-udp').dataset.points || 0"))
        self.assertGreaterEqual(points, 3 * min(seconds_up - 2, 5), "history from the tracker")

    def check_the_charts_are_drawn(self):
        # Lines in their own colour, not just the grid: UDP announces, peers.
        for canvas, colour in (("chart-udp", "--c1"), ("chart-peers", "--c1"),
                               ("chart-http", "--c2")):
            pixels = self.js(COUNT_LINE_PIXELS % (canvas, colour))
            self.assertGreater(pixels, 8, "%s has no %s line" % (canvas, colour))
        self.assertNotEqual(self.js("document.getElementById('last-udp_announce').textContent"),
                            "–")

    def check_a_flagged_swarm_shows_its_flag(self):
        self.js("document.querySelector('#top-tabs [data-by=announces]').click()")
        row = "document.querySelector('#top tr[data-hash=\"%s\"]')" % self.flooded.hex()
        flags = self.wait_js("(%s || {}).querySelector && [...%s.querySelectorAll('.badge.flag')]"
                             ".map((b) => b.textContent).join(',')" % (row, row), seconds=25)
        self.assertIn("announce_flood", flags or "", "the flooded swarm shows no flag")
        self.assertTrue(self.js("%s.classList.contains('flagged')" % row))
        self.screenshot("dashboard-flagged.png", full_page=True)  # docs/dashboard.png

    def check_the_search_box_finds_a_swarm(self):
        wanted = self.swarms[5]
        self.js("document.getElementById('search-hash').value = %r;"
                "document.getElementById('search').requestSubmit()" % wanted.hex().upper())
        found = self.wait_js("(document.getElementById('swarm-fields') || {dataset: {}})"
                             ".dataset.hash", seconds=10)
        self.assertEqual(found, wanted.hex())
        detail = self.js("document.getElementById('swarm-detail').textContent")
        self.assertIn("7 (3 seeders, 4 leechers)", detail)  # 7 peers, every third a seeder
        self.js("document.getElementById('search-hash').value = '00'.repeat(20);"
                "document.getElementById('search').requestSubmit()")
        self.assertTrue(self.wait_js("document.getElementById('swarm-detail').textContent"
                                     " === 'No such swarm.'", seconds=10))

    def check_the_totals_equal_stats(self):
        # The flood stopped: after two more samples the page and /stats agree.
        polls = self.js("window.tytoDashboard.polls")
        self.assertTrue(self.wait_js("window.tytoDashboard.polls >= %d" % (polls + 3)))
        stats = json.loads(http_get(self.metrics_port, "/stats")[1])["totals"]
        cards = self.js(CARDS)
        peers = stats["peers_ipv4"] + stats["peers_ipv6"]
        expected = {"peers": peers, "seeders": stats["seeders"], "leechers": stats["leechers"],
                    "swarms": stats["swarms"]}
        self.assertEqual(expected["swarms"], len(self.swarms) + 1)
        for name, value in expected.items():
            self.assertEqual(cards[name]["value"], value, name)
            self.assertEqual(cards[name]["text"], str(value), name)  # below 1000: exact
        shards = self.js(SHARD_CELLS)
        self.assertEqual(len(shards), 2)
        for name in ("peers", "seeders", "leechers", "swarms"):
            self.assertEqual(sum(row[name] for row in shards), expected[name], name)

    def check_optional_sections_get_a_panel(self):
        # Not built yet, so the test adds one to the JSON the page receives, then takes it away.
        self.assertIsNone(self.js("document.getElementById('panel-accounting')"))
        self.js("""window.realFetch = window.fetch;
          window.fetch = async (url, options) => {
            const reply = await window.realFetch(url, options);
            if (!String(url).startsWith('/dashboard.json')) return reply;
            const json = await reply.json();
            json.accounting = {users_active: 3, credit_batches_pending: 12};
            return new Response(JSON.stringify(json), {status: 200});
          };""")
        shown = self.wait_js("(() => { const p = document.getElementById('panel-accounting');"
                             " return p && !p.hidden && p.textContent; })()", 5)
        self.assertIn("users active3", shown or "")
        self.assertIn("credit batches pending12", shown)
        self.assertIsNone(self.js("document.getElementById('panel-cluster')"))
        self.js("window.fetch = window.realFetch")
        self.assertTrue(self.wait_js("document.getElementById('panel-accounting').hidden", 5))

    def take_screenshots(self):
        light_background = None
        for width, height, mobile in ((1280, 800, False), (390, 844, True)):
            self.viewport(width, height, mobile)
            for scheme in ("light", "dark"):
                self.browser.call("Emulation.setEmulatedMedia", {
                    "features": [{"name": "prefers-color-scheme", "value": scheme}]})
                self.assertTrue(self.wait_js("(() => { const c = document.getElementById("
                                             "'chart-udp'); return c.width === Math.round("
                                             "c.clientWidth * devicePixelRatio); })()", 5))
                polls = self.js("window.tytoDashboard.polls")
                self.wait_js("window.tytoDashboard.polls > %d" % polls, 5)  # redrawn
                background = self.js("getComputedStyle(document.body).backgroundColor")
                if scheme == "light":
                    light_background = background
                else:
                    self.assertNotEqual(background, light_background, "dark scheme not applied")
                # Usable at this width: nothing wider than the viewport but inside scrollers.
                self.assertLessEqual(self.js("document.documentElement.scrollWidth"), width + 1)
                self.screenshot("dashboard-%d-%s.png" % (width, scheme))
        self.browser.call("Emulation.setEmulatedMedia", {"features": []})
        self.viewport(1280, 800, mobile=False)

    def check_nothing_failed_and_nothing_left_the_tracker(self):
        self.browser.evaluate("1")  # collect the events so far
        errors, outside = [], []
        for event in self.browser.events:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.exceptionThrown":
                errors.append(params["exceptionDetails"])
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                errors.append(params["args"])
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                # Chromium logs every 4xx; the one the test asked for (a missing swarm) is fine.
                if not params["entry"].get("url", "").endswith("info_hash=" + "00" * 20):
                    errors.append(params["entry"])
            elif method == "Network.requestWillBeSent":
                url = urllib.parse.urlparse(params["request"]["url"])
                if url.scheme != "data" and url.netloc != "127.0.0.1:%d" % self.metrics_port:
                    outside.append(params["request"]["url"])
        requests = [e for e in self.browser.events if e["method"] == "Network.requestWillBeSent"]
        self.assertGreater(len(requests), 3)
        self.assertEqual(outside, [])
        self.assertEqual(errors, [])

    def test_the_page_forbids_other_hosts_and_the_allowlist_holds(self):
        with urllib.request.urlopen(self.url(), timeout=5) as reply:
            policy = reply.headers["Content-Security-Policy"]
            self.assertTrue(reply.headers["Content-Type"].startswith("text/html"))
        self.assertIn("default-src 'none'", policy)
        self.assertIn("connect-src 'self'", policy)
        for target in ("/", "/dashboard.json"):
            with socket.create_connection(("127.0.0.1", self.metrics_port), timeout=5,
                                          source_address=("127.0.0.2", 0)) as s:
                s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % target).encode())
                self.assertIn(b" 403 ", s.recv(100))
        self.assertEqual(http_get(self.metrics_port, "/dashboard.json?since=x")[0], 400)


if __name__ == "__main__":
    BINARY, CHROMIUM, OUT_DIR = sys.argv.pop(1), sys.argv.pop(1), sys.argv.pop(1)
    os.makedirs(OUT_DIR, exist_ok=True)
    unittest.main(verbosity=2)
