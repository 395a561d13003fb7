"""Goals (shopping instructions) and the train/dev/test split.

A goal names a target product and what the shopper wants of it:

    asin, category, query, name, product_category,       # the target, for the type reward
    attributes       [a subset of the product's Attributes],
    goal_options     {group: one value of each option group},
    price_upper      (1e6 = no limit, as the original),
    instruction_text "i need a sulfate free shampoo with scent: mint, and price lower than 30.00 dollars"

The price limit follows the original: take the multiples of $10 above the price, keep the next
four, sample two and use the larger; with fewer than two there is no price clause.

The split also follows the original: shuffle all goals with seed 233, then test = the first
`n_test`, dev = the next `n_dev`, train = the rest. A task id is the goal's index in that shuffled
list, as a string ("0" .. "499" are the test goals with the defaults) — the same number the
original text env takes as `session`, so ids line up with published WebShop splits.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

from prismrl.envs.webshop.catalog import CATEGORIES

Goal = dict[str, Any]
Product = dict[str, Any]

PRICE_RANGE = [10.0 * i for i in range(1, 100)]
NO_PRICE_LIMIT = 1_000_000.0
SPLIT_SEED = 233

_OPENERS = ("i need", "i am looking for", "i want", "i would like", "find me", "i'm looking for", "get me")
_ARTICLES = {t.query: t.article for ts in CATEGORIES.values() for t in ts}


def price_limit(price: float, rng: random.Random) -> tuple[float, str]:
    """(price_upper, the instruction's price clause)."""
    above = [p for p in PRICE_RANGE if p > price][:4]
    if len(above) < 2:
        return NO_PRICE_LIMIT, ""
    upper = max(rng.sample(above, 2))
    return upper, f", and price lower than {upper:.2f} dollars"


def option_clause(goal_options: dict[str, str]) -> str:
    # the original synthetic goals' wording, groups in alphabetical order as the original's
    # get_synthetic_goals sorts them: " with color: black, and size: large"
    text = ", and ".join(f"{group}: {goal_options[group]}" for group in sorted(goal_options))
    return f" with {text}" if text else ""


def describe(query: str, attributes: list[str], rng: random.Random) -> str:
    """ "i need a paraben free, cruelty free shampoo for dry hair": modifiers before the query,
    "for ..."/"with ..." attributes after it."""
    lead = [a for a in attributes if not a.startswith(("for ", "with "))]
    tail = [a for a in attributes if a.startswith(("for ", "with "))]
    article = _ARTICLES.get(query, "a")
    described = " ".join(w for w in (", ".join(lead), query, " and ".join(tail)) if w)
    if article == "a" and (described[0] in "aeiou" or described.startswith("hdmi")):
        article = "an"
    words = [rng.choice(_OPENERS), article, described]
    return " ".join(w for w in words if w)


def _goal(product: Product, instruction: str, attributes: list[str], goal_options: Any, price_upper: float) -> Goal:
    return {
        "asin": product["asin"],
        "category": product["category"],
        "query": product["query"],
        "name": product["name"],
        "product_category": product["product_category"],
        "instruction_text": instruction,
        "attributes": attributes,
        "goal_options": goal_options,
        "price_upper": price_upper,
        "weight": 1,
    }


def synthetic_goals(products: list[Product], prices: dict[str, float], n_goals: int, seed: int = 0) -> list[Goal]:
    """`n_goals` goals over the catalog, cycling through the products in a seeded order so every
    product is a target before any is a target twice."""
    rng = random.Random(f"webshop-goals-{seed}")
    order = list(products)
    goals = []
    for i in range(n_goals):
        if i % len(order) == 0:
            rng.shuffle(order)
        product = order[i % len(order)]
        k = rng.randint(min(2, len(product["Attributes"])), min(3, len(product["Attributes"])))
        attributes = sorted(rng.sample(product["Attributes"], k), key=product["Attributes"].index)
        # draw in the product's order (keeps the seeded goals), store sorted as the original does
        picked = {group: rng.choice(values) for group, values in product["options"].items()}
        goal_options = {group: picked[group] for group in sorted(picked)}
        price_upper, price_text = price_limit(prices[product["asin"]], rng)
        text = describe(product["query"], attributes, rng) + option_clause(goal_options) + price_text
        goals.append(_goal(product, text, attributes, goal_options, price_upper))
    return goals


def original_goals(products: list[Product], prices: dict[str, float], human_goals: bool = True, seed: int = 0) -> list[Goal]:
    """Goals from the original files' instructions (see catalog.load_original_products).

    human_goals=True: every human-written instruction with at least one attribute (the original
    skips the others); its options are a plain list of values.
    human_goals=False: the original "synthetic" goals, one per combination of option values.
    """
    rng = random.Random(f"webshop-goals-{seed}")
    goals = []
    for product in products:
        if human_goals:
            for ins in product.get("instructions", []):
                attributes = ins.get("instruction_attributes") or []
                if not attributes:
                    continue
                price_upper, price_text = price_limit(prices[product["asin"]], rng)
                text = ins["instruction"].strip(".") + price_text
                goals.append(_goal(product, text, attributes, ins.get("instruction_options") or [], price_upper))
        elif product.get("instruction_text"):
            price_upper, price_text = price_limit(prices[product["asin"]], rng)
            groups = sorted(product["options"])
            for combination in itertools.product(*(product["options"][g] for g in groups)):
                goal_options = dict(zip(groups, combination))
                text = product["instruction_text"] + option_clause(goal_options) + price_text
                goals.append(_goal(product, text, product["instruction_attributes"], goal_options, price_upper))
    return goals


def split_goals(goals: list[Goal], n_test: int = 500, n_dev: int = 0) -> tuple[list[Goal], dict[str, range]]:
    """(goals shuffled with seed 233, {split: index range}). random.Random(233).shuffle permutes
    exactly as the original's random.seed(233); random.shuffle(goals)."""
    shuffled = list(goals)
    random.Random(SPLIT_SEED).shuffle(shuffled)
    n = len(shuffled)
    n_test = min(n_test, n)
    n_dev = min(n_dev, n - n_test)
    splits = {
        "test": range(0, n_test),
        "dev": range(n_test, n_test + n_dev),
        "train": range(n_test + n_dev, n),
    }
    return shuffled, splits
