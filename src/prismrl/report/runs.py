"""Compare finished `prism run` folders: success and score per method, cost per phase, and the
speed-up over the rl-all pipeline (how the paper's "up to 3.22×" is measured).

Runs of one method with different seeds are pooled as mean ± std, like the paper's 3 seeds.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import matplotlib

from prismrl.errors import MissingFile

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402

from prismrl.fileio import atomic_savefig, atomic_write_json, atomic_write_text  # noqa: E402

BASELINE = "rl-all"


def load_run(run_dir: Path) -> dict:
    summary_path = run_dir / "summary.json"
    if not summary_path.exists():
        raise MissingFile(f"{run_dir} has no summary.json: the run is unfinished (rerun `prism run` to resume it)")
    summary = json.loads(summary_path.read_text())
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    return {
        "dir": str(run_dir),
        "method": summary["method"],
        "seed": config.get("seed"),
        "env": config.get("env"),
        "model": config.get("model"),
        "agent": config.get("agent") or {},
        "eval": summary["eval"],
        "cost": summary["cost"],
    }


def _mean_std(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f}"


TRAINING_PHASES = ("probe", "pass-rate", "sft", "reprobe", "rl")  # the paper's Table 3: evaluation apart
PHASES = (*TRAINING_PHASES, "eval")


def training_wall(run: dict) -> float:
    """Wall-clock of probe + pass-rate + SFT (+ re-probe) + RL: what the speed-up counts (method.md)."""
    phases = run["cost"]["phases"]
    return float(sum(phases.get(p, {}).get("wall_seconds", 0.0) for p in TRAINING_PHASES))


def _agent_context_line(runs: list[dict]) -> str:
    """The context RL, evaluation and pass-rate ran in (the run config's `agent:`, unset keys at the
    trainers' defaults); runs compared in different contexts are named, since that changes scores."""
    contexts = sorted({json.dumps(r["agent"], sort_keys=True) for r in runs})
    if len(contexts) == 1:
        return f"Agent context (RL, evaluation, pass-rate): `{contexts[0]}`."
    per_run = "; ".join(f"{r['dir']}: `{json.dumps(r['agent'], sort_keys=True)}`" for r in runs)
    return f"**The runs differ in agent context**, so their scores are not directly comparable: {per_run}."


def compare_runs(run_dirs: list[str | Path], out: str | Path) -> dict:
    runs = [load_run(Path(d)) for d in run_dirs]
    by_method = defaultdict(list)
    for run in runs:
        by_method[run["method"]].append(run)
    splits = sorted({split for run in runs for split in run["eval"]})
    baseline_cost = None
    if BASELINE in by_method:
        baseline_cost = np.mean([training_wall(r) for r in by_method[BASELINE]])

    rows = []
    for method, group in by_method.items():
        row = {"method": method, "runs": len(group), "seeds": sorted(r["seed"] for r in group)}
        for split in splits:
            row[f"{split} success %"] = [100 * r["eval"][split]["success"] for r in group if split in r["eval"]]
            row[f"{split} score"] = [r["eval"][split]["score"] for r in group if split in r["eval"]]
        walls = [training_wall(r) for r in group]
        row["wall s"] = walls
        row["eval s"] = [r["cost"]["phases"].get("eval", {}).get("wall_seconds", 0.0) for r in group]
        row["phases"] = {
            phase: float(np.mean([r["cost"]["phases"].get(phase, {}).get("wall_seconds", 0.0) for r in group])) for phase in PHASES
        }
        row["speed-up vs rl-all"] = None if baseline_cost is None else baseline_cost / np.mean(walls)
        rows.append(row)

    columns = (
        ["method", "runs"]
        + [c for split in splits for c in (f"{split} success %", f"{split} score")]
        + ["wall s", "eval s", "speed-up vs rl-all"]
    )
    lines = [
        "# Runs compared",
        "",
        f"{len(runs)} runs; env {sorted({r['env'] for r in runs})}; model {sorted({str(r['model']) for r in runs})}.",
        "Success and score are mean ± std over seeds. Wall-clock is probe + pass-rate + SFT + RL from the run's "
        "ledger, evaluation shown apart (eval s); the speed-up is rl-all's over the method's, on the same machine "
        "(the paper's Table 3, 3.22×, excludes evaluation the same way).",
        "",
        _agent_context_line(runs),
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for row in rows:
        cells = []
        for column in columns:
            value = row[column]
            if isinstance(value, list):
                cells.append(_mean_std(value))
            elif isinstance(value, float):
                cells.append(f"{value:.2f}×" if column.startswith("speed-up") else f"{value:.2f}")
            else:
                cells.append("–" if value is None else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Cost per phase (mean wall-clock seconds)",
        "",
        "| method | " + " | ".join(PHASES) + " |",
        "|" + "---|" * (len(PHASES) + 1),
    ]
    for row in rows:
        lines.append(f"| {row['method']} | " + " | ".join(f"{row['phases'][p]:.0f}" for p in PHASES) + " |")
    lines += ["", "![success](comparison.png)", ""]

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _plot(rows, splits, out / "comparison.png")
    atomic_write_text(out / "comparison.md", "\n".join(lines))
    result = {"runs": runs, "rows": rows}
    atomic_write_json(out / "comparison.json", result)
    return result


def _plot(rows: list[dict], splits: list[str], path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    names = [r["method"] for r in rows]
    width = 0.8 / max(1, len(splits))
    for i, split in enumerate(splits):
        means = [np.mean(r[f"{split} success %"]) if r[f"{split} success %"] else 0 for r in rows]
        errors = [np.std(r[f"{split} success %"], ddof=1) if len(r[f"{split} success %"]) > 1 else 0 for r in rows]
        axes[0].bar(np.arange(len(rows)) + i * width, means, width, yerr=errors, label=split, capsize=3)
    axes[0].set_xticks(np.arange(len(rows)) + width * (len(splits) - 1) / 2, names, rotation=30, ha="right")
    axes[0].set_ylabel("success %")
    axes[0].legend()
    bottom = np.zeros(len(rows))
    for phase in PHASES:
        values = np.array([r["phases"][phase] for r in rows])
        axes[1].bar(names, values, bottom=bottom, label=phase)
        bottom += values
    axes[1].set_ylabel("wall-clock seconds")
    axes[1].tick_params(axis="x", rotation=30)
    axes[1].legend()
    atomic_savefig(fig, path)
    plt.close(fig)
