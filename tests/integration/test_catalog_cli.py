"""`footfit catalog ...` end to end: generate in the import format, import it, list, show, stock."""

import json

import pytest

from cli.main import main
from core.settings import get_settings


@pytest.fixture
def footfit(database_url, monkeypatch, capsys):
    monkeypatch.setenv("FOOTFIT_DATABASE_URL", database_url)
    get_settings.cache_clear()

    def run(*args):
        code = main(["catalog", *args])
        out, err = capsys.readouterr()
        return code, out, err

    yield run
    get_settings.cache_clear()


def test_generate_import_list_show_stock(footfit, tmp_path):
    out = tmp_path / "gen"
    code, said, _ = footfit("generate", "--models", "5", "--seed", "3", "--stores", "2", "--out", str(out))
    assert code == 0 and "5 models" in said
    truth = json.loads((out / "truth.json").read_text())
    code, said, _ = footfit("import", str(out / "products.csv"), "--interiors", str(out / "interiors"))
    assert code == 0 and "0 rejected" in said and "0 updated" in said
    code, said, _ = footfit("list")
    lines = said.strip().splitlines()
    assert code == 0 and len(lines) == len(truth) == 5
    assert {line.split()[1] for line in lines} == {t["model_code"] for t in truth}
    code, said, _ = footfit("show", truth[0]["model_code"])
    assert code == 0 and "scanned" in said and "graded" in said
    code, said, _ = footfit("stock", "--store", "STORE-02")
    assert code == 0 and all(line.startswith("STORE-02") for line in said.strip().splitlines())
    code, said, _ = footfit("import", str(out / "products.csv"), "--interiors", str(out / "interiors"))
    assert code == 0 and "0 created, 0 updated" in said


def test_generate_without_out_fills_the_database_and_errors_are_one_line(footfit, tmp_path):
    code, said, _ = footfit("generate", "--models", "3", "--seed", "1")
    assert code == 0 and "0 rejected" in said
    assert len(footfit("list")[1].strip().splitlines()) == 3
    code, _, err = footfit("import", str(tmp_path / "none.csv"))
    assert code == 1 and err.startswith("footfit: no product file at")
    code, _, err = footfit("stock", "--store", "NOWHERE")
    assert code == 1 and "no store 'NOWHERE'" in err
