"""Every public name has a docstring with an example, and the examples that run here are right."""

from __future__ import annotations

import doctest
import inspect

import pytest

import edgekit

PUBLIC = [n for n in edgekit.__all__ if n != "__version__"]


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_has_an_example(name: str) -> None:
    doc = inspect.getdoc(getattr(edgekit, name)) or ""
    assert doc and ">>>" in doc, f"edgekit.{name} has no docstring example"


@pytest.mark.parametrize("name", PUBLIC)
def test_the_examples_run(name: str) -> None:
    obj = getattr(edgekit, name)
    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in finder.find(obj, name, globs={"edgekit": edgekit}):
        runner.run(test)
    assert runner.failures == 0, f"edgekit.{name}: {runner.failures} example(s) failed"
