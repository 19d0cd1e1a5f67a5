"""The examples in the public functions' docstrings run and print what they show."""

from __future__ import annotations

import doctest

import pytest

import aestetik as ae

PUBLIC = [(mod, name) for mod in (ae.pp, ae.tl, ae.pl, ae.datasets) for name in mod.__all__]


@pytest.mark.parametrize(("mod", "name"), PUBLIC, ids=[f"{m.__name__}.{n}" for m, n in PUBLIC])
def test_docstring_example(mod, name):
    func = getattr(mod, name)
    doc = func.__doc__ or ""
    for section in ("Parameters", "Returns", "Examples"):
        assert f"{section}\n    ----" in doc, f"{mod.__name__}.{name} has no {section} section"
    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(func, name, globs={}):
        runner.run(test)
    assert runner.failures == 0, f"{mod.__name__}.{name}: {runner.failures} example(s) failed"
    assert runner.tries > 0
