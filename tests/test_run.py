"""`prism run` end to end on the tiny config: every phase, resume, and the baselines' plumbing."""

import json
import warnings
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from prismrl.cli import app
from prismrl.config import build
from prismrl.errors import ConfigWarning
from prismrl.fileio import read_jsonl_prefix
from prismrl.pipeline.phase import Run
from prismrl.pipeline.run import run
from prismrl.pipeline.run_config import load_run_config

TINY = Path(__file__).resolve().parents[1] / "configs" / "tiny" / "webshop.yaml"


def test_every_phase_then_resume_skips_them(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(TINY), "--out", str(out)])
    assert result.exit_code == 0, result.output
    for path in (
        "data/expert.jsonl",
        "route/routing.json",
        "route/report.md",
        "sft/final/config.json",
        "rl/final/config.json",
        "rl/rl_metrics.jsonl",
        "eval/test/results.json",
        "eval/test/episodes.jsonl",
    ):
        assert (out / path).exists(), path
    routing = json.loads((out / "route" / "routing.json").read_text())
    assert len(routing["ids_sft"]) == len(routing["ids_rl"]) == 4
    rl_tasks = {t for m in read_jsonl_prefix(out / "rl" / "rl_metrics.jsonl") for t in m["tasks"]}
    routed_rl_tasks = {json.loads(line)["task_id"] for line in (out / "route" / "rl.jsonl").read_text().splitlines()}
    assert rl_tasks <= routed_rl_tasks
    ledger = read_jsonl_prefix(out / "ledger.jsonl")
    assert [r["phase"] for r in ledger] == ["probe", "sft", "rl", "eval"]
    assert all(r["flops"] > 0 and r["wall_seconds"] > 0 for r in ledger)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["final_model"].endswith("rl/final") and summary["eval"]["test"]["episodes"] == 4
    assert not list(out.glob("*/checkpoint-*"))  # a finished phase resumes at final/: its checkpoints are gone

    again = run(load_run_config(TINY), out)
    assert len(read_jsonl_prefix(out / "ledger.jsonl")) == 4  # nothing redone
    assert again["eval"] == summary["eval"]

    saved = yaml.safe_load((out / "config.yaml").read_text())
    del saved["keep_checkpoints"]  # a folder from a version without the option still resumes
    (out / "config.yaml").write_text(yaml.safe_dump(saved, sort_keys=False))
    assert run(load_run_config(TINY), out)["eval"] == summary["eval"]

    changed = CliRunner().invoke(app, ["run", str(TINY), "--out", str(out), "--set", "rl.steps=3"])
    assert changed.exit_code == 2 and "another config" in changed.output


@pytest.mark.parametrize(
    "method,phases", [("base", ["eval"]), ("random", ["sft", "rl", "eval"]), ("pass-rate", ["pass-rate", "sft", "rl", "eval"])]
)
def test_baselines_run_only_their_phases(tmp_path, method, phases):
    config = load_run_config(TINY, [f"method={method}", "rl.steps=1", "keep_checkpoints=true"])
    run(config, tmp_path)
    assert [r["phase"] for r in read_jsonl_prefix(tmp_path / "ledger.jsonl")] == phases
    assert bool(list(tmp_path.glob("rl/checkpoint-*"))) == ("rl" in phases)  # kept, as the config asks
    saved = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert saved["method"] == method and saved["rl"]["steps"] == 1


def test_config_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="unknown method 'prism-magic'"):
        load_run_config(TINY, ["method=prism-magic"])
    with pytest.raises(ValueError, match="unknown run option"):
        load_run_config(TINY, ["modle=tiny"])


@pytest.mark.parametrize(
    "override, message",
    [
        ("probe.max_lenght=4096", "in probe: max_lenght"),
        ("route.rl_shar=0.3", "in route: rl_shar"),
        ("generate.nn=5", "in generate: nn"),
        ("sft.learning_rate=1e-4", "in sft: learning_rate"),
        ("rl.group=4", "in rl: group"),
        ("eval.episode=3", "in eval: episode"),
        ("pass_rate.kk=2", "in pass_rate: kk"),
        ("probe.max_length=abc", "probe.max_length: expected an integer"),
        ("rl.lr=fast", "rl.lr: expected a number"),
        ("route=0.5", "route: expected a section"),
    ],
)
def test_a_misspelt_or_mistyped_section_option_is_refused_at_load(override, message):
    with pytest.raises(ValueError, match=message):
        load_run_config(TINY, [override])


def test_sft_at_another_length_than_the_probe_warns():
    with pytest.warns(ConfigWarning, match="sft.max_length 1024 differs from probe.max_length 2048"):
        load_run_config(TINY, ["sft.max_length=1024"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConfigWarning)
        load_run_config(TINY, ["sft.max_length=2048"])
        load_run_config(TINY, ["probe.max_length=512"])  # sft takes the probe's length when unset


def test_section_numbers_are_typed_at_load():
    # YAML 1.1 reads 5e-1 (no dot) as a string: the run must still see a number
    config = load_run_config(TINY, ["route.rl_share=5e-1", "rl.lr=1e-6", "probe.max_length=300"])
    assert config.route["rl_share"] == 0.5 and config.rl["lr"] == 1e-6 and config.probe["max_length"] == 300
    assert config.probe["normalize"] == "none"  # the small sections still merge into their defaults


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
    # the speed-up counts probe + pass-rate + SFT + RL; evaluation is reported apart (paper, Table 3)
    for method in ("rl-all", "random"):
        phases = json.loads((tmp_path / method / "summary.json").read_text())["cost"]["phases"]
        train = sum(phases.get(p, {}).get("wall_seconds", 0.0) for p in ("probe", "pass-rate", "sft", "rl"))
        assert rows[method]["wall s"][0] == pytest.approx(train)
        assert rows[method]["eval s"][0] == pytest.approx(phases["eval"]["wall_seconds"]) and phases["eval"]["wall_seconds"] > 0
    assert (tmp_path / "report" / "comparison.png").stat().st_size > 0
    report = (tmp_path / "report" / "comparison.md").read_text()
    assert "speed-up" in report
    assert 'Agent context (RL, evaluation, pass-rate): `{"max_new_tokens": 16, "max_turns": 3}`' in report
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

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConfigWarning)  # shipped configs probe what SFT trains on
        config = load_run_config(path)
    build(RLConfig, {**config.agent, **config.rl}, "rl")
    build(EvalConfig, {**config.agent, **{k: v for k, v in config.eval.items() if k != "splits"}}, "eval")
    build(SFTTrainConfig, {"data": "x", **config.sft}, "sft")


@pytest.mark.parametrize(
    "path", sorted((Path(__file__).resolve().parents[1] / "configs").glob("*/*.yaml")), ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_shipped_configs_give_the_rl_budget_in_epochs(path):
    """The RL budget scales with the routed RL task set (issue 12): epochs, not a fixed step count."""
    from prismrl.train.rl import RLConfig, total_steps

    values = yaml.safe_load(path.read_text()) or {}
    if "rl" not in values:
        pytest.skip("not a run config")
    assert "epochs" in values["rl"] and "steps" not in values["rl"]
    options = {k: v for k, v in values["rl"].items() if k in RLConfig.__dataclass_fields__}
    full = total_steps(RLConfig(**{**options, "tasks": [f"t{i}" for i in range(64)]}))
    half = total_steps(RLConfig(**{**options, "tasks": [f"t{i}" for i in range(32)]}))
    assert half < full or full == 1


def test_rl_budget_halves_with_the_routed_rl_tasks(tmp_path):
    """rl-all trains on every expert task, random on half of them: with the same rl.epochs
    (the tiny config's 0.5, 2 tasks a step) RL takes half the steps (issue 12)."""
    steps = {}
    for method in ("rl-all", "random"):
        run(load_run_config(TINY, [f"method={method}"]), tmp_path / method)
        steps[method] = len(read_jsonl_prefix(tmp_path / method / "rl" / "rl_metrics.jsonl"))
    assert steps == {"rl-all": 2, "random": 1}


def test_pass_rates_roll_out_with_the_rl_sampling_settings(tmp_path, monkeypatch, trajectory_file):
    import contextlib

    import prismrl.rollout as rollouts
    from prismrl.envs import pool
    from prismrl.pipeline import phases

    seen = []

    def fake_rollout(model, tokenizer, env_pool, env, task_ids, sampling, seed=None):
        seen.append(sampling)
        return [rollouts.Episode(t, []) for t in task_ids]

    monkeypatch.setattr(rollouts, "rollout", fake_rollout)
    monkeypatch.setattr(pool, "EnvPool", lambda *args: contextlib.nullcontext())
    config = load_run_config(
        TINY,
        [
            "model=tiny",
            "agent.max_new_tokens=17",
            "agent.history_window=3",
            "agent.max_prompt_tokens=333",
            "rl.temperature=0.7",
            "pass_rate.k=1",
        ],
    )
    config.pass_rate.pop("temperature", None)
    rates = json.loads(phases.pass_rates(Run(config, tmp_path), trajectory_file).read_text())
    assert rates and set(rates.values()) == {0.0}
    assert {(s.max_new_tokens, s.history_window, s.max_prompt_tokens, s.temperature) for s in seen} == {(17, 3, 333, 0.7)}


def test_pass_rates_resume_at_the_first_unfinished_batch(tmp_path, monkeypatch, trajectory_file):
    """A crash mid-way keeps the finished batches' episodes; the rerun rolls out only the rest."""
    import contextlib

    import prismrl.rollout as rollouts
    from prismrl.envs import pool
    from prismrl.pipeline import phases

    seeds, crash_at = [], [2]

    def fake_rollout(model, tokenizer, env_pool, env, task_ids, sampling, seed=None):
        if len(seeds) == crash_at[0]:
            raise RuntimeError("the environment crashed")
        seeds.append(seed)
        # won on the first of each task's two episodes: every rate is 0.5
        return [rollouts.Episode(t, [], won=i % 2 == 0) for i, t in enumerate(task_ids)]

    monkeypatch.setattr(rollouts, "rollout", fake_rollout)
    monkeypatch.setattr(pool, "EnvPool", lambda *args: contextlib.nullcontext())
    monkeypatch.setattr(phases, "PASS_RATE_BATCH_TASKS", 1)
    job = Run(load_run_config(TINY, ["model=tiny", "pass_rate.k=2"]), tmp_path)
    tasks = phases.task_ids(trajectory_file)
    assert len(tasks) > 2
    with pytest.raises(RuntimeError, match="crashed"):
        phases.pass_rates(job, trajectory_file)
    assert len(read_jsonl_prefix(tmp_path / "route" / "pass_rate_episodes.jsonl")) == 4
    crash_at[0] = -1
    rates = json.loads(phases.pass_rates(job, trajectory_file).read_text())
    assert seeds == [job.cfg.seed + start for start in range(len(tasks))]
    assert rates == {t: 0.5 for t in tasks}


def test_rl_and_evaluation_share_one_agent_context(tmp_path, monkeypatch):
    """Set once in `agent:`, the context reaches RL and evaluation alike (issue 12: the paper configs
    evaluated with another window and prompt budget than RL trained with)."""
    from prismrl import evaluate as evaluate_module, train as train_module
    from prismrl.pipeline import phases

    seen = {}
    monkeypatch.setattr(train_module, "run_rl", lambda cfg: seen.setdefault("rl", cfg))
    monkeypatch.setattr(
        evaluate_module, "evaluate", lambda cfg, progress=True: seen.setdefault("eval", cfg) and {"prompt_tokens": 0, "generated_tokens": 0}
    )
    config = load_run_config(TINY, ["model=tiny", "agent.history_window=2", "agent.max_prompt_tokens=777", "agent.kv_cache=true"])
    job = Run(config, tmp_path)
    phases.rl(job, "tiny", ["0"])
    phases.evaluate(job, "tiny", split="test")
    context = lambda c: (c.max_new_tokens, c.max_turns, c.history_window, c.max_prompt_tokens, c.kv_cache)  # noqa: E731
    assert context(seen["rl"]) == context(seen["eval"]) == (16, 3, 2, 777, True)


@pytest.mark.parametrize("override", ["rl.history_window=2", "eval.max_new_tokens=8", "pass_rate.max_turns=4"])
def test_the_agent_context_is_set_only_once(override):
    with pytest.raises(ValueError, match="set once"):
        load_run_config(TINY, [override])
    with pytest.raises(ValueError, match="unknown agent option"):
        load_run_config(TINY, ["agent.history_windw=2"])


@pytest.mark.parametrize("router", ["random", "pass-rate", "conflict-to-rl"])
def test_routers_without_a_probe_leave_out_what_the_probe_would_flag(tmp_path, monkeypatch, trajectories, router):
    from conftest import write_jsonl

    from prismrl.fileio import atomic_write_json
    from prismrl.pipeline import phases

    long = trajectories[0].to_dict() | {"id": "long"}
    long["messages"] = [dict(m, content=m["content"] * 40) for m in long["messages"]]
    expert = write_jsonl(tmp_path / "expert.jsonl", [t.to_dict() for t in trajectories] + [long])

    def fake_pass_rates(job, expert):
        atomic_write_json(tmp_path / "rates.json", {t.task_id: 0.5 for t in trajectories})
        return tmp_path / "rates.json"

    monkeypatch.setattr(phases, "pass_rates", fake_pass_rates)
    config = load_run_config(TINY, ["model=tiny", "probe.max_length=200", f"method={router}"])
    route_dir = phases.plain_route(Run(config, tmp_path), expert)
    routing = json.loads((route_dir / "routing.json").read_text())
    assert "long" in routing["excluded"] and "long" not in routing["ids_sft"] + routing["ids_rl"]
    assert len(routing["ids_sft"]) + len(routing["ids_rl"]) == len(trajectories)


@pytest.mark.parametrize("method, rl_type", [("conflict-to-rl", "mirror"), ("conflict-to-sft", "plain")])
def test_the_premise_oracles_route_the_known_conflicting_trajectories(tmp_path, method, rl_type):
    from prismrl.pipeline import phases

    config = load_run_config(TINY, [f"method={method}", "env=mirror", "env_config={n_train: 16, n_test: 4}", "generate.n=16"])
    job = Run(config, tmp_path)
    route_dir = phases.plain_route(job, phases.expert_data(job))
    routing = json.loads((route_dir / "routing.json").read_text())
    types = {json.loads(line)["id"]: json.loads(line)["meta"]["task_type"] for line in (route_dir / "rl.jsonl").read_text().splitlines()}
    assert routing["router"] == method.replace("-to-rl", "").replace("-to-sft", "-inverse") and len(types) == 8
    assert set(types.values()) == {rl_type}  # 8 of the 16 are mirror houses: the RL half is exactly one kind


def test_a_phase_runs_once_records_its_cost_and_is_skipped_when_done(tmp_path):
    """The one phase contract (pipeline/phase.py): output in the run folder, skipped once its
    done-marker exists, one ledger record per time it runs, notes from its keyword arguments."""
    from prismrl.ledger import LEDGER_FILE
    from prismrl.pipeline.phase import phase

    calls = []

    @phase("eval", output="eval/{split}/results.json", note="{split}")
    def fake_eval(job, cost, model, *, split):
        calls.append((model, split))
        cost.add(forward=10, generated=2)
        target = job.out / "eval" / split / "results.json"
        target.parent.mkdir(parents=True)
        target.write_text("{}")

    job = Run(load_run_config(TINY, ["model=tiny"]), tmp_path)
    assert fake_eval(job, "m", split="test") == tmp_path / "eval" / "test" / "results.json"
    assert fake_eval(job, "m", split="test") == tmp_path / "eval" / "test" / "results.json"
    assert calls == [("m", "test")]
    (record,) = [json.loads(line) for line in (tmp_path / LEDGER_FILE).read_text().splitlines()]
    assert (record["phase"], record["note"], record["forward_tokens"], record["generated_tokens"]) == ("eval", "test", 10, 2)
    assert record["params"] == job.params > 0

    @phase(None, output="data/expert.jsonl", done="data/generate_report.json")
    def writes_only(job, cost):
        calls.append(cost)
        (job.out / "data").mkdir()
        (job.out / "data" / "expert.jsonl").write_text("")  # not yet done: the report is the marker

    with pytest.raises(FileExistsError):  # runs again (its marker is missing), and is not given a ledger line
        writes_only(job), writes_only(job)
    assert calls[-1] is None and len((tmp_path / LEDGER_FILE).read_text().splitlines()) == 1


@pytest.mark.parametrize("path", sorted(TINY.parents[1].glob("paper/*.yaml")), ids=lambda p: p.name)
def test_paper_configs_route_the_full_expert_set(path):
    """The paper routed the full expert sets (~3.1k ALFWorld, ~1.8k WebShop), not 64 trajectories."""
    config = load_run_config(path)
    assert config.data or config.generate["n"] >= (3000 if config.env == "alfworld" else 1800)
