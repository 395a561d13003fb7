"""`prism grid`: the run order, sharing between runs with the cost kept in each ledger, resume,
and the results saved for committing."""

import filecmp
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prismrl.cli import app
from prismrl.errors import ConfigError
from prismrl.fileio import read_jsonl_prefix
from prismrl.pipeline.grid import Entry, entry_config, grid_plan, run_grid, save_shared_inputs, siblings, take_shared

TINY = Path(__file__).resolve().parents[1] / "configs" / "tiny" / "webshop.yaml"
CHEAP = ["rl.steps=1", "eval.episodes=2", "generate.n=6"]


def test_the_plan_fills_a_seed_before_the_next_and_the_configs_share_is_not_run_twice():
    plan = grid_plan(TINY, ["prism-gini", "random"], [0, 1], shares=[0.25, 0.5], share_methods=["prism-gini"])
    assert [e.name for e in plan] == [
        "prism-gini-s0",
        "random-s0",
        "prism-gini-rl0.25-s0",
        "prism-gini-s1",
        "random-s1",
        "prism-gini-rl0.25-s1",
    ]


def _ledger(run_dir: Path) -> list[dict]:
    return read_jsonl_prefix(run_dir / "ledger.jsonl")


def test_runs_share_data_probe_and_sft_and_each_ledger_keeps_its_methods_cost(tmp_path):
    plan = [Entry("prism-gini", 0), Entry("magnitude", 0), Entry("sft-all", 0), Entry("sft-then-rl", 0)]
    events = list(run_grid(TINY, tmp_path, plan, CHEAP))
    assert [(e.name, summary is None) for e, _, summary in events] == [(e.name, started) for e in plan for started in (True, False)]
    gini, magnitude, sft_all, sft_then_rl = (tmp_path / e.name for e in plan)

    for run_dir in (magnitude, sft_all, sft_then_rl):
        assert filecmp.cmp(gini / "data" / "expert.jsonl", run_dir / "data" / "expert.jsonl", shallow=False)
    # magnitude routes by gini's probe: the same records, the probe's cost copied, nothing probed again
    assert filecmp.cmp(gini / "route" / "probe.jsonl", magnitude / "route" / "probe.jsonl", shallow=False)
    (probed,) = [r for r in _ledger(gini) if r["phase"] == "probe"]
    shared, routed = [r for r in _ledger(magnitude) if r["phase"] == "probe"]
    assert {**shared, "note": ""} == {**probed, "note": ""} and shared["note"] == "shared from prism-gini-s0"
    assert routed["backward_tokens"] == 0 and routed["note"] == ""
    assert json.loads((magnitude / "route" / "routing.json").read_text())["router"] == "magnitude"
    # sft-then-rl continues from sft-all's checkpoint (hard links), with its SFT cost
    weights = next((sft_all / "sft" / "final").glob("*.safetensors"))
    assert (sft_then_rl / "sft" / "final" / weights.name).stat().st_ino == weights.stat().st_ino
    assert [r["phase"] for r in _ledger(sft_then_rl)] == ["sft", "rl", "eval"]
    assert _ledger(sft_then_rl)[0]["note"] == "shared from sft-all-s0"
    assert _ledger(sft_then_rl)[0]["flops"] == _ledger(sft_all)[0]["flops"]

    # passed on again, the records still name the run that paid
    take_shared(entry_config(TINY, plan[3], CHEAP), tmp_path / "another", [sft_then_rl])
    assert [r["note"] for r in _ledger(tmp_path / "another")] == ["shared from sft-all-s0"]
    # the shared inputs are saved once, from the run that computed them
    save_shared_inputs(tmp_path, plan, tmp_path / "results" / "shared")
    for relative in ("data/expert.jsonl", "route/probe.jsonl", "route/probe_meta.json"):
        assert filecmp.cmp(gini / relative, tmp_path / "results" / "shared" / relative, shallow=False)

    ledgers = {e.name: _ledger(tmp_path / e.name) for e in plan}
    again = list(run_grid(TINY, tmp_path, plan, CHEAP))
    assert all(summary is not None for _, _, summary in again)  # every run finished: nothing runs
    assert {e.name: _ledger(tmp_path / e.name) for e in plan} == ledgers


def test_an_interrupted_share_is_not_counted_twice(tmp_path):
    plan = [Entry("prism-gini", 0), Entry("inverse", 0)]
    list(run_grid(TINY, tmp_path, plan[:1], CHEAP))
    from prismrl.pipeline.grid import _copy_records

    # the ledger copy landed, then the process died before the records were copied
    _copy_records(tmp_path / "prism-gini-s0", tmp_path / "inverse-s0", "probe")
    take_shared(entry_config(TINY, plan[1], CHEAP), tmp_path / "inverse-s0", [tmp_path / "prism-gini-s0"])
    assert [r["note"] for r in _ledger(tmp_path / "inverse-s0")] == ["shared from prism-gini-s0"]
    assert (tmp_path / "inverse-s0" / "route" / "probe.jsonl").exists()


def test_a_fresh_machine_takes_the_data_and_the_probe_back_from_the_committed_results(tmp_path):
    from prismrl.report.save import save_summary

    first, results = tmp_path / "first-machine", tmp_path / "results"
    list(run_grid(TINY, first, [Entry("prism-gini", 0)], CHEAP))
    save_summary(first / "prism-gini-s0", results / "prism-gini-s0")
    save_shared_inputs(first, [Entry("prism-gini", 0)], results / "shared")

    fresh = tmp_path / "second-machine"
    list(run_grid(TINY, fresh, [Entry("magnitude", 0)], CHEAP, results))
    for relative in ("data/expert.jsonl", "route/probe.jsonl"):
        assert filecmp.cmp(first / "prism-gini-s0" / relative, fresh / "magnitude-s0" / relative, shallow=False)
    (probed,) = [r for r in _ledger(first / "prism-gini-s0") if r["phase"] == "probe"]
    shared, routed = [r for r in _ledger(fresh / "magnitude-s0") if r["phase"] == "probe"]
    assert {**shared, "note": ""} == {**probed, "note": ""} and shared["note"] == "shared from prism-gini-s0"
    assert routed["backward_tokens"] == 0  # nothing probed again

    # another config's results are not taken: its data would not be this config's
    list(run_grid(TINY, tmp_path / "other", [Entry("inverse", 0)], [*CHEAP, "generate.n=5"], results))
    assert [r["note"] for r in _ledger(tmp_path / "other" / "inverse-s0") if r["phase"] == "probe"] == [""]
    # nor a probe of other trajectories than the run's (here: data a sibling generated again)
    third = tmp_path / "third-machine"
    list(run_grid(TINY, third, [Entry("random", 0)], CHEAP))
    saved = results / "shared" / "data" / "expert.jsonl"
    saved.write_text("".join(saved.read_text().splitlines(keepends=True)[:-1]))
    list(run_grid(TINY, third, [Entry("inverse", 0)], CHEAP, results))
    assert [r["note"] for r in _ledger(third / "inverse-s0") if r["phase"] == "probe"] == [""]


def test_a_run_committed_with_the_same_config_is_not_run_again_on_a_fresh_machine(tmp_path):
    from prismrl.report.save import save_summary

    first, results, fresh = tmp_path / "first-machine", tmp_path / "results", tmp_path / "second-machine"
    list(run_grid(TINY, first, [Entry("base", 0)], CHEAP))
    save_summary(first / "base-s0", results / "base-s0")
    committed = json.loads((results / "base-s0" / "summary.json").read_text())

    assert list(run_grid(TINY, fresh, [Entry("base", 0)], CHEAP, results)) == [(Entry("base", 0), results / "base-s0", committed)]
    assert not (fresh / "base-s0").exists()
    listed = CliRunner().invoke(
        app,
        ["grid", str(TINY), "--out", str(fresh), "--methods", "base", "--seeds", "0,1", "--results", str(results)]
        + [arg for o in CHEAP for arg in ("--set", o)]
        + ["--list"],
    )
    assert listed.exit_code == 0 and listed.output.split() == ["base-s0", "done", "(committed", "to", f"{results})", "base-s1", "to", "do"]

    # another config (more evaluation episodes) is run, not taken
    ran = list(run_grid(TINY, fresh, [Entry("base", 0)], [*CHEAP, "eval.episodes=3"], results))
    assert [folder for _, folder, _ in ran] == [fresh / "base-s0"] * 2
    assert ran[-1][2]["eval"]["test"]["episodes"] == 3


def test_a_later_grid_call_shares_with_the_runs_an_earlier_one_left_of_the_same_config_only(tmp_path):
    list(run_grid(TINY, tmp_path, [Entry("prism-gini", 0)], CHEAP))
    list(run_grid(TINY, tmp_path / "other", [Entry("random", 0)], [*CHEAP, "eval.episodes=1"]))
    (tmp_path / "other" / "random-s0").rename(tmp_path / "random-s0")  # same grid folder, another config
    list(run_grid(TINY, tmp_path, [Entry("inverse", 0)], CHEAP))
    assert [(r["phase"], r["note"]) for r in _ledger(tmp_path / "inverse-s0") if r["phase"] == "probe"] == [
        ("probe", "shared from prism-gini-s0"),
        ("probe", ""),  # routing the shared records
    ]
    cfg = entry_config(TINY, Entry("magnitude", 0), CHEAP)
    found = siblings(tmp_path, tmp_path / "magnitude-s0", cfg, [tmp_path / "magnitude-s0"])
    assert [p.name for p in found] == ["inverse-s0", "prism-gini-s0"]


def test_a_folder_holding_another_config_is_refused_before_anything_is_copied(tmp_path):
    list(run_grid(TINY, tmp_path, [Entry("random", 0)], CHEAP))
    (tmp_path / "prism-gini-s0").mkdir()
    (tmp_path / "prism-gini-s0" / "config.yaml").write_text("method: prism-gini\n")
    with pytest.raises(ConfigError, match="another config"):
        list(run_grid(TINY, tmp_path, [Entry("random", 0), Entry("prism-gini", 0)], CHEAP))
    assert sorted(p.name for p in (tmp_path / "prism-gini-s0").iterdir()) == ["config.yaml"]


def test_the_command_lists_runs_and_saves_each_finished_runs_summary(tmp_path):
    grid = ["grid", str(TINY), "--out", str(tmp_path / "grid"), "--methods", "base", "--seeds", "0,1"]
    overrides = [arg for o in CHEAP for arg in ("--set", o)]
    listed = CliRunner().invoke(app, [*grid, *overrides, "--list"])
    assert listed.exit_code == 0 and listed.output.split() == ["base-s0", "to", "do", "base-s1", "to", "do"]
    result = CliRunner().invoke(app, [*grid, *overrides, "--results", str(tmp_path / "results")])
    assert result.exit_code == 0, result.output
    assert "grid base-s1: test success" in result.output
    saved = sorted(str(p.relative_to(tmp_path / "results")) for p in (tmp_path / "results").rglob("*") if p.is_file())
    assert saved == [
        f"base-s{seed}/{name}"
        for seed in (0, 1)
        for name in ("config.yaml", "eval/test/episodes.jsonl", "eval/test/results.json", "ledger.jsonl", "summary.json")
    ]
    # seeds are training seeds: both evaluate the same goals
    goals = [
        [
            json.loads(line)["task_id"]
            for line in (tmp_path / "results" / f"base-s{seed}" / "eval/test/episodes.jsonl").read_text().splitlines()
        ]
        for seed in (0, 1)
    ]
    assert goals[0] == goals[1]
    bad = CliRunner().invoke(app, [*grid[:-1], "zero"])
    assert bad.exit_code == 2 and "comma-separated list of int" in bad.output


def test_the_reprobe_variant_takes_prism_ginis_sft_and_runs_rl_on_the_half_its_sft_model_finds_conflicting(tmp_path):
    plan = [Entry("prism-gini", 0), Entry("prism-gini-reprobe", 0)]
    list(run_grid(TINY, tmp_path, plan, CHEAP))
    gini, reprobed = (tmp_path / e.name for e in plan)
    weights = next((gini / "sft" / "final").glob("*.safetensors"))
    assert (reprobed / "sft" / "final" / weights.name).stat().st_ino == weights.stat().st_ino
    ledger = _ledger(reprobed)
    assert [(r["phase"], r["note"]) for r in ledger] == [
        ("probe", "shared from prism-gini-s0"),
        ("sft", "shared from prism-gini-s0"),
        ("probe", ""),  # routing the shared records: nothing probed
        ("reprobe", ""),
        ("rl", ""),
        ("eval", "test"),
    ]
    assert ledger[3]["backward_tokens"] == ledger[0]["backward_tokens"] > 0  # every trajectory probed again
    meta = json.loads((reprobed / "reroute" / "probe_meta.json").read_text())
    assert meta["model"] == str(reprobed / "sft" / "final")
    before, after = (json.loads((reprobed / folder / "routing.json").read_text()) for folder in ("route", "reroute"))
    assert before == json.loads((gini / "route" / "routing.json").read_text())
    assert len(after["ids_rl"]) == len(before["ids_rl"]) and after["scores"] != before["scores"]
    routed = {json.loads(line)["task_id"] for line in (reprobed / "reroute" / "rl.jsonl").read_text().splitlines()}
    trained = {t for m in read_jsonl_prefix(reprobed / "rl" / "rl_metrics.jsonl") for t in m["tasks"]}
    assert trained and trained <= routed
