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
html_title = f"aestetik {release}"  # the version, on every page
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

# Intersphinx needs the network; the offline build (CI here) leaves it out. GitHub's docs
# workflow sets AESTETIK_DOCS_ONLINE, Read the Docs sets READTHEDOCS.
intersphinx_mapping = (
    {
        "python": ("https://docs.python.org/3", None),
        "anndata": ("https://anndata.readthedocs.io/en/stable/", None),
        "scanpy": ("https://scanpy.readthedocs.io/en/stable/", None),
        "lightning": ("https://lightning.ai/docs/pytorch/stable/", None),
    }
    if os.environ.get("AESTETIK_DOCS_ONLINE") or os.environ.get("READTHEDOCS")
    else {}
)
nitpicky = False
suppress_warnings = ["mystnb.unknown_mime_type", "config.cache"]

# The notebooks' kernels inherit this environment. Warnings that third-party packages raise
# at import, before a tutorial's ``warnings.filterwarnings`` runs, would otherwise be printed
# into the pages with this machine's absolute paths: tqdm's "IProgress not found" (no
# ipywidgets in the kernel), docrep's "... is not a valid key!" (squidpy's docstrings) and
# torch's FutureWarning on the LeafSpec that lightning builds (the front page's training).
# (PYTHONWARNINGS is comma-separated: a message with a comma cannot be matched in full.)
_QUIET = [
    "ignore:IProgress not found:Warning",
    "ignore::SyntaxWarning:docrep.decorators",
    "ignore::FutureWarning:lightning.pytorch.utilities._pytree",
]
_filters = [f for f in os.environ.get("PYTHONWARNINGS", "").split(",") if f]
os.environ["PYTHONWARNINGS"] = ",".join(_filters + [f for f in _QUIET if f not in _filters])


def _kernel_language(app, docname: str, source: list[str]) -> None:
    """Give a MyST notebook's kernelspec ``language: python`` when it has none.

    myst-nb takes the lexer of the code cells from the kernel's ``language_info``, which
    only exists after execution; a page built without running it (the DLPFC tutorial
    without its data) falls back to ``kernelspec.language``, absent from our front matter,
    and warns "No source code lexer found" per cell, an error under ``-W``. (The added
    line shifts the line numbers in that page's messages by one.)
    """
    text = source[0]
    end = text.find("\n---", 3) if text.startswith("---\n") else -1
    if end < 0 or "\nkernelspec:\n" not in text[:end] or "\n  language:" in text[:end]:
        return
    source[0] = text.replace("\nkernelspec:\n", "\nkernelspec:\n  language: python\n", 1)


def setup(app):
    app.connect("source-read", _kernel_language)
