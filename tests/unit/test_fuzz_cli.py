"""Fuzz every input kind through `cli.main`: exit 0 with strict JSON, or exit 2 with one line.

A few thousand generated inputs in all (`EXAMPLES` per kind); ``benchmarks/fuzz_cli.py`` runs
the same generators for longer. See `fuzz_inputs` for what is generated.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz_inputs import KINDS, check

EXAMPLES = {"cluster": 400, "hf-config": 400, "plan": 400, "measurements-csv": 300,
            "flags": 150}


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_fuzz_inputs_never_crash(kind: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.mkfifo(folder / "fifo")

        @settings(max_examples=EXAMPLES[kind], deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(st.data())
        def run(data: st.DataObject) -> None:
            check(data.draw(st.composite(lambda draw: KINDS[kind](draw, folder))()))

        run()
