import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "failure_modes.py"


def _episode(step: int, actions: list[str], reward: float) -> dict:
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "Observation: Instruction: [SEP] a mug [SEP]"}]
    messages += [{"role": "assistant", "content": f"Thought: t\nAction: {a}"} for a in actions]
    return {
        "step": step,
        "won": reward == 1.0,
        "reward": reward,
        "steps": len(actions),
        "invalid_actions": 0,
        "error": None,
        "messages": messages,
    }


def test_by_step_counts_outcomes_and_repeated_actions_per_rl_step():
    spec = importlib.util.spec_from_file_location("failure_modes", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    episodes = [
        _episode(1, ["search[mug]", "click[b012345678]", "click[buy now]"], 1.0),
        _episode(1, ["search[mug]", "click[b012345678]", "click[red]", "click[red]", "click[buy now]"], 0.5),
        _episode(2, ["search[mug]", "click[b012345678]", "click[red]", "click[red]", "click[red]", "click[red]"], 0.0),
    ]
    first, second = module.by_step(episodes)
    assert (first["step"], first["episodes"], first["won"], first["bought, partial reward"], first["stuck in a loop"]) == (1, 2, 1, 1, 0)
    assert (first["repeated turns"], first["turns"], first["mean reward"]) == (1, 8, 0.75)
    assert (second["step"], second["stuck in a loop"], second["repeated turns"], second["mean turns"]) == (2, 1, 3, 6.0)
