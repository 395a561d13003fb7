"""`prism grid`: the experiment grid — methods × seeds (and RL-share variants) of one run config,
each a `prism run` folder `DIR/<name>`, run one after another, one seed of every method before
the next seed. It resumes: a finished run (its summary.json) is skipped and an interrupted one
resumes at its phase, so an interruption loses at most the phase it stopped in. A run committed
to `--results` with the same config counts as finished too, so a grid continued on another
machine does not run again what results/ already holds.

Runs share what their methods compute alike. Before a run starts, a sibling's finished output is
copied into its folder (a checkpoint as hard links), so the phase finds its done-marker and is
skipped, and the sibling's own ledger records for it are copied, marked "shared from <run>", so
every run's ledger still holds everything its method costs:

    what                 taken by                                from
    expert data          every run (one config: the same data)   a run that generated it
    probe records        every router that probes                a run that probed
    SFT on all the data  sft-all / sft-then-rl of the same seed  the one that trained it
    SFT on a half        runs of one router, metric and seed     the one that trained it
                         (prism-gini-reprobe from prism-gini)

Siblings are every other run folder in DIR whose config differs only in method, seed and RL
share: this call's runs and those an earlier `prism grid` call over other methods left there.

On another machine DIR starts empty, but `--results` holds the expert data and the probe
records (`RESULTS/shared`) and each run's ledger: where no sibling has them, the data and the
probe are taken from there, with the probe's cost from the committed run that paid for it, so a
fresh machine does not probe again (the probe is deterministic: a repeat gives bit-identical
norms, docs/EXPERIMENTS.md). Checkpoints are not committed; SFT is trained again.

Seeds are training seeds: the expert data and the evaluation goals (`eval.task_seed`) stay the
same across seeds and methods.
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from prismrl.fileio import JsonlAppender, atomic_dir, read_jsonl_prefix
from prismrl.ledger import LEDGER_FILE
from prismrl.pipeline.run import run, same_config, save_config, saved_config
from prismrl.pipeline.run_config import METHODS, RunConfig, load_run_config
from prismrl.prism.runner import META_FILE, PROBE_FILE

SHARED = "shared from"
PROBE_FILES = (PROBE_FILE, META_FILE)  # the records first: copied meta without records would start a new probe


@dataclass(frozen=True)
class Entry:
    method: str
    seed: int
    rl_share: float | None = None  # None: the config's

    @property
    def name(self) -> str:
        share = "" if self.rl_share is None else f"-rl{self.rl_share:g}"
        return f"{self.method}{share}-s{self.seed}"


def grid_plan(
    config: str | Path, methods: list[str], seeds: list[int], shares: list[float] = (), share_methods: list[str] = (), overrides=()
) -> list[Entry]:
    """The grid in run order: every method of a seed, then that seed's RL-share variants (a share
    equal to the config's is the method's own run, not a second one)."""
    config_share = load_run_config(config, list(overrides)).route["rl_share"]
    variants = [share for share in shares if share != config_share]
    return [
        entry
        for seed in seeds
        for entry in [Entry(m, seed) for m in methods] + [Entry(m, seed, share) for m in share_methods for share in variants]
    ]


def entry_config(config: str | Path, entry: Entry, overrides: list[str] = ()) -> RunConfig:
    share = [] if entry.rl_share is None else [f"route.rl_share={entry.rl_share}"]
    return load_run_config(config, [*overrides, f"method={entry.method}", f"seed={entry.seed}", *share])


def run_grid(
    config: str | Path, out: str | Path, grid: list[Entry], overrides: list[str] = (), results: str | Path | None = None
) -> Iterator[tuple[Entry, Path, dict | None]]:
    """Run (or resume) every entry into `out/<entry.name>`; yields (entry, folder, None) as a run
    starts and (entry, folder, summary) once it is done (at once for a run finished earlier).
    `results`: a folder `prism grid --results` filled: its runs of the same config are finished (the
    folder yielded is the committed one), and it is the fallback for the data and the probe."""
    out = Path(out)
    configs = {entry: entry_config(config, entry, overrides) for entry in grid}  # every typo before the first hour of work
    for entry in grid:
        cfg = configs[entry]
        run_dir = finished(out, entry.name, cfg, results)
        if run_dir is None:
            run_dir = out / entry.name
            yield entry, run_dir, None
            save_config(cfg, run_dir)  # a folder holding another config is refused before anything is copied into it
            archive = Archive.matching(results, entry.name, cfg) if results else None
            take_shared(cfg, run_dir, siblings(out, run_dir, cfg, [out / e.name for e in grid]), archive)
            run(cfg, run_dir)
        yield entry, run_dir, json.loads((run_dir / "summary.json").read_text())


def finished(out: str | Path, name: str, cfg: RunConfig, results: str | Path | None = None) -> Path | None:
    """The folder holding run `name`'s summary: `out`'s own, or one committed to `results` with
    exactly `cfg`; None while the run is not finished."""
    own = Path(out) / name
    if (own / "summary.json").exists():
        return own
    saved = Path(results) / name if results else None
    if saved and (saved / "summary.json").exists() and (saved / "config.yaml").exists() and same_config(saved / "config.yaml", cfg):
        return saved
    return None


def siblings(out: Path, run_dir: Path, cfg: RunConfig, preferred: list[Path]) -> list[Path]:
    """The runs in `out` other than run_dir that `cfg` may share with, `preferred` (this grid's, in
    its order) first."""
    ours = _up_to_method_seed_share(asdict(cfg))
    folders = [p for p in preferred if p.is_dir()] + sorted(p for p in out.iterdir() if p.is_dir() and p not in preferred)
    return [
        folder
        for folder in folders
        if folder != run_dir
        and (folder / "config.yaml").exists()
        and _up_to_method_seed_share(saved_config(folder / "config.yaml")) == ours
    ]


def _up_to_method_seed_share(config: dict) -> dict:
    return {**config, "method": None, "seed": None, "route": {**config["route"], "rl_share": None}}


@dataclass(frozen=True)
class Archive:
    """What `save_summary` and `save_shared_inputs` committed for a grid of this config: the
    shared data and probe, and the run that paid for the probe."""

    shared: Path
    prober: Path | None

    @classmethod
    def matching(cls, results: str | Path, name: str, cfg: RunConfig) -> Archive | None:
        """None unless a committed run had this config up to method, seed and RL share (the shared
        folder holds no config of its own: another config's data must not be taken)."""
        results = Path(results)
        if not results.is_dir():
            return None
        runs = siblings(results, results / name, cfg, [])
        if not runs:
            return None
        # any run whose ledger holds the probe will do: a copied record keeps naming the run that paid
        return cls(results / "shared", _first(runs, lambda r: bool(_cost_records(r, "probe"))))

    def has_data(self) -> bool:
        return (self.shared / "data" / "generate_report.json").exists()

    def has_probe_of(self, expert: Path) -> bool:
        """Whether it holds a probe of exactly these trajectories (a probe record names only an id)."""
        saved = self.shared / "data" / "expert.jsonl"
        return (
            self.prober is not None
            and all((self.shared / "route" / name).exists() for name in PROBE_FILES)
            and expert.exists()
            and saved.exists()
            and filecmp.cmp(expert, saved, shallow=False)
        )


def take_shared(cfg: RunConfig, run_dir: Path, siblings: list[Path], archive: Archive | None = None) -> None:
    """Copy into `run_dir` whatever of its work a sibling has finished and it has not started, the
    data and the probe from `archive` where no sibling has them."""
    plan = METHODS[cfg.method]
    if cfg.data is None and not (run_dir / "data").exists():
        source = _first(siblings, lambda s: (s / "data" / "generate_report.json").exists())
        if source:
            _copy_dir(source / "data", run_dir / "data")
        elif archive and archive.has_data():
            _copy_dir(archive.shared / "data", run_dir / "data")
    if plan.probes and not (run_dir / "route" / PROBE_FILES[0]).exists():
        source = _first(siblings, _probe_finished)
        paid, files = (source, source / "route") if source else (None, None)
        if not source and archive and archive.has_probe_of(run_dir / "data" / "expert.jsonl"):
            paid, files = archive.prober, archive.shared / "route"
        if paid:
            _copy_records(paid, run_dir, "probe")
            for name in PROBE_FILES:
                _copy_file(files / name, run_dir / "route" / name)
    if plan.sft and not (run_dir / "sft").exists():
        source = _first(
            siblings,
            lambda s: (s / "sft" / "final" / "config.json").exists() and _same_sft_data(s, cfg) and _cost_records(s, "sft"),
        )
        if source:
            _copy_records(source, run_dir, "sft")
            _copy_dir(source / "sft", run_dir / "sft", link=True)


def save_shared_inputs(out: str | Path, grid: list[Entry], dest: str | Path) -> None:
    """The expert data and the probe records, once for the whole grid (every run's summary leaves
    them out), so that analyses of the score can be redone from `results/` alone."""
    source = _first([Path(out) / e.name for e in grid], _probe_finished)
    if source is None or (Path(dest) / "route" / PROBE_FILE).exists():
        return
    for relative in ("data/expert.jsonl", "data/generate_report.json", f"route/{META_FILE}", f"route/{PROBE_FILE}"):
        _copy_file(source / relative, Path(dest) / relative)


def _probe_finished(run_dir: Path) -> bool:
    finished = (run_dir / "route" / "routing.json").exists() and all((run_dir / "route" / name).exists() for name in PROBE_FILES)
    return finished and bool(_cost_records(run_dir, "probe"))


def _first(candidates: list[Path], ok) -> Path | None:
    return next((c for c in candidates if ok(c)), None)


def _same_sft_data(run_dir: Path, cfg: RunConfig) -> bool:
    """Whether run_dir's SFT trained on what cfg's will, with its seed: all the data, or the same
    router's half of the same probe (the grid's runs differ only in method, seed and RL share)."""
    import yaml

    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    theirs, ours = METHODS[config["method"]], METHODS[cfg.method]
    if config["seed"] != cfg.seed or theirs.sft != ours.sft:
        return False
    return ours.sft == "all" or (
        (theirs.router, theirs.metric) == (ours.router, ours.metric) and config["route"]["rl_share"] == cfg.route["rl_share"]
    )


def _cost_records(run_dir: Path, phase: str) -> list[dict]:
    """What `phase` cost, as run_dir's ledger tells: its own records or, where it took the phase
    from a sibling, only the records it copied (they name the run that paid; its own remainder,
    such as routing a shared probe, is not part of what it passes on)."""
    records = [r for r in read_jsonl_prefix(run_dir / LEDGER_FILE) if r["phase"] == phase]
    return [r for r in records if SHARED in r.get("note", "")] or records


def _copy_records(source: Path, run_dir: Path, phase: str) -> None:
    """Called before the outputs are copied: an interruption in between leaves the records, and the
    next try (which copies again) does not write them twice."""
    run_dir.mkdir(parents=True, exist_ok=True)
    present = read_jsonl_prefix(run_dir / LEDGER_FILE)
    with JsonlAppender(run_dir / LEDGER_FILE) as sink:
        for record in _cost_records(source, phase):
            if SHARED not in record.get("note", ""):
                record = {**record, "note": f"{record['note']} {SHARED} {source.name}".strip()}
            if record not in present:
                sink.write(record)


def _copy_file(source: Path, target: Path) -> None:
    """A copy, not a link: the probe phase opens its records for appending."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.copy")
    shutil.copyfile(source, staging)
    os.replace(staging, target)


def _copy_dir(source: Path, target: Path, link: bool = False) -> None:
    """`link`: hard links, for a checkpoint (no disk; a finished phase's files are never written again)."""
    with atomic_dir(target) as staging:
        shutil.copytree(source, staging, copy_function=os.link if link else shutil.copy2, dirs_exist_ok=True)
