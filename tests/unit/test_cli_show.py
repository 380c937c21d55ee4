"""`ultracluster show`: JSON documents and one-line errors with exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ultracluster.cli import main


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    assert main([*argv, "--json"]) == 0
    out = capsys.readouterr().out
    doc = json.loads(out)
    assert isinstance(doc, dict)
    return doc


def test_show_chips_json(capsys: pytest.CaptureFixture[str]) -> None:
    doc = run_json(capsys, "show", "chips")
    chips = doc["chips"]
    assert isinstance(chips, list)
    trn2 = next(c for c in chips if c["name"] == "trn2")
    assert trn2["peak_flops_bf16"] == 667e12
    assert trn2["sources"]["tdp_w"]["flag"] == "estimate"


def test_show_cluster_json(capsys: pytest.CaptureFixture[str]) -> None:
    doc = run_json(capsys, "show", "cluster", "rainier")
    assert doc["num_chips"] == 499_968
    sites = doc["sites"]
    assert isinstance(sites, list) and sites[0]["chip"] == "trn2"
    assert {t["tier"] for t in doc["tiers"]} == {"scale-up", "scale-out", "inter-site"}  # type: ignore[attr-defined]


def test_show_model_json(capsys: pytest.CaptureFixture[str]) -> None:
    doc = run_json(capsys, "show", "model", "llama3-405b")
    assert doc["params"] == pytest.approx(405.9e9, rel=0.005)
    assert {"params", "active_params", "flops_per_token"} <= set(doc)


def test_show_cluster_file_and_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "mine.toml"
    p.write_text('name = "mine"\n[[sites]]\nname = "a"\nsystem = "dgx-h100"\nnum_pods = 4\n')
    assert run_json(capsys, "show", "cluster", str(p))["num_chips"] == 32
    for what in ("chips", "systems", "clusters", "models"):
        assert main(["show", what]) == 0
    assert "Trainium2" in capsys.readouterr().out


@pytest.mark.parametrize("argv, needle", [
    (["show", "chip", "trn9"], "unknown key 'trn9'"),
    (["show", "cluster", "nowhere.toml"], "no such file"),
    (["show", "model", "bogus"], "neither a preset"),
    (["show", "cluster"], "give a name"),
])
def test_bad_input_is_one_line_exit_2(argv: list[str], needle: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_show_chip_says_what_the_calibration_applies(capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    from ultracluster.simulate.calibration import EFFICIENCY

    doc = run_json(capsys, "show", "chip", "trn2")
    cal = doc["calibration"]
    assert isinstance(cal, dict)
    assert cal["family"] == "trainium"
    assert cal["matmul_eff_max"] == EFFICIENCY["trainium"].matmul_eff_max
    assert cal["attention_eff_ratio"] == EFFICIENCY["trainium"].attention_eff_ratio
    # MI300X has no rows: it takes the value pooled over every family, and says so
    assert "pooled" in run_json(capsys, "show", "chip", "mi300x")["calibration"]["fitted_on"]  # type: ignore[index]
    assert "prior" in run_json(capsys, "show", "chip", "cpu-local")["calibration"]["fitted_on"]  # type: ignore[index]
