import numpy as np
import pytest

from prismrl.prism import score as metrics


def brute_force_gini(g):
    g = np.asarray(g, dtype=float)
    return np.abs(g[:, None] - g[None, :]).sum() / (2 * len(g) ** 2 * g.mean())


@pytest.mark.parametrize("n", [2, 7, 210])
def test_one_hot_and_constant(n):
    one_hot = np.zeros(n)
    one_hot[n // 2] = 3.0
    assert metrics.gini(one_hot) == pytest.approx(1 - 1 / n)
    assert metrics.hoyer(one_hot) == pytest.approx(1.0)
    assert metrics.top_share(one_hot) == pytest.approx(1.0)
    constant = np.full(n, 0.7)
    assert metrics.gini(constant) == pytest.approx(0.0, abs=1e-12)
    assert metrics.cv(constant) == pytest.approx(0.0, abs=1e-12)
    assert metrics.hoyer(constant) == pytest.approx(0.0, abs=1e-12)


def test_gini_matches_quadratic_definition():
    rng = np.random.default_rng(0)
    for _ in range(20):
        g = rng.lognormal(size=rng.integers(3, 300))
        assert metrics.gini(g) == pytest.approx(brute_force_gini(g), rel=1e-10)


def test_known_values():
    g = np.array([1.0, 2.0, 3.0, 4.0])
    assert metrics.cv(g) == pytest.approx(np.sqrt(1.25) / 2.5)
    assert metrics.kurtosis(g) == pytest.approx(1.64)  # Pearson kurtosis of 1..4: (2·1.5⁴+2·0.5⁴)/4 / 1.25²
    assert metrics.l2(g) == pytest.approx(np.sqrt(30))
    assert metrics.top_share(g, 0.25) == pytest.approx(0.4)


def test_scale_invariance_and_vectorisation():
    rng = np.random.default_rng(1)
    g = rng.lognormal(size=(5, 50))
    for name in ("gini", "kurtosis", "cv", "hoyer", "top10"):
        metric = metrics.METRICS[name]
        np.testing.assert_allclose(metric(g), metric(37.5 * g), rtol=1e-10)
        np.testing.assert_allclose(metric(g), [metric(row) for row in g], rtol=1e-12)
    np.testing.assert_allclose(metrics.l2(3 * g), 3 * metrics.l2(g))


def test_sqrt_numel_normalization():
    g = np.array([[2.0, 6.0]])
    np.testing.assert_allclose(metrics.normalize(g, [4, 9], "sqrt-numel"), [[1.0, 2.0]])
    with pytest.raises(ValueError, match="unknown normalization"):
        metrics.normalize(g, [4, 9], "l1")
