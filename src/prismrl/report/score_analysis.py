"""What the PRISM score tracks, on the grid's own probe (issue 13): the questions a reviewer asks.

- Spearman ρ of each score with the trajectory's SFT loss, length, number of turns, share of
  response tokens and the base model's pass rate on its task: a score that is mostly one of
  these would make PRISM a difficulty (or length) router in disguise.
- How often Gini, kurtosis and CV put a trajectory on the same side (0.5 is chance for a median
  split of independent scores).
- Stability: the share of trajectories that change side under another probe of the same data —
  a paraphrased system prompt, bfloat16 instead of float32, or the same probe again (which must
  change nothing). An alternative probe of every trajectory is routed by its own median; one of a
  sample is judged against the main routing's threshold. `scripts/probe_stability.py` makes them.
- The premise, where it is known by construction (envs/mirror): each score's ROC AUC at finding
  the trajectories that conflict with the model's prior.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from prismrl.data.io import load_trajectories
from prismrl.fileio import read_jsonl_prefix
from prismrl.prism.route import halves_by_score
from prismrl.prism.score import METRICS

SCORES = ("gini", "kurtosis", "cv", "l2")
STABILITY_DIR = "stability"
CONFLICT_TYPE = "mirror"  # the mirror houses' conflicting task type


def _valid(records: list[dict]) -> list[dict]:
    return [r for r in records if r.get("norms") and not r.get("flag")]


def scores_of(records: list[dict], metric: str) -> dict[str, float]:
    return {r["id"]: float(METRICS[metric](np.array(r["norms"]))) for r in _valid(records)}


def spearman(x: list[float], y: list[float]) -> float:
    """Pearson on average ranks (pandas' own spearman path needs scipy, not a dependency)."""
    rx, ry = _average_ranks(x), _average_ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def _average_ranks(values) -> np.ndarray:
    return pd.Series(np.asarray(values, float)).rank(method="average").to_numpy()


def rl_side(scores: dict[str, float], threshold: float | None = None) -> dict[str, bool]:
    """True where a trajectory goes to RL: by the median split of `scores`, or above `threshold`."""
    if threshold is not None:
        return {i: s > threshold for i, s in scores.items()}
    _, ids_rl, _ = halves_by_score(scores, 0.5)
    return {i: i in set(ids_rl) for i in scores}


def tracks_table(records: list[dict], turns: dict[str, int], pass_rates: dict[str, float] | None) -> list[str]:
    valid = [r for r in _valid(records) if r["id"] in turns]
    covariates = {
        "SFT loss": [r["loss"] for r in valid],
        "length (tokens)": [r["n_tokens"] for r in valid],
        "turns": [turns[r["id"]] for r in valid],
        "response-token share": [r["n_response_tokens"] / r["n_tokens"] for r in valid],
    }
    if pass_rates:
        covariates["base pass rate"] = [pass_rates.get(r["task_id"], float("nan")) for r in valid]
    lines = ["| score | " + " | ".join(covariates) + " |", "|" + "---|" * (len(covariates) + 1)]
    for metric in SCORES:
        values = [float(METRICS[metric](np.array(r["norms"]))) for r in valid]
        cells = []
        for covariate in covariates.values():
            keep = [i for i, c in enumerate(covariate) if np.isfinite(c)]
            cells.append(f"{spearman([values[i] for i in keep], [covariate[i] for i in keep]):+.2f}")
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    return lines


def agreement_table(records: list[dict]) -> list[str]:
    sides = {metric: rl_side(scores_of(records, metric)) for metric in SCORES}
    lines = ["| | " + " | ".join(SCORES) + " |", "|" + "---|" * (len(SCORES) + 1)]
    for a in SCORES:
        same = [np.mean([sides[a][i] == sides[b][i] for i in sides[a]]) for b in SCORES]
        lines.append(f"| {a} | " + " | ".join(f"{v:.2f}" for v in same) + " |")
    return lines


def stability_table(records: list[dict], alternatives: dict[str, list[dict]]) -> list[str]:
    main = scores_of(records, "gini")
    _, ids_rl, threshold = halves_by_score(main, 0.5)
    lines = ["| probe | trajectories | judged by | changed side (Gini) | Spearman ρ of Gini with the main probe |", "|---|---|---|---|---|"]
    for name, alternative in sorted(alternatives.items()):
        other = scores_of(alternative, "gini")
        common = sorted(set(main) & set(other))
        if not common:
            continue
        whole = len(common) == len(main)
        before = rl_side(main) if whole else rl_side({i: main[i] for i in common}, threshold)
        after = rl_side({i: other[i] for i in common}, None if whole else threshold)
        changed = sum(before[i] != after[i] for i in common)
        rho = spearman([main[i] for i in common], [other[i] for i in common]) if len(common) > 2 else float("nan")
        judged = "its own median split" if whole else f"the main threshold ({threshold:.4g})"
        lines.append(f"| {name} | {len(common)} | {judged} | {changed}/{len(common)} = {changed / len(common):.0%} | {rho:+.2f} |")
    return lines


def roc_auc(scores: list[float], positive: list[bool]) -> float:
    """P(score of a positive > score of a negative), ties counting half (Mann-Whitney U)."""
    ranks = _average_ranks(scores)
    n_pos = sum(positive)
    n_neg = len(positive) - n_pos
    if not n_pos or not n_neg:
        return float("nan")
    return float((ranks[np.asarray(positive)].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def premise_table(records: list[dict], task_types: dict[str, str], conflict_type: str) -> list[str]:
    """ROC AUC of each score at finding the trajectories whose conflict with the prior is known
    (task type `conflict_type`): 0.5 is chance, 1 finds them all above every other trajectory."""
    valid = [r for r in _valid(records) if r["id"] in task_types]
    positive = [task_types[r["id"]] == conflict_type for r in valid]
    columns = {metric: [float(METRICS[metric](np.array(r["norms"]))) for r in valid] for metric in SCORES}
    columns["SFT loss"] = [r["loss"] for r in valid]
    columns["length (tokens)"] = [r["n_tokens"] for r in valid]
    lines = [f"| | {' | '.join(columns)} |", "|" + "---|" * (len(columns) + 1)]
    lines.append(
        f"| ROC AUC ({sum(positive)} {conflict_type} of {len(valid)}) | "
        + " | ".join(f"{roc_auc(v, positive):.2f}" for v in columns.values())
        + " |"
    )
    return lines


def score_section(shared: Path, pass_rates: dict[str, float] | None) -> list[str]:
    """The section of RESULTS.md, from `prism grid --results`'s shared folder."""
    records = read_jsonl_prefix(shared / "route" / "probe.jsonl")
    meta = json.loads((shared / "route" / "probe_meta.json").read_text())
    trajectories = load_trajectories(shared / "data" / "expert.jsonl")[0]
    turns = {t.id: sum(m["role"] == "assistant" for m in t.messages) for t in trajectories}
    task_types = {t.id: t.meta.get("task_type") for t in trajectories}
    alternatives = {
        folder.name: read_jsonl_prefix(folder / "probe.jsonl")
        for folder in sorted((shared / STABILITY_DIR).glob("*"))
        if (folder / "probe.jsonl").exists()
    }
    lines = [
        "### What the score tracks",
        "",
        f"The grid's probe: {len(_valid(records))} trajectories, `{meta['model']}`, {len(meta['unit_names'])} units, "
        f"max length {meta['max_length']}, {meta['dtype']} (`{shared}`). Spearman ρ of each score with:",
        "",
        *tracks_table(records, turns, pass_rates),
        "",
        "How often two scores put a trajectory on the same side of their median split (0.5: chance):",
        "",
        *agreement_table(records),
        "",
    ]
    if CONFLICT_TYPE in task_types.values():
        lines += [
            "The premise, where it is known: how well each score finds the trajectories that conflict with the "
            f"model's prior by construction (`{CONFLICT_TYPE}` tasks, envs/mirror):",
            "",
            *premise_table(records, task_types, CONFLICT_TYPE),
            "",
        ]
    if alternatives:
        lines += ["Stability of the routing under another probe of the same data:", "", *stability_table(records, alternatives), ""]
    else:
        lines += ["Stability (paraphrase, dtype, repeat): not measured yet (`scripts/probe_stability.py`).", ""]
    return lines
