"""`prism demo`: the shipped TextWorld-Express expert trajectories, routed with the built-in model."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from prismrl.config import RouteConfig
from prismrl.models import BUILTIN_DEFAULT

DEMO_FILE = "demo_trajectories.jsonl"
# Long enough for the short games, short enough that the cooking games show truncation and the
# whole demo probes within a few minutes on 2 CPU cores.
DEMO_MAX_LENGTH = 512


def demo_config(out: str, model: str | None = None, n: int | None = None) -> RouteConfig:
    source = Path(str(files("prismrl.data") / DEMO_FILE))
    return RouteConfig(data=str(source), out=out, model=model or BUILTIN_DEFAULT, max_length=DEMO_MAX_LENGTH, limit=n)
