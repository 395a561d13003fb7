"""ALFWorld on the real engine: the official fixture game, the Env contract, generated games."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("alfworld")

from prismrl.envs import Env, make  # noqa: E402
from prismrl.envs.alfworld import generate as gen  # noqa: E402
from prismrl.envs.alfworld.engine import AlfWorldEnv  # noqa: E402
from prismrl.envs.alfworld.prompt import SYSTEM_PROMPT, observation_message  # noqa: E402

# shared/ sits beside the repository checkout (…/main/tests/envs/this file → …/shared)
FIXTURE = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "alfworld"
FIXTURE_TASK = "train/pick_heat_then_place_in_recep-Potato-None-SinkBasin-14/trial_T20190908_231731_054988"
needs_fixture = pytest.mark.skipif(
    not (FIXTURE / "json_2.1.1").is_dir(),
    reason=f"needs {FIXTURE}/json_2.1.1: one official ALFWorld game, kept in shared/ beside "
    "the checkout (the official data cannot be downloaded here)",
)


def play_expert(env: AlfWorldEnv, task_id: str, limit: int = 50) -> dict:
    obs, info = env.reset(task_id)
    run = {"observations": [obs], "actions": [], "thoughts": [], "rewards": [], "won": info["won"]}
    done = False
    while not done and len(run["actions"]) < limit:
        thought, action = env.expert_step()
        obs, reward, done, info = env.step(action)
        for key, value in (("observations", obs), ("actions", action), ("thoughts", thought), ("rewards", reward)):
            run[key].append(value)
        run["won"] = info["won"]
    return run


@pytest.fixture(scope="module")
def official():
    env = AlfWorldEnv(data_dir=FIXTURE)
    yield env
    env.close()


# ---------------------------------------------------------------- the official game


@needs_fixture
def test_official_fixture_loads_and_the_planner_wins(official):
    assert isinstance(official, Env)
    assert official.tasks("train") == [FIXTURE_TASK]
    assert official.tasks("valid_unseen") == []
    obs, info = official.reset(FIXTURE_TASK)
    assert "Your task is to: heat some potato and put it in sinkbasin." in obs
    assert info["task_type"] == "pick_heat_then_place_in_recep"
    assert info["won"] is False and "go to microwave 1" in info["admissible"]

    run = play_expert(official, FIXTURE_TASK)
    assert run["won"] and len(run["actions"]) == 6  # the spec's measured planner length
    assert run["rewards"] == [0.0] * 5 + [1.0]
    assert run["actions"][-1] == "move potato 2 to sinkbasin 1"  # alfworld 0.4 grammar: move, not put
    assert run["thoughts"][0].startswith("My task is to heat some potato")


@needs_fixture
def test_reset_and_step_are_deterministic(official):
    first, second = play_expert(official, FIXTURE_TASK), play_expert(official, FIXTURE_TASK)
    assert first["observations"] == second["observations"]
    assert first["actions"] == second["actions"]


@needs_fixture
def test_invalid_action_does_nothing_and_earns_nothing(official):
    official.reset(FIXTURE_TASK)
    for action in ("put potato 2 in sinkbasin 1", "fly to the moon"):
        obs, reward, done, info = official.step(action)
        assert (obs, reward, done, info["won"]) == ("Nothing happens.", 0.0, False, False)


@needs_fixture
def test_the_step_cap_ends_the_episode_without_success():
    env = AlfWorldEnv(data_dir=FIXTURE, max_steps=3, expert=None)  # no expert: no replanning
    try:
        env.reset(FIXTURE_TASK)
        results = [env.step("look") for _ in range(3)]
        with pytest.raises(RuntimeError, match="expert=None"):
            env.expert_step()
    finally:
        env.close()
    assert [done for _, _, done, _ in results] == [False, False, True]
    assert all(reward == 0.0 and not info["won"] for _, reward, _, info in results)


@needs_fixture
def test_the_handcoded_expert_also_wins_the_fixture():
    env = make("alfworld", data_dir=FIXTURE, expert="handcoded")
    try:
        run = play_expert(env, FIXTURE_TASK)
    finally:
        env.close()
    assert run["won"] and len(run["actions"]) == 16


def test_unknown_task_id_raises_key_error_naming_it(tmp_path):
    env = AlfWorldEnv(data_dir=tmp_path)
    with pytest.raises(KeyError, match="train/no-such-task/trial_1"):
        env.reset("train/no-such-task/trial_1")
    with pytest.raises(KeyError, match="bogus"):
        env.reset("bogus/x/y")


def test_data_dir_defaults_to_alfworld_data(tmp_path, monkeypatch):
    monkeypatch.setenv("ALFWORLD_DATA", str(tmp_path))
    assert AlfWorldEnv().root == tmp_path
    (tmp_path / "json_2.1.1").mkdir()
    assert AlfWorldEnv().root == tmp_path / "json_2.1.1"


def test_prompt_states_the_installed_grammar():
    assert "move <object> to <receptacle>" in SYSTEM_PROMPT
    message = observation_message("-= Welcome to TextWorld, ALFRED! =-\n\nYou arrive at desk 1.", {"admissible": ["look", "inventory"]})
    assert message == "You arrive at desk 1.\nAdmissible commands: look, inventory"


# ---------------------------------------------------------------- generated games


def test_splits_use_the_documented_floor_plans():
    assert not set(gen.SEEN_SCENES) & set(gen.UNSEEN_SCENES)
    for task_type in gen.TASK_TYPES:
        seen, unseen = gen.eligible_scenes("train", task_type), gen.eligible_scenes("valid_unseen", task_type)
        assert seen and set(seen) <= set(gen.SEEN_SCENES)
        assert unseen and set(unseen) <= set(gen.UNSEEN_SCENES)
        assert gen.eligible_scenes("valid_seen", task_type) == seen


def test_sampling_is_seeded():
    a = gen.sample_game("train", "pick_two_obj_and_place", 7)
    assert gen.problem_pddl(a) == gen.problem_pddl(gen.sample_game("train", "pick_two_obj_and_place", 7))
    assert gen.problem_pddl(a) != gen.problem_pddl(gen.sample_game("train", "pick_two_obj_and_place", 8))
    assert gen.game_seed("train", 0, 0, 0) != gen.game_seed("valid_seen", 0, 0, 0)


def generate_and_check(tmp_path: Path, split: str, task_types: list[str]) -> dict:
    report = gen.generate_games(split, len(task_types), tmp_path, task_types=task_types, progress=False, workers=2)
    assert report["generated"] == len(task_types) and report["failed"] == 0
    env = AlfWorldEnv(data_dir=tmp_path)
    try:
        assert env.tasks(split) == sorted(report["task_ids"])
        for task_id, task_type in zip(report["task_ids"], task_types):
            run = play_expert(env, task_id)
            assert run["won"] and run["rewards"][-1] == 1.0, task_id
            assert task_id.split("/")[1].startswith(task_type)
    finally:
        env.close()
    return report


def test_generated_games_of_every_task_type_are_won_by_the_planner_and_resume(tmp_path):
    types = list(gen.TASK_TYPES)
    report = generate_and_check(tmp_path, "valid_seen", types)  # about a minute on 2 cores
    again = gen.generate_games("valid_seen", len(types), tmp_path, task_types=types, progress=False)
    assert (again["generated"], again["existing"]) == (0, len(types))
    assert again["task_ids"] == report["task_ids"]


@pytest.mark.slow
def test_generated_unseen_games_use_held_out_floor_plans(tmp_path):
    report = generate_and_check(tmp_path, "valid_unseen", list(gen.TASK_TYPES[:3]))
    scenes = {int(task_id.split("/")[1].rsplit("-", 1)[1]) for task_id in report["task_ids"]}
    assert scenes <= set(gen.UNSEEN_SCENES)


def test_a_game_over_the_planning_budget_is_discarded_and_remembered(tmp_path):
    def run():
        return gen.generate_games(
            "train", 1, tmp_path, task_types=["pick_heat_then_place_in_recep"], progress=False, plan_timeout=0.2, max_attempts=2
        )

    first = run()
    assert (first["generated"], first["failed"], first["discarded_timeout"]) == (0, 1, 2)
    assert AlfWorldEnv(data_dir=tmp_path).tasks("train") == []
    second = run()  # the discards are read back, not planned again
    assert (second["failed"], second["discarded_timeout"]) == (1, 2) and second["seconds"] < 1


@needs_fixture
def test_the_planning_budget_is_cpu_time_so_a_busy_machine_keeps_the_same_games():
    import os
    import signal
    import threading

    from prismrl.envs.alfworld.verify import TIMED_OUT, PlannerWorker

    game = FIXTURE / "json_2.1.1" / FIXTURE_TASK / "game.tw-pddl"
    budget = 5.0  # the fixture's plan takes about a CPU second
    with PlannerWorker() as worker:
        first = worker.walkthrough(game, budget)
        assert first != TIMED_OUT and len(first) == 6
        # The planner is held off the CPU for longer than its whole budget, as on an overloaded
        # machine; only the CPU seconds it then spends count.
        child = worker._proc.pid
        os.kill(child, signal.SIGSTOP)
        threading.Timer(budget + 1, os.kill, (child, signal.SIGCONT)).start()
        assert worker.walkthrough(game, budget) == first
        assert worker._proc.pid == child


class _PlannerEnv:
    """alfworld's planner env as the verifier sees it, failing in `step` with `crash`."""

    def __init__(self, crash):
        self.crash = crash

    def load(self, gamefile):
        self.gamefile = gamefile

    def reset(self):
        return {"won": False, "extra.expert_plan": ["go to sinkbasin 1"]}

    def step(self, command):
        self.crash()


def test_the_verifier_calls_a_planner_crash_unsolvable_but_lets_our_own_bugs_through():
    from prismrl.config import parse_overrides
    from prismrl.envs.alfworld.verify import planner_walkthrough

    def planner_gives_up():
        raise KeyError("val1")  # raised outside this project's code, as in alfworld's planner

    assert planner_walkthrough("game.tw-pddl", _PlannerEnv(planner_gives_up)) is None
    with pytest.raises(ValueError, match="expected key=value"):  # raised in src/prismrl: a bug, not a verdict
        planner_walkthrough("game.tw-pddl", _PlannerEnv(lambda: parse_overrides(["oops"])))


def test_cli_generates_games_in_the_official_layout(tmp_path):
    from typer.testing import CliRunner

    from prismrl.cli import app

    result = CliRunner().invoke(app, ["env", "generate", "alfworld", "--split", "train", "--n", "1", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "json_2.1.1" / "train").glob("*/*/game.tw-pddl"))) == 1
    assert CliRunner().invoke(app, ["env", "generate", "webshop", "--n", "1", "--out", str(tmp_path)]).exit_code == 2
