"""RESULTS.md, generated from the grid's committed run summaries (`prism grid --results DIR`):
per environment a table of every method (mean ± std over seeds, a 95 % bootstrap interval over
seeds and episodes, cost per phase, speed-up vs rl-all, the paper's numbers beside), the paper's
claims each with a verdict, and the plots (cost vs success, the RL-share sweep, RL reward curves).

    prism results results/webshop-small/grid --out RESULTS.md

Verdicts, for a claim "A > B": the 95 % interval of A − B (goals paired, as every method and seed
plays the same goals; seeds resampled apart) above 0 → supported, below 0 → not supported,
containing 0 → inconclusive at this scale. With one seed the interval covers only episode noise.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import numpy as np
import yaml

from prismrl.errors import InputError, MissingFile
from prismrl.fileio import atomic_savefig, atomic_write_text, read_jsonl_prefix
from prismrl.report.runs import BASELINE, TRAINING_PHASES
from prismrl.report.score_analysis import score_section, spearman

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RESAMPLES = 10_000
METHOD_ORDER = ("base", "sft-all", "rl-all", "rl-all-gigpo", "sft-then-rl", "random", "pass-rate", "inverse", "magnitude", "loss", "length")
METHOD_ORDER += ("prism-gini", "prism-gini-reprobe", "prism-kurtosis", "prism-cv", "conflict-to-sft", "conflict-to-rl")
# ../shared/spec/method.md, the paper's Tables (8B models on 8×A100): success % / score.
PAPER = {
    "webshop": {
        "columns": ("Qwen3-8B", "Llama-3.1-8B"),
        "base": ("17.19 / 28.78", "1.56 / 1.56"),
        "sft-all": ("42.97 / 73.87", "18.75 / 29.34"),
        "rl-all": ("46.88 / 68.80", "51.56 / 70.66"),
        "random": ("55.47 / 78.21", "54.69 / 79.40"),
        "pass-rate": ("54.69 / 75.48", "55.47 / 80.46"),
        "sft-then-rl": ("59.38 / 80.82", "60.16 / 81.65"),
        "prism-gini": ("64.84 / 85.15", "68.75 / 84.82"),
        "prism-kurtosis": ("63.28 / 83.87", "64.06 / 81.79"),
        "prism-cv": ("61.72 / 84.33", "61.72 / 81.55"),
        "magnitude": ("– / 79.75", "–"),
    },
    "alfworld": {
        "columns": ("Qwen3-8B seen", "Qwen3-8B unseen"),
        "sft-then-rl": ("88.28", "69.53"),
        "random": ("79.69", "–"),
        "pass-rate": ("85.16", "–"),
        "prism-gini": ("95.31", "79.69"),
        "magnitude": ("90.63", "–"),
    },
}


@dataclass
class Run:
    name: str  # the grid's folder name: <method>[-rl<share>]-s<seed>
    method: str
    seed: int
    rl_share: float
    env: str
    episodes: dict[str, list[dict]]  # split → episodes in evaluation order
    phases: dict[str, float]  # phase → wall seconds
    flops: dict[str, float] = field(default_factory=dict)  # phase → the ledger's FLOP estimate
    rl_rewards: list[float] = field(default_factory=list)  # mean training reward per RL step
    routings: dict[str, dict] = field(default_factory=dict)  # "route" (and "reroute": after SFT) → routing.json

    @property
    def variant(self) -> str:
        return re.sub(r"-s\d+$", "", self.name)

    @property
    def training_seconds(self) -> float:
        return sum(self.phases.get(p, 0.0) for p in TRAINING_PHASES)

    @property
    def training_flops(self) -> float:
        return sum(self.flops.get(p, 0.0) for p in TRAINING_PHASES)


def load_grid(folder: str | Path) -> list[Run]:
    """Every finished run (summary.json) saved under `folder`; unfinished ones are left out."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingFile(f"{folder}: no such results folder (save runs with `prism grid --results {folder}`)")
    runs = []
    for run_dir in sorted(p for p in folder.iterdir() if (p / "summary.json").exists()):
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        summary = json.loads((run_dir / "summary.json").read_text())
        episodes = {split: read_jsonl_prefix(run_dir / "eval" / split / "episodes.jsonl") for split in summary["eval"]}
        missing = [split for split, found in episodes.items() if not found]
        if missing:
            raise InputError(f"{run_dir}: summary.json reports {', '.join(missing)} but eval/<split>/episodes.jsonl is missing")
        runs.append(
            Run(
                name=run_dir.name,
                method=config["method"],
                seed=config["seed"],
                rl_share=config["route"]["rl_share"],
                env=config["env"],
                episodes=episodes,
                phases={p: v["wall_seconds"] for p, v in summary["cost"]["phases"].items()},
                flops={p: v.get("flops", 0.0) for p, v in summary["cost"]["phases"].items()},
                rl_rewards=[m["reward"] for m in read_jsonl_prefix(run_dir / "rl" / "rl_metrics.jsonl")],
                routings={
                    folder: json.loads((run_dir / folder / "routing.json").read_text())
                    for folder in ("route", "reroute")
                    if (run_dir / folder / "routing.json").exists()
                },
            )
        )
    return runs


def outcomes(runs: list[Run], split: str, key: str) -> np.ndarray:
    """[seed, goal] matrix of one variant's per-episode `key` (won → 0/1, reward → 0..1)."""
    goals = [[e["task_id"] for e in r.episodes[split]] for r in runs]
    if any(g != goals[0] for g in goals):
        raise InputError(f"{runs[0].variant}: seeds evaluated different goals on {split}; evaluate with one eval.task_seed")
    return np.array([[float(e[key]) for e in r.episodes[split]] for r in runs])


def interval(values: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """95 % percentile bootstrap of the mean over seeds and episodes: seeds resampled, then
    episodes within each resampled seed."""
    rng = np.random.default_rng(seed)
    n_seeds, n_goals = values.shape
    seeds = rng.integers(0, n_seeds, (RESAMPLES, n_seeds, 1))
    goals = rng.integers(0, n_goals, (RESAMPLES, n_seeds, n_goals))
    means = values[seeds, goals].mean(axis=(1, 2))
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def difference(a: np.ndarray, b: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high) of a − b: goals resampled together (both played the same goals), each
    side's seeds apart (seed s of two methods are unrelated runs)."""
    if a.shape[1] != b.shape[1]:
        raise InputError("the two variants were evaluated on different numbers of goals")
    rng = np.random.default_rng(seed)
    n_goals = a.shape[1]
    goals = rng.integers(0, n_goals, (RESAMPLES, 1, n_goals))
    side = lambda m: m[rng.integers(0, m.shape[0], (RESAMPLES, m.shape[0], 1)), goals].mean(axis=(1, 2))  # noqa: E731
    diffs = side(a) - side(b)
    return float(a.mean() - b.mean()), float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))


def verdict(low: float, high: float) -> str:
    return "supported" if low > 0 else "not supported" if high < 0 else "inconclusive"


def _pm(values: list[float], scale: float = 1.0) -> str:
    values = [scale * v for v in values]
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{np.mean(values):.1f} ± {np.std(values, ddof=1):.1f}"


def _minutes(seconds: float) -> str:
    return "–" if not seconds else f"{seconds / 60:.0f}"


COSTS = ("training_seconds", "training_flops")  # the speed-up vs rl-all, by wall-clock and by FLOPs


def _speed_up(baseline: float | None, costs: list[float]) -> str:
    """rl-all's mean training cost over the mean of `costs`."""
    ours = np.mean(costs)
    return f"{baseline / ours:.2f}×" if baseline and ours else "–"


def environment_section(env: str, grid: str, runs: list[Run], figures: Path, relative_to: Path) -> list[str]:
    by_variant: dict[str, list[Run]] = {}
    for run in sorted(runs, key=lambda r: (METHOD_ORDER.index(r.method) if r.method in METHOD_ORDER else len(METHOD_ORDER), r.rl_share)):
        by_variant.setdefault(run.variant, []).append(run)
    splits = sorted({s for r in runs for s in r.episodes})
    baselines = {c: np.mean([getattr(r, c) for r in by_variant[BASELINE]]) for c in COSTS} if BASELINE in by_variant else {}
    paper = PAPER.get(env, {})
    lines = [f"## {env}", "", f"Runs: `{grid}` ({len(runs)} finished: {', '.join(sorted(r.name for r in runs))}).", ""]
    for split in splits:
        header = ["method", "seeds", "success %", "95 % CI", "score", "95 % CI", "probe min", "SFT min", "RL min", "eval min"]
        header += ["speed-up vs rl-all", "by FLOPs"] + [f"paper {c}" for c in paper.get("columns", ())]
        lines += [f"### {split}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for variant, group in by_variant.items():
            group = sorted((r for r in group if split in r.episodes), key=lambda r: r.seed)
            if not group:
                continue
            won, reward = outcomes(group, split, "won"), outcomes(group, split, "reward")
            lo, hi = interval(won)
            slo, shi = interval(reward)
            phase = lambda p: np.mean([r.phases.get(p, 0.0) for r in group])  # noqa: E731
            speed = (
                ["–"] * len(COSTS) if variant == "base" else [_speed_up(baselines.get(c), [getattr(r, c) for r in group]) for c in COSTS]
            )
            cells = [
                variant,
                str(len(group)),
                _pm(list(won.mean(axis=1)), 100),
                f"{100 * lo:.1f}–{100 * hi:.1f}",
                _pm(list(reward.mean(axis=1)), 100),
                f"{100 * slo:.1f}–{100 * shi:.1f}",
                _minutes(phase("probe") + phase("pass-rate") + phase("reprobe")),
                _minutes(phase("sft")),
                _minutes(phase("rl")),
                _minutes(phase("eval")),
                *speed,
                *(paper.get(variant, ()) or ("–",) * len(paper.get("columns", ()))),
            ]
            lines.append("| " + " | ".join(cells) + " |")
        lines += [""]
        lines += by_task_type(by_variant, split)
        lines += claims(by_variant, split)
        lines += reprobe(by_variant, split)
    lines += plots(env, by_variant, splits[0], figures, relative_to)
    return lines


def by_task_type(by_variant: dict[str, list[Run]], split: str) -> list[str]:
    """Success % per task type (mean over seeds): ALFWorld's six types, WebShop's categories, the
    mirror houses' plain / mirror."""
    types = sorted({e.get("task_type") or "–" for group in by_variant.values() for r in group for e in r.episodes.get(split, [])})
    if len(types) < 2:
        return []
    lines = ["Success % by task type (episodes of that type, mean over seeds):", "", "| method | " + " | ".join(types) + " |"]
    lines.append("|" + "---|" * (len(types) + 1))
    for variant, group in by_variant.items():
        cells = []
        for task_type in types:
            rates = [
                np.mean([e["won"] for e in r.episodes[split] if (e.get("task_type") or "–") == task_type])
                for r in group
                if split in r.episodes
            ]
            rates = [x for x in rates if np.isfinite(x)]
            cells.append(f"{100 * np.mean(rates):.1f}" if rates else "–")
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return lines + [""]


CLAIMS = [
    ("(a) PRISM-Gini ≥ SFT-then-RL at about half the RL cost", "prism-gini", "sft-then-rl"),
    ("(b) PRISM-Gini > Random", "prism-gini", "random"),
    ("(b) PRISM-Gini > Inverse", "prism-gini", "inverse"),
    ("(c) Gini > magnitude routing", "prism-gini", "magnitude"),
]


def claims(by_variant: dict[str, list[Run]], split: str) -> list[str]:
    """One row per claim; a claim whose runs do not exist yet says so."""
    lines = ["| claim | success difference (points, 95 % CI) | score difference | verdict |", "|---|---|---|---|"]

    def compare(a: str, b: str) -> tuple[str, str, str]:
        if a not in by_variant or b not in by_variant:
            return "–", "–", f"not run yet ({', '.join(v for v in (a, b) if v not in by_variant)})"
        ra, rb = by_variant[a], by_variant[b]
        d, lo, hi = difference(outcomes(ra, split, "won"), outcomes(rb, split, "won"))
        ds, slo, shi = difference(outcomes(ra, split, "reward"), outcomes(rb, split, "reward"))
        return (
            f"{100 * d:+.1f} ({100 * lo:+.1f} to {100 * hi:+.1f})",
            f"{100 * ds:+.1f} ({100 * slo:+.1f} to {100 * shi:+.1f})",
            verdict(lo, hi),
        )

    for text, a, b in CLAIMS:
        success, score, result = compare(a, b)
        if a == "prism-gini" and b == "sft-then-rl" and a in by_variant and b in by_variant:
            ratio = np.mean([r.phases.get("rl", 0.0) for r in by_variant[a]]) / max(
                1e-9, np.mean([r.phases.get("rl", 0.0) for r in by_variant[b]])
            )
            result += f"; RL wall-clock {ratio:.2f}× SFT-then-RL's"
            rl_flops = [np.mean([r.flops.get("rl", 0.0) for r in by_variant[v]]) for v in (a, b)]
            if all(rl_flops):
                result += f", RL FLOPs {rl_flops[0] / rl_flops[1]:.2f}×"
        lines.append(f"| {text} | {success} | {score} | {result} |")
    shares = sorted(v for v in by_variant if v.startswith("prism-gini-rl"))
    if shares:
        rows = [compare("prism-gini", v) for v in shares]
        results = [row[2] for row in rows]
        peak = "supported" if all(r == "supported" for r in results) else "not supported" if "not supported" in results else "inconclusive"
        detail = "; ".join(f"0.5 − {v.removeprefix('prism-gini-rl')}: {row[0]}" for v, row in zip(shares, rows))
        lines.append(f"| (d) an inverted U over the RL share, peak near 50 % | {detail} | | {peak} |")
    else:
        lines.append("| (d) an inverted U over the RL share, peak near 50 % | – | – | not run yet (prism-gini-rl*) |")
    return lines + [""]


REPROBED, ROUTED_ONCE = "prism-gini-reprobe", "prism-gini"


def reprobe(by_variant: dict[str, list[Run]], split: str) -> list[str]:
    """The paper's limitation, measured: how many trajectories change side when every one is probed
    again with the SFT checkpoint, and whether RL on the re-probed half changes the outcome
    (against prism-gini, whose SFT is the same)."""
    if REPROBED not in by_variant:
        return []
    lines = [
        "Re-probing after SFT (`prism-gini-reprobe`: the same SFT as prism-gini, then RL on the high-Gini half of a probe "
        "by the SFT checkpoint):",
        "",
        "| seed | RL half changed | Spearman ρ of Gini, base vs SFT model | success − prism-gini (points, 95 % CI) | score − prism-gini |",
        "|---|---|---|---|---|",
    ]
    once = {r.seed: r for r in by_variant.get(ROUTED_ONCE, [])}
    for run in by_variant[REPROBED]:
        before, after = run.routings["route"], run.routings["reroute"]
        moved = len(set(before["ids_rl"]) - set(after["ids_rl"]))
        common = sorted(set(before["scores"]) & set(after["scores"]))
        rho = spearman([before["scores"][i] for i in common], [after["scores"][i] for i in common])
        cells = ["–", "–"]
        if run.seed in once and split in run.episodes:
            cells = []
            for key in ("won", "reward"):
                d, lo, hi = difference(outcomes([run], split, key), outcomes([once[run.seed]], split, key))
                cells.append(f"{100 * d:+.1f} ({100 * lo:+.1f} to {100 * hi:+.1f})")
        lines.append(f"| {run.seed} | {moved}/{len(before['ids_rl'])} | {rho:+.2f} | " + " | ".join(cells) + " |")
    return lines + [""]


def plots(env: str, by_variant: dict[str, list[Run]], split: str, figures: Path, relative_to: Path) -> list[str]:
    figures.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    for variant, group in by_variant.items():
        wins = [outcomes([r], split, "won").mean() * 100 for r in group]
        hours = [r.training_seconds / 3600 for r in group]
        ax.errorbar(np.mean(hours), np.mean(wins), yerr=np.std(wins, ddof=1) if len(wins) > 1 else 0, fmt="o", capsize=3)
        ax.annotate(variant, (np.mean(hours), np.mean(wins)), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("training wall-clock, hours (probe + SFT + RL)")
    ax.set_ylabel(f"{split} success %")
    ax.set_title(f"{env}: cost vs success")
    pareto = figures / f"{env}-pareto.png"
    atomic_savefig(fig, pareto)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    for variant, group in by_variant.items():
        curves = [r.rl_rewards for r in group if r.rl_rewards]
        if curves:
            steps = min(len(c) for c in curves)
            ax.plot(range(1, steps + 1), np.mean([c[:steps] for c in curves], axis=0), marker=".", label=variant)
    ax.set_xlabel("RL step")
    ax.set_ylabel("mean training reward")
    ax.set_title(f"{env}: RL training reward (mean over seeds)")
    if ax.lines:
        ax.legend(fontsize=7)
    curves_png = figures / f"{env}-rl-curves.png"
    atomic_savefig(fig, curves_png)
    plt.close(fig)
    lines = [
        f"![cost vs success]({pareto.relative_to(relative_to)})",
        "",
        f"![RL reward curves]({curves_png.relative_to(relative_to)})",
        "",
    ]

    sweep = {}
    for router in ("prism-gini", "random"):
        points = {g[0].rl_share: g for v, g in by_variant.items() if v == router or v.startswith(f"{router}-rl")}
        if len(points) > 1:
            sweep[router] = {share: [outcomes([r], split, "won").mean() * 100 for r in points[share]] for share in sorted(points)}
    if sweep:
        fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
        # each seed as a dot beside the mean: shares run with different numbers of seeds would
        # otherwise draw one seed's value and a pooled mean as one curve
        for router, points in sweep.items():
            shares = list(points)
            (line,) = ax.plot(shares, [np.mean(points[s]) for s in shares], marker="o", label=f"{router} (mean over seeds)")
            dots = [(share, value) for share in shares for value in points[share]]
            ax.scatter(*zip(*dots), color=line.get_color(), alpha=0.4, s=18, label=f"{router}, one seed")
        ax.set_xlabel("RL share")
        ax.set_ylabel(f"{split} success %")
        fig.legend(loc="outside lower center", ncols=2, fontsize="small")
        sweep_png = figures / f"{env}-rl-share.png"
        atomic_savefig(fig, sweep_png)
        plt.close(fig)
        lines += [f"![RL-share sweep]({sweep_png.relative_to(relative_to)})", ""]
    return lines


def write_results(grids: list[str | Path], out: str | Path, figures: str | Path | None = None) -> str:
    """RESULTS.md at `out` (figures beside it in `figures`, default <out's folder>/results/figures)."""
    out = Path(out)
    figures = Path(figures) if figures else out.parent / "results" / "figures"
    lines = [
        "# Results",
        "",
        "Generated by `prism results " + " ".join(str(g) for g in grids) + f" --out {out.name}` from the committed run summaries; "
        "do not edit by hand. Success and score: mean ± std over seeds, 95 % bootstrap interval over seeds and episodes "
        "(for a method with one seed, over episodes only: the spread between training seeds, which the ± of methods with "
        "several seeds shows, is not in it, nor in a verdict resting on that seed). "
        "Cost: wall-clock minutes per phase from each run's ledger (probe includes pass-rate rollouts and the re-probe after SFT; evaluation apart), "
        "the speed-up is rl-all's training time (probe + SFT + RL) over the method's, by wall-clock and by the ledger's FLOP estimate "
        "(2 × parameters × tokens forward or generated + 6 × parameters × tokens back-propagated): runs of different sessions ran on "
        "different 2-core machines of varying speed, which the FLOPs do not see. The paper's numbers are the paper's "
        "(8B models, 8×A100), not ours. Verdicts: the 95 % interval of the success difference (goals paired) above 0 → supported, "
        "below → not supported, across 0 → inconclusive at this scale.",
        "",
    ]
    for grid in grids:
        runs = load_grid(grid)
        if not runs:
            lines += [f"## {grid}", "", "No finished run yet.", ""]
            continue
        for env in sorted({r.env for r in runs}):
            lines += environment_section(env, str(grid), [r for r in runs if r.env == env], figures, out.parent)
        shared = Path(grid) / "shared"
        if (shared / "route" / "probe.jsonl").exists():
            rates = sorted(Path(grid).glob("pass-rate-s*/route/pass_rates.json"))
            lines += score_section(shared, json.loads(rates[0].read_text()) if rates else None)
    text = "\n".join(lines)
    atomic_write_text(out, text)
    return text
