"""Sphinx configuration (the full documentation is built in a later step)."""

from importlib.metadata import version

project = "aestetik"
author = "aestetik developers"
release = version("aestetik")
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "myst_nb",
]
autosummary_generate = True
autodoc_member_order = "bysource"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
nb_execution_mode = "off"
html_theme = "sphinx_book_theme"
html_title = "aestetik"
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "anndata": ("https://anndata.readthedocs.io/en/stable/", None),
    "lightning": ("https://lightning.ai/docs/pytorch/stable/", None),
}
exclude_patterns = ["_build"]
