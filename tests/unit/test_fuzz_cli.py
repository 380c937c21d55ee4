"""Fuzz every input kind through `cli.main`: exit 0 with strict JSON, or exit 2 with one line.

`EXAMPLES` generated inputs per kind (see `fuzz_inputs` for what is generated and checked);
``benchmarks/fuzz_cli.py`` runs the same generators for longer. Derandomized, so CI tries the
same inputs every run (a failure reproduces); the long benchmark draws fresh ones.

Cost per input on this 2-core machine, quiet: about 7 ms for a cluster, HF config, plan or
flag set (hypothesis' generation is most of it), about 40 ms for a measurement CSV (an accepted
one runs `validate`'s leave-one-source-out fit, one bulk simulator run a row).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz_inputs import KINDS, check

EXAMPLES = {"cluster": 2500, "hf-config": 2500, "plan": 2500, "flags": 2500,
            "measurements-csv": 2000}
"""Per kind; the CSV kind runs fewer because each accepted input runs a fit (see above)."""


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_fuzz_inputs_never_crash(kind: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.mkfifo(folder / "fifo")
        inputs = st.composite(lambda draw: KINDS[kind](draw, folder))()

        @settings(max_examples=EXAMPLES[kind], deadline=None, database=None,
                  derandomize=True, suppress_health_check=list(HealthCheck))
        @given(inputs)
        def run(argv: list[str]) -> None:
            check(argv)

        run()
