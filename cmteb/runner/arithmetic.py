"""The arithmetic a run computed with, named in its run record: `cmteb compare` lists what differs.

Two machines give the same model's embeddings with different last bits: torch dispatches its CPU kernels
by ISA level (default, AVX2, AVX-512), MKL and oneDNN pick their GEMM code paths by CPU, a GPU's kernels
differ by card, driver and library. A classifier fit or an 18-text clustering can turn such bits into
points. The record names each of these, and the versions of every package that computes a score, so a
difference between two runs can be traced to what changed.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from typing import Any

from cmteb.results.files import package_versions

#: Packages whose code computes embeddings or scores.
ARITHMETIC_PACKAGES = (
    "torch",
    "transformers",
    "tokenizers",
    "sentence-transformers",
    "scikit-learn",
    "scipy",
    "numpy",
    "mteb",
    "pytrec-eval-terrier",
)
#: Environment variables that narrow or change the CPU arithmetic (ISA caps, reproducibility modes, threads).
ARITHMETIC_VARIABLES = (
    "ATEN_CPU_CAPABILITY",
    "ONEDNN_MAX_CPU_ISA",
    "MKL_ENABLE_INSTRUCTIONS",
    "MKL_CBWR",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
)
#: CPU flags that decide which kernels run (the rest of /proc/cpuinfo's list does not change a float).
ISA_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16")


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what the platform module says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    """The ISA_FLAGS this CPU has (Linux only; elsewhere empty)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("flags"):
                    present = set(line.split(":", 1)[1].split())
                    return [flag for flag in ISA_FLAGS if flag in present]
    except OSError:
        pass
    return []


def _library_versions(torch: Any) -> dict[str, str | None]:
    """MKL's and oneDNN's versions, as torch's build configuration names them."""
    shown = torch.__config__.show()
    mkl = re.search(r"Math Kernel Library Version ([\w.\-]+)", shown)
    onednn = re.search(r"MKL-DNN v([\w.]+)", shown)
    return {"mkl": mkl.group(1) if mkl else None, "onednn": onednn.group(1) if onednn else None}


def _gpu(torch: Any, device: str) -> dict[str, Any] | None:
    """The card, driver and CUDA/cuDNN versions of a run on a GPU; None on a CPU."""
    if not device.startswith("cuda") or not torch.cuda.is_available():
        return None
    index = torch.device(device).index or 0
    return {
        "name": torch.cuda.get_device_name(index),
        "capability": ".".join(map(str, torch.cuda.get_device_capability(index))),
        "driver": _nvidia_driver(),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
    }


def _nvidia_driver() -> str | None:
    """The NVIDIA driver version (torch does not expose it), or None when nvidia-smi is absent."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else None


def blas_threads() -> int | None:
    """The thread count of the BLAS libraries this process has loaded, or None when none is.

    scikit-learn's fits in mteb's classification (LogisticRegression, lbfgs) come out different in their
    last digits with a different count: on the same embeddings, TNews' experiments moved in the fifth
    decimal between one and two OpenBLAS threads.
    """
    from threadpoolctl import threadpool_info

    counts = [lib["num_threads"] for lib in threadpool_info() if lib.get("user_api") == "blas"]
    return max(counts) if counts else None


def arithmetic_record(device: str) -> dict[str, Any]:
    """What the run's numbers were computed with: CPU, torch's ISA level, MKL/oneDNN, threads, GPU, packages."""
    import torch

    cpu = {
        "model": cpu_model(),
        "flags": cpu_flags(),
        "torch_capability": torch.backends.cpu.get_cpu_capability(),
        **_library_versions(torch),
        "torch_threads": torch.get_num_threads(),
        "blas_threads": blas_threads(),
        "environment": {k: os.environ[k] for k in ARITHMETIC_VARIABLES if k in os.environ},
    }
    return {"cpu": cpu, "gpu": _gpu(torch, device), "packages": package_versions(ARITHMETIC_PACKAGES)}
