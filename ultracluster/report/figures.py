"""Matplotlib figures (PNG, written atomically). Needs the ``plot`` extra."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ultracluster.errors import ConfigError
from ultracluster.files import atomic_write_bytes
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
