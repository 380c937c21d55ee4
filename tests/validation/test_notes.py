"""Settings a row states in its notes (the reference schema has no column for them)."""

from __future__ import annotations

import csv
import io

from ultracluster.simulate.measurements import STATED_BY, with_siblings
from ultracluster.simulate.notes import micro_batch, setting, with_notes
from ultracluster.simulate.validate import default_measurements, setup_row

_EXTRA = ("framework", "micro_batch", "tp_comm_overlap", "dp_comm_overlap",
          "sequence_parallel", "pp_comm_overlap")


def _rows() -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(default_measurements().read_text())))


def test_notes_give_the_columns_the_curated_rows_fill() -> None:
    """Every micro-batch and overlap column of the shipped rows is what its notes say (where
    they say it): the reference schema's rows, which lack those columns, resolve the same."""
    checked = 0
    for row in _rows():
        notes, model = row["notes"], row["model"]
        pp = int(row["pp"] or 1)
        if row["micro_batch"]:
            assert micro_batch(notes, model=model, pp=pp) == int(row["micro_batch"]), row["id"]
            checked += 1
        for col in ("tp_comm_overlap", "dp_comm_overlap", "sequence_parallel",
                    "pp_comm_overlap"):
            said = setting(notes, col)
            if said is not None and row[col]:
                assert said == (row[col] == "1"), (row["id"], col)
                checked += 1
    assert checked >= 40


def test_a_row_without_the_extra_columns_resolves_to_the_same_plan() -> None:
    """Every shipped row but those whose notes do not restate a column (Korthikanti's
    sequence parallelism and TP overlap, both the framework's default anyway)."""
    for row in _rows():
        raw = {k: ("" if k in _EXTRA and k != "framework" else v) for k, v in row.items()}
        assert setup_row(with_notes(raw)).plan == setup_row(row).plan, row["id"]


def test_forms_the_notes_use() -> None:
    assert micro_batch("MBS 2, GA 16") == 2
    assert micro_batch("configs from Table 3 (micro-batch 1; 22B: 4)", model="GPT-22B") == 4
    assert micro_batch("configs from Table 3 (micro-batch 1; 22B: 4)", model="GPT-175B") == 1
    assert micro_batch("Microbatch 1, AdamW") == 1
    assert micro_batch("micro_batch_size=8") == 8
    assert micro_batch("8 micro-batches of 32 / 8 = 4 sequences") is None
    assert micro_batch("FSDP only, local batch 2") == 2
    assert micro_batch("local batch 32", pp=8) is None  # torchtitan splits it over stages
    assert micro_batch("no setting here") is None
    assert setting("--overlap-grad-reduce --tp-comm-overlap", "tp_comm_overlap") is True
    assert setting("torch.compile + Float8 + async TP; without async TP 829", "tp_comm_overlap") is True
    assert setting("without async TP", "tp_comm_overlap") is False
    assert setting("no --tp-comm-overlap", "tp_comm_overlap") is False
    assert setting("async TP disabled", "tp_comm_overlap") is False
    assert setting("tp_comm_overlap not stated", "tp_comm_overlap") is None
    assert setting("tp_comm_overlap = 1", "tp_comm_overlap") is True
    assert setting("--sequence-parallel", "sequence_parallel") is True
    assert setting("sequence parallelism on the selective rows", "sequence_parallel") is None
    assert setting("pp_comm_overlap=1: the README says", "pp_comm_overlap") is True
    assert micro_batch("micro-batch 1; 7B: 4", model="Llama 2 17B") == 1
    assert micro_batch("local_batch_size=8") == 8
    assert micro_batch("MBS " + "9" * 5000) is None
    assert "micro_batch" not in with_notes({"pp": "\u00b2", "notes": "local batch 4"})
    assert "micro_batch" not in with_notes({"pp": "+8", "notes": "local batch 4"})
    assert setting("FSDP only", "tp_comm_overlap") is None
    assert setting("--overlap-grad-reduce --overlap-param-gather", "dp_comm_overlap") is True
    assert setting("FSDP only", "dp_comm_overlap") is None
    # a filled column wins over the notes
    row = {"notes": "MBS 2", "micro_batch": "4", "pp": "1", "model": "x"}
    assert with_notes(row)["micro_batch"] == "4"
    assert with_notes({**row, "micro_batch": ""})["micro_batch"] == "2"


def test_a_silent_vpp_is_read_from_the_source_s_runs_of_the_same_layout() -> None:
    """Korthikanti et al. state vpp 3 for their 530B layout (TP 8 x PP 35) once; the
    abstract's run of that layout on 2,240 GPUs reads it from there. Disagreeing siblings,
    another source, another layout or another chip leave the cell empty (silent)."""
    rows = {r["id"]: r for r in _rows()}
    base = {**rows["kor22-09"], "vpp": ""}
    sib = rows["kor22-05"]
    assert sib["vpp"] == "3"
    filled = with_siblings([base, sib])[0]
    assert filled["vpp"] == "3" and filled[STATED_BY] == "kor22-05"
    assert setup_row(filled).plan.dims.vpp == 3
    assert setup_row(filled).chosen[STATED_BY] == "kor22-05"
    assert "vpp" not in setup_row(filled).chosen["silent"]
    assert setup_row(base).plan.dims.vpp == 1  # alone: the framework's default
    other = {**sib, "vpp": "1", "id": "x"}  # siblings that disagree
    assert with_siblings([base, sib, other])[0]["vpp"] == ""
    for k, v in (("source", "Another paper"), ("pp", "16"), ("chip", "h100-sxm"),
                 ("n_layers", "96")):
        assert with_siblings([base, {**sib, k: v}])[0]["vpp"] == "", k
    odd = {**filled, "global_batch_seqs": "8"}  # 1 micro-batch a replica: no interleaving
    assert setup_row(odd).plan.dims.vpp == 1 and STATED_BY not in setup_row(odd).chosen
    stated = {**base, "vpp": "5"}  # a stated cell is never replaced
    assert with_siblings([stated, sib])[0]["vpp"] == "5"
