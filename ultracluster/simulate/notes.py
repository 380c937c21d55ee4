"""Settings a measurement row states in its notes rather than in a column.

The reference schema (`reference/measurements.csv`) has columns for the layout, sharding,
recomputation and precision, but not for the micro-batch size or the communication overlaps;
its curators write those in the row's ``notes`` in a few fixed forms ("MBS 2, GA 16",
"micro-batch 1; 22B: 4", "Microbatch 1", "local batch 2", "--tp-comm-overlap", "async TP",
"--overlap-grad-reduce", "--sequence-parallel"). A setting written there is stated by the
source, not silent, so `measurements.read_rows` fills it into the row's empty column (a filled
column wins). Only plain forms are read: a setting negated ("no", "without", "not", "w/o"
before it; "off", "disabled" after it) reads as off, and anything else stays silent and takes
the framework's default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_N = r"([0-9]{1,6})"
"""A count in the notes: ASCII digits, bounded (a longer run is not a setting)."""
_MB = re.compile(
    r"\b(?:MBS|micro[-_ ]?batch(?:[-_ ]size)?)\b\s*(?:=|:|of|is)?\s*" + _N
    + r"\b((?:\s*;\s*[\w.\-]+\s*:\s*[0-9]{1,6}\b)*)", re.IGNORECASE)
"""'MBS 2', 'micro-batch 1', 'Microbatch 1', 'micro_batch_size=4', with optional per-model
exceptions after it ('micro-batch 1; 22B: 4': 4 for the row whose model names 22B)."""
_EXCEPTION = re.compile(r";\s*([\w.\-]+)\s*:\s*([0-9]{1,6})")
_LOCAL = re.compile(r"\blocal[-_ ]batch(?:[-_ ]size)?\b\s*(?:=|:|of|is)?\s*" + _N + r"\b",
                    re.IGNORECASE)
"""torchtitan's per-rank batch: the micro-batch when the rank does not pipeline."""
_NEG_BEFORE = r"(?:\b(?:no|without|not|w/o)\s+(?:using\s+)?)"
_NEG_AFTER = r"(?:\s+(?:off|disabled)\b|\s*=\s*(?:0|false)\b)"
_SETTINGS = {
    "tp_comm_overlap": r"(?:--tp-comm-overlap\b|\btp_comm_overlap\b|\basync ?TP\b"
                       r"|\basynchronous TP\b|\bTP (?:comm(?:unication)? )?overlap(?= (?:on|enabled)\b))",
    "dp_comm_overlap": r"(?:--overlap-grad-reduce\b|\boverlap_grad_reduce\b)",
    "sequence_parallel": r"(?:--sequence-parallel(?![-\w])|\bsequence_parallel\b)",
    "pp_comm_overlap": r"(?:--overlap-p2p-communication\b|\boverlap_p2p_comm\b"
                       r"|\bpp_comm_overlap\b)",
}
"""Each setting's names in the notes: Megatron-LM flags, config keys, the words for them."""
_BARE_KEYS = ("tp_comm_overlap", "overlap_grad_reduce", "sequence_parallel", "overlap_p2p_comm",
              "pp_comm_overlap")
"""Config keys that state the setting only with a value after them (``key=1``)."""


def micro_batch(notes: str, *, model: str = "", pp: int | None = 1) -> int | None:
    """The micro-batch size the notes state, or None (`pp` None: not known)."""
    m = _MB.search(notes)
    if m:
        value = int(m.group(1))
        for key, v in _EXCEPTION.findall(m.group(2) or ""):
            if re.search(rf"(?<![\w.]){re.escape(key)}(?![\w.])", model, re.IGNORECASE):
                value = int(v)
        return value
    local = _LOCAL.search(notes)
    if local and pp == 1:
        return int(local.group(1))
    return None


def setting(notes: str, key: str) -> bool | None:
    """Whether the notes state `key` (a `_SETTINGS` key) on, off, or not at all (None)."""
    name = _SETTINGS[key]
    off = re.search(_NEG_BEFORE + name + "|" + name + _NEG_AFTER, notes, re.IGNORECASE)
    stripped = re.sub(_NEG_BEFORE + name + "|" + name + _NEG_AFTER, " ", notes,
                      flags=re.IGNORECASE)
    for hit in re.finditer(name, stripped, re.IGNORECASE):
        word = hit.group(0).lstrip("-").lower()
        if word in _BARE_KEYS:  # a config key: on only with a true value after it
            if re.match(r"\s*=\s*(?:1|true)\b", stripped[hit.end():], re.IGNORECASE):
                return True
            continue
        return True
    return False if off else None


def with_notes(row: Mapping[str, str]) -> dict[str, str]:
    """The row with the settings its notes state filled into its empty optional columns; a
    column's own value always wins."""
    notes = row.get("notes") or ""
    pp_cell = (row.get("pp") or "").strip().lstrip("+")
    pp = int(pp_cell) if re.fullmatch(r"[0-9]{1,6}", pp_cell) else (1 if not pp_cell else None)
    found: dict[str, str] = {}
    mb = micro_batch(notes, model=row.get("model") or "", pp=pp)
    if mb is not None and mb > 0:
        found["micro_batch"] = str(mb)
    for key in _SETTINGS:
        value = setting(notes, key)
        if value is not None:
            found[key] = "1" if value else "0"
    filled = {k: v for k, v in row.items() if (v or "").strip()}
    return {**row, **found, **filled}
