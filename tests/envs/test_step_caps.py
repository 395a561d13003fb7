"""One step cap per environment, read by every place that plays an episode."""

import importlib
import inspect

import pytest

from prismrl.envs.base import EPISODE_STEP_CAPS, REGISTRY, episode_step_cap
from prismrl.errors import UnknownName


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_the_engine_ends_episodes_at_the_envs_cap(name):
    module, factory = REGISTRY[name].split(":")
    engine = getattr(importlib.import_module(module), factory)
    parameter = inspect.signature(engine).parameters.get("max_steps")
    if parameter is None:
        pytest.skip(f"{name} has no step cap of its own")
    assert parameter.default == episode_step_cap(name)


def test_every_env_has_a_cap_and_unknown_names_are_refused():
    assert set(EPISODE_STEP_CAPS) == set(REGISTRY)
    assert (episode_step_cap("webshop"), episode_step_cap("alfworld")) == (15, 50)  # verl-agent's env.max_steps
    with pytest.raises(UnknownName, match="unknown environment 'webshob'"):
        episode_step_cap("webshob")


def test_rl_rollouts_and_the_export_take_the_cap_unless_told():
    from prismrl.export import VERL_AGENT_ENV
    from prismrl.train.rl import RLConfig, rollout_sampling

    assert rollout_sampling(RLConfig(env="webshop")).max_turns == 15
    assert rollout_sampling(RLConfig(env="webshop", max_turns=4)).max_turns == 4
    assert "env.max_steps=15" in VERL_AGENT_ENV["webshop"] and "env.max_steps=50" in VERL_AGENT_ENV["alfworld"]
