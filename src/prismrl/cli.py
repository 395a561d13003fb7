"""The `prism` command. Thin: parse flags, resolve the config, call one function per verb."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from prismrl.config import RouteConfig, parse_yaml, read_yaml, resolve
from prismrl.errors import ConfigError, InputError, MissingFile, PrismError
from prismrl.memory import release_freed_memory
from prismrl.threads import use_threads

# Click's plain help: the rich layout cut long option names and showed every flag as taking <bool>.
HELP = {"no_args_is_help": True, "rich_markup_mode": None, "context_settings": {"max_content_width": 120}}
app = typer.Typer(help="PRISM: route expert trajectories to SFT or RL by gradient concentration.", pretty_exceptions_enable=False, **HELP)
data_app = typer.Typer(help="Validate, convert and generate trajectory files.", **HELP)
app.add_typer(data_app, name="data")
env_app = typer.Typer(help="Environment instances: generate ALFWorld-procedural games.", **HELP)
app.add_typer(env_app, name="env")
# soft_wrap: in a log or a pipe rich would break every line at 80 columns, errors included.
console = Console(stderr=True, soft_wrap=True)
stdout = Console(soft_wrap=True)

# A mistake the user can fix is printed as one line naming the item, exit code 2; any other
# exception is a bug and keeps its traceback.
USER_ERRORS = (PrismError,)

ConfigOpt = typer.Option(None, "--config", "-c", help="YAML file of options; flags override it")
ModelOpt = typer.Option(None, help="HF id, local folder, builtin:smollm2-135m (default) or tiny[:seed]")
MaxLenOpt = typer.Option(
    None,
    "--max-length",
    help=f"uniform context length in tokens; longer trajectories lose their oldest turns (default {RouteConfig.max_length})",
)
SkipOpt = typer.Option(None, "--skip-invalid/--strict", help="skip invalid records (listed in the report) instead of failing")
BatchTokensOpt = typer.Option(
    None, "--batch-tokens", help="batched exact probe: padded tokens per batch, length-bucketed (default: one trajectory per backward)"
)
ThreadsOpt = typer.Option(None, "--threads", min=1, help="torch CPU threads (default: this process's share of the cores)")
LowMemoryOpt = typer.Option(
    False,
    "--low-memory",
    help="return freed tensors to the OS (glibc mmap threshold 1 MB): SFT at 4 x 2k tokens peaks at 3.1 GB instead of 6.5, 6.5% slower",
)
CheckpointOpt = typer.Option(
    None,
    "--gradient-checkpointing/--no-gradient-checkpointing",
    help="probe: recompute layers in the backward to fit long contexts (default off)",
)
DtypeOpt = typer.Option(
    None,
    metavar="DTYPE",
    help="compute precision: float32 (default; CPU), bfloat16, float16 or auto (bfloat16 on a GPU that has it); training keeps float32 weights and autocasts",
)
DeviceOpt = typer.Option(None, metavar="DEVICE", help="cpu, cuda, cuda:1, ... (default: cuda when available, else cpu)")
RemoteCodeOpt = typer.Option(
    None, "--trust-remote-code", help="run the model repository's own Python code (some Hugging Face models need it)"
)


def _fail(error: Exception) -> None:
    console.print(f"[bold red]error:[/] {error}")
    raise typer.Exit(2)


def _print_routing(result) -> None:
    routing = result.routing
    if result.probe is None:
        stdout.print(f"probe reused from {result.probe_dir}")
    else:
        probe = result.probe
        stdout.print(
            f"probed {probe.n_probed} of {probe.n_total}, resumed {probe.n_resumed} of {probe.n_total} "
            f"from {result.out_dir}/probe.jsonl" + (" (nothing left to probe)" if probe.n_resumed == probe.n_total else "")
        )
    table = Table(title=f"PRISM routing ({routing.router}, {routing.metric or 'random'}, RL share {routing.rl_share:.0%})")
    for column in ("half", "trajectories", "first ids"):
        table.add_column(column)
    for name, ids in (("SFT", routing.ids_sft), ("RL", routing.ids_rl)):
        table.add_row(name, str(len(ids)), ", ".join(ids[:4]) + (" …" if len(ids) > 4 else ""))
    stdout.print(table)
    stdout.print(
        f"threshold {routing.threshold}; truncated {result.n_truncated}; flagged {result.n_flagged}; "
        f"skipped {result.n_skipped}\nwrote {result.out_dir}/{{sft.jsonl, rl.jsonl, routing.json, report.md, scores.png, layers.png}}"
    )
    _warn_if_mostly_truncated(result.n_truncated, result.n_total, result.max_length)


@app.command()
def probe(
    data: str = typer.Option(None, help="trajectory file or HF dataset folder"),
    out: str = typer.Option(None, help="output folder"),
    model: str = ModelOpt,
    max_length: int = MaxLenOpt,
    dtype: str = DtypeOpt,
    device: str = DeviceOpt,
    skip_invalid: bool = SkipOpt,
    trust_remote_code: bool = RemoteCodeOpt,
    batch_tokens: int = BatchTokensOpt,
    gradient_checkpointing: bool = CheckpointOpt,
    config: Path = ConfigOpt,
    threads: int = ThreadsOpt,
):
    """Stage I: per-unit gradient norms of each trajectory's SFT loss → probe.jsonl.
    Runs across processes under `torchrun --nproc_per_node N -m prismrl.cli probe ...` (or accelerate launch)."""
    use_threads(threads)
    from prismrl.pipeline import stages
    from prismrl.launch import launched_rank

    try:
        cfg = resolve(
            RouteConfig,
            config,
            data=data,
            out=out,
            model=model,
            max_length=max_length,
            dtype=dtype,
            device=device,
            skip_invalid=skip_invalid,
            trust_remote_code=trust_remote_code,
            batch_tokens=batch_tokens,
            gradient_checkpointing=gradient_checkpointing,
        )
        summary, skipped = stages.probe(cfg)
    except USER_ERRORS as error:
        _fail(error)
    if launched_rank() != 0:  # under torchrun / accelerate: rank 0 reports for the run
        return
    stdout.print(
        f"probed {summary.n_probed} (resumed {summary.n_resumed}) of {summary.n_total} in {summary.seconds:.1f}s; "
        f"truncated {summary.n_truncated}; flagged {len(summary.flagged)}; skipped {len(skipped)} → {cfg.out}/probe.jsonl"
    )
    for ident, why in summary.flagged.items():
        console.print(f"[yellow]flagged[/] {ident}: {why}")
    _warn_if_mostly_truncated(summary.n_truncated, summary.n_total, cfg.max_length)


def _warn_if_mostly_truncated(n_truncated: int, n_total: int, max_length: int | None) -> None:
    if n_total and 2 * n_truncated > n_total:
        console.print(
            f"[yellow]warning:[/] {n_truncated} of {n_total} trajectories are longer than --max-length {max_length} "
            "and lost their oldest turns (probe.jsonl: n_dropped_turns): the probe measures their later turns only; "
            "raise --max-length to probe them whole"
        )


@app.command()
def score(
    probe_dir: str = typer.Option(..., "--probe", help="folder holding probe.jsonl"),
    out: str = typer.Option(None, help="output folder (default: the probe folder)"),
    normalize: str = typer.Option("none", help="none or sqrt-numel"),
):
    """Stage II: concentration metrics from probe.jsonl (no model needed) → scores.csv."""
    from prismrl.fileio import atomic_write_text
    from prismrl.pipeline.stages import read_probe
    from prismrl.prism.report import score_table

    try:
        records, meta = read_probe(probe_dir)
        valid = [r for r in records if not r.get("flag")]
        if not valid:
            raise InputError(f"{probe_dir}: no valid probe records to score")
        table = score_table(valid, meta, normalize)
    except USER_ERRORS as error:
        _fail(error)
    target = Path(out or probe_dir) / "scores.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, table.to_csv(index_label="id"))
    stdout.print(table.describe().loc[["mean", "std", "min", "max"]].round(4).to_string())
    stdout.print(f"wrote {target} ({len(table)} trajectories, {len(records) - len(valid)} flagged left out)")


@app.command("route")
def route_cmd(
    data: str = typer.Option(None, help="trajectory file or HF dataset folder"),
    out: str = typer.Option(None, help="output folder"),
    model: str = ModelOpt,
    probe_dir: str = typer.Option(None, "--probe", help="reuse this folder's probe.jsonl instead of probing"),
    router: str = typer.Option(None, help="prism (default), inverse, random, magnitude, loss or length"),
    metric: str = typer.Option(None, help="gini (default), kurtosis or cv"),
    rl_share: float = typer.Option(None, "--rl-share", help="fraction routed to RL, within [0, 1] (default 0.5: the median split)"),
    normalize: str = typer.Option(None, help="none (default) or sqrt-numel (divide each unit's norm by √numel)"),
    seed: int = typer.Option(None, help="seed of the random router (default 0)"),
    max_length: int = MaxLenOpt,
    dtype: str = DtypeOpt,
    device: str = DeviceOpt,
    skip_invalid: bool = SkipOpt,
    batch_tokens: int = BatchTokensOpt,
    gradient_checkpointing: bool = CheckpointOpt,
    config: Path = ConfigOpt,
    threads: int = ThreadsOpt,
):
    """Stages I–III: probe, score and route into sft.jsonl / rl.jsonl with a report."""
    use_threads(threads)
    from prismrl.pipeline.stages import probe_and_route

    try:
        probing = {
            "--model": model,
            "--max-length": max_length,
            "--dtype": dtype,
            "--device": device,
            "--batch-tokens": batch_tokens,
            "--gradient-checkpointing": gradient_checkpointing,
        }
        given = [flag for flag, value in probing.items() if value is not None]
        if probe_dir and given:
            raise ConfigError(
                f"{', '.join(given)} describe how to probe; with --probe {probe_dir} the probe is reused "
                "as it was made (its probe_meta.json): drop them, or probe again without --probe"
            )
        cfg = resolve(
            RouteConfig,
            config,
            data=data,
            out=out,
            model=model,
            probe=probe_dir,
            router=router,
            metric=metric,
            rl_share=rl_share,
            normalize=normalize,
            seed=seed,
            max_length=max_length,
            dtype=dtype,
            device=device,
            skip_invalid=skip_invalid,
            batch_tokens=batch_tokens,
            gradient_checkpointing=gradient_checkpointing,
        )
        result = probe_and_route(cfg)
    except USER_ERRORS as error:
        _fail(error)
    _print_routing(result)


@app.command()
def demo(
    out: str = typer.Option("runs/demo", help="output folder"),
    model: str = ModelOpt,
    n: int = typer.Option(None, help="route only the first N shipped trajectories"),
    threads: int = ThreadsOpt,
):
    """Route the shipped expert trajectories with the built-in model and write the report."""
    use_threads(threads)
    from prismrl.data.demo import demo_config
    from prismrl.pipeline.stages import probe_and_route

    try:
        result = probe_and_route(demo_config(out, model, n))
    except USER_ERRORS as error:
        _fail(error)
    _print_routing(result)


@data_app.command("validate")
def data_validate(
    file: str = typer.Argument(..., help="trajectory file or HF dataset folder"),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="list every invalid record instead of stopping at the first"),
):
    """Check a trajectory file against the schema; exit 1 when anything is invalid."""
    from prismrl.data.io import load_trajectories

    try:
        trajectories, skipped = load_trajectories(file, skip_invalid=skip_invalid)
    except USER_ERRORS as error:
        console.print(f"[bold red]invalid:[/] {error}")
        raise typer.Exit(1)
    for item in skipped:
        console.print(f"[bold red]invalid:[/] {item.where}: {item.reason}")
    n_assistant = sum(sum(m["role"] == "assistant" for m in t.messages) for t in trajectories)
    stdout.print(f"{file}: {len(trajectories)} valid trajectories, {n_assistant} agent turns, {len(skipped)} invalid")
    if skipped:
        raise typer.Exit(1)


@data_app.command("convert")
def data_convert(
    source: str = typer.Argument(..., help="input: JSONL, ShareGPT/ETO/AgentGym JSON, or HF dataset folder"),
    target: str = typer.Argument(..., help="output path"),
    to: str = typer.Option("jsonl", help="jsonl (project schema), sharegpt, or hf (dataset folder)"),
    skip_invalid: bool = typer.Option(False, "--skip-invalid"),
):
    """Convert between trajectory formats; nothing is written when the input is invalid."""
    from prismrl.data.io import load_trajectories, save_trajectories

    try:
        trajectories, skipped = load_trajectories(source, skip_invalid=skip_invalid)
        save_trajectories(trajectories, target, fmt=to)
    except USER_ERRORS as error:
        _fail(error)
    for item in skipped:
        console.print(f"[yellow]skipped[/] {item.where}: {item.reason}")
    stdout.print(f"wrote {len(trajectories)} trajectories to {target} ({to}); skipped {len(skipped)}")


@data_app.command("generate")
def data_generate(
    env: str = typer.Option(..., help="twx, webshop or alfworld"),
    split: str = typer.Option("train", help="split of the environment's tasks"),
    n: int = typer.Option(100, help="number of expert trajectories to keep"),
    out: str = typer.Option(..., help="output JSONL (appended to: reruns resume)"),
    max_turns: int = typer.Option(None, "--max-turns", help="step cap per episode [default: the env's]"),
    env_config: Path = typer.Option(None, "--env-config", help="YAML of options for the environment"),
    threads: int = ThreadsOpt,
):
    """Expert trajectories from an environment's own expert, only won episodes kept."""
    use_threads(threads)

    from prismrl.data.generate import generate

    try:
        options = read_yaml(env_config, "--env-config") if env_config else {}
        report = generate(env, split, n, out, options, max_turns)
    except USER_ERRORS as error:
        _fail(error)
    for task_id, why in report.errors.items():
        console.print(f"[yellow]engine error[/] {task_id}: {why}")
    stdout.print(f"{out}: {report.kept} trajectories; expert lost {len(report.failed)}, engine errors {len(report.errors)}")
    if report.kept < n:
        console.print(f"[yellow]only {report.kept} of {n}: the split has no more tasks the expert wins[/]")


SetOpt = typer.Option(None, "--set", help="override any option: --set key=value (repeatable)")


def _tasks(spec: str, env: str, env_config: dict) -> list[str]:
    """Task ids from a trajectory file (its task_ids, e.g. route/rl.jsonl), a text file with one
    id per line, or `split:NAME` for a whole split of the environment."""
    if spec.startswith("split:"):
        from prismrl.envs import make

        instance = make(env, **env_config)
        try:
            return instance.tasks(spec.split(":", 1)[1])
        finally:
            instance.close()
    path = Path(spec)
    if path.suffix in (".jsonl", ".json") or path.is_dir():
        from prismrl.data.io import load_trajectories

        return sorted({t.task_id for t in load_trajectories(path)[0]})
    if not path.exists():
        raise MissingFile(f"task list not found: {path}")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


@env_app.command("generate")
def env_generate(
    env: str = typer.Argument(..., help="alfworld (the only environment whose instances are files)"),
    split: str = typer.Option("train", help="train, valid_seen (seen floor plans) or valid_unseen (held-out floor plans)"),
    n: int = typer.Option(..., help="number of planner-verified games to keep"),
    out: str = typer.Option(..., help="data folder; games go to OUT/json_2.1.1/SPLIT/ (point ALFWORLD_DATA or data_dir at OUT)"),
    seed: int = typer.Option(0, help="seed of the generated games"),
    workers: int = typer.Option(1, help="planner processes verifying games in parallel"),
):
    """Generate ALFWorld games in the official layout; unsolvable ones are discarded and counted; resumable."""
    if env != "alfworld":
        _fail(ValueError(f"`prism env generate` makes ALFWorld games; {env!r} builds its instances itself"))
    from prismrl.envs.alfworld.generate import generate_games

    try:
        report = generate_games(split, n, out, seed=seed, workers=workers)
    except USER_ERRORS as error:
        _fail(error)
    stdout.print({k: v for k, v in report.items() if k != "task_ids"})


@app.command()
def sft(
    data: str = typer.Option(None, help="trajectories to train on (e.g. a route's sft.jsonl)"),
    out: str = typer.Option(None, help="output folder (checkpoints, final/)"),
    model: str = ModelOpt,
    lora: bool = typer.Option(None, "--lora/--full", help="LoRA adapters (merged into final/) or full fine-tuning"),
    resume: bool = typer.Option(None, "--resume", help="continue from the last checkpoint in --out"),
    config: Path = ConfigOpt,
    overrides: list[str] = SetOpt,
    threads: int = ThreadsOpt,
    low_memory: bool = LowMemoryOpt,
):
    """SFT with loss on every assistant turn, through TRL's SFTTrainer."""
    use_threads(threads)
    if low_memory:
        release_freed_memory()
    from prismrl.train.sft import SFTTrainConfig, train_sft

    try:
        cfg = resolve(SFTTrainConfig, config, overrides, data=data, out=out, model=model, lora=lora, resume=resume)
        summary = train_sft(cfg)
    except USER_ERRORS as error:
        _fail(error)
    if summary.get("rank", 0) != 0:
        return  # one report per run, from the main process
    stdout.print(
        f"SFT done: {summary['steps']} steps, train loss {summary['train_loss']}, "
        f"eval loss {summary['eval_loss_before']} → {summary['eval_loss_after']}; model in {summary['final_model']}"
    )


def _env_config(text: str | None) -> dict:
    if not text:
        return {}
    path = Path(text)
    loaded = read_yaml(path, "--env-config") if path.exists() else parse_yaml(text, "--env-config")
    if not isinstance(loaded, dict):
        raise ConfigError(f"--env-config must be a YAML mapping or a file holding one, got {text!r}")
    return loaded


@app.command()
def rl(
    model: str = ModelOpt,
    env: str = typer.Option(None, help="webshop, alfworld, twx, bandit or mirror"),
    tasks: str = typer.Option(None, help="the only tasks RL may use: a trajectory file (e.g. rl.jsonl), ids file, or split:NAME"),
    out: str = typer.Option(None, help="output folder (checkpoints, final/, rl_metrics.jsonl)"),
    env_config: str = typer.Option(None, "--env-config", help="YAML mapping or file of environment options"),
    steps: int = typer.Option(None, help="optimizer steps (default: the config's epochs over the tasks, tasks_per_step at a time)"),
    config: Path = ConfigOpt,
    overrides: list[str] = SetOpt,
    threads: int = ThreadsOpt,
):
    """Multi-turn GRPO (or GiGPO: --set advantage=gigpo) on environment tasks; resumes from --out."""
    use_threads(threads)
    from prismrl.train import run_rl
    from prismrl.train.rl import RLConfig

    try:
        cfg = resolve(
            RLConfig,
            config,
            overrides,
            model=model,
            env=env,
            out=out,
            steps=steps,
            env_config=_env_config(env_config) if env_config else None,
        )
        if tasks:
            cfg.tasks = _tasks(tasks, cfg.env, cfg.env_config)
        if not cfg.tasks:
            raise ConfigError("give the RL tasks: --tasks route/rl.jsonl, a file of ids, or split:train")
        summary = run_rl(cfg)
    except USER_ERRORS as error:
        _fail(error)
    stdout.print(
        f"RL done at step {summary.get('step')}: reward {summary.get('reward')}, success {summary.get('success')}; "
        f"model in {summary['final']}"
    )


@app.command("eval")
def eval_cmd(
    model: str = ModelOpt,
    env: str = typer.Option(None),
    split: str = typer.Option(None, help="e.g. valid_seen / valid_unseen (ALFWorld), test (WebShop)"),
    episodes: int = typer.Option(None, help="number of episodes (paper: 128)"),
    temperature: float = typer.Option(None, help="sampling temperature (paper: 0.4)"),
    seed: int = typer.Option(None, help="seed of the episodes' task order and of sampling (default 0)"),
    out: str = typer.Option(None, help="folder for results.json and episodes.jsonl (transcripts)"),
    env_config: str = typer.Option(None, "--env-config"),
    config: Path = ConfigOpt,
    overrides: list[str] = SetOpt,
    threads: int = ThreadsOpt,
):
    """Success per task type, WebShop score, episode length; transcripts per episode."""
    use_threads(threads)
    from prismrl.evaluate import EvalConfig, evaluate

    try:
        cfg = resolve(
            EvalConfig,
            config,
            overrides,
            model=model,
            env=env,
            split=split,
            episodes=episodes,
            temperature=temperature,
            seed=seed,
            out=out,
            env_config=_env_config(env_config) if env_config else None,
        )
        results = evaluate(cfg)
    except USER_ERRORS as error:
        _fail(error)
    table = Table(title=f"{cfg.env}/{cfg.split}: {results['episodes']} episodes")
    for column in ("task type", "episodes", "success"):
        table.add_column(column)
    for task_type, rate in results["success_by_type"].items():
        table.add_row(task_type, str(results["episodes_by_type"][task_type]), f"{100 * rate:.1f}%")
    low, high = results["success_ci95"]
    table.add_row("all", str(results["episodes"]), f"{100 * results['success']:.1f}% (95% CI {100 * low:.1f}-{100 * high:.1f})")
    stdout.print(table)
    score_low, score_high = results["score_ci95"]
    stdout.print(
        f"score {results['score']:.2f} (95% CI {score_low:.1f}-{score_high:.1f}); mean steps {results['mean_steps']:.1f}; invalid actions "
        f"{100 * results['invalid_action_rate']:.1f}%; errors {results['errors']}"
    )


@app.command("run")
def run_cmd(
    config: Path = typer.Argument(..., help="run config YAML (see configs/)"),
    out: str = typer.Option(..., help="run folder: every phase's outputs, the ledger and summary.json"),
    overrides: list[str] = typer.Option(None, "--set", help="override: key=value or section.key=value (repeatable)"),
    threads: int = ThreadsOpt,
    low_memory: bool = LowMemoryOpt,
):
    """The whole pipeline for one method: data → probe → route → SFT → RL → eval, resumable."""
    use_threads(threads)
    if low_memory:
        release_freed_memory()
    from prismrl.pipeline.run import run
    from prismrl.pipeline.run_config import load_run_config

    try:
        summary = run(load_run_config(config, overrides or []), out)
    except USER_ERRORS as error:
        _fail(error)
    for split, result in summary["eval"].items():
        ci = result.get("success_ci95"), result.get("score_ci95")  # absent in results written before they were added
        stdout.print(
            f"{summary['method']} {split}: success {100 * result['success']:.1f}%"
            + (f" (95% CI {100 * ci[0][0]:.1f}-{100 * ci[0][1]:.1f})" if ci[0] else "")
            + f", score {result['score']:.2f}"
            + (f" (95% CI {ci[1][0]:.1f}-{ci[1][1]:.1f})" if ci[1] else "")
        )
    cost = summary["cost"]["total"]
    stdout.print(f"cost: {cost['wall_seconds']:.0f} s wall, {cost['flops']:.3g} FLOPs → {out}/summary.json")


# One seed of every method first, the dearest last: base plays every episode to the 15-turn cap, and rl-all
# runs RL from a model that never wins.
GRID_METHODS = "prism-gini,sft-all,sft-then-rl,random,inverse,magnitude,prism-kurtosis,prism-cv,pass-rate,base,rl-all"


def _csv(text: str, kind=str) -> list:
    try:
        return [kind(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise ConfigError(f"expected a comma-separated list of {kind.__name__} values, got {text!r}") from None


@app.command()
def grid(
    config: Path = typer.Argument(..., help="run config YAML: every run of the grid is it with another method / seed / RL share"),
    out: str = typer.Option(..., help="grid folder: one `prism run` folder per method and seed, <method>[-rl<share>]-s<seed>"),
    methods: str = typer.Option(GRID_METHODS, help="comma-separated methods, in run order"),
    seeds: str = typer.Option("0,1,2", help="comma-separated training seeds; every method of one seed runs before the next seed"),
    shares: str = typer.Option("", help="RL-share sweep, e.g. 0.25,0.75: extra runs of --share-methods at these route.rl_share"),
    share_methods: str = typer.Option("prism-gini,random", help="methods the RL-share sweep runs"),
    results: str = typer.Option(
        None,
        help="copy each finished run's small summary to RESULTS/<run>, the expert data and probe once to RESULTS/shared (commit them);"
        " on a fresh machine the data and probe are taken back from there",
    ),
    overrides: list[str] = typer.Option(None, "--set", help="override for every run: key=value or section.key=value (repeatable)"),
    list_only: bool = typer.Option(False, "--list", help="only list the runs and how far each has got"),
    threads: int = ThreadsOpt,
    low_memory: bool = LowMemoryOpt,
):
    """Methods x seeds of one config, each a resumable `prism run`, sharing expert data, probe and SFT-all."""
    if not list_only:  # listing computes nothing: no warning about a busy machine
        use_threads(threads)
    if low_memory:
        release_freed_memory()
    from prismrl.pipeline.grid import entry_config, finished, grid_plan, run_grid, save_shared_inputs
    from prismrl.report.save import save_summary

    try:
        plan = grid_plan(config, _csv(methods), _csv(seeds, int), _csv(shares, float), _csv(share_methods), overrides or [])
        if list_only:
            for entry in plan:
                run_dir = Path(out) / entry.name
                done = finished(out, entry.name, entry_config(config, entry, overrides or []), results)
                if done:
                    state = "done" if done == run_dir else f"done (committed to {results})"
                else:
                    state = "started" if run_dir.exists() else "to do"
                stdout.print(f"{entry.name:<28} {state}")
            return
        for entry, run_dir, summary in run_grid(config, out, plan, overrides or [], results):
            if summary is None:
                console.print(f"[bold]grid[/] {entry.name}: running → {run_dir}")
                continue
            line = ", ".join(f"{split} success {100 * r['success']:.1f}% score {r['score']:.1f}" for split, r in summary["eval"].items())
            stdout.print(f"grid {entry.name}: {line}; {summary['cost']['total']['wall_seconds']:.0f} s")
            if results and run_dir != Path(results) / entry.name:  # not one run_grid found committed already
                save_summary(run_dir, Path(results) / entry.name)
                save_shared_inputs(out, plan, Path(results) / "shared")
    except USER_ERRORS as error:
        _fail(error)


@app.command()
def export(
    run_dir: str = typer.Argument(..., help="a `prism route` or `prism run` folder"),
    fmt: str = typer.Option(..., "--format", help="llamafactory (the SFT half) or verl-agent (the RL half's tasks)"),
    out: str = typer.Option(None, help="output folder (default RUN_DIR/export/<format>)"),
    alfworld_data: str = typer.Option(None, "--alfworld-data", help="ALFWorld data folder holding json_2.1.1 (default $ALFWORLD_DATA)"),
):
    """Export a routing for LLaMA-Factory (SFT) or verl-agent (RL) to run the paper's stack."""
    from prismrl.export import export_llamafactory, export_verl_agent

    try:
        if fmt == "llamafactory":
            target = export_llamafactory(run_dir, out)
        elif fmt == "verl-agent":
            target = export_verl_agent(run_dir, out, alfworld_data)
        else:
            raise ConfigError(f"unknown export format {fmt!r}; use llamafactory or verl-agent")
    except USER_ERRORS as error:
        _fail(error)
    stdout.print(f"wrote {target}")


@app.command()
def report(
    run_dirs: list[str] = typer.Argument(..., help="finished `prism run` folders (several seeds of a method are pooled)"),
    out: str = typer.Option("runs/report", help="folder for comparison.md, comparison.png, comparison.json"),
):
    """Compare runs: success and score per method (mean ± std over seeds), cost, speed-up vs rl-all."""
    from prismrl.report.runs import compare_runs

    try:
        compare_runs(run_dirs, out)
    except USER_ERRORS as error:
        _fail(error)
    stdout.print(Path(out, "comparison.md").read_text())


@app.command()
def results(
    grids: list[str] = typer.Argument(..., help="results folders of `prism grid --results` (one per environment)"),
    out: str = typer.Option("RESULTS.md", help="the page to write; figures go to results/figures beside it"),
):
    """RESULTS.md from committed grid runs: tables over seeds with intervals, cost, the paper's claims with verdicts, plots."""
    from prismrl.report.results import write_results

    try:
        write_results(grids, out)
    except USER_ERRORS as error:
        _fail(error)
    stdout.print(f"wrote {out}")


def main() -> None:  # pragma: no cover - `python -m prismrl.cli`
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover - `python -m prismrl.cli`, e.g. under torchrun
    main()
