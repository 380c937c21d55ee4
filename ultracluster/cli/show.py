"""``ultracluster show``: the catalogue, clusters and models as tables or JSON."""

from __future__ import annotations

import argparse
from typing import Any

from ultracluster.cli._output import console, emit_json
from ultracluster.cli._types import whole
from ultracluster.cluster import PRESETS, get_preset, load_cluster
from ultracluster.errors import ConfigError
from ultracluster.hardware import CHIPS, SYSTEMS, get_chip, get_system
from ultracluster.report import describe, tables
from ultracluster.simulate.calibration import calibration_for
from ultracluster.workload import MODEL_PRESETS, load_model
from ultracluster.workload.job import MAX_SEQ_LEN


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``show``."""
    p = sub.add_parser("show", help="describe chips, systems, clusters, models")
    p.add_argument("what", choices=["chips", "systems", "clusters", "models",
                                    "chip", "system", "cluster", "model"])
    p.add_argument("name", nargs="?", help="key or file (for chip|system|cluster|model)")
    p.add_argument("--seq-len", type=whole(1, MAX_SEQ_LEN), default=None,
                   help="context for model FLOPs")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(handler=run_show)


def _document(what: str, name: str | None, seq_len: int | None) -> dict[str, Any]:
    if what in ("chip", "system", "cluster", "model") and not name:
        raise ConfigError(f"show {what}: give a name or a file (see `ultracluster show {what}s`)")
    if what == "chips":
        return {"chips": [describe.chip_dict(c) for c in CHIPS.values()]}
    if what == "systems":
        return {"systems": [describe.system_dict(s) for s in SYSTEMS.values()]}
    if what == "clusters":
        return {"clusters": [describe.cluster_dict(get_preset(n)) for n in PRESETS]}
    if what == "models":
        return {"models": [describe.model_dict(f(), seq_len=seq_len)
                           for f in MODEL_PRESETS.values()]}
    assert name is not None
    if what == "chip":
        chip = get_chip(name)
        return describe.chip_dict(chip) | {"calibration": calibration_for(chip.family)}
    if what == "system":
        return describe.system_dict(get_system(name))
    if what == "cluster":
        return describe.cluster_dict(load_cluster(name))
    return describe.model_dict(load_model(name), seq_len=seq_len)


def run_show(args: argparse.Namespace) -> int:
    """Describe the catalogue, a cluster or a model: rich tables, or JSON with ``--json``."""
    if args.seq_len is not None and args.seq_len <= 0:
        raise ConfigError(f"--seq-len: {args.seq_len} must be positive")
    doc = _document(args.what, args.name, args.seq_len)
    if args.json:
        emit_json(doc)
        return 0
    out = console()
    w = args.what
    if w in ("chips", "chip"):
        tables.print_tables(out, tables.chips_table(doc["chips"] if w == "chips" else [doc]))
        if w == "chip":
            for k, s in doc["sources"].items():
                out.print(f"  {k}: [b]{s['flag']}[/b] {s['ref']}")
            cal = doc.get("calibration")
            if cal:
                out.print(f"  calibration ({cal['family']}, structure {cal['structure']}): "
                          f"matmul_eff_max {cal['matmul_eff_max']:.4g} (fitted on "
                          f"{cal['fitted_on']}), attention_eff_ratio "
                          f"{cal['attention_eff_ratio']:.4g} ({cal['attention_fitted_on']}); "
                          f"{cal['file']}")
    elif w in ("systems", "system"):
        tables.print_tables(out, tables.systems_table(doc["systems"] if w == "systems"
                                                      else [doc]))
        if w == "system":
            for k, s in doc["sources"].items():
                out.print(f"  {k}: [b]{s['flag']}[/b] {s['ref']}")
    elif w == "clusters":
        for c in doc["clusters"]:
            tables.print_tables(out, *tables.cluster_tables(c))
    elif w == "cluster":
        tables.print_tables(out, *tables.cluster_tables(doc))
        for note in doc["assumptions"]:
            out.print(f"  [yellow]assumption[/yellow]: {note}")
    elif w == "models":
        tables.print_tables(out, tables.models_table(doc["models"]))
    else:
        tables.print_tables(out, tables.models_table([doc]))
    return 0
