"""A self-contained HTML report: figures embedded as data URIs, tables, no external files.

The page marks ``<body data-images="loaded:N">`` once every image has decoded, which a
headless browser test reads back.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from ultracluster.files import atomic_write_text
from ultracluster.units import DAY_S, GIB

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}
img{max-width:100%;border:1px solid #eee}
.note{color:#666;font-size:13px}
"""
_SCRIPT = """
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const ok = imgs.every(i => i.complete && i.naturalWidth > 0);
  document.body.dataset.images = ok ? 'loaded:' + imgs.length : 'broken';
});
"""


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def _plan_rows(plans: list[dict[str, Any]]) -> list[list[str]]:
    from ultracluster.report.tables_plan import _layout

    return [[_layout(e["plan"]), f"{e['num_chips']:,}", f"{e['step_time_s']:.2f}",
             f"{e['mfu']:.1%}", f"{e['memory_per_chip_bytes'] / GIB:.1f}",
             f"{e['time_to_train_s'] / DAY_S:,.1f}", f"{e['energy_to_train_j'] / 3.6e12:,.1f}",
             f"{e['cost_usd'] / 1e6:,.1f}", f"{e['goodput']:.1%}",
             f"{e['cross_site_bytes_per_step'] / 2**30:,.2f}"] for e in plans]


PLAN_HEAD = ["layout", "chips", "step s", "MFU", "GiB/chip", "days", "GWh", "$M", "goodput",
             "x-site GiB/step"]


def render(*, cluster: dict[str, Any], search: dict[str, Any], by_sync: dict[str, Any],
           validation: dict[str, Any], figures: dict[str, Path]) -> str:
    """The whole report as one self-contained HTML page (figures inlined as PNG data)."""
    best = search["plans"][0]
    w = search["workload"]
    sites = _table(["site", "location", "system", "chips", "BF16 PF/s"],
                   [[s["name"], s["location"], s["system"], f"{s['num_chips']:,}",
                     f"{s['peak_flops_bf16'] / 1e15:,.0f}"] for s in cluster["sites"]])
    sync_rows = []
    for mode, e in by_sync.items():
        if e is None:
            sync_rows.append([mode, "no plan", "", "", ""])
            continue
        bw = e["site_sync_bandwidth_5pct_bytes_per_s"]
        sync_rows.append([mode, f"{e['time_to_train_s'] / DAY_S:,.1f}",
                          f"{e['cross_site_bytes_per_step'] / 2**30:,.2f}",
                          f"{e['breakdown']['site_sync_exposed']:.3f}",
                          "n/a" if not bw else f"{bw * 8 / 1e9:,.0f}"])
    why = (f"The best plan synchronises sites with <b>{best['plan']['site_sync']['mode']}</b>: "
           "the table compares the best plan of each mode; the last column is the inter-site "
           "link bandwidth at which the exchange would cost 5% of a step.")
    vrows = [[r["id"], "-" if r["measured_tokens_per_s_per_chip"] is None
              else f"{r['measured_tokens_per_s_per_chip']:,.1f}",
              "-" if r["predicted_tokens_per_s_per_chip"] is None
              else f"{r['predicted_tokens_per_s_per_chip']:,.1f}",
              "-" if r["error_pct"] is None else f"{r['error_pct']:+.1f}%"]
             for r in validation["rows"]]
    vs = validation["summary"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>ultracluster: {html.escape(search['model'])} on "
        f"{html.escape(cluster['name'])}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(search['model'])} on {html.escape(cluster['name'])}</h1>",
        f"<p>{html.escape(cluster['description'])}: {cluster['num_chips']:,} chips in "
        f"{cluster['num_sites']} sites. Workload: {w['tokens']:.3g} tokens, batch "
        f"{w['global_batch_seqs']:,} x {w['seq_len']:,}.</p>",
        "<h2>The cluster</h2>", sites,
        "<p class='note'>" + "<br>".join(html.escape(a) for a in cluster["assumptions"]) + "</p>",
        "<h2>Time, energy and cost to train</h2>",
        f"<p>Best plan by {html.escape(search['objective'])}: <b>"
        f"{best['time_to_train_s'] / DAY_S:,.1f} days</b>, "
        f"<b>{best['energy_to_train_j'] / 3.6e12:,.1f} GWh</b>, "
        f"<b>${best['cost_usd'] / 1e6:,.1f} M</b> ({html.escape(best['cost_basis'])}), "
        f"goodput {best['goodput']:.1%}, MFU {best['mfu']:.1%}.</p>",
        _table(PLAN_HEAD, _plan_rows(search["plans"])),
        _img(figures["step"], "one step of the best plan"),
        "<h2>Pareto front</h2>", _table(PLAN_HEAD, _plan_rows(search["pareto"][:10])),
        _img(figures["pareto"], "Pareto front"),
        "<h2>Site sync: the choice and why</h2>", f"<p>{why}</p>",
        _table(["mode", "days", "x-site GiB/step", "exposed s/step", "Gb/s for 5%"],
               sync_rows),
        "<h2>Validation against published runs</h2>",
        f"<p>{vs['n']} runs with a target: median |error| {vs['median_abs_error_pct']:.1f}%, "
        f"p90 {vs['p90_abs_error_pct']:.1f}%, max {vs['max_abs_error_pct']:.1f}%.</p>",
        _img(figures["validation"], "predicted vs measured"),
        _table(["run", "measured tok/s/chip", "predicted", "error"], vrows),
        f"<script>{_SCRIPT}</script></body></html>",
    ]
    return "\n".join(parts)


def write(out_dir: str | Path, page: str) -> Path:
    """Write `page` as ``index.html`` in the folder `out_dir`, atomically; return its path."""
    path = Path(out_dir) / "index.html"
    atomic_write_text(path, page)
    return path
