"""`footfit match` and `footfit tryon` end to end: a generated catalogue imported into SQLite, a passport with its
point files as `footfit scan` writes them. One run goes through a real `footfit` process; the others call the
same entry point (cli.main.main) in this process, with the settings read from the environment as a process would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest

from api.db import open_service_db
from cli.main import main
from core.mesh import write_points
from core.settings import get_settings
from shoe_db.importer import import_products
from simulator.catalog import generate_catalogue, write_catalogue
from testing.api_world import store_stock
from testing.fit_subjects import subject_feet


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def footfit(monkeypatch, capsys):
    """footfit(*args, env=...) -> Run: the command line's entry point with the settings from `env`."""
    def run(*args: str, env: dict) -> Run:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()
        capsys.readouterr()
        code = main(list(args))
        out = capsys.readouterr()
        return Run(code, out.out, out.err)
    yield run
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    env = {"FOOTFIT_DATABASE_URL": f"sqlite:///{folder / 'catalogue.sqlite'}", "FOOTFIT_DATA_DIR": str(folder / "var")}
    products = write_catalogue(generate_catalogue(20, 4, stores=2), folder / "files")
    engine = open_service_db(env["FOOTFIT_DATABASE_URL"])
    assert import_products(products, folder / "files" / "interiors", engine=engine).committed
    store_stock(engine, products)  # the operator's import writes no stock: the stores' is theirs
    feet = subject_feet(17)
    scan = folder / "scan"
    scan.mkdir()
    feet.passport.save(scan / "passport.json")
    write_points(scan / "left.ply", feet.left.points_mm)
    write_points(scan / "right.ply", feet.right.points_mm)
    return env, scan / "passport.json", folder


@pytest.mark.slow
def test_match_in_a_footfit_process(setup):
    env, passport, _ = setup
    text = subprocess.run([sys.executable, "-m", "cli.main", "match", str(passport), "--top", "3"], capture_output=True,
                          text=True, env=dict(os.environ, **env), timeout=240)
    assert text.returncode == 0, text.stderr
    lines = [line for line in text.stdout.splitlines() if line[:2] in ("1.", "2.", "3.")]
    assert len(lines) == 3 and all("toe room" in line and "score" in line for line in lines)


def test_match_prints_the_top_three_and_their_json(setup, footfit):
    env, passport, _ = setup
    text = footfit("match", str(passport), "--top", "3", env=env)
    assert text.returncode == 0, text.stderr
    lines = [line for line in text.stdout.splitlines() if line[:2] in ("1.", "2.", "3.")]
    assert len(lines) == 3 and all("toe room" in line and "score" in line for line in lines)
    result = json.loads(footfit("match", str(passport), "--json", "--store", "STORE-01", "--top", "2",
                                 env=env).stdout)
    assert len(result) == 2 and len({r["fit"]["model_id"] for r in result}) == 2
    assert result[0]["fit"]["score"] >= result[1]["fit"]["score"]
    assert {"toe", "ball", "instep", "heel"} == {r["region"] for r in result[0]["fit"]["left"]["regions"]}
    category = result[0]["category"]
    only = json.loads(footfit("match", str(passport), "--json", "--category", category, env=env).stdout)
    assert only and {r["category"] for r in only} == {category}


def test_tryon_by_label_and_by_sku(setup, footfit):
    env, passport, _ = setup
    best = json.loads(footfit("match", str(passport), "--json", "--top", "1", env=env).stdout)[0]
    fit = best["fit"]
    by_label = footfit("tryon", str(passport), "--model", str(fit["model_id"]), "--size", fit["size_label"],
                        "--json", env=env)
    assert by_label.returncode == 0, by_label.stderr
    tried = json.loads(by_label.stdout)
    assert tried["size"]["sku"] == fit["sku"] or fit["width"] != "standard"
    assert len(tried["left"]["clearance_mm"]) == len(tried["left"]["in_shoe"]) > 1000
    assert np.isfinite(tried["right"]["clearance_mm"]).all()
    by_sku = footfit("tryon", str(passport), "--model", best["model_code"], "--size", fit["sku"], env=env)
    assert by_sku.returncode == 0 and f"({fit['sku']})" in by_sku.stdout and "left :" in by_sku.stdout


def test_the_commands_say_what_is_wrong(setup, footfit, tmp_path):
    env, passport, folder = setup
    unknown_size = footfit("tryon", str(passport), "--model", "1", "--size", "99", env=env)
    assert unknown_size.returncode == 1 and "has no size '99'" in unknown_size.stderr
    unknown_model = footfit("tryon", str(passport), "--model", "NOPE", "--size", "42", env=env)
    assert unknown_model.returncode == 1 and "unknown model 'NOPE'" in unknown_model.stderr
    (tmp_path / "passport.json").write_text(passport.read_text())
    alone = footfit("match", str(tmp_path / "passport.json"), env=env)
    assert alone.returncode == 1 and "no left.ply beside it" in alone.stderr
    empty = dict(env, FOOTFIT_DATABASE_URL=f"sqlite:///{folder / 'empty.sqlite'}")
    no_catalogue = footfit("match", str(passport), env=empty)
    assert no_catalogue.returncode == 1 and "catalogue is empty" in no_catalogue.stderr
