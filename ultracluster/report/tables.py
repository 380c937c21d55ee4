"""Rich tables for people. Every function takes records (or their dicts) and prints."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from ultracluster.units import GBPS, GIB, TFLOPS, US, human_count


def _num(x: float | None, scale: float = 1.0, fmt: str = "{:,.1f}") -> str:
    return "n/a" if x is None else fmt.format(x / scale)


def _flag(src: dict[str, str] | None) -> str:
    return "" if src is None else f" [dim]({src['flag'][0].upper()})[/dim]"


def chips_table(chips: list[dict[str, Any]]) -> Table:
    """`show chips`: one row per chip."""
    t = Table(title="Chips (dense peaks; O official, M measured, E estimate, D derived)")
    for col in ("key", "name", "BF16 TF", "FP8 TF", "GEMM BF16", "GEMM FP8", "HBM GiB",
                "HBM TB/s", "link GB/s", "TDP W"):
        t.add_column(col, justify="left" if col in ("key", "name") else "right")
    for c in chips:
        s = c["sources"]
        t.add_row(c["name"], c["display_name"],
                  _num(c["peak_flops_bf16"], TFLOPS, "{:,.0f}") + _flag(s["peak_flops_bf16"]),
                  _num(c["peak_flops_fp8"], TFLOPS, "{:,.0f}") + _flag(s["peak_flops_fp8"]),
                  _num(c["gemm_fraction_bf16"], 0.01, "{:.0f}%") + _flag(s["gemm_fraction_bf16"]),
                  _num(c["gemm_fraction_fp8"], 0.01, "{:.0f}%") + _flag(s["gemm_fraction_fp8"]),
                  _num(c["hbm_bytes"], GIB, "{:,.0f}") + _flag(s["hbm_bytes"]),
                  _num(c["hbm_bytes_per_s"], 1e12, "{:.2f}") + _flag(s["hbm_bytes_per_s"]),
                  _num(c["scale_up_bytes_per_s"], 1e9, "{:,.0f}")
                  + _flag(s["scale_up_bytes_per_s"]),
                  _num(c["tdp_w"], 1, "{:,.0f}") + _flag(s["tdp_w"]))
    return t


def systems_table(systems: list[dict[str, Any]]) -> Table:
    """`show systems`: one row per system."""
    t = Table(title="Systems (one scale-up domain each)")
    for col in ("key", "chip", "chips", "topology", "scale-up GB/s/chip", "NIC Gb/s",
                "scale-out us", "$/h"):
        t.add_column(col, justify="left" if col in ("key", "chip", "topology") else "right")
    for s in systems:
        topo = s["topology"] + (f" {'x'.join(map(str, s['torus_dims']))}" if s["torus_dims"]
                                else "")
        t.add_row(s["name"], s["chip"], str(s["num_chips"]), topo,
                  _num(s["scale_up_bytes_per_s"], 1e9, "{:,.0f}"),
                  _num(s["nic_bytes_per_s"], GBPS, "{:,.0f}"),
                  _num(s["scale_out_latency_s"], US, "{:.0f}"),
                  _num(s["price_per_hour_usd"], 1, "{:,.2f}")
                  + _flag(s["sources"]["price_per_hour_usd"]))
    return t


def cluster_tables(c: dict[str, Any]) -> list[Table]:
    """`show cluster`: the cluster and its sites, then its network tiers."""
    head = Table(title=f"Cluster {c['name']}: {c['description']}")
    for col in ("site", "location", "system", "pods", "chips", "BF16 PF/s", "PUE"):
        head.add_column(col, justify="right" if col in ("pods", "chips", "BF16 PF/s", "PUE")
                        else "left")
    for s in c["sites"]:
        head.add_row(s["name"], s["location"], s["system"], f"{s['num_pods']:,}",
                     f"{s['num_chips']:,}", f"{s['peak_flops_bf16'] / 1e15:,.0f}", f"{s['pue']}")
    head.add_row("[b]total[/b]", "", "", "", f"[b]{c['num_chips']:,}[/b]",
                 f"[b]{c['peak_flops_bf16'] / 1e15:,.0f}[/b]", "")
    tiers = Table(title="Network tiers (per chip; inter-site per link)")
    for col in ("tier", "where", "bandwidth Gb/s", "latency us"):
        tiers.add_column(col, justify="right" if "bandwidth" in col or "latency" in col
                         else "left")
    seen: set[tuple[str, float, float]] = set()
    for tr in c["tiers"]:
        key = (tr["tier"], tr["bandwidth_bytes_per_s"], tr["latency_s"])
        if key in seen:  # 21 identical campus links collapse to one row
            continue
        seen.add(key)
        tiers.add_row(tr["tier"], tr["where"], f"{tr['bandwidth_bytes_per_s'] / GBPS:,.0f}",
                      f"{tr['latency_s'] / US:,.1f}")
    return [head, tiers]


def models_table(models: list[dict[str, Any]]) -> Table:
    """`show models`: one row per model."""
    t = Table(title="Models (training FLOPs/token at the model's context, causal attention)")
    for col in ("key", "layers", "hidden", "heads/kv", "params", "active", "GFLOP/token"):
        t.add_column(col, justify="left" if col == "key" else "right")
    for m in models:
        t.add_row(m["name"], str(m["num_layers"]), str(m["hidden"]),
                  f"{m['num_heads']}/{m['num_kv_heads']}", human_count(m["params"]),
                  human_count(m["active_params"]), f"{m['flops_per_token'] / 1e9:,.1f}")
    return t


def print_tables(console: Console, *tables: Table) -> None:
    """Print each table, a blank line between."""
    for t in tables:
        console.print(t)
