"""What a routing looks like and what its score tracks: `report.md`, `scores.png`, `layers.png`.

The report puts the evidence next to the routing: how the score correlates with loss and length
(is concentration just difficulty?), how often the other routers agree, and which unit kinds
carry the gradient in each half. Figures are written atomically.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from prismrl.fileio import atomic_savefig, atomic_write_text  # noqa: E402
from prismrl.prism.score import METRICS, normalize  # noqa: E402
from prismrl.prism.units import UNIT_ORDER  # noqa: E402
from prismrl.prism.route import Routing, route  # noqa: E402

COMPARED_ROUTERS = [("prism", "gini"), ("prism", "kurtosis"), ("prism", "cv"), ("magnitude", None), ("loss", None), ("length", None)]


def _label(router: str, metric: str | None) -> str:
    return f"{router}:{metric}" if metric else router


def score_table(records: list[dict], meta: dict, normalization: str) -> pd.DataFrame:
    g = normalize(np.array([r["norms"] for r in records]), meta["unit_numel"], normalization)
    table = pd.DataFrame({name: np.atleast_1d(metric(g)) for name, metric in METRICS.items()}, index=[r["id"] for r in records])
    table["loss"] = [r["loss"] for r in records]
    table["n_tokens"] = [r["n_tokens"] for r in records]
    table["n_response_tokens"] = [r["n_response_tokens"] for r in records]
    return table


def _markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    header = "| " + " | ".join([""] + [str(c) for c in frame.columns]) + " |"
    rule = "|" + "---|" * (len(frame.columns) + 1)
    rows = []
    for index, row in frame.iterrows():
        cells = [f"{v:.{digits}f}" if isinstance(v, (float, np.floating)) else str(v) for v in row]
        rows.append("| " + " | ".join([str(index)] + cells) + " |")
    return "\n".join([header, rule, *rows])


def agreement(records: list[dict], meta: dict, normalization: str, rl_share: float) -> pd.DataFrame:
    """Fraction of trajectories two routers put on the same side."""
    sides = {}
    for router, metric in COMPARED_ROUTERS:
        routing = route(records, router, metric or "gini", rl_share, meta["unit_numel"], normalization)
        rl = set(routing.ids_rl)
        sides[_label(router, metric)] = np.array([r["id"] in rl for r in records])
    names = list(sides)
    return pd.DataFrame([[float((sides[a] == sides[b]).mean()) for b in names] for a in names], index=names, columns=names)


def energy_by_kind(records: list[dict], meta: dict) -> pd.Series:
    """Share of the total squared gradient norm carried by each unit kind (q, k, v, ...)."""
    g2 = np.square(np.array([r["norms"] for r in records])).sum(axis=0)
    kinds = np.array(meta["unit_kinds"])
    numel = np.array(meta["unit_numel"], dtype=float)
    present = [k for k in UNIT_ORDER if k in set(kinds)]
    return pd.DataFrame(
        {
            "gradient energy": [g2[kinds == k].sum() / g2.sum() for k in present],
            "parameters": [numel[kinds == k].sum() / numel.sum() for k in present],
        },
        index=present,
    )


def layer_map(records: list[dict], meta: dict) -> np.ndarray:
    """(layers × unit kinds) mean of each trajectory's norms divided by their sum."""
    g = np.array([r["norms"] for r in records])
    g = g / g.sum(axis=1, keepdims=True)
    layers = np.array(meta["unit_layers"])
    kinds = np.array(meta["unit_kinds"])
    grid = np.full((layers.max() + 1, len(UNIT_ORDER)), np.nan)
    for column, kind in enumerate(UNIT_ORDER):
        for layer in range(layers.max() + 1):
            mask = (layers == layer) & (kinds == kind)
            if mask.any():
                grid[layer, column] = g[:, mask].sum(axis=1).mean()
    return grid


def score_bins(values: list[float], threshold: float | None, n_bins: int) -> np.ndarray:
    """Histogram edges with one edge on the threshold, so that no bar mixes the two halves."""
    edges = np.histogram_bin_edges(values, bins=n_bins)
    if threshold is None or not np.isfinite(threshold) or len(set(values)) < 2:
        return edges  # equal scores: numpy's unit-wide bins around them already read well
    width = edges[1] - edges[0]
    low = np.floor((min(values) - threshold) / width)
    high = max(np.ceil((max(values) - threshold) / width), low + 1)
    return threshold + width * np.arange(low, high + 1)


def plot_scores(routing: Routing, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    sft = [routing.scores[i] for i in routing.ids_sft]
    rl = [routing.scores[i] for i in routing.ids_rl]
    values = sft + rl
    bins = score_bins(values, routing.threshold, min(40, max(5, len(values) // 3)))
    ax.hist(sft, bins=bins, color="tab:blue", alpha=0.75, label=f"SFT ({len(sft)})")
    ax.hist(rl, bins=bins, color="tab:red", alpha=0.75, label=f"RL ({len(rl)})")
    if routing.threshold is not None:
        ax.axvline(routing.threshold, color="black", linestyle="--", label=f"threshold {routing.threshold:.4g}")
    ax.set_xlabel(routing.metric or "random draw")
    ax.set_ylabel("trajectories")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts: no 0.5 ticks on small inputs
    ax.set_title(f"router {routing.router}, RL share {routing.rl_share:.0%}")
    ax.legend()
    atomic_savefig(fig, path)
    plt.close(fig)


def plot_layers(records_by_half: dict[str, list[dict]], meta: dict, path: Path) -> None:
    halves = {name: layer_map(rs, meta) for name, rs in records_by_half.items() if rs}
    panels = list(halves.items())
    if len(halves) == 2:
        panels.append(("RL − SFT", halves["RL"] - halves["SFT"]))
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(3.2 * len(panels), 0.18 * next(iter(halves.values())).shape[0] + 2),
        squeeze=False,
        sharey=True,
        layout="constrained",
    )
    for ax, (title, grid) in zip(axes[0], panels):
        diverging = title.startswith("RL −")
        limit = np.nanmax(np.abs(grid)) if diverging else None
        image = ax.imshow(grid, aspect="auto", cmap="coolwarm" if diverging else "viridis", vmin=-limit if diverging else None, vmax=limit)
        ax.set_title(title)
        ax.set_xticks(range(len(UNIT_ORDER)), UNIT_ORDER, rotation=45)
        fig.colorbar(image, ax=ax, fraction=0.046)
    axes[0][0].set_ylabel("layer")
    fig.suptitle("mean share of a trajectory's gradient norm per unit")
    atomic_savefig(fig, path)
    plt.close(fig)


def write_route_report(
    out_dir: Path,
    routing: Routing,
    records: list[dict],
    meta: dict,
    normalization: str,
    flagged: dict[str, str],
    skipped: list[dict],
    n_truncated: int,
) -> None:
    out_dir = Path(out_dir)
    table = score_table(records, meta, normalization)
    by_id = {r["id"]: r for r in records}
    halves = {"SFT": [by_id[i] for i in routing.ids_sft], "RL": [by_id[i] for i in routing.ids_rl]}
    plot_scores(routing, out_dir / "scores.png")
    plot_layers(halves, meta, out_dir / "layers.png")

    stats = pd.DataFrame(
        {
            half: table.loc[[r["id"] for r in rs], ["gini", "kurtosis", "cv", "l2", "loss", "n_tokens"]].mean()
            for half, rs in halves.items()
            if rs
        }
    ).T
    # Spearman ρ = Pearson on average ranks (pandas' own spearman path needs scipy).
    ranks = table.rank()
    correlations = (
        ranks[["gini", "kurtosis", "cv", "hoyer", "l2"]]
        .apply(lambda column: ranks[["loss", "n_tokens", "n_response_tokens"]].corrwith(column))
        .T
    )
    lines = [
        "# PRISM routing report",
        "",
        f"- model: `{meta['model']}`, {len(meta['unit_names'])} units, max length {meta['max_length']}, dtype {meta['dtype']}",
        f"- router: **{routing.router}**, metric: {routing.metric}, normalization: {normalization}, RL share {routing.rl_share:.0%}",
        f"- trajectories routed: {len(records)} → SFT {len(routing.ids_sft)}, RL {len(routing.ids_rl)}; threshold {routing.threshold}",
        f"- truncated to the context length (oldest turns dropped): {n_truncated}",
        f"- excluded by the probe (flagged): {len(flagged)}; skipped as invalid input: {len(skipped)}",
        "",
        "![scores](scores.png)",
        "",
        "## Means per half",
        "",
        _markdown(stats),
        "",
        "## What the score tracks (Spearman ρ over routed trajectories)",
        "",
        "A concentration score that is mostly loss or length would make PRISM a difficulty router in disguise.",
        "",
        _markdown(correlations) if len(records) > 2 else "(too few trajectories)",
        "",
        "## How often routers agree (fraction on the same side)",
        "",
        _markdown(agreement(records, meta, normalization, routing.rl_share)),
        "",
        "## Gradient energy by unit kind",
        "",
        _markdown(energy_by_kind(records, meta)),
        "",
        "![layers](layers.png)",
        "",
    ]
    if flagged:
        lines += ["## Flagged by the probe (not routed)", ""] + [f"- `{i}`: {why}" for i, why in sorted(flagged.items())] + [""]
    if skipped:
        lines += ["## Skipped invalid input", ""] + [f"- {s['where']}: {s['reason']}" for s in skipped] + [""]
    atomic_write_text(out_dir / "report.md", "\n".join(lines))
