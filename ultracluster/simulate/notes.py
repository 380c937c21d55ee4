"""Settings a measurement row states in its notes rather than in a column.

The reference schema (`reference/measurements.csv`) has columns for the layout, sharding,
recomputation and precision, but not for the micro-batch size or the communication overlaps;
its curators write those in the row's ``notes`` in a few fixed forms ("MBS 2, GA 16",
"micro-batch 1; 22B: 4", "Microbatch 1", "local batch 2", "--tp-comm-overlap", "async TP",
"--overlap-grad-reduce", "--sequence-parallel"). A setting written there is stated by the source, not silent, so
`validate` reads it as if it were in the column (a filled column always wins). Only positive,
unambiguous forms are read; anything else stays silent and takes the framework's default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_MB = re.compile(
    r"\b(?:MBS|micro[-_ ]?batch(?:[-_ ]size)?)\b\s*(?:=|:|of|is)?\s*(\d+)"
    r"((?:\s*;\s*[\w.\-]+\s*:\s*\d+)*)", re.IGNORECASE)
"""'MBS 2', 'micro-batch 1', 'Microbatch 1', 'micro_batch_size=4', with optional per-model
exceptions after it ('micro-batch 1; 22B: 4': 4 for the row whose model names 22B)."""
_EXCEPTION = re.compile(r";\s*([\w.\-]+)\s*:\s*(\d+)")
_LOCAL = re.compile(r"\blocal batch\s*(?:=|:|of|is)?\s*(\d+)", re.IGNORECASE)
"""torchtitan's per-rank batch: the micro-batch when the rank does not pipeline."""
_TP_ON = re.compile(r"--tp-comm-overlap\b|\btp_comm_overlap\s*=\s*(?:1|true)\b|\basync ?TP\b"
                    r"|\basynchronous TP\b|\bTP (?:comm(?:unication)? )?overlap (?:on|enabled)\b",
                    re.IGNORECASE)
_TP_NEGATED = re.compile(r"\b(?:without|no)\s+(?:async ?TP|asynchronous TP|TP overlap)\b",
                         re.IGNORECASE)
_TP_OFF = re.compile(r"\btp_comm_overlap\s*=\s*(?:0|false)\b|\bTP overlap off\b|\bno TP overlap\b",
                     re.IGNORECASE)
_DP_ON = re.compile(r"--overlap-grad-reduce\b|\boverlap_grad_reduce\s*=\s*(?:1|true)\b",
                    re.IGNORECASE)
_SP_ON = re.compile(r"--sequence-parallel\b")


def micro_batch(notes: str, *, model: str = "", pp: int = 1) -> int | None:
    """The micro-batch size the notes state, or None."""
    m = _MB.search(notes)
    if m:
        value = int(m.group(1))
        for key, v in _EXCEPTION.findall(m.group(2) or ""):
            if key.lower() in model.lower():
                value = int(v)
        return value
    local = _LOCAL.search(notes)
    if local and pp <= 1:
        return int(local.group(1))
    return None


def tp_comm_overlap(notes: str) -> bool | None:
    """Whether the notes state the tensor-parallel collectives overlapped (None: silent)."""
    text = _TP_NEGATED.sub(" ", notes)
    if _TP_ON.search(text):
        return True
    if _TP_OFF.search(notes) or _TP_NEGATED.search(notes):
        return False
    return None


def dp_comm_overlap(notes: str) -> bool | None:
    """Whether the notes state the gradient reduction overlapped with backward (None: silent)."""
    return True if _DP_ON.search(notes) else None


def with_notes(row: Mapping[str, str]) -> dict[str, str]:
    """The row with the settings its notes state filled into its empty optional columns; a
    column's own value always wins."""
    notes = row.get("notes") or ""
    pp_cell = (row.get("pp") or "").strip()
    pp = int(pp_cell) if pp_cell.isdigit() else 1
    found: dict[str, str] = {}
    mb = micro_batch(notes, model=row.get("model") or "", pp=pp)
    if mb is not None and mb > 0:
        found["micro_batch"] = str(mb)
    for key, value in (("tp_comm_overlap", tp_comm_overlap(notes)),
                       ("dp_comm_overlap", dp_comm_overlap(notes)),
                       ("sequence_parallel", True if _SP_ON.search(notes) else None)):
        if value is not None:
            found[key] = "1" if value else "0"
    filled = {k: v for k, v in row.items() if (v or "").strip()}
    return {**row, **found, **filled}
