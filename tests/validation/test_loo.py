"""Leave-one-source-out fitting, intervals and coverage (on small tables: fast)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from ultracluster.simulate import loo
from ultracluster.simulate.calibration import ATTENTION


def _data(measured: list[float], groups: list[str], families: list[str]) -> loo.FitData:
    """Rows whose prediction is proportional to the fitted value: pred = 1000 x value."""
    n = len(measured)
    return loo.FitData(ids=tuple(f"r{i}" for i in range(n)), groups=tuple(groups),
                       families=tuple(families), measured=np.array(measured, dtype=float),
                       usable=np.ones(n, dtype=bool),
                       table=np.tile(1000 * loo.GRID, (n, loo.ATTN_GRID.size, 1)))


def test_attention_ratio_is_found_where_rows_differ_in_attention_share() -> None:
    """pred = 1000 x value x ratio^share: the GEMM-bound rows (share 0) fix the value, the
    attention-bound ones the ratio; a structure without the ratio cannot fit both."""
    share = np.array([0.0, 0.0, 0.0, 0.5, 0.8, 1.0, 0.3, 0.0])
    n = share.size
    table = 1000 * loo.GRID[None, None, :] * loo.ATTN_GRID[None, :, None] ** share[:, None, None]
    meas = 1000 * 0.8 * 0.7 ** share
    d = loo.FitData(ids=tuple(f"r{i}" for i in range(n)), groups=tuple("aabbccdd"),
                    families=("x",) * n, measured=meas, usable=np.ones(n, dtype=bool),
                    table=table)
    v = loo.fit(d, np.ones(n, dtype=bool), mode="family+attention")
    assert v[ATTENTION] == pytest.approx(0.7, abs=0.026)
    assert v["x"] == pytest.approx(0.8, abs=0.011)
    err = np.abs(np.log(d.predict(v) / meas)).mean()
    plain = loo.fit(d, np.ones(n, dtype=bool), mode="family")
    assert ATTENTION not in plain
    assert err < np.abs(np.log(d.predict(plain) / meas)).mean() / 3
    # leave-one-source-out refits the ratio without the source, and predicts with it
    res = loo.leave_one_source_out(d, mode="family+attention")
    assert all(abs(a - 0.7) <= 0.051 for a in res.attention)
    assert np.abs(np.log(res.predicted / meas)).max() < 0.05


def test_fit_recovers_the_value_per_family_and_pooled() -> None:
    d = _data([500, 500, 500, 800, 800, 800, 650], list("aabbccd"),
              ["x", "x", "x", "y", "y", "y", "z"])
    v = loo.fit(d, np.ones(7, dtype=bool))
    assert v["x"] == pytest.approx(0.5) and v["y"] == pytest.approx(0.8)
    assert "z" not in v  # one row: no value of its own, it takes the pooled one
    assert loo.value_for(v, "z") == v["pooled"]
    assert loo.fit(d, np.ones(7, dtype=bool), mode="pooled").keys() == {"pooled"}


def test_no_value_is_fitted_on_fewer_than_three_rows() -> None:
    d = _data([500, 500, 800], ["a", "b", "c"], ["x", "x", "y"])
    assert loo.fit(d, np.array([True, True, False])) == {}
    assert set(loo.fit(d, np.ones(3, dtype=bool))) == {"pooled"}


def test_loo_prediction_ignores_the_row_and_its_source() -> None:
    meas = [500.0, 520, 480, 700, 720, 680, 600, 610]
    groups = ["a", "a", "b", "b", "c", "c", "d", "d"]
    d = _data(meas, groups, ["x"] * 8)
    base = loo.leave_one_source_out(d)
    for i in range(8):
        for j in range(8):
            if groups[j] != groups[i]:
                continue  # perturb row i itself and its source's other rows
            m = np.array(meas)
            m[j] *= 3.0
            moved = loo.leave_one_source_out(replace(d, measured=m))
            assert moved.values[i] == base.values[i], (i, j)
    # ...while the in-sample fit does move with the row
    m = np.array(meas)
    m[0] *= 3.0
    assert loo.fit(replace(d, measured=m), np.ones(8, dtype=bool)) != \
        loo.fit(d, np.ones(8, dtype=bool))


def test_intervals_use_only_other_sources() -> None:
    resid = np.array([1.0, 1.0, 1.0, 0.0, 0.1, -0.1, 0.05, -0.05])
    groups = ["a", "a", "a", "b", "b", "c", "c", "c"]
    ivs = loo.row_intervals(groups, resid, np.ones(8, dtype=bool))
    lo, hi = ivs[0]  # source a: from b and c only, which are all within 0.1
    assert -0.1 <= lo <= hi <= 0.1
    assert ivs[3] is not None and ivs[3][1] > 0.5  # b sees a's large residuals


def test_coverage_counts_rows_inside_their_interval() -> None:
    meas = np.array([1.0, 2.0, 3.0, np.nan, 5.0])
    lo = np.array([0.5, 2.5, 2.0, 0.0, np.nan])
    hi = np.array([1.5, 3.0, 3.0, 9.0, 6.0])
    assert loo.coverage(meas, lo, hi) == (2, 3)


def test_quantiles_need_three_residuals() -> None:
    assert loo.quantiles(np.array([0.1, np.nan, 0.2])) is None
    # 101 residuals, 80%: the 10th and the 92nd smallest (split conformal order statistics)
    lo, hi = loo.quantiles(np.linspace(-1, 1, 101)) or (0.0, 0.0)
    assert lo == pytest.approx(-0.82) and hi == pytest.approx(0.82)
    # (n + 1) x 0.1 whole: 50 x 0.1 = 5 exactly, not the 4 that float rounding would give
    assert loo.quantiles(np.arange(1.0, 50.0)) == (5.0, 45.0)


def test_conformal_intervals_hold_their_level_on_new_draws() -> None:
    """On 20 residuals at a time, the sample 10th-90th percentiles hold a new draw ~73% of
    the time; the conformal order statistics hold it at least 80% of the time."""
    rng = np.random.default_rng(7)
    hits, trials = 0, 4000
    for _ in range(trials):
        r = rng.standard_normal(21)
        lo, hi = loo.quantiles(r[:20]) or (0.0, 0.0)
        hits += lo <= r[20] <= hi
    assert hits / trials >= 0.79


def test_attention_ratio_stays_at_its_prior_without_attention_rows() -> None:
    """Rows whose prediction does not depend on the ratio (eager attention) say nothing of
    it: the fit keeps the prior instead of an end of the range."""
    d = _data([500, 520, 480, 700], list("abcd"), ["x"] * 4)
    v = loo.fit(d, np.ones(4, dtype=bool), mode="family+attention")
    assert v[ATTENTION] == loo.ATTN_PRIOR


def test_intervals_of_a_class_use_its_own_residuals_when_it_has_enough() -> None:
    # dense rows miss by +-0.05, MoE rows by -0.5..-0.9, in four sources
    resid = np.array([0.05, -0.05, 0.04, -0.04, 0.03, -0.5, -0.7, -0.9, -0.6])
    groups = ["a", "a", "b", "b", "c", "a", "b", "c", "d"]
    classes = ["dense"] * 5 + ["moe"] * 4
    ivs = loo.row_intervals(groups, resid, np.ones(9, dtype=bool), classes=classes)
    assert ivs[0] is not None and ivs[0][0] > -0.1  # dense: MoE residuals left out
    assert ivs[5] is not None and ivs[5][1] < -0.5  # MoE, source a: b, c and d's MoE rows
    # a class with fewer than MIN_ROWS rows of other sources takes every class's
    few = loo.row_intervals(groups[:7], resid[:7], np.ones(7, dtype=bool),
                            classes=classes[:7])
    assert few[5] is not None and few[5][1] > 0.0
    assert loo.row_intervals(groups, resid, np.ones(9, dtype=bool)) != ivs


def test_class_intervals_need_min_rows() -> None:
    resid = np.array([0.1, -0.1, 0.0, 0.2, -0.5, -0.6])
    out = loo.class_intervals(resid, np.ones(6, dtype=bool),
                              ["dense", "dense", "dense", "dense", "moe", "moe"])
    assert set(out) == {"dense"}
    (lo, hi), n = out["dense"]
    assert n == 4 and lo == -0.1 and hi == 0.2  # under 9 rows: the whole range
