"""Long fuzz run of every input kind through `cli.main` (the suite runs a few thousand a kind).

    nice -n 10 python benchmarks/fuzz_cli.py --examples 20000 [--kinds cluster,plan] [--seed N]

`--examples` is the number of inputs for each kind (`--minutes` stops a kind early on a busy
machine; the tried count says how far it got). For each kind prints the inputs tried, how
many were accepted (exit 0, strict JSON) and refused (exit 2, one line), the median and the
slowest input's time, the most frequent refusal messages (numbers masked), the slowest inputs,
and any input that broke the contract (a traceback, another exit status, a warning, a
multi-line error, a run over `fuzz_inputs.TIMEOUT_S`); exits 1 if any did. Unlike the suite
(derandomized) each run draws fresh inputs unless `--seed` is given.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shlex
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit"))
from fuzz_inputs import KINDS, TIMEOUT_S, check  # type: ignore[import-not-found]  # noqa: E402


def _mask(line: str) -> str:
    """The message without its path and numbers, so like refusals count together."""
    text = line.split(" error: ", 1)[-1]
    text = re.sub(r"/tmp/\S*?/", "", text)
    return re.sub(r"(?<![A-Za-z_])[-+]?\d[\d.,_]*(e[-+]?\d+)?", "N", text)[:100]


class Tally:
    """What one kind's run saw."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.messages: Counter[str] = Counter()
        self.broken: list[str] = []
        self.times: list[tuple[float, list[str]]] = []


class OutOfTime(Exception):
    """The kind's `--minutes` are spent: stop drawing (what was tried is reported)."""


def run_kind(kind: str, n: int, folder: Path, seed_value: int | None,
             minutes: float) -> tuple[Tally, float]:
    tally = Tally()
    t0 = time.perf_counter()
    inputs = st.composite(lambda draw: KINDS[kind](draw, folder))()

    @settings(max_examples=n, deadline=None, database=None, phases=(Phase.generate,),
              suppress_health_check=list(HealthCheck))
    @given(inputs)
    def one(argv: list[str]) -> None:
        if time.perf_counter() - t0 > 60 * minutes:
            raise OutOfTime
        if len(tally.times) % 1000 == 999:
            print(f"    ... {kind}: {len(tally.times) + 1} tried, "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
        t = time.perf_counter()
        try:
            rc, line = check(argv)
        except Exception as e:  # noqa: BLE001 - every failure is reported, none stops the run
            tally.broken.append(f"{type(e).__name__}: {str(e)[:300]} <- {argv}")
            return
        finally:
            tally.times.append((time.perf_counter() - t, argv))
        tally.counts["accepted" if rc == 0 else "refused"] += 1
        if rc:
            tally.messages[_mask(line)] += 1

    try:
        (seed(seed_value)(one) if seed_value is not None else one)()
    except OutOfTime:
        print(f"    {kind}: stopped at {minutes:g} minutes", flush=True)
    return tally, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=2000, help="inputs for each kind")
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--seed", type=int, default=None, help="reproduce a run's inputs")
    ap.add_argument("--minutes", type=float, default=math.inf,
                    help="stop a kind after this long (its tried count says how far it got)")
    args = ap.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
    bad = 0
    print(f"per-input limit {TIMEOUT_S} s; load average at start {os.getloadavg()[0]:.1f}")
    print(f"{'kind':<18} {'tried':>7} {'accepted':>9} {'refused':>8} {'broken':>7} "
          f"{'median ms':>10} {'max s':>6} {'wall s':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.mkfifo(folder / "fifo")
        for kind in kinds:
            tally, secs = run_kind(kind, args.examples, folder, args.seed, args.minutes)
            c = tally.counts
            tried = c["accepted"] + c["refused"] + len(tally.broken)
            ts = [t for t, _ in tally.times] or [0.0]
            print(f"{kind:<18} {tried:>7} {c['accepted']:>9} {c['refused']:>8} "
                  f"{len(tally.broken):>7} {statistics.median(ts) * 1e3:>10.1f} "
                  f"{max(ts):>6.2f} {secs:>7.0f}", flush=True)
            for m, k in tally.messages.most_common(6):
                print(f"    {k:>6}  {m}")
            for t, argv in sorted(tally.times, key=lambda x: -x[0])[:3]:
                print(f"    slow {t:.2f} s <- {shlex.join(argv)[:240]}")
            for b in sorted(set(tally.broken))[:10]:
                print(f"    BROKEN {b}")
            bad += len(tally.broken)
    print("all clean" if not bad else f"{bad} inputs broke the contract")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
