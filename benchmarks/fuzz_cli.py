"""Long fuzz run of every input kind through `cli.main` (the suite runs a few thousand).

    nice -n 10 python benchmarks/fuzz_cli.py --examples 20000 [--kinds cluster,plan]

`--examples` is the total, split evenly over the kinds. For each kind prints the inputs
tried, how many were accepted (exit 0, strict JSON) and refused (exit 2, one line), the
most frequent refusal messages (numbers masked), and any input that broke the contract (a
traceback, another exit status, a warning, a multi-line error, a hang); exits 1 if any did.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit"))
from fuzz_inputs import KINDS, check  # noqa: E402


def _mask(line: str) -> str:
    """The message without its path and numbers, so like refusals count together."""
    text = line.split(" error: ", 1)[-1]
    text = re.sub(r"/tmp/\S*?/", "", text)
    return re.sub(r"(?<![A-Za-z_])[-+]?\d[\d.,_]*(e[-+]?\d+)?", "N", text)[:100]


def run_kind(kind: str, n: int, folder: Path) -> tuple[Counter[str], list[str], float]:
    tally: Counter[str] = Counter()
    broken: list[str] = []
    t0 = time.perf_counter()

    @settings(max_examples=n, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def one(data: st.DataObject) -> None:
        argv = data.draw(st.composite(lambda draw: KINDS[kind](draw, folder))())
        try:
            rc, line = check(argv)
        except Exception as e:  # noqa: BLE001 - every failure is reported, none stops the run
            broken.append(f"{type(e).__name__}: {str(e)[:300]} <- {argv}")
            return
        tally["accepted" if rc == 0 else "refused"] += 1
        if rc:
            tally["msg: " + _mask(line)] += 1

    one()
    return tally, broken, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=2000, help="total, over all kinds")
    ap.add_argument("--kinds", default=",".join(KINDS))
    args = ap.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
    per = max(1, args.examples // len(kinds))
    bad = 0
    print(f"{'kind':<18} {'tried':>7} {'accepted':>9} {'refused':>8} {'broken':>7} {'s':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.mkfifo(folder / "fifo")
        for kind in kinds:
            tally, broken, secs = run_kind(kind, per, folder)
            tried = tally["accepted"] + tally["refused"] + len(broken)
            print(f"{kind:<18} {tried:>7} {tally['accepted']:>9} {tally['refused']:>8} "
                  f"{len(broken):>7} {secs:>7.0f}")
            msgs = sorted(((c, m) for m, c in tally.items() if m.startswith("msg: ")),
                          reverse=True)[:6]
            for c, m in msgs:
                print(f"    {c:>6}  {m[5:]}")
            for b in sorted(set(broken))[:10]:
                print(f"    BROKEN {b}")
            bad += len(broken)
    print("all clean" if not bad else f"{bad} inputs broke the contract")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
