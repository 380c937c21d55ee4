"""Fitting the calibration and scoring it leave-one-source-out (pure numpy on a table).

The simulator is evaluated once per row at every point of a grid of the fitted parameters:
the large-GEMM efficiency (`GRID`) and, for the structure that fits it, fused attention's
efficiency relative to a GEMM's (`ATTN_GRID`). A row's throughput is smooth and monotone in
both, so between grid points it is interpolated (log-linearly). Every fit is then a search
over `FINE` (and `ATTN_FINE`) on that table, which makes leave-one-source-out as cheap as one
fit:

- a *fit* on a set of rows gives one pooled value (all rows) and one value per chip family
  with at least `MIN_ROWS` rows in the set; other families take the pooled value. In the
  ``family+attention`` structure it also gives one attention ratio for every family
  (`ATTENTION`), the one that minimises the loss with each family's value refitted at it;
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

from ultracluster.simulate.calibration import ATTENTION, MIN_ROWS, POOLED

GRID = np.round(np.arange(0.20, 1.0001, 0.05), 4)
"""Values of the fitted parameter at which the simulator is run."""
FINE = np.round(np.arange(0.20, 1.0001, 0.0025), 4)
"""Values searched by a fit (interpolated between `GRID` points)."""
ATTN_GRID = np.round(np.arange(0.50, 1.0001, 0.05), 4)
"""Values of the attention ratio (`ATTENTION`) at which the simulator is run."""
ATTN_FINE = np.round(np.arange(0.50, 1.0001, 0.025), 4)
"""Attention ratios searched by a ``family+attention`` fit."""
ATTN_PRIOR = 1.0
"""The attention ratio of the structures that do not fit it (the prior: fused attention at
its published kernel rate, scaled as the GEMMs are)."""
LEVEL = 0.8
"""Central coverage of the reported intervals: the 10th to 90th percentile of the residuals."""
Mode = Literal["pooled", "family", "family+attention"]
MODES: tuple[Mode, ...] = ("pooled", "family", "family+attention")
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
    """Predicted tokens/s per chip at each (`ATTN_GRID`, `GRID`) point, shape
    (rows, len(ATTN_GRID), len(GRID))."""

    def logs_at(self, attention: float) -> FloatArray:
        """ln(prediction) at each `GRID` value with the attention ratio `attention`
        (log-linear between `ATTN_GRID` points), shape (rows, len(GRID))."""
        logs = np.log(np.maximum(self.table, 1e-300))
        j = int(np.clip(np.searchsorted(ATTN_GRID, attention) - 1, 0, ATTN_GRID.size - 2))
        w = (attention - ATTN_GRID[j]) / (ATTN_GRID[j + 1] - ATTN_GRID[j])
        return np.asarray((1 - w) * logs[:, j] + w * logs[:, j + 1], dtype=np.float64)

    def fine(self, attention: float = ATTN_PRIOR) -> FloatArray:
        """ln(prediction) at each `FINE` value (the attention ratio `attention`), by
        log-linear interpolation of `table`."""
        logs = self.logs_at(attention)
        return np.stack([np.interp(FINE, GRID, row) for row in logs]) if len(logs) \
            else np.zeros((0, FINE.size))

    def predict(self, values: dict[str, float]) -> FloatArray:
        """tokens/s per chip of every row with the fitted `values` (NaN where a row's family
        has none and there is no pooled value)."""
        logs = self.logs_at(values.get(ATTENTION, ATTN_PRIOR))
        out = np.full(len(self.ids), np.nan)
        for i, fam in enumerate(self.families):
            v = value_for(values, fam)
            if v is not None:
                out[i] = float(np.exp(np.interp(v, GRID, logs[i])))
        return out


def _best(fine_logs: FloatArray, log_meas: FloatArray) -> float:
    loss = np.abs(fine_logs - log_meas[:, None]).mean(axis=0)
    return float(FINE[int(np.argmin(loss))])


def _fit_values(data: FitData, sel: NDArray[np.bool_], logs: FloatArray, per_family: bool
                ) -> tuple[dict[str, float], float]:
    """The pooled (and per-family) values on the rows `sel` of `logs` (ln predictions at
    `FINE`), and their loss: the mean |ln(predicted / measured)| with each row at its
    family's value, else the pooled one."""
    log_meas = np.log(data.measured)
    out = {POOLED: _best(logs[sel], log_meas[sel])}
    fams = np.array(data.families)
    if per_family:
        for fam in sorted(set(fams[sel])):
            mask = sel & (fams == fam)
            if int(mask.sum()) >= MIN_ROWS:
                out[fam] = _best(logs[mask], log_meas[mask])
    idx = np.array([int(np.argmin(np.abs(FINE - (value_for(out, f) or 0.0)))) for f in fams])
    err = np.abs(logs[np.arange(len(fams)), idx] - log_meas)
    return out, float(err[sel].mean())


def fit(data: FitData, rows: NDArray[np.bool_], *, mode: Mode = "family",
        fine: FloatArray | None = None) -> dict[str, float]:
    """Fitted values on the usable rows selected by `rows` (a boolean mask).

    Returns:
        ``{"pooled": v, family: v, ...}``; a family appears only with >= `MIN_ROWS` rows;
        with ``family+attention`` also ``{ATTENTION: a}``. Empty when fewer than `MIN_ROWS`
        rows are selected.
    """
    sel = rows & data.usable
    if int(sel.sum()) < MIN_ROWS:
        return {}
    if mode != "family+attention":
        logs = data.fine() if fine is None else fine
        return _fit_values(data, sel, logs, mode == "family")[0]
    best: tuple[float, float, dict[str, float]] | None = None
    # nearest the prior first, so that rows that do not depend on the ratio (no fused
    # attention) leave it at the prior rather than at the end of the range
    for a in sorted(ATTN_FINE, key=lambda x: abs(x - ATTN_PRIOR)):
        vals, loss = _fit_values(data, sel, data.fine(float(a)), True)
        if best is None or loss < best[0] - 1e-12:
            best = (loss, float(a), vals)
    assert best is not None
    return best[2] | {ATTENTION: best[1]}


def value_for(values: dict[str, float], family: str) -> float | None:
    """The value fitted for `family`, else the pooled value (None when neither was fitted)."""
    return values.get(family, values.get(POOLED))


@dataclass(frozen=True, kw_only=True, slots=True)
class LooResult:
    """Leave-one-source-out values and predictions for every row."""

    values: tuple[float | None, ...]
    """The fitted value each row is predicted with (None: no other source to fit on)."""
    attention: tuple[float, ...]
    """The attention ratio each row is predicted with (`ATTN_PRIOR` unless fitted)."""
    predicted: FloatArray
    """Interpolated tokens/s per chip at that value (NaN where None)."""
    fits: dict[str, dict[str, float]]
    """The fit without each source."""


def leave_one_source_out(data: FitData, *, mode: Mode = "family") -> LooResult:
    """Each row predicted with the value fitted without its source (all rows of one source left
    out together)."""
    fine = None if mode == "family+attention" else data.fine()
    groups = np.array(data.groups)
    fits = {g: fit(data, groups != g, mode=mode, fine=fine) for g in sorted(set(data.groups))}
    values: list[float | None] = []
    pred = np.full(len(data.ids), np.nan)
    for g, vals in fits.items():
        mask = groups == g
        pred[mask] = data.predict(vals)[mask]
    for g, fam in zip(data.groups, data.families, strict=True):
        values.append(value_for(fits[g], fam))
    return LooResult(values=tuple(values), predicted=pred, fits=fits,
                     attention=tuple(fits[g].get(ATTENTION, ATTN_PRIOR) for g in data.groups))


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
    groups: Sequence[str], resid: FloatArray, usable: NDArray[np.bool_], level: float = LEVEL,
    classes: Sequence[str] | None = None,
) -> list[tuple[float, float] | None]:
    """Each row's log-interval, from the residuals of the usable rows of *other* sources; with
    `classes`, of other sources' rows of the row's own class (`class_intervals`), or of every
    class where its class has fewer than `MIN_ROWS` such rows."""
    g = np.array(groups)
    c = np.array(classes if classes is not None else [""] * len(groups))
    out: list[tuple[float, float] | None] = []
    for gi, ci in zip(groups, c, strict=True):
        other = usable & (g != gi)
        own = other & (c == ci) & np.isfinite(resid)
        out.append(quantiles(resid[own if own.sum() >= MIN_ROWS else other], level))
    return out


def class_intervals(resid: FloatArray, usable: NDArray[np.bool_], classes: Sequence[str],
                    level: float = LEVEL) -> dict[str, tuple[tuple[float, float], int]]:
    """Mondrian conformal intervals (Vovk, Gammerman and Shafer 2005, "Algorithmic Learning in
    a Random World", s.4.5; Vovk et al. 2003, "Mondrian confidence machine"): the residual
    quantiles of each class (dense or MoE models) on its own rows, and how many, for every
    class with at least `MIN_ROWS` usable residuals. A prediction then carries its own class's
    spread: the residuals are exchangeable within a class, not across (an MoE model's error has
    terms a dense one lacks: dispatch, grouped GEMMs, routing), and a pooled interval is too
    wide for the one and too narrow for the other."""
    c = np.array(classes)
    out: dict[str, tuple[tuple[float, float], int]] = {}
    for ci in sorted(set(classes)):
        sel = usable & (c == ci) & np.isfinite(resid)
        q = quantiles(resid[sel], level)
        if q is not None:
            out[str(ci)] = (q, int(sel.sum()))
    return out


def coverage(measured: FloatArray, lo: FloatArray, hi: FloatArray) -> tuple[int, int]:
    """(rows whose measurement lies in [lo, hi], rows with a measurement and an interval)."""
    ok = np.isfinite(measured) & np.isfinite(lo) & np.isfinite(hi)
    inside = ok & (measured >= lo) & (measured <= hi)
    return int(inside.sum()), int(ok.sum())
