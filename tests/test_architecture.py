"""Architecture rules, checked on every run (contracts in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_hold() -> None:
    """The indicator maths imports no I/O library; the domain imports no application."""
    lint_imports = shutil.which("lint-imports")
    assert lint_imports, "import-linter is part of the dev extra"
    result = subprocess.run([lint_imports], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_no_generic_top_level_names_are_installed() -> None:
    """Everything installs under the single `microville` namespace."""
    import importlib.util

    for generic in ("gateway", "service", "domain", "firmware_sim", "app", "stores"):
        assert importlib.util.find_spec(generic) is None, f"'{generic}' is importable"
