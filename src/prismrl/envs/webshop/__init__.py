"""WebShop, re-implemented: the original pages, search, goals and reward, on a seeded synthetic
catalog ("WebShop-synthetic") or on the original data files. `make("webshop", **cfg)` builds
`engine.WebShopEnv`; `reward.get_reward` is the pure scoring function."""

from prismrl.envs.webshop.engine import WebShopEnv
from prismrl.envs.webshop.prompt import SYSTEM_PROMPT, observation_message
from prismrl.envs.webshop.reward import Reward, get_reward

__all__ = ["SYSTEM_PROMPT", "Reward", "WebShopEnv", "get_reward", "observation_message"]
