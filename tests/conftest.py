import json
import random
from pathlib import Path

import pytest
import torch

from prismrl.data.schema import Trajectory
from prismrl.models import load_model

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
WORDS = "apple knife table fridge open take go look mug clean heat cool put drawer shelf lamp room north south".split()


def make_trajectory(index: int, turns: int = 3, seed: int = 0) -> Trajectory:
    rng = random.Random(seed * 100_003 + index)
    say = lambda n: " ".join(rng.choice(WORDS) for _ in range(n))  # noqa: E731
    messages = [
        {"role": "system", "content": "You are an agent. Reply with Thought and Action."},
        {"role": "user", "content": f"Your task is to: {say(6)}"},
    ]
    for turn in range(turns):
        messages.append({"role": "assistant", "content": f"Thought: {say(rng.randint(3, 8))}\nAction: {say(3)}"})
        if turn < turns - 1:
            messages.append({"role": "user", "content": f"You see {say(rng.randint(4, 12))}."})
    return Trajectory(id=f"t{index:03d}", task_id=f"task-{index % 7}", env="toy", messages=messages)


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    # Tiny test models gain nothing from intra-op threads, and on a shared 2-core machine the
    # threads make every step several times slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny():
    model, tokenizer, name = load_model("tiny:0", device="cpu")
    return model, tokenizer


@pytest.fixture
def trajectories():
    return [make_trajectory(i, turns=2 + i % 3) for i in range(12)]


def write_jsonl(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture
def trajectory_file(tmp_path, trajectories):
    return write_jsonl(tmp_path / "trajectories.jsonl", [t.to_dict() for t in trajectories])
