"""A private PostgreSQL server for the suite: initdb in a temporary folder, trust auth, loopback only.

Each pytest process starts its own (with pytest-xdist, one per worker), on a free port.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile


def find_bindir() -> str | None:
    for path in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(path, "initdb")):
            return path
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self, bindir: str, durable: bool = False):
        """`durable`: commits reach the disk, as on a production server (PostgreSQL's default); the suite's server
        does without, which only a power cut would tell."""
        self.bindir = bindir
        self.durable = durable
        self.dir = tempfile.mkdtemp(prefix="tracker-pg-")
        self.data = os.path.join(self.dir, "data")
        self.port = 0
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            shutil.chown(self.dir, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> PgServer:
        self._run(os.path.join(self.bindir, "initdb"), "-D", self.data, "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--locale=C.UTF-8")
        for attempt in range(3):  # another process may take the free port before the server binds it
            self.port = _free_port()
            opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=60"
                    + ("" if self.durable else " -c fsync=off"))
            try:  # -w: pg_ctl returns once the server accepts connections
                self._run(os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-o", opts, "-l",
                          os.path.join(self.dir, "log"), "-w", "start")
                break
            except subprocess.CalledProcessError:
                if attempt == 2:
                    raise
        socket.create_connection(("127.0.0.1", self.port), timeout=5).close()
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        try:
            self._run(os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
