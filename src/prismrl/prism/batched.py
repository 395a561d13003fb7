"""Batched, exact Stage I probe: B trajectories per forward/backward, per-trajectory norms.

The batch-1 probe (`probe.GradientProbe`) forms each unit's weight gradient and takes its norm.
Summed over a batch, weight gradients mix the trajectories, so here no weight gradient is formed
at all. For a linear map y = x Wᵀ, trajectory b's gradient is G_b = Σ_t δ_bt x_btᵀ, where x is the
layer input and δ = ∂L/∂y the output gradient; both are captured by hooks and G_b's norm is
computed from them directly, by whichever of two exact identities is cheaper (per trajectory,
T = padded length, `in`/`out` the unit's features, FLOPs up to a factor 2):

    einsum  ‖G_b‖² = ‖δ_bᵀ x_b‖²_F                        cost T·in·out
    Gram    ‖G_b‖² = Σ_{t,t'} (δ_bt·δ_bt')(x_bt·x_bt')    cost c·T²·(out + in/s)

where s is the number of units reading the same input (q, k, v: 3; gate, up: 2; the slices of a
fused matrix), which share x's Gram matrix x xᵀ, and c the relative cost of the float64 the Gram
sum runs in (2 on CPU; see `gram_cost`). Gram wins for short sequences (T below roughly
in·out / (c·(in+out))), einsum for long ones; `norm_method` forces either. For SmolLM2
(576/1536 features) einsum wins everywhere from ~250 tokens; for an 8B Llama (4096/14336) in
float32, Gram wins below ~900-1800 tokens depending on the unit.

Mechanics:
- every parameter stays frozen (requires_grad False); the embedding output is made to require
  grad so the backward runs, and no parameter gradient is ever allocated;
- a forward hook on each unit module keeps its input x (B, T, in); a tensor hook on its output
  receives δ (B, T, out) during the backward, computes the per-trajectory norms of each unit
  slice (fused q/k/v and gate/up: slices of δ's output features) and drops x right away;
- the loss is Σ_b (mean cross-entropy over b's response tokens), so each trajectory's gradient is
  exactly its batch-1 gradient; rows are right-padded and run without an attention mask
  (explicit position ids 0..T-1, `padding.attention_inputs`): under causal attention no real
  position sees a pad, so the real positions' computation is unchanged and padded positions get δ = 0;
- logits are computed only where a response token is predicted (`logits_to_keep`), which skips
  most of the LM head and the full-vocabulary softmax on observation and prompt tokens;
- optional gradient checkpointing recomputes each decoder layer in the backward (reentrant
  checkpoint, model left in eval mode): the first forward runs without grad and captures
  nothing; the recompute captures x for one layer at a time, so memory holds one layer's
  activations plus the residual stream.

`plan_batches` sorts trajectories by length within fixed windows of the input and packs them
under a padded-token budget, so batch composition depends only on the input and the settings.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from prismrl.data.format import IGNORE_INDEX
from prismrl.errors import ConfigError
from prismrl.padding import attention_inputs, attention_mask, padded
from prismrl.prism.units import find_units, frozen

NORM_METHODS = ("auto", "einsum", "gram")


@dataclass
class _UnitSpec:
    """How to read one unit group's per-trajectory gradient from its module's input and output."""

    module: torch.nn.Module
    in_features: int
    out_features: int
    slices: list[tuple[str, int, int]]  # ("out" | "in", start, stop): which features of δ or x a unit covers


def _spec(group, module: torch.nn.Module) -> _UnitSpec:
    # nn.Linear stores W as (out, in); GPT-2's Conv1D as (in, out).
    conv1d = type(module).__name__ == "Conv1D"
    out_dim = 1 if conv1d else 0
    weight = group.parameter
    slices = [("out" if dim == out_dim else "in", start, stop) for dim, start, stop in group.slices]
    return _UnitSpec(module, weight.shape[1 - out_dim], weight.shape[out_dim], slices)


def plan_batches(
    lengths: list[int | None], max_batch_tokens: int | None, window: int = 64, max_batch_size: int | None = None
) -> list[list[int]]:
    """Batches of indices into `lengths` (None = nothing to probe, left out).

    Without a budget every trajectory is its own batch, in input order. With one, the input is cut
    into consecutive windows of `window` trajectories; inside a window trajectories are sorted by
    length (longest first, ties by position) and packed greedily while batch size × longest length
    stays within `max_batch_tokens` (a trajectory longer than the budget gets a batch of its own).
    Windows bound what an interruption loses; the result depends only on the input and settings."""
    if not max_batch_tokens:
        return [[i] for i, n in enumerate(lengths) if n is not None]
    batches = []
    for start in range(0, len(lengths), max(1, window)):
        members = [i for i in range(start, min(start + window, len(lengths))) if lengths[i] is not None]
        members.sort(key=lambda i: (-lengths[i], i))
        batch: list[int] = []
        for i in members:
            longest = lengths[batch[0]] if batch else lengths[i]
            full = max_batch_size is not None and len(batch) >= max_batch_size
            if batch and (full or (len(batch) + 1) * longest > max_batch_tokens):
                batches.append(batch)
                batch = []
            batch.append(i)
        if batch:
            batches.append(batch)
    return batches


class BatchedProbe:
    """Per-unit gradient norms of each trajectory's SFT loss, B trajectories per backward.

    Use as a context manager (hooks in, parameters frozen, eval mode; all restored on exit), then
    call with a list of (input_ids, labels) pairs; returns one (loss, norms) per pair, norms in
    `self.units` order — the same numbers the batch-1 `GradientProbe` gives, up to float rounding.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        norm_method: str = "auto",
        gradient_checkpointing: bool = False,
        logits_on_response_only: bool = True,
        max_chunk_elements: int = 1 << 25,
    ):
        if norm_method not in NORM_METHODS:
            raise ConfigError(f"norm_method {norm_method!r}: use one of {', '.join(NORM_METHODS)}")
        self.model = model
        self.norm_method = norm_method
        self.gradient_checkpointing = gradient_checkpointing
        self.max_chunk_elements = max_chunk_elements
        # Both identities sum terms of both signs, and the cancellation shows in float32: on
        # SmolLM2 at ~260 tokens the batch-1 probe's own float32 weight gradient is up to 1.3e-4
        # (typically 3e-5) off a float64 computation, and a float32 Gram sum as much. The einsum
        # repeats the batch-1 arithmetic (agrees with it to ~1e-6); the Gram path runs in float64
        # (agrees with float64 to ~1e-7), at a cost per FLOP of about 2x float32 on CPU and on
        # datacenter GPUs in float32, far more against bf16/fp16 tensor cores.
        self.gram_dtype = torch.float64
        parameter = next(model.parameters())
        self.gram_cost = 2.0 if parameter.device.type == "cpu" or parameter.dtype == torch.float32 else 16.0
        self.groups = find_units(model)
        self.units = [unit for group in self.groups for unit in group.units]
        module_of = {id(m.weight): m for m in model.modules() if isinstance(getattr(m, "weight", None), torch.nn.Parameter)}
        self._specs = [_spec(group, module_of[id(group.parameter)]) for group in self.groups]
        accepts = inspect.signature(model.forward).parameters
        self._trim_logits = logits_on_response_only and "logits_to_keep" in accepts
        self.methods_used: dict[str, int] = {"einsum": 0, "gram": 0}  # unit groups per method, for tests and benchmarks
        self._inputs: dict[int, torch.Tensor] = {}
        self._readers: dict[int, list[int]] = {}  # id(x) → [units reading it, units still to read it]
        self._grams: dict[int, torch.Tensor] = {}
        self._norms: dict[int, torch.Tensor] = {}

    # --- hooks -------------------------------------------------------------------------------

    def _capture(self, index: int):
        def hook(module, args, output):
            # Without grad (e.g. the first pass of a checkpointed layer) there is no backward to serve.
            if not (torch.is_grad_enabled() and isinstance(output, torch.Tensor) and output.requires_grad):
                return
            if index in self._inputs:
                raise RuntimeError(
                    f"{self.groups[index].units[0].name} ran twice in one forward; the batched probe needs one call per unit"
                )
            x = args[0]
            self._inputs[index] = x
            readers = self._readers.setdefault(id(x), [0, 0])
            readers[0] += 1
            readers[1] += 1
            output.register_hook(self._reduce(index))

        return hook

    def _reduce(self, index: int):
        def hook(delta: torch.Tensor) -> None:
            x = self._inputs.pop(index)
            with torch.no_grad():
                self._norms[index] = self._per_sample_norms(index, x, delta)
            key = id(x)
            self._readers[key][1] -= 1
            if self._readers[key][1] == 0:
                del self._readers[key]
                self._grams.pop(key, None)

        return hook

    def method_for(self, index: int, length: int, readers: int = 1) -> str:
        """einsum or Gram for unit group `index` at padded length `length` (see the module docstring)."""
        spec = self._specs[index]
        if any(side == "in" for side, _, _ in spec.slices):
            return "einsum"  # slices of the input features would each need their own Gram matrix
        if self.norm_method != "auto":
            return self.norm_method
        outs = sum(stop - start for _, start, stop in spec.slices)
        einsum = length * spec.in_features * outs
        gram = self.gram_cost * length * length * (outs + spec.in_features / readers)
        return "gram" if gram < einsum else "einsum"

    def _per_sample_norms(self, index: int, x: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        spec, key = self._specs[index], id(x)
        batch, length = delta.shape[0], delta.shape[1]
        x, delta = x.reshape(batch, length, -1), delta.reshape(batch, length, -1)
        method = self.method_for(index, length, self._readers[key][0])
        self.methods_used[method] += 1
        norms = []
        if method == "gram":
            gram_x = self._grams.get(key)
            if gram_x is None:
                xd = x.to(self.gram_dtype)
                gram_x = self._grams[key] = torch.bmm(xd, xd.transpose(1, 2))
            for _, start, stop in spec.slices:
                d = delta[..., start:stop].to(self.gram_dtype)
                squared = (torch.bmm(d, d.transpose(1, 2)) * gram_x).sum(dim=(1, 2))
                norms.append(squared.clamp_min(0).sqrt().float())
        else:
            for side, start, stop in spec.slices:
                xs = x[..., start:stop] if side == "in" else x
                ds = delta[..., start:stop] if side == "out" else delta
                chunk = max(1, self.max_chunk_elements // (xs.shape[-1] * ds.shape[-1]))
                parts = [
                    torch.linalg.vector_norm(
                        torch.bmm(ds[i : i + chunk].transpose(1, 2), xs[i : i + chunk]), dim=(1, 2), dtype=torch.float32
                    )
                    for i in range(0, batch, chunk)
                ]
                norms.append(torch.cat(parts))
        return torch.stack(norms, dim=1)  # (B, slices)

    # --- gradient checkpointing --------------------------------------------------------------

    def _checkpointed_layers(self) -> list[torch.nn.Module]:
        from transformers.modeling_layers import GradientCheckpointingLayer

        layers = [m for m in self.model.modules() if isinstance(m, GradientCheckpointingLayer)]
        if not layers:
            raise ConfigError(f"gradient checkpointing: {type(self.model).__name__} has no transformers GradientCheckpointingLayer blocks")
        return layers

    @staticmethod
    def _checkpointing_forward(forward):
        @functools.wraps(forward)
        def run(*args, **kwargs):
            if not torch.is_grad_enabled():
                return forward(*args, **kwargs)
            if not args and "hidden_states" in kwargs:
                args = (kwargs.pop("hidden_states"),)
            # Reentrant: the first pass runs without grad (hooks capture nothing), the recompute in
            # the backward captures and is backpropagated at once, one layer at a time.
            return checkpoint(functools.partial(forward, **kwargs), *args, use_reentrant=True)

        return run

    # --- context -----------------------------------------------------------------------------

    def __enter__(self) -> "BatchedProbe":
        self._frozen = frozen(self.model)
        self._frozen.__enter__()
        self._handles = [spec.module.register_forward_hook(self._capture(i)) for i, spec in enumerate(self._specs)]

        def require_grad(module, args, output):
            if isinstance(output, torch.Tensor) and not output.requires_grad and output.is_floating_point():
                output.requires_grad_(True)
            return output

        self._handles.append(self.model.get_input_embeddings().register_forward_hook(require_grad))
        self._wrapped = []
        if self.gradient_checkpointing:
            for layer in self._checkpointed_layers():
                layer.forward = self._checkpointing_forward(layer.forward)
                self._wrapped.append(layer)
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        for layer in self._wrapped:
            del layer.forward  # back to the class's forward
        self._frozen.__exit__(*exc)
        self._clear()

    def _clear(self) -> None:
        self._inputs.clear()
        self._readers.clear()
        self._grams.clear()
        self._norms.clear()

    # --- probing -----------------------------------------------------------------------------

    def __call__(self, batch: list[tuple[list[int], list[int]]]) -> list[tuple[float, list[float]]]:
        """(loss, norms) per (input_ids, labels) pair, in the given order."""
        device = next(self.model.parameters()).device
        input_ids = padded([ids for ids, _ in batch], 0)
        labels = padded([target for _, target in batch], IGNORE_INDEX)
        attention = attention_mask([len(ids) for ids, _ in batch])
        size, length = input_ids.shape
        # keep[b, t]: position t predicts a response token (labels[b, t + 1]).
        keep = torch.zeros(size, length, dtype=torch.bool)
        keep[:, :-1] = labels[:, 1:] != IGNORE_INDEX
        targets = labels[:, 1:][keep[:, :-1]]
        rows = keep.nonzero()[:, 0]
        counts = keep.sum(dim=1)
        positions = torch.arange(length).expand(size, length)
        input_ids, attention, positions, keep = (t.to(device) for t in (input_ids, attention, positions, keep))
        targets, rows, counts = targets.to(device), rows.to(device), counts.to(device)

        self._clear()
        kwargs = {"input_ids": input_ids, "position_ids": positions, "use_cache": False, **attention_inputs(attention)}
        if self._trim_logits:
            kwargs["logits_to_keep"] = keep
        logits = self.model(**kwargs).logits
        if logits.dim() == 3:  # the model gave every position
            logits = logits[keep]
        if logits.shape[0] != targets.shape[0]:
            raise RuntimeError(f"expected logits for {targets.shape[0]} response positions, got shape {tuple(logits.shape)}")
        token_loss = F.cross_entropy(logits.float(), targets, reduction="none")
        losses = torch.zeros(size, device=device, dtype=torch.float32).index_add(0, rows, token_loss) / counts
        del logits, token_loss
        # Σ_b mean_b: each trajectory's gradient is its own batch-1 gradient.
        losses.sum().backward()
        missing = [self.groups[i].units[0].name for i in range(len(self.groups)) if i not in self._norms]
        if missing:
            self._clear()
            raise RuntimeError(f"no gradient reached {len(missing)} units (first {missing[0]}); is every unit on the loss path?")
        norms = torch.cat([self._norms[i] for i in range(len(self.groups))], dim=1).cpu()
        self._clear()
        return list(zip(losses.detach().cpu().tolist(), norms.tolist()))
