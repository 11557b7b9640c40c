"""A PostgreSQL server of the chaos suite's own (initdb + pg_ctl from the machine's PostgreSQL, as the postgres user,
on a free port with its own data directory), so its immediate restarts disturb no other test or helper."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

PG_ROOT = Path("/usr/lib/postgresql")
USER = "minaintyg"
PASSWORD = "minaintyg"
DATABASE = "minaintyg"


def _bin(name: str) -> str:
    versions = sorted((p for p in PG_ROOT.iterdir() if (p / "bin" / name).exists()), key=lambda p: int(p.name))
    if not versions:
        raise RuntimeError(f"no PostgreSQL server binaries under {PG_ROOT}")
    return str(versions[-1] / "bin" / name)


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@dataclass
class PrivatePostgres:
    home: Path  # must be reachable by the postgres user (not under a 0700 directory)
    port: int

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def url(self) -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{DATABASE}?sslmode=disable"

    def _ctl(self, *args: str, timeout: float = 120) -> None:
        cmd = _as_postgres([_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.home / "postgres.log"), *args])
        subprocess.run(cmd, check=True, timeout=timeout, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.home, "postgres", "postgres")
        fresh = not (self.data / "PG_VERSION").exists()
        if fresh:
            subprocess.run(
                _as_postgres([_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                              "--locale=C.UTF-8"]),
                check=True, stdout=subprocess.DEVNULL, timeout=120,
            )  # fmt: skip
            with (self.data / "postgresql.conf").open("a") as conf:
                conf.write(
                    f"port = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.home}'\n"
                    # An immediate restart kills the server, not the machine: the OS keeps what was written, so
                    # fsync off loses nothing here and spares the shared disk.
                    "max_connections = 500\nfsync = off\nfull_page_writes = off\nshared_buffers = 64MB\n"
                )
        self._ctl("-w", "start")
        self.wait_accepting()
        if fresh:
            psql = _as_postgres([_bin("psql"), "-h", str(self.home), "-p", str(self.port), "-U", "postgres",
                                 "-v", "ON_ERROR_STOP=1", "-qtA"])  # fmt: skip
            subprocess.run([*psql, "-c", f"CREATE ROLE {USER} LOGIN SUPERUSER PASSWORD '{PASSWORD}'"], check=True)
            subprocess.run([*psql, "-c", f"CREATE DATABASE {DATABASE} OWNER {USER}"], check=True)

    def wait_accepting(self, deadline_seconds: float = 60) -> None:
        deadline = time.monotonic() + deadline_seconds
        isready = [_bin("pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        while subprocess.run(isready, check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"private PostgreSQL on {self.port} does not accept connections")
            time.sleep(0.2)

    def restart_immediate(self) -> None:
        """`pg_ctl restart -m immediate`: every backend killed without a checkpoint, crash recovery at start."""
        self._ctl("-w", "-m", "immediate", "restart")
        self.wait_accepting()

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._ctl("-w", "-m", "fast", "stop")
