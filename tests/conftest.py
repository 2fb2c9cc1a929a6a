"""Fixtures others can reuse, and a guard that a test run leaves the checkout as it found it.

`database_url`: an empty database on SQLite and on a real PostgreSQL server, started once per test session
(testing/postgres.py) and stopped at the end. The browser fixtures (testing/browser.py) are tests/browser/conftest.py's.

The guard: at the end of the session, a file of the checkout that git reports changed or untracked (not ignored),
or any file under var/ or out/ (the product's default data folder and the README's scan output, both ignored),
that was written, created or removed during the run fails the run; tests write into tmp_path. The folder named
by FOOTFIT_SCREENSHOTS is exempt: writing there was asked for. Outside a git checkout there is no guard.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from testing.browser import SCREENSHOTS_ENV
from testing.postgres import PostgresServer

ROOT = Path(__file__).resolve().parents[1]
WATCHED_IGNORED = ("var", "out")
_BEFORE = pytest.StashKey[dict]()


@pytest.fixture(scope="session")
def postgres_server():
    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """A SQLAlchemy URL of a new, empty database: a SQLite file, or a database on the session's PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'footfit.sqlite'}"
    return request.getfixturevalue("postgres_server").new_database()


def _tree_state() -> dict[str, tuple[int, int] | None] | None:
    """The files a test must not write, each with its (mtime, size) or None if deleted; None outside git."""
    try:
        listing = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "-z", "--untracked-files=all"],
                                 capture_output=True, check=True, timeout=60).stdout.decode()
    except (OSError, subprocess.SubprocessError):
        return None
    entries = iter(listing.split("\0"))
    paths = []
    for entry in entries:
        if entry:
            paths.append(entry[3:])
            if entry[0] in "RC":  # a staged rename or copy: its source path follows
                paths.append(next(entries))
    paths += [str(f.relative_to(ROOT)) for folder in WATCHED_IGNORED for f in (ROOT / folder).rglob("*")
              if f.is_file()]
    state = {}
    for path in paths:
        try:
            stat = (ROOT / path).stat()
            state[path] = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            state[path] = None
    return state


def pytest_sessionstart(session):
    session.config.stash[_BEFORE] = _tree_state()


def pytest_sessionfinish(session):
    before = session.config.stash.get(_BEFORE, None)
    if before is None:
        return
    after = _tree_state() or {}
    exempt = os.environ.get(SCREENSHOTS_ENV)
    exempt = Path(exempt).resolve() if exempt else None
    changed = sorted(path for path in before.keys() | after.keys()
                     if before.get(path, "absent") != after.get(path, "absent")
                     and not (exempt and (ROOT / path).resolve().is_relative_to(exempt)))
    if changed:
        session.config.get_terminal_writer().line(
            "\nthe checkout changed during the test run (tests write into tmp_path; or was someone editing the "
            "tree meanwhile?):\n  " + "\n  ".join(changed), red=True, bold=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
