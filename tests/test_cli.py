import json

import pytest
import yaml
from conftest import write_jsonl
from typer.testing import CliRunner

from prismrl.cli import app

runner = CliRunner()


def test_route_end_to_end_with_tiny_model(tmp_path, trajectory_file, trajectories):
    out = tmp_path / "run"
    result = runner.invoke(app, ["route", "--data", str(trajectory_file), "--out", str(out), "--model", "tiny", "--max-length", "256"])
    assert result.exit_code == 0, result.output
    routing = json.loads((out / "routing.json").read_text())
    assert routing["router"] == "prism" and routing["metric"] == "gini"
    assert len(routing["ids_sft"]) == 6 and len(routing["ids_rl"]) == 6
    assert sorted(routing["ids_sft"] + routing["ids_rl"]) == sorted(t.id for t in trajectories)
    sft = [json.loads(line) for line in (out / "sft.jsonl").read_text().splitlines()]
    assert [r["id"] for r in sft] == routing["ids_sft"] and sft[0]["messages"]
    for name in ("report.md", "scores.png", "layers.png", "probe.jsonl", "probe_meta.json", "config.yaml"):
        assert (out / name).stat().st_size > 0, name
    assert yaml.safe_load((out / "config.yaml").read_text())["max_length"] == 256
    assert "Spearman" in (out / "report.md").read_text()


def test_probe_then_score_then_route_from_existing_probe(tmp_path, trajectory_file):
    probe_dir = tmp_path / "probe"
    result = runner.invoke(
        app, ["probe", "--data", str(trajectory_file), "--out", str(probe_dir), "--model", "tiny:1", "--max-length", "256"]
    )
    assert result.exit_code == 0, result.output
    assert len((probe_dir / "probe.jsonl").read_text().splitlines()) == 12
    result = runner.invoke(app, ["score", "--probe", str(probe_dir), "--normalize", "sqrt-numel"])
    assert result.exit_code == 0, result.output
    header = (probe_dir / "scores.csv").read_text().splitlines()[0]
    assert header.startswith("id,gini,kurtosis,cv,l2")
    config = tmp_path / "route.yaml"
    config.write_text(yaml.safe_dump({"router": "magnitude", "rl_share": 0.25}))
    out = tmp_path / "route"
    result = runner.invoke(
        app, ["route", "--config", str(config), "--data", str(trajectory_file), "--probe", str(probe_dir), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    routing = json.loads((out / "routing.json").read_text())
    assert routing["router"] == "magnitude" and len(routing["ids_rl"]) == 3
    assert not (out / "probe.jsonl").exists()


def test_skip_invalid_is_listed_in_the_report(tmp_path, trajectories):
    records = [t.to_dict() for t in trajectories[:6]] + [{"id": "broken", "messages": []}]
    data = write_jsonl(tmp_path / "data.jsonl", records)
    out = tmp_path / "run"
    strict = runner.invoke(app, ["route", "--data", str(data), "--out", str(out), "--model", "tiny"])
    assert strict.exit_code == 2 and "data.jsonl:7" in strict.output and "'broken'" in strict.output
    assert not (out / "probe.jsonl").exists()
    result = runner.invoke(app, ["route", "--data", str(data), "--out", str(out), "--model", "tiny", "--skip-invalid"])
    assert result.exit_code == 0, result.output
    report = (out / "report.md").read_text()
    assert "skipped as invalid input: 1" in report and "data.jsonl:7 (id 'broken')" in report


def test_clear_errors_for_unknown_config_and_missing_model(tmp_path, trajectory_file):
    config = tmp_path / "bad.yaml"
    config.write_text("routr: prism\n")
    result = runner.invoke(app, ["route", "--config", str(config), "--data", str(trajectory_file), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "unknown config option(s) routr" in result.output
    result = runner.invoke(app, ["probe", "--data", str(trajectory_file), "--out", str(tmp_path / "y"), "--model", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "cannot load model" in result.output


def test_number_strings_from_yaml_become_numbers_and_bad_options_are_named():
    from prismrl.config import RouteConfig, build, resolve
    from prismrl.train.rl import RLConfig

    # PyYAML (YAML 1.1) reads 1e-6 without a dot as a string.
    assert resolve(RouteConfig, overrides=["rl_share=5e-1"]).rl_share == 0.5
    assert build(RLConfig, {"lr": "1e-6"}).lr == 1e-6
    with pytest.raises(ValueError, match="rl_share: expected a number"):
        resolve(RouteConfig, overrides=["rl_share=half"])
    with pytest.raises(ValueError, match="in rl: lr_rate"):
        build(RLConfig, {"lr_rate": 1e-6}, "rl")
