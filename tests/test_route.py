import numpy as np
import pytest

from prismrl.prism.route import ROUTERS, route, halves_by_score


def _records(n, seed=0):
    rng = np.random.default_rng(seed)
    return [
        {"id": f"id{i:03d}", "norms": rng.lognormal(size=14).tolist(), "loss": float(rng.random()), "n_tokens": int(rng.integers(10, 99))}
        for i in range(n)
    ]


@pytest.mark.parametrize("n", [1, 2, 9, 10, 31])
@pytest.mark.parametrize("router", ROUTERS)
def test_halves_partition_the_input_with_median_sizes(n, router):
    records = _records(n)
    routing = route(records, router)
    assert sorted(routing.ids_sft + routing.ids_rl) == sorted(r["id"] for r in records)
    assert len(routing.ids_rl) == n // 2 and len(routing.ids_sft) == n - n // 2
    assert set(routing.scores) == {r["id"] for r in records}


def test_high_score_goes_to_rl_and_ties_break_by_id():
    ids_sft, ids_rl, threshold = halves_by_score({"b": 1.0, "a": 1.0, "d": 0.0, "c": 1.0}, 0.5)
    assert ids_sft == ["d", "a"] and ids_rl == ["b", "c"] and threshold == 1.0
    ids_sft, ids_rl, threshold = halves_by_score({"x": 0.1, "y": 0.9, "z": 0.5}, 0.5)
    assert ids_rl == ["y"] and ids_sft == ["x", "z"] and threshold == pytest.approx(0.7)


@pytest.mark.parametrize("share,n_rl", [(0.1, 3), (0.3, 9), (0.5, 15), (0.7, 21), (0.9, 27), (0.0, 0), (1.0, 30)])
def test_rl_share_quantiles(share, n_rl):
    routing = route(_records(30), "prism", rl_share=share)
    assert len(routing.ids_rl) == n_rl
    if 0 < n_rl < 30:
        assert min(routing.scores[i] for i in routing.ids_rl) >= max(routing.scores[i] for i in routing.ids_sft)


def test_deterministic_and_order_independent():
    records = _records(21)
    for router in ROUTERS:
        a = route(records, router, seed=3)
        b = route(list(reversed(records)), router, seed=3)
        assert a.ids_rl == b.ids_rl and a.ids_sft == b.ids_sft
    assert route(records, "random", seed=1).ids_rl != route(records, "random", seed=2).ids_rl


def test_inverse_is_prism_mirrored_and_baselines_use_their_signal():
    records = _records(20)
    prism, inverse = route(records, "prism", "kurtosis"), route(records, "inverse", "kurtosis")
    assert set(prism.ids_rl) == set(inverse.ids_sft)
    by_loss = sorted(records, key=lambda r: r["loss"])
    assert set(route(records, "loss").ids_rl) == {r["id"] for r in by_loss[10:]}
    magnitude = route(records, "magnitude")
    norms = {r["id"]: np.linalg.norm(r["norms"]) for r in records}
    assert min(norms[i] for i in magnitude.ids_rl) > max(norms[i] for i in magnitude.ids_sft)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown router"):
        route(_records(4), "oracle")
    with pytest.raises(ValueError, match="metric must be"):
        route(_records(4), "prism", metric="entropy")
    with pytest.raises(ValueError, match="rl_share"):
        route(_records(4), rl_share=1.5)
    with pytest.raises(ValueError, match="nothing to route"):
        route([])


def test_pass_rate_ties_are_broken_by_a_seeded_draw_not_by_id():
    from prismrl.prism.route import halves_by_score

    # ALFWorld-like ids grouped by task type, all with the same pass rate.
    scores = {f"{kind}-{n}": 0.0 for kind in ("clean", "heat", "pick") for n in range(10)}
    by_id_sft, _, _ = halves_by_score(scores, 0.5)
    assert not any(i.startswith("pick") for i in by_id_sft)  # id order: one whole type in one half
    _, ids_rl, _ = halves_by_score(scores, 0.5, tie_seed=0)
    assert len({i.split("-")[0] for i in ids_rl}) == 3
    assert halves_by_score(scores, 0.5, tie_seed=0) == halves_by_score(dict(reversed(scores.items())), 0.5, tie_seed=0)
    assert halves_by_score(scores, 0.5, tie_seed=1)[1] != ids_rl


def test_nan_scores_are_excluded_with_a_reason():
    from prismrl.prism.route import route

    records = [{"id": f"t{i}", "norms": [1.0 + i, 2.0, 3.0 * i + 0.5]} for i in range(6)]
    records += [{"id": "flat", "norms": [0.0, 0.0, 0.0]}]
    for metric in ("gini", "kurtosis", "cv"):
        routing = route(records, "prism", metric)
        assert "flat" in routing.excluded and "not finite" in routing.excluded["flat"]
        assert "flat" not in routing.ids_sft + routing.ids_rl and "flat" not in routing.scores
        assert len(routing.ids_sft) + len(routing.ids_rl) == 6


@pytest.mark.parametrize("metric", ["gini", "kurtosis", "cv", "hoyer", "top10", "l2"])
def test_inverse_exists_for_every_metric_and_mirrors_prism(metric):
    from prismrl.prism.route import route

    records = [{"id": f"t{i}", "norms": [1.0 + i, 2.0 + (i * 7) % 5, 3.0 * i + 0.5, 1.0]} for i in range(8)]
    prism, inverse = route(records, "prism", metric), route(records, "inverse", metric)
    assert inverse.metric == f"-{metric}"
    assert set(inverse.ids_rl) == set(prism.ids_sft)
