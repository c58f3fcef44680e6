"""The stack tests start the whole production shape (docker/stack.py) and take minutes: they run
only when asked for by marker (``pytest -m stack``), which CI does once (.ci/run)."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

import pytest

from tests.fixtures.processes import ROOT


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "stack" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="the production-shape stack runs with `pytest -m stack`")
    for item in items:
        if item.get_closest_marker("stack") is not None:
            item.add_marker(skip)


def load_stack_module() -> ModuleType:
    """docker/stack.py, the script `make stack` runs (docker/ is no package)."""
    name = "gateway_stack"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "docker" / "stack.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
