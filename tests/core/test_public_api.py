"""The package's public surface: ``__all__`` is sorted, complete and importable."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import types

import pytest

import radient_async as ra

CORE_MODULES = [
    "radient_async._protocol",
    "radient_async._endpoint",
    "radient_async._status",
    "radient_async._retry",
    "radient_async._polling",
    "radient_async._models",
    "radient_async._ratelimit",
    "radient_async._convert",
    "radient_async._paths",
    "radient_async._errors",
]


def isort_key(name: str) -> tuple[int, str]:
    """ruff's RUF022 order: SCREAMING_CASE constants, then CamelCase classes, then the rest."""
    if name.isupper() and len(name) > 1:
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


def public_names(module: types.ModuleType) -> set[str]:
    """Names the module defines or re-exports on purpose: no submodules, no future flags."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and type(value).__module__ != "__future__"
    }


def test_all_is_sorted_without_duplicates() -> None:
    assert ra.__all__ == sorted(ra.__all__, key=isort_key)
    assert len(set(ra.__all__)) == len(ra.__all__)
    assert all(isinstance(name, str) for name in ra.__all__)


def test_all_equals_the_public_names() -> None:
    assert set(ra.__all__) - {"__version__"} == public_names(ra)
    assert "__version__" in ra.__all__


def test_every_name_is_importable_and_defined() -> None:
    for name in ra.__all__:
        value = getattr(ra, name)
        assert value is not None, name
        assert getattr(importlib.import_module("radient_async"), name) is value


def test_version_is_a_string() -> None:
    assert isinstance(ra.__version__, str)
    assert ra.__version__.count(".") >= 1


def test_public_classes_and_functions_come_from_the_package() -> None:
    for name in ra.__all__:
        value = getattr(ra, name)
        if isinstance(value, (type, types.FunctionType)):
            assert value.__module__.startswith("radient_async"), name
            assert value.__doc__, f"{name} has no docstring"


def test_star_import_in_a_fresh_interpreter() -> None:
    code = (
        "import json, sys\n"
        "namespace = {}\n"
        "exec('from radient_async import *', namespace)\n"
        "import radient_async\n"
        "print(json.dumps({'star': sorted(k for k in namespace if k != '__builtins__'),"
        " 'all': sorted(radient_async.__all__)}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    names = json.loads(result.stdout)
    assert names["star"] == names["all"] == sorted(ra.__all__)


def test_importing_the_package_does_not_import_optional_extras() -> None:
    code = (
        "import sys, radient_async\n"
        "print(','.join(m for m in ('PIL', 'click', 'rich', 'tqdm', 'radient_async.server',"
        " 'radient_async.cli') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""


@pytest.mark.parametrize("module_name", CORE_MODULES)
def test_core_modules_export_what_they_define(module_name: str) -> None:
    module = importlib.import_module(module_name)
    exported = module.__all__
    assert exported == sorted(exported, key=isort_key)
    for name in exported:
        value = getattr(module, name)
        if isinstance(value, (type, types.FunctionType)):
            assert value.__module__ == module_name, f"{name} is re-exported, not defined here"
    assert module.__doc__
