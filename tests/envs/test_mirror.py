"""Mirror houses: the expert wins every task, the literal move fails in a mirror house, ids are checked."""

import pytest

from prismrl.data.generate import expert_trajectory
from prismrl.envs import make
from prismrl.envs.mirror.engine import OPPOSITE
from prismrl.errors import UnknownName


def test_the_expert_wins_every_task_and_the_houses_are_half_mirrors():
    env = make("mirror", n_train=64, n_test=32)
    assert set(env.tasks("train")).isdisjoint(env.tasks("test"))
    for split in ("train", "test"):
        kinds = []
        for task_id in env.tasks(split):
            trajectory = expert_trajectory(env, "mirror", task_id)
            assert trajectory is not None and trajectory.reward == 1.0, task_id
            kinds.append(trajectory.meta["task_type"])
        assert kinds.count("mirror") == len(kinds) // 2


def test_in_a_mirror_house_the_move_the_text_names_is_a_dead_end():
    env = make("mirror")
    task_id = next(t for t in env.tasks("train") if env.task(t)["mirror"])
    observation, info = env.reset(task_id)
    written = env.task(task_id)["directions"][0]
    assert f"is {written} of here" in observation and info["task_type"] == "mirror"
    observation, reward, done, _ = env.step(f"go {written}")
    assert "dead end" in observation and reward == 0.0 and not done
    observation, reward, done, _ = env.step(f"Go {OPPOSITE[written]}.")
    assert "dead end" not in observation


def test_unknown_ids_and_the_step_cap():
    env = make("mirror", n_train=4, n_test=4, max_steps=3)
    with pytest.raises(UnknownName, match="mirror-8"):
        env.reset("mirror-8")
    with pytest.raises(UnknownName, match="expected mirror-<n>"):
        env.reset("room-1")
    env.reset("mirror-0")
    assert [env.step("dance")[2] for _ in range(3)] == [False, False, True]
