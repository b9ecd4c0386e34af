"""Which device a run uses: named when the run is configured, checked when a model is loaded.

Naming a device must not import torch: a run that the result store answers whole never loads a
model, and importing torch alone takes seconds (more on a GPU image). So `auto` asks torch only
when the installed torch build could see a GPU at all; an explicit `cuda` is checked for its form
here and for a GPU when the model is loaded (or, for a run that loads one, before its data).
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from pathlib import Path

from cmteb.errors import CmtebError

DEVICE_FORM = re.compile(r"cpu|cuda(:\d+)?")
#: What a Linux machine a GPU can run on has: NVIDIA's driver, WSL's GPU device, or ROCm's.
GPU_DRIVER_MARKERS = ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/dxg", "/dev/kfd")


def checked_form(device: str) -> str:
    """`device` when it names a device cmteb runs on; a one-line error otherwise."""
    if not DEVICE_FORM.fullmatch(device):
        raise CmtebError(f"unknown --device {device!r}: use cpu, cuda or cuda:N (cmteb runs on CPUs and NVIDIA GPUs)")
    return device


def name_device(device: str | None) -> str:
    """`device` as given (checked for its form, and a GPU refused at once where none can be: a CPU build of
    torch, or no NVIDIA driver), or for None/auto: cuda when torch sees a GPU, else cpu."""
    if device and device != "auto":
        if checked_form(device).startswith("cuda"):
            _refuse_gpu_where_none_can_be(device)
        return device
    if not torch_gpu_build():
        return "cpu"  # a CPU build of torch never sees a GPU: no need to import it
    return pick_device(None)


def _refuse_gpu_where_none_can_be(device: str) -> None:
    """A GPU asked for where torch cannot see one, told without importing torch (seconds)."""
    if not torch_gpu_build():
        raise CmtebError(f"--device {device} asked for a GPU, but the installed torch is a CPU build: use --device cpu")
    if sys.platform.startswith("linux") and not any(Path(marker).exists() for marker in GPU_DRIVER_MARKERS):
        raise CmtebError(f"--device {device} asked for a GPU, but this machine has no GPU driver: use --device cpu")


def pick_device(device: str | None) -> str:
    """`device` as given, checked against the GPUs torch sees, or cuda when a GPU is present, else cpu."""
    import torch

    if device and device != "auto":
        if checked_form(device).startswith("cuda") and not torch.cuda.is_available():
            raise CmtebError(f"--device {device} asked for a GPU but torch sees none: use --device cpu")
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def torch_gpu_build() -> bool:
    """Whether the installed torch was built for a GPU (CUDA or ROCm), read from its generated
    `torch/version.py` without importing torch; True when that cannot be told (then torch is asked)."""
    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        return True  # torch missing: let torch's own import error speak later
    return built_for_gpu(Path(spec.origin).parent / "version.py")


def built_for_gpu(version_file: Path) -> bool:
    """Whether a torch `version.py` names a CUDA or ROCm version; True when it cannot be read."""
    try:
        tree = ast.parse(Path(version_file).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return True
    built_for = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Constant)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name) and target.id in ("cuda", "hip")
    }
    return set(built_for) != {"cuda", "hip"} or any(v is not None for v in built_for.values())
