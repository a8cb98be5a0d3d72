"""Smoke test of the bench tools: tyto-load drives tyto (UDP, and HTTP with and without
keep-alive) and tyto-udp-echo for a second each; the result line must parse, show answers, and no
errors or lost requests."""
import re
import subprocess
import sys
import time
import unittest

from tracker import Tracker, free_port

TYTO = LOADGEN = ECHO = None


def run_load(port, *extra):
    output = subprocess.run([LOADGEN, "--target", "127.0.0.1:%d" % port, "--duration-s", "1",
                             "--warmup-s", "0.2", "--torrents", "1000", "--peers", "5000"]
                            + list(extra), capture_output=True, text=True, timeout=30)
    assert output.returncode == 0, output.stderr + output.stdout
    fields = dict(re.findall(r"(\w+)=([0-9.]+)", output.stdout))
    return {key: float(value) for key, value in fields.items()}


def run_load_against_echo(*extra):
    """run_load against a tyto-udp-echo started for it."""
    port = free_port()
    echo = subprocess.Popen([ECHO, "--udp", "127.0.0.1:%d" % port, "--duration-s", "20"],
                            stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        return run_load(port, *extra)
    finally:
        echo.terminate()
        echo.communicate(timeout=10)


class LoadGeneratorSmoke(unittest.TestCase):
    def test_against_tyto(self):
        port = free_port()
        tracker = Tracker(TYTO, ["--udp", "127.0.0.1:%d" % port, "--http", "127.0.0.1:%d" % port, "--cores", "0"], [("127.0.0.1", port)])
        try:
            result = run_load(port)
        finally:
            code, counters, _ = tracker.stop()
        self.assertEqual(code, 0)
        self.assertGreater(result["announces_per_s"], 100)
        self.assertGreater(result["scrapes_per_s"], 0)
        self.assertEqual(result["errors"], 0)
        self.assertEqual(result["lost"], 0)
        self.assertGreater(counters["peers_ipv4"], 100)  # many distinct peers arrived
        # The loop's stall counters are counted among its turns.
        self.assertGreater(counters["loop_turns"], 100)
        self.assertLessEqual(counters["loop_turns_over_1ms"], counters["loop_turns_over_250us"])
        self.assertLess(counters["loop_turns_over_250us"], counters["loop_turns"])

    def test_http_against_tyto(self):
        port = free_port()
        tracker = Tracker(TYTO, ["--udp", "127.0.0.1:%d" % port, "--http", "127.0.0.1:%d" % port,
                                 "--cores", "0-1"], [("127.0.0.1", port)])
        try:
            # Kept busy, pipelined connections write answers behind sends still in flight; a
            # connection that ran out of output room behind sent bytes was closed (lost > 0).
            pipelined = run_load(port, "--protocol", "http", "--sockets", "16", "--inflight", "8",
                                 "--duration-s", "2")
            one_per_connection = run_load(port, "--protocol", "http", "--sockets", "8",
                                          "--keep-alive", "0")
        finally:
            code, counters, _ = tracker.stop()
        self.assertEqual(code, 0)
        for result in (pipelined, one_per_connection):
            self.assertGreater(result["announces_per_s"], 100)
            self.assertGreater(result["scrapes_per_s"], 0)
            self.assertEqual(result["errors"], 0)
            self.assertEqual(result["lost"], 0)
        self.assertEqual(pipelined["connects"], 0)  # after the warm-up, the same 8 connections
        self.assertGreater(one_per_connection["connects"], 100)
        self.assertGreater(counters["http_announces"], 200)

    def test_fill_mode_announces_exactly_n_peers(self):
        port = free_port()
        tracker = Tracker(TYTO, ["--udp", "127.0.0.1:%d" % port, "--http", "127.0.0.1:%d" % port, "--cores", "0-1"], [("127.0.0.1", port)])
        try:
            run_load(port, "--fill-peers", "3000")
        finally:
            _, counters, _ = tracker.stop()
        self.assertEqual(counters["peers_ipv4"], 3000)

    def test_scrapes_only_stores_nothing(self):
        port = free_port()
        tracker = Tracker(TYTO, ["--udp", "127.0.0.1:%d" % port, "--cores", "0"],
                          [("127.0.0.1", port)])
        try:
            result = run_load(port, "--scrapes-only", "1")
        finally:
            _, counters, _ = tracker.stop()
        self.assertGreater(result["scrapes_per_s"], 100)
        self.assertEqual(result["announces_per_s"], 0)
        self.assertEqual(result["errors"], 0)
        self.assertEqual(counters["peers_ipv4"], 0)
        self.assertEqual(counters["swarms"], 0)

    def test_against_the_echo_ceiling(self):
        result = run_load_against_echo()
        self.assertGreater(result["responses_per_s"], 100)
        self.assertEqual(result["errors"], 0)

    def test_rate_capped_latency(self):
        result = run_load_against_echo("--rate", "3000", "--duration-s", "2.5")
        # The cap holds: sends are paced to the rate, and the echo answers them all.
        self.assertGreater(result["responses_per_s"], 2700)
        self.assertLess(result["responses_per_s"], 3300)
        self.assertEqual(result["lost"], 0)
        # Kernel receive stamps against the send clock: ordered percentiles, and a latency a
        # loopback round trip can have (a broken stamp or clock would give 0 or years).
        self.assertGreater(result["p50_us"], 0)
        self.assertLessEqual(result["p50_us"], result["p99_us"])
        self.assertLessEqual(result["p99_us"], result["p999_us"])
        self.assertLess(result["p50_us"], 100000)
        # Two whole seconds were measured, so the per-second p99 exists and lies in the spread.
        self.assertGreater(result["p99_second_median_us"], 0)
        self.assertLessEqual(result["p99_second_min_us"], result["p99_second_median_us"])
        self.assertLessEqual(result["p99_second_median_us"], result["p99_second_max_us"])
        self.assertIn("read_delay_p99_us", result)
        self.assertIn("passes_over_1ms", result)


if __name__ == "__main__":
    TYTO, LOADGEN, ECHO = sys.argv[1:4]
    del sys.argv[1:4]
    unittest.main(verbosity=2)
