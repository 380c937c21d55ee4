"""Refit the simulator's efficiency parameters against the published runs.

    python benchmarks/fit_calibration.py [--measurements FILE.csv] [--rounds 3]

Coordinate descent over a small grid: per chip family the large-GEMM efficiency
(`matmul_eff_max`), and shared by all families the GEMM half-efficiency dimension, the
flash-attention ratio, the FP8 ratio, the elementwise memory efficiency and the fixed
per-layer overhead. The objective is
median |error| + 0.5 x 90th-percentile |error| of tokens/s per chip, over rows whose notes do
not flag them UNRELIABLE or LOWER BOUND. Families with no rows keep their starting value.
It prints the fitted table to paste into `ultracluster/simulate/calibration.py`.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from ultracluster.hardware import CHIPS
from ultracluster.simulate.calibration import EFFICIENCY, Efficiency
from ultracluster.simulate.validate import default_measurements, predict_row, read_rows

SHARED = {
    "matmul_half_dim": [16, 32, 64, 128, 192, 256, 384, 512],
    "attention_eff_ratio": [0.3, 0.4, 0.5, 0.6, 0.7, 0.85, 1.0],
    "fp8_eff_ratio": [0.6, 0.7, 0.8, 0.9, 1.0],
    "memory_eff": [0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
    "layer_overhead_s": [0.0, 1e-4, 2e-4, 4e-4, 8e-4, 1.6e-3],
}
EFF_MAX = [0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9]


def objective(rows: list[dict[str, str]], effs: dict[str, Efficiency]) -> tuple[float, float, float]:
    errs = []
    for r in rows:
        res = predict_row(r, efficiencies=effs)
        if res.error_pct is not None:
            errs.append(abs(res.error_pct))
    a = np.array(errs)
    med, p90 = float(np.median(a)), float(np.percentile(a, 90))
    return med + 0.5 * p90, med, p90


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--measurements", default=str(default_measurements()))
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    rows = [r for r in read_rows(Path(args.measurements))
            if r.get("tokens_per_s_per_chip")
            and "UNRELIABLE" not in r.get("notes", "") and "LOWER BOUND" not in r.get("notes", "")]
    families = sorted({CHIPS[r["chip"]].family for r in rows if r["chip"] in CHIPS})
    effs = dict(EFFICIENCY)
    best, med, p90 = objective(rows, effs)
    print(f"start: objective {best:.2f} (median {med:.1f}%, p90 {p90:.1f}%) on {len(rows)} rows")
    t0 = time.perf_counter()
    for rnd in range(args.rounds):
        for fam in families:
            for v in EFF_MAX:
                trial = dict(effs)
                trial[fam] = dataclasses.replace(effs[fam], matmul_eff_max=v)
                score = objective(rows, trial)
                if score[0] < best - 1e-9:
                    best, med, p90 = score
                    effs = trial
        for name, grid in SHARED.items():
            for v in grid:
                trial = {f: dataclasses.replace(e, **{name: v}) for f, e in effs.items()}
                score = objective(rows, trial)
                if score[0] < best - 1e-9:
                    best, med, p90 = score
                    effs = trial
        print(f"round {rnd + 1}: objective {best:.2f} (median {med:.1f}%, p90 {p90:.1f}%) "
              f"[{time.perf_counter() - t0:.0f} s]")
    print("\nfitted (paste into calibration.py):")
    for fam, e in effs.items():
        print(f"  {fam}: {e}")


if __name__ == "__main__":
    main()
