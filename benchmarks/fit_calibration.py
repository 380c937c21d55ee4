"""Refit the simulator's calibration and write ``ultracluster/data/calibration.json``.

    python benchmarks/fit_calibration.py [--measurements FILE.csv] [--out FILE.json] [--dry-run]

The large-GEMM efficiency (`calibration.FITTED_FIELD`) is fitted on the rows of the
measurements CSV that have a measurement and are not flagged UNRELIABLE / LOWER BOUND. Three
structures are compared by leave-one-source-out (LOO) error: one pooled value for every chip
(1 parameter); one per chip family with >= 3 rows plus the pooled value for the rest; and that
with one fused-attention ratio for every family besides (`calibration.ATTENTION`, the
attention kernels' efficiency relative to the GEMMs'). A structure with more parameters is
kept only if it lowers the LOO loss, the mean |ln(predicted / measured)| of the rows predicted
without their source (the loss each fit minimises, so the structure is chosen by the same
measure out of sample; a median alone ignores the tail); the file records which, every value
with the rows it was fitted on, the in-sample and LOO errors, and the 80% quantiles of the LOO
residuals ln(measured / predicted) that give every prediction of `simulate` its interval:
pooled, and per model class (dense, MoE) with >= 3 rows of its own (`loo.class_intervals`).
Rerun it whenever the simulator's model changes (a test checks the shipped values are still
the fit).
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from ultracluster.errors import ConfigError
from ultracluster.files import atomic_write_text
from ultracluster.simulate import loo
from ultracluster.simulate.calibration import (
    ATTENTION, FITTED_FIELD, POOLED, calibration_path, model_class)
from ultracluster.simulate.measurements import default_measurements, read_rows
from ultracluster.simulate.validate import fit_data, setup_row


def _abs_err(meas: np.ndarray, pred: np.ndarray) -> dict[str, float | int]:
    e = np.abs(100 * (pred - meas) / meas)
    e = e[np.isfinite(e)]
    return {"n": int(e.size), "median_abs_error_pct": round(float(np.median(e)), 2),
            "p90_abs_error_pct": round(float(np.percentile(e, 90)), 2),
            "max_abs_error_pct": round(float(e.max()), 2)}


def _attention_bound(data: loo.FitData) -> np.ndarray:
    """Rows whose prediction depends on the attention ratio (fused attention; eager attention
    is timed as GEMMs): the rows that inform it."""
    return np.asarray(np.any(np.abs(data.table[:, 0, :] / data.table[:, -1, :] - 1) > 1e-9,
                             axis=1))


def evaluate(data: loo.FitData, mode: loo.Mode, classes: list[str]) -> dict[str, Any]:
    """In-sample and LOO errors of one structure, on the usable rows; intervals per model
    class (`classes`, one a row) where a class has the rows for one, else pooled."""
    u = data.usable
    values = loo.fit(data, np.ones(len(data.ids), dtype=bool), mode=mode)
    res = loo.leave_one_source_out(data, mode=mode)
    resid = loo.residuals(data.measured, res.predicted)
    q = loo.quantiles(resid[u])
    ivs = loo.row_intervals(data.groups, resid, u, classes=classes)
    by_class = loo.class_intervals(resid, u, classes)
    lo = np.array([res.predicted[i] * np.exp(iv[0]) if iv else np.nan
                   for i, iv in enumerate(ivs)])
    hi = np.array([res.predicted[i] * np.exp(iv[1]) if iv else np.nan
                   for i, iv in enumerate(ivs)])
    inside, n = loo.coverage(data.measured[u], lo[u], hi[u])
    fams = np.array(data.families)
    log_err = np.abs(resid[u])
    return {
        "mode": mode, "values": values,
        "rows_per_value": {k: int(u.sum()) if k == POOLED
                           else int((u & _attention_bound(data)).sum()) if k == ATTENTION
                           else int((u & (fams == k)).sum()) for k in values},
        "in_sample": _abs_err(data.measured[u], data.predict(values)[u]),
        "loo": _abs_err(data.measured[u], res.predicted[u]),
        "loo_mean_abs_log_error": round(float(np.mean(log_err[np.isfinite(log_err)])), 4),
        "interval": None if q is None else {
            "level": loo.LEVEL, "log_lo": round(q[0], 4), "log_hi": round(q[1], 4),
            "rows": int(u.sum()),
            "by_class": {c: {"log_lo": round(cq[0], 4), "log_hi": round(cq[1], 4), "rows": n}
                         for c, (cq, n) in by_class.items()}},
        "loo_coverage": {"inside": inside, "rows": n},
    }


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=False).stdout.strip()
    except OSError:
        return ""


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[1])
    ap.add_argument("--measurements", default=str(default_measurements()))
    ap.add_argument("--out", default=calibration_path())
    ap.add_argument("--dry-run", action="store_true", help="print, do not write")
    args = ap.parse_args()
    setups = []
    for r in read_rows(args.measurements):
        try:
            setups.append(setup_row(r))
        except ConfigError as e:
            print(f"skipped {r['id']}: {e}")
    data = fit_data(setups)
    print(f"{int(data.usable.sum())} usable rows from {len(set(np.array(data.groups)[data.usable]))}"
          f" sources; fitting {FITTED_FIELD}")
    classes = [model_class(s.model) for s in setups]
    results = {m: evaluate(data, m, classes) for m in loo.MODES}
    for m, r in results.items():
        print(f"  {m:16s} {len(r['values'])} value(s): in-sample {r['in_sample']}, "
              f"LOO {r['loo']}, LOO mean |ln| {r['loo_mean_abs_log_error']}, "
              f"LOO 80% coverage {r['loo_coverage']}")
    # fewest parameters first: a structure with more is kept only if its LOO loss is lower
    best = results[loo.MODES[0]]
    for m in loo.MODES[1:]:
        if results[m]["loo_mean_abs_log_error"] < best["loo_mean_abs_log_error"]:
            best = results[m]
    doc = {"command": "python benchmarks/fit_calibration.py", "commit": _commit(),
           "fitted_parameter": FITTED_FIELD, **best,
           "alternatives": [{k: v for k, v in r.items()
                             if k in ("mode", "values", "in_sample", "loo",
                                      "loo_mean_abs_log_error")}
                            for m, r in results.items() if m != best["mode"]]}
    text = json.dumps(doc, indent=1) + "\n"
    print(text)
    if not args.dry_run:
        atomic_write_text(Path(args.out), text)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
