"""PRISM Stage III: route trajectories into an SFT half and an RL half by a score (paper §3.3).

    s_i ≤ median(s) → D_SFT        s_i > median(s) → D_RL

Every router is the same rule on a different score: rank by (score, id), the top
⌊rl_share·n⌋ go to RL. Ranking by id among equal scores makes the routing deterministic and the
sizes exact (⌈n/2⌉ SFT, ⌊n/2⌋ RL at the median: the median item itself satisfies s ≤ median).
This module is pure: scores in, routing out.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from prismrl.errors import ConfigError, InputError
from prismrl.prism.score import METRICS, normalize

ROUTERS = ("prism", "inverse", "random", "magnitude", "loss", "length")


@dataclass
class Routing:
    router: str
    metric: str | None
    threshold: float | None
    rl_share: float
    ids_sft: list[str]
    ids_rl: list[str]
    scores: dict[str, float]
    excluded: dict[str, str] = field(default_factory=dict)  # id → why it was not routed

    def to_dict(self) -> dict:
        return asdict(self)


def halves_by_score(
    scores: dict[str, float], rl_share: float = 0.5, tie_seed: int | None = None
) -> tuple[list[str], list[str], float | None]:
    """(ids_sft, ids_rl, threshold): the ⌊rl_share·n⌋ highest scores go to RL, ties ranked by id,
    or by a draw seeded with `tie_seed` (made in id order, so independent of the input order)."""
    if not 0.0 <= rl_share <= 1.0:
        raise ConfigError(f"rl_share must be within [0, 1], got {rl_share}")
    if tie_seed is None:
        tie = {i: i for i in scores}
    else:
        tie = dict(zip(sorted(scores), np.random.default_rng(tie_seed).random(len(scores))))
    ranked = sorted(scores, key=lambda i: (scores[i], tie[i], i))
    n_rl = math.floor(rl_share * len(ranked) + 1e-9)
    ids_sft, ids_rl = ranked[: len(ranked) - n_rl], ranked[len(ranked) - n_rl :]
    if ids_sft and ids_rl:
        threshold = (scores[ids_sft[-1]] + scores[ids_rl[0]]) / 2
    elif ids_sft or ids_rl:
        threshold = scores[(ids_sft or ids_rl)[-1]] if ids_sft else scores[ids_rl[0]]
    else:
        threshold = None
    return ids_sft, ids_rl, threshold


def router_scores(
    router: str, records: list[dict], unit_numel=None, metric: str = "gini", normalization: str = "none", seed: int = 0
) -> tuple[str | None, dict[str, float]]:
    """(metric name, {id: score}) where a higher score means "send to RL"."""
    ids = [r["id"] for r in records]
    if router in ("prism", "inverse"):
        # Any metric, magnitude (l2) included, so that every inverse is expressible.
        if metric not in METRICS:
            raise ConfigError(f"metric must be one of {tuple(METRICS)}, got {metric!r}")
        values = METRICS[metric](normalize(np.array([r["norms"] for r in records]), unit_numel, normalization))
        if router == "inverse":  # high concentration → SFT: rank by the negated metric
            return f"-{metric}", {i: -float(v) for i, v in zip(ids, values)}
        return metric, {i: float(v) for i, v in zip(ids, values)}
    if router == "magnitude":
        values = METRICS["l2"](normalize(np.array([r["norms"] for r in records]), unit_numel, normalization))
        return "l2", {i: float(v) for i, v in zip(ids, values)}
    if router == "loss":
        return "loss", {r["id"]: float(r["loss"]) for r in records}
    if router == "length":
        return "n_tokens", {r["id"]: float(r["n_tokens"]) for r in records}
    if router == "random":
        rng = np.random.default_rng(seed)
        # Draw in id order so the routing does not depend on the input order.
        draws = rng.random(len(ids))
        return None, {i: float(d) for i, d in zip(sorted(ids), draws)}
    raise ConfigError(f"unknown router {router!r}; use one of {ROUTERS}")


def route(
    records: list[dict],
    router: str = "prism",
    metric: str = "gini",
    rl_share: float = 0.5,
    unit_numel=None,
    normalization: str = "none",
    seed: int = 0,
) -> Routing:
    """Route valid probe records (flagged ones must be removed by the caller)."""
    if not records:
        raise InputError("nothing to route: no valid probe records")
    metric_name, scores = router_scores(router, records, unit_numel, metric, normalization, seed)
    # A NaN score (a constant or all-zero norm vector has no shape) would sort arbitrarily.
    excluded = {i: f"{metric_name} is not finite ({s})" for i, s in scores.items() if not math.isfinite(s)}
    scores = {i: s for i, s in scores.items() if i not in excluded}
    if not scores:
        raise InputError(f"nothing to route: every {metric_name} score is not finite")
    ids_sft, ids_rl, threshold = halves_by_score(scores, rl_share)
    return Routing(router, metric_name, threshold, rl_share, ids_sft, ids_rl, scores, excluded)
