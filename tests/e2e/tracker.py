"""Shared helpers for end-to-end tests: start the real tyto binary on loopback and speak BEP 15."""
import os
import random
import signal
import socket
import struct
import subprocess
import threading
import time

PROTOCOL_ID = 0x41727101980
CONNECT, ANNOUNCE, SCRAPE, ERROR = 0, 1, 2, 3
NONE, COMPLETED, STARTED, STOPPED = 0, 1, 2, 3


def url_data_options(url_data):
    """BEP 41: the URL's path and query as URL data options (255 bytes each), then the end."""
    options = b""
    for at in range(0, len(url_data), 255):
        chunk = url_data[at:at + 255]
        options += bytes([2, len(chunk)]) + chunk
    return options + b"\x00"


def ephemeral_ports_start():
    """The first port the kernel hands to outgoing connections (ip_local_port_range)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    """A port free for UDP on 127.0.0.1 and ::1 (and TCP, for later listeners). Below the
    kernel's ephemeral range: a port found free there can be taken by any outgoing connection
    (a NATS client's, say) before the tracker binds it."""
    for _ in range(100):
        port = random.randint(20000, max(20001, ephemeral_ports_start() - 2))
        sockets = []
        try:
            for family, host, kind in ((socket.AF_INET, "127.0.0.1", socket.SOCK_DGRAM),
                                       (socket.AF_INET6, "::1", socket.SOCK_DGRAM),
                                       (socket.AF_INET, "127.0.0.1", socket.SOCK_STREAM),
                                       (socket.AF_INET6, "::1", socket.SOCK_STREAM)):
                s = socket.socket(family, kind)
                sockets.append(s)
                s.bind((host, port))
            return port
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free port")


def http_get(port, target, source="127.0.0.1", raw=False):
    """(status, body) of GET target on 127.0.0.1:port, from `source`; body as text, or as bytes
    with `raw` (a bencoded reply)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0)) as s:
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % target).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body if raw else body.decode()


class Tracker:
    """Runs `tyto` with the given flags; stop() sends SIGTERM and returns its counters."""

    def __init__(self, binary, args, ready_addresses, env=None):
        args = list(args)
        if os.geteuid() == 0 and "--user" not in args and "--allow-root" not in args:
            args.append("--allow-root")  # tests run as root in CI; tyto refuses root otherwise
        if "--metrics" not in args:
            args += ["--metrics", "off"]  # tests run in parallel: no shared default port
        self.process = subprocess.Popen([binary] + args, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, text=True, env=env)
        # stderr is read as it comes, so a test can wait for a log line and the pipe never fills.
        self._stderr_lines, self._stderr_changed = [], threading.Condition()
        self._stderr_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_reader.start()
        deadline = time.time() + 20
        for address in ready_addresses:
            while True:
                if self.process.poll() is not None:
                    self._stderr_reader.join()
                    raise RuntimeError("tyto exited early: " + self.stderr())
                client = Client(address, timeout=0.2)
                try:
                    client.connect()
                    break
                except (socket.timeout, ConnectionRefusedError):
                    if time.time() > deadline:
                        self.process.kill()
                        raise RuntimeError("tyto did not answer on %s" % (address,))
                finally:
                    client.close()

    def _read_stderr(self):
        for line in self.process.stderr:
            with self._stderr_changed:
                self._stderr_lines.append(line)
                self._stderr_changed.notify_all()

    def stderr(self):
        with self._stderr_changed:
            return "".join(self._stderr_lines)

    def log_count(self, text):
        """How many stderr lines so far contain `text`."""
        with self._stderr_changed:
            return sum(text in line for line in self._stderr_lines)

    def wait_for_log(self, text, count=1, seconds=20):
        """Waits until `count` stderr lines contain `text`; False when `seconds` pass first."""
        deadline = time.time() + seconds
        with self._stderr_changed:
            while sum(text in line for line in self._stderr_lines) < count:
                left = deadline - time.time()
                if left <= 0:
                    return False
                self._stderr_changed.wait(left)
            return True

    def kill(self):
        """kill -9: no graceful stop. Returns what it logged."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=20)
        self._stderr_reader.join()
        self.process.stderr.close()
        return self.stderr()

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        self._stderr_reader.join()
        self.process.stderr.close()
        stderr = self.stderr()
        counters = {}
        for line in stderr.splitlines():
            if line.startswith("tyto: counter "):
                name, value = line[len("tyto: counter "):].split("=")
                counters[name] = int(value)
        return self.process.returncode, counters, stderr


class TrackerError(Exception):
    pass


class Client:
    """A BEP 15 client bound to `source` (a loopback address), talking to `address`."""

    def __init__(self, address, source=None, timeout=2.0):
        self.address = address
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.settimeout(timeout)
        if source is not None:
            self.sock.bind((source, 0))
        self.connection_id = None

    def close(self):
        self.sock.close()

    @property
    def port(self):
        return self.sock.getsockname()[1]

    def exchange(self, packet, transaction_id):
        self.sock.sendto(packet, self.address)
        while True:
            reply, _ = self.sock.recvfrom(4096)
            if len(reply) >= 8 and struct.unpack(">I", reply[4:8])[0] == transaction_id:
                return reply

    def raw(self, packet):
        """Send bytes, return the reply or None after the timeout."""
        self.sock.sendto(packet, self.address)
        try:
            return self.sock.recvfrom(4096)[0]
        except socket.timeout:
            return None

    def connect(self):
        tid = random.getrandbits(32)
        reply = self.exchange(struct.pack(">QII", PROTOCOL_ID, CONNECT, tid), tid)
        action, _, self.connection_id = struct.unpack(">IIQ", reply[:16])
        assert action == CONNECT and len(reply) == 16, reply
        return self.connection_id

    def announce(self, info_hash, port, left=0, event=NONE, numwant=-1, peer_id=None,
                 connection_id=None, options=b"", uploaded=0, downloaded=0):
        tid = random.getrandbits(32)
        cid = self.connection_id if connection_id is None else connection_id
        peer_id = peer_id or os.urandom(20)
        packet = struct.pack(">QII20s20sQQQIIIiH", cid, ANNOUNCE, tid, info_hash, peer_id,
                             downloaded, left, uploaded, event, 0, 0, numwant, port) + options
        reply = self.exchange(packet, tid)
        action = struct.unpack(">I", reply[:4])[0]
        if action == ERROR:
            raise TrackerError(reply[8:].decode())
        assert action == ANNOUNCE, reply
        interval, leechers, seeders = struct.unpack(">III", reply[8:20])
        entry = 18 if self.sock.family == socket.AF_INET6 else 6
        body = reply[20:]
        assert len(body) % entry == 0, len(body)
        peers = []
        for i in range(0, len(body), entry):
            raw = body[i:i + entry]
            host = socket.inet_ntop(self.sock.family, raw[:-2])
            peers.append((host, struct.unpack(">H", raw[-2:])[0]))
        return {"interval": interval, "leechers": leechers, "seeders": seeders, "peers": peers}

    def scrape(self, info_hashes):
        tid = random.getrandbits(32)
        packet = struct.pack(">QII", self.connection_id, SCRAPE, tid) + b"".join(info_hashes)
        reply = self.exchange(packet, tid)
        action = struct.unpack(">I", reply[:4])[0]
        if action == ERROR:
            raise TrackerError(reply[8:].decode())
        assert action == SCRAPE and len(reply) == 8 + 12 * len(info_hashes), reply
        return [struct.unpack(">III", reply[8 + 12 * i:20 + 12 * i]) for i in range(len(info_hashes))]
