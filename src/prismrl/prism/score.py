"""PRISM Stage II: how concentrated a trajectory's gradient-norm vector g is (paper §3.2).

Every function takes g as an (n_trajectories, N) array, or one (N,) vector, and returns one
score per trajectory. Gini, kurtosis, CV, Hoyer and top-k share are scale-invariant (they
measure shape); `l2` is the magnitude the paper shows is the worse router.
"""

from __future__ import annotations

import numpy as np

from prismrl.errors import ConfigError


def _rows(g) -> np.ndarray:
    g = np.asarray(g, dtype=np.float64)
    return g[None, :] if g.ndim == 1 else g


def _out(scores: np.ndarray, g) -> np.ndarray | float:
    return float(scores[0]) if np.ndim(g) == 1 else scores


def gini(g):
    """Gini coefficient, sorted form: 2·Σ_k k·g_(k) / (N·Σg) − (N+1)/N. One-hot → 1 − 1/N, constant → 0."""
    x = np.sort(_rows(g), axis=1)
    n = x.shape[1]
    k = np.arange(1, n + 1)
    return _out(2.0 * (x * k).sum(axis=1) / (n * x.sum(axis=1)) - (n + 1) / n, g)


def kurtosis(g):
    """Pearson kurtosis mean(((g − μ)/σ)^4); excess kurtosis is this − 3 and ranks identically."""
    x = _rows(g)
    z = (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)
    return _out((z**4).mean(axis=1), g)


def cv(g):
    """Coefficient of variation σ/μ (population σ)."""
    x = _rows(g)
    return _out(x.std(axis=1) / x.mean(axis=1), g)


def l2(g):
    """Magnitude ‖g‖₂: not a concentration measure; the paper's magnitude-routing ablation."""
    return _out(np.linalg.norm(_rows(g), axis=1), g)


def hoyer(g):
    """Hoyer sparsity (√N − ‖g‖₁/‖g‖₂)/(√N − 1): 0 for constant, 1 for one-hot."""
    x = _rows(g)
    root_n = np.sqrt(x.shape[1])
    return _out((root_n - np.abs(x).sum(axis=1) / np.linalg.norm(x, axis=1)) / (root_n - 1), g)


def top_share(g, fraction: float = 0.1):
    """Share of Σg held by the largest ⌈fraction·N⌉ units."""
    x = _rows(g)
    k = max(1, int(np.ceil(fraction * x.shape[1])))
    top = -np.sort(-x, axis=1)[:, :k]
    return _out(top.sum(axis=1) / x.sum(axis=1), g)


METRICS = {"gini": gini, "kurtosis": kurtosis, "cv": cv, "l2": l2, "hoyer": hoyer, "top10": top_share}
NORMALIZATIONS = ("none", "sqrt-numel")


def normalize(g, unit_numel, how: str = "none") -> np.ndarray:
    """`sqrt-numel` divides each unit's norm by √(parameter count): an ablation that stops big
    matrices (MLP) from dominating by size alone."""
    g = _rows(g)
    if how == "none":
        return g
    if how == "sqrt-numel":
        return g / np.sqrt(np.asarray(unit_numel, dtype=np.float64))[None, :]
    raise ConfigError(f"unknown normalization {how!r}; use one of {NORMALIZATIONS}")
