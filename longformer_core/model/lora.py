"""Low-rank adapters (LoRA) for BERT-style and Longformer encoders, small enough to ship in assets/.

The embedded QA head is a LoRA adapter over the shipped MiniLM weights plus a span head. The same
adapter applies to the Longformer and to the 512-token MiniLM baseline because both name their layers
`encoder.layer.N.attention.self.query`, ...; in a Longformer the global projections (which the
conversion copied from the local ones) share the local projection's adapter.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

DEFAULT_TARGETS = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
)
TIED_GLOBAL = {"query": "query_global", "key": "key_global", "value": "value_global"}


@dataclass(frozen=True)
class LoraConfig:
    rank: int = 16  # adapter rank r: delta W = B @ A with A (r, in), B (out, r)
    alpha: float = 32.0  # delta is scaled by alpha / rank
    targets: tuple[str, ...] = DEFAULT_TARGETS  # module-name suffixes under each encoder layer

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    def to_dict(self) -> dict:
        return asdict(self)


class LoRALinear(nn.Module):
    """y = base(x) + scale * x A^T B^T; the base Linear stays frozen."""

    def __init__(self, base: nn.Linear, rank: int, scale: float, shared: LoRALinear | None = None) -> None:
        super().__init__()
        self.base = base
        self.scale = scale
        if shared is not None:  # a Longformer global projection reuses its local projection's adapter
            self.lora_a, self.lora_b = shared.lora_a, shared.lora_b
        else:
            self.lora_a = nn.Parameter(torch.empty(rank, base.in_features))
            self.lora_b = nn.Parameter(
                torch.zeros(base.out_features, rank)
            )  # zero: training starts at the base
            nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))

    @property
    def weight(self) -> torch.Tensor:  # HF code sometimes reads .weight of a projection
        return self.base.weight

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_a.T @ self.lora_b.T) * self.scale

    def delta(self) -> torch.Tensor:
        return (self.lora_b @ self.lora_a) * self.scale  # (out, in)


def _encoder_of(model: nn.Module) -> nn.Module:
    return getattr(model, getattr(model, "base_model_prefix", ""), model)


def _layer_linears(encoder: nn.Module, targets: tuple[str, ...]) -> dict[str, nn.Linear]:
    """{"encoder.layer.N.<target>": Linear} for every target in every layer (names relative to the encoder)."""
    found = {}
    for name, module in encoder.named_modules():
        if isinstance(module, nn.Linear) and name.startswith("encoder.layer."):
            tail = name.split(".", 3)[
                3
            ]  # exact names: "output.dense" must not match "attention.output.dense"
            if tail in targets:
                found[name] = module
    return found


def _set_module(root: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent), child, module)


def add_lora(model: nn.Module, config: LoraConfig) -> dict[str, LoRALinear]:
    """Wrap the target Linears of the model's encoder in place; freeze everything else in the encoder.

    Returns:
        {name relative to the encoder: LoRALinear} (global projections are tied, not listed).
    """
    encoder = _encoder_of(model)
    for p in encoder.parameters():
        p.requires_grad_(False)
    adapters = {}
    for name, linear in _layer_linears(encoder, config.targets).items():
        lora = LoRALinear(linear, config.rank, config.scale)
        _set_module(encoder, name, lora)
        adapters[name] = lora
        leaf = name.rsplit(".", 1)[1]
        global_name = name.rsplit(".", 1)[0] + "." + TIED_GLOBAL.get(leaf, "")
        if leaf in TIED_GLOBAL and isinstance(_get(encoder, global_name), nn.Linear):
            _set_module(
                encoder, global_name, LoRALinear(_get(encoder, global_name), config.rank, config.scale, lora)
            )
    return adapters


def _get(root: nn.Module, name: str) -> nn.Module | None:
    try:
        return root.get_submodule(name)
    except AttributeError:
        return None


def adapter_state(adapters: dict[str, LoRALinear]) -> dict[str, torch.Tensor]:
    """The adapter weights to save: {"<name>.lora_a": (r, in), "<name>.lora_b": (out, r)}."""
    state = {}
    for name, lora in adapters.items():
        state[f"{name}.lora_a"] = lora.lora_a.detach().clone()
        state[f"{name}.lora_b"] = lora.lora_b.detach().clone()
    return state


@torch.no_grad()
def merge_adapter(model: nn.Module, state: dict[str, torch.Tensor], config: LoraConfig) -> int:
    """Add a saved adapter's deltas into a plain model's weights (BERT or Longformer), in place.

    Returns:
        number of weight matrices changed (global projections included).
    """
    encoder = _encoder_of(model)
    changed = 0
    for key, lora_a in state.items():
        if not key.endswith(".lora_a"):
            continue
        name = key[: -len(".lora_a")]
        delta = (state[f"{name}.lora_b"] @ lora_a) * config.scale
        targets = [name]
        leaf = name.rsplit(".", 1)[1]
        if leaf in TIED_GLOBAL:
            targets.append(name.rsplit(".", 1)[0] + "." + TIED_GLOBAL[leaf])
        for target in targets:
            linear = _get(encoder, target)
            if isinstance(linear, nn.Linear):
                linear.weight += delta.to(linear.weight.dtype)
                changed += 1
    return changed
