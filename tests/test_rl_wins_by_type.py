import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "rl_wins_by_type.py"


def test_wins_are_counted_per_step_and_task_type(tmp_path):
    spec = importlib.util.spec_from_file_location("rl_wins_by_type", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    episodes = [
        {"step": 1, "task_type": "mirror", "won": True},
        {"step": 1, "task_type": "mirror", "won": False},
        {"step": 1, "task_type": "plain", "won": True},
        {"step": 2, "task_type": "plain", "won": False},
    ]
    path = tmp_path / "rl_episodes.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in episodes))
    assert module.wins_by_step_and_type(path) == {(1, "mirror"): (1, 2), (1, "plain"): (1, 1), (2, "plain"): (0, 1)}
