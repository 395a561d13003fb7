"""WebShopEnv: the original WebShop web site as a text environment, without Flask or a browser.

Pages and their text follow the original text env in its "text" observation mode (visible strings
of the page joined by " [SEP] "):

    search   WebShop [SEP] Instruction: [SEP] <instruction> [SEP] Search
    results  Instruction: [SEP] <instruction> [SEP] Back to Search [SEP] Page 1 (Total results: 50)
             [SEP] Next > [SEP] <ASIN> [SEP] <title> [SEP] <price> [SEP] ...   (10 per page)
    item     Instruction: [SEP] ... [SEP] Back to Search [SEP] < Prev [SEP] <group> [SEP] <value> ...
             [SEP] <title> [SEP] Price: $.. [SEP] Rating: .. [SEP] Description [SEP] Features
             [SEP] Reviews [SEP] Buy Now
    sub      Instruction: [SEP] ... [SEP] Back to Search [SEP] < Prev [SEP] <description | bullets | reviews>
    done     Thank you for shopping with us! [SEP] Your score (min 0.0, max 1.0) [SEP] <reward>

Actions: `search[query]` and `click[text]`, matched case-insensitively against the page's
clickables (buttons, product asins, option values), which are reported lower-cased as the original
did. As in the original, `search[...]` works on every page (a new search: page 1, no product, no
options), though it is listed as admissible only on the search page, which has the search box.
Anything else is a no-op, as in the original: the page stays as it is, reward 0; `info["invalid"]`
says so (our RL penalises it) and it still counts as a step, as in verl-agent's rollout loop. After `max_steps` (15) steps without a
purchase the episode ends with reward 0.

With the original data files, `preset` (PRESETS) picks the files, goal kind and splits that
verl-agent or the WebShop paper used.

Task ids are goal indexes in the seed-233 shuffle, as strings (see goals.py): "0".."n_test-1"
is the test split. Everything is seeded, so a task id + seed always replays the same way.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from prismrl.envs.webshop import expert
from prismrl.envs.webshop.catalog import generate_catalog, load_original_products, product_prices
from prismrl.envs.webshop.goals import original_goals, split_goals, synthetic_goals
from prismrl.envs.webshop.reward import NounTagger, Reward, get_reward
from prismrl.envs.webshop.search import PRODUCT_WINDOW, SearchEngine
from prismrl.errors import ConfigError, UnknownName

SEP = " [SEP] "
SEARCH_PLACEHOLDER = "search[<your query>]"
SUB_PAGES = ("Description", "Features", "Reviews")
_ACTION = re.compile(r"^\s*(\w+)\s*\[(.*)\]\s*$", re.DOTALL)


# The original data as two published setups use it. verl-agent: the 1000-product files with
# synthetic goals, test = goals 0-499, train the rest. The WebShop paper: the full product file
# with the human instructions, test 0-499, dev 500-1499, train 1500+.
PRESETS = {
    "verl-agent": dict(
        files={"products": "items_shuffle_1000.json", "attributes": "items_ins_v2_1000.json"}, human_goals=False, n_test=500, n_dev=0
    ),
    "paper": dict(
        files={"products": "items_shuffle.json", "attributes": "items_ins_v2.json", "human": "items_human_ins.json"},
        human_goals=True,
        n_test=500,
        n_dev=1000,
    ),
}


@functools.lru_cache(maxsize=4)
def _world(seed, n_products, n_goals, n_test, n_dev, data_dir, human_goals, files=None):
    """Catalog, goals, splits and search index: read-only, so every env of a process shares one
    (building them takes ~2 s, and a batched rollout holds one env per episode)."""
    if data_dir is None:
        products = generate_catalog(n_products or 1000, seed)
        prices = product_prices(products, seed)
        goals = synthetic_goals(products, prices, n_goals, seed)
    else:
        products = load_original_products(data_dir, n_products, dict(files or ()))
        prices = product_prices(products, seed)
        goals = original_goals(products, prices, human_goals, seed)
        n_dev = 1000 if n_dev is None else n_dev
    goals, splits = split_goals(goals, n_test, n_dev or 0)
    return prices, goals, splits, {p["asin"]: p for p in products}, SearchEngine(products)


@dataclass
class Session:
    """Everything one episode knows; the original kept the same fields in `user_sessions`."""

    task_id: str
    goal: dict[str, Any]
    page: str = "search"  # search | results | item | sub | done
    keywords: str = ""
    page_no: int = 1
    results: list[str] = field(default_factory=list)  # top-50 asins of the last search
    asin: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    sub_page: str | None = None
    steps: int = 0
    done: bool = False
    reward: float = 0.0
    reward_info: Reward | None = None
    truncated: bool = False


class WebShopEnv:
    name = "webshop"

    def __init__(
        self,
        seed: int = 0,
        n_products: int | None = None,
        n_goals: int = 3000,
        n_test: int | None = None,
        n_dev: int | None = None,
        data_dir: str | None = None,
        human_goals: bool | None = None,
        preset: str | None = None,
        max_steps: int = 15,
        noun_tagger: NounTagger | None = None,
        show_selected_options: bool = False,
    ):
        """Synthetic catalog by default (n_products defaults to 1000, n_goals goals, no dev split).
        With `data_dir`, the original data files instead: n_products keeps a prefix of the
        (pre-shuffled) product file, goals come from its instructions (`human_goals`), and the dev
        split defaults to the original's 1000 goals. `preset` (a PRESETS key, with `data_dir`) picks
        the files, goal kind and splits of a published setup; arguments given explicitly still win."""
        files = None
        if preset is not None:
            if preset not in PRESETS:
                raise ConfigError(f"unknown WebShop preset {preset!r}; known: {', '.join(PRESETS)}")
            if data_dir is None:
                raise ConfigError(f"WebShop preset {preset!r} reads the original data files: set data_dir too")
            chosen = PRESETS[preset]
            files = tuple(sorted(chosen["files"].items()))
            n_test = chosen["n_test"] if n_test is None else n_test
            n_dev = chosen["n_dev"] if n_dev is None else n_dev
            human_goals = chosen["human_goals"] if human_goals is None else human_goals
        n_test = 500 if n_test is None else n_test
        human_goals = True if human_goals is None else human_goals
        world = _world(seed, n_products, n_goals, n_test, n_dev, data_dir, human_goals, files)
        self.prices, self.goals, self.splits, self.products, self.search_engine = world
        self.max_steps = max_steps
        # prompt.observation_message states the selected options only if asked (our addition)
        self.show_selected_options = show_selected_options
        self.noun_tagger = noun_tagger
        self.session: Session | None = None

    # --- Env protocol ---------------------------------------------------------------------------

    def tasks(self, split: str) -> list[str]:
        if split not in self.splits:
            raise UnknownName(f"unknown WebShop split {split!r}; known: {', '.join(self.splits)}")
        return [str(i) for i in self.splits[split]]

    def reset(self, task_id: str) -> tuple[str, dict[str, Any]]:
        key = str(task_id)
        if not key.isdigit() or int(key) >= len(self.goals):
            raise UnknownName(f"unknown WebShop task id {task_id!r}; ids are goal indexes '0'..'{len(self.goals) - 1}'")
        self.session = Session(task_id=key, goal=self.goals[int(key)])
        return self.observation(), self._info()

    def step(self, action: str) -> tuple[str, float, bool, dict[str, Any]]:
        s = self._session()
        if s.done:
            return self.observation(), 0.0, True, self._info(invalid=True)
        s.steps += 1
        error = self._apply(action)
        if not s.done and s.steps >= self.max_steps:
            s.done, s.truncated = True, True
        reward = s.reward if s.page == "done" else 0.0
        # an invalid action leaves the page unchanged (the original's no-op); the reason is in info
        info = self._info(invalid=error is not None)
        info["invalid_reason"] = error  # not "error": the rollout reads that as an env crash
        return self.observation(), reward, s.done, info

    def expert_step(self) -> tuple[str, str]:
        return expert.next_action(self)

    def close(self) -> None:
        self.session = None

    # --- actions --------------------------------------------------------------------------------

    def _apply(self, action: str) -> str | None:
        """Change the session for one action; the error message when the action is invalid."""
        s = self._session()
        m = _ACTION.match(action or "")
        if m is None:
            return f"{action!r} is not of the form search[query] or click[button]."
        name, arg = m.group(1).lower(), m.group(2).strip()
        if name == "search":
            # the original runs a search from any page, not only from the one with the search box
            if not arg:
                return "the search query is empty."
            s.keywords = arg.lower()
            s.results = self.search_engine.search(s.keywords)
            self._go_results(page_no=1)
            return None
        if name == "click":
            target = self.clickables().get(arg.lower())
            if target is None:
                return f"{arg!r} is not clickable on this page."
            self._click(target)
            return None
        return f"unknown action {name!r}; use search[query] or click[button]."

    def _click(self, target: tuple[str, ...]) -> None:
        s = self._session()
        kind = target[0]
        if kind == "back":
            # a fresh search page: the original resets keywords, product and options
            s.page, s.keywords, s.page_no, s.results, s.asin, s.options = "search", "", 1, [], None, {}
        elif kind == "page":
            self._go_results(page_no=int(target[1]))
        elif kind == "asin":
            s.page, s.asin, s.options = "item", target[1], {}
        elif kind == "option":
            s.options[target[1]] = target[2]
        elif kind == "sub":
            s.page, s.sub_page = "sub", target[1]
        elif kind == "item":
            s.page = "item"
        elif kind == "buy":
            self._buy()

    def _go_results(self, page_no: int) -> None:
        s = self._session()
        # the original's results page forgets the open product and its chosen options
        s.page, s.page_no, s.asin, s.options = "results", page_no, None, {}

    def _buy(self) -> None:
        s = self._session()
        assert s.asin is not None
        info = get_reward(self.products[s.asin], s.goal, self.prices[s.asin], s.options, self.noun_tagger)
        s.page, s.done, s.reward, s.reward_info = "done", True, info.r_total, info

    # --- pages ----------------------------------------------------------------------------------

    def clickables(self) -> dict[str, tuple[str, ...]]:
        """Lower-cased text -> what clicking it does, in page order (buttons, product links, option
        values). As in the original, a value shared by two option groups maps to the later group."""
        s = self._session()
        found: dict[str, tuple[str, ...]] = {}
        if s.page == "results":
            found["back to search"] = ("back",)
            if s.page_no > 1:
                found["< prev"] = ("page", str(s.page_no - 1))
            # the original's template shows "Next >" on every results page, even past the last one
            found["next >"] = ("page", str(s.page_no + 1))
            for asin in self._page_asins():
                found[asin.lower()] = ("asin", asin)
        elif s.page == "item":
            found["back to search"] = ("back",)
            found["< prev"] = ("page", str(s.page_no))
            for sub in SUB_PAGES:
                found[sub.lower()] = ("sub", sub)
            found["buy now"] = ("buy",)
            for group, values in self._product()["options"].items():
                for value in values:
                    found[value.lower()] = ("option", group, value)
        elif s.page == "sub":
            found["back to search"] = ("back",)
            found["< prev"] = ("item",)
        return found

    def admissible(self) -> list[str]:
        s = self._session()
        if s.done:
            return []
        if s.page == "search":
            return [SEARCH_PLACEHOLDER]
        return [f"click[{text}]" for text in self.clickables()]

    def observation(self) -> str:
        s = self._session()
        instruction = ["Instruction:", s.goal["instruction_text"]]
        if s.page == "search":
            parts = ["WebShop", *instruction, "Search"]
        elif s.page == "results":
            parts = [*instruction, "Back to Search", f"Page {s.page_no} (Total results: {len(s.results)})"]
            if s.page_no > 1:
                parts.append("< Prev")
            parts.append("Next >")  # always, as the original's template
            for asin in self._page_asins():
                product = self.products[asin]
                parts += [asin, product["Title"], product["Price"]]
        elif s.page == "item":
            product = self._product()
            parts = [*instruction, "Back to Search", "< Prev"]
            for group, values in product["options"].items():
                parts += [group, *values]
            parts += [product["Title"], f"Price: {product['Price']}", f"Rating: {product['Rating']}", *SUB_PAGES, "Buy Now"]
        elif s.page == "sub":
            parts = [*instruction, "Back to Search", "< Prev", *self._sub_page_text()]
        else:
            parts = ["Thank you for shopping with us!", "Your score (min 0.0, max 1.0)", str(s.reward)]
        return SEP.join(str(p).strip() for p in parts if str(p).strip())

    def _sub_page_text(self) -> list[str]:
        s, product = self._session(), self._product()
        if s.sub_page == "Description":
            return [product.get("Description") or "No Description"]
        if s.sub_page == "Features":
            return list(product.get("BulletPoints") or []) or ["No Features"]
        reviews = product.get("Reviews") or []
        if not reviews:
            return ["No reviews found"]
        return [text for r in reviews for text in (f'"{r.get("title", "")}"', str(r.get("score", "")), r.get("body", ""))]

    # --- helpers --------------------------------------------------------------------------------

    def _session(self) -> Session:
        if self.session is None:
            raise RuntimeError("call reset(task_id) first")
        return self.session

    def _product(self) -> dict[str, Any]:
        return self.products[self._session().asin]  # type: ignore[index]

    def _page_asins(self) -> list[str]:
        s = self._session()
        return s.results[(s.page_no - 1) * PRODUCT_WINDOW : s.page_no * PRODUCT_WINDOW]

    def _info(self, invalid: bool = False) -> dict[str, Any]:
        s = self._session()
        return {
            "won": s.done and s.reward == 1.0,
            "task_type": s.goal["category"],
            "admissible": self.admissible(),
            "task_id": s.task_id,
            "instruction": s.goal["instruction_text"],
            "page": s.page,
            "asin": s.asin,
            "options": dict(s.options),
            "steps": s.steps,
            "invalid": invalid,
            "truncated": s.truncated,
            "show_selected_options": self.show_selected_options,
            "reward_info": s.reward_info.as_dict() if s.reward_info else None,
        }
