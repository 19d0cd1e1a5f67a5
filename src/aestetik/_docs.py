"""Parameter descriptions shared by several docstrings, written once (as scanpy's ``_docs.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)

doc_table_key = """\
table_key
    For a ``spatialdata.SpatialData`` object: the table to read and write (as squidpy);
    a SpatialData object without it is a ``TypeError``."""

doc_table_key_plot = """\
table_key
    For a ``spatialdata.SpatialData`` object: the table to plot (as squidpy)."""

doc_copy = """\
copy
    Return a modified copy instead of writing to ``adata``."""


def inject_docs(**snippets: str) -> Callable[[F], F]:
    """Replace ``{name}`` in the decorated function's docstring by ``snippets[name]``.

    Only the given names are replaced (docstrings hold other braces, e.g. ``f"{key}_genes"``);
    every line of a snippet after its first is indented like the placeholder.
    """

    def decorate(func: F) -> F:
        doc = func.__doc__ or ""
        for name, text in snippets.items():
            token = "{" + name + "}"
            if token not in doc:
                raise ValueError(f"{func.__name__}'s docstring has no {token}")
            line_start = doc.rfind("\n", 0, doc.index(token)) + 1
            indent = doc[line_start : doc.index(token)]
            doc = doc.replace(token, text.replace("\n", "\n" + indent))
        func.__doc__ = doc
        return func

    return decorate
