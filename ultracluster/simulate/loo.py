"""Fitting the calibration and scoring it leave-one-source-out (pure numpy on a table).

The simulator is evaluated once per row at every value of a grid of the fitted parameter
(`GRID`); a row's throughput is smooth and monotone in that parameter, so between grid points
it is interpolated (log-linearly). Every fit is then a one-dimensional search over `FINE` on
that table, which makes leave-one-source-out as cheap as one fit:

- a *fit* on a set of rows gives one pooled value (all rows) and one value per chip family
  with at least `MIN_ROWS` rows in the set; other families take the pooled value;
- *leave-one-source-out* (LOO) predicts each row with the values fitted on the rows of every
  *other* source (a paper's rows share its framework, cluster and conventions, so leaving out
  the row alone would still let its siblings tune the value it is scored with);
- the *interval* of a row is the `level` central range of the LOO residuals
  ``ln(measured / LOO prediction)`` of the rows of the other sources.

The loss is the mean absolute log error (robust to the few rows far off, symmetric in
over- and under-prediction).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from ultracluster.simulate.calibration import MIN_ROWS, POOLED

GRID = np.round(np.arange(0.20, 1.0001, 0.05), 4)
"""Values of the fitted parameter at which the simulator is run."""
FINE = np.round(np.arange(0.20, 1.0001, 0.0025), 4)
"""Values searched by a fit (interpolated between `GRID` points)."""
LEVEL = 0.8
"""Central coverage of the reported intervals: the 10th to 90th percentile of the residuals."""
Mode = Literal["pooled", "family"]
FloatArray = NDArray[np.float64]


@dataclass(frozen=True, kw_only=True, slots=True)
class FitData:
    """The table a fit works on: one row per measurement."""

    ids: tuple[str, ...]
    groups: tuple[str, ...]
    """Source of each row (rows of one source are left out together)."""
    families: tuple[str, ...]
    measured: FloatArray
    """tokens/s per chip (NaN: no measurement)."""
    usable: NDArray[np.bool_]
    """Rows a fit may use (measured, not flagged)."""
    table: FloatArray
    """Predicted tokens/s per chip at each `GRID` value, shape (rows, len(GRID))."""

    def fine(self) -> FloatArray:
        """ln(prediction) at each `FINE` value, by log-linear interpolation of `table`."""
        logs = np.log(np.maximum(self.table, 1e-300))
        return np.stack([np.interp(FINE, GRID, row) for row in logs]) if len(logs) \
            else np.zeros((0, FINE.size))


def _best(fine_logs: FloatArray, log_meas: FloatArray) -> float:
    loss = np.abs(fine_logs - log_meas[:, None]).mean(axis=0)
    return float(FINE[int(np.argmin(loss))])


def fit(data: FitData, rows: NDArray[np.bool_], *, mode: Mode = "family",
        fine: FloatArray | None = None) -> dict[str, float]:
    """Fitted values on the usable rows selected by `rows` (a boolean mask).

    Returns:
        ``{"pooled": v, family: v, ...}``; a family appears only with >= `MIN_ROWS` rows.
        Empty when fewer than `MIN_ROWS` rows are selected.
    """
    sel = rows & data.usable
    if int(sel.sum()) < MIN_ROWS:
        return {}
    logs = data.fine() if fine is None else fine
    log_meas = np.log(data.measured)
    out = {POOLED: _best(logs[sel], log_meas[sel])}
    if mode == "family":
        fams = np.array(data.families)
        for fam in sorted(set(fams[sel])):
            mask = sel & (fams == fam)
            if int(mask.sum()) >= MIN_ROWS:
                out[fam] = _best(logs[mask], log_meas[mask])
    return out


def value_for(values: dict[str, float], family: str) -> float | None:
    """The value fitted for `family`, else the pooled value (None when neither was fitted)."""
    return values.get(family, values.get(POOLED))


@dataclass(frozen=True, kw_only=True, slots=True)
class LooResult:
    """Leave-one-source-out values and predictions for every row."""

    values: tuple[float | None, ...]
    """The fitted value each row is predicted with (None: no other source to fit on)."""
    predicted: FloatArray
    """Interpolated tokens/s per chip at that value (NaN where None)."""
    fits: dict[str, dict[str, float]]
    """The fit without each source."""


def leave_one_source_out(data: FitData, *, mode: Mode = "family") -> LooResult:
    """Each row predicted with the value fitted without its source (all rows of one source left
    out together)."""
    fine = data.fine()
    groups = np.array(data.groups)
    fits = {g: fit(data, groups != g, mode=mode, fine=fine) for g in sorted(set(data.groups))}
    values: list[float | None] = []
    pred = np.full(len(data.ids), np.nan)
    for i, (g, fam) in enumerate(zip(data.groups, data.families, strict=True)):
        v = value_for(fits[g], fam)
        values.append(v)
        if v is not None:
            pred[i] = float(np.exp(np.interp(v, GRID, np.log(np.maximum(data.table[i],
                                                                          1e-300)))))
    return LooResult(values=tuple(values), predicted=pred, fits=fits)


def residuals(measured: FloatArray, predicted: FloatArray) -> FloatArray:
    """ln(measured / predicted) (NaN where either is missing)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(measured / predicted)


def quantiles(r: FloatArray, level: float = LEVEL) -> tuple[float, float] | None:
    """The central `level` range a new residual falls in, from the finite residuals `r` (None
    with fewer than 3): split conformal prediction's order statistics (Lei et al. 2018,
    "Distribution-free predictive inference for regression", JASA, s.2.2), the
    floor((n + 1) a)-th smallest and the ceil((n + 1) (1 - a))-th, a = (1 - level) / 2, so
    that a new residual exchangeable with these lands inside with probability >= `level`;
    the plain sample quantiles fall short of it by about 1/n in each tail. Below
    n = 2 / (1 - level) - 1 residuals (9 at 80%) no order statistic reaches the level: the
    whole sample's range is returned, which holds (n - 1) / (n + 1)."""
    r = np.sort(r[np.isfinite(r)])
    n = r.size
    if n < MIN_ROWS:
        return None
    a = (1 - level) / 2
    # rounded first: (1 - 0.8) / 2 is 0.0999..., which would floor 5.0 to 4
    k_lo = max(1, math.floor(round((n + 1) * a, 9)))
    k_hi = min(n, math.ceil(round((n + 1) * (1 - a), 9)))
    return float(r[k_lo - 1]), float(r[k_hi - 1])


def row_intervals(
    groups: Sequence[str], resid: FloatArray, usable: NDArray[np.bool_], level: float = LEVEL
) -> list[tuple[float, float] | None]:
    """Each row's log-interval, from the residuals of the usable rows of *other* sources."""
    g = np.array(groups)
    return [quantiles(resid[usable & (g != gi)], level) for gi in groups]


def coverage(measured: FloatArray, lo: FloatArray, hi: FloatArray) -> tuple[int, int]:
    """(rows whose measurement lies in [lo, hi], rows with a measurement and an interval)."""
    ok = np.isfinite(measured) & np.isfinite(lo) & np.isfinite(hi)
    inside = ok & (measured >= lo) & (measured <= hi)
    return int(inside.sum()), int(ok.sum())
