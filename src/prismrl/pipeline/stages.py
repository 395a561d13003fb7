"""The paper's Stages I–III in one go, behind `prism probe / route / demo` and the run's probe phase:

    trajectories ──probe──► probe.jsonl ──score──► scores ──route──► sft.jsonl / rl.jsonl + report

`write_halves` is the one place a routing is written, whichever router made it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from prismrl import config as config_io
from prismrl.config import RouteConfig
from prismrl.data.io import load_trajectories, save_trajectories
from prismrl.errors import ConfigError, InputError, MissingFile
from prismrl.fileio import atomic_write_json, read_jsonl_prefix
from prismrl.prism.runner import META_FILE, PROBE_FILE, ProbeMismatch, ProbeSummary, run_probe
from prismrl.prism.report import write_route_report
from prismrl.prism.route import Routing, route


@dataclass
class RouteResult:
    routing: Routing
    n_flagged: int
    n_skipped: int
    n_truncated: int
    out_dir: Path
    n_total: int  # trajectories probed (flagged included)
    max_length: int | None  # the probe's context length
    probe: ProbeSummary | None = None  # this run's probe; None: reused from probe_dir
    probe_dir: Path | None = None


def check(cfg: RouteConfig) -> None:
    """Every option, before a model is loaded or a file written: a typo found after the probe
    costs the probe, and a half-made folder refuses the corrected rerun."""
    from prismrl.models import resolve_dtype
    from prismrl.prism.score import METRICS, NORMALIZATIONS
    from prismrl.prism.route import ROUTERS

    if not cfg.data:
        raise ConfigError("no trajectories given: --data FILE (a trajectory file or a saved HF dataset folder)")
    if not cfg.out:
        raise ConfigError("no output folder given: --out DIR")
    if cfg.max_length is not None and cfg.max_length < 1:
        raise ConfigError(f"--max-length must be a positive number of tokens, got {cfg.max_length}")
    if cfg.limit is not None and cfg.limit < 1:
        raise ConfigError(f"limit (demo: --n) must be a positive number of trajectories, got {cfg.limit}")
    if cfg.batch_tokens is not None and cfg.batch_tokens < 1:
        raise ConfigError(f"--batch-tokens must be a positive number of tokens, got {cfg.batch_tokens}")
    resolve_dtype(cfg.dtype)
    if cfg.router not in ROUTERS:
        raise ConfigError(f"unknown router {cfg.router!r}; use one of {', '.join(ROUTERS)}")
    if cfg.metric not in METRICS:
        raise ConfigError(f"unknown metric {cfg.metric!r}; use one of {', '.join(METRICS)}")
    if cfg.normalize not in NORMALIZATIONS:
        raise ConfigError(f"unknown normalization {cfg.normalize!r}; use one of {', '.join(NORMALIZATIONS)}")
    if not 0 <= cfg.rl_share <= 1:
        raise ConfigError(f"--rl-share is the fraction routed to RL, within [0, 1]; got {cfg.rl_share}")


def _load_inputs(cfg: RouteConfig):
    """Trajectories and the invalid ones skipped (as dicts); writes nothing."""
    trajectories, skipped = load_trajectories(cfg.data, skip_invalid=cfg.skip_invalid)
    if not trajectories:
        raise InputError(f"{cfg.data}: no valid trajectories ({len(skipped)} invalid, skipped)")
    if cfg.limit is not None:
        trajectories = trajectories[: cfg.limit]
    return trajectories, [s.to_dict() for s in skipped]


def _save_inputs(cfg: RouteConfig, skipped: list[dict]) -> None:
    """The resolved config and the skipped records, written once the run is known to go ahead."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    config_io.save(cfg, out / "config.yaml")
    atomic_write_json(out / "skipped.json", skipped)


def _probe(cfg: RouteConfig, trajectories, skipped: list[dict]) -> ProbeSummary:
    from prismrl.models import load_model
    from prismrl.prism import distributed

    device = distributed.init_from_env(cfg.device)  # under torchrun / accelerate: join the group
    try:
        model, tokenizer, name = load_model(cfg.model, cfg.dtype, device, cfg.trust_remote_code)
        return run_probe(
            model,
            tokenizer,
            trajectories,
            cfg.out,
            name,
            cfg.max_length,
            cfg.dtype,
            batch_tokens=cfg.batch_tokens,
            gradient_checkpointing=cfg.gradient_checkpointing,
            on_start=lambda: _save_inputs(cfg, skipped),
        )
    finally:
        distributed.finish()


def probe(cfg: RouteConfig) -> tuple[ProbeSummary, list[dict]]:
    """Stage I only: probe.jsonl + probe_meta.json in cfg.out."""
    check(cfg)
    trajectories, skipped = _load_inputs(cfg)
    return _probe(cfg, trajectories, skipped), skipped


def read_probe(probe_dir: str | Path) -> tuple[list[dict], dict]:
    probe_dir = Path(probe_dir)
    if probe_dir.is_file():
        probe_dir = probe_dir.parent
    meta_path, probe_path = probe_dir / META_FILE, probe_dir / PROBE_FILE
    if not meta_path.exists() or not probe_path.exists():
        raise MissingFile(f"{probe_dir} has no {PROBE_FILE} + {META_FILE}; run `prism probe` first")
    return read_jsonl_prefix(probe_path), json.loads(meta_path.read_text())


def _check_complete(records: list[dict], trajectories, probe_dir) -> None:
    probed = {r["id"] for r in records}
    missing = [t.id for t in trajectories if t.id not in probed]
    if missing:
        raise ProbeMismatch(
            f"{probe_dir}: the probe has no result for {len(missing)} of the {len(trajectories)} trajectories "
            f"(e.g. {missing[0]!r}); run `prism probe` with the same --data and --out to finish it"
        )


def write_halves(out_dir: Path, trajectories, routing: dict) -> None:
    """sft.jsonl and rl.jsonl (the trajectories of `routing`'s ids_sft and ids_rl, in that order),
    then routing.json, the routing's record and the route phase's done-marker."""
    by_id = {t.id: t for t in trajectories}
    save_trajectories([by_id[i] for i in routing["ids_sft"]], out_dir / "sft.jsonl")
    save_trajectories([by_id[i] for i in routing["ids_rl"]], out_dir / "rl.jsonl")
    atomic_write_json(out_dir / "routing.json", routing)


def probe_and_route(cfg: RouteConfig) -> RouteResult:
    """Stages I–III: probe (or reuse cfg.probe), score, route, write halves + routing.json + report."""
    from prismrl.launch import launched_world_size

    if launched_world_size() > 1:
        raise ConfigError(
            "only `prism probe` runs across processes: probe with torchrun/accelerate, then `prism route --probe DIR` in one process"
        )
    check(cfg)
    out = Path(cfg.out)
    trajectories, skipped = _load_inputs(cfg)
    summary = None
    if cfg.probe:
        records, meta = read_probe(cfg.probe)
        # config.yaml then says what the reused probe was made with, not the defaults.
        cfg = replace(cfg, model=meta["model"], max_length=meta["max_length"], dtype=meta["dtype"])
        _check_complete(records, trajectories, cfg.probe)
        _save_inputs(cfg, skipped)
    else:
        summary = _probe(cfg, trajectories, skipped)
        records, meta = read_probe(out)
        _check_complete(records, trajectories, out)

    by_id = {t.id: t for t in trajectories}
    records = [r for r in records if r["id"] in by_id]
    flagged = {r["id"]: r["flag"] for r in records if r.get("flag")}
    valid = [r for r in records if not r.get("flag")]
    routing = route(valid, cfg.router, cfg.metric, cfg.rl_share, meta["unit_numel"], cfg.normalize, cfg.seed)

    write_halves(out, trajectories, {**routing.to_dict(), "normalization": cfg.normalize, "excluded": {**flagged, **routing.excluded}})
    n_truncated = sum(bool(r.get("truncated")) for r in records)
    write_route_report(out, routing, valid, meta, cfg.normalize, flagged, skipped, n_truncated)
    return RouteResult(
        routing,
        len(flagged),
        len(skipped),
        n_truncated,
        out,
        len(records),
        meta["max_length"],
        summary,
        Path(cfg.probe) if cfg.probe else out,
    )
