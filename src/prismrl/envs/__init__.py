"""Environments: one protocol (`Env`), a registry (`make`), one folder per engine."""

from prismrl.envs.base import REGISTRY, Env, make

__all__ = ["Env", "REGISTRY", "make"]
