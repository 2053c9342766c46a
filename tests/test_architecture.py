"""Architecture rules, checked on every run (contracts in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_hold() -> None:
    """The import-linter contracts hold: pure indicator maths, layers, use cases on ports."""
    lint_imports = shutil.which("lint-imports")
    assert lint_imports, "import-linter is part of the dev extra"
    result = subprocess.run([lint_imports], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


#: The top-level packages: each is the folder of the same name (folder = import path).
PACKAGES = ("microville", "domain", "stores", "gateway", "service", "firmware_sim", "cli", "bench")


def test_each_package_is_the_folder_of_its_name() -> None:
    """`import gateway.sources.mqtt.source` is `gateway/sources/mqtt/source.py`: nothing mapped
    by hand."""
    import importlib

    for name in PACKAGES:
        module = importlib.import_module(name)
        assert module.__file__, name
        assert Path(module.__file__).resolve() == ROOT / name / "__init__.py", name
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert "package-dir" not in pyproject, "a package mapped away from its folder"


def test_the_top_level_names_are_ours_alone() -> None:
    """The wheel installs exactly these top-level packages, and no other distribution in
    the environment ships one of the same name (an application in its own environment or
    image, not a library: the short names are safe only while nothing else claims them)."""
    import importlib.metadata

    found = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    assert found == set(PACKAGES), "a top-level package folder not listed (or listed, gone)"
    include = _find_include()
    assert set(include) == {n for name in PACKAGES for n in (name, f"{name}.*")}
    owners = importlib.metadata.packages_distributions()
    for name in PACKAGES:
        others = set(owners.get(name, [])) - {"microville-monitor"}
        assert not others, f"{others} also install a top-level '{name}'"
    assert "microville-monitor" in owners.get("microville", [])


def _find_include() -> list[str]:
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return list(config["tool"]["setuptools"]["packages"]["find"]["include"])


#: Folders of tests/ that mirror no product folder.
TEST_ONLY = {"helpers", "e2e", "fixtures", "__pycache__"}


def test_the_tests_mirror_the_tree() -> None:
    """tests/<folder>/ tests the product folder of the same path; fixtures beside them."""
    tests = ROOT / "tests"
    for folder in sorted(p for p in tests.rglob("*") if p.is_dir()):
        parts = folder.relative_to(tests).parts
        if TEST_ONLY & set(parts):
            continue
        # tests/gateway/<type>/ tests the source plugin gateway/sources/<type>/.
        mirrored = ROOT / Path(*parts)
        plugin = ROOT / "gateway" / "sources" / Path(*parts[1:]) if parts[0] == "gateway" else None
        assert mirrored.is_dir() or (plugin is not None and plugin.is_dir()), (
            f"tests/{'/'.join(parts)}: no such product folder"
        )
    assert not list(tests.glob("test_*.py")) or {p.name for p in tests.glob("test_*.py")} <= {
        "test_architecture.py",
        "test_docs_links.py",
    }, "a test at the root of tests/ that belongs in a folder"


def test_no_test_module_imports_another() -> None:
    """What tests share lives in tests/helpers/, not in another test module."""
    import ast

    for path in (ROOT / "tests").rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                assert not name.split(".")[-1].startswith("test_"), f"{path}: imports {name}"


def named_paths(markdown: str) -> list[str]:
    """The repository paths a page names in code spans (`gateway/sources/`,
    `stores/influx.py`), outside code blocks."""
    import re

    prose = re.sub(r"```.*?```", "", markdown, flags=re.S)
    tops = {*PACKAGES, "dashboards", "deploy", "tests", "docs", "config"}
    return [
        span.rstrip("/")
        for span in re.findall(r"`([a-z_]+/[\w./-]*)`", prose)
        if span.split("/")[0] in tops and "*" not in span and "{" not in span
    ]


def test_every_folder_and_file_the_architecture_names_exists() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    paths = named_paths(page)
    assert len(paths) > 20, "the page names the folders it describes"
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert not missing, f"docs/architecture.md names what does not exist: {missing}"
    owned = {line.split("`")[1].rstrip("/") for line in page.splitlines() if line.startswith("| `")}
    product = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    assert product <= owned, f"packages missing from the table: {sorted(product - owned)}"


def test_a_named_path_that_does_not_exist_is_caught() -> None:
    assert named_paths("see `gateway/nowhere/` and `stores/influx.py`") == [
        "gateway/nowhere",
        "stores/influx.py",
    ]


#: Paths the docs name that a run makes (git-ignored), not the repository.
GENERATED = ("bench/results", "bench/var")


def test_every_repository_path_the_docs_name_exists() -> None:
    """README, docs/ and the plugins' READMEs name files as they are after each move."""
    pages = [ROOT / "README.md", *ROOT.glob("docs/**/*.md"), *ROOT.glob("gateway/**/README.md")]
    missing = {
        str(page.relative_to(ROOT)): gone
        for page in pages
        if (
            gone := [
                p
                for p in named_paths(page.read_text(encoding="utf-8"))
                if not p.startswith(GENERATED) and not (ROOT / p).exists()
            ]
        )
    }
    assert not missing, missing
