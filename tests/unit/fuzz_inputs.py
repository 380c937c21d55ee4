"""Generated bad and edge inputs for every input kind, run in-process through `cli.main`.

Shared by ``tests/unit/test_fuzz_cli.py`` (a few thousand examples, in CI) and
``benchmarks/fuzz_cli.py`` (a long run). Each kind starts from a valid document and applies a
few mutations drawn by hypothesis: a value replaced by a hostile one (NaN, inf, 1e308,
1e-300, 1.9 where a whole number belongs, a 5,000-digit integer, strings, tables, nesting),
a field deleted, an unknown field added, or the text itself cut, spliced or nested 1,000 deep.

The contract checked for every input (`check`): exit 0 with one valid (strict) JSON document on
stdout and nothing on stderr, or exit 2 with exactly one line on stderr; never a traceback,
another exit status, a Python warning, or a run longer than `TIMEOUT_S`.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import signal
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
from hypothesis import strategies as st

from ultracluster.cli import main

TIMEOUT_S = 20
HUGE_INT = "__HUGE_INT__"
"""A marker replaced by a 5,000-digit integer literal after serialising (no serialiser writes
one: Python refuses to print integers of over 4,300 digits)."""

BASE_CLUSTER: dict[str, Any] = {
    "name": "fuzz", "description": "two DGX H100 sites",
    "sites": [
        {"name": "a", "system": "dgx-h100", "num_pods": 1, "fabric_gbps_per_pod": 3200,
         "fabric_latency_us": 10, "oversubscription": 1.0, "pue": 1.2,
         "electricity_usd_per_kwh": 0.08, "chip_overrides": {"peak_flops_bf16": 9.9e14,
                                                           "hbm_bytes": 8e10},
         "system_overrides": {"num_chips": 8, "nic_bytes_per_s": 4e11},
         "efficiency": {"matmul_eff_max": 0.5, "memory_eff": 0.7}},
        {"name": "b", "system": "dgx-h100", "num_pods": 1},
    ],
    "links": [{"sites": ["a", "b"], "distance_km": 100, "bandwidth_gbps": 400,
               "latency_ms": 1.0}],
}
BASE_PLAN: dict[str, Any] = {
    "tp": 8, "pp": 1, "vpp": 1, "dp": 2, "cp": 1, "ep": 1, "sequence_parallel": True,
    "micro_batch": 1, "global_batch": 16, "seq_len": 1024, "zero": 1, "recompute": "selective",
    "precision": "bf16", "schedule": "1f1b", "tp_comm_overlap": False,
    "ep_comm_overlap": False, "dp_comm_overlap": True,
    "order": ["tp", "cp", "ep", "pp", "dp"],
    "site_sync": {"mode": "diloco", "inner_steps": 10, "bits": 8, "fragments": 1},
}
BASE_HF: dict[str, Any] = {
    "model_type": "llama", "hidden_size": 512, "intermediate_size": 1376,
    "num_attention_heads": 8, "num_hidden_layers": 4, "num_key_value_heads": 4,
    "vocab_size": 32000, "max_position_embeddings": 4096, "tie_word_embeddings": False,
    "attention_bias": False, "rope_theta": 500000.0, "torch_dtype": "bfloat16",
}
BASE_HF_MOE: dict[str, Any] = {
    "model_type": "deepseek_v3", "hidden_size": 512, "intermediate_size": 1376,
    "moe_intermediate_size": 256, "num_attention_heads": 8, "num_hidden_layers": 4,
    "num_key_value_heads": 8, "vocab_size": 32000, "n_routed_experts": 16,
    "num_experts_per_tok": 2, "n_shared_experts": 1, "first_k_dense_replace": 1,
    "q_lora_rank": 128, "kv_lora_rank": 64, "qk_nope_head_dim": 32, "qk_rope_head_dim": 16,
    "v_head_dim": 32,
}
CSV_COLUMNS = ("id", "source", "model", "n_layers", "hidden", "heads", "kv_heads", "ffn_hidden",
               "vocab", "seq_len", "moe_experts", "moe_topk", "moe_shared_experts", "chip",
               "system", "n_chips", "tp", "pp", "dp", "cp", "ep", "vpp", "sharding", "recompute",
               "global_batch_seqs", "precision", "tokens_per_s_per_chip", "measured_metric",
               "measured_value", "conversion", "notes")
BASE_CSV_ROWS: list[dict[str, str]] = [
    dict(zip(CSV_COLUMNS, (
        "f-1", "fuzz", "GPT-1.7B", "24", "2304", "24", "24", "9216", "51200", "2048", "", "",
        "", "a100-80gb", "dgx-a100", "32", "1", "1", "32", "1", "", "", "none", "full", "512",
        "fp16", "9287.9", "achieved_tflops_per_gpu", "137", "", ""))),
    dict(zip(CSV_COLUMNS, (
        "f-2", "fuzz", "Llama-3-8B", "32", "4096", "32", "8", "14336", "128256", "8192", "",
        "", "", "h100-sxm", "dgx-h100", "64", "1", "1", "64", "1", "", "", "zero3", "none",
        "512", "bf16", "3500", "tokens_per_s_per_chip", "3500", "", ""))),
]

NASTY_FLOATS = (math.nan, math.inf, -math.inf, 1e308, -1e308, 1e-300, 5e-324, -0.0, 0.0, 0.5,
                1.9, -1.0, 1e20, 2.0**63)
NASTY_INTS = (0, -1, 1, 2, 3, 7, 2**31, 2**53 + 1, 2**63, 10**30, 10**400)
NASTY_TEXT = ("", " ", "abc", "1e308", "nan", "inf", "-1", "0", "0.5", "1.9", "15T", "1e-9",
              "\x00", "line\nbreak", "é", "9" * 400, "[1]", "{}", "--json")


_LEAF = st.one_of(
    st.sampled_from(NASTY_FLOATS), st.sampled_from(NASTY_INTS), st.sampled_from(NASTY_TEXT),
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**20),
    st.booleans(), st.text(max_size=12), st.just(HUGE_INT),
)
SCALARS = st.one_of(_LEAF, st.lists(_LEAF, max_size=3),
                    st.dictionaries(st.text(max_size=6), _LEAF, max_size=2))
"""A hostile scalar or small structure (a value a field may be replaced with). Strategies are
built once, at import: building one per example cost more than running the command."""


@dataclass(frozen=True)
class Mutation:
    """One change to a parsed document: the path is picked as `pick` modulo the paths."""

    op: str
    pick: int
    value: Any


_PICK = st.integers(0, 10**6)
_ONE = st.builds(Mutation, op=st.sampled_from(("replace", "delete", "add")), pick=_PICK,
                 value=SCALARS)
_NUMBER = st.builds(Mutation, op=st.just("number"), pick=_PICK,
                    value=st.one_of(st.sampled_from(NASTY_FLOATS + NASTY_INTS), st.floats(),
                                    st.integers(-10, 10**9)))
_SCALE = st.builds(Mutation, op=st.just("scale"), pick=_PICK,
                   value=st.sampled_from((1e-9, 1e-6, 1e-3, 0.1, 0.5, 2, 10, 1e3, 1e6, 1e9,
                                          1e15)))
MUTATIONS = st.lists(st.one_of(_NUMBER, _SCALE, _SCALE, _ONE), min_size=1, max_size=3)
"""One to three mutations (numbers and scalings are the likelier: they are what gets through
the parsers to the model)."""


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield prefix + (i,)
            yield from _paths(v, prefix + (i,))


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def mutate(base: Any, muts: list[Mutation]) -> Any:
    doc = json.loads(json.dumps(base))
    for m in muts:
        paths = list(_paths(doc))
        if m.op in ("number", "scale"):  # numbers where numbers belong: what gets through
            paths = [p for p in paths if _is_number(_at(doc, p))] or paths
        if not paths:
            return m.value
        path = paths[m.pick % len(paths)]
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        last = path[-1]
        if m.op == "delete":
            del parent[last]
        elif m.op == "add" and isinstance(parent, dict):
            parent[f"extra_{m.pick % 7}"] = m.value
        elif m.op == "add":
            parent.append(m.value)
        elif m.op == "scale" and _is_number(parent[last]):
            try:
                x = parent[last] * m.value
            except OverflowError:  # a 400-digit integer times a float
                x = math.inf
            parent[last] = round(x) if isinstance(parent[last], int) and abs(x) < 2**63 else x
        else:
            parent[last] = m.value
    return doc


@dataclass(frozen=True)
class TextEdit:
    """A change to the serialised text: cut at, splice in, or wrap in deep nesting."""

    op: str
    at: int
    text: str


TEXT_EDITS = st.builds(TextEdit, op=st.sampled_from(("cut", "splice", "nest", "bytes")),
                       at=st.integers(0, 10**6),
                       text=st.one_of(st.sampled_from(NASTY_TEXT + ("[", "]", "{", '"', "=",
                                                                     ",", "\n[[sites]]\n")),
                                      st.text(max_size=8)))


def apply_text_edit(text: str, e: TextEdit, *, kind: str) -> bytes:
    i = e.at % (len(text) + 1)
    if e.op == "cut":
        return text[:i].encode()
    if e.op == "splice":
        return (text[:i] + e.text + text[i:]).encode("utf-8", "surrogatepass")
    if e.op == "bytes":
        return text[:i].encode() + b"\xff\xfe\x00" + text[i:].encode()
    depth = 1000
    if kind == "toml":
        return ("x = " + "[" * depth + "]" * depth + "\n").encode()
    return ("[" * depth + "]" * depth).encode()


def serialise(doc: Any, kind: str) -> str:
    if kind == "toml":
        text = tomli_w.dumps(_toml_safe(doc)) if isinstance(doc, dict) else "x = 1\n"
        return text.replace(f'"{HUGE_INT}"', "1" * 5000)
    if kind == "json":
        return json.dumps(doc).replace(f'"{HUGE_INT}"', "1" * 5000)
    rows = doc if isinstance(doc, list) else []
    out = io.StringIO()
    cols = list(dict.fromkeys(k for r in rows if isinstance(r, dict) for k in r)) \
        or list(CSV_COLUMNS)
    w = csv.writer(out)
    w.writerow(cols)
    for r in rows:
        if isinstance(r, dict):
            w.writerow([_csv_cell(r.get(c, "")) for c in cols])
    return out.getvalue().replace(HUGE_INT, "1" * 5000)


def _csv_cell(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def _toml_safe(v: Any) -> Any:
    """TOML has no null and only string keys; arrays of tables must hold tables only."""
    if isinstance(v, dict):
        return {str(k): _toml_safe(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        items = [_toml_safe(x) for x in v if x is not None]
        if any(isinstance(x, dict) for x in items) and not all(isinstance(x, dict)
                                                               for x in items):
            items = [x for x in items if isinstance(x, dict)]
        return items
    return v


class Hang(Exception):
    """A command ran past `TIMEOUT_S`."""


@contextlib.contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    def fire(signum: int, frame: Any) -> None:
        raise Hang(f"no answer within {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _strict(name: str) -> Any:
    raise ValueError(f"{name} in JSON output")


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `main(argv)`, with warnings turned into errors."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            warnings.catch_warnings(), _deadline(TIMEOUT_S):
        warnings.simplefilter("error")
        try:
            rc = main(argv)
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 1
    return rc, out.getvalue(), err.getvalue()


def check(argv: list[str]) -> tuple[int, str]:
    """Run `argv` and assert the contract; returns (exit status, stderr line)."""
    rc, out, err = run_cli(argv)
    if rc == 0:
        assert err == "", f"{argv}: exit 0 but stderr {err!r}"
        json.loads(out, parse_constant=_strict)
        return rc, ""
    assert rc == 2, f"{argv}: exit {rc}, stderr {err[-2000:]!r}"
    assert out == "", f"{argv}: exit 2 but stdout {out[:500]!r}"
    assert err.endswith("\n") and err.count("\n") == 1, f"{argv}: stderr not one line: {err!r}"
    assert err.startswith("ultracluster"), f"{argv}: {err!r}"
    return rc, err.strip()


# ---- the input kinds: each returns the argv to run for one generated input ----------------


def _write(folder: Path, name: str, data: bytes) -> str:
    p = folder / name
    p.unlink(missing_ok=True)  # a new file: truncating one in place costs ~3 ms on ext4
    p.write_bytes(data)
    return str(p)


BASE_CLUSTER_TOML = tomli_w.dumps(BASE_CLUSTER).encode()
BASE_CSV = serialise(BASE_CSV_ROWS, "csv").encode()
_ONE_IN_TEN = st.integers(0, 9)
_BOOL = st.booleans()
_HF_BASE = st.sampled_from((BASE_HF, BASE_HF_MOE))


def _document(draw: st.DrawFn, base: Any, kind: str) -> bytes:
    doc = mutate(base, draw(MUTATIONS))
    text = serialise(doc, kind)
    if draw(_ONE_IN_TEN) == 0:
        return apply_text_edit(text, draw(TEXT_EDITS), kind=kind)
    return text.encode("utf-8", "surrogatepass")


SIMULATE = ["--tp", "8", "--dp", "2", "--global-batch", "16", "--seq-len", "1024", "--tokens",
            "1e9", "--site-sync", "diloco", "--inner-steps", "10", "--json"]


def cluster_case(draw: st.DrawFn, folder: Path) -> list[str]:
    f = _write(folder, "cluster.toml", _document(draw, BASE_CLUSTER, "toml"))
    if draw(_BOOL):
        return ["show", "cluster", f, "--json"]
    return ["simulate", "--cluster", f, "--model", "llama3-8b", *SIMULATE]


def hf_case(draw: st.DrawFn, folder: Path) -> list[str]:
    base = draw(_HF_BASE)
    f = _write(folder, "config.json", _document(draw, base, "json"))
    if draw(_BOOL):
        return ["show", "model", f, "--json"]
    return ["simulate", "--cluster", "local", "--model", f, "--seq-len", "1024",
            "--global-batch", "4", "--tokens", "1e9", "--json"]


def plan_case(draw: st.DrawFn, folder: Path) -> list[str]:
    f = _write(folder, "plan.toml", _document(draw, BASE_PLAN, "toml"))
    cluster = _write(folder, "base.toml", BASE_CLUSTER_TOML)
    return ["simulate", "--cluster", cluster, "--model", "llama3-8b", "--plan", f, "--json"]


def csv_case(draw: st.DrawFn, folder: Path) -> list[str]:
    f = _write(folder, "m.csv", _document(draw, BASE_CSV_ROWS, "csv"))
    return ["validate", "--measurements", f, "--json"]


FLAG_VALUES = NASTY_TEXT + ("1", "2", "8", "16", "64", "1024", "1e9", "15e12", "4M", "bf16",
                            "fp8", "full", "diloco", "streaming", "local", "tiny")
COMMAND_FLAGS: dict[str, tuple[str, ...]] = {
    "simulate": ("--tp", "--pp", "--vpp", "--cp", "--ep", "--dp", "--zero", "--recompute",
                 "--micro-batch", "--global-batch", "--seq-len", "--precision", "--site-sync",
                 "--inner-steps", "--sync-bits", "--fragments", "--tokens",
                 "--price-per-chip-hour", "--model", "--cluster", "--plan", "--bogus"),
    "plan": ("--global-batch", "--seq-len", "--objective", "--top", "--max-chips", "--sites",
             "--max-days", "--tokens", "--price-per-chip-hour", "--model", "--save"),
    "show": ("--seq-len",),
    "validate": ("--measurements",),
}
SMALL_DEFAULTS: dict[str, list[str]] = {
    "simulate": ["--cluster", "local", "--model", "tiny", "--seq-len", "256",
                 "--global-batch", "8", "--tokens", "1e9"],
    "plan": ["--model", "tiny", "--seq-len", "256", "--global-batch", "8", "--tokens", "1e9",
             "--max-chips", "8"],
    "show": ["model", "tiny"],
    "validate": [],
}


_SPECIAL = {"@dir": "", "@fifo": "fifo", "@missing": "no/x.toml"}
"""Markers for paths in the test's folder (a folder, a FIFO, a missing file)."""
_CMD = st.sampled_from(("simulate", "simulate", "simulate", "show", "plan", "validate"))
_VALUE = st.one_of(st.sampled_from(FLAG_VALUES), st.sampled_from(tuple(_SPECIAL)),
                   st.text(max_size=10).filter(lambda s: not s.startswith("-")))
_PAIRS = {cmd: st.lists(st.tuples(st.sampled_from(flags), _VALUE), min_size=1, max_size=3)
          for cmd, flags in COMMAND_FLAGS.items()}


def flags_case(draw: st.DrawFn, folder: Path) -> list[str]:
    cmd = draw(_CMD)
    pairs = [(f, str(folder / _SPECIAL[v]) if v in _SPECIAL else v)
             for f, v in draw(_PAIRS[cmd])]
    argv = [cmd, *SMALL_DEFAULTS[cmd]]
    if cmd == "plan":
        argv += ["--cluster", _write(folder, "base.toml", BASE_CLUSTER_TOML)]
    if cmd == "validate" and not any(f == "--measurements" for f, _ in pairs):
        pairs.append(("--measurements", _write(folder, "m.csv", BASE_CSV)))
    for flag, value in pairs:
        if cmd == "plan" and flag == "--model" and value not in ("tiny", "llama3-8b"):
            value = "tiny"  # a big model on the search path is slow, not wrong
        if flag == "--save" and not value.startswith("/"):
            value = str(folder / value)  # never write into the working folder
        argv += [flag, value] if not value.startswith("-") else [f"{flag}={value}"]
    return argv + ["--json"]


KINDS: dict[str, Callable[[st.DrawFn, Path], list[str]]] = {
    "cluster": cluster_case, "hf-config": hf_case, "plan": plan_case,
    "measurements-csv": csv_case, "flags": flags_case,
}
