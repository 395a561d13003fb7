"""`prism results`: RESULTS.md from saved grid runs — intervals, verdicts, cost, plots."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from prismrl.cli import app
from prismrl.errors import InputError
from prismrl.report.results import difference, interval, load_grid, outcomes, verdict, write_results

GOALS = [str(i) for i in range(40)]


def _save_run(
    folder: Path,
    name: str,
    method: str,
    seed: int,
    wins: list[bool],
    phases: dict,
    share: float = 0.5,
    goals=GOALS,
    routings=None,
    flops_per_second: float = 1e12,
):
    run = folder / name
    (run / "eval" / "test").mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"method": method, "seed": seed, "env": "webshop", "route": {"rl_share": share}}))
    episodes = [
        {"task_id": g, "task_type": ("odd", "even")[int(g) % 2], "won": w, "reward": 1.0 if w else 0.5} for g, w in zip(goals, wins)
    ]
    (run / "eval" / "test" / "episodes.jsonl").write_text("".join(json.dumps(e) + "\n" for e in episodes))
    cost = {"phases": {p: {"wall_seconds": s, "flops": flops_per_second * s} for p, s in phases.items()}, "total": {}}
    (run / "summary.json").write_text(json.dumps({"method": method, "eval": {"test": {"success": float(np.mean(wins))}}, "cost": cost}))
    if "rl" in phases:
        (run / "rl").mkdir()
        (run / "rl" / "rl_metrics.jsonl").write_text("".join(json.dumps({"reward": r}) + "\n" for r in (0.1, 0.4, 0.6)))
    for folder_name, routing in (routings or {}).items():
        (run / folder_name).mkdir()
        (run / folder_name / "routing.json").write_text(json.dumps(routing))


def _grid(tmp_path: Path) -> Path:
    grid = tmp_path / "results" / "webshop-small"
    rng = np.random.default_rng(0)
    for seed in (0, 1):
        _save_run(
            grid, f"prism-gini-s{seed}", "prism-gini", seed, [True] * 30 + [False] * 10, {"probe": 60, "sft": 600, "rl": 1200, "eval": 500}
        )
        _save_run(grid, f"random-s{seed}", "random", seed, [True] * 10 + [False] * 30, {"sft": 600, "rl": 1200, "eval": 500})
        _save_run(
            grid,
            f"sft-then-rl-s{seed}",
            "sft-then-rl",
            seed,
            [bool(w) for w in rng.random(40) < 0.75],
            {"sft": 1200, "rl": 2400, "eval": 500},
        )
        # rl-all's machine was twice as fast for its FLOPs: the two speed-ups part
        _save_run(grid, f"rl-all-s{seed}", "rl-all", seed, [False] * 40, {"rl": 3600, "eval": 500}, flops_per_second=2e12)
        _save_run(grid, f"magnitude-s{seed}", "magnitude", seed, [True] * 39 + [False], {"probe": 60, "sft": 600, "rl": 1200, "eval": 500})
    (grid / "inverse-s0").mkdir()  # an unfinished run: no summary.json, left out
    return grid


def test_intervals_and_verdicts():
    assert interval(np.ones((3, 50))) == (1.0, 1.0)
    low, high = interval(np.array([[1.0, 0.0] * 50]))
    assert low < 0.5 < high and high - low < 0.25
    better, worse = np.array([[1.0] * 30 + [0.0] * 10]), np.array([[1.0] * 10 + [0.0] * 30])
    d, lo, hi = difference(better, worse)
    assert d == pytest.approx(0.5) and 0 < lo < 0.5 < hi
    assert verdict(lo, hi) == "supported" and verdict(*difference(worse, better)[1:]) == "not supported"
    assert verdict(*difference(better, better)[1:]) == "inconclusive"


def test_the_page_has_every_method_the_paper_beside_and_a_verdict_per_claim(tmp_path):
    grid = _grid(tmp_path)
    assert sorted(r.name for r in load_grid(grid)) == sorted(p.name for p in grid.iterdir() if p.name != "inverse-s0")
    text = write_results([grid], tmp_path / "RESULTS.md")
    rows = {}
    for line in text.splitlines():
        if line.startswith("| "):
            rows.setdefault(line.split(" | ")[0].strip("| "), line)  # the main table's row, not the by-type one
    assert rows["prism-gini"].startswith("| prism-gini | 2 | 75.0 ± 0.0 |") and "64.84 / 85.15" in rows["prism-gini"]
    # rl-all trains 60 min, prism-gini 1 + 10 + 20: 1.94x by wall-clock, 3.87x by FLOPs
    assert "| 1.94× | 3.87× |" in rows["prism-gini"] and "| 1.00× | 1.00× |" in rows["rl-all"]
    assert "(b) PRISM-Gini > Random | +50.0" in text and rows["(b) PRISM-Gini > Random"].endswith("| supported |")
    assert rows["(c) Gini > magnitude routing"].endswith("| not supported |")
    assert "not run yet (inverse)" in rows["(b) PRISM-Gini > Inverse"]
    assert "RL wall-clock 0.50× SFT-then-RL's, RL FLOPs 0.50×" in rows["(a) PRISM-Gini ≥ SFT-then-RL at about half the RL cost"]
    assert "not run yet (prism-gini-rl*)" in text
    assert "| random | 25.0 | 25.0 |" in text  # by task type: goals 0-9 won, 5 of the 20 even ones and 5 of the 20 odd
    for png in ("webshop-pareto.png", "webshop-rl-curves.png"):
        assert (tmp_path / "results" / "figures" / png).stat().st_size > 0 and f"(results/figures/{png})" in text


def test_the_share_sweep_is_plotted_and_judged(tmp_path):
    grid = _grid(tmp_path)
    for share, wins in ((0.25, 20), (0.75, 25)):
        _save_run(grid, f"prism-gini-rl{share:g}-s0", "prism-gini", 0, [True] * wins + [False] * (40 - wins), {"rl": 600}, share=share)
    text = write_results([grid], tmp_path / "RESULTS.md")
    assert "| (d) an inverted U over the RL share, peak near 50 % | 0.5 − 0.25: +25.0" in text
    assert "webshop-rl-share.png" in text


def test_seeds_on_different_goals_are_refused(tmp_path):
    grid = tmp_path / "grid"
    _save_run(grid, "random-s0", "random", 0, [True] * 40, {"rl": 1})
    _save_run(grid, "random-s1", "random", 1, [True] * 40, {"rl": 1}, goals=GOALS[::-1])
    with pytest.raises(InputError, match="different goals"):
        outcomes(load_grid(grid), "test", "won")
    missing = CliRunner().invoke(app, ["results", str(tmp_path / "nowhere"), "--out", str(tmp_path / "R.md")])
    assert missing.exit_code == 2 and "no such results folder" in missing.output


def test_the_reprobe_after_sft_reports_who_changed_side_and_the_outcome_against_prism_gini(tmp_path):
    grid = _grid(tmp_path)
    ids = [f"t{i}" for i in range(8)]
    before = {"ids_rl": ids[4:], "scores": {i: float(k) for k, i in enumerate(ids)}}
    # the SFT model reverses the order of the first six: t4, t5 leave the RL half, t0, t1 enter it
    after_scores = {**{i: float(5 - k) for k, i in enumerate(ids[:6])}, "t6": 6.0, "t7": 7.0}
    after = {"ids_rl": ["t0", "t1", "t6", "t7"], "scores": after_scores}
    phases = {"probe": 60, "sft": 600, "reprobe": 60, "rl": 1200, "eval": 500}
    _save_run(grid, "prism-gini-reprobe-s0", "prism-gini-reprobe", 0, [True] * 40, phases, routings={"route": before, "reroute": after})
    text = write_results([grid], tmp_path / "RESULTS.md")
    (row,) = [line for line in text.splitlines() if line.startswith("| 0 | ")]
    rho = np.corrcoef(list(before["scores"].values()), list(after_scores.values()))[0, 1]  # no ties: Pearson on ranks
    assert row.startswith(f"| 0 | 2/4 | {rho:+.2f} | +25.0 (")
    # its probe column counts the re-probe: 1 + 1 min
    assert any(line.startswith("| prism-gini-reprobe | 1 | 100.0 |") and "| 2 | 10 | 20 | 8 |" in line for line in text.splitlines())
