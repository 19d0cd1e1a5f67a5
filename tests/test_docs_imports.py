"""Every ``aestetik`` name the docs and benchmarks import exists.

The docs are executed only by the docs build (minutes) and the benchmarks only by hand, so a
renamed or removed function would otherwise break them unnoticed by the default suite.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Run in the reference implementation's own environment, where ``aestetik`` is version 0.3.1.
OTHER_PACKAGE = {"benchmarks/_run_reference.py"}
CELL = re.compile(r"```\{code-cell\}[^\n]*\n(.*?)```", re.S)


def _sources() -> list[Path]:
    files = sorted((ROOT / "docs").rglob("*.py")) + sorted((ROOT / "docs").rglob("*.md"))
    files += sorted((ROOT / "benchmarks").rglob("*.py"))
    return [
        f
        for f in files
        if "generated" not in f.parts and "_build" not in f.parts and str(f.relative_to(ROOT)) not in OTHER_PACKAGE
    ]


def _code(path: Path) -> str:
    text = path.read_text()
    if path.suffix == ".md":
        cells = ["\n".join(l for l in c.splitlines() if not l.startswith((":", "%", "!"))) for c in CELL.findall(text)]
        return "\n".join(cells)
    return text


def _imports(path: Path) -> list[tuple[str, str | None]]:
    found = []
    for node in ast.walk(ast.parse(_code(path), filename=str(path))):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.split(".")[0] == "aestetik"
            and node.level == 0
        ):
            found += [(node.module, a.name) for a in node.names]
        elif isinstance(node, ast.Import):
            found += [(a.name, None) for a in node.names if a.name.split(".")[0] == "aestetik"]
    return found


SOURCES = _sources()


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(ROOT)) for p in SOURCES])
def test_imported_names_exist(path):
    for module, name in _imports(path):
        mod = importlib.import_module(module)
        if name is not None and name != "*":
            assert hasattr(mod, name) or importlib.util.find_spec(f"{module}.{name}") is not None, (
                f"{path.relative_to(ROOT)} imports {name} from {module}, which has no such name"
            )
