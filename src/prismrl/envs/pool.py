"""EnvPool: many episodes stepped in parallel, for batched LLM rollouts and evaluation.

The LLM generates in the main process for every live episode at once; the pool then applies
those actions in parallel in worker processes, each owning its own env instances. Slow resets
(ALFWorld: 2-3 s of PDDL translation each) are why the workers are processes, not threads.

Design
------
* **Slots.** `reset(task_ids)` discards every previous episode and starts one episode per task id
  in slots 0..k-1. Slot i lives on worker ``i % n_workers`` for the whole episode. The main
  process keeps a `SlotEpisode` record per slot (task id, worker, steps, total reward, done, error);
  `pool.live` lists the slots still running.
* **One env per episode.** A worker binds a fresh-or-idle env instance (`make(env_name,
  **env_config)`) to each episode it holds, so episodes never share state; an env returns to the
  worker's idle list when `reset` discards its episode and is reused by a later one. An env
  that raised is closed and thrown away. Each worker builds one env as soon as it starts, so the
  first reset overlaps with whatever the main process is doing (e.g. loading a model).
* **Calls.** `step({slot: action})` sends each worker the actions of its slots in one message,
  then waits for all workers; a worker applies its slots in order. `EXPERT` as an action makes
  the worker play the env's expert (`expert_step` then `step`, one round trip); the outcome then
  carries the expert's `thought` and the `action` it took.
* **Errors are outcomes.** An exception inside an env's reset/step/expert ends that episode with
  an error outcome: ``done=True, reward=0.0, info={"error": "<Type>: msg", "won": False}``; the
  other slots carry on. A worker process that dies (segfault, ``os._exit``, killed) is seen on its
  pipe (EOF) or its process sentinel; one that does not answer within the call's timeout is
  killed. Either way it is restarted (`pool.restarts` counts), and every live episode it held
  ends with an error outcome: all of them are in that call's result, including held slots the
  call did not step. An error never counts as a win (`StepOutcome.won`, `SlotEpisode.won`), and no
  episode is ever dropped silently. A worker's first call also waits for its first env to be built.
* **Timeouts.** ``timeout`` (seconds, default None: wait as long as it takes) bounds each call;
  ``reset``/``step`` take ``timeout=`` to override it for one call. With ``n_workers=0`` the pool
  runs in-process and sequentially (same interface, same error outcomes; no timeouts, and a
  crash of the engine crashes the caller): for debugging and for cheap envs.
* **Interrupts.** Calls are numbered; a reply to an earlier, interrupted call (KeyboardInterrupt
  in the main process) is discarded rather than taken for a later one. The env did apply that
  call, though, so `reset` before going on. A pool is not thread-safe.
* **Determinism.** Every episode has its own env and resets from its task id, so a pool gives
  exactly the outcomes of running the same episodes one after another in a single env.
* The env is resolved to its registry entry (``prismrl.envs.base.REGISTRY``) in the main process
  and the ``"module:factory"`` string is sent to the workers, so an entry registered at run time
  works too, as long as its module is importable in the workers (the spawned workers inherit
  ``sys.path`` and the environment).

Typical loop::

    with EnvPool("alfworld", {"data_dir": d}, n_workers=8, timeout=300) as pool:
        starts = pool.reset(task_ids)
        while pool.live:
            actions = {slot: llm_action(slot) for slot in pool.live}
            for slot, outcome in pool.step(actions).items():
                ...
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import signal
import time
import weakref
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from prismrl.envs import base
from prismrl.errors import ConfigError, UnknownName

__all__ = ["EXPERT", "EnvPool", "SlotEpisode", "StepOutcome"]


class _Expert:
    """Marker action: let the env's expert choose the action."""

    _instance: _Expert | None = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "EXPERT"

    def __reduce__(self):
        return (_Expert, ())


EXPERT = _Expert()


@dataclass(frozen=True)
class StepOutcome:
    """What one step of one slot produced. `info["error"]` is set when the episode ended in error."""

    observation: str
    reward: float
    done: bool
    info: dict[str, Any]
    action: str = ""  # the action applied (the expert's when EXPERT was asked)
    thought: str | None = None  # the expert's thought, when EXPERT was asked

    @property
    def error(self) -> str | None:
        return self.info.get("error")

    @property
    def won(self) -> bool:
        return self.error is None and bool(self.info.get("won"))


@dataclass
class SlotEpisode:
    """The main process's record of one slot's episode (the rollout's transcript is `agent.Episode`)."""

    slot: int
    task_id: str
    worker: int  # -1 in-process
    steps: int = 0
    total_reward: float = 0.0
    done: bool = False
    won: bool = False
    error: str | None = None
    last_info: dict[str, Any] = field(default_factory=dict, repr=False)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _error_info(message: str) -> dict[str, Any]:
    return {"error": message, "won": False}


def _factory(spec: str):
    module_name, name = spec.split(":")
    return getattr(importlib.import_module(module_name), name)


# --- the worker side: env instances per slot (also used in-process for n_workers=0) ------------


class _Host:
    """Owns env instances, one bound to each live episode, and applies calls to them.

    Results per slot are ``("ok", value)`` or ``("error", "<Type>: msg")``.
    """

    def __init__(self, spec: str, config: dict[str, Any]):
        self.spec, self.config = spec, config
        self.bound: dict[int, Any] = {}  # slot -> env of its live episode
        self.idle: list[Any] = []

    def _make(self):
        return _factory(self.spec)(**self.config)

    def prewarm(self) -> None:
        try:
            self.idle.append(self._make())
        except Exception:  # the reset that needs an env will raise the same error, per slot
            pass

    def _discard(self, env) -> None:
        try:
            env.close()
        except Exception:
            pass

    def reset(self, items: list[tuple[int, str]]) -> dict[int, tuple[str, Any]]:
        self.idle.extend(self.bound.values())
        self.bound.clear()
        out = {}
        for slot, task_id in items:
            env = None
            try:
                env = self.idle.pop() if self.idle else self._make()
                out[slot] = ("ok", env.reset(task_id))
                self.bound[slot] = env
            except Exception as error:
                out[slot] = ("error", _describe(error))
                if env is not None:
                    self._discard(env)
        return out

    def step(self, actions: dict[int, str | None]) -> dict[int, tuple[str, Any]]:
        out = {}
        for slot, action in actions.items():
            env = self.bound.get(slot)
            try:
                if env is None:
                    raise RuntimeError(f"slot {slot} has no live episode on this worker")
                thought = None
                if action is None:
                    thought, action = env.expert_step()
                observation, reward, done, info = env.step(action)
                out[slot] = ("ok", (observation, float(reward), bool(done), info, action, thought))
            except Exception as error:
                out[slot] = ("error", _describe(error))
                if env is not None:
                    self._discard(self.bound.pop(slot))
        return out

    def close(self) -> None:
        for env in [*self.bound.values(), *self.idle]:
            self._discard(env)
        self.bound.clear()
        self.idle.clear()


def _worker_main(conn: Connection, spec: str, config: dict[str, Any]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides when workers stop
    host = _Host(spec, config)
    host.prewarm()
    try:
        while True:
            try:
                call, command, payload = conn.recv()
            except (EOFError, OSError):  # the main process is gone
                return
            if command == "close":
                return
            reply = getattr(host, command)(payload)
            try:
                conn.send((call, reply))
            except (BrokenPipeError, OSError):
                return
            except Exception as error:  # e.g. an info that does not pickle: report it per slot
                conn.send((call, {slot: ("error", f"unpicklable result: {_describe(error)}") for slot in reply}))
    finally:
        host.close()


# --- the main side ------------------------------------------------------------------------------


class _Worker:
    def __init__(self, ctx, spec: str, config: dict[str, Any], index: int):
        self.index = index
        self.conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=_worker_main, args=(child, spec, config), name=f"EnvPool-worker-{index}", daemon=False)
        self.process.start()
        child.close()  # so that the worker's death reads as EOF here

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5.0)
        self.conn.close()


def _stop_all(workers: list[_Worker]) -> None:
    for worker in workers:
        try:
            worker.conn.send((0, "close", None))
        except Exception:
            pass
    deadline = time.monotonic() + 5.0
    for worker in workers:
        worker.process.join(max(0.0, deadline - time.monotonic()))
        worker.kill()


class EnvPool:
    """Step-wise vectorised envs: `reset(task_ids)`, `step({slot: action})`, `close()`.

    `n_workers=0` runs in-process; `timeout` (s) bounds each call of a worker pool (None: no bound).
    """

    def __init__(
        self,
        env_name: str,
        env_config: dict[str, Any] | None = None,
        n_workers: int = 0,
        start_method: str = "spawn",
        timeout: float | None = None,
    ):
        if env_name not in base.REGISTRY:
            raise UnknownName(f"unknown environment {env_name!r}; known: {', '.join(sorted(base.REGISTRY))}")
        if n_workers < 0:
            raise ConfigError("n_workers must be >= 0")
        if start_method not in ("spawn", "forkserver"):
            raise ConfigError(f"start_method must be 'spawn' or 'forkserver', not {start_method!r}")
        self.env_name = env_name
        self.env_config = dict(env_config or {})
        self.n_workers = n_workers
        self.timeout = timeout
        self.restarts = 0
        self._calls = 0  # call number, so that a reply to an interrupted call is never mistaken for a later one
        self.episodes: list[SlotEpisode] = []
        self._spec = base.REGISTRY[env_name]
        self._closed = False
        self._host: _Host | None = None
        self._workers: list[_Worker] = []
        if n_workers == 0:
            self._host = _Host(self._spec, self.env_config)
            self._finalizer = weakref.finalize(self, self._host.close)
        else:
            self._ctx = mp.get_context(start_method)
            self._workers = [_Worker(self._ctx, self._spec, self.env_config, i) for i in range(n_workers)]
            self._finalizer = weakref.finalize(self, _stop_all, self._workers)

    # --- public API -----------------------------------------------------------------------------

    @property
    def live(self) -> list[int]:
        """Slots whose episode is still running."""
        return [e.slot for e in self.episodes if not e.done]

    def reset(self, task_ids: list[str], timeout: float | None = None) -> list[tuple[str, dict[str, Any]]]:
        """Discard all episodes; start one per task id in slots 0..k-1. A failed start is
        ``("", {"error": ..., "won": False})`` and its slot is done."""
        self._check_open()
        n = max(self.n_workers, 1)
        self.episodes = [SlotEpisode(slot=i, task_id=str(t), worker=i % n if self.n_workers else -1) for i, t in enumerate(task_ids)]
        payloads = {w: [] for w in range(n)}
        for e in self.episodes:
            payloads[max(e.worker, 0)].append((e.slot, e.task_id))
        results = self._call("reset", payloads, timeout)
        starts = []
        for e in self.episodes:
            status, value = results[e.slot]
            if status == "ok":
                observation, info = value
                e.last_info = info
            else:
                observation, info = "", _error_info(value)
                self._end_in_error(e, value)
            starts.append((observation, info))
        return starts

    def step(self, actions: dict[int, Any], timeout: float | None = None) -> dict[int, StepOutcome]:
        """Apply one action per given live slot (a string, or EXPERT), in parallel across workers.

        The result has an outcome for every given slot, plus an error outcome for any other live
        slot that was lost with a crashed worker."""
        self._check_open()
        bad = [s for s in actions if not (0 <= s < len(self.episodes)) or self.episodes[s].done]
        if bad:
            raise ValueError(f"slots {bad} have no live episode; live slots: {self.live}")
        for slot, action in actions.items():
            if action is not EXPERT and not isinstance(action, str):
                raise TypeError(f"slot {slot}: an action is a str or EXPERT, not {type(action).__name__}")
        n = max(self.n_workers, 1)
        payloads: dict[int, dict[int, str | None]] = {w: {} for w in range(n)}
        for slot, action in sorted(actions.items()):
            payloads[max(self.episodes[slot].worker, 0)][slot] = None if action is EXPERT else action
        results = self._call("step", {w: p for w, p in payloads.items() if p}, timeout)
        outcomes: dict[int, StepOutcome] = {}
        for slot in sorted(results):
            e = self.episodes[slot]
            status, value = results[slot]
            if status == "ok":
                observation, reward, done, info, action, thought = value
                e.steps += 1
                e.total_reward += reward
                e.last_info = info
                if done:
                    e.done, e.won = True, bool(info.get("won"))
                outcomes[slot] = StepOutcome(observation, reward, done, info, action, thought)
            else:
                requested = actions.get(slot)
                e.steps += slot in actions
                self._end_in_error(e, value)
                outcomes[slot] = StepOutcome("", 0.0, True, _error_info(value), requested if isinstance(requested, str) else "")
        return outcomes

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._finalizer()

    def __enter__(self) -> EnvPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- internals ------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the EnvPool is closed")

    @staticmethod
    def _end_in_error(e: SlotEpisode, message: str) -> None:
        e.done, e.won, e.error = True, False, message
        e.last_info = _error_info(message)

    def _call(self, command: str, payloads: dict[int, Any], timeout: float | None) -> dict[int, tuple[str, Any]]:
        """Send each worker its payload, gather the replies; crashed or late workers are restarted
        and every live slot they held is answered with an error."""
        if self._host is not None:
            return getattr(self._host, command)(payloads.get(0, [] if command == "reset" else {}))
        timeout = self.timeout if timeout is None else timeout
        results: dict[int, tuple[str, Any]] = {}
        failed: dict[int, str] = {}  # worker -> why
        for w, worker in enumerate(self._workers):
            if not worker.process.is_alive():  # died between calls
                failed[w] = f"WorkerDied: worker {w} exited with code {worker.process.exitcode}"
        for w in failed:
            self._restart(w)
        if command == "step":  # their episodes are lost: report them, and do not step them
            for w, held in self._held(failed).items():
                for slot in held:
                    results[slot] = ("error", failed[w])
            payloads = {w: {s: a for s, a in p.items() if s not in results} for w, p in payloads.items()}
            payloads = {w: p for w, p in payloads.items() if p}
        failed = {}

        self._calls += 1
        pending: dict[Any, int] = {}
        for w, payload in payloads.items():
            worker = self._workers[w]
            try:
                worker.conn.send((self._calls, command, payload))
                pending[worker.conn] = w
            except (BrokenPipeError, OSError) as error:
                failed[w] = f"WorkerDied: worker {w} could not be reached ({_describe(error)})"
        deadline = None if timeout is None else time.monotonic() + timeout
        while pending:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            sentinels = {self._workers[w].process.sentinel: w for w in pending.values()}
            ready = wait([*pending, *sentinels], remaining)
            if not ready:
                for w in pending.values():
                    failed[w] = f"TimeoutError: worker {w} did not answer within {timeout:g} s"
                break
            for obj in ready:
                w = pending.get(obj) if isinstance(obj, Connection) else sentinels.get(obj)
                conn = self._workers[w].conn if w is not None else None
                if w is None or conn not in pending:
                    continue
                try:
                    if isinstance(obj, Connection) or conn.poll():
                        call, reply = conn.recv()
                        if call != self._calls:  # the answer to an interrupted earlier call
                            continue
                        results.update(reply)
                    else:
                        raise EOFError
                except (EOFError, OSError):
                    process = self._workers[w].process
                    process.join(1.0)
                    failed[w] = f"WorkerDied: worker {w} exited with code {process.exitcode}"
                except Exception as error:  # a reply that does not unpickle here
                    failed[w] = f"ReplyError: worker {w}: {_describe(error)}"
                del pending[conn]
        for w in failed:
            self._restart(w)
        # every live episode of a failed worker is lost (for reset: all the episodes it was given)
        for w, held in self._held(failed).items():
            for slot in held:
                results.setdefault(slot, ("error", failed[w]))
        return results

    def _held(self, workers) -> dict[int, list[int]]:
        return {w: [e.slot for e in self.episodes if e.worker == w and not e.done] for w in workers}

    def _restart(self, w: int) -> None:
        self._workers[w].kill()
        self._workers[w] = _Worker(self._ctx, self._spec, self.env_config, w)
        self.restarts += 1
