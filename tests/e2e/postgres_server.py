"""A real PostgreSQL server started for a test or a bench run (Debian's `postgresql` package):
initdb in a temporary directory, a Unix socket only, run as `nobody` when the caller is root
(postgres refuses root), stopped by its pid. Shared by tests/e2e/private_pg_test.py and bench/run
(which imports it from here); tests/store/postgres_server.cpp is the C++ suite's equivalent."""
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time

from tracker import free_port


def postgres_bin():
    """The newest installed server's bin directory, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    return os.path.dirname(found[-1]) if found else None


class Postgres:
    """One server on a socket in its own directory, run by an unprivileged user.

    fsync: False for tests (nothing needs to survive the host); a bench passes True so commits
    cost what they cost in production. cores: CPUs the server's processes are pinned to
    (taskset; every backend inherits it), None for no pinning. settings: more `-c NAME=VALUE`."""

    def __init__(self, fsync=False, cores=None, settings=None):
        self.bin = postgres_bin()
        assert self.bin is not None, "PostgreSQL's server is not installed (package postgresql)"
        self.directory = tempfile.mkdtemp(prefix="tyto-pg-")
        self.data = os.path.join(self.directory, "data")
        self.port = free_port()
        self.user = "nobody" if os.geteuid() == 0 else None
        self.fsync = fsync
        self.cores = cores
        self.settings = dict(settings or {})
        if self.user:
            shutil.chown(self.directory, user=self.user)
        self.run([os.path.join(self.bin, "initdb"), "-D", self.data, "-U", "postgres", "-A",
                  "trust", "--no-sync"], as_server=True)
        self.process = None
        self.start()
        self.sql("CREATE DATABASE tyto", database="postgres")

    def run(self, command, as_server=False, input=None):
        result = subprocess.run(command, capture_output=True, text=True, timeout=600,
                                user=self.user if as_server else None, input=input)
        assert result.returncode == 0, (command, result.stderr)
        return result.stdout

    def start(self):
        command = [os.path.join(self.bin, "postgres"), "-D", self.data, "-k", self.directory,
                   "-p", str(self.port), "-c", "listen_addresses=", "-c",
                   "fsync=%s" % ("on" if self.fsync else "off")]
        for name, value in self.settings.items():
            command += ["-c", "%s=%s" % (name, value)]
        if self.cores:
            command = ["taskset", "-c", ",".join(map(str, self.cores))] + command
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, user=self.user)
        deadline = time.time() + 30
        while time.time() < deadline:
            if subprocess.run([os.path.join(self.bin, "pg_isready"), "-h", self.directory, "-p",
                               str(self.port)], capture_output=True).returncode == 0:
                return
            assert self.process.poll() is None, "postgres exited"
            time.sleep(0.1)
        raise AssertionError("postgres did not start in 30 s")

    def pids(self):
        """The postmaster's and every backend's pid (they name the data directory)."""
        found = subprocess.run(["pgrep", "-f", "-d", " ", self.data], capture_output=True,
                               text=True).stdout.split()
        return sorted({int(pid) for pid in found} | {self.process.pid})

    def server_pids(self):
        """The postmaster and its children (backends, background workers): their command lines
        do not name the data directory, pids() misses them."""
        children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.process.pid)],
                                  capture_output=True, text=True).stdout.split()
        return [self.process.pid] + [int(pid) for pid in children]

    def kill(self):
        """kill -9 of the postmaster and every backend (they are their own session leaders)."""
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=20)
        deadline = time.time() + 20
        while time.time() < deadline and subprocess.run(
                ["pgrep", "-f", self.data], capture_output=True).returncode == 0:
            time.sleep(0.1)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)

    def uri(self, database="tyto"):
        return "postgresql://postgres@/%s?host=%s&port=%d" % (database, self.directory, self.port)

    def sql(self, statement, database="tyto", input=None):
        return self.run(["psql", "-h", self.directory, "-p", str(self.port), "-U", "postgres",
                         "-d", database, "-At", "-v", "ON_ERROR_STOP=1", "-c", statement],
                        input=input)
