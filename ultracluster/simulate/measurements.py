"""Reading a measurements CSV (the schema of ``reference/measurements.csv``) into typed rows.

Every cell is checked before anything is predicted: counts are whole numbers written as
integers in a physical range, the measured throughput is a finite positive number, closed
choices are one of their values. A bad cell raises `ConfigError` naming the row, the column,
the value and the valid range (one line). Unknown hardware is not an input error: the row is
reported as skipped by `validate`.

Optional columns beyond the reference schema, for sources that state them: ``framework`` (a
key of `frameworks.FRAMEWORKS`), ``micro_batch``, ``head_dim``, and ``tp_comm_overlap``,
``dp_comm_overlap``, ``sequence_parallel``, ``pp_comm_overlap`` (``0``/``1``; a run that states
overlapped pipeline sends and no vpp interleaved, since Megatron-LM overlaps them only then).
An empty optional column takes what the row's notes state the way the reference rows write it
(`notes.with_notes`): ``MBS N``, ``micro-batch N`` or ``local batch N`` the micro-batch,
``--tp-comm-overlap`` or ``async TP``, ``--overlap-grad-reduce`` and ``--sequence-parallel``
their settings. An empty ``vpp`` takes the value the source's other rows of the same model,
chip and pipeline layout state, when they agree (`with_siblings`).

The per-head width, which the reference schema has no column for, is read (`row_head_dim`)
from the ``head_dim`` column when there is one, else from the notes (``head_dim 128``, as
the reference rows write it), else from `KNOWN_HEAD_DIMS` (architectures whose heads x
head_dim is not the hidden width, by model name, with their Hugging Face config values or,
without one, the paper's), else hidden / heads.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

from ultracluster.errors import ConfigError
from ultracluster.plan.vocab import Precision, Recompute, words
from ultracluster.readers import read_text
from ultracluster.simulate.frameworks import FRAMEWORKS
from ultracluster.simulate.notes import with_notes
from ultracluster.workload.spec import MLASpec, MoESpec, TransformerSpec

REQUIRED_COLUMNS = ("id", "n_layers", "hidden", "heads", "kv_heads", "ffn_hidden", "vocab",
                    "seq_len", "moe_experts", "moe_topk", "moe_shared_experts", "chip", "system",
                    "n_chips", "tp", "pp", "dp", "cp", "ep", "vpp", "sharding", "recompute",
                    "global_batch_seqs", "precision", "tokens_per_s_per_chip")
MAX_PARAMS_B = 100_000.0
"""The largest ``params_b`` read (100T parameters)."""
DEFAULT_VOCAB = 51_200
"""GPT-2 BPE padded as Megatron pads it (the vocabulary of rows that do not state one)."""
DEEPSEEK_MLA = MLASpec(q_lora_rank=1536, kv_lora_rank=512, qk_nope_head_dim=128,
                       qk_rope_head_dim=64, v_head_dim=128)
"""Multi-head latent attention ranks of DeepSeek-V3 (report, Sec. 4.2), for empty kv_heads."""

# Sanity bounds on a row's integers: they catch typos and overflow, far outside any published
# model or cluster (input checks, not model figures)
_BIG = 10**9
COUNT_RANGES: dict[str, tuple[int, int]] = {
    "n_layers": (1, 100_000), "hidden": (1, 10**7), "heads": (1, 10**6),
    "kv_heads": (1, 10**6), "ffn_hidden": (1, 10**8), "vocab": (1, 10**8),
    "seq_len": (1, _BIG), "moe_experts": (0, 10**6), "moe_topk": (1, 10**6),
    "moe_shared_experts": (0, 10**6), "n_chips": (1, _BIG), "tp": (1, _BIG), "pp": (1, _BIG),
    "dp": (1, _BIG), "cp": (1, _BIG), "ep": (1, _BIG), "vpp": (1, 10_000),
    "global_batch_seqs": (1, 10**13), "micro_batch": (1, _BIG), "head_dim": (1, 10**6),
}
MAX_TOKENS_PER_S_PER_CHIP = 1e9
"""A sanity bound (no chip trains a billion tokens per second): it rejects unit errors."""
FLAGS = ("UNRELIABLE", "LOWER BOUND")
"""Notes that mark a row as not a steady-state measurement: reported, never fitted."""
_INT = re.compile(r"\+?[0-9]{1,15}")
_NOTES_HEAD_DIM = re.compile(r"\bhead_dim\s*(?:=\s*)?([0-9]{1,6})\b")
KNOWN_HEAD_DIMS: tuple[tuple[str, int, str], ...] = (
    # (model-name pattern, head_dim, source); the first that matches the model cell wins
    (r"qwen3[-_ ]?next", 256, "Qwen/Qwen3-Next-80B-A3B-Instruct config.json head_dim"),
    (r"qwen3", 128, "Qwen/Qwen3-* config.json head_dim (every Qwen3 dense and MoE size)"),
    (r"gpt[-_ ]?oss", 64, "openai/gpt-oss-120b and -20b config.json head_dim"),
    (r"(?<![a-z])palm(?![a-z])(?![-_ ]?2)", 256,
     "Chowdhery et al. 2022 Table 1: attention head size is always 256 "
     "(PaLM 8B, 62B, 540B; 48 x 256 != 18,432)"),
)
"""Architectures whose query heads x head_dim differ from the hidden width (their Hugging Face
configs, or the paper where there is none); matched case-insensitively against the row's
``model`` cell."""


def default_measurements() -> Path:
    """Path of the shipped table of published runs, ``ultracluster/data/measurements.csv``."""
    return Path(str(resources.files("ultracluster") / "data" / "measurements.csv"))


def read_rows(path: str | Path) -> list[dict[str, str]]:
    """The CSV's rows as dicts (cells are checked later, per use, by the getters below)."""
    p = Path(path)
    text = read_text(p)  # a regular file of at most 16 MiB, UTF-8: else one line
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ConfigError(f"{p}: missing column(s) {missing}")
        rows = [{k: v for k, v in r.items() if isinstance(k, str) and isinstance(v, str)}
                for r in reader]
    except csv.Error as e:
        raise ConfigError(f"{p}: cannot read as CSV ({e})") from None
    rows = [with_notes(r) for r in rows]
    for r in rows:
        check_row(r)
    return with_siblings(rows)


SIBLING_KEYS = ("source", "chip", "n_layers", "hidden", "tp", "pp")
"""What makes two rows one source's runs of one model on one pipeline layout."""
STATED_BY = "vpp_stated_by"
"""The key `with_siblings` writes: the ids of the rows a filled ``vpp`` was read from."""


def with_siblings(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """The rows, each with an empty ``vpp`` filled from the source's other rows of the same
    model, chip and pipeline layout (`SIBLING_KEYS`) when those state it and agree.

    A source states a setting once for a model and layout and not again for each run of it
    (Korthikanti et al. 2022 give the interleaving of their 530B layout, TP 8 x PP 35, for
    the Table 5 runs; the abstract's run of the same layout on 2,240 GPUs does not restate
    it). The stage split depends only on the layers and ``pp``; a row whose batch cannot
    interleave with the value drops it (`validate.setup_row`). Where the siblings disagree,
    the cell stays empty (silent)."""
    def key(r: Mapping[str, str]) -> tuple[str, ...]:
        return tuple((r.get(k) or "").strip() for k in SIBLING_KEYS)

    stated: dict[tuple[str, ...], dict[str, list[str]]] = {}
    for r in rows:
        v = (r.get("vpp") or "").strip()
        if v and (r.get("source") or "").strip():
            stated.setdefault(key(r), {}).setdefault(str(int(v)), []).append(r["id"])
    out = []
    for r in rows:
        found = stated.get(key(r), {})
        if not (r.get("vpp") or "").strip() and len(found) == 1:
            (v, ids), = found.items()
            r = {**r, "vpp": v, STATED_BY: " ".join(ids)}
        out.append(r)
    return out


def _where(row: Mapping[str, str], key: str, v: str) -> str:
    return f"measurements row {row.get('id') or '?'!r}: {key} = {v!r}"


def get_int(row: Mapping[str, str], key: str, default: int | None = None) -> int:
    """A count cell: a whole number written as an integer, within `COUNT_RANGES[key]`."""
    v = (row.get(key) or "").strip()
    lo, hi = COUNT_RANGES[key]
    if not v:
        if default is None:
            raise ConfigError(f"measurements row {row.get('id') or '?'!r}: {key} is empty "
                              f"(expected an integer from {lo:,} to {hi:,})")
        return default
    if not _INT.fullmatch(v):
        raise ConfigError(f"{_where(row, key, v)} is not a whole number written as an integer "
                          f"(expected an integer from {lo:,} to {hi:,})")
    x = int(v)
    if not lo <= x <= hi:
        raise ConfigError(f"{_where(row, key, v)} is out of range (expected {lo:,} to {hi:,})")
    return x


def get_positive(row: Mapping[str, str], key: str, most: float, what: str) -> float | None:
    """A positive number cell up to `most`, or None when empty; `what` names it in the error."""
    v = (row.get(key) or "").strip()
    if not v:
        return None
    try:
        x = float(v)
    except ValueError:
        x = math.nan
    if not (math.isfinite(x) and 0 < x <= most):
        raise ConfigError(f"{_where(row, key, v)} (expected {what} > 0 and <= {most:,.0f})")
    return x


def measured(row: Mapping[str, str]) -> float | None:
    """The measured tokens/s per chip, or None when the row has none."""
    return get_positive(row, "tokens_per_s_per_chip", MAX_TOKENS_PER_S_PER_CHIP, "a number")


def stated_params(row: Mapping[str, str]) -> float | None:
    """The ``params_b`` cell in parameters (it is in billions), or None when empty."""
    x = get_positive(row, "params_b", MAX_PARAMS_B, "billions of parameters")
    return None if x is None else x * 1e9


def get_choice(row: Mapping[str, str], key: str, valid: tuple[str, ...]) -> str | None:
    """A closed-choice cell, or None when empty."""
    v = (row.get(key) or "").strip()
    if not v:
        return None
    if v not in valid:
        raise ConfigError(f"{_where(row, key, v)} (expected one of {', '.join(valid)})")
    return v


def is_flagged(row: Mapping[str, str]) -> bool:
    """Whether the row's notes mark it as not a steady-state measurement (`FLAGS`)."""
    return any(f in row.get("notes", "") for f in FLAGS)


NEEDED = ("n_layers", "hidden", "heads", "ffn_hidden", "seq_len", "n_chips")
"""Count columns that must not be empty."""
SHARDING = {"none": 0, "zero1": 1, "zero2": 2, "zero3": 3}
RECOMPUTE = words(Recompute)
PRECISION = tuple(w for w in words(Precision) if w != Precision.FP32)


def check_row(row: Mapping[str, str]) -> None:
    """Every cell of the row parses (raises `ConfigError` on the first that does not)."""
    if not (row.get("id") or "").strip():
        raise ConfigError("measurements row with an empty id (every row needs one)")
    for key in COUNT_RANGES:
        if key in NEEDED:
            get_int(row, key)
        elif key in row:
            get_int(row, key, 0)
    for key in ("chip", "system"):
        if not (row.get(key) or "").strip():
            raise ConfigError(f"measurements row {row.get('id')!r}: {key} is empty (expected "
                              "a catalogue name; `ultracluster show chips` lists them)")
    measured(row)
    stated_params(row)
    get_choice(row, "sharding", tuple(SHARDING))
    get_choice(row, "recompute", RECOMPUTE)
    get_choice(row, "precision", PRECISION)
    get_choice(row, "framework", tuple(FRAMEWORKS))
    for key in ("tp_comm_overlap", "dp_comm_overlap", "sequence_parallel", "pp_comm_overlap"):
        get_choice(row, key, ("0", "1"))
    if get_int(row, "moe_experts", 0) and not (row.get("moe_topk") or "").strip():
        raise ConfigError(f"measurements row {row.get('id')!r}: moe_topk is empty but "
                          "moe_experts is set (expected the experts per token, >= 1)")


@dataclass(frozen=True, kw_only=True, slots=True)
class RowLayout:
    """The parallel layout a row states (empty cells resolved by the schema's rules)."""

    n_chips: int
    tp: int
    pp: int
    dp: int
    cp: int
    ep: int
    global_batch: int


def row_layout(row: Mapping[str, str], *, chips_per_node: int) -> RowLayout:
    """``tp`` empty: one node; ``dp`` empty: the rest of the chips; batch empty: 4 x pp
    micro-batches of one sequence per replica (an assumption, not from the rows' sources:
    it keeps the 1F1B bubble, (p - 1) / (m + p - 1), under 20%)."""
    n = get_int(row, "n_chips")
    pp, cp = get_int(row, "pp", 1), get_int(row, "cp", 1)
    tp = get_int(row, "tp", chips_per_node)
    dp = get_int(row, "dp", max(1, n // (tp * pp * cp)))
    gb = get_int(row, "global_batch_seqs", dp * 4 * pp)
    return RowLayout(n_chips=n, tp=tp, pp=pp, dp=dp, cp=cp, ep=get_int(row, "ep", 1),
                     global_batch=gb)


def row_head_dim(row: Mapping[str, str]) -> int:
    """The row's per-head width: the ``head_dim`` column, else ``head_dim N`` in the notes,
    else `KNOWN_HEAD_DIMS` by model name, else 0 (hidden / heads)."""
    if (row.get("head_dim") or "").strip():
        return get_int(row, "head_dim")
    found = _NOTES_HEAD_DIM.search(row.get("notes") or "")
    if found:
        return int(found.group(1))
    name = (row.get("model") or "").lower()
    for pattern, head_dim, _source in KNOWN_HEAD_DIMS:
        if re.search(pattern, name):
            return head_dim
    return 0


def row_model(row: Mapping[str, str]) -> TransformerSpec:
    """The model a row describes: ``ffn_hidden == 4 x hidden`` is a plain two-matrix MLP unless
    ``params_b`` is nearer the gated count (`_gated_by_size`), otherwise gated; empty
    ``kv_heads`` is DeepSeek-V3's latent attention; MoE rows have every layer MoE (the schema
    has no dense-layer count); heads of `row_head_dim`."""
    h, heads = get_int(row, "hidden"), get_int(row, "heads")
    ffn = get_int(row, "ffn_hidden")
    kv = (row.get("kv_heads") or "").strip()
    experts = get_int(row, "moe_experts", 0)
    moe = (MoESpec(num_experts=experts, top_k=get_int(row, "moe_topk"), expert_ffn_hidden=ffn,
                   num_shared_experts=get_int(row, "moe_shared_experts", 0))
           if experts else None)
    spec = TransformerSpec(
        name=row.get("model") or row["id"], num_layers=get_int(row, "n_layers"), hidden=h,
        num_heads=heads, num_kv_heads=get_int(row, "kv_heads") if kv else heads,
        head_dim=row_head_dim(row) if kv else 0,
        ffn_hidden=ffn, gated_ffn=ffn != 4 * h, vocab=get_int(row, "vocab", DEFAULT_VOCAB),
        max_seq_len=get_int(row, "seq_len"), moe=moe, mla=None if kv else DEEPSEEK_MLA,
    )
    return _gated_by_size(spec, row)


def _gated_by_size(spec: TransformerSpec, row: Mapping[str, str]) -> TransformerSpec:
    """A dense MLP of width 4 x hidden is plain (GPT-2/3) unless the row's ``params_b`` is
    nearer the gated count: PaLM's SwiGLU MLP is 4 x d_model wide with three matrices
    (Chowdhery et al. 2022 s.2: "this does require three matrix multiplications in the MLP";
    540B only with them, 380B without). Each count is taken with the embedding tied and untied
    (the schema does not say) and the nearer kept."""
    stated = stated_params(row)
    if spec.gated_ffn or spec.moe is not None or stated is None:
        return spec
    gated = replace(spec, gated_ffn=True)
    embed = spec.vocab * spec.hidden

    def miss(m: TransformerSpec) -> float:
        return min(abs(m.layer_params() + k * embed - stated) for k in (1, 2))

    return gated if miss(gated) < miss(spec) else spec
