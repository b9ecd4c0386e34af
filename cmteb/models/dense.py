"""A sentence-transformers Dense module (a linear layer and its activation), run after pooling as
sentence-transformers runs it. Its folder holds `config.json` (`in_features`, `out_features`, `bias`,
`activation_function` as a dotted class path) and its weights (`model.safetensors` or
`pytorch_model.bin`, keys `linear.weight` and `linear.bias`)."""

from __future__ import annotations

import importlib
import json

import torch

from cmteb.errors import CmtebError
from cmteb.models.sources import ModelSource

#: Only torch's own activation modules are built from a config's dotted path (never arbitrary code).
ACTIVATION_MODULES = ("torch.nn.modules.", "torch.nn.")


class DenseLayer(torch.nn.Module):
    """`activation(linear(x))`, computed in fp32."""

    def __init__(self, linear: torch.nn.Linear, activation: torch.nn.Module) -> None:
        super().__init__()
        self.linear, self.activation = linear, activation

    @property
    def out_features(self) -> int:
        """Width of the output."""
        return self.linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The layer's output for pooled embeddings `x`."""
        return self.activation(self.linear(x.float()))


def _activation(path: str, where: str) -> torch.nn.Module:
    module_name, _, class_name = path.rpartition(".")
    if not path.startswith(ACTIVATION_MODULES):
        raise CmtebError(f"{where}: activation {path!r} is not one of torch's modules; cmteb runs no other code")
    return getattr(importlib.import_module(module_name), class_name)()


def load_dense(source: ModelSource, folder: str, device: str) -> DenseLayer:
    """The Dense module in `folder` of the model, in fp32 on `device`."""
    root = source.local_dir / folder if source.local_dir else None
    if root is None or not (root / "config.json").is_file():
        raise CmtebError(f"model {source.name}: its Dense module {folder} has no config.json: download it whole")
    config = json.loads((root / "config.json").read_text(encoding="utf-8"))
    linear = torch.nn.Linear(config["in_features"], config["out_features"], bias=config.get("bias", True))
    if (root / "model.safetensors").is_file():
        from safetensors.torch import load_file

        weights = load_file(str(root / "model.safetensors"))
    elif (root / "pytorch_model.bin").is_file():
        weights = torch.load(root / "pytorch_model.bin", map_location="cpu", weights_only=True)
    else:
        raise CmtebError(f"model {source.name}: its Dense module {folder} has no weights: download it whole")
    linear.load_state_dict({k.removeprefix("linear."): v.float() for k, v in weights.items()})
    activation = _activation(config.get("activation_function", "torch.nn.modules.linear.Identity"), str(root))
    return DenseLayer(linear, activation).to(device).eval()
