"""Which weight matrices are the probe's units: q, k, v, o, gate, up, down in every layer.

Separate projections (Llama, Qwen, Mistral, Gemma, ...) are found by module name. Fused ones are
split back into the paper's units by slicing the weight gradient, so every architecture reports
the same kind of unit:

| architecture          | module                 | units (slice of the weight)                          |
|-----------------------|------------------------|------------------------------------------------------|
| Llama/Qwen/Mistral    | self_attn.{q,k,v,o}_proj, mlp.{gate,up,down}_proj | one each                  |
| GPT-2 (Conv1D, W: in×out) | attn.c_attn        | q, k, v = thirds of the output columns               |
|                       | attn.c_proj, mlp.c_fc, mlp.c_proj | o, up, down (no gate)                     |
| Phi-3 style           | self_attn.qkv_proj     | q, k, v = rows [0,q) [q,q+kv) [q+kv,q+2kv)           |
|                       | mlp.gate_up_proj       | gate, up = first and second half of the rows         |

Embeddings, the LM head, norms and biases are not units. `frozen` is the state both probes
measure the units in: the base model, untouched.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from prismrl.errors import ConfigError

_LAYER = re.compile(r"(?:^|\.)(?:layers|h|blocks)\.(\d+)\.")
_SEPARATE = {
    "self_attn.q_proj": "q",
    "self_attn.k_proj": "k",
    "self_attn.v_proj": "v",
    "self_attn.o_proj": "o",
    "mlp.gate_proj": "gate",
    "mlp.up_proj": "up",
    "mlp.down_proj": "down",
    "attn.c_proj": "o",
    "mlp.c_fc": "up",
    "mlp.c_proj": "down",
}
UNIT_ORDER = ("q", "k", "v", "o", "gate", "up", "down")


class NoUnitsFound(ConfigError):
    pass


@dataclass(frozen=True)
class Unit:
    name: str  # e.g. model.layers.3.mlp.up_proj, or model.h.0.attn.c_attn[q] for a slice of a fused one
    kind: str  # q k v o gate up down
    layer: int
    numel: int


@dataclass
class UnitGroup:
    """One weight matrix and the units its gradient is sliced into."""

    parameter: torch.nn.Parameter
    units: list[Unit]
    slices: list[tuple[int, int, int]]  # (dim, start, stop) per unit

    def norms(self, grad: torch.Tensor) -> list[torch.Tensor]:
        return [torch.linalg.vector_norm(grad.narrow(dim, start, stop - start), dtype=torch.float32) for dim, start, stop in self.slices]


def _fused_slices(kind: str, module: torch.nn.Module, config) -> list[tuple[str, int, int, int]]:
    weight = module.weight
    if kind == "c_attn":  # GPT-2 Conv1D stores W as (in, out)
        width = weight.shape[1] // 3
        return [(name, 1, i * width, (i + 1) * width) for i, name in enumerate(("q", "k", "v"))]
    if kind == "qkv_proj":
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        q = config.num_attention_heads * head_dim
        kv = getattr(config, "num_key_value_heads", config.num_attention_heads) * head_dim
        return [("q", 0, 0, q), ("k", 0, q, q + kv), ("v", 0, q + kv, q + 2 * kv)]
    half = weight.shape[0] // 2  # gate_up_proj
    return [("gate", 0, 0, half), ("up", 0, half, 2 * half)]


def find_units(model: torch.nn.Module) -> list[UnitGroup]:
    """The probe's units in a fixed order: by layer, then q k v o gate up down."""
    groups = []
    for module_name, module in model.named_modules():
        layer_match = _LAYER.search(module_name)
        weight = getattr(module, "weight", None)
        if layer_match is None or not isinstance(weight, torch.nn.Parameter) or weight.dim() != 2:
            continue
        layer = int(layer_match.group(1))
        suffix = ".".join(module_name.split(".")[-2:])
        if suffix in _SEPARATE:
            kind = _SEPARATE[suffix]
            groups.append(UnitGroup(weight, [Unit(module_name, kind, layer, weight.numel())], [(0, 0, weight.shape[0])]))
            continue
        fused = module_name.split(".")[-1]
        if fused in ("c_attn", "qkv_proj", "gate_up_proj"):
            units, slices = [], []
            for kind, dim, start, stop in _fused_slices(fused, module, model.config):
                other = weight.shape[1 - dim]
                units.append(Unit(f"{module_name}[{kind}]", kind, layer, (stop - start) * other))
                slices.append((dim, start, stop))
            groups.append(UnitGroup(weight, units, slices))
    if not groups:
        raise NoUnitsFound(
            f"no q/k/v/o/gate/up/down projections found in {type(model).__name__}; supported names are "
            "Llama/Qwen/Mistral-style (self_attn.q_proj, mlp.up_proj, ...), GPT-2 (attn.c_attn, mlp.c_fc) "
            "and Phi-3 fused (qkv_proj, gate_up_proj)"
        )
    order = {kind: i for i, kind in enumerate(UNIT_ORDER)}
    groups.sort(key=lambda g: (g.units[0].layer, order[g.units[0].kind]))
    return groups


@contextmanager
def frozen(model) -> Iterator[None]:
    """The model in eval mode (no dropout) with no parameter requiring a gradient; on exit every
    parameter's requires_grad and the training mode are as they were, and no gradient is left."""
    saved = {name: p.requires_grad for name, p in model.named_parameters()}
    was_training = model.training
    model.eval()
    model.requires_grad_(False)
    try:
        yield
    finally:
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(saved[name])
            parameter.grad = None
        model.train(was_training)
