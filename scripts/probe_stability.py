"""Probe the grid's expert data again under changes that should not move the routing, for the
stability table of RESULTS.md (prismrl.report.score_analysis):

    paraphrase  every trajectory, the system prompt reworded (same instructions, other words)
    bfloat16    the first --sample trajectories in bfloat16 instead of float32 (CPU: ~25x slower)
    repeat      the first --sample trajectories in float32 again: the probe has no dropout and
                must give the same numbers, so no trajectory may change side

    python scripts/probe_stability.py results/webshop-small/grid/shared [--sample 8] [--only repeat]

The probe by the SFT checkpoint (the paper's stated limitation) is a method of the grid instead,
`prism-gini-reprobe`, whose RL then runs on the re-probed half; RESULTS.md reports both.

Each probe resumes where it stopped (prism probe's own resume) and is written to
SHARED/stability/<name>/; commit them with the grid's results.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from prismrl.config import RouteConfig
from prismrl.data.io import load_trajectories, save_trajectories
from prismrl.errors import InputError
from prismrl.pipeline.stages import probe

# The same instructions as envs/webshop/prompt.py's system prompt, in other words.
PARAPHRASES = {
    "webshop": (
        "This is WebShop, an online store you see as text only. Buy the item the instruction asks for, "
        "with the options it names, without going over its price limit.\n\n"
        "A page is a list of text pieces separated by [SEP]. You can click any button, product id or option "
        "value that appears on the page. Each turn, do one action:\n"
        "- search[keywords]: enter keywords in the search box (starts a new search from any page).\n"
        "- click[text]: click a button, product id or option value on the page, e.g. click[b0123456789], "
        "click[next >], click[< prev], click[back to search], click[description], click[features], "
        "click[reviews], click[large], click[buy now].\n\n"
        "Open a product to see its options, choose each option the instruction requests, then click buy now; "
        "the episode ends with the purchase. Your score depends on how closely the purchase matches the product "
        "type, attributes, options and price. You may take at most 15 actions.\n\n"
        "Reply every turn in exactly this format:\nThought: <one short sentence of reasoning>\nAction: <one action>"
    ),
    # envs/mirror/prompt.py's rule in other words; the reply format is left as it is, as for WebShop.
    "mirror": (
        "A house of rooms hides an object that you have to pick up. Every room says in which direction the "
        "object is. The Plain House works as usual: move in the direction the room names. The Mirror House "
        "reverses every direction: going south takes you north and going west takes you east, so for an object "
        "to the north you go south and for one to the east you go west. When the object is in your room, take it.\n"
        "Reply every turn in exactly this format:\n"
        "Thought: <one short sentence>\n"
        "Action: <go north, go south, go east, go west, or take <object>>"
    ),
}


def paraphrased(expert: Path, out: Path) -> Path:
    trajectories = load_trajectories(expert)[0]
    env = trajectories[0].env or "webshop"
    if env not in PARAPHRASES:
        raise InputError(f"no paraphrase of the {env} system prompt; add one to PARAPHRASES")
    for t in trajectories:
        if t.messages[0]["role"] != "system":
            raise InputError(f"{t.id}: the first message is not the system prompt")
        t.messages[0] = {**t.messages[0], "content": PARAPHRASES[env]}
    path = out / "expert.jsonl"
    out.mkdir(parents=True, exist_ok=True)
    save_trajectories(trajectories, path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shared", type=Path, help="prism grid --results DIR's shared/ folder")
    parser.add_argument("--sample", type=int, default=8, help="trajectories in the bfloat16 and repeat probes")
    parser.add_argument("--only", choices=("paraphrase", "bfloat16", "repeat"), action="append", help="run only these (repeatable)")
    args = parser.parse_args()
    meta = json.loads((args.shared / "route" / "probe_meta.json").read_text())
    expert = args.shared / "data" / "expert.jsonl"
    stability = args.shared / "stability"
    common = dict(model=meta["model"], max_length=meta["max_length"])
    plans = {
        "paraphrase": lambda: RouteConfig(
            data=str(paraphrased(expert, stability / "paraphrase")), out=str(stability / "paraphrase"), dtype=meta["dtype"], **common
        ),
        "bfloat16": lambda: RouteConfig(data=str(expert), out=str(stability / "bfloat16"), dtype="bfloat16", limit=args.sample, **common),
        "repeat": lambda: RouteConfig(data=str(expert), out=str(stability / "repeat"), dtype=meta["dtype"], limit=args.sample, **common),
    }
    for name in args.only or plans:
        summary, _ = probe(plans[name]())
        print(f"{name}: probed {summary.n_probed} (resumed {summary.n_resumed}) of {summary.n_total} in {summary.seconds:.0f} s")


if __name__ == "__main__":
    main()
