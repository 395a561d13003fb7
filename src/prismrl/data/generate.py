"""Expert trajectories from an environment's own expert, in the agent's ReAct format.

The expert plays each task; its turns are written exactly as an agent's would be (system
prompt, observations as user turns, "Thought/Action" assistant turns), so probing, SFT and RL
see one format. Only won episodes are kept; the others are counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from prismrl.data.schema import Trajectory
from prismrl.envs.base import Env, episode_step_cap, prompt_module
from prismrl.envs.react import format_turn


@dataclass
class GenerateReport:
    kept: int = 0
    failed: list[str] = field(default_factory=list)  # task ids the expert did not win
    errors: dict[str, str] = field(default_factory=dict)  # task id → engine error


def expert_trajectory(env: Env, env_name: str, task_id: str, max_turns: int | None = None) -> Trajectory | None:
    """The expert's episode on `task_id` as a Trajectory, or None when the expert does not win
    within `max_turns` steps (None: the env's step cap)."""
    prompt = prompt_module(env_name)
    observation, info = env.reset(task_id)
    messages = [
        {"role": "system", "content": prompt.SYSTEM_PROMPT},
        {"role": "user", "content": prompt.observation_message(observation, info)},
    ]
    total_reward, steps = 0.0, 0
    for steps in range(1, (max_turns or episode_step_cap(env_name)) + 1):
        thought, action = env.expert_step()
        messages.append({"role": "assistant", "content": format_turn(thought, action)})
        observation, reward, done, info = env.step(action)
        total_reward += reward
        if done:
            break
        messages.append({"role": "user", "content": prompt.observation_message(observation, info)})
    if not info.get("won"):
        return None
    return Trajectory(
        id=f"{env_name}/{task_id}",
        task_id=task_id,
        env=env_name,
        messages=messages,
        reward=total_reward,
        meta={"task_type": info.get("task_type"), "steps": steps, "source": "expert"},
    )


def generate(
    env_name: str, split: str, n: int, out: str | Path, env_config: dict | None = None, max_turns: int | None = None, progress: bool = True
) -> GenerateReport:
    """Expert trajectories for the first `n` won tasks of a split, appended to `out` (JSONL).

    Resumable: tasks already in `out` are skipped, so a rerun after a crash continues. A task
    whose engine raises is reported by id and the run goes on.
    """
    from prismrl.envs.base import make
    from prismrl.fileio import JsonlAppender, repair_jsonl
    from prismrl.progress import Progress

    out = Path(out)
    done = {record["task_id"] for record in repair_jsonl(out)}
    report = GenerateReport(kept=len(done))
    env = make(env_name, **(env_config or {}))
    try:
        tasks = env.tasks(split)
        with JsonlAppender(out) as sink, Progress(disable=not progress) as bar:
            job = bar.add_task(f"expert {env_name}/{split}", total=n, completed=min(len(done), n))
            for task_id in tasks:
                if report.kept >= n:
                    break
                if task_id in done:
                    continue
                try:
                    trajectory = expert_trajectory(env, env_name, task_id, max_turns)
                except Exception as error:  # an engine crash on one task must not lose the rest
                    report.errors[task_id] = f"{type(error).__name__}: {error}"
                    continue
                if trajectory is None:
                    report.failed.append(task_id)
                    continue
                sink.write(trajectory.to_dict())
                report.kept += 1
                bar.update(job, advance=1)
    finally:
        env.close()
    return report
