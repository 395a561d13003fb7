import json
import subprocess
import sys

import pytest
from conftest import make_trajectory

from prismrl.data.io import save_trajectories
from prismrl.errors import InputError
from prismrl.export import WEBSHOP_GOALS_FILE, export_llamafactory, export_verl_agent


@pytest.fixture
def route_dir(tmp_path):
    halves = {"sft": [make_trajectory(i) for i in range(3)], "rl": [make_trajectory(i) for i in range(3, 6)]}
    halves["sft"][1].messages.append({"role": "user", "content": "a final observation"})
    for name, trajectories in halves.items():
        for t in trajectories:
            t.env, t.task_id = "webshop", str(500 + int(t.id[1:]))  # WebShop task ids are goal indexes
        save_trajectories(trajectories, tmp_path / f"{name}.jsonl")
    (tmp_path / "routing.json").write_text(json.dumps({"ids_sft": [t.id for t in halves["sft"]], "ids_rl": [t.id for t in halves["rl"]]}))
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
    assert manifest["env"] == "webshop" and manifest["task_ids"] == ["503", "504", "505"]
    overrides = (out / "verl_agent_overrides.txt").read_text().splitlines()
    assert "env.env_name=Webshop" in overrides and "env.rollout.n=8" in overrides
    assert "actor_rollout_ref.actor.optim.lr=1e-6" in overrides and "actor_rollout_ref.actor.kl_loss_coef=0.01" in overrides


def _rl_task_ids(route_dir) -> set[str]:
    """The RL half's tasks as routing.json names them (its trajectory ids, looked up in rl.jsonl)."""
    from prismrl.data.io import load_trajectories

    rl_ids = set(json.loads((route_dir / "routing.json").read_text())["ids_rl"])
    return {t.task_id for t in load_trajectories(route_dir / "rl.jsonl")[0] if t.id in rl_ids}


def test_verl_agent_webshop_trains_on_exactly_the_rl_half(route_dir, tmp_path, monkeypatch):
    """The exported goal list is routing.json's RL half, and the shipped edit makes verl-agent's
    training goal range exactly that list (and leaves it as it was without the variable)."""
    out = export_verl_agent(route_dir)
    goals = json.loads((out / WEBSHOP_GOALS_FILE).read_text())
    assert {str(g) for g in goals} == _rl_task_ids(route_dir) and goals == sorted(goals)

    # a stand-in for verl-agent's agent_system/.../webshop/envs.py, holding its training-range line
    checkout = tmp_path / "verl-agent"
    target = checkout / "agent_system/environments/env_package/webshop/envs.py"
    target.parent.mkdir(parents=True)
    target.write_text(
        "class WebshopMultiProcessEnv:\n"
        "    def __init__(self, goals, is_train=True):\n"
        "        if not is_train:\n"
        "            self.goal_idxs = range(500)\n"
        "        else:\n"
        "            self.goal_idxs = range(500, len(goals))\n"
    )
    for _ in range(2):  # the second run finds the edit made and changes nothing
        subprocess.run([sys.executable, str(out / "restrict_webshop_goals.py"), str(checkout)], check=True, capture_output=True)
    namespace: dict = {}
    exec(target.read_text(), namespace)
    env_class = namespace["WebshopMultiProcessEnv"]
    monkeypatch.setenv("PRISM_WEBSHOP_GOALS", str(out / WEBSHOP_GOALS_FILE))
    assert list(env_class(list(range(2000))).goal_idxs) == goals
    assert list(env_class(list(range(2000)), is_train=False).goal_idxs) == list(range(500))
    monkeypatch.delenv("PRISM_WEBSHOP_GOALS")
    assert env_class(list(range(2000))).goal_idxs == range(500, 2000)


def test_verl_agent_webshop_refuses_task_ids_that_are_not_goal_indexes(tmp_path):
    trajectory = make_trajectory(0)
    trajectory.env, trajectory.task_id = "webshop", "fancy-goal"
    save_trajectories([trajectory], tmp_path / "rl.jsonl")
    (tmp_path / "routing.json").write_text("{}")
    with pytest.raises(InputError, match="'fancy-goal' is not a goal index"):
        export_verl_agent(tmp_path)


def test_verl_agent_restriction_refuses_an_unknown_checkout(route_dir, tmp_path):
    out = export_verl_agent(route_dir)
    target = tmp_path / "agent_system/environments/env_package/webshop/envs.py"
    target.parent.mkdir(parents=True)
    target.write_text("self.goal_idxs = list(range(600, 7000))\n")
    done = subprocess.run([sys.executable, str(out / "restrict_webshop_goals.py"), str(tmp_path)], capture_output=True, text=True)
    assert done.returncode != 0 and "edit its training goal range by hand" in done.stderr


def test_missing_split_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no routing.json"):
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
    (tmp_path / "routing.json").write_text("{}")
    out = export_verl_agent(tmp_path, alfworld_data=str(fixture))
    link = out / "alfworld" / "json_2.1.1" / task
    assert (link / "game.tw-pddl").exists()
    manifest = json.loads((out / "rl_tasks.json").read_text())
    assert manifest["task_ids"] == [task] and "env.env_name=alfworld/AlfredTWEnv" in (out / "verl_agent_overrides.txt").read_text()
    with pytest.raises(FileNotFoundError, match="no game.tw-pddl"):
        export_verl_agent(tmp_path, out=tmp_path / "again", alfworld_data=str(tmp_path))


def test_a_reprobed_runs_rl_half_is_the_one_its_rl_trained_on(route_dir, tmp_path):
    """prism-gini-reprobe: SFT on route/'s SFT half, RL on reroute/'s RL half (the SFT model's probe)."""
    run_dir = tmp_path / "run"
    (run_dir / "route").mkdir(parents=True)
    for name in ("sft.jsonl", "rl.jsonl", "routing.json"):
        (run_dir / "route" / name).write_bytes((route_dir / name).read_bytes())
    (run_dir / "reroute").mkdir()
    (run_dir / "reroute" / "routing.json").write_text("{}")
    trajectories = [make_trajectory(i) for i in (0, 4)]
    for t in trajectories:
        t.env, t.task_id = "webshop", str(500 + int(t.id[1:]))
    save_trajectories(trajectories, run_dir / "reroute" / "rl.jsonl")
    manifest = json.loads((export_verl_agent(run_dir) / "rl_tasks.json").read_text())
    assert manifest["task_ids"] == ["500", "504"]
    records = json.loads((export_llamafactory(run_dir) / "prism_sft.json").read_text())
    assert [r["id"] for r in records] == ["t000", "t001", "t002"]
