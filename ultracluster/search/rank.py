"""Ranking by objective and the Pareto front over time, energy and cost."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ultracluster.simulate.comm import Arr

OBJECTIVES = {"time": "time_to_train_s", "energy": "energy_to_train_j", "cost": "cost_usd"}


def top_indices(values: Arr, k: int) -> npt.NDArray[np.intp]:
    """Indices of the `k` smallest values, best first (stable for ties)."""
    k = min(k, values.shape[0])
    if k == 0:
        return np.zeros(0, dtype=np.intp)
    part = np.argpartition(values, k - 1)[:k] if k < values.shape[0] else np.arange(k)
    return part[np.argsort(values[part], kind="stable")]


def rank_indices(primary: Arr, secondary: Arr, k: int) -> npt.NDArray[np.intp]:
    """The `k` best rows by `primary`, ties (to 1e-9 relative) broken by `secondary`."""
    rounded = np.round(np.log(np.maximum(primary, 1e-300)) * 1e9)
    return np.lexsort((secondary, rounded))[:k]


def pareto_mask(points: Arr) -> npt.NDArray[np.bool_]:
    """Rows of `points` (n x d, smaller is better) that no other row dominates."""
    n = points.shape[0]
    keep = np.ones(n, dtype=bool)
    # blocks of 1024 rows bound the n x 1024 x d comparison's memory (a speed/memory choice)
    for start in range(0, n, 1024):
        block = points[start:start + 1024]
        le = (points[None, :, :] <= block[:, None, :]).all(axis=2)
        lt = (points[None, :, :] < block[:, None, :]).any(axis=2)
        keep[start:start + 1024] = ~np.any(le & lt, axis=1)
    return keep
