"""Bad measurement CSVs end in one line on stderr and exit 2; edge files give valid JSON."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from ultracluster.cli import main
from ultracluster.simulate.validate import default_measurements


def _csv(tmp_path: Path, **cells: str) -> Path:
    """The mcore24-01 reference row with `cells` replaced."""
    reader = csv.DictReader(io.StringIO(default_measurements().read_text()))
    row = next(r for r in reader if r["id"] == "mcore24-01")
    row.update(cells)
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=list(row))
    w.writeheader()
    w.writerow(row)
    p = tmp_path / "m.csv"
    p.write_text(out.getvalue())
    return p


@pytest.mark.parametrize("field,value", [
    ("kv_heads", "8.0"), ("vpp", "two"), ("tokens_per_s_per_chip", "abc"),
    ("tokens_per_s_per_chip", "0"), ("tokens_per_s_per_chip", "-5"),
    ("tokens_per_s_per_chip", "nan"), ("tokens_per_s_per_chip", "inf"), ("tp", "0"),
    ("dp", "0"), ("pp", "-1"), ("n_layers", "1e308"), ("hidden", "9" * 5000),
    ("sharding", "zero9"), ("micro_batch", "0"), ("framework", "jax-magic"),
    ("params_b", "abc"),
])
def test_bad_cell_is_one_line_naming_row_field_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], field: str, value: str
) -> None:
    for extra in ([], ["--json"]):
        assert main(["validate", "--measurements", str(_csv(tmp_path, **{field: value})),
                     *extra]) == 2
        cap = capsys.readouterr()
        assert cap.out == ""
        err = cap.err.strip()
        assert "\n" not in err and "Traceback" not in err
        assert "mcore24-01" in err and field in err and repr(value)[:40] in err, err


@pytest.mark.parametrize("body", [
    "",  # header only
    "x,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,",  # nothing usable: the whole row is empty
])
def test_no_scored_row_still_gives_valid_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str
) -> None:
    header = default_measurements().read_text().splitlines()[0]
    p = tmp_path / "m.csv"
    p.write_text(header + "\n" + body)
    code = main(["validate", "--measurements", str(p), "--json"])
    cap = capsys.readouterr()
    if code == 2:  # an all-empty row is bad input, said in one line
        assert "\n" not in cap.err.strip() and cap.out == ""
        return
    assert code == 0
    doc = json.loads(cap.out)
    assert doc["summary"]["n"] == 0 and doc["summary"]["median_abs_error_pct"] is None
    assert doc["loo"]["coverage"] is None


def test_unknown_hardware_with_a_measurement_gives_valid_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "--measurements", str(_csv(tmp_path, system="dgx-z9000")),
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"]["n"] == 0 and "skipped" in doc["rows"][0]


def test_not_a_regular_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["validate", "--measurements", str(tmp_path)]) == 2
    assert "not a regular file" in capsys.readouterr().err


def test_settings_stated_in_the_notes_fill_empty_columns() -> None:
    """The reference rows write what a source states beyond the schema into the notes (``MBS
    2``, ``--tp-comm-overlap``): an empty optional column takes it, a filled one keeps its own."""
    from ultracluster.simulate.notes import with_notes

    notes = "table: MBS 4, GA 2; run with --tp-comm-overlap --overlap-grad-reduce"
    got = with_notes({"id": "r", "notes": notes})
    assert (got["micro_batch"], got["tp_comm_overlap"], got["dp_comm_overlap"]) == ("4", "1", "1")
    assert "sequence_parallel" not in got
    kept = with_notes({"id": "r", "notes": notes, "micro_batch": "1", "tp_comm_overlap": "0"})
    assert (kept["micro_batch"], kept["tp_comm_overlap"]) == ("1", "0")
    assert with_notes({"id": "r", "notes": "micro-batch size not stated"}) == {
        "id": "r", "notes": "micro-batch size not stated"}


def test_torchtitan_version_follows_the_source_year() -> None:
    """A torchtitan source dated 2024 ran the December 2024 code (pipelined micro-batches from
    the stage count); a later one the current defaults; a named framework always wins."""
    from ultracluster.simulate.frameworks import framework_of

    def fw(source: str, named: str = "") -> str:
        return framework_of({"id": "r", "source": source, "framework": named},
                            family="nvidia-hopper")

    assert fw("torchtitan benchmarks (PyTorch team), Llama 3.1 on H100, Dec 2024") == \
        "torchtitan-2024"
    assert fw("torchtitan benchmarks, Llama 4 on H200, 2025") == "torchtitan"
    assert fw("torchtitan README") == "torchtitan"
    assert fw("torchtitan, Dec 2024", named="torchtitan") == "torchtitan"


def test_a_source_naming_no_framework_runs_the_stack_of_its_year() -> None:
    """NVIDIA rows that name no framework: Megatron-LM of the source's year before
    Megatron-Core existed (2023), Megatron-Core after; GPT-NeoX and BLOOM ran on DeepSpeed;
    a TPU or Trainium row takes its vendor's stack whatever the year."""
    from ultracluster.simulate.frameworks import framework_of

    def fw(source: str, family: str = "nvidia-ampere") -> str:
        return framework_of({"id": "r", "source": source}, family=family)

    assert fw("Zhang et al. 2022, OPT: Open Pre-trained Transformer Language Models") == \
        "megatron-2022"
    assert fw("Shoeybi et al. 2019, Megatron-LM") == "megatron-2021"
    assert fw("Some lab 2024 technical report", "nvidia-hopper") == "megatron-core"
    assert fw("a blog post") == "megatron-core"
    assert fw("Black et al. 2022, GPT-NeoX-20B") == "deepspeed"
    assert fw("BigScience 2022, BLOOM: a 176B-parameter open-access model") == "deepspeed"
    assert fw("Chowdhery et al. 2022, PaLM", "tpu") == "maxtext"


def test_a_mlp_four_times_the_width_is_gated_when_the_stated_size_says_so() -> None:
    """PaLM 540B: SwiGLU at 4 x d_model, heads of 256 (Chowdhery et al. 2022); a 4h MLP is
    plain unless ``params_b`` is nearer the gated count, tied or untied embeddings alike."""
    from ultracluster.simulate.measurements import row_model

    palm = {"id": "palm", "model": "PaLM 540B", "n_layers": "118", "hidden": "18432",
            "heads": "48", "kv_heads": "1", "ffn_hidden": "73728", "vocab": "256000",
            "seq_len": "2048", "params_b": "540.35"}
    m = row_model(palm)
    assert m.gated_ffn and m.head_dim == 256
    assert m.params == pytest.approx(540.35e9 + 256000 * 18432, rel=0.002)  # untied count
    assert not row_model({**palm, "params_b": "380"}).gated_ffn
    assert not row_model({**palm, "params_b": ""}).gated_ffn
    rows = csv.DictReader(io.StringIO(default_measurements().read_text()))
    assert not any(row_model(r).gated_ffn for r in rows
                   if int(r["ffn_hidden"]) == 4 * int(r["hidden"]))  # GPT-style, Nemotron-4
