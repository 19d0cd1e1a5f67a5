"""pyproject's dependencies against what the package's source imports (fast, no install)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "aestetik"

#: Declared runtime dependencies that the package needs without importing them itself.
USED_INDIRECTLY = {"scikit-misc": "scanpy's seurat_v3 highly variable genes in pp.transcriptomics"}
#: Import names whose distribution is not installed here (optional extras), mapped by hand.
NOT_INSTALLED = {"torchvision": "torchvision", "igraph": "igraph"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@cache
def _declared() -> dict[str, str]:
    """Normalised distribution name -> where pyproject declares it ("dependencies" or the extra)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    out = {_norm(Requirement(r).name): "dependencies" for r in project["dependencies"]}
    for extra, reqs in project.get("optional-dependencies", {}).items():
        for r in reqs:
            out.setdefault(_norm(Requirement(r).name), f"[{extra}]")
    return out


@cache
def _imports() -> dict[str, list[str]]:
    """Top-level third-party module -> the files of src/aestetik importing it (anywhere in the file)."""
    found: dict[str, set[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.partition(".")[0]
                if top not in sys.stdlib_module_names and top not in {"aestetik", "__future__"}:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return {k: sorted(v) for k, v in sorted(found.items())}


_packages_distributions = cache(packages_distributions)  # scans every installed distribution: once


def _distributions(module: str) -> list[str]:
    dists = _packages_distributions().get(module) or [NOT_INSTALLED.get(module, module)]
    return [_norm(d) for d in dists]


def test_source_imports_are_found():
    mods = _imports()
    for expected in ["anndata", "numpy", "torch", "lightning", "scanpy", "sklearn"]:
        assert expected in mods
    assert not {"os", "typing", "aestetik"} & set(mods)


def test_every_imported_module_is_declared():
    declared = _declared()
    missing = {
        module: files for module, files in _imports().items() if not any(d in declared for d in _distributions(module))
    }
    assert not missing, "imported by src/aestetik but not declared in pyproject.toml: " + "; ".join(
        f"{m} (distribution {'/'.join(_distributions(m))}, in {', '.join(f)})" for m, f in missing.items()
    )


def _unused_runtime_dependencies() -> list[str]:
    used = {d for module in _imports() for d in _distributions(module)}
    runtime = [d for d, where in _declared().items() if where == "dependencies"]
    return sorted(d for d in runtime if d not in used and d not in USED_INDIRECTLY)


def test_every_runtime_dependency_is_imported():
    unused = _unused_runtime_dependencies()
    assert not unused, (
        f"declared in [project].dependencies but imported nowhere in src/aestetik: {unused} "
        "(move them to an extra, or list them in USED_INDIRECTLY with the reason)"
    )


def test_indirect_dependencies_are_still_declared():
    declared = _declared()
    for dist in USED_INDIRECTLY:
        assert declared.get(dist) == "dependencies", dist
