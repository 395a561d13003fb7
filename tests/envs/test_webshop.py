"""WebShop re-implementation: reward arithmetic, pages, actions, expert, original-data loader."""

from __future__ import annotations

import json

import pytest

from prismrl.envs import Env, make
from prismrl.envs.react import format_turn, parse_action
from prismrl.envs.webshop import SYSTEM_PROMPT, WebShopEnv, get_reward, observation_message
from prismrl.envs.webshop.catalog import CATEGORIES, generate_catalog
from prismrl.envs.webshop.goals import NO_PRICE_LIMIT, price_limit, split_goals
from prismrl.envs.webshop.reward import heuristic_nouns, normalize_color

SMALL = dict(seed=0, n_products=250, n_goals=120, n_test=40)


@pytest.fixture(scope="module")
def env() -> WebShopEnv:
    return WebShopEnv(**SMALL)


def run_expert(env: WebShopEnv, task_id: str) -> tuple[float, dict, list[str]]:
    env.reset(task_id)
    actions, done = [], False
    while not done:
        _, action = env.expert_step()
        actions.append(action)
        _, reward, done, info = env.step(action)
    return reward, info, actions


# --- reward ------------------------------------------------------------------------------------

PATH = "Beauty & Personal Care › Hair Care › Shampoo & Conditioner › Shampoos"
NAME = "Lumera Sulfate Free Shampoo for Dry Hair"


def product(**over):
    p = {
        "Title": NAME,
        "name": NAME,
        "BulletPoints": ["Gentle daily formula", "Made in small batches"],
        "Description": "A daily shampoo that rinses clean.",
        "Attributes": ["sulfate free", "for dry hair"],
        "query": "shampoo",
        "product_category": PATH,
    }
    p.update(over)
    return p


def goal(**over):
    g = {
        "attributes": ["sulfate free", "for dry hair"],
        "goal_options": {"scent": "coconut", "size": "16 fl oz"},
        "price_upper": 30.0,
        "query": "shampoo",
        "product_category": PATH,
        "name": NAME,
    }
    g.update(over)
    return g


GOOD_OPTIONS = {"scent": "coconut", "size": "16 fl oz"}


def test_heuristic_nouns():
    # "free", "dry" are modifiers, "for" a stopword
    assert heuristic_nouns(NAME) == ["lumera", "sulfate", "shampoo", "hair"]


def test_normalize_color_first_color_word_wins():
    assert normalize_color("black forest") == "black"
    assert normalize_color("violet lavender") == "lavender"  # alphabetical order of COLOR_SET
    assert normalize_color("123alabaster") == "alabaster"
    assert normalize_color("coconut") == "coconut"


def test_reward_perfect_match():
    r = get_reward(product(), goal(), price=20.0, options=GOOD_OPTIONS)
    # (2 attributes + 2 options + price ok) / (2 + 2 + 1) = 5/5, r_type 1
    assert r.r_total == 1.0
    assert (r.r_type, r.r_att, r.r_option, r.r_price) == (1.0, 1.0, 1.0, 1.0)
    assert (r.n_att_matched, r.n_option_matched) == (2, 2)


def test_reward_wrong_option():
    r = get_reward(product(), goal(), price=20.0, options={"scent": "lavender", "size": "16 fl oz"})
    # lavender vs coconut fails, and "lavender" is nowhere in the text: (2 + 1 + 1) / 5 = 0.8
    assert r.r_total == pytest.approx(0.8)
    assert r.r_option == 0.5


def test_reward_colors_are_normalized():
    g = goal(goal_options={"color": "ruby red"})
    r = get_reward(product(), g, price=20.0, options={"color": "cherry red"})
    # both normalise to "red": (2 + 1 + 1) / (2 + 1 + 1) = 1
    assert r.r_total == 1.0
    r = get_reward(product(), g, price=20.0, options={"color": "cherry"})
    # "cherry" has no colour word and no fuzzy match: (2 + 0 + 1) / 4 = 0.75
    assert r.r_total == pytest.approx(0.75)


def test_reward_price_over_limit_and_no_limit():
    r = get_reward(product(), goal(), price=35.0, options=GOOD_OPTIONS)
    # (2 + 2 + 0) / 5 = 0.8
    assert r.r_total == pytest.approx(0.8)
    assert r.r_price == 0.0
    assert get_reward(product(), goal(price_upper=0), price=999.0, options=GOOD_OPTIONS).r_total == 1.0
    assert get_reward(product(), goal(price_upper=NO_PRICE_LIMIT), price=999.0, options=GOOD_OPTIONS).r_total == 1.0


def test_reward_missing_attribute():
    g = goal(attributes=["sulfate free", "for dry hair", "paraben free"])
    r = get_reward(product(), g, price=20.0, options=GOOD_OPTIONS)
    # "paraben free" is neither a product attribute (ratio vs "sulfate free" is 50) nor in the text:
    # (2 + 2 + 1) / (3 + 2 + 1) = 5/6
    assert r.r_total == pytest.approx(5 / 6)
    assert r.r_att == pytest.approx(2 / 3)


def test_reward_attribute_found_in_text():
    g = goal(attributes=["sulfate free", "small batches"])
    # "small batches" is not an attribute but occurs in a bullet point: 5/5
    assert get_reward(product(), g, price=20.0, options=GOOD_OPTIONS).r_total == 1.0


def test_reward_type_half():
    # goal nouns: argan, shampoo, bottle, pump, cap (5); bought: shampoo, brush -> overlap 1/5 = 0.2,
    # not > 0.2; different query; category shares only "Beauty & Personal Care" (1 level) -> 0.5
    g = goal(name="Argan Shampoo Bottle Pump Cap")
    p = product(name="Shampoo Brush", query="hair brush", product_category="Beauty & Personal Care › Tools › Brushes")
    r = get_reward(p, g, price=20.0, options=GOOD_OPTIONS)
    assert r.title_score == pytest.approx(0.2)
    assert r.r_type == 0.5
    assert r.r_total == pytest.approx(0.5)  # 5/5 * 0.5


def test_reward_type_category_match_rescues():
    # same as above, but the paths share two levels ("Beauty & Personal Care", "Hair Care") -> 1
    g = goal(name="Argan Shampoo Bottle Pump Cap")
    p = product(name="Shampoo Brush", query="hair brush", product_category="Beauty & Personal Care › Hair Care › Brushes")
    r = get_reward(p, g, price=20.0, options=GOOD_OPTIONS)
    assert (r.category_match, r.r_type, r.r_total) == (True, 1.0, 1.0)


def test_reward_type_tenth_and_zero():
    split_words = lambda s: s.lower().split()  # noqa: E731 — an exact tagger for exact arithmetic
    g = goal(name="shampoo bottle pump cap lid label box seal tube jar nozzle")  # 11 nouns
    r = get_reward(product(name="shampoo brush"), g, price=20.0, options=GOOD_OPTIONS, noun_tagger=split_words)
    # overlap 1/11 < 0.1 -> 0.1, even though query and category match
    assert r.title_score == pytest.approx(1 / 11)
    assert r.r_type == 0.1
    assert r.r_total == pytest.approx(0.1)
    r = get_reward(product(name="hair brush"), g, price=20.0, options=GOOD_OPTIONS, noun_tagger=split_words)
    # no shared noun -> 0
    assert (r.title_score, r.r_type, r.r_total) == (0.0, 0.0, 0.0)


def test_reward_human_goal_options_as_list():
    g = goal(goal_options=["coconut", "16 fl oz"])
    assert get_reward(product(), g, price=20.0, options=GOOD_OPTIONS).r_total == 1.0


# --- goals -------------------------------------------------------------------------------------


def test_price_limit_rule():
    import random

    rng = random.Random(0)
    for price in (3.0, 12.5, 47.0, 955.0):
        upper, text = price_limit(price, rng)
        above = [10.0 * i for i in range(1, 100) if 10.0 * i > price][:4]
        assert upper in above[1:]  # the larger of two distinct draws is never the first
        assert text == f", and price lower than {upper:.2f} dollars"
    assert price_limit(985.0, rng) == (NO_PRICE_LIMIT, "")  # only $990 above: no price clause


def test_split_is_seed_233_shuffle():
    import random

    goals = [{"i": i} for i in range(20)]
    shuffled, splits = split_goals(goals, n_test=5, n_dev=3)
    expected = list(goals)
    random.seed(233)
    random.shuffle(expected)  # what the original did
    assert shuffled == expected
    assert (list(splits["test"]), list(splits["dev"]), list(splits["train"])) == (list(range(5)), list(range(5, 8)), list(range(8, 20)))


def test_catalog_shape_and_seed():
    a, b, c = generate_catalog(60, seed=1), generate_catalog(60, seed=1), generate_catalog(60, seed=2)
    assert a == b and a != c
    assert len({p["asin"] for p in a}) == 60 and len({p["Title"] for p in a}) == 60
    p = a[0]
    for key in (
        "asin",
        "Title",
        "BulletPoints",
        "Description",
        "Attributes",
        "Price",
        "pricing",
        "options",
        "Rating",
        "Reviews",
        "product_category",
        "query",
        "name",
        "category",
    ):
        assert key in p
    assert "›" in p["product_category"] and len(p["asin"]) == 10
    for types in CATEGORIES.values():
        for t in types:  # a click on an option value must name exactly one group
            values = [v for vs in t.options.values() for v in vs]
            assert len(values) == len(set(values)), t.query


# --- the environment ---------------------------------------------------------------------------


def test_protocol_registry_and_tasks(env):
    assert isinstance(env, Env)
    assert isinstance(make("webshop", n_products=60, n_goals=10, n_test=4), WebShopEnv)
    test, train = env.tasks("test"), env.tasks("train")
    assert test == [str(i) for i in range(40)] and train == [str(i) for i in range(40, 120)]
    with pytest.raises(KeyError, match="nope"):
        env.tasks("nope")


def test_unknown_task_id_raises_keyerror_naming_it(env):
    for bad in ("webshop-test-3", "120", "-1", ""):
        with pytest.raises(KeyError) as e:
            env.reset(bad)
        assert repr(bad) in str(e.value)


def trace(e: WebShopEnv, task_id: str) -> list:
    obs, info = e.reset(task_id)
    out = [(obs, info)]
    for action in ("search[every day]", "click[next >]", "click[nowhere]"):
        out.append(e.step(action))
    out.append(e.step("click[back to search]"))
    done = False
    while not done:
        thought, action = e.expert_step()
        obs, reward, done, info = e.step(action)
        out.append((thought, action, obs, reward, done, info))
    return out


def test_reset_and_step_are_deterministic(env):
    first = trace(env, "3")
    assert first[-1][3] == 1.0
    assert trace(WebShopEnv(**SMALL), "3") == first == trace(env, "3")
    assert WebShopEnv(**{**SMALL, "seed": 1}).reset("3")[0] != first[0][0]


def test_search_page_and_observation_format(env):
    obs, info = env.reset("0")
    instruction = env.goals[0]["instruction_text"]
    assert obs == f"WebShop [SEP] Instruction: [SEP] {instruction} [SEP] Search"
    assert info["admissible"] == ["search[<your query>]"]
    assert info["won"] is False and info["task_type"] == env.goals[0]["category"]


def test_invalid_actions_are_noops(env):
    # the original answers an invalid action with the unchanged page, reward 0; it counts as a step
    start, _ = env.reset("1")
    for action in ("jump", "", "click[buy now]", "click[search]", "search[]", "buy[it]"):
        obs, reward, done, info = env.step(action)
        assert obs == start, action
        assert (reward, done, info["invalid"], info["page"]) == (0.0, False, True, "search")
        assert info["invalid_reason"]
    results, _, _, _ = env.step("search[every day]")
    obs, _, _, info = env.step("click[not a button]")
    assert obs == results and info["invalid"] and info["steps"] == 8


def test_search_works_on_every_page(env):
    # the original runs search[...] from any page: page 1 of the new results, no product, no options
    env.reset("0")
    _, _, _, info = env.step("search[every day]")
    env.step("click[next >]")
    asin = next(a for a in env.admissible() if a.startswith("click[b0"))
    _, _, _, info = env.step(asin)
    product = env.products[info["asin"]]
    group, values = next(iter(product["options"].items()))
    env.step(f"click[{values[0]}]")
    env.step("click[description]")
    obs, reward, done, info = env.step("search[shampoo]")
    assert (info["invalid"], info["page"], info["asin"], info["options"], reward, done) == (False, "results", None, {}, 0.0, False)
    assert "Page 1 (Total results:" in obs and env.session.keywords == "shampoo"
    assert info["admissible"][0] == "click[back to search]"  # search stays unlisted off the search page


def test_step_cap_ends_with_zero_reward(env):
    env.reset("2")
    for i in range(15):
        obs, reward, done, info = env.step("think[hard]")
        assert done == (i == 14)
    assert (reward, info["won"], info["truncated"], info["admissible"]) == (0.0, False, True, [])
    assert env.step("search[anything]")[1:3] == (0.0, True)  # stays over


def test_pagination(env):
    env.reset("0")
    # every synthetic description says "for every day", so this query matches every product
    obs, _, _, info = env.step("search[every day]")
    assert "Page 1 (Total results: 50)" in obs and "Next >" in obs and "< Prev" not in obs
    seen = []
    for page in range(1, 6):
        asins = [a[6:-1] for a in info["admissible"] if a.startswith("click[b0")]
        assert len(asins) == 10
        seen += asins
        assert f"Page {page} (Total results: 50)" in obs
        if page < 5:
            obs, _, _, info = env.step("click[Next >]")  # case-insensitive
    assert "click[next >]" in info["admissible"] and "click[< prev]" in info["admissible"]
    assert len(set(seen)) == 50
    # the original's template always shows Next >, past the last page too (an empty page)
    obs, _, _, info = env.step("click[next >]")
    assert "Page 6 (Total results: 50) [SEP] < Prev [SEP] Next >" in obs and not info["invalid"]
    assert not [a for a in info["admissible"] if a.startswith("click[b0")]
    env.step("click[< prev]")
    obs, _, _, info = env.step("click[< prev]")
    assert "Page 4 (Total results: 50)" in obs
    obs, _, _, info = env.step("click[back to search]")
    assert info["page"] == "search" and obs.startswith("WebShop [SEP] Instruction:")


def test_item_and_sub_pages(env):
    env.reset("0")
    _, _, _, info = env.step("search[every day]")
    asin = next(a for a in info["admissible"] if a.startswith("click[b0"))[6:-1].upper()
    obs, _, _, info = env.step(f"click[{asin}]")
    product = env.products[asin]
    assert info["page"] == "item" and info["asin"] == asin
    assert obs.endswith(
        f"{product['Title']} [SEP] Price: {product['Price']} [SEP] Rating: {product['Rating']}"
        " [SEP] Description [SEP] Features [SEP] Reviews [SEP] Buy Now"
    )
    assert "Back to Search [SEP] < Prev" in obs
    group, values = next(iter(product["options"].items()))
    assert f"{group} [SEP] {' [SEP] '.join(values)}" in obs
    _, _, _, info = env.step(f"click[{values[-1].upper()}]")
    assert info["options"] == {group: values[-1]}
    obs, _, _, info = env.step("click[Features]")
    assert info["page"] == "sub" and obs.endswith(" [SEP] ".join(product["BulletPoints"]))
    assert info["admissible"] == ["click[back to search]", "click[< prev]"]
    _, _, _, info = env.step("click[< prev]")
    assert info["page"] == "item" and info["options"] == {group: values[-1]}  # options kept
    _, _, _, info = env.step("click[< prev]")
    assert info["page"] == "results" and info["options"] == {}  # the results page forgets them


def test_expert_wins_generated_goals(env):
    for task_id in env.tasks("test")[:20]:
        reward, info, actions = run_expert(env, task_id)
        assert reward == 1.0 and info["won"], (task_id, actions, info["reward_info"])
        assert len(actions) <= 10


def test_expert_turns_are_react_turns(env):
    env.reset("5")
    thought, action = env.expert_step()
    parsed = parse_action(format_turn(thought, action))
    assert parsed.valid and parsed.action == action and action.startswith("search[")


def test_expert_recovers_from_a_detour(env):
    env.reset("4")
    env.step("search[every day]")
    env.step("click[next >]")
    asin = next(a for a in env.admissible() if a.startswith("click[b0"))
    env.step(asin)  # probably not the target
    done, reward = False, 0.0
    while not done:
        _, action = env.expert_step()
        _, reward, done, info = env.step(action)
    assert reward == 1.0 and info["steps"] <= 15


def test_buying_the_wrong_product_scores_partially(env):
    env.reset("6")
    target = env.goals[6]
    env.step(f"search[{target['query']}]")
    wrong = next(a for a in env.admissible() if a.startswith("click[b0") and a[6:-1].upper() != target["asin"])
    env.step(wrong)
    _, reward, done, info = env.step("click[buy now]")
    assert done and 0.0 <= reward < 1.0 and not info["won"] and info["reward_info"]["r_total"] == reward


def test_prompt(env):
    assert "Thought:" in SYSTEM_PROMPT and "Action:" in SYSTEM_PROMPT and "search[" in SYSTEM_PROMPT
    obs, info = env.reset("0")
    msg = observation_message(obs, info)
    assert obs in msg and "search[<your query>]" in msg


def test_selected_options_line_is_off_by_default(env):
    env.reset("0")
    env.step("search[every day]")
    asin = next(a for a in env.admissible() if a.startswith("click[b0"))
    env.step(asin)
    values = next(iter(env._product()["options"].values()))
    obs, _, _, info = env.step(f"click[{values[0]}]")
    assert info["options"] and "Selected options" not in observation_message(obs, info)
    shown = WebShopEnv(**SMALL, show_selected_options=True)
    shown.reset("0")
    shown.step("search[every day]")
    shown.step(asin)
    obs, _, _, info = shown.step(f"click[{values[0]}]")
    assert "Selected options: " in observation_message(obs, info)


def test_synthetic_goal_options_are_alphabetical():
    from prismrl.envs.webshop.goals import option_clause

    assert option_clause({"size": "large", "color": "black"}) == " with color: black, and size: large"
    env = WebShopEnv(**SMALL)
    for g in env.goals:
        assert list(g["goal_options"]) == sorted(g["goal_options"])


# --- the original data files -------------------------------------------------------------------


def write_original_files(tmp_path):
    items = [
        {
            "asin": "B000000001",
            "name": "Bright Citrus Deodorant by Earth Mama, Natural and Safe for Sensitive Skin",
            "full_description": "A calendula deodorant for sensitive skin.",
            "small_description": ["Aluminum free", "3 ounce"],
            "pricing": "$10.99",
            "images": ["http://img/1.jpg"],
            "category": "beauty",
            "query": "Deodorant ",
            "product_category": "Beauty & Personal Care › Personal Care › Deodorants & Antiperspirants › Deodorant",
            "customization_options": {
                "Scent": [{"value": "Bright Citrus", "image": None}, {"value": "Calming Lavender", "image": None}],
                "Size": [{"value": "3 Ounce (Pack of 1)", "image": None}, {"value": "Travel Set/4-Pack", "image": None}],
            },
        },
        {
            "asin": "B000000002",
            "name": "Cedar Deodorant Stick for Men",
            "full_description": "Woody scent.",
            "small_description": "Long lasting",
            "pricing": "$8.50 - $15.00",
            "images": [],
            "category": "beauty",
            "query": "deodorant",
            "product_category": "Beauty & Personal Care › Personal Care › Deodorants & Antiperspirants › Deodorant",
            "customization_options": None,
        },
        {
            "asin": "B000000003",
            "name": "Stainless Steel Water Bottle 32 oz",
            "full_description": "Keeps drinks cold.",
            "small_description": ["Leak proof lid"],
            "pricing": "",
            "images": [],
            "category": "garden",
            "query": "water bottle",
            "product_category": "Home & Kitchen › Kitchen & Dining › Water Bottles",
            "customization_options": {"Color": None},
        },
        {"asin": "nan", "name": "broken row", "category": "x", "query": "x", "product_category": "x"},
    ]
    attrs = {
        "B000000001": {
            "attributes": ["sensitive skin", "aluminum free"],
            "instruction": "i want a deodorant",
            "instruction_attributes": ["sensitive skin"],
        },
        "B000000002": {"attributes": ["long lasting"]},
    }
    human = {
        "B000000001": [
            {
                "instruction": "i would like a 3 ounce bright citrus deodorant for sensitive skin.",
                "instruction_attributes": ["sensitive skin"],
                "instruction_options": ["bright citrus", "3 ounce (pack of 1)"],
            },
            {"instruction": "no attributes here", "instruction_attributes": [], "instruction_options": []},
        ],
        "B000000003": [
            {
                "instruction": "i need a stainless steel water bottle",
                "instruction_attributes": ["stainless steel"],
                "instruction_options": [],
            },
        ],
    }
    (tmp_path / "items_shuffle_1000.json").write_text(json.dumps(items))
    (tmp_path / "items_ins_v2_1000.json").write_text(json.dumps(attrs))
    (tmp_path / "items_human_ins.json").write_text(json.dumps(human))


def test_original_files_loader(tmp_path):
    write_original_files(tmp_path)
    env = WebShopEnv(data_dir=str(tmp_path), n_test=1)
    assert sorted(env.products) == ["B000000001", "B000000002", "B000000003"]  # "nan" asin dropped
    p1, p2, p3 = (env.products[a] for a in sorted(env.products))
    assert p1["Title"] == p1["name"] and p1["query"] == "deodorant" and p1["MainImage"] == "http://img/1.jpg"
    assert p1["options"] == {"scent": ["bright citrus", "calming lavender"], "size": ["3 ounce (pack of 1)", "travel set | 4-pack"]}
    assert (p1["pricing"], p1["Price"]) == ([10.99], "$10.99")
    assert (p2["pricing"], p2["Price"], p2["BulletPoints"]) == ([8.5, 15.0], "$8.5 to $15.0", ["Long lasting"])
    assert 8.5 <= env.prices["B000000002"] <= 15.0
    assert (p3["pricing"], p3["Attributes"], p3["options"]) == ([100.0], ["DUMMY_ATTR"], {})
    # human goals: the instruction without attributes is skipped -> 2 goals; test 1, dev the rest
    assert len(env.goals) == 2 and env.tasks("test") == ["0"] and env.tasks("dev") == ["1"]
    deodorant = next(g for g in env.goals if g["asin"] == "B000000001")
    assert deodorant["instruction_text"].startswith("i would like a 3 ounce bright citrus deodorant for sensitive skin")
    assert deodorant["goal_options"] == ["bright citrus", "3 ounce (pack of 1)"]
    for task_id in ("0", "1"):
        reward, info, _ = run_expert(env, task_id)
        assert reward == 1.0 and info["won"]


def test_original_files_synthetic_goals(tmp_path):
    write_original_files(tmp_path)
    env = WebShopEnv(data_dir=str(tmp_path), human_goals=False, n_test=2, n_dev=0)
    # one goal per option combination of the one product with an instruction: 2 scents x 2 sizes
    assert len(env.goals) == 4 and {g["asin"] for g in env.goals} == {"B000000001"}
    assert all(g["instruction_text"].startswith("i want a deodorant with scent: ") for g in env.goals)
    for task_id in env.tasks("test") + env.tasks("train"):
        assert run_expert(env, task_id)[0] == 1.0


# --- search analysis ---------------------------------------------------------------------------


def test_search_analyzer_is_lucene_english():
    from prismrl.envs.webshop.search import tokenize

    # possessive dropped (not split into "women" + "s"), stop words out, Porter stems
    assert tokenize("The Women's Running Shoes, 2.5 inch") == ["women", "run", "shoe", "2.5", "inch"]
    assert tokenize("batteries for wireless earbuds") == ["batteri", "wireless", "earbud"]


def test_search_ranks_with_porter_stems():
    from prismrl.envs.webshop.search import SearchEngine

    def p(asin, title):
        return {"asin": asin, "Title": title, "Description": "", "BulletPoints": [""], "options": {}}

    engine = SearchEngine([p("A1", "mens sock"), p("A2", "women running shoe"), p("A3", "kids toy")])
    assert engine.search("run") == ["A2"]  # "running" -> "run" (the plural-only stemmer kept "running")
    assert engine.search("the and of") == []
    # "women's shoe" is 2 terms, not "women" + "s" + "shoe": shorter than "women shoe sock", so first
    engine = SearchEngine([p("B1", "women shoe sock"), p("B2", "women's shoe")])
    assert engine.search("women shoe") == ["B2", "B1"]


def test_presets_pick_the_files_goals_and_splits(tmp_path):
    write_original_files(tmp_path)
    # verl-agent: the _1000 files, synthetic goals (4 option combinations), no dev split
    env = WebShopEnv(data_dir=str(tmp_path), preset="verl-agent", n_test=1)
    assert len(env.goals) == 4 and all(isinstance(g["goal_options"], dict) for g in env.goals)
    assert (len(env.tasks("test")), len(env.tasks("train"))) == (1, 3)
    assert not env.splits.get("dev")
    # paper: the full-size file names and the human goals (2 with attributes), dev after test
    with pytest.raises(FileNotFoundError, match="items_shuffle.json"):
        WebShopEnv(data_dir=str(tmp_path), preset="paper")
    for name in ("items_shuffle", "items_ins_v2"):
        (tmp_path / f"{name}.json").write_text((tmp_path / f"{name}_1000.json").read_text())
    env = WebShopEnv(data_dir=str(tmp_path), preset="paper", n_test=1)
    assert len(env.goals) == 2 and all(isinstance(g["goal_options"], list) for g in env.goals)
    assert env.tasks("test") == ["0"] and env.tasks("dev") == ["1"]
    # an explicit argument beats the preset
    assert len(WebShopEnv(data_dir=str(tmp_path), preset="paper", human_goals=False).goals) == 4


def test_preset_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="unknown WebShop preset 'verl'; known: verl-agent, paper"):
        WebShopEnv(data_dir=str(tmp_path), preset="verl")
    with pytest.raises(ValueError, match="set data_dir"):
        WebShopEnv(preset="paper")
