"""Users' own clusters as TOML files: load with clear errors, and write back (round-trip).

The format (every field is checked; unknown fields are errors)::

    name = "two-sites"
    description = "optional"
    assumptions = ["optional notes shown by `show cluster`"]

    [[sites]]
    name = "a"                      # unique
    system = "trn2-ultraserver"     # a catalogue key (`ultracluster show systems`)
    num_pods = 100                  # how many systems
    chip = "trn2"                   # optional: another catalogue chip in the same system
    fabric_gbps_per_pod = 12800     # optional, default the system's NICs
    fabric_latency_us = 10          # optional, default the system's scale-out latency
    oversubscription = 1.0          # optional, >= 1
    pue = 1.15                      # optional
    electricity_usd_per_kwh = 0.08  # optional
    location = "Indiana"            # optional

    [[links]]                       # one per pair of sites
    sites = ["a", "b"]
    distance_km = 300
    bandwidth_gbps = 102400
    latency_ms = 1.6                # optional: default distance x 4.9 us/km
    assumption = "why these figures"  # optional
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import tomli_w

from ultracluster.cluster.model import (
    DEFAULT_ELECTRICITY_USD_PER_KWH,
    DEFAULT_PUE,
    Cluster,
    InterSiteLink,
    Site,
)
from ultracluster.cluster.presets import PRESETS, get_preset
from ultracluster.errors import ConfigError
from ultracluster.fields import (
    check_keys,
    get_float,
    get_int,
    get_str,
    read_toml,
    table,
)
from ultracluster.hardware.chips import get_chip
from ultracluster.hardware.links import fibre_latency_s
from ultracluster.hardware.systems import get_system
from ultracluster.units import GBPS, MS, US

_SITE_KEYS = {"name", "system", "num_pods", "chip", "fabric_gbps_per_pod", "fabric_latency_us",
              "oversubscription", "pue", "electricity_usd_per_kwh", "location",
              "chip_overrides", "system_overrides", "efficiency"}
CHIP_OVERRIDES = ("peak_flops_fp32", "peak_flops_bf16", "hbm_bytes", "hbm_bytes_per_s",
                  "scale_up_bytes_per_s", "tdp_w", "idle_w")
SYSTEM_OVERRIDES = ("num_chips", "scale_up_bytes_per_s", "scale_up_latency_s",
                    "nic_bytes_per_s", "scale_out_latency_s")
EFFICIENCY_KEYS = ("matmul_eff_max", "matmul_half_dim", "fp8_eff_ratio", "attention_eff_ratio",
                   "memory_eff", "scale_up_eff", "scale_out_eff", "layer_overhead_s")
_LINK_KEYS = {"sites", "distance_km", "bandwidth_gbps", "latency_ms", "assumption"}
_TOP_KEYS = {"name", "description", "assumptions", "sites", "links"}


def load_cluster(name_or_path: str) -> Cluster:
    """A preset by name, or a cluster TOML file by path."""
    if name_or_path in PRESETS:
        return get_preset(name_or_path)
    if name_or_path.endswith(".toml") or Path(name_or_path).exists():
        return cluster_from_dict(read_toml(name_or_path), where=name_or_path)
    return get_preset(name_or_path)


def cluster_from_dict(d: Any, *, where: str = "cluster") -> Cluster:
    d = table(d, where)
    check_keys(d, _TOP_KEYS, where)
    sites_raw = d.get("sites")
    if not isinstance(sites_raw, list) or not sites_raw:
        raise ConfigError(f"{where}: needs at least one [[sites]] table")
    sites = tuple(_site(s, f"{where}: sites[{i}]") for i, s in enumerate(sites_raw))
    links_raw = d.get("links", [])
    if not isinstance(links_raw, list):
        raise ConfigError(f"{where}: links must be a list of [[links]] tables")
    links = tuple(_link(k, f"{where}: links[{i}]") for i, k in enumerate(links_raw))
    notes = d.get("assumptions", [])
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise ConfigError(f"{where}.assumptions: expected a list of strings")
    return Cluster(
        name=get_str(d, "name", where), description=get_str(d, "description", where, ""),
        sites=sites, links=links, assumptions=tuple(notes),
    )


def _site(s: Any, where: str) -> Site:
    s = table(s, where)
    check_keys(s, _SITE_KEYS, where)
    system = get_system(get_str(s, "system", where))
    if "chip" in s:
        system = replace(system, chip=get_chip(get_str(s, "chip", where)))
    chip_o = _numbers(s.get("chip_overrides", {}), CHIP_OVERRIDES, f"{where}.chip_overrides")
    if chip_o:
        chip = replace(system.chip, **chip_o)  # type: ignore[arg-type]  # keys checked above
        system = replace(system, chip=chip)
    sys_o = _numbers(s.get("system_overrides", {}), SYSTEM_OVERRIDES,
                     f"{where}.system_overrides")
    if "num_chips" in sys_o:
        sys_o["num_chips"] = int(sys_o["num_chips"])
        sys_o["num_nodes"] = 1
        sys_o["topology"] = "switch"  # type: ignore[assignment]  # a measured flat pod
        sys_o["torus_dims"] = ()  # type: ignore[assignment]  # as above
    if sys_o:
        system = replace(system, **sys_o)  # type: ignore[arg-type]  # keys checked above
    eff = _numbers(s.get("efficiency", {}), EFFICIENCY_KEYS, f"{where}.efficiency")
    fabric = get_float(s, "fabric_gbps_per_pod", where, system.nic_bytes_per_s / GBPS,
                       positive=True) * GBPS
    return Site(
        name=get_str(s, "name", where), system=system,
        num_pods=get_int(s, "num_pods", where),
        fabric_bytes_per_s_per_pod=fabric,
        fabric_latency_s=get_float(s, "fabric_latency_us", where,
                                   system.scale_out_latency_s / US) * US,
        oversubscription=get_float(s, "oversubscription", where, 1.0, minimum=1.0),
        pue=get_float(s, "pue", where, DEFAULT_PUE, minimum=1.0),
        electricity_usd_per_kwh=get_float(s, "electricity_usd_per_kwh", where,
                                          DEFAULT_ELECTRICITY_USD_PER_KWH),
        location=get_str(s, "location", where, ""),
        efficiency=tuple(sorted(eff.items())),
    )


def _numbers(d: Any, allowed: tuple[str, ...], where: str) -> dict[str, float]:
    d = table(d, where)
    check_keys(d, set(allowed), where)
    return {k: get_float(d, k, where, positive=k not in ("idle_w", "scale_up_latency_s",
                                                        "scale_out_latency_s",
                                                        "layer_overhead_s"))
            for k in d}


def _link(k: Any, where: str) -> InterSiteLink:
    k = table(k, where)
    check_keys(k, _LINK_KEYS, where)
    ends = k.get("sites")
    if not (isinstance(ends, list) and len(ends) == 2 and all(isinstance(e, str) for e in ends)):
        raise ConfigError(f"{where}.sites: expected two site names, got {ends!r}")
    distance = get_float(k, "distance_km", where)
    latency = get_float(k, "latency_ms", where, fibre_latency_s(distance) / MS) * MS
    return InterSiteLink(
        site_a=ends[0], site_b=ends[1], distance_km=distance,
        bandwidth_bytes_per_s=get_float(k, "bandwidth_gbps", where, positive=True) * GBPS,
        latency_s=latency, assumption=get_str(k, "assumption", where, ""),
    )


def cluster_to_dict(c: Cluster) -> dict[str, Any]:
    """The TOML-ready form of `c` (systems by catalogue key)."""
    sites = []
    for s in c.sites:
        row: dict[str, Any] = {"name": s.name, "system": s.system.name, "num_pods": s.num_pods}
        if s.system.chip.name != get_system(s.system.name).chip.name:
            row["chip"] = s.system.chip.name
        row |= {
            "fabric_gbps_per_pod": s.fabric_bytes_per_s_per_pod / GBPS,
            "fabric_latency_us": s.fabric_latency_s / US,
            "oversubscription": s.oversubscription, "pue": s.pue,
            "electricity_usd_per_kwh": s.electricity_usd_per_kwh, "location": s.location,
        }
        base = get_system(s.system.name)
        base_chip = get_chip(s.system.chip.name)
        chip_o = {k: getattr(s.system.chip, k) for k in CHIP_OVERRIDES
                  if getattr(s.system.chip, k) != getattr(base_chip, k)}
        sys_o = {k: getattr(s.system, k) for k in SYSTEM_OVERRIDES
                 if getattr(s.system, k) != getattr(base, k)}
        if chip_o:
            row["chip_overrides"] = chip_o
        if sys_o:
            row["system_overrides"] = sys_o
        if s.efficiency:
            row["efficiency"] = dict(s.efficiency)
        sites.append(row)
    links = [
        {"sites": [k.site_a, k.site_b], "distance_km": k.distance_km,
         "bandwidth_gbps": k.bandwidth_bytes_per_s / GBPS, "latency_ms": k.latency_s / MS,
         "assumption": k.assumption}
        for k in c.links
    ]
    out: dict[str, Any] = {"name": c.name, "description": c.description,
                           "assumptions": list(c.assumptions), "sites": sites}
    if links:
        out["links"] = links
    return out


def cluster_to_toml(c: Cluster) -> str:
    return tomli_w.dumps(cluster_to_dict(c))
