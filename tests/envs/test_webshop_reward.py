"""The option rule of the original WebShop reward (goal.py `get_option_reward`), one test per rule,
with the token_set_ratio values worked out by hand in the comments."""

import pytest

from prismrl.envs.webshop.reward import get_reward, normalize_color, option_matches, token_set_ratio

NAME = "Lumera Sulfate Free Shampoo for Dry Hair"


def product():
    return {
        "Title": NAME,
        "name": NAME,
        "query": "shampoo",
        "product_category": "Beauty › Hair Care › Shampoo",
        "BulletPoints": ["Comes in navy and 16 fl oz"],
        "Description": "A navy bottle of coconut shampoo.",
        "Attributes": ["sulfate free"],
    }


def goal(goal_options):
    return {
        "attributes": ["sulfate free"],
        "goal_options": goal_options,
        "price_upper": 30.0,
        "query": "shampoo",
        "product_category": "Beauty › Hair Care › Shampoo",
        "name": NAME,
    }


def test_loops_over_goal_options_not_chosen_ones():
    # One chosen value may satisfy the goal once: the goal has one option, three values were chosen
    # that all match it; r_option = 1/1, and the total cannot exceed 1.
    r = get_reward(product(), goal(["coconut"]), 20.0, {"a": "coconut", "b": "coconut", "c": "coconut"})
    assert (r.n_option_matched, r.r_option, r.r_total) == (1, 1.0, 1.0)
    # Two goal options, one chosen value matching the first: 1/2. (The old rule counted the chosen
    # side and capped at |O|.)
    r = get_reward(product(), goal(["coconut", "16 fl oz"]), 20.0, {"scent": "coconut"})
    assert (r.n_option_matched, r.r_option) == (1, 0.5)
    # (1 attribute + 1 option + price) / (1 + 2 + 1)
    assert r.r_total == pytest.approx(3 / 4)


def test_dict_goal_options_compare_as_str_of_pairs():
    # str(("color", "navy blue")) = "('color', 'navy blue')" -> tokens {color, navy, blue} ⊇ {navy}:
    # token_set_ratio 100 > 85, a match.
    assert token_set_ratio("navy", ("color", "navy blue")) == 100
    r = get_reward(product(), goal({"color": "navy blue"}), 20.0, {"color": "navy"})
    assert r.n_option_matched == 1
    # The list form: "navy blue" normalises to "blue" (first COLOR_SET word it contains), "navy" to
    # "navy": ratio("navy", "blue") = 2*0/8 -> 0, no match.
    r = get_reward(product(), goal(["navy blue"]), 20.0, {"color": "navy"})
    assert r.n_option_matched == 0


def test_normalize_color_of_a_pair_needs_an_equal_word():
    assert normalize_color(("color", "black")) == "black"
    assert normalize_color(("color", "navy blue")) == ("color", "navy blue")  # no element equals a colour
    assert normalize_color(("black", "anything")) == "black"
    assert normalize_color("navy blue") == "blue"  # strings: substring, alphabetical order


def test_no_exact_rule_for_sizes():
    # "x large" vs "xx large": shared "large", rests "x" and "xx": ratio("large x", "large xx")
    # = 2*7/(7+8) = 0.933 -> 93 > 85: a wrong size still matches (the list form of human goals).
    assert token_set_ratio("x-large", "xx-large") == 93
    assert option_matches(["xx-large"], {"size": "x-large"}) == 1
    # In the dict form the group name joins the text: the best of ratio("large", "large x") =
    # 2*5/(5+7) = 0.833, ratio("large", "large size xx") and ratio("large x", "large size xx") =
    # 2*7/(7+13) is 83, no match; the right size is a subset of "size x large": 100.
    assert token_set_ratio("x-large", ("size", "xx-large")) == 83
    assert option_matches([("size", "xx-large")], {"size": "x-large"}) == 0
    assert option_matches([("size", "x-large")], {"size": "x-large"}) == 1


def test_no_fallback_to_the_product_text():
    # "coconut" is in the description, "16 fl oz" in a bullet point, but neither was chosen: 0/2.
    r = get_reward(product(), goal(["coconut", "16 fl oz"]), 20.0, {"color": "navy"})
    assert r.n_option_matched == 0
    assert r.r_total == pytest.approx((1 + 0 + 1) / (1 + 2 + 1))


def test_non_ascii_is_dropped_as_thefuzz_does():
    # thefuzz's force_ascii: "café" -> "caf", so "caf" matches it exactly.
    assert token_set_ratio("café", "caf") == 100
