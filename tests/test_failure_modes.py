import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "failure_modes.py"
RESULTS_PAGE = "Observation: Back to Search [SEP] Next > [SEP] B012345678 [SEP] Mug"
PRODUCT_PAGE = "Observation: Back to Search [SEP] red [SEP] blue [SEP] Mug [SEP] Buy Now"


def _load():
    spec = importlib.util.spec_from_file_location("failure_modes", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _episode(step: int, actions: list[str], reward: float) -> dict:
    """A transcript whose pages follow the actions: search shows results, any click a product page."""
    messages = [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "Observation: Instruction: [SEP] a mug with color: red [SEP]"},
    ]
    for a in actions:
        messages.append({"role": "assistant", "content": f"Thought: t\nAction: {a}"})
        messages.append({"role": "user", "content": RESULTS_PAGE if a.startswith("search") else PRODUCT_PAGE})
    return {
        "step": step,
        "won": reward == 1.0,
        "reward": reward,
        "steps": len(actions),
        "invalid_actions": 0,
        "error": None,
        "messages": messages[:-1],  # the episode ends on the agent's last reply
    }


def test_by_step_counts_outcomes_and_repeated_actions_per_rl_step():
    module = _load()
    episodes = [
        _episode(1, ["search[mug]", "click[b012345678]", "click[buy now]"], 1.0),
        _episode(1, ["search[mug]", "click[b012345678]", "click[red]", "click[red]", "click[buy now]"], 0.5),
        _episode(2, ["search[mug]", "click[b012345678]", "click[red]", "click[red]", "click[red]", "click[red]"], 0.0),
    ]
    first, second = module.by_step(episodes)
    assert (first["step"], first["episodes"], first["won"], first["bought, partial reward"], first["stuck in a loop"]) == (1, 2, 1, 1, 0)
    assert (first["repeated turns"], first["turns"], first["mean reward"]) == (1, 8, 0.75)
    assert (second["step"], second["stuck in a loop"], second["repeated turns"], second["mean turns"]) == (2, 1, 3, 6.0)


def test_buy_now_typed_on_a_page_without_the_button_is_no_purchase():
    module = _load()
    no_op = _episode(0, ["search[mug]", "click[buy now]"], 0.0)
    purchase = _episode(0, ["search[mug]", "click[b012345678]", "click[buy now]"], 0.4)
    assert (module.bought(no_op), module.bucket(no_op)) == (False, "never opened a product")
    assert (module.bought(purchase), module.bucket(purchase)) == (True, "bought, partial reward")
    assert module.bought_without_every_option(purchase) and not module.bought_without_every_option(no_op)
