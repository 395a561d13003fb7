"""Is a game solvable, quickly? Play alfworld's planner expert through the real engine to a win.

A game is worth keeping only if the planner wins it *and* plans fast: with the planner expert the
engine replans at every step, and Fast Downward's search time grows steeply with plan length and
the number of receptacles and objects (a two-object task in a 20-receptacle kitchen can take
minutes). The search runs inside a C library and cannot be interrupted in-process, so
`PlannerWorker` runs it in a child process that the kernel stops when the budget is spent.

The budget is CPU time (RLIMIT_CPU), not wall-clock time: a wall-clock limit discards more games
on a busy machine, so the same seed gave different game sets depending on what else ran.
"""

from __future__ import annotations

import json
import math
import os
import resource
import select
import signal
import subprocess
import sys
from pathlib import Path

from prismrl.envs.alfworld.expert import make_expert_env
from prismrl.errors import SetupError

MAX_PLAN_STEPS = 50
TIMED_OUT = "timed out"
# A child that stops using CPU (stuck on I/O, starved) is still stopped after this much wall time.
WALL_CLOCK_FACTOR, WALL_CLOCK_GRACE = 4, 60.0
PROJECT_DIR = Path(__file__).resolve().parents[2]  # src/prismrl: an exception raised here is our bug


def planner_walkthrough(gamefile: str | Path, env=None, max_steps: int = MAX_PLAN_STEPS) -> list[str] | None:
    """The planner's winning commands, or None when it does not win within `max_steps`."""
    env = env or make_expert_env("planner")
    env.load(str(gamefile))  # a missing or unreadable game is an error, not an unsolvable game
    state = _in_planner(env.reset)
    commands: list[str] = []
    while state is not None and not state["won"]:
        plan = state["extra.expert_plan"]
        if not plan or len(commands) >= max_steps:
            return None
        commands.append(plan[0])
        stepped = _in_planner(env.step, plan[0])
        state = None if stepped is None else stepped[0]
    if state is None:
        return None
    return commands or None  # won before any step: no task at all


def _in_planner(call, *args):
    """`call(*args)`, or None when the planner gave up: unsolvable problems crash inside alfworld's
    planner (KeyError 'val1' and kin). An exception raised in this project's own code is a bug,
    not an unsolvable game, and propagates."""
    try:
        return call(*args)
    except Exception as error:
        if _raised_in(error, PROJECT_DIR):
            raise
        return None


def _raised_in(error: BaseException, folder: Path) -> bool:
    frame = error.__traceback__
    while frame.tb_next is not None:
        frame = frame.tb_next
    return Path(frame.tb_frame.f_code.co_filename).resolve().is_relative_to(folder)


class PlannerWorker:
    """A child Python process answering `walkthrough(gamefile, timeout)`; restarted after a timeout.

    A plain subprocess speaking JSON lines (not multiprocessing): it needs no `__main__` guard in
    the caller's script and never forks a parent that may be running threads.
    """

    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = None

    def _start(self) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self._proc = subprocess.Popen(
            [sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True
        )
        # imports take seconds; they must not eat into the first game's time budget
        if self._proc.stdout.readline().strip() != "ready":
            self._stop()
            raise SetupError("the ALFWorld planner worker did not start (is alfworld installed?)")

    def walkthrough(self, gamefile: str | Path, timeout: float) -> list[str] | None | str:
        """Winning commands, None (the planner cannot win), or TIMED_OUT after `timeout` CPU seconds."""
        if self._proc is None or self._proc.poll() is not None:
            self._start()
        self._proc.stdin.write(json.dumps({"game": str(gamefile), "cpu_seconds": timeout}) + "\n")
        self._proc.stdin.flush()
        ready, _, _ = select.select([self._proc.stdout], [], [], WALL_CLOCK_FACTOR * timeout + WALL_CLOCK_GRACE)
        if not ready:
            self._stop()
            return TIMED_OUT
        line = self._proc.stdout.readline()
        if not line:  # the kernel stopped it (CPU budget) or it died (e.g. out of memory: unsolved)
            code = self._proc.wait()
            self._stop()
            return TIMED_OUT if code == -signal.SIGXCPU else None
        return json.loads(line)

    def _stop(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.stdin.close()  # end of input: the child returns
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self._stop()

    def __enter__(self) -> "PlannerWorker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _serve() -> None:
    """The child's loop: a game file path (JSON) per input line, its walkthrough (JSON) per output line."""
    # answers get a private copy of stdout; anything else printed to stdout, Python or C (Fast
    # Downward), goes to stderr so it cannot corrupt them
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGXCPU would otherwise dump a core file
    env = make_expert_env("planner")
    print("ready", file=out, flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        # the kernel sends SIGXCPU (which ends the process) once this game has used its budget
        resource.setrlimit(resource.RLIMIT_CPU, (math.ceil(usage.ru_utime + usage.ru_stime + request["cpu_seconds"]), hard))
        print(json.dumps(planner_walkthrough(request["game"], env)), file=out, flush=True)


if __name__ == "__main__":
    _serve()
