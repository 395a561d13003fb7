"""What a new user meets first (issue 15): every mistake caught before any model is loaded or
file written, a failed command leaving its folder as it found it, and output that reads well in
a log."""

import io
import json

import pytest
import yaml
from conftest import write_jsonl
from typer.testing import CliRunner

from prismrl import models
from prismrl.cli import app

runner = CliRunner()


def _probe(data, out, *extra):
    return runner.invoke(app, ["probe", "--data", str(data), "--out", str(out), "--model", "tiny", "--max-length", "256", *extra])


def _one_line_error(result, *fragments):
    """The error is one unbroken line holding every fragment (no wrapping at 80 columns)."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and all(f in lines[0] for f in fragments), result.output


@pytest.fixture
def no_model_loading(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a bad option must be rejected before the model is loaded")

    monkeypatch.setattr(models, "load_model", refuse)


def test_a_refused_resume_leaves_the_finished_probe_folder_as_it_was(tmp_path, trajectory_file):
    out = tmp_path / "probe"
    assert _probe(trajectory_file, out).exit_code == 0
    before = {name: (out / name).read_bytes() for name in ("config.yaml", "skipped.json", "probe.jsonl", "probe_meta.json")}
    result = runner.invoke(app, ["probe", "--data", str(trajectory_file), "--out", str(out), "--model", "tiny", "--max-length", "128"])
    _one_line_error(result, "different max_length")
    assert {name: (out / name).read_bytes() for name in before} == before


def test_out_and_data_are_required_and_nothing_lands_in_the_current_folder(tmp_path, trajectory_file, monkeypatch, no_model_loading):
    monkeypatch.chdir(tmp_path)
    listing = sorted(p.name for p in tmp_path.iterdir())
    _one_line_error(runner.invoke(app, ["probe", "--data", str(trajectory_file), "--model", "tiny"]), "no output folder given: --out")
    _one_line_error(runner.invoke(app, ["route", "--out", "x", "--model", "tiny"]), "no trajectories given: --data")
    assert sorted(p.name for p in tmp_path.iterdir()) == listing


@pytest.mark.parametrize(
    "args, message",
    [
        (["--max-length", "0"], "--max-length must be a positive number of tokens, got 0"),
        (["--max-length", "-5"], "got -5"),
        (["--router", "bogus"], "unknown router 'bogus'"),
        (["--metric", "entropy"], "unknown metric 'entropy'"),
        (["--rl-share", "1.5"], "within [0, 1]; got 1.5"),
        (["--normalize", "l1"], "unknown normalization 'l1'"),
        (["--dtype", "float8"], "unknown dtype 'float8'"),
        (["--batch-tokens", "0"], "--batch-tokens must be a positive number"),
    ],
)
def test_bad_options_are_rejected_before_any_model_or_file(tmp_path, trajectory_file, no_model_loading, args, message):
    out = tmp_path / "run"
    result = runner.invoke(app, ["route", "--data", str(trajectory_file), "--out", str(out), "--model", "tiny", *args])
    _one_line_error(result, message)
    assert not out.exists()


def test_a_mistyped_integer_in_yaml_is_named_and_the_corrected_rerun_works(tmp_path, trajectory_file):
    config, out = tmp_path / "route.yaml", tmp_path / "run"
    config.write_text("max_length: abc\nmodel: tiny\n")
    result = runner.invoke(app, ["route", "--config", str(config), "--data", str(trajectory_file), "--out", str(out)])
    _one_line_error(result, "config option max_length: expected an integer, got 'abc'")
    assert not out.exists()
    config.write_text("max_length: 256\nmodel: tiny\n")
    result = runner.invoke(app, ["route", "--config", str(config), "--data", str(trajectory_file), "--out", str(out)])
    assert result.exit_code == 0, result.output


def test_config_values_are_checked_against_their_field_types():
    from prismrl.config import RouteConfig, build

    assert build(RouteConfig, {"max_length": "3072"}).max_length == 3072
    assert build(RouteConfig, {"max_length": None}).max_length is None
    with pytest.raises(ValueError, match="max_length: expected an integer, got 2.5"):
        build(RouteConfig, {"max_length": 2.5})
    with pytest.raises(ValueError, match="skip_invalid: expected true or false, got 'maybe'"):
        build(RouteConfig, {"skip_invalid": "maybe"})
    with pytest.raises(ValueError, match="route.seed: expected an integer, got True"):
        build(RouteConfig, {"seed": True}, "route")


def test_a_model_that_cannot_load_leaves_no_folder(tmp_path, trajectory_file):
    out = tmp_path / "run"
    result = runner.invoke(app, ["probe", "--data", str(trajectory_file), "--out", str(out), "--model", str(tmp_path / "nope")])
    _one_line_error(result, "cannot load model", "no such folder")
    assert not out.exists()


def test_an_uncached_hub_id_fails_at_once_when_offline(tmp_path, trajectory_file, monkeypatch):
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "run"
    result = runner.invoke(app, ["probe", "--data", str(trajectory_file), "--out", str(out), "--model", "someone/no-such-model"])
    _one_line_error(result, "'someone/no-such-model'", "HF_HUB_OFFLINE is set")
    monkeypatch.delenv("HF_HUB_OFFLINE")

    def unreachable(*args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(models.socket, "create_connection", unreachable)
    result = runner.invoke(app, ["probe", "--data", str(trajectory_file), "--out", str(out), "--model", "someone/no-such-model"])
    _one_line_error(result, "huggingface.co cannot be reached from this machine (offline?)")
    assert not out.exists()


def test_an_empty_trajectory_file_is_an_error_everywhere(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    result = runner.invoke(app, ["data", "validate", str(empty)])
    assert result.exit_code == 1 and "holds no trajectories" in result.output
    out = tmp_path / "run"
    _one_line_error(runner.invoke(app, ["probe", "--data", str(empty), "--out", str(out), "--model", "tiny"]), "holds no trajectories")
    assert not out.exists()


def test_all_invalid_trajectories_is_an_error_not_an_empty_probe(tmp_path):
    data = write_jsonl(tmp_path / "bad.jsonl", [{"id": "a", "messages": []}, {"id": "b", "messages": []}])
    out = tmp_path / "run"
    result = runner.invoke(app, ["probe", "--data", str(data), "--out", str(out), "--model", "tiny", "--skip-invalid"])
    _one_line_error(result, "no valid trajectories (2 invalid, skipped)")
    assert not out.exists()


def test_route_with_a_reused_probe_refuses_probe_options_and_records_the_probes_own(tmp_path, trajectory_file):
    probe_dir = tmp_path / "probe"
    assert (
        runner.invoke(
            app, ["probe", "--data", str(trajectory_file), "--out", str(probe_dir), "--model", "tiny:1", "--max-length", "256"]
        ).exit_code
        == 0
    )
    out = tmp_path / "route"
    result = runner.invoke(
        app,
        ["route", "--data", str(trajectory_file), "--probe", str(probe_dir), "--out", str(out), "--model", "tiny:2", "--max-length", "512"],
    )
    _one_line_error(result, "--model, --max-length describe how to probe")
    assert not out.exists()
    result = runner.invoke(app, ["route", "--data", str(trajectory_file), "--probe", str(probe_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"probe reused from {probe_dir}" in result.output
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["model"] == "tiny:1" and saved["max_length"] == 256


def test_rerunning_route_says_the_probe_was_resumed(tmp_path, trajectory_file):
    out = tmp_path / "run"
    args = ["route", "--data", str(trajectory_file), "--out", str(out), "--model", "tiny", "--max-length", "256"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0 and "probed 12 of 12, resumed 0 of 12" in first.output, first.output
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "resumed 12 of 12" in again.output and "nothing left to probe" in again.output


def test_truncation_is_counted_per_trajectory_and_warned_about(tmp_path, trajectories, trajectory_file, tiny):
    from prismrl.data.format import encode

    _, tokenizer = tiny
    shortest = min(encode(t, tokenizer, None).n_tokens for t in trajectories)
    out = tmp_path / "probe"
    result = runner.invoke(
        app, ["probe", "--data", str(trajectory_file), "--out", str(out), "--model", "tiny", "--max-length", str(shortest - 1)]
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "probe.jsonl").read_text().splitlines()]
    assert all("n_dropped_turns" in r for r in records)
    assert any((r["n_dropped_turns"] or 0) >= 1 for r in records)
    assert "warning:" in result.output and f"longer than --max-length {shortest - 1}" in result.output


def test_help_shows_whole_option_names_real_defaults_and_no_bool_metavars():
    from prismrl.data.format import DEFAULT_MAX_LENGTH

    text = " ".join(runner.invoke(app, ["route", "--help"], terminal_width=100).output.split())
    assert "--gradient-checkpointing / --no-gradient-checkpointing" in text
    assert "<bool>" not in text and "…" not in text
    assert f"(default {DEFAULT_MAX_LENGTH})" in text and "(default 0.5" in text and "prism (default)" in text
    assert "--device DEVICE cpu, cuda" in text and "--dtype DTYPE compute precision: float32" in text
    probe_help = " ".join(runner.invoke(app, ["probe", "--help"]).output.split())
    assert "--trust-remote-code run the model repository's own Python code" in probe_help
    rl_help = " ".join(runner.invoke(app, ["rl", "--help"]).output.split())
    assert "--steps <int> optimizer steps" in rl_help


def test_progress_in_a_log_is_plain_lines_with_eta():
    from rich.console import Console

    from prismrl.progress import PlainProgress, Progress

    assert isinstance(Progress(console=Console(file=io.StringIO())), PlainProgress)
    stream = io.StringIO()
    with PlainProgress(stream, every_seconds=0) as bar:
        job = bar.add_task("probe", total=4, completed=1, rate="")
        bar.update(job, advance=1, rate="2.0 traj/s")
        bar.update(job, advance=2)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert "probe 2/4 (50%)" in lines[0] and "ETA" in lines[0] and lines[0].endswith("2.0 traj/s")
    assert "probe 4/4 (100%)" in lines[1] and "ETA" not in lines[1]
    # a task reused step after step (RL's update) starts its clock and count again on reset
    stream = io.StringIO()
    with PlainProgress(stream, every_seconds=0) as bar:
        job = bar.add_task("update", total=None, visible=False)
        bar.tasks[job].start -= 3600  # an hour of rollout before the first update
        bar.reset(job, visible=False)
        bar.update(job, completed=1, total=66, visible=True)
    assert "elapsed 0:00:00" in stream.getvalue() and "ETA 0:00:0" in stream.getvalue()


def test_score_bins_put_an_edge_on_the_threshold():
    import numpy as np

    from prismrl.prism.report import score_bins

    values = list(np.random.default_rng(0).normal(size=37))
    threshold = float(np.median(values))
    edges = score_bins(values, threshold, 8)
    assert np.isclose(edges, threshold).any()
    assert edges[0] <= min(values) and edges[-1] >= max(values)
    assert np.allclose(np.diff(edges), np.diff(edges)[0])
    assert len(score_bins([1.0, 1.0], 1.0, 5)) == 6  # equal scores: the plain edges


def test_demo_n_is_checked_first_and_writes_no_input_copy(tmp_path):
    bad = tmp_path / "bad"
    result = runner.invoke(app, ["demo", "--out", str(bad), "--model", "tiny", "--n", "0"])
    assert result.exit_code == 2 and "positive number of trajectories" in result.output, result.output
    assert not bad.exists()
    from dataclasses import replace

    from prismrl.data.demo import demo_config
    from prismrl.pipeline.stages import probe_and_route

    out = tmp_path / "demo"
    # the tiny test tokenizer spells text out byte by byte: the demo's 512 tokens hold no whole turn
    result = probe_and_route(replace(demo_config(str(out), "tiny", 3), max_length=8192))
    assert result.n_total == 3
    assert len((out / "probe.jsonl").read_text().splitlines()) == 3
    assert yaml.safe_load((out / "config.yaml").read_text())["limit"] == 3
    assert not (out / "demo_input.jsonl").exists()


def test_a_users_mistake_is_one_line_and_a_bug_keeps_its_traceback(tmp_path, monkeypatch):
    from prismrl.errors import PrismError
    from prismrl.pipeline import stages

    broken = tmp_path / "run.yaml"
    broken.write_text("method: sft-all\nsft: {lr: 1.0e-4\n")
    _one_line_error(runner.invoke(app, ["run", str(broken), "--out", str(tmp_path / "run")]), str(broken), "not valid YAML")
    _one_line_error(
        runner.invoke(app, ["run", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "run")]), "config file not found", "nope.yaml"
    )
    _one_line_error(
        runner.invoke(app, ["eval", "--model", "tiny", "--env", "bogus", "--out", str(tmp_path / "eval")]), "unknown environment 'bogus'"
    )

    def bug(cfg):
        raise ValueError("an internal invariant broke")

    monkeypatch.setattr(stages, "probe_and_route", bug)
    result = runner.invoke(app, ["demo", "--out", str(tmp_path / "demo"), "--model", "tiny"])
    assert isinstance(result.exception, ValueError) and not isinstance(result.exception, PrismError)
    assert result.exit_code == 1 and "error:" not in result.output
