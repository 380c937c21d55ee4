"""The simulator against published measured runs, with the stated tolerance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ultracluster.cli import main
from ultracluster.hardware import CHIPS, SYSTEMS
from ultracluster.simulate.validate import default_measurements, read_rows, summarize, validate

FLAGS = ("UNRELIABLE", "LOWER BOUND")


@pytest.fixture(scope="module")
def results() -> list:  # type: ignore[type-arg]
    return validate()[0]


def test_accuracy_on_reference_runs(results: list) -> None:  # type: ignore[type-arg]
    rows = {r["id"]: r for r in read_rows(default_measurements())}
    clean = [r for r in results if not any(f in rows[r.id].get("notes", "") for f in FLAGS)]
    s = summarize(clean)
    assert s.n >= 50
    assert s.median_abs_error_pct <= 10.0, s
    assert s.p90_abs_error_pct <= 25.0, s


def test_no_row_with_known_hardware_is_skipped(results: list) -> None:  # type: ignore[type-arg]
    rows = {r["id"]: r for r in read_rows(default_measurements())}
    for r in results:
        if rows[r.id]["chip"] in CHIPS and rows[r.id]["system"] in SYSTEMS:
            assert r.skipped is None and r.predicted is not None, r.id
    unmeasured = [r.to_json() for r in results if r.measured is None]
    assert {u["id"] for u in unmeasured} == {"opt-01", "neox-01"}
    assert all(u.get("unmeasured") for u in unmeasured)


def test_any_csv_with_the_columns_works(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    lines = default_measurements().read_text().splitlines()
    header = lines[0]
    mine = tmp_path / "mine.csv"
    mine.write_text("\n".join([header, *[ln for ln in lines[1:] if ln.startswith("mcore24-0")],
                               lines[1].replace("dgx-a100", "dgx-z9000")]) + "\n")
    assert main(["validate", "--measurements", str(mine), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    skipped = [r for r in doc["rows"] if "skipped" in r]
    assert len(skipped) == 1 and "dgx-z9000" in skipped[0]["skipped"]
    assert doc["summary"]["n"] == len(doc["rows"]) - 1
    bad = tmp_path / "bad.csv"
    bad.write_text("id,model\nx,y\n")
    assert main(["validate", "--measurements", str(bad)]) == 2
    assert "missing column" in capsys.readouterr().err
