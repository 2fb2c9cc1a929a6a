"""`footfit catalog ...` end to end: generate in the import format, import it as the operator's interior database
and as a tenant's assortment, list, show, stock."""

import json


def _tenant(footfit, name: str, *stores: str) -> None:
    assert footfit("tenants", "create", name)[0] == 0
    for store in stores:
        assert footfit("stores", "add", "--tenant", name, store)[0] == 0


def test_generate_import_list_show_stock(footfit, tmp_path):
    out = tmp_path / "gen"
    code, said, _ = footfit("catalog", "generate", "--models", "5", "--seed", "3", "--stores", "2", "--out", str(out))
    assert code == 0 and "5 models" in said
    truth = json.loads((out / "truth.json").read_text())
    products, interiors = str(out / "products.csv"), str(out / "interiors")
    code, said, _ = footfit("catalog", "import", products, "--interiors", interiors)
    assert code == 0 and "0 rejected" in said and "0 updated" in said
    assert "warning: products.csv: the column(s) price, currency, stock were not read" in said
    code, said, _ = footfit("catalog", "list")
    lines = said.strip().splitlines()
    assert code == 0 and len(lines) == len(truth) == 5
    assert {line.split()[1] for line in lines} == {t["model_code"] for t in truth}
    code, said, _ = footfit("catalog", "show", truth[0]["model_code"])
    assert code == 0 and "scanned" in said and "graded" in said
    code, _, err = footfit("catalog", "stock", "--store", "STORE-02")
    assert code == 1 and "no store 'STORE-02'" in err  # the operator's import stocks no store

    _tenant(footfit, "shop", "STORE-01", "STORE-02")
    code, said, _ = footfit("catalog", "import", products, "--tenant", "shop")
    assert code == 0 and "0 rejected; SKUs " in said and " stock quantities set" in said
    code, said, _ = footfit("catalog", "stock", "--store", "STORE-02")
    assert code == 0 and said.strip() and all(line.startswith("STORE-02") for line in said.strip().splitlines())
    code, _, err = footfit("catalog", "import", products, "--tenant", "shop", "--interiors", interiors)
    assert code == 1 and "--interiors with --tenant" in err
    for again in (("--interiors", interiors), ("--tenant", "shop")):
        code, said, _ = footfit("catalog", "import", products, *again)
        assert code == 0 and "0 created, 0 updated" in said


def test_generate_without_out_fills_the_database_and_errors_are_one_line(footfit, tmp_path):
    code, said, _ = footfit("catalog", "generate", "--models", "3", "--seed", "1")
    assert code == 0 and "0 rejected" in said
    assert len(footfit("catalog", "list")[1].strip().splitlines()) == 3
    _tenant(footfit, "shop", "STORE-01")
    code, said, _ = footfit("catalog", "generate", "--models", "4", "--seed", "2", "--stores", "1", "--tenant", "shop")
    assert code == 0 and said.count("0 rejected") == 2  # the interior database, and shop's assortment
    code, _, err = footfit("catalog", "generate", "--out", str(tmp_path), "--tenant", "shop")
    assert code == 1 and "--tenant with --out" in err
    code, _, err = footfit("catalog", "import", str(tmp_path / "none.csv"))
    assert code == 1 and err.startswith("footfit: no product file at")
    code, _, err = footfit("catalog", "stock", "--store", "NOWHERE")
    assert code == 1 and "no store 'NOWHERE'" in err
