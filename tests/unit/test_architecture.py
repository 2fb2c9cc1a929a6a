"""The import rule (docs/architecture.md), checked by import-linter's contracts in pyproject.toml: layers import
only downward, no package forms a cycle with its siblings, the product never imports the simulator or test
support. A second test shows the contracts catch an upward import and a cycle."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(project: Path, config: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo", str(config)], cwd=project,
                          capture_output=True, text=True, env={"PYTHONPATH": str(project), "PATH": "/usr/bin:/bin"})


def test_the_repository_keeps_every_import_contract():
    result = lint_imports(ROOT, ROOT / "pyproject.toml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_contracts_catch_an_upward_import_and_a_cycle(tmp_path):
    """The same contracts on a copy of the package skeleton with two bad imports added."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    for package in config["root_packages"]:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    for sub in ("scan", "fit"):
        (tmp_path / "fitcore" / sub).mkdir()
        (tmp_path / "fitcore" / sub / "__init__.py").write_text("")
    (tmp_path / "simulator" / "catalog.py").write_text("")
    (tmp_path / "shoe_db" / "product_file.py").write_text("")
    (tmp_path / "core" / "settings.py").write_text("import device.rig\n")  # upward
    (tmp_path / "device" / "rig.py").write_text("")
    (tmp_path / "api" / "a.py").write_text("import api.b\n")  # a cycle between siblings
    (tmp_path / "api" / "b.py").write_text("import api.a\n")
    contracts = "\n".join(_contract_toml(c) for c in config["contracts"])
    roots = ", ".join(f'"{p}"' for p in config["root_packages"])
    (tmp_path / "contracts.toml").write_text(f"[tool.importlinter]\nroot_packages = [{roots}]\n\n{contracts}")
    result = lint_imports(tmp_path, tmp_path / "contracts.toml")
    assert result.returncode != 0
    assert "Product layers import only downward BROKEN" in result.stdout
    assert "core.settings -> device.rig" in result.stdout
    assert "No package forms an import cycle with its siblings BROKEN" in result.stdout


def _contract_toml(contract: dict) -> str:
    lines = ["[[tool.importlinter.contracts]]"]
    for key, value in contract.items():
        if key == "ignore_imports":
            value = []  # the ignored import's modules are stubs here; an unmatched ignore is an error
        lines.append(f"{key} = {json.dumps(value)}")  # JSON strings and lists are TOML too
    return "\n".join(lines) + "\n"
