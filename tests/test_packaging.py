"""The package as a user installs it: the built wheel, not this checkout."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import aestetik

ROOT = Path(__file__).resolve().parents[1]

_IMPORT_ALL = """
import importlib, pkgutil, sys
import aestetik
names = [m.name for m in pkgutil.walk_packages(aestetik.__path__, "aestetik.")]
for name in names:
    importlib.import_module(name)
print(aestetik.__version__, aestetik.__file__, len(names))
"""


def _run(cmd: list[str], *, cwd: Path, timeout: float, env: dict[str, str] | None = None) -> str:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    took = time.perf_counter() - t0
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({took:.0f} s):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    print(f"[{took:6.1f} s] {' '.join(cmd)}")
    return proc.stdout


def test_version_in_one_place():
    """__version__ is the only version; hatch reads it, CITATION.cff repeats it."""
    init = (ROOT / "src" / "aestetik" / "__init__.py").read_text()
    assert re.search(rf'^__version__ = "{re.escape(aestetik.__version__)}"$', init, re.M)
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject and 'path = "src/aestetik/__init__.py"' in pyproject
    assert not re.search(r"^version\s*=", pyproject, re.M)
    cff = re.search(r"^version: (\S+)$", (ROOT / "CITATION.cff").read_text(), re.M)
    assert cff and cff.group(1) == aestetik.__version__, "CITATION.cff's version differs from __version__"


@pytest.mark.slow
def test_wheel_installs_imports_and_runs_the_demo(tmp_path):
    """Build the wheel, install it (not editable) in a fresh venv as the README's quick start
    does, import every module and run the demo. Needs the package registries; a few minutes."""
    dist = tmp_path / "dist"
    if importlib.util.find_spec("build") is not None:
        _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist)], cwd=ROOT, timeout=900)
    else:
        _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(dist), "."], cwd=ROOT, timeout=900)
    wheels = list(dist.glob("aestetik-*.whl"))
    assert len(wheels) == 1, wheels
    assert wheels[0].name.startswith(f"aestetik-{aestetik.__version__}-py3-none-any"), wheels[0].name

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path, timeout=300)
    python = str(venv / "bin" / "python")
    _run([python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"], cwd=tmp_path, timeout=600)
    # README, quick start: the torch pin first, so that pip takes the CPU build and no CUDA one
    _run([python, "-m", "pip", "install", "--quiet", "torch==2.13.0", str(wheels[0])], cwd=tmp_path, timeout=1800)

    env = {**os.environ, "MPLBACKEND": "agg", "PYTHONPATH": ""}
    version, location, n_modules = _run([python, "-c", _IMPORT_ALL], cwd=tmp_path, timeout=600, env=env).split()
    assert version == aestetik.__version__
    assert Path(location).is_relative_to(venv), f"imported {location}, not the installed wheel"
    assert "site-packages" in location
    assert int(n_modules) >= 10

    assert _run([str(venv / "bin" / "aestetik"), "--version"], cwd=tmp_path, timeout=300, env=env).strip() == (
        f"aestetik {aestetik.__version__}"
    )
    out_dir = tmp_path / "demo"
    cmd = [python, "-m", "aestetik", "demo", "--max-epochs", "2", "--n-spots", "200", "--out", str(out_dir)]
    out = _run(cmd, cwd=tmp_path, timeout=900, env=env)
    assert "ARI aestetik_clusters" in out
    for name in ["aestetik_demo.png", "aestetik_loss.png", "aestetik_demo.h5ad"]:
        assert (out_dir / name).stat().st_size > 0, name
