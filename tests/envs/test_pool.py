"""EnvPool: same outcomes as sequential runs; env errors and dead workers become error outcomes."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from prismrl.envs import base, make
from prismrl.envs.pool import EXPERT, EnvPool, StepOutcome

HERE = str(Path(__file__).resolve().parent)
WEBSHOP = dict(seed=0, n_products=250, n_goals=120, n_test=40)


def sequential(env_name: str, config: dict, task_ids: list[str], max_turns: int = 60, env=None):
    """Each episode played by the expert in ONE env, one after another."""
    env = env or make(env_name, **config)
    try:
        runs = []
        for task_id in task_ids:
            observation, info = env.reset(task_id)
            steps, done = [], False
            while not done and len(steps) < max_turns:
                thought, action = env.expert_step()
                observation2, reward, done, info2 = env.step(action)
                steps.append((thought, action, observation2, reward, done, info2))
            runs.append(((observation, info), steps))
        return runs
    finally:
        env.close()


def pooled(pool: EnvPool, task_ids: list[str], replay: list | None = None, max_turns: int = 60):
    """The same episodes in the pool: the expert plays (EXPERT), or `replay`'s actions are replayed."""
    starts = pool.reset(task_ids)
    steps = {slot: [] for slot in range(len(task_ids))}
    for _ in range(max_turns):
        if not pool.live:
            break
        if replay is None:
            actions = {slot: EXPERT for slot in pool.live}
        else:
            actions = {slot: replay[slot][1][len(steps[slot])][1] for slot in pool.live}
        for slot, o in pool.step(actions).items():
            assert o.error is None, o.error
            thought = o.thought if replay is None else replay[slot][1][len(steps[slot])][0]
            steps[slot].append((thought, o.action, o.observation, o.reward, o.done, o.info))
    return [(starts[slot], steps[slot]) for slot in range(len(task_ids))]


def test_webshop_pool_matches_sequential():
    task_ids = make("webshop", **WEBSHOP).tasks("test")[:8]
    expected = sequential("webshop", WEBSHOP, task_ids)
    assert any(steps[-1][5]["won"] for _, steps in expected)
    with EnvPool("webshop", WEBSHOP, n_workers=2, timeout=60) as pool:
        assert pooled(pool, task_ids) == expected
        assert pool.restarts == 0 and all(e.done and e.error is None for e in pool.episodes)
        assert [e.won for e in pool.episodes] == [steps[-1][5]["won"] for _, steps in expected]
        # a second batch on the same pool (envs reused by new episodes) is just as exact
        assert pooled(pool, task_ids[::-1]) == expected[::-1]
    with EnvPool("webshop", WEBSHOP, n_workers=0) as pool:
        assert pooled(pool, task_ids) == expected


def test_twx_pool_matches_sequential():
    pytest.importorskip("textworld_express")
    if shutil.which("java") is None:
        pytest.skip("TextWorld-Express needs Java")
    config = dict(tasks_per_split=3)
    env = make("twx", **config)
    task_ids = env.tasks("train")[:8]
    expected = sequential("twx", config, task_ids, env=env)
    # The twx expert is not deterministic (the engine's gold path for `coin` sometimes wanders
    # back and forth at random), so the pool replays the sequential run's actions.
    with EnvPool("twx", config, n_workers=2, timeout=120) as pool:
        assert pooled(pool, task_ids, replay=expected) == expected
        assert all(e.won for e in pool.episodes)


@pytest.fixture(scope="module")
def crashy():
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(base.REGISTRY, "crashy", "crashy_env:CrashyEnv")
        mp.syspath_prepend(HERE)  # workers inherit sys.path (spawn, forkserver) and PYTHONPATH
        mp.setenv("PYTHONPATH", os.pathsep.join(p for p in (HERE, os.environ.get("PYTHONPATH")) if p))
        with EnvPool("crashy", {"prefix": "o"}, n_workers=2, start_method="forkserver", timeout=20) as pool:
            yield pool


def run_all(pool: EnvPool, action=EXPERT, max_turns: int = 20) -> dict[int, list[StepOutcome]]:
    seen: dict[int, list[StepOutcome]] = {slot: [] for slot in range(len(pool.episodes))}
    for _ in range(max_turns):
        if not pool.live:
            break
        for slot, outcome in pool.step({slot: action for slot in pool.live}).items():
            seen[slot].append(outcome)
    return seen


def test_env_exceptions_are_error_outcomes_and_others_continue(crashy):
    starts = crashy.reset(["ok-3", "raise-step-2", "raise-reset", "ok-4"])
    assert starts[0][0] == "o ok-3 start"
    assert starts[2] == ("", {"error": "RuntimeError: cannot start raise-reset", "won": False})
    assert crashy.live == [0, 1, 3]
    seen = run_all(crashy)
    assert [o.won for o in seen[0]] == [False, False, True] and seen[0][-1].action == "act-2"
    assert [o.won for o in seen[3]] == [False, False, False, True]
    bad = seen[1][-1]
    assert len(seen[1]) == 2 and bad.done and bad.reward == 0.0 and not bad.won
    assert bad.error == "ValueError: boom at step 2" and bad.info["won"] is False
    assert [(e.won, e.error is None) for e in crashy.episodes] == [(True, True), (False, False), (False, False), (True, True)]
    assert crashy.restarts == 0
    with pytest.raises(ValueError, match="no live episode"):
        crashy.step({0: "look"})


def test_dead_worker_is_restarted_and_its_episodes_reported(crashy):
    restarts = crashy.restarts
    # slots 0, 2 on worker 0; slots 1, 3 on worker 1. Slot 2's step kills worker 0 mid-call, and
    # slot 0 (also on worker 0, not stepped in that call) is lost with it.
    starts = crashy.reset(["ok-5", "ok-2", "exit-step-1", "ok-3"])
    old_pid = starts[0][1]["pid"]
    outcomes = crashy.step({1: "a", 2: "b", 3: "c"})
    assert sorted(outcomes) == [0, 1, 2, 3]
    for slot in (0, 2):
        assert outcomes[slot].done and not outcomes[slot].won
        assert outcomes[slot].error.startswith("WorkerDied: worker 0 exited with code 7")
    assert outcomes[1].error is None and outcomes[3].error is None
    assert crashy.restarts == restarts + 1 and crashy.live == [1, 3]
    seen = run_all(crashy)
    assert seen[1][-1].won and seen[3][-1].won

    # killed from outside between calls: detected at the next call
    starts = crashy.reset(["ok-2", "ok-2", "ok-2"])
    assert starts[0][1]["pid"] != old_pid
    os.kill(crashy._workers[1].process.pid, signal.SIGKILL)
    crashy._workers[1].process.join(5)
    outcomes = crashy.step({0: EXPERT, 2: EXPERT})
    assert sorted(outcomes) == [0, 1, 2] and outcomes[1].error.startswith("WorkerDied: worker 1")
    assert outcomes[0].error is None and outcomes[2].error is None
    assert crashy.restarts == restarts + 2

    # and the pool keeps working on the restarted workers
    crashy.reset(["ok-2", "ok-3", "ok-1", "ok-2"])
    seen = run_all(crashy)
    assert all(seen[slot][-1].won for slot in range(4))


def test_hung_worker_times_out(crashy):
    restarts = crashy.restarts
    crashy.reset(["hang-step-1", "ok-1"])
    start = time.monotonic()
    outcomes = crashy.step({0: "x", 1: "y"}, timeout=1.5)
    assert time.monotonic() - start < 10
    assert outcomes[0].error == "TimeoutError: worker 0 did not answer within 1.5 s" and not outcomes[0].won
    assert outcomes[1].won
    assert crashy.restarts == restarts + 1
    crashy.reset(["ok-1", "ok-1"])
    assert all(o.won for o in crashy.step({0: "x", 1: "y"}).values())


def test_reply_to_an_interrupted_call_is_ignored(crashy):
    crashy.reset(["ok-2", "ok-2"])
    crashy._workers[0].conn.send((-1, "step", {0: "stale"}))  # as if a step had been interrupted
    time.sleep(0.3)
    outcomes = crashy.step({0: "a", 1: "b"})
    assert outcomes[0].observation == "o ok-2 step 2: a"  # the stale step did happen in the env ...
    assert crashy.episodes[0].steps == 1 and crashy.live == [1]  # ... but its reply was not taken for this one


def test_in_process_pool_reports_env_errors():
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(base.REGISTRY, "crashy", "crashy_env:CrashyEnv")
        mp.syspath_prepend(HERE)
        with EnvPool("crashy", {}, n_workers=0) as pool:
            starts = pool.reset(["raise-step-1", "ok-1", "raise-reset"])
            assert starts[2][1]["error"].startswith("RuntimeError")
            outcomes = pool.step({0: "a", 1: EXPERT})
            assert outcomes[0].error == "ValueError: boom at step 1" and outcomes[1].won
            assert outcomes[1].thought == "thinking 0" and pool.live == []
    with pytest.raises(RuntimeError, match="closed"):
        pool.reset(["ok-1"])
    with pytest.raises(KeyError, match="unknown environment"):
        EnvPool("nope")
