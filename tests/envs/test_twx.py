import shutil

import pytest

pytest.importorskip("textworld_express")
if shutil.which("java") is None:
    pytest.skip("TextWorld-Express needs Java", allow_module_level=True)

from prismrl.data.generate import expert_trajectory, generate  # noqa: E402
from prismrl.data.io import load_trajectories  # noqa: E402
from prismrl.envs import make  # noqa: E402


@pytest.fixture(scope="module")
def env():
    env = make("twx", tasks_per_split=4)
    yield env
    env.close()


def test_tasks_are_balanced_and_ids_parse(env):
    tasks = env.tasks("train")
    assert tasks[:3] == ["cookingworld-train-0", "twc-train-0", "coin-train-0"] and len(tasks) == 12
    assert env.tasks("test")[0].startswith("cookingworld-test-")
    with pytest.raises(KeyError, match="unknown twx task id 'nope'"):
        env.reset("nope")
    with pytest.raises(KeyError, match="unknown split"):
        env.tasks("holdout")


def test_reset_and_step_are_deterministic(env):
    runs = []
    for _ in range(2):
        observation, info = env.reset("twc-train-1")
        steps = [observation]
        for action in ("look around", "inventory", "dance wildly"):
            steps.append(env.step(action)[0])
        runs.append(steps)
    assert runs[0] == runs[1]


def test_invalid_action_is_harmless(env):
    env.reset("coin-train-2")
    observation, reward, done, info = env.step("fly to the moon")
    assert reward == 0.0 and not done and not info["won"] and info["task_type"] == "coin"


@pytest.mark.parametrize("task_id", ["cookingworld-train-3", "twc-train-2", "coin-train-1"])
def test_expert_wins_in_react_format(env, task_id):
    trajectory = expert_trajectory(env, "twx", task_id)
    assert trajectory is not None and trajectory.reward == 1.0 and trajectory.task_id == task_id
    assert [m["role"] for m in trajectory.messages[:3]] == ["system", "user", "assistant"]
    assert all(
        m["content"].startswith("Thought: ") and "\nAction: " in m["content"] for m in trajectory.messages if m["role"] == "assistant"
    )


def test_generate_is_resumable(tmp_path):
    out = tmp_path / "twx.jsonl"
    assert generate("twx", "train", 2, out, {"tasks_per_split": 3}, progress=False).kept == 2
    report = generate("twx", "train", 4, out, {"tasks_per_split": 3}, progress=False)
    trajectories, _ = load_trajectories(out)
    assert report.kept == 4 and len({t.task_id for t in trajectories}) == 4
