"""Architecture rules, checked on every run (contracts in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys
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
    """Everything installs under the single `microville` namespace.

    What is *installed*, not what is importable: under ``python -m pytest`` the repo
    root is on ``sys.path``, where ``gateway/`` and ``service/`` are plain folders (and
    the root's egg-info a distribution), so the root is left out of the search.
    """
    import importlib.machinery
    import importlib.metadata

    path = [p for p in sys.path if Path(p or ".").resolve() != ROOT]
    generics = ("gateway", "service", "domain", "firmware_sim", "app", "stores")
    for generic in generics:
        spec = importlib.machinery.PathFinder.find_spec(generic, path)
        assert spec is None, (
            f"'{generic}' is installed at {spec.origin or spec.submodule_search_locations}"
        )
    (dist,) = [
        d for d in importlib.metadata.distributions(path=path) if d.name == "microville-monitor"
    ]
    assert (dist.read_text("top_level.txt") or "microville").split() == ["microville"]
    assert importlib.machinery.PathFinder.find_spec("microville", path) is not None
