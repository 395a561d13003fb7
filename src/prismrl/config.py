"""Configs are dataclasses: defaults, then a YAML file, then command-line flags; the resolved
values are saved next to the outputs so every result says how it was made."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

import yaml

from prismrl.data.format import DEFAULT_MAX_LENGTH
from prismrl.errors import ConfigError, MissingFile
from prismrl.fileio import atomic_write_text
from prismrl.models import BUILTIN_DEFAULT

T = TypeVar("T")


@dataclass
class RouteConfig:
    """Everything `prism probe` / `prism route` / `prism demo` need."""

    data: str = ""  # trajectory file (JSONL, ShareGPT/ETO/AgentGym JSON) or saved HF dataset folder
    out: str = ""  # run folder; every output goes here
    model: str = BUILTIN_DEFAULT
    max_length: int = DEFAULT_MAX_LENGTH  # uniform context length for the whole run (paper: per environment)
    dtype: str = "float32"  # compute precision; the probe loads the weights in it (models.resolve_dtype)
    device: str | None = None
    trust_remote_code: bool = False
    skip_invalid: bool = False
    limit: int | None = None  # only the first N valid trajectories of data (a quick look at a big file)
    batch_tokens: int | None = None  # batched exact probe: padded tokens per batch (None: one trajectory per backward)
    gradient_checkpointing: bool = False  # probe: recompute each layer in the backward (long contexts)
    probe: str | None = None  # reuse this folder's probe.jsonl instead of probing again
    router: str = "prism"
    metric: str = "gini"
    rl_share: float = 0.5
    normalize: str = "none"  # or sqrt-numel
    seed: int = 0


def read_yaml(path: str | Path, what: str = "config") -> Any:
    """A YAML file's content, or an error naming the file (and the line YAML stopped at)."""
    path = Path(path)
    if not path.is_file():
        raise MissingFile(f"{what} file not found: {path}")
    return parse_yaml(path.read_text(), str(path))


def parse_yaml(text: str, where: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{where}: not valid YAML ({' '.join(str(error).split())})") from None


def parse_overrides(pairs: list[str] | None) -> dict[str, Any]:
    """`key=value` pairs from `--set`, values read as YAML (so 3, 1e-6, true, [a, b] work)."""
    values = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ConfigError(f"--set {pair!r}: expected key=value")
        key, raw = pair.split("=", 1)
        values[key.strip().replace("-", "_")] = parse_yaml(raw, f"--set {pair}")
    return values


def resolve(cls: type[T], config_file: str | Path | None = None, overrides: list[str] | None = None, **flags: Any) -> T:
    """Defaults < YAML file < `--set key=value` < explicit flags."""
    values: dict[str, Any] = {}
    if config_file:
        loaded = read_yaml(config_file) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{config_file}: a config must be a mapping of option: value")
        values.update(loaded)
    values.update(parse_overrides(overrides))
    values.update({k: v for k, v in flags.items() if v is not None})
    return build(cls, values)


def build(cls: type[T], values: dict[str, Any], section: str = "") -> T:
    """`cls(**values)` with unknown options named and every value checked against its field's type."""
    return cls(**typed_options(cls, values, section))


def typed_options(cls: type, values: dict[str, Any], section: str = "") -> dict[str, Any]:
    """`values` with every key a field of `cls` (else an error listing the known ones) and every
    value typed as that field means it; `prism run` checks its sections with this at load time."""
    types = {f.name: str(f.type) for f in fields(cls)}
    unknown = sorted(set(values) - set(types))
    where = f" in {section}:" if section else ""
    if unknown:
        raise ConfigError(f"unknown config option(s){where} {', '.join(unknown)}; known: {', '.join(sorted(types))}")
    return {key: _typed(types[key], f"{section}.{key}" if section else key, value) for key, value in values.items()}


def _typed(annotation: str, key: str, value: Any) -> Any:
    """The value as its field's type means it, or an error naming the option: YAML reads `1e-6`
    (no dot: YAML 1.1) as a string, and `max_length: abc` would otherwise fail deep in a phase."""
    kinds = {part.strip() for part in annotation.split("|")}
    if value is None or not kinds & {"int", "float", "bool"}:
        return value
    if "bool" in kinds and isinstance(value, bool):
        return value
    if "float" in kinds and isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if "int" in kinds and isinstance(value, int) and not isinstance(value, bool):
        return value
    if "float" in kinds and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    if "int" in kinds and isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value)
    expected = "a number" if "float" in kinds else "an integer" if "int" in kinds else "true or false"
    raise ConfigError(f"config option {key}: expected {expected}, got {value!r}")


def save(config: Any, path: str | Path) -> None:
    atomic_write_text(path, yaml.safe_dump(asdict(config), sort_keys=False))
