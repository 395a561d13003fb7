"""What the score tracks: correlations, agreement between scores, stability of the routing."""

import json
import math
from pathlib import Path

import numpy as np

from prismrl.report.score_analysis import roc_auc, score_section, spearman, stability_table

from conftest import write_jsonl


def _records(trajectories, seed=0, units=12):
    rng = np.random.default_rng(seed)
    return [
        {
            "id": t.id,
            "task_id": t.task_id,
            "n_tokens": 100 + 10 * i,
            "n_response_tokens": 10 + i,
            "loss": float(rng.random()),
            "norms": list(rng.random(units) ** (1 + i % 4)),
        }
        for i, t in enumerate(trajectories)
    ]


def test_spearman_is_pearson_on_average_ranks():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 400]) == 1.0
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    assert spearman([1, 1, 2, 2], [1, 1, 2, 2]) == 1.0
    assert math.isnan(spearman([1, 2, 3], [5, 5, 5]))


def _rows(table: list[str], name: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in table if line.startswith(f"| {name} |")]


def _row(table: list[str], name: str) -> list[str]:
    (row,) = _rows(table, name)
    return row


def test_the_same_probe_again_changes_no_side_and_a_perturbed_sample_is_judged_by_the_main_threshold(trajectories):
    records = _records(trajectories)
    flipped = [dict(r) for r in records[:4]]
    for r in flipped:  # a flat vector has Gini 0: every one of them goes to SFT
        r["norms"] = [1.0] * len(r["norms"])
    table = stability_table(records, {"repeat": [dict(r) for r in records], "flat sample": flipped})
    assert _row(table, "repeat")[1:] == ["12", "its own median split", "0/12 = 0%", "+1.00"]
    main_gini_rl = sum(1 for r in records[:4] if _gini(r) > np.median([_gini(x) for x in records]))
    assert _row(table, "flat sample")[3] == f"{main_gini_rl}/4 = {main_gini_rl / 4:.0%}"


def _gini(record):
    from prismrl.prism.score import gini

    return gini(np.array(record["norms"]))


def test_the_section_reads_the_grids_shared_folder(tmp_path, trajectories):
    shared = tmp_path / "shared"
    (shared / "route").mkdir(parents=True)
    (shared / "data").mkdir()
    write_jsonl(shared / "data" / "expert.jsonl", [t.to_dict() for t in trajectories])
    write_jsonl(shared / "route" / "probe.jsonl", _records(trajectories))
    (shared / "route" / "probe_meta.json").write_text(
        json.dumps({"model": "tiny", "unit_names": ["u"] * 12, "max_length": 512, "dtype": "float32"})
    )
    rates = {t.task_id: i / 12 for i, t in enumerate(trajectories)}
    lines = score_section(shared, rates)
    header = next(line for line in lines if line.startswith("| score |"))
    assert header.split(" | ")[1:] == ["SFT loss", "length (tokens)", "turns", "response-token share", "base pass rate |"]
    for metric in ("gini", "kurtosis", "cv", "l2"):
        tracks, agreement = _rows(lines, metric)
        assert all(cell.startswith(("+", "-")) for cell in tracks[1:])  # a finite ρ with every covariate
        assert agreement[1 + ("gini", "kurtosis", "cv", "l2").index(metric)] == "1.00"  # a score agrees with itself
    assert any("not measured yet" in line for line in lines)
    (shared / "stability" / "repeat").mkdir(parents=True)
    write_jsonl(shared / "stability" / "repeat" / "probe.jsonl", _records(trajectories))
    assert _row(score_section(shared, None), "repeat")[1:4] == ["12", "its own median split", "0/12 = 0%"]


def test_roc_auc_counts_ties_half():
    assert roc_auc([0.9, 0.8, 0.1, 0.2], [True, True, False, False]) == 1.0
    assert roc_auc([0.1, 0.2, 0.9, 0.8], [True, True, False, False]) == 0.0
    assert roc_auc([0.5, 0.5, 0.5, 0.5], [True, False, True, False]) == 0.5
    assert math.isnan(roc_auc([0.1, 0.2], [True, True]))


def test_the_premise_table_finds_the_mirror_houses(tmp_path):
    from prismrl.data.generate import expert_trajectory
    from prismrl.envs import make

    env = make("mirror", n_train=16, n_test=4)
    trajectories = [expert_trajectory(env, "mirror", task_id) for task_id in env.tasks("train")]
    records = _records(trajectories)
    for record, trajectory in zip(records, trajectories):  # mirror houses concentrated, plain ones flat
        record["norms"] = [1.0] * 11 + [12.0 if trajectory.meta["task_type"] == "mirror" else 1.5]
    shared = tmp_path / "shared"
    (shared / "route").mkdir(parents=True)
    (shared / "data").mkdir()
    write_jsonl(shared / "data" / "expert.jsonl", [t.to_dict() for t in trajectories])
    write_jsonl(shared / "route" / "probe.jsonl", records)
    (shared / "route" / "probe_meta.json").write_text(
        json.dumps({"model": "tiny", "unit_names": ["u"] * 12, "max_length": 512, "dtype": "float32"})
    )
    (row,) = [line for line in score_section(shared, None) if line.startswith("| ROC AUC")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[0] == "ROC AUC (8 mirror of 16)" and cells[1:5] == ["1.00", "1.00", "1.00", "1.00"]


def test_the_stability_probes_of_the_script_feed_the_table(tmp_path, trajectory_file, monkeypatch):
    """The same probe again changes nothing (the probe is deterministic); a paraphrased system
    prompt is a probe of every trajectory, routed by its own median."""
    import sys

    from typer.testing import CliRunner

    from prismrl.cli import app

    shared = tmp_path / "shared"
    (shared / "data").mkdir(parents=True)
    write_jsonl(
        shared / "data" / "expert.jsonl", [json.loads(line) | {"env": "webshop"} for line in trajectory_file.read_text().splitlines()]
    )
    result = CliRunner().invoke(app, ["probe", "--data", str(trajectory_file), "--out", str(shared / "route"), "--model", "tiny"])
    assert result.exit_code == 0, result.output
    script = _probe_stability_script()
    monkeypatch.setattr(sys, "argv", ["probe_stability.py", str(shared), "--sample", "4", "--only", "repeat", "--only", "paraphrase"])
    script.main()
    paraphrased = (shared / "stability" / "paraphrase" / "expert.jsonl").read_text()
    assert "This is WebShop, an online store" in paraphrased
    lines = score_section(shared, None)
    assert _row(lines, "repeat")[1:4] == ["4", "the main threshold (" + _row(lines, "repeat")[2].split("(")[1], "0/4 = 0%"]
    assert _row(lines, "paraphrase")[1:3] == ["12", "its own median split"]


def _probe_stability_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("probe_stability", Path(__file__).resolve().parents[1] / "scripts" / "probe_stability.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_paraphrases_reword_the_instructions_and_keep_the_reply_format():
    from prismrl.envs.mirror import prompt as mirror_prompt
    from prismrl.envs.webshop import prompt as webshop_prompt

    for env, original in (("webshop", webshop_prompt.SYSTEM_PROMPT), ("mirror", mirror_prompt.SYSTEM_PROMPT)):
        paraphrase = _probe_stability_script().PARAPHRASES[env]
        instructions, reply_format = paraphrase.split("exactly this format:\n")
        assert reply_format == original.split("exactly this format:\n")[1], env
        assert instructions not in original, env
