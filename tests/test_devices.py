"""Naming the device: `auto` is told from torch's build without importing torch; forms are checked."""

from __future__ import annotations

import pytest

from cmteb.errors import CmtebError
from cmteb.models.devices import built_for_gpu, name_device, torch_gpu_build

CPU_BUILD = (
    "from typing import Optional\n__version__ = '2.13.0+cpu'\ncuda: Optional[str] = None\nhip: Optional[str] = None\n"
)


@pytest.mark.parametrize(
    ("text", "gpu"),
    [
        (CPU_BUILD, False),
        (CPU_BUILD.replace("cuda: Optional[str] = None", "cuda: Optional[str] = '13.0'"), True),
        (CPU_BUILD.replace("hip: Optional[str] = None", "hip: Optional[str] = '6.4'"), True),
        ("cuda = None\nhip = None\n", False),
        ("__version__ = '9.9'\n", True),  # a layout not understood: torch is asked
        ("cuda = (\n", True),
    ],
    ids=["cpu", "cuda", "rocm", "plain-assign", "unknown-layout", "unreadable"],
)
def test_a_torch_build_is_told_from_its_version_file(text, gpu, tmp_path):
    version = tmp_path / "version.py"
    version.write_text(text)
    assert built_for_gpu(version) is gpu


def test_the_installed_torch_is_told_as_torch_itself_tells_it():
    import torch

    assert torch_gpu_build() is (torch.version.cuda is not None or torch.version.hip is not None)
    assert built_for_gpu(torch.__file__.replace("__init__.py", "missing.py")) is True


def test_auto_names_what_torch_sees_and_a_bad_form_is_refused(monkeypatch, tmp_path):
    import torch

    from cmteb.models import devices

    assert name_device(None) == name_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    # Where a GPU can be (a GPU build of torch, a driver), naming one checks its form only: torch is asked for
    # the GPU when a model is loaded.
    (tmp_path / "nvidiactl").touch()
    monkeypatch.setattr(devices, "torch_gpu_build", lambda: True)
    monkeypatch.setattr(devices, "GPU_DRIVER_MARKERS", (str(tmp_path / "nvidiactl"),))
    assert name_device("cuda:1") == "cuda:1"
    with pytest.raises(CmtebError, match="unknown --device 'gpu'"):
        name_device("gpu")
