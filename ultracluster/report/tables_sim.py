"""Rich output for estimates and validation tables (renders records; computes nothing)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from ultracluster.simulate.estimate import BREAKDOWN_PARTS
from ultracluster.units import DAY_S, GIB, human_bytes

_LABELS = dict(zip(BREAKDOWN_PARTS, (
    "compute (fwd+bwd)", "recomputation", "TP comm (exposed)", "CP ring (exposed)",
    "EP all-to-all (exposed)", "PP send/recv", "pipeline bubble", "DP/ZeRO comm (exposed)",
    "optimizer step", "site sync (exposed)"), strict=True))


def _si(x: float, unit: str) -> str:
    for p, s in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= p:
            return f"{x / p:,.2f} {s}{unit}"
    return f"{x:,.2f} {unit}"


def print_estimate(out: Console, d: dict[str, Any]) -> None:
    """`simulate`'s human output: the plan, one step's parts, memory per chip, the run."""
    p = d["plan"]
    s = p["site_sync"]
    early = " (stops early)" if p.get("recompute_early_stop") and p["recompute"] == "full" else ""
    out.print(f"[b]{d['model']}[/b] on [b]{d['cluster']}[/b]: {d['num_chips']:,} x {d['chip']}, "
              f"tp{p['tp']} pp{p['pp']} vpp{p['vpp']} dp{p['dp']} cp{p['cp']} ep{p['ep']}, "
              f"mb {p['micro_batch']}, batch {p['global_batch']} x {p['seq_len']}, "
              f"ZeRO-{p['zero']}, recompute {p['recompute']}{early}, {p['precision']}, "
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
    iv = d.get("interval")
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
    if iv:
        lo, hi = iv["step_time_s"]
        pct = f"{iv['level']:.0%}"
        line = f"step {step:.3g} s ({lo:.3g}-{hi:.3g}, {pct})"
        if iv["time_to_train_s"]:
            tl, th = iv["time_to_train_s"]
            line += f", time to train {ttt / DAY_S:,.1f} days ({tl / DAY_S:,.1f}-{th / DAY_S:,.1f}, {pct})"
        out.print(f"{line}: interval from the {iv['basis']}")


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:+.1f}%"


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:,.1f}"


def _summary_line(name: str, s: dict[str, Any]) -> str:
    if not s["n"]:
        return f"{name}: no row with both a measurement and a prediction"
    return (f"{name} (n = {s['n']}): median |error| {s['median_abs_error_pct']:.1f}%, mean "
            f"{s['mean_abs_error_pct']:.1f}%, p90 {s['p90_abs_error_pct']:.1f}%, max "
            f"{s['max_abs_error_pct']:.1f}%")


def print_validation(out: Console, d: dict[str, Any]) -> None:
    """`validate`'s human output: predicted vs measured per row (in-sample and
    leave-one-source-out), then the summaries."""
    t = Table(title="Predicted vs measured tokens/s per chip (in-sample and leave-one-source-out)")
    for col in ("id", "framework", "measured", "in-sample", "error", "LOO", "LOO error",
                "80% interval", "silent settings range", "note"):
        t.add_column(col, justify="left" if col in ("id", "framework", "note") else "right")
    for r in d["rows"]:
        note = r.get("skipped") or ("unmeasured" if r.get("unmeasured") else "")
        ch = r.get("chosen", {})
        note = note or ch.get("memory_warning", "") or ch.get("default_did_not_fit", "")
        if r.get("flagged"):
            note = ("flagged (not fitted); " + note).rstrip("; ")
        lo_ = r.get("loo", {})
        iv, sr = r.get("interval"), r.get("silent_range")
        t.add_row(r["id"], r.get("framework", ""), _num(r["measured_tokens_per_s_per_chip"]),
                  _num(r["predicted_tokens_per_s_per_chip"]), _pct(r["error_pct"]),
                  _num(lo_.get("predicted_tokens_per_s_per_chip")), _pct(lo_.get("error_pct")),
                  "-" if not iv else f"{iv['lo']:,.1f}-{iv['hi']:,.1f}",
                  "-" if not sr else f"{sr['lo']:,.1f}-{sr['hi']:,.1f}", note)
    out.print(t)
    out.print(_summary_line("in-sample, all rows", d["summary"]))
    lo = d.get("loo")
    if lo:
        out.print(_summary_line("leave-one-source-out, all rows", lo["summary"]))
        out.print(_summary_line("leave-one-source-out, unflagged rows", lo["clean_summary"]))
        if lo["with_interval"]:
            out.print(f"80% intervals contain the measurement on {lo['inside']} of "
                      f"{lo['with_interval']} unflagged rows ({lo['coverage']:.0%})")
