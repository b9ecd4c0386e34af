"""The mteb internals cmteb relies on (all in cmteb.mteb_hooks) still exist with the arguments used.

When mteb is upgraded and this fails, the message names the method that moved or changed."""

from __future__ import annotations

import importlib
import inspect

import pytest

from cmteb.mteb_hooks import USED_INTERNALS


@pytest.mark.parametrize(
    ("path", "method", "arguments"), USED_INTERNALS, ids=[f"{p}.{m}" for p, m, _ in USED_INTERNALS]
)
def test_mteb_internal_still_exists(path, method, arguments):
    module, cls = path.rsplit(".", 1)
    owner = getattr(importlib.import_module(module), cls, None)
    assert owner is not None, f"mteb no longer has {path}: update cmteb/mteb_hooks.py"
    assert hasattr(owner, method), f"mteb's {cls} no longer has {method}: update cmteb/mteb_hooks.py"
    parameters = inspect.signature(getattr(owner, method)).parameters
    missing = [a for a in arguments if a not in parameters]
    assert not missing, f"mteb's {cls}.{method} lost the arguments {missing}: update cmteb/mteb_hooks.py"
