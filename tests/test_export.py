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
