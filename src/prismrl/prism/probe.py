"""PRISM Stage I: one backward pass of the SFT loss per trajectory on the frozen base model,
recording the Frobenius norm of the gradient of every projection matrix (paper §3.1).

Norms are taken in a post-accumulate-grad hook and the gradient is freed right there, so memory
stays near one forward+backward. Only unit weights require grad, so no gradient is ever formed
for embeddings, the LM head or norms. This is the batch-1 reference; `batched.py` computes the
same norms for several trajectories per backward, and `runner.py` drives either over a file
(resume, sharding over processes, batching, progress).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from prismrl.data.format import IGNORE_INDEX
from prismrl.prism.units import find_units, frozen


def sft_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy averaged over the response tokens (the SFT loss)."""
    return F.cross_entropy(logits[:, :-1].float().flatten(0, 1), labels[:, 1:].flatten(), ignore_index=IGNORE_INDEX)


class GradientProbe:
    """Per-unit gradient norms of the SFT loss on one trajectory, model left unchanged."""

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.groups = find_units(model)
        self.units = [unit for group in self.groups for unit in group.units]
        self._norms: dict[int, list[torch.Tensor]] = {}

    def _hook(self, index: int):
        group = self.groups[index]

        def take_norm_and_free(parameter: torch.Tensor) -> None:
            self._norms[index] = group.norms(parameter.grad)
            parameter.grad = None

        return take_norm_and_free

    def __enter__(self) -> "GradientProbe":
        self._frozen = frozen(self.model)
        self._frozen.__enter__()
        self._handles = []
        for index, group in enumerate(self.groups):
            group.parameter.requires_grad_(True)
            self._handles.append(group.parameter.register_post_accumulate_grad_hook(self._hook(index)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._frozen.__exit__(*exc)

    def __call__(self, input_ids: list[int], labels: list[int]) -> tuple[float, list[float]]:
        """(loss, one norm per unit in `self.units` order)."""
        device = next(self.model.parameters()).device
        ids = torch.tensor([input_ids], device=device)
        target = torch.tensor([labels], device=device)
        self._norms.clear()
        loss = sft_loss(self.model(input_ids=ids, use_cache=False).logits, target)
        loss.backward()
        norms = torch.stack([n for index in range(len(self.groups)) for n in self._norms[index]])
        return loss.item(), norms.tolist()
