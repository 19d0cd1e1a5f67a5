"""Sphinx configuration. Build: ``sphinx-build -W -b html docs docs/_build/html`` (warnings are errors)."""

from __future__ import annotations

import os
from importlib.metadata import version as _version
from pathlib import Path

HERE = Path(__file__).resolve().parent
project = "aestetik"
author = "aestetik developers"
copyright = "2026, aestetik developers"
release = _version("aestetik")
version = release
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "sphinx_copybutton",
    "myst_nb",
]
autosummary_generate = True
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # types are in the numpy-style docstrings
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
myst_enable_extensions = ["colon_fence", "dollarmath"]
html_theme = "sphinx_book_theme"
html_title = "aestetik"
html_theme_options = {"repository_url": "https://github.com/aestetik/aestetik", "use_repository_button": True}
exclude_patterns = ["_build", "**.ipynb_checkpoints"]

# Notebooks (MyST markdown) run at every build; a failing cell fails the build.
nb_execution_mode = "force"
nb_execution_timeout = 1800
nb_execution_raise_on_error = True
nb_merge_streams = True
# The DLPFC tutorial reads a real slide; without it the page is built unexecuted.
DLPFC = Path(os.environ.get("AESTETIK_DLPFC", HERE.parents[1] / "shared" / "data" / "dlpfc_151673.h5ad"))
os.environ["AESTETIK_DLPFC"] = str(DLPFC)
nb_execution_excludepatterns = [] if DLPFC.exists() else ["tutorials/dlpfc.md"]
if not DLPFC.exists():
    print(f"[aestetik docs] {DLPFC} not found: tutorials/dlpfc.md is built without running it")

# Intersphinx needs the network; the offline build (CI here) leaves it out.
intersphinx_mapping = (
    {
        "python": ("https://docs.python.org/3", None),
        "anndata": ("https://anndata.readthedocs.io/en/stable/", None),
        "scanpy": ("https://scanpy.readthedocs.io/en/stable/", None),
        "lightning": ("https://lightning.ai/docs/pytorch/stable/", None),
    }
    if os.environ.get("AESTETIK_DOCS_ONLINE")
    else {}
)
nitpicky = False
suppress_warnings = ["mystnb.unknown_mime_type", "config.cache"]
