"""Rich output for estimates and validation tables (renders records; computes nothing)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from ultracluster.units import DAY_S, GIB, human_bytes

_LABELS = {
    "compute": "compute (fwd+bwd)", "recompute": "recomputation", "tp_exposed": "TP comm (exposed)",
    "cp_exposed": "CP ring (exposed)", "ep_exposed": "EP all-to-all (exposed)",
    "pp": "PP send/recv", "bubble": "pipeline bubble", "dp_exposed": "DP/ZeRO comm (exposed)",
    "optimizer": "optimizer step", "site_sync_exposed": "site sync (exposed)",
}


def _si(x: float, unit: str) -> str:
    for p, s in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= p:
            return f"{x / p:,.2f} {s}{unit}"
    return f"{x:,.2f} {unit}"


def print_estimate(out: Console, d: dict[str, Any]) -> None:
    p = d["plan"]
    s = p["site_sync"]
    out.print(f"[b]{d['model']}[/b] on [b]{d['cluster']}[/b]: {d['num_chips']:,} x {d['chip']}, "
              f"tp{p['tp']} pp{p['pp']} vpp{p['vpp']} dp{p['dp']} cp{p['cp']} ep{p['ep']}, "
              f"mb {p['micro_batch']}, batch {p['global_batch']} x {p['seq_len']}, "
              f"ZeRO-{p['zero']}, recompute {p['recompute']}, {p['precision']}, "
              f"site sync {s['mode']}")
    t = Table(title="One step")
    t.add_column("part")
    t.add_column("seconds", justify="right")
    t.add_column("share", justify="right")
    step = d["step_time_s"]
    for k, v in d["breakdown"].items():
        if v > 0:
            t.add_row(_LABELS.get(k, k), f"{v:.4f}", f"{v / step:.1%}")
    t.add_row("[b]step[/b]", f"[b]{step:.4f}[/b]", "100%")
    m = Table(title="Memory per chip")
    m.add_column("kind")
    m.add_column("GiB", justify="right")
    for k, v in d["memory_breakdown"].items():
        m.add_row(k, f"{v / GIB:.1f}")
    m.add_row("[b]total[/b]", f"[b]{d['memory_per_chip_bytes'] / GIB:.1f}[/b]")
    r = Table(title="The run")
    r.add_column("figure")
    r.add_column("value", justify="right")
    ttt = d["time_to_train_s"]
    rows = [
        ("tokens/s (per chip)", f"{d['tokens_per_s']:,.0f} ({d['tokens_per_s_per_chip']:,.1f})"),
        ("MFU / HFU", f"{d['mfu']:.1%} / {d['hfu']:.1%}"),
        ("power (facility)", _si(d["power_w"], "W")),
        ("energy per token", f"{d['energy_per_token_j']:.3f} J"),
        ("goodput (MTBF, checkpoint every)",
         f"{d['goodput']:.1%} ({d['mtbf_s'] / 60:,.1f} min, {d['checkpoint_interval_s']:,.0f} s)"),
        (f"time to train {d['tokens']:.3g} tokens",
         "n/a" if ttt is None else f"{ttt / DAY_S:,.1f} days"),
        ("energy to train", "n/a" if d["energy_to_train_j"] is None
         else f"{d['energy_to_train_j'] / 3.6e12:,.2f} GWh"),
        (f"cost ({d['cost_basis']})", "n/a" if d["cost_usd"] is None
         else f"${d['cost_usd'] / 1e6:,.1f} M"),
        ("cross-site bytes per step", human_bytes(d["cross_site_bytes_per_step"])),
    ]
    bw = d["site_sync_bandwidth_5pct_bytes_per_s"]
    if d["cross_site_bytes_per_step"] > 0:
        rows.append(("inter-site link for <= 5% of step",
                     "unreachable" if bw is None else _si(bw * 8, "b/s")))
    for k, v in rows:
        r.add_row(k, v)
    for table in (t, m, r):
        out.print(table)


def print_validation(out: Console, d: dict[str, Any]) -> None:
    t = Table(title="Predicted vs measured tokens/s per chip")
    for col in ("id", "measured", "predicted", "error", "note"):
        t.add_column(col, justify="left" if col in ("id", "note") else "right")
    for r in d["rows"]:
        meas, pred, err = (r["measured_tokens_per_s_per_chip"],
                           r["predicted_tokens_per_s_per_chip"], r["error_pct"])
        note = r.get("skipped") or ("unmeasured" if r.get("unmeasured") else "")
        note = note or r.get("chosen", {}).get("memory_warning", "")
        t.add_row(r["id"], "-" if meas is None else f"{meas:,.1f}",
                  "-" if pred is None else f"{pred:,.1f}",
                  "-" if err is None else f"{err:+.1f}%", note)
    out.print(t)
    s = d["summary"]
    out.print(f"n = {s['n']}: median |error| {s['median_abs_error_pct']:.1f}%, mean "
              f"{s['mean_abs_error_pct']:.1f}%, p90 {s['p90_abs_error_pct']:.1f}%, max "
              f"{s['max_abs_error_pct']:.1f}%")
