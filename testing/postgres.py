"""A throwaway PostgreSQL server on loopback for the tests (the `postgres_server` fixture in tests/conftest.py)
and the benchmarks (bench/bench_catalog.py, bench/bench_api.py --database postgresql).

It runs from the binaries `bash .ci/setup --test` installs, on a free port, in a temporary data folder with
fsync off; nothing assumes a server is already running. As root it runs as the `postgres` system user, which
owns the data folder.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from testing.net import free_port

START_TIMEOUT_S = 60


class PostgresServer:
    """Started on construction; `new_database()` gives the URL of a new, empty database; `stop()` removes it all."""

    def __init__(self) -> None:
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not candidates:
            raise RuntimeError("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/pg_ctl): run "
                               "`bash .ci/setup --test`, or apt-get install postgresql")
        self.bin = Path(candidates[-1]).parent
        self.root = Path(tempfile.mkdtemp(prefix="footfit-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
        self.start_server()
        self._names = itertools.count()

    def start_server(self) -> None:
        """Start the server on its data folder and port (again, after `halt`)."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-t", str(START_TIMEOUT_S),
                  "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                        f"-c synchronous_commit=off -c full_page_writes=off", "start")

    def halt(self) -> None:
        """Stop the server, keeping its data, as an operator restarting it would (clients are disconnected)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        import psycopg

        name = f"test_{next(self._names)}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, tool: str, *args: str) -> None:
        result = subprocess.run([*self.as_user, str(self.bin / tool), *args], capture_output=True, text=True,
                                timeout=START_TIMEOUT_S + 30)
        if result.returncode != 0:
            log = self.root / "log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{tool} failed ({result.returncode}): {result.stderr.strip()}\n{tail}")
