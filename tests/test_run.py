"""`prism run` end to end on the tiny config: every phase, resume, and the baselines' plumbing."""

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from prismrl.cli import app
from prismrl.config import build
from prismrl.fileio import read_jsonl_prefix
from prismrl.run import load_run_config, run

TINY = Path(__file__).resolve().parents[1] / "configs" / "tiny" / "webshop.yaml"


def test_every_phase_then_resume_skips_them(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(TINY), "--out", str(out)])
    assert result.exit_code == 0, result.output
    for path in ("data/expert.jsonl", "route/split.json", "route/report.md", "sft/final/config.json",
                 "rl/final/config.json", "rl/rl_metrics.jsonl", "eval/test/results.json", "eval/test/episodes.jsonl"):
        assert (out / path).exists(), path
    split = json.loads((out / "route" / "split.json").read_text())
    assert len(split["ids_sft"]) == len(split["ids_rl"]) == 4
    rl_tasks = {t for m in read_jsonl_prefix(out / "rl" / "rl_metrics.jsonl") for t in m["tasks"]}
    routed_rl_tasks = {json.loads(line)["task_id"] for line in (out / "route" / "rl.jsonl").read_text().splitlines()}
    assert rl_tasks <= routed_rl_tasks
    ledger = read_jsonl_prefix(out / "ledger.jsonl")
    assert [r["phase"] for r in ledger] == ["probe", "sft", "rl", "eval"]
    assert all(r["flops"] > 0 and r["wall_seconds"] > 0 for r in ledger)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["final_model"].endswith("rl/final") and summary["eval"]["test"]["episodes"] == 4

    again = run(load_run_config(TINY), out)
    assert len(read_jsonl_prefix(out / "ledger.jsonl")) == 4  # nothing redone
    assert again["eval"] == summary["eval"]

    changed = CliRunner().invoke(app, ["run", str(TINY), "--out", str(out), "--set", "rl.steps=3"])
    assert changed.exit_code == 2 and "another config" in changed.output


@pytest.mark.parametrize("method,phases", [("base", ["eval"]), ("random", ["sft", "rl", "eval"]),
                                           ("pass-rate", ["pass-rate", "sft", "rl", "eval"])])
def test_baselines_run_only_their_phases(tmp_path, method, phases):
    config = load_run_config(TINY, [f"method={method}", "rl.steps=1"])
    run(config, tmp_path)
    assert [r["phase"] for r in read_jsonl_prefix(tmp_path / "ledger.jsonl")] == phases
    saved = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert saved["method"] == method and saved["rl"]["steps"] == 1


def test_config_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="unknown method 'prism-magic'"):
        load_run_config(TINY, ["method=prism-magic"])
    with pytest.raises(ValueError, match="unknown run option"):
        load_run_config(TINY, ["modle=tiny"])


def test_report_compares_methods_and_speed_up(tmp_path):
    from prismrl.report.runs import compare_runs

    for method in ("rl-all", "random"):
        run(load_run_config(TINY, [f"method={method}", "rl.steps=1"]), tmp_path / method)
    result = CliRunner().invoke(app, ["report", str(tmp_path / "rl-all"), str(tmp_path / "random"), "--out", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    rows = {r["method"]: r for r in compare_runs([tmp_path / "rl-all", tmp_path / "random"], tmp_path / "report")["rows"]}
    assert rows["rl-all"]["speed-up vs rl-all"] == 1.0
    expected = rows["rl-all"]["wall s"][0] / rows["random"]["wall s"][0]
    assert rows["random"]["speed-up vs rl-all"] == expected
    assert (tmp_path / "report" / "comparison.png").stat().st_size > 0
    assert "speed-up" in (tmp_path / "report" / "comparison.md").read_text()
    with_unfinished = CliRunner().invoke(app, ["report", str(tmp_path / "nothing-here")])
    assert with_unfinished.exit_code == 2 and "no summary.json" in with_unfinished.output


def test_alfworld_pipeline_on_generated_games(tmp_path):
    pytest.importorskip("alfworld")
    config = load_run_config(TINY.parent / "alfworld.yaml")
    summary = run(config, tmp_path)
    assert len(list((tmp_path / "games" / "json_2.1.1" / "train").glob("*/*/game.tw-pddl"))) == 4
    assert [r["phase"] for r in read_jsonl_prefix(tmp_path / "ledger.jsonl")] == ["probe", "sft", "rl", "eval"]
    assert summary["eval"]["valid_seen"]["episodes"] == 2
    experts = [json.loads(line) for line in (tmp_path / "data" / "expert.jsonl").read_text().splitlines()]
    assert len(experts) == 4 and all(e["env"] == "alfworld" and e["reward"] == 1.0 for e in experts)


RUN_CONFIGS = sorted(p for p in TINY.parents[1].glob("*/*.yaml") if p.parent.name != "accelerate")  # accelerate/: launcher configs


@pytest.mark.parametrize("path", RUN_CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_configs_are_valid(path):
    from prismrl.evaluate import EvalConfig
    from prismrl.train.rl import RLConfig
    from prismrl.train.sft import SFTTrainConfig

    config = load_run_config(path)
    build(RLConfig, config.rl, "rl")
    build(EvalConfig, {k: v for k, v in config.eval.items() if k != "splits"}, "eval")
    build(SFTTrainConfig, {"data": "x", **config.sft}, "sft")
