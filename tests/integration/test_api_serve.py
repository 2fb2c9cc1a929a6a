"""`footfit serve`: the service as its own process on the settings' database (SQLite file or PostgreSQL),
migrated at start, /v1 behind keys made with `footfit keys create`, the schema at /openapi.json. The migrations
themselves: tests/unit/api/test_api_migrations.py."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest
from sqlalchemy import create_engine, inspect

from api.db import database_url as sqlalchemy_url
from api.migrations import VERSION_TABLE
from testing.service_process import ServiceProcess


def _footfit(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.slow
def test_serve_migrates_and_answers_on_the_configured_database(database_url, tmp_path):
    env = {"FOOTFIT_DATABASE_URL": database_url, "FOOTFIT_DATA_DIR": str(tmp_path / "var")}
    server = ServiceProcess(env)
    try:
        base = server.url
        schema = server.schema
        assert schema["paths"] and all(path.startswith("/v1/") for path in schema["paths"])
        assert "ApiKey" in schema["components"]["securitySchemes"]
        tables = set(inspect(create_engine(sqlalchemy_url(database_url))).get_table_names())
        assert {VERSION_TABLE, "size_variant", "tenant", "passport", "audit_log"} <= tables

        env = {**os.environ, **env}
        assert httpx.get(f"{base}/v1/me").status_code == 401
        assert _footfit(env, "tenants", "create", "shop").returncode == 0
        created = _footfit(env, "keys", "create", "--tenant", "shop", "--scopes", "passports:read")
        assert created.returncode == 0, created.stderr
        me = httpx.get(f"{base}/v1/me", headers={"Authorization": f"Bearer {created.stdout.strip()}"})
        assert me.status_code == 200 and me.json()["tenant"] == "shop" and me.json()["scopes"] == ["passports:read"]
    finally:
        stderr = server.stop()
    assert "footfit service on http://127.0.0.1" in stderr


@pytest.mark.slow
def test_serve_with_two_workers_answers_from_both_and_they_stop_with_it(tmp_path):
    env = {"FOOTFIT_DATA_DIR": str(tmp_path / "var")}
    server = ServiceProcess(env, "--workers", "2")
    try:
        workers = _children(server.pid)
        assert len(workers) == 2, f"two worker processes under the one started: {workers}"
        for pid in workers:  # each worker's C allocator keeps at most service.malloc_arenas arenas (core/malloc.py)
            assert b"MALLOC_ARENA_MAX=2\0" in open(f"/proc/{pid}/environ", "rb").read()
        answers = [httpx.get(f"{server.url}/v1/me", timeout=10).status_code for _ in range(20)]
        assert answers == [401] * 20, "every request answered (without a key: refused) whichever worker takes it"
    finally:
        stderr = server.stop()
    assert "with 2 worker processes" in stderr
    assert not [pid for pid in workers if os.path.exists(f"/proc/{pid}")], "the workers stop with the service"


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc), the resource tracker multiprocessing may start aside."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
                cmdline = open(f"/proc/{entry}/cmdline").read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and "resource_tracker" not in cmdline:
                found.append(int(entry))
    return found
