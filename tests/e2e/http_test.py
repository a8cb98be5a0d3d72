"""End-to-end HTTP tracker: the real binary with 2 shards on 127.0.0.1 and ::1 (TCP and UDP on
the same port), real sockets."""
import os
import resource
import socket
import sys
import time
import unittest
from urllib.parse import quote_from_bytes

from tracker import Client, Tracker, free_port

BINARY = None
IDLE_CONNECTIONS = 10000


def raise_open_files_limit(needed):
    """The test and the tracker (which inherits it) each hold IDLE_CONNECTIONS sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        hard = needed  # root may raise the hard limit; anyone else gets a clear error here
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def bdecode(data, at=0):
    """A small strict bencode decoder for checking replies: returns (value, next index)."""
    kind = data[at:at + 1]
    if kind == b"i":
        end = data.index(b"e", at)
        return int(data[at + 1:end]), end + 1
    if kind == b"l":
        at += 1
        items = []
        while data[at:at + 1] != b"e":
            item, at = bdecode(data, at)
            items.append(item)
        return items, at + 1
    if kind == b"d":
        at += 1
        result = {}
        last = None
        while data[at:at + 1] != b"e":
            key, at = bdecode(data, at)
            assert last is None or key > last, "dictionary keys not sorted"
            last = key
            result[key], at = bdecode(data, at)
        return result, at + 1
    colon = data.index(b":", at)
    size = int(data[at:colon])
    return data[colon + 1:colon + 1 + size], colon + 1 + size


def announce_target(info_hash, port, left, event=None, numwant=None, compact=None, peer_id=None):
    query = "info_hash=%s&peer_id=%s&port=%d&uploaded=0&downloaded=0&left=%d" % (
        quote_from_bytes(info_hash, safe=""), quote_from_bytes(peer_id or os.urandom(20), safe=""),
        port, left)
    if event:
        query += "&event=" + event
    if numwant is not None:
        query += "&numwant=%d" % numwant
    if compact is not None:
        query += "&compact=%d" % compact
    return "/announce?" + query


def request_bytes(target, version="1.1", headers=""):
    return ("GET %s HTTP/%s\r\nHost: tracker\r\n%s\r\n" % (target, version, headers)).encode()


def read_response(sock):
    """Reads one HTTP response: (status, headers, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a response: %r" % data)
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = dict(line.split(": ", 1) for line in lines[1:])
    length = int(headers["Content-Length"])
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside a body")
        rest += chunk
    sock.pending = rest[length:]
    return status, headers, rest[:length]


class Connection:
    def __init__(self, address, source=None):
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        if source:
            self.sock.bind((source, 0))
        self.sock.connect(address)
        self.buffered = b""

    def close(self):
        self.sock.close()

    def get(self, target, version="1.1", headers=""):
        self.sock.sendall(request_bytes(target, version, headers))
        return self.response()

    def response(self):
        data = self.buffered
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed before a response")
            data += chunk
        head, rest = data.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:])
        length = int(headers["Content-Length"])
        while len(rest) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed inside a body")
            rest += chunk
        self.buffered = rest[length:]
        return int(lines[0].split(" ")[1]), headers, bdecode(rest[:length])[0]

    def closed_by_peer(self):
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:  # closed with our unread bytes in its buffer: a reset
            return True
        except socket.timeout:
            return False


class HttpTracker(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        raise_open_files_limit(IDLE_CONNECTIONS + 1000)
        cls.port = free_port()
        cls.v4 = ("127.0.0.1", cls.port)
        cls.v6 = ("::1", cls.port)
        cls.tracker = Tracker(BINARY, ["--udp", "127.0.0.1:%d" % cls.port,
                                       "--http", "127.0.0.1:%d" % cls.port,
                                       "--http", "[::1]:%d" % cls.port, "--cores", "0-1",
                                       "--http-idle-timeout-s", "2",
                                       "--trusted-proxy", "127.0.0.9",
                                       "--trusted-proxy", "10.0.0.0/8"], [cls.v4])

    @classmethod
    def tearDownClass(cls):
        code, counters, stderr = cls.tracker.stop()
        assert code == 0, stderr
        assert counters["http_announces"] > 0, counters
        assert counters["tcp_closed_idle"] >= IDLE_CONNECTIONS, counters
        assert counters["announces_forwarded"] > 0, counters

    def connection(self, address=None, source=None):
        connection = Connection(address or self.v4, source)
        self.addCleanup(connection.close)
        return connection

    def test_announce_and_scrape(self):
        info_hash = os.urandom(20)
        leecher = self.connection(source="127.0.0.2")
        status, headers, body = leecher.get(announce_target(info_hash, 6881, 100, "started"))
        self.assertEqual(status, 200)
        self.assertEqual(body[b"interval"], 1800)
        self.assertEqual(body[b"min interval"], 900)
        self.assertEqual((body[b"complete"], body[b"incomplete"]), (0, 1))
        self.assertEqual(body[b"peers"], b"")
        self.assertEqual(body[b"external ip"], bytes([127, 0, 0, 2]))  # BEP 24
        seeder = self.connection(source="127.0.0.3")
        _, _, body = seeder.get(announce_target(info_hash, 6882, 0, "completed"))
        self.assertEqual(body[b"peers"], bytes([127, 0, 0, 2, 0x1a, 0xe1]))
        _, _, body = seeder.get("/scrape?info_hash=" + quote_from_bytes(info_hash, safe=""))
        self.assertEqual(body[b"files"][info_hash],
                         {b"complete": 1, b"downloaded": 1, b"incomplete": 1})
        # compact=0 with no_peer_id=1: the dictionary model without peer ids (BEP 3). Without
        # no_peer_id a dictionary would need a `peer id`, which tyto does not keep: compact
        # instead, as BEP 23 allows.
        _, _, body = leecher.get(announce_target(info_hash, 6881, 100, compact=0) + "&no_peer_id=1")
        self.assertEqual(body[b"peers"], [{b"ip": b"127.0.0.3", b"port": 6882}])
        _, _, body = leecher.get(announce_target(info_hash, 6881, 100, compact=0))
        self.assertEqual(body[b"peers"], bytes([127, 0, 0, 3, 0x1a, 0xe2]))

    def test_failures_are_bencoded_and_unknown_paths_404(self):
        connection = self.connection()
        status, _, body = connection.get("/announce?peer_id=-TY0001-abcdefghijkl&port=1&left=0")
        self.assertEqual(status, 200)
        self.assertEqual(body[b"failure reason"], b"missing info_hash")
        status, _, body = connection.get("/scrape")
        self.assertEqual(body[b"failure reason"], b"full scrape is not allowed")
        status, _, body = connection.get("/favicon.ico")
        self.assertEqual(status, 404)
        status, _, _ = connection.get(announce_target(os.urandom(20), 1, 0))  # still served
        self.assertEqual(status, 200)

    def test_ipv6_gets_peers6(self):
        info_hash = os.urandom(20)
        first = self.connection(self.v6)
        first.get(announce_target(info_hash, 7001, 5))
        second = self.connection(self.v6)
        _, _, body = second.get(announce_target(info_hash, 7002, 5))
        self.assertEqual(body[b"peers"], b"")
        self.assertEqual(len(body[b"peers6"]), 18)
        self.assertEqual(body[b"peers6"][:16], socket.inet_pton(socket.AF_INET6, "::1"))

    def test_pipelined_requests_in_one_write_are_answered_in_order(self):
        # Hashes owned by both shards, so some answers come back from the other shard.
        hashes = [os.urandom(20) for _ in range(12)]
        connection = self.connection()
        batch = b"".join(request_bytes(announce_target(h, 8000 + i, 1, numwant=5))
                         for i, h in enumerate(hashes))
        batch += request_bytes("/scrape?" + "&".join(
            "info_hash=" + quote_from_bytes(h, safe="") for h in hashes))
        connection.sock.sendall(batch)
        for _ in hashes:
            status, _, body = connection.response()
            self.assertEqual(status, 200)
            self.assertEqual(body[b"incomplete"], 1)
        _, _, body = connection.response()
        self.assertEqual(sorted(body[b"files"].keys()), sorted(hashes))
        for info_hash in hashes:
            self.assertEqual(body[b"files"][info_hash][b"incomplete"], 1)

    def test_a_request_split_across_many_writes(self):
        info_hash = os.urandom(20)
        connection = self.connection()
        data = request_bytes(announce_target(info_hash, 9000, 0))
        for i in range(0, len(data), 7):
            connection.sock.sendall(data[i:i + 7])
            time.sleep(0.002)
        status, _, body = connection.response()
        self.assertEqual(status, 200)
        self.assertEqual(body[b"complete"], 1)

    def test_http10_closes_unless_keep_alive(self):
        connection = self.connection()
        status, headers, _ = connection.get("/scrape?info_hash=" + "%00" * 20, version="1.0")
        self.assertEqual(headers.get("Connection"), "close")
        self.assertTrue(connection.closed_by_peer())
        kept = self.connection()
        kept.get("/scrape?info_hash=" + "%00" * 20, version="1.0", headers="Connection: keep-alive\r\n")
        status, _, _ = kept.get("/scrape?info_hash=" + "%00" * 20, version="1.0",
                                headers="Connection: keep-alive\r\n")
        self.assertEqual(status, 200)

    def test_close_after_an_answer_is_a_half_close_that_drains(self):
        # HTTP/1.0 without keep-alive, two more requests behind the first: the first is answered,
        # then the tracker half-closes (FIN after the answer) and discards what still arrives
        # until the client closes. A full close would answer late bytes with a reset, which on a
        # real network can destroy the answer before the client has read it.
        connection = self.connection()
        target = "/scrape?info_hash=" + "%01" * 20
        connection.sock.sendall(request_bytes(target, "1.0") * 3 + b"x" * 3000)
        status, headers, body = connection.response()
        self.assertEqual(status, 200)
        self.assertEqual(headers.get("Connection"), "close")
        self.assertIn(b"\x01" * 20, body[b"files"])
        self.assertEqual(connection.sock.recv(65536), b"")  # the FIN
        for _ in range(3):  # a closed socket would reset the first; the next send would fail
            connection.sock.sendall(b"y" * 1000)
            time.sleep(0.1)

    def test_a_last_request_gets_its_whole_answer_then_a_fin(self):
        # HTTP/1.1 with "Connection: close" (what libtorrent sends) and HTTP/1.0: the client sends
        # nothing more, so the answer goes out with the close linked behind it. Unread bytes would
        # turn that close into a reset; here there are none: the client, reading only after the
        # tracker has closed, gets the whole answer and then EOF (a FIN, not a reset).
        info_hash = os.urandom(20)
        for i in range(40):
            status, _, _ = self.connection(source="127.0.2.%d" % (1 + i)).get(
                announce_target(info_hash, 7000 + i, 0))
            self.assertEqual(status, 200)
        for version, headers in (("1.1", "Connection: close\r\n"), ("1.0", "")):
            connection = self.connection(source="127.0.3.1")
            connection.sock.sendall(
                request_bytes(announce_target(info_hash, 6999, 1, numwant=200), version, headers))
            time.sleep(0.3)  # answered and closed by now
            status, headers_in, body = connection.response()
            self.assertEqual(status, 200)
            self.assertEqual(headers_in.get("Connection"), "close")
            self.assertEqual(len(body[b"peers"]), 6 * 40)
            self.assertEqual(connection.sock.recv(1), b"")

    def test_a_client_silent_after_connecting_is_still_served(self):
        # The listener defers accepting until the first bytes (TCP_DEFER_ACCEPT, 1 s): a client
        # that waits longer than that before asking is accepted when it answers the SYN-ACK sent
        # again, and served as any other.
        connection = self.connection()
        time.sleep(1.5)
        status, _, body = connection.get(announce_target(os.urandom(20), 6881, 0),
                                         headers="Connection: close\r\n")
        self.assertEqual(status, 200)
        self.assertEqual(body[b"complete"], 1)
        self.assertTrue(connection.closed_by_peer())

    def test_oversized_head_gets_431_and_close(self):
        connection = self.connection()
        connection.sock.sendall(b"GET /announce?" + b"a" * 5000 + b" HTTP/1.1\r\n\r\n")
        status, headers, _ = connection.response()
        self.assertEqual(status, 431)
        self.assertTrue(connection.closed_by_peer())

    def test_slow_partial_heads_time_out_and_idle_clients_do_not_block_others(self):
        slow = self.connection()
        slow.sock.sendall(b"GET /announce?info_hash=")
        idle = []
        for i in range(IDLE_CONNECTIONS):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.addCleanup(sock.close)
            sock.bind(("127.0.1.%d" % (1 + i % 200), 0))  # spread over source addresses
            sock.connect(self.v4)
            idle.append(sock)
        # Meanwhile valid clients are served, on both families.
        for address in (self.v4, self.v6):
            status, _, _ = self.connection(address).get(announce_target(os.urandom(20), 1234, 0))
            self.assertEqual(status, 200)
        time.sleep(4)  # idle timeout is 2 s, swept once a second
        self.assertTrue(slow.closed_by_peer())
        # Every idle client is closed by the tracker. Silent ones are accepted only when they
        # answer a SYN-ACK the kernel sends again after the deferred accept's 1 s
        # (TCP_DEFER_ACCEPT). 10 000 at once overflow the listeners' queues (4096 each), and an
        # answer that finds its queue full waits for the next SYN-ACK: they go out 1, 3, 7, 15
        # and 31 s after the connect (tcp_synack_retries 5). On Linux 6.18 (2 shards, release)
        # the closes came at 3-4, 6, 10 and 18 s in one run, and some after 31 s in others,
        # past this wait's former 30 s: allow for the last SYN-ACK, 2 s of idle timeout and
        # the once-a-second sweep.
        deadline = time.monotonic() + 45
        for sock in idle:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            self.assertEqual(sock.recv(1), b"")

    def test_trusted_proxy_names_the_client_and_others_are_ignored(self):
        info_hash = os.urandom(20)
        proxy = self.connection(source="127.0.0.9")
        # The nearest hop that is not a trusted proxy (10.0.0.0/8 is) is the client.
        _, _, body = proxy.get(announce_target(info_hash, 6001, 5),
                               headers="X-Forwarded-For: 198.51.100.1, 203.0.113.5, 10.1.1.1\r\n")
        self.assertEqual(body[b"external ip"], bytes([203, 0, 113, 5]))
        _, _, body = proxy.get(announce_target(info_hash, 6002, 5),
                               headers="X-Real-IP: 192.0.2.44\r\n")
        self.assertEqual(body[b"external ip"], bytes([192, 0, 2, 44]))
        self.assertEqual(body[b"peers"], bytes([203, 0, 113, 5, 0x17, 0x71]))
        _, _, body = proxy.get(announce_target(info_hash, 6003, 5) + "&ip=2001%3Adb8%3A%3A7")
        self.assertEqual(body[b"external ip"], socket.inet_pton(socket.AF_INET6, "2001:db8::7"))
        status, _, body = proxy.get(announce_target(info_hash, 6004, 5),
                                    headers="X-Forwarded-For: not-an-address\r\n")
        self.assertEqual(status, 200)
        self.assertEqual(body[b"failure reason"], b"invalid X-Forwarded-For from a trusted proxy")
        # Not a trusted proxy: the headers and `ip` are ignored.
        direct = self.connection(source="127.0.0.8")
        _, _, body = direct.get(announce_target(info_hash, 6005, 5) + "&ip=192.0.2.99",
                                headers="X-Forwarded-For: 192.0.2.98\r\nX-Real-IP: 192.0.2.97\r\n")
        self.assertEqual(body[b"external ip"], bytes([127, 0, 0, 8]))
        _, _, body = direct.get("/scrape?info_hash=" + quote_from_bytes(info_hash, safe=""))
        self.assertEqual(body[b"files"][info_hash][b"incomplete"], 4)  # 3 IPv4, 1 IPv6

    def test_udp_and_http_share_swarms(self):
        info_hash = os.urandom(20)
        udp = Client(self.v4, source="127.0.0.4")
        self.addCleanup(udp.close)
        udp.connect()
        udp.announce(info_hash, port=5000, left=0)
        connection = self.connection(source="127.0.0.5")
        _, _, body = connection.get(announce_target(info_hash, 5001, 10))
        self.assertEqual(body[b"peers"], bytes([127, 0, 0, 4, 0x13, 0x88]))
        self.assertEqual(udp.scrape([info_hash]), [(1, 0, 1)])


class HttpDrainTimeout(unittest.TestCase):
    def test_a_half_closed_connection_the_client_never_closes_is_closed_after_the_grace(self):
        # Idle timeout 60 s, but a connection that was answered and half-closed is only kept
        # 5 s for the client's FIN: after that the tracker closes it, and more bytes from the
        # client are answered with a reset. (Bytes behind the client's last request are what
        # earn it the half-close: without them the close follows the answer at once.)
        port = free_port()
        tracker = Tracker(BINARY, ["--udp", "127.0.0.1:%d" % port, "--http", "127.0.0.1:%d" % port,
                                   "--cores", "0", "--http-idle-timeout-s", "60"],
                          [("127.0.0.1", port)])
        connection = Connection(("127.0.0.1", port))
        try:
            connection.sock.sendall(request_bytes("/scrape?info_hash=" + "%03" * 20, "1.0") + b"z")
            status, _, _ = connection.response()
            self.assertEqual(status, 200)
            self.assertEqual(connection.sock.recv(1), b"")  # the FIN after the answer
            time.sleep(8)  # grace 5 s, swept once a second
            with self.assertRaises(OSError):  # reset by the closed socket, then a broken pipe
                for _ in range(3):
                    connection.sock.sendall(b"z" * 100)
                    time.sleep(0.2)
        finally:
            connection.close()
            code, counters, stderr = tracker.stop()
        self.assertEqual(code, 0, stderr)
        self.assertEqual(counters["tcp_closed_idle"], 1)


class HttpConnectionCap(unittest.TestCase):
    def test_connections_over_the_cap_are_closed_and_the_rest_served(self):
        port = free_port()
        tracker = Tracker(BINARY, ["--udp", "127.0.0.1:%d" % port, "--http", "127.0.0.1:%d" % port,
                                   "--cores", "0", "--http-connections-max", "4"],
                          [("127.0.0.1", port)])
        connections = []
        try:
            for _ in range(10):
                connections.append(Connection(("127.0.0.1", port)))
            time.sleep(0.5)
            served = refused = 0
            for connection in connections:
                try:
                    status, _, _ = connection.get("/scrape?info_hash=" + "%02" * 20)
                    self.assertEqual(status, 200)
                    served += 1
                except (ConnectionError, OSError):
                    refused += 1
            self.assertEqual(served, 4)
            self.assertEqual(refused, 6)
        finally:
            for connection in connections:
                connection.close()
            code, counters, stderr = tracker.stop()
        self.assertEqual(code, 0, stderr)
        self.assertEqual(counters["tcp_refused_full"], 6)


if __name__ == "__main__":
    BINARY = sys.argv.pop(1)
    unittest.main(verbosity=2)
