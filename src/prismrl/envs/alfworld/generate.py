"""ALFWorld-procedural: seeded ALFWorld games built offline from what the alfworld wheel ships.

The official ~3.8k game files only come from GitHub release zips. Everything needed to make new
games is in the wheel, so this module builds them:

- scenes: the 120 AI2-THOR floor plans (`alfworld/gen/layouts/FloorPlan<N>-objects.json` lists the
  object types of a scene, `-openable.json` the receptacle instances with their viewing points,
  `-layout.npy` the navigable floor points);
- affordances: `alfworld.gen.constants` (which receptacle type holds which object type, which
  objects can be heated / cooled / cleaned / sliced, which goals suit which room type);
- goals: `alfworld.gen.goal_library` (the PDDL goal and the goal sentences of each task type),
  filled into the grammar by alfworld's own `add_task_to_grammar`.

One game = one scene, one task (target object, goal receptacle or lamp), a random placement of
every portable object of the scene into receptacles that can hold it, and a random start point.
A game is kept only when alfworld's planner expert, played step by step through the real engine,
wins it within a time budget (`verify.py`: unsolvable problems crash the engine at reset, and
slow-to-plan ones make every engine step slow); the others are counted as discards. Games are
written in the official folder layout, so one loader reads both kinds:

    <out>/json_2.1.1/<split>/<task_type>-<obj>-<mrecep>-<recep>-<scene>/trial_<seed>/
        game.tw-pddl      {pddl_domain, grammar, pddl_problem, solvable, walkthrough}
        traj_data.json    task_type, pddl_params, scene, task_id (what the engine and the
                          handcoded expert read) + a `procedural` record of how it was made

Splits: `train` and `valid_seen` use the same floor plans (alfworld's TRAIN_SCENE_NUMBERS) with
different seeds; `valid_unseen` uses only the held-out floor plans (alfworld's TEST_SCENE_NUMBERS:
FloorPlan1-6, 201-206, 301-306, 401-406), which train and valid_seen never use.

Differences from the official games, on purpose: receptacle instances come from the layout
files, at most six of a type (planning time grows steeply with the receptacle count), so some
kitchens have fewer cabinets than the THOR originals; receptacle types the layouts list without
instances (stove burners, coffee machines, ...) get synthetic ones; objects are placed by the
affordance tables rather than by THOR physics, and the task's object never starts in the goal
receptacle or the task's appliance; lamps stand on a documented host (LAMP_HOSTS); every
receptacle has its own location (THOR sometimes shares one, e.g. a coffee machine on a countertop).
Sliced and movable-receptacle tasks are not made (ALFWorld leaves them out too).

Measured (2 cores, 2 workers, 30 s budget): 78 games kept of 84 tries, every discard a planning
timeout, none unsolvable; 5-6 s of wall time per kept game. The budget bites on
pick_two_obj_and_place in kitchens (about 30 % of pick_two tries time out), so nearly all kept
pick_two games are in living rooms, bedrooms and bathrooms.
"""

from __future__ import annotations

import hashlib
import json
import queue
import random
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import numpy as np

import alfworld.gen.constants as C
import alfworld.gen.goal_library as goal_library
from alfworld.agents.utils.misc import add_task_to_grammar
from alfworld.gen.utils.py_util import multireplace
from alfworld.info import ALFRED_PDDL_PATH, ALFRED_TWL2_PATH

from prismrl.envs.alfworld.engine import SPLITS, TASK_TYPES
from prismrl.envs.alfworld.expert import isolated_random
from prismrl.envs.alfworld.verify import TIMED_OUT, PlannerWorker
from prismrl.errors import ConfigError
from prismrl.fileio import replace_dir
from prismrl.progress import Progress

SEEN_SCENES: tuple[int, ...] = tuple(C.TRAIN_SCENE_NUMBERS)
UNSEEN_SCENES: tuple[int, ...] = tuple(C.TEST_SCENE_NUMBERS)
GENERATOR_VERSION = 1

LAYOUTS = Path(C.__file__).parent / "layouts"
STATIC_RECEPTACLES = frozenset(C.RECEPTACLES - C.MOVABLE_RECEPTACLES_SET)
# A type is portable when some receptacle can hold it; sliced variants only exist after slicing.
PORTABLE = frozenset(
    t
    for held in C.VAL_RECEPTACLE_OBJECTS.values()
    for t in held
    if t in C.OBJECTS and t not in STATIC_RECEPTACLES and not t.endswith("Sliced")
)
LAMPS = ("DeskLamp", "FloorLamp")
# The affordance tables never list lamps (THOR does not move them), but look_at_obj_in_light's
# goal needs the lamp inside a receptacle the agent can stand at: a desk lamp stands on furniture,
# a floor lamp beside a seat or bed. Tried in order; the first host type in the scene is used.
LAMP_HOSTS = {
    "DeskLamp": ("Desk", "SideTable", "Dresser", "Shelf", "CoffeeTable", "DiningTable", "TVStand"),
    "FloorLamp": ("SideTable", "ArmChair", "Sofa", "Bed", "Dresser", "Desk", "CoffeeTable", "Shelf"),
}
# The appliance a task uses; the object must not start in it and the goal receptacle is not it.
APPLIANCE = {
    "pick_clean_then_place_in_recep": "SinkBasin",
    "pick_heat_then_place_in_recep": "Microwave",
    "pick_cool_then_place_in_recep": "Fridge",
}
PROPERTY = {  # the VAL_ACTION_OBJECTS class the task's object must belong to
    "pick_clean_then_place_in_recep": "Cleanable",
    "pick_heat_then_place_in_recep": "Heatable",
    "pick_cool_then_place_in_recep": "Coolable",
}
# Instances made up for receptacle types a layout lists without any instance.
SYNTHETIC_COUNT = {"StoveBurner": 4, "Drawer": 3, "Shelf": 2}
# Some kitchens list 20 cabinets. The planner's search time grows steeply with the number of
# receptacles (34 receptacles: 14 s for one heat plan; 20: 1.7 s), so a game keeps a random subset.
MAX_PER_RECEPTACLE_TYPE = 6
HORIZONS = (-30, 0, 30, 60)


# ---------------------------------------------------------------- scenes


@dataclass(frozen=True)
class Scene:
    num: int
    room: str
    types: frozenset[str]  # every object / receptacle type the floor plan has
    receptacles: tuple[tuple[str, tuple], ...]  # (THOR id, view point) from -openable.json
    floor: np.ndarray  # navigable (x, z) points in metres

    @property
    def receptacle_types(self) -> frozenset[str]:
        listed = {_type_of(rid) for rid, _ in self.receptacles}
        return frozenset((self.types & STATIC_RECEPTACLES) | listed)


def _type_of(thor_id: str) -> str:
    # "Sink|+01.10|+00.91|-01.60|SinkBasin" is a SinkBasin; other ids start with their type.
    parts = thor_id.split("|")
    return parts[-1] if parts[-1].endswith("Basin") else parts[0]


@lru_cache(maxsize=None)
def load_scene(num: int) -> Scene:
    stem = LAYOUTS / f"FloorPlan{num}"
    types = frozenset(json.loads(Path(f"{stem}-objects.json").read_text()))
    openable = json.loads(Path(f"{stem}-openable.json").read_text())
    receptacles = tuple((rid, tuple(point)) for rid, point in sorted(openable.items()) if _type_of(rid) in STATIC_RECEPTACLES)
    room = next(name for name, nums in C.SCENE_TYPE.items() if num in nums)
    return Scene(num, room, types, receptacles, np.load(f"{stem}-layout.npy"))


# ---------------------------------------------------------------- tasks


@dataclass(frozen=True)
class Task:
    task_type: str
    obj: str
    recep: str = ""  # goal receptacle type ("" for look_at_obj_in_light)
    toggle: str = ""  # lamp type (look_at_obj_in_light only)


def candidate_tasks(scene: Scene, task_type: str) -> list[Task]:
    """Every task of `task_type` the scene can host (mirrors ALFRED's sampling filters)."""
    if scene.room not in C.GOALS_VALID[task_type]:
        return []
    receps = scene.receptacle_types
    portable = sorted(scene.types & PORTABLE)
    appliance = APPLIANCE.get(task_type)
    if appliance and appliance not in receps:
        return []
    if task_type == "look_at_obj_in_light":
        lamps = [lamp for lamp in LAMPS if lamp in scene.types and _lamp_host(lamp, receps)]
        return [Task(task_type, obj, toggle=lamp) for lamp in lamps for obj in portable if _start_receptacles(obj, receps, forbidden=())]
    if task_type in PROPERTY:
        portable = [o for o in portable if o in C.VAL_ACTION_OBJECTS[PROPERTY[task_type]]]
    tasks = []
    for obj in portable:
        for recep in sorted(receps):
            if recep == appliance or obj not in C.VAL_RECEPTACLE_OBJECTS[recep]:
                continue
            # the object must start somewhere else, or the goal would hold (or be half done) at once
            if _start_receptacles(obj, receps, forbidden=(recep, appliance)):
                tasks.append(Task(task_type, obj, recep=recep))
    return tasks


def _start_receptacles(obj: str, receps: Iterable[str], forbidden: Iterable[str | None]) -> list[str]:
    return sorted(r for r in receps if r not in forbidden and obj in C.VAL_RECEPTACLE_OBJECTS[r])


def _lamp_host(lamp: str, receps: frozenset[str]) -> str | None:
    return next((host for host in LAMP_HOSTS[lamp] if host in receps), None)


@lru_cache(maxsize=None)
def eligible_scenes(split: str, task_type: str) -> tuple[int, ...]:
    scenes = UNSEEN_SCENES if split == "valid_unseen" else SEEN_SCENES
    return tuple(n for n in scenes if candidate_tasks(load_scene(n), task_type))


# ---------------------------------------------------------------- game state


@dataclass
class Receptacle:
    id: str  # THOR-style id: "Type|x|y|z" (basins: "Sink|x|y|z|SinkBasin")
    type: str
    loc: tuple[int, int, int, int]  # grid x, grid z, rotation / 90, camera horizon


@dataclass
class Item:
    id: str
    type: str
    recep: Receptacle


@dataclass
class Game:
    scene: Scene
    task: Task
    seed: int
    receptacles: list[Receptacle]
    items: list[Item]
    agent_loc: tuple[int, int, int, int]
    name: str = field(init=False)

    def __post_init__(self):
        t = self.task
        # the official folder name; look_at_obj_in_light puts the lamp in the receptacle slot
        self.name = f"{t.task_type}-{t.obj}-None-{t.recep or t.toggle}-{self.scene.num}"

    @property
    def trial(self) -> str:
        return f"trial_{self.seed}"

    @property
    def pddl_params(self) -> dict[str, Any]:
        return {
            "object_target": self.task.obj,
            "parent_target": self.task.recep,
            "toggle_target": self.task.toggle,
            "mrecep_target": "",
            "object_sliced": False,
        }


def _grid(x_m: float, z_m: float) -> tuple[int, int]:
    return round(x_m / C.AGENT_STEP_SIZE), round(z_m / C.AGENT_STEP_SIZE)


def _thor_id(type_: str, x: float, y: float, z: float) -> str:
    base = "Sink" if type_ == "SinkBasin" else "Bathtub" if type_ == "BathtubBasin" else type_
    thor_id = f"{base}|{x:+06.2f}|{y:+06.2f}|{z:+06.2f}"
    return f"{thor_id}|{type_}" if base != type_ else thor_id


def _receptacles(scene: Scene, rng: random.Random) -> list[Receptacle]:
    used: set[tuple] = set()
    out = []
    by_type: dict[str, list] = {}
    for rid, point in scene.receptacles:
        by_type.setdefault(_type_of(rid), []).append((rid, point))
    listed = [
        entry
        for entries in by_type.values()
        for entry in (entries if len(entries) <= MAX_PER_RECEPTACLE_TYPE else rng.sample(entries, MAX_PER_RECEPTACLE_TYPE))
    ]
    for rid, (x, z, rotation, horizon) in sorted(listed):
        loc = (*_grid(x, z), int(rotation) // 90 % 4, int(horizon))
        while loc in used:  # two listed receptacles viewed from one point: nudge the horizon
            loc = (*loc[:3], loc[3] + 15)
        used.add(loc)
        out.append(Receptacle(rid, _type_of(rid), loc))
    for rtype in sorted(scene.receptacle_types - set(by_type)):
        for _ in range(rng.randint(1, SYNTHETIC_COUNT.get(rtype, 1))):
            loc = _free_loc(scene, rng, used)
            x, z = loc[0] * C.AGENT_STEP_SIZE, loc[1] * C.AGENT_STEP_SIZE
            out.append(Receptacle(_thor_id(rtype, x + rng.uniform(-0.5, 0.5), rng.uniform(0, 1.2), z + rng.uniform(-0.5, 0.5)), rtype, loc))
    return out


def _free_loc(scene: Scene, rng: random.Random, used: set) -> tuple[int, int, int, int]:
    while True:
        x, z = scene.floor[rng.randrange(len(scene.floor))]
        loc = (*_grid(float(x), float(z)), rng.randrange(4), rng.choice(HORIZONS))
        if loc not in used:
            used.add(loc)
            return loc


def _items(scene: Scene, task: Task, receptacles: list[Receptacle], rng: random.Random) -> list[Item]:
    by_type: dict[str, list[Receptacle]] = {}
    for r in receptacles:
        by_type.setdefault(r.type, []).append(r)
    ids: set[str] = set()

    def place(type_: str, hosts: list[Receptacle]) -> Item:
        recep = rng.choice(hosts)
        while True:  # a THOR-like id near the receptacle; ids must be unique
            x, z = recep.loc[0] * C.AGENT_STEP_SIZE, recep.loc[1] * C.AGENT_STEP_SIZE
            item_id = _thor_id(type_, x + rng.uniform(-1, 1), rng.uniform(0, 2), z + rng.uniform(-1, 1))
            if item_id not in ids:
                ids.add(item_id)
                return Item(item_id, type_, recep)

    items = []
    for type_ in sorted(scene.types & PORTABLE):
        forbidden: tuple = ()
        count = rng.randint(1, C.MAX_NUM_OF_OBJ_INSTANCES)
        if type_ == task.obj:
            forbidden = (task.recep, APPLIANCE.get(task.task_type))
            if task.task_type == "pick_two_obj_and_place":
                count = max(count, 2)
        hosts = [r for t in _start_receptacles(type_, by_type, forbidden) for r in by_type[t]]
        items += [place(type_, hosts) for _ in range(count)] if hosts else []
    for lamp in LAMPS:
        host = _lamp_host(lamp, frozenset(by_type))
        if lamp in scene.types and host:
            items.append(place(lamp, by_type[host]))
    return items


def sample_game(split: str, task_type: str, seed: int) -> Game:
    """The game of `seed` (everything random in it comes from this seed)."""
    rng = random.Random(seed)
    scene = load_scene(rng.choice(eligible_scenes(split, task_type)))
    task = rng.choice(candidate_tasks(scene, task_type))
    receptacles = _receptacles(scene, rng)
    items = _items(scene, task, receptacles, rng)
    agent_loc = _free_loc(scene, rng, {r.loc for r in receptacles})
    return Game(scene, task, seed, receptacles, items, agent_loc)


# ---------------------------------------------------------------- files

# The same character mangling as alfworld.gen's PlannedGameState.fix_pddl_str_chars (importing it
# needs OpenCV): ids like "Apple|+01.59|-00.97" become PDDL names, "#" becomes the type dash.
_PDDL_CHARS = {"-": "_minus_", "#": "-", "|": "_bar_", "+": "_plus_", ".": "_dot_", ",": "_comma_"}


def _pddl(text: str) -> str:
    return multireplace(text, _PDDL_CHARS)


def _loc(loc: tuple[int, int, int, int]) -> str:
    return _pddl("loc|%d|%d|%d|%d" % loc)


def problem_pddl(game: Game) -> str:
    """The PDDL problem, in the shape of ALFRED's `initial_state.pddl`."""
    otypes = sorted(C.OBJECTS_SET - STATIC_RECEPTACLES)
    rtypes = sorted(STATIC_RECEPTACLES)
    locations = sorted({_loc(r.loc) for r in game.receptacles} | {_loc(game.agent_loc)})
    objects = (
        ["agent1 - agent"]
        + [f"{t}Type - otype" for t in otypes]
        + [f"{t}Type - rtype" for t in rtypes]
        + [f"{_pddl(i.id)} - object" for i in game.items]
        + [f"{_pddl(r.id)} - receptacle" for r in game.receptacles]
        + [f"{loc} - location" for loc in locations]
    )

    init = [f"(atLocation agent1 {_loc(game.agent_loc)})"]
    for r in game.receptacles:
        name = _pddl(r.id)
        init += [f"(receptacleType {name} {r.type}Type)", f"(receptacleAtLocation {name} {_loc(r.loc)})"]
        if r.type in C.OPENABLE_CLASS_SET:
            init.append(f"(openable {name})")
    for i in game.items:
        name = _pddl(i.id)
        init += [
            f"(objectType {name} {i.type}Type)",
            f"(inReceptacle {name} {_pddl(i.recep.id)})",
            f"(objectAtLocation {name} {_loc(i.recep.loc)})",
        ]
        if i.type in LAMPS:
            init.append(f"(toggleable {name})")
            continue
        init.append(f"(pickupable {name})")
        if i.type in C.MOVABLE_RECEPTACLES_SET:
            init.append(f"(isReceptacleObject {name})")
        for prop, fact in (("Cleanable", "cleanable"), ("Heatable", "heatable"), ("Coolable", "coolable"), ("Sliceable", "sliceable")):
            if i.type in C.VAL_ACTION_OBJECTS[prop]:
                init.append(f"({fact} {name})")
    item_types = sorted({i.type for i in game.items})
    for rtype in sorted({r.type for r in game.receptacles}):
        init += [f"(canContain {rtype}Type {t}Type)" for t in item_types if t in C.VAL_RECEPTACLE_OBJECTS[rtype]]

    t = game.task
    goal = goal_library.gdict[t.task_type]["pddl"].format(obj=t.obj, recep=t.recep, toggle=t.toggle, mrecep="")
    sep = "\n        "
    return (
        f"(define (problem plan_{game.trial})\n(:domain alfred)\n(:objects{sep}{sep.join(objects)}\n)\n"
        f"(:init{sep}{sep.join(init)}\n)\n{_pddl(goal).strip()}\n"
    )


def traj_data(game: Game, split: str, index: int) -> dict[str, Any]:
    return {
        "task_id": game.trial,
        "task_type": game.task.task_type,
        "pddl_params": game.pddl_params,
        "scene": {"floor_plan": f"FloorPlan{game.scene.num}", "scene_num": game.scene.num, "random_seed": game.seed},
        "procedural": {"generator": "ALFWorld-procedural", "version": GENERATOR_VERSION, "split": split, "index": index, "seed": game.seed},
    }


@lru_cache(maxsize=1)
def _logic() -> tuple[str, str]:
    return Path(ALFRED_PDDL_PATH).read_text(), Path(ALFRED_TWL2_PATH).read_text()


def game_file(game: Game, traj: dict[str, Any]) -> dict[str, Any]:
    domain, grammar = _logic()
    # alfworld picks the goal sentence with the global `random`; seed it so files are reproducible
    with isolated_random(game.seed):
        grammar = add_task_to_grammar(grammar, traj)
    return {"pddl_domain": domain, "grammar": grammar, "pddl_problem": problem_pddl(game), "solvable": None, "walkthrough": None}


# ---------------------------------------------------------------- driver


def game_seed(split: str, seed: int, index: int, attempt: int) -> int:
    """A stable per-game seed; splits never share one, so valid_seen differs from train."""
    digest = hashlib.sha256(f"alfworld-procedural:{split}:{seed}:{index}:{attempt}".encode()).hexdigest()
    return int(digest[:9], 16)


def generate_games(
    split: str,
    n: int,
    out_dir: str | Path,
    seed: int = 0,
    task_types: Iterable[str] | None = None,
    progress: bool = True,
    workers: int = 1,
    plan_timeout: float = 30.0,
    max_attempts: int = 25,
) -> dict[str, Any]:
    """Write `n` planner-verified games of `split` under `out_dir`/json_2.1.1/`split`.

    Game i has task type task_types[i % len(task_types)]; its seed comes from (split, seed, i,
    attempt), and a discarded attempt moves on to the next. A candidate is discarded when the
    planner expert does not win it, or needs more than `plan_timeout` CPU seconds for the whole
    walkthrough. Rerunning with the same arguments finds the games already written (and the
    discarded attempts, listed in <split>/.discarded/) and skips them, so an interrupted run
    resumes and a larger `n` extends the set. `workers` planner processes
    verify games in parallel. Returns the counts and the task ids (in index order).
    """
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; expected one of {SPLITS}")
    types = list(task_types or TASK_TYPES)
    unknown = [t for t in types if t not in TASK_TYPES]
    if unknown:
        raise ConfigError(f"unknown task types {unknown}; expected among {TASK_TYPES}")
    root = Path(out_dir) / "json_2.1.1" / split
    root.mkdir(parents=True, exist_ok=True)

    pool: queue.Queue[PlannerWorker] = queue.Queue()
    for _ in range(max(1, workers)):
        pool.put(PlannerWorker())
    bar = Progress(disable=not progress)
    job = bar.add_task(f"alfworld {split}", total=n)
    counted = threading.Lock()  # planner threads finish games concurrently
    start = time.monotonic()

    def one(index: int) -> dict[str, Any]:
        worker = pool.get()
        try:
            outcome = _make_game(split, seed, index, types[index % len(types)], root, worker, plan_timeout, max_attempts)
        finally:
            pool.put(worker)
        with counted:
            bar.update(job, advance=1)
        return outcome

    try:
        with bar, ThreadPoolExecutor(max_workers=max(1, workers)) as threads:
            outcomes = list(threads.map(one, range(n)))
    finally:
        while not pool.empty():
            pool.get().close()

    report: dict[str, Any] = {
        "split": split,
        "requested": n,
        "generated": 0,
        "existing": 0,
        "failed": 0,
        "discarded": 0,
        "discarded_unsolved": 0,
        "discarded_timeout": 0,
        "by_type": {t: 0 for t in types},
        "discarded_by_type": {t: 0 for t in types},
        "seconds": round(time.monotonic() - start, 1),
        "task_ids": [],
    }
    for outcome in outcomes:
        report[outcome["status"]] += 1
        report["discarded_unsolved"] += outcome["unsolved"]
        report["discarded_timeout"] += outcome["timeouts"]
        report["discarded"] += outcome["unsolved"] + outcome["timeouts"]
        report["discarded_by_type"][outcome["task_type"]] += outcome["unsolved"] + outcome["timeouts"]
        if outcome["task_id"]:
            report["by_type"][outcome["task_type"]] += 1
            report["task_ids"].append(outcome["task_id"])
    return report


def _make_game(
    split: str, seed: int, index: int, task_type: str, root: Path, worker: PlannerWorker, plan_timeout: float, max_attempts: int
) -> dict[str, Any]:
    outcome = {"task_type": task_type, "status": "failed", "task_id": None, "unsolved": 0, "timeouts": 0}
    for attempt in range(max_attempts):
        game = sample_game(split, task_type, game_seed(split, seed, index, attempt))
        final = root / game.name / game.trial
        # discards are remembered, so a resumed run does not spend the planner's time on them again
        discarded = root / ".discarded" / game.trial
        if (final / "game.tw-pddl").exists():
            status = "existing"
        else:
            result = discarded.read_text() if discarded.exists() else _write_verified(game, split, index, final, worker, plan_timeout)
            if result != "generated":
                discarded.parent.mkdir(exist_ok=True)
                discarded.write_text(result)
                outcome["timeouts" if result == TIMED_OUT else "unsolved"] += 1
                continue
            status = "generated"
        outcome.update(status=status, task_id=f"{split}/{game.name}/{game.trial}")
        break
    return outcome


def _write_verified(game: Game, split: str, index: int, final: Path, worker: PlannerWorker, plan_timeout: float) -> str:
    # Written to a scratch folder first: the engine (and the handcoded expert it loads with) read
    # traj_data.json next to game.tw-pddl, and a kept game appears in one rename, never half written.
    scratch = final.parent.parent / f".tmp-{game.trial}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        traj = traj_data(game, split, index)
        data = game_file(game, traj)
        (scratch / "traj_data.json").write_text(json.dumps(traj, indent=1))
        (scratch / "game.tw-pddl").write_text(json.dumps(data))
        walkthrough = worker.walkthrough(scratch / "game.tw-pddl", plan_timeout)
        if walkthrough is None or walkthrough == TIMED_OUT:
            return walkthrough or "unsolved"
        data.update(solvable=True, walkthrough=walkthrough)
        (scratch / "game.tw-pddl").write_text(json.dumps(data))
        final.parent.mkdir(parents=True, exist_ok=True)
        replace_dir(scratch, final)
        return "generated"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Generate planner-verified ALFWorld-procedural games.")
    parser.add_argument("--split", choices=SPLITS, required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--out", required=True, help="data folder (json_2.1.1/<split>/ is created in it)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--task-types", nargs="*", choices=TASK_TYPES)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--plan-timeout", type=float, default=30.0, help="CPU seconds the planner may spend on one game")
    args = parser.parse_args(argv)
    report = generate_games(args.split, args.n, args.out, args.seed, args.task_types, workers=args.workers, plan_timeout=args.plan_timeout)
    report.pop("task_ids")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
