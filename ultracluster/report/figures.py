"""Matplotlib figures (PNG, written atomically). Needs the ``plot`` extra."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ultracluster.errors import ConfigError
from ultracluster.files import atomic_write_bytes
from ultracluster.simulate.estimate import BREAKDOWN_PARTS
from ultracluster.units import DAY_S


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("figures need matplotlib: pip install 'ultracluster[plot]'") from None
    return plt


def _save(fig: Any, path: str | Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())


def pareto_figure(doc: dict[str, Any], path: str | Path) -> None:
    """Time vs energy to train over the Pareto front, cost as colour."""
    plt = _pyplot()
    pts = doc["pareto"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    days = [p["time_to_train_s"] / DAY_S for p in pts]
    gwh = [p["energy_to_train_j"] / 3.6e12 for p in pts]
    cost = [p["cost_usd"] / 1e6 for p in pts]
    sc = ax.scatter(days, gwh, c=cost, cmap="viridis", s=40)
    fig.colorbar(sc, ax=ax, label="cost ($M)")
    ax.set_xlabel("time to train (days)")
    if days and max(days) / max(min(days), 1e-30) > 20:
        ax.set_xscale("log")
    ax.set_ylabel("energy to train (GWh)")
    ax.set_title(f"{doc['model']} on {doc['cluster']}: Pareto front")
    ax.grid(alpha=0.3)
    _save(fig, path)
    plt.close(fig)


def sweep_figure(doc: dict[str, Any], path: str | Path) -> None:
    """Time and energy to train of the best plan against the varied field."""
    plt = _pyplot()
    xs = [p["value"] for p in doc["points"]]
    days = [p["best"]["time_to_train_s"] / DAY_S for p in doc["points"]]
    gwh = [p["best"]["energy_to_train_j"] / 3.6e12 for p in doc["points"]]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(xs, days, "o-", color="tab:blue", label="time to train")
    ax.set_xlabel(doc["field"])
    ax.set_ylabel("time to train (days)", color="tab:blue")
    if max(xs) / max(min(xs), 1e-30) > 20:
        ax.set_xscale("log")
    ax2 = ax.twinx()
    ax2.plot(xs, gwh, "s--", color="tab:red", label="energy to train")
    ax2.set_ylabel("energy to train (GWh)", color="tab:red")
    ax.set_title(f"{doc['model']} on {doc['cluster']}: best plan vs {doc['field']}")
    ax.grid(alpha=0.3)
    _save(fig, path)
    plt.close(fig)


_COLOURS = dict(zip(BREAKDOWN_PARTS, ("#4c72b0", "#8172b2", "#dd8452", "#937860", "#da8bc3",
                                      "#8c8c8c", "#c44e52", "#55a868", "#64b5cd", "#ccb974"),
                    strict=True))
_BUBBLE = BREAKDOWN_PARTS.index("bubble")


def step_figure(doc: dict[str, Any], path: str | Path) -> None:
    """A timeline of one step per pipeline stage, and the memory breakdown per chip.

    Each stage runs its share of micro-batches (compute and exposed communication), waits in
    the bubble at its end of the pipeline (stage i idles i / (p-1) of the bubble before it
    starts and the rest after it ends, as in 1F1B), then all stages do the data-parallel
    exchange, the optimizer step and the site sync.
    """
    plt = _pyplot()
    b = doc["breakdown"]
    pp = int(doc["plan"]["pp"])
    fig, (ax, mx) = plt.subplots(1, 2, figsize=(11, 0.5 * min(pp, 16) + 2.5),
                                 gridspec_kw={"width_ratios": [3, 1]})
    stages = list(range(min(pp, 16)))
    for i in stages:
        frac = i / (pp - 1) if pp > 1 else 0.0
        left = 0.0
        segs = [("bubble", b["bubble"] * frac)] + [
            (k, b[k]) for k in BREAKDOWN_PARTS[:_BUBBLE]] + [
            ("bubble", b["bubble"] * (1 - frac))] + [
            (k, b[k]) for k in BREAKDOWN_PARTS[_BUBBLE + 1:]]
        for k, w in segs:
            if w > 0:
                ax.barh(i, w, left=left, color=_COLOURS[k], edgecolor="none",
                        label=k if i == 0 else None)
            left += w
    ax.invert_yaxis()
    ax.set_yticks(stages, [f"stage {i}" for i in stages])
    ax.set_xlabel("seconds")
    ax.set_title(f"one step: {doc['step_time_s']:.3f} s")
    handles, labels = ax.get_legend_handles_labels()
    seen = dict(zip(labels, handles))
    ax.legend(seen.values(), seen.keys(), loc="upper center", bbox_to_anchor=(0.5, -0.18),
              ncol=5, fontsize=8, frameon=False)
    mem = doc["memory_breakdown"]
    bottom = 0.0
    for k, v in mem.items():
        mx.bar(0, v / 2**30, bottom=bottom, label=k)
        bottom += v / 2**30
    mx.set_xticks([])
    mx.set_ylabel("GiB per chip")
    mx.set_title("memory")
    mx.legend(fontsize=8, frameon=False)
    _save(fig, path)
    plt.close(fig)


def validation_figure(doc: dict[str, Any], path: str | Path) -> None:
    """Predicted vs measured tokens/s per chip, log-log, with the identity line."""
    plt = _pyplot()
    rows = [r for r in doc["rows"] if r.get("measured_tokens_per_s_per_chip")
            and r.get("predicted_tokens_per_s_per_chip")]
    xs = [r["measured_tokens_per_s_per_chip"] for r in rows]
    ys = [r["predicted_tokens_per_s_per_chip"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.scatter(xs, ys, s=18, color="#4c72b0")
    lo, hi = min(xs + ys) * 0.7, max(xs + ys) * 1.4
    ax.plot([lo, hi], [lo, hi], "k-", lw=1, label="identity")
    ax.plot([lo, hi], [lo * 1.25, hi * 1.25], "k:", lw=0.8, label="+/- 25%")
    ax.plot([lo, hi], [lo / 1.25, hi / 1.25], "k:", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("measured tokens/s per chip")
    ax.set_ylabel("predicted tokens/s per chip")
    s = doc["summary"]
    ax.set_title(f"{s['n']} published runs: median |error| {s['median_abs_error_pct']:.1f}%")
    ax.legend(frameon=False)
    _save(fig, path)
    plt.close(fig)
