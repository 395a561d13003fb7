import json

import pytest
from conftest import make_trajectory

from prismrl.data.io import save_trajectories
from prismrl.export import export_llamafactory, export_verl_agent


@pytest.fixture
def route_dir(tmp_path):
    halves = {"sft": [make_trajectory(i) for i in range(3)], "rl": [make_trajectory(i) for i in range(3, 6)]}
    halves["sft"][1].messages.append({"role": "user", "content": "a final observation"})
    for name, trajectories in halves.items():
        for t in trajectories:
            t.env = "webshop"
        save_trajectories(trajectories, tmp_path / f"{name}.jsonl")
    (tmp_path / "split.json").write_text(json.dumps({"ids_sft": [t.id for t in halves["sft"]], "ids_rl": [t.id for t in halves["rl"]]}))
    return tmp_path


def test_llamafactory_schema(route_dir):
    out = export_llamafactory(route_dir)
    info = json.loads((out / "dataset_info.json").read_text())
    entry = info["prism_sft"]
    assert entry["formatting"] == "sharegpt" and entry["columns"] == {"messages": "conversations", "system": "system"}
    assert entry["tags"] == {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"}
    records = json.loads((out / entry["file_name"]).read_text())
    assert len(records) == 3
    for record in records:
        roles = [turn["from"] for turn in record["conversations"]]
        assert roles[0::2] == ["human"] * len(roles[0::2]) and roles[1::2] == ["gpt"] * len(roles[1::2])
        assert roles[-1] == "gpt" and record["system"].startswith("You are an agent")
    original = make_trajectory(0)
    assert records[0]["conversations"][1]["value"] == original.messages[2]["content"]


def test_verl_agent_manifest(route_dir):
    out = export_verl_agent(route_dir)
    manifest = json.loads((out / "rl_tasks.json").read_text())
    assert manifest["env"] == "webshop" and manifest["task_ids"] == sorted({make_trajectory(i).task_id for i in range(3, 6)})
    overrides = (out / "verl_agent_overrides.txt").read_text().splitlines()
    assert "env.env_name=Webshop" in overrides and "env.rollout.n=8" in overrides
    assert "actor_rollout_ref.actor.optim.lr=1e-6" in overrides and "actor_rollout_ref.actor.kl_loss_coef=0.01" in overrides


def test_missing_split_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no split.json"):
        export_llamafactory(tmp_path)


def test_verl_agent_alfworld_links_only_the_rl_games(tmp_path):
    from conftest import SHARED

    fixture = SHARED / "fixtures" / "alfworld"
    if not fixture.exists():
        pytest.skip(f"needs {fixture}: one official ALFWorld game, kept in shared/ beside the checkout")
    task = "train/pick_heat_then_place_in_recep-Potato-None-SinkBasin-14/trial_T20190908_231731_054988"
    trajectory = make_trajectory(0)
    trajectory.env, trajectory.task_id = "alfworld", task
    save_trajectories([trajectory], tmp_path / "rl.jsonl")
    save_trajectories([], tmp_path / "sft.jsonl")
    (tmp_path / "split.json").write_text("{}")
    out = export_verl_agent(tmp_path, alfworld_data=str(fixture))
    link = out / "alfworld" / "json_2.1.1" / task
    assert (link / "game.tw-pddl").exists()
    manifest = json.loads((out / "rl_tasks.json").read_text())
    assert manifest["task_ids"] == [task] and "env.env_name=alfworld/AlfredTWEnv" in (out / "verl_agent_overrides.txt").read_text()
    with pytest.raises(FileNotFoundError, match="no game.tw-pddl"):
        export_verl_agent(tmp_path, out=tmp_path / "again", alfworld_data=str(tmp_path))
