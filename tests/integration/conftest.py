"""The `footfit` fixture: the command line's entry point (cli.main.main) called in this process on an empty
database, with the settings read from the environment as a `footfit` process would read them. test_matcher_cli.py
has its own, which takes the settings with each call (its catalogue is built once per module)."""

from __future__ import annotations

import pytest

from cli.main import main
from core.settings import get_settings


@pytest.fixture
def footfit_env() -> dict[str, str]:
    """Settings (FOOTFIT_* variables) the `footfit` fixture runs with besides the database; a module overrides it."""
    return {}


@pytest.fixture
def footfit(database_url, footfit_env, monkeypatch, capsys):
    """footfit(*args) -> (exit code, stdout, stderr) on the database of `database_url`."""
    monkeypatch.setenv("FOOTFIT_DATABASE_URL", database_url)
    for name, value in footfit_env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    yield run
    get_settings.cache_clear()
