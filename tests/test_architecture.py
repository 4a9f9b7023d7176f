"""The floor plan as a checked rule: import-linter's contracts (pyproject.toml [tool.importlinter]) and ruff's rules
(pyproject.toml [tool.ruff]) hold for the code, and the contracts fail on a deliberately wrong import."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    # `lint-imports` reads pyproject.toml in cwd and imports nothing: it reads the source (grimp).
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"})


def test_the_import_contracts_hold():
    proc = _lint_imports(ROOT)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "Contracts: 3 kept, 0 broken." in proc.stdout


LAYERS = "Layers follow the pipeline: each floor imports only the floors below it"
STREAMLIT = "The library never imports streamlit outside workbench/ui"
LOOPS = "No import loops between the modules of a package, nor between packages"


@pytest.mark.parametrize("module, line, broken", [
    ("workbench/db.py", "from workbench.review import queue  # noqa", LAYERS),  # the ground floor reaching up
    ("workbench/data/store.py", "import streamlit  # noqa", STREAMLIT),
    ("workbench/jobs/store.py", "from workbench.jobs import supervisor  # noqa", LOOPS),  # supervisor imports store
])
def test_a_wrong_import_breaks_a_contract(tmp_path, module, line, broken):
    copy = tmp_path / "repo"
    copy.mkdir()
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    shutil.copytree(ROOT / "workbench", copy / "workbench", ignore=shutil.ignore_patterns(
        "__pycache__", "demo_base"))
    target = copy / module
    target.write_text(target.read_text() + f"\n{line}\n")
    proc = _lint_imports(copy)
    assert proc.returncode != 0
    assert f"{broken} BROKEN" in proc.stdout, proc.stdout[-3000:]


def test_ruff_finds_nothing():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.fail("ruff is not installed: pip install -r requirements-test.txt")
    proc = subprocess.run([ruff, "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-4000:]


def test_every_package_the_library_imports_is_in_the_app_install():
    """`pip install -r requirements.txt` (the README's app command) must bring every third-party package that code
    under workbench/ imports, even inside a function: requirements-test.txt is not there for users."""
    import ast
    import importlib.metadata as md
    import re

    def names(path: Path) -> set[str]:
        text = path.read_text().splitlines()
        return {re.sub(r"[-_.]+", "-", re.split(r"[<>=;\[ ]", line.strip())[0]).lower() for line in text
                if line.strip() and not line.startswith(("#", "-"))}

    app = names(ROOT / "requirements.txt")
    dists = md.packages_distributions()
    stdlib = set(sys.stdlib_module_names)
    missing: dict[str, set[str]] = {}
    for path in (ROOT / "workbench").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            mods = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                    [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
            for mod in mods:
                top = mod.split(".")[0]
                if top in stdlib or top == "workbench":
                    continue
                wanted = {re.sub(r"[-_.]+", "-", d).lower() for d in dists.get(top, [top])}
                if not wanted & app:
                    missing.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    assert not missing, f"imported by workbench/ but not in requirements.txt: {missing}"
