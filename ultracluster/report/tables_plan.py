"""Planner records as JSON documents and rich tables (renders; computes nothing new)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from ultracluster.plan import SiteSync
from ultracluster.search import SearchResult
from ultracluster.units import DAY_S, GIB, human_bytes
from ultracluster.workload.job import TrainingJob


def search_doc(res: SearchResult, *, cluster: str, model: str, job: TrainingJob
               ) -> dict[str, Any]:
    """A search's JSON document: the job, the ranked plans, the Pareto front, the counts."""
    return {
        "cluster": cluster, "model": model, "objective": res.objective,
        "workload": {"tokens": job.tokens, "seq_len": job.seq_len,
                     "global_batch_seqs": job.global_batch_seqs},
        "plans": [e.to_json() for e in res.plans],
        "site_sync_variants": res.site_sync_variants,
        "pareto": [e.to_json() for e in res.pareto],
        "stats": res.stats.to_json(),
    }


def _layout(p: dict[str, Any]) -> str:
    d = [f"tp{p['tp']}", f"pp{p['pp']}" + (f"x{p['vpp']}" if p["vpp"] > 1 else ""),
         f"dp{p['dp']}"]
    d += [f"{k}{p[k]}" for k in ("cp", "ep") if p[k] > 1]
    sync = SiteSync(**p["site_sync"]).describe()
    return (" ".join(d) + f" mb{p['micro_batch']} Z{p['zero']} {p['recompute']} "
            f"{p['precision']} | {sync}")


def _num(x: float | None, scale: float, fmt: str) -> str:
    return "n/a" if x is None else fmt.format(x / scale)


def plans_table(plans: list[dict[str, Any]], title: str) -> Table:
    """Ranked plans as a table (one row per estimate document)."""
    t = Table(title=title)
    for col in ("#", "layout", "chips", "step s", "MFU", "mem GiB", "days", "GWh", "$M",
                "goodput", "x-site/step"):
        t.add_column(col, justify="left" if col == "layout" else "right")
    for i, e in enumerate(plans, 1):
        t.add_row(str(i), _layout(e["plan"]), f"{e['num_chips']:,}", f"{e['step_time_s']:.2f}",
                  f"{e['mfu']:.1%}", f"{e['memory_per_chip_bytes'] / GIB:.1f}",
                  _num(e["time_to_train_s"], DAY_S, "{:,.1f}"),
                  _num(e["energy_to_train_j"], 3.6e12, "{:,.1f}"),
                  _num(e["cost_usd"], 1e6, "{:,.1f}"), f"{e['goodput']:.1%}",
                  human_bytes(e["cross_site_bytes_per_step"]))
    return t


def print_search(out: Console, doc: dict[str, Any], *, saved: str | None = None) -> None:
    """`plan`'s human output: the best plans, the Pareto front and the search's counts."""
    w = doc["workload"]
    out.print(f"Planning [b]{doc['model']}[/b] on [b]{doc['cluster']}[/b]: {w['tokens']:.3g} "
              f"tokens, batch {w['global_batch_seqs']:,} x {w['seq_len']:,} tokens, ranked "
              f"by {doc['objective']}-to-train")
    out.print(plans_table(doc["plans"], f"Top {len(doc['plans'])} plans"))
    out.print(plans_table(doc["pareto"][:10], "Pareto front (time, energy, cost)"))
    s = doc["stats"]
    bad = ", ".join(f"{k} {v:,}" for k, v in sorted(s["infeasible"].items()))
    out.print(f"{s['candidates']:,} candidates, {s['evaluated']:,} evaluated, "
              f"{s['kept']:,} fit; infeasible: {bad}; {s['seconds']:.2f} s "
              f"({s['plans_per_s']:,.0f} plans/s)")
    cost_basis = doc["plans"][0]["cost_basis"]
    if cost_basis != "chip-hours":
        out.print("[yellow]cost is electricity only: the catalogue has no price for this "
                  "system (--price-per-chip-hour sets one)[/yellow]")
    if saved:
        out.print(f"best plan written to {saved}")


def compare_doc(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """`compare`'s JSON document: each cluster's best plan side by side."""
    base = docs[0]["plans"][0]
    rows = []
    for d in docs:
        b = d["plans"][0]
        rows.append({"cluster": d["cluster"], "best": b,
                     "speedup_vs_first": base["time_to_train_s"] / b["time_to_train_s"],
                     "energy_vs_first": b["energy_to_train_j"] / base["energy_to_train_j"],
                     "cost_vs_first": b["cost_usd"] / base["cost_usd"]})
    return {"model": docs[0]["model"], "workload": docs[0]["workload"], "clusters": rows}


def print_compare(out: Console, doc: dict[str, Any]) -> None:
    """`compare`'s human output."""
    t = Table(title=f"Best plan for {doc['model']} on each cluster")
    for col in ("cluster", "layout", "chips", "days", "GWh", "$M", "speed-up", "energy",
                "cost"):
        t.add_column(col, justify="left" if col in ("cluster", "layout") else "right")
    for r in doc["clusters"]:
        b = r["best"]
        t.add_row(r["cluster"], _layout(b["plan"]), f"{b['num_chips']:,}",
                  _num(b["time_to_train_s"], DAY_S, "{:,.1f}"),
                  _num(b["energy_to_train_j"], 3.6e12, "{:,.1f}"),
                  _num(b["cost_usd"], 1e6, "{:,.1f}"), f"{r['speedup_vs_first']:.2f}x",
                  f"{r['energy_vs_first'] - 1:+.0%}", f"{r['cost_vs_first'] - 1:+.0%}")
    out.print(t)


def print_sweep(out: Console, doc: dict[str, Any]) -> None:
    """`sweep`'s human output: the best plan at each value."""
    t = Table(title=f"{doc['model']} on {doc['cluster']}: best plan as {doc['field']} varies")
    for col in (doc["field"], "layout", "days", "GWh", "x-site/step"):
        t.add_column(col, justify="left" if col == "layout" else "right")
    for p in doc["points"]:
        b = p["best"]
        t.add_row(p["raw"], _layout(b["plan"]), _num(b["time_to_train_s"], DAY_S, "{:,.1f}"),
                  _num(b["energy_to_train_j"], 3.6e12, "{:,.1f}"),
                  human_bytes(b["cross_site_bytes_per_step"]))
    out.print(t)
    out.print(f"figure: {doc['figure']}")
