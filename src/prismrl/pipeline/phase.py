"""The one contract every phase of `prism run` keeps, written once as a decorator.

    @phase("sft", output="sft/final", done="sft/final/config.json")
    def sft(run: Run, cost: CostRecord, data: Path) -> None: ...

A phase takes the run (config + folder) and its inputs, writes its output inside the run folder,
and is skipped (its output returned as it is) when its done-marker exists, so a crashed run
resumes at the phase that did not finish; each phase also resumes inside (probe records, SFT and
RL checkpoints, pass-rate and evaluation batches). A phase with a ledger name appends one cost record to
`ledger.jsonl` per time it runs; `cost.add(...)` counts its tokens.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prismrl import ledger
from prismrl.pipeline.run_config import METHODS, Plan, RunConfig


@dataclass
class Run:
    """One method's run: its resolved config and its folder."""

    cfg: RunConfig
    out: Path

    @property
    def plan(self) -> Plan:
        return METHODS[self.cfg.method]

    @functools.cached_property
    def params(self) -> int:
        """The model's parameter count for the ledger's FLOPs, read without loading it; fine-tuning
        (SFT, RL) keeps the architecture, so every phase's model has this many."""
        from prismrl.models import count_parameters

        return count_parameters(self.cfg.model)


def phase(ledger_name: str | None, output: str, done: str | None = None, note: str = "") -> Callable:
    """`output` and `done` (default: `output`) are paths inside the run folder and `note` a ledger
    note; all three may name the phase's keyword arguments, as in "eval/{split}/results.json".
    `ledger_name` None: the phase only writes files (its cost is not worth a ledger line) and gets
    `cost` None."""

    def decorate(body: Callable[..., None]) -> Callable[..., Path]:
        @functools.wraps(body)
        def run_phase(run: Run, *args, **kwargs) -> Path:
            target = run.out / output.format(**kwargs)
            if (run.out / (done or output).format(**kwargs)).exists():
                return target
            if ledger_name is None:
                body(run, None, *args, **kwargs)
            else:
                with ledger.phase(ledger_name, run.out, run.params, note=note.format(**kwargs)) as cost:
                    body(run, cost, *args, **kwargs)
            return target

        return run_phase

    return decorate
