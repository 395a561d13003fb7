import json

import pytest
from conftest import make_trajectory, write_jsonl
from typer.testing import CliRunner

from prismrl.cli import app
from prismrl.data.io import load_trajectories, save_trajectories
from prismrl.data.schema import InvalidTrajectory

GOOD = make_trajectory(0).to_dict()
BAD_CASES = {
    "malformed line": ("{not json", "malformed JSON"),
    "missing field": ({"id": "x1", "task_id": "a"}, "missing field 'messages'"),
    "missing id": ({"messages": GOOD["messages"]}, "missing field 'id'"),
    "no assistant turn": ({"id": "x2", "messages": [{"role": "user", "content": "hi"}]}, "no assistant turn"),
    "empty content": ({"id": "x3", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "  "}]}, "empty"),
    "bad role": ({"id": "x4", "messages": [{"role": "robot", "content": "hi"}]}, "role 'robot'"),
}


def _write_with(tmp_path, bad):
    path = tmp_path / "data.jsonl"
    lines = [json.dumps(GOOD), bad if isinstance(bad, str) else json.dumps(bad), json.dumps({**GOOD, "id": "t999"})]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_record_names_file_line_and_id(tmp_path, case):
    bad, reason = BAD_CASES[case]
    path = _write_with(tmp_path, bad)
    with pytest.raises(InvalidTrajectory) as error:
        load_trajectories(path)
    assert f"{path}:2" in str(error.value)
    assert reason in str(error.value)
    if isinstance(bad, dict) and "id" in bad:
        assert repr(bad["id"]) in str(error.value)


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_skip_invalid_lists_every_skipped_item(tmp_path, case):
    path = _write_with(tmp_path, BAD_CASES[case][0])
    trajectories, skipped = load_trajectories(path, skip_invalid=True)
    assert [t.id for t in trajectories] == [GOOD["id"], "t999"]
    assert len(skipped) == 1 and skipped[0].where.startswith(f"{path}:2")


def test_duplicate_id_names_both_lines(tmp_path):
    path = write_jsonl(tmp_path / "dup.jsonl", [GOOD, make_trajectory(1).to_dict(), GOOD])
    with pytest.raises(InvalidTrajectory, match=r"dup.jsonl:3 \(id 't000'\).*duplicate id, first seen at .*dup.jsonl:1"):
        load_trajectories(path)


def test_sharegpt_and_agentgym_import(tmp_path):
    records = [
        {"id": "eto-1", "conversations": [{"from": "human", "value": "task"}, {"from": "gpt", "value": "Action: go"}]},
        {
            "item_id": "webshop_7",
            "conversations": [
                {"from": "human", "value": "example"},
                {"from": "gpt", "value": "ok", "loss": False},
                {"from": "human", "value": "task"},
                {"from": "gpt", "value": "Action: search[x]", "loss": True},
            ],
        },
    ]
    path = tmp_path / "sharegpt.json"
    path.write_text(json.dumps(records))
    (eto, agentgym), skipped = load_trajectories(path)
    assert not skipped
    assert eto.id == "eto-1" and [m["role"] for m in eto.messages] == ["user", "assistant"]
    assert agentgym.id == agentgym.task_id == "webshop_7"
    assert [m.get("loss") for m in agentgym.messages] == [None, False, None, True]


@pytest.mark.parametrize("fmt", ["jsonl", "sharegpt", "hf"])
def test_round_trip(tmp_path, fmt):
    trajectories = [make_trajectory(i) for i in range(3)]
    trajectories[1].messages[2]["loss"] = False
    trajectories[2].meta = {"task_type": "pick", "steps": 3}
    target = tmp_path / f"out.{'json' if fmt == 'sharegpt' else fmt}"
    save_trajectories(trajectories, target, fmt=fmt)
    loaded, _ = load_trajectories(target)
    assert [t.id for t in loaded] == [t.id for t in trajectories]
    assert [t.messages for t in loaded] == [t.messages for t in trajectories]
    if fmt != "sharegpt":
        assert loaded[2].meta == {"task_type": "pick", "steps": 3}


def test_cli_validate_and_convert_write_nothing_on_bad_input(tmp_path):
    runner = CliRunner()
    path = _write_with(tmp_path, BAD_CASES["empty content"][0])
    result = runner.invoke(app, ["data", "validate", str(path)])
    assert result.exit_code == 1 and "data.jsonl:2" in result.output
    target = tmp_path / "converted.jsonl"
    result = runner.invoke(app, ["data", "convert", str(path), str(target)])
    assert result.exit_code == 2 and not target.exists()
    result = runner.invoke(app, ["data", "convert", str(path), str(target), "--skip-invalid"])
    assert result.exit_code == 0 and len(target.read_text().splitlines()) == 2
    assert not list(tmp_path.glob(".*tmp"))
