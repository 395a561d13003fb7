"""The intervals every evaluation reports: Wilson for success, a seeded bootstrap for the score."""

import pytest

from prismrl.evaluate import bootstrap_interval, summarize, wilson_interval


def test_wilson_interval_hand_checked():
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)  # not empty at 0 successes
    low, high = wilson_interval(10, 10)
    assert high == pytest.approx(1.0) and low == pytest.approx(0.7225, abs=1e-4)


def test_bootstrap_interval_of_a_mean():
    assert bootstrap_interval([0.4] * 20) == pytest.approx((0.4, 0.4))
    low, high = bootstrap_interval([0.0, 1.0] * 64)
    # normal approximation: 0.5 ± 1.96 · 0.5 / sqrt(128) = 0.5 ± 0.087
    assert low == pytest.approx(0.413, abs=0.015) and high == pytest.approx(0.587, abs=0.015)
    assert bootstrap_interval([0.0, 1.0] * 64) == (low, high)  # seeded


def test_summary_reports_both_intervals():
    episodes = [
        {
            "task_type": None,
            "won": i < 3,
            "reward": 1.0 if i < 3 else 0.25,
            "steps": 4,
            "invalid_actions": 0,
            "error": None,
            "prompt_tokens": 10,
            "generated_tokens": 5,
        }
        for i in range(8)
    ]
    summary = summarize(episodes)
    assert summary["success"] == 3 / 8 and summary["success_ci95"] == wilson_interval(3, 8)
    low, high = summary["score_ci95"]
    assert summary["score"] == pytest.approx(100 * (3 + 5 * 0.25) / 8) and low <= summary["score"] <= high
