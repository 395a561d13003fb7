"""Expert trajectories from an environment's own expert, in the agent's ReAct format.

The expert plays each task; its turns are written exactly as an agent's would be (system
prompt, observations as user turns, "Thought/Action" assistant turns), so probing, SFT and RL
see one format. Only won episodes are kept; the others are counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prismrl.data.schema import Trajectory
from prismrl.envs.base import Env, prompt_module
from prismrl.envs.react import format_turn


@dataclass
class GenerateReport:
    kept: int = 0
    failed: list[str] = field(default_factory=list)  # task ids the expert did not win
    errors: dict[str, str] = field(default_factory=dict)  # task id → engine error


def expert_trajectory(env: Env, env_name: str, task_id: str, max_steps: int = 50) -> Trajectory | None:
    """The expert's episode on `task_id` as a Trajectory, or None when the expert does not win."""
    prompt = prompt_module(env_name)
    observation, info = env.reset(task_id)
    messages = [
        {"role": "system", "content": prompt.SYSTEM_PROMPT},
        {"role": "user", "content": prompt.observation_message(observation, info)},
    ]
    total_reward, steps = 0.0, 0
    for steps in range(1, max_steps + 1):
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
        id=f"{env_name}/{task_id}", task_id=task_id, env=env_name, messages=messages, reward=total_reward,
        meta={"task_type": info.get("task_type"), "steps": steps, "source": "expert"},
    )
