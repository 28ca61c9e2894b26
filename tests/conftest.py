"""Shared fixtures: every core test runs on both backends."""
import importlib
import os

import pytest

BACKENDS = ("compiled", "python")


@pytest.fixture(params=BACKENDS)
def core(request):
    """The compiled core or its pure-Python twin (each test runs once with each)."""
    compiled = os.environ.get("HOTMEM_CORE_MODULE", "hotmem._core")  # tools/devbuild.py
    name = compiled if request.param == "compiled" else "hotmem._core_py"
    return importlib.import_module(name)


def compiled_core():
    """The compiled core module (or the dev build named by HOTMEM_CORE_MODULE)."""
    return importlib.import_module(os.environ.get("HOTMEM_CORE_MODULE", "hotmem._core"))


def python_core():
    return importlib.import_module("hotmem._core_py")
