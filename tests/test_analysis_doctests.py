"""The examples in the docstrings of ``ecgedge.analysis`` run as written."""

from __future__ import annotations

import doctest
import importlib

import pytest

WITH_EXAMPLES = (
    "alarms",
    "atrial",
    "ec57",
    "fibrillation",
    "filters",
    "heart_rate",
    "judge",
    "noise",
    "rhythm",
    "rpeaks",
    "signal_quality",
)


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(f"ecgedge.analysis.{name}"))
    assert result.attempted > 0, f"ecgedge.analysis.{name} has no examples left"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in ecgedge.analysis.{name} failed"
