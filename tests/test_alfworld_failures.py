import importlib.util
import json
import sys
from pathlib import Path

ADMISSIBLE = "Admissible commands: go to shelf 1, go to sofa 1, take box 2 from shelf 1, look"


def _script():
    spec = importlib.util.spec_from_file_location(
        "alfworld_failures", Path(__file__).resolve().parents[1] / "scripts" / "alfworld_failures.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def _episode(task_type, commands, observations, won=False, invalid=0):
    messages = [{"role": "system", "content": "rules"}, {"role": "user", "content": f"Your task is to: look at box. {ADMISSIBLE}"}]
    for command, observation in zip(commands, observations, strict=True):
        messages.append({"role": "assistant", "content": f"Thought: ok.\nAction: {command}"})
        messages.append({"role": "user", "content": f"{observation}\n{ADMISSIBLE}"})
    return {
        "task_type": task_type,
        "task_id": f"valid_seen/{task_type}",
        "won": won,
        "reward": float(won),
        "steps": len(commands),
        "invalid_actions": invalid,
        "error": None,
        "prompt_tokens": 0,
        "generated_tokens": 0,
        "messages": messages,
    }


def test_alfworld_failures_buckets_episodes_by_what_the_transcript_shows(tmp_path, monkeypatch, capsys):
    episodes = [
        _episode("look_at_obj_in_light", ["go to shelf 1", "take box 2 from shelf 1"], ["You arrive.", "You pick up the box 2."], won=True),
        _episode(
            "look_at_obj_in_light",
            ["go to shelf 1", "take box 2 from shelf 1", "go to sofa 1"],
            ["You arrive.", "You pick up the box 2.", "You arrive."],
        ),
        _episode("pick_and_place_simple", ["look", "look", "look"], ["Nothing.", "Nothing.", "Nothing."]),
        _episode("pick_and_place_simple", ["put box 2 in/on sofa 1", "open shelf 1", "go to sofa 1"], ["Nothing happens."] * 3),
        _episode("pick_and_place_simple", ["go to sofa 1", "go to shelf 1"], ["You arrive.", "You arrive."]),
    ]
    path = tmp_path / "episodes.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in episodes))
    monkeypatch.setattr(sys, "argv", ["alfworld_failures.py", str(path)])
    _script().main()
    out = capsys.readouterr().out
    assert "5 episodes; success 20.0 %" in out and "commands not admissible 2 of 13" in out
    assert "| look_at_obj_in_light | 2 | 1 |" in out and "| pick_and_place_simple | 3 | 0 |" in out
    for row in (
        "| won | 1 |",
        "| picked something up, unfinished | 1 |",
        "| stuck in a loop | 1 |",
        "| commands the game rejects | 1 |",
        "| never picked anything up | 1 |",
    ):
        assert row in out, row
