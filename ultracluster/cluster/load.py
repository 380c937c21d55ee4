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
    check_int,
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
from ultracluster.readers import exists
from ultracluster.units import GBPS, MS, US

_SITE_KEYS = {"name", "system", "num_pods", "chip", "fabric_gbps_per_pod", "fabric_latency_us",
              "oversubscription", "pue", "electricity_usd_per_kwh", "location",
              "chip_overrides", "system_overrides", "efficiency"}

# Physical ranges (low, high) of every number a cluster file may set. They are wide (a
# CPU to a chip 1,000x today's best) but finite, so no figure can overflow the simulator.
CHIP_RANGES: dict[str, tuple[float, float]] = {
    "peak_flops_fp32": (1e6, 1e18), "peak_flops_bf16": (1e6, 1e18),
    "hbm_bytes": (1e6, 1e15), "hbm_bytes_per_s": (1e6, 1e16),
    "scale_up_bytes_per_s": (1e6, 1e16), "tdp_w": (1.0, 1e5), "idle_w": (0.0, 1e5),
}
SYSTEM_RANGES: dict[str, tuple[float, float]] = {
    "num_chips": (1, 100_000), "scale_up_bytes_per_s": (1e6, 1e16),
    "scale_up_latency_s": (0.0, 1.0), "nic_bytes_per_s": (1e6, 1e16),
    "scale_out_latency_s": (0.0, 1.0),
}
EFFICIENCY_RANGES: dict[str, tuple[float, float]] = {
    # fractions of a peak: above 1 would be faster than the hardware (MFU over 100 %)
    "matmul_eff_max": (0.0, 1.0), "fp8_eff_ratio": (0.0, 1.0),
    "attention_eff_ratio": (0.0, 1.0), "memory_eff": (0.0, 1.0),
    "scale_up_eff": (0.0, 1.0), "scale_out_eff": (0.0, 1.0),
    "matmul_half_dim": (0.0, 1e6), "layer_overhead_s": (0.0, 1.0),
}
_MAY_BE_ZERO = {"idle_w", "scale_up_latency_s", "scale_out_latency_s", "matmul_half_dim",
                "layer_overhead_s"}
CHIP_OVERRIDES = tuple(CHIP_RANGES)
SYSTEM_OVERRIDES = tuple(SYSTEM_RANGES)
EFFICIENCY_KEYS = tuple(EFFICIENCY_RANGES)
MAX_PODS = 10_000_000
FABRIC_GBPS = (1e-3, 1e8)
FABRIC_LATENCY_US = (0.0, 1e6)
MAX_OVERSUBSCRIPTION = 1000.0
MAX_USD_PER_KWH = 10.0
MAX_DISTANCE_KM = 40_075.0
"""The Earth's circumference: no fibre route between two sites is longer."""
LINK_GBPS = (0.1, 1e8)
"""100 Mbit/s (slower is not a link one trains over) to 100 Pbit/s (over 1,000 fibre pairs at
today's 64 Tbit/s C+L record)."""
MAX_LATENCY_MS = 1000.0
LIGHT_S_PER_KM = 1 / 299_792.458
"""Light in vacuum: no link (hollow-core fibre, microwave) is faster, so a link's latency is at
least its distance at c."""
_LINK_KEYS = {"sites", "distance_km", "bandwidth_gbps", "latency_ms", "assumption"}
_TOP_KEYS = {"name", "description", "assumptions", "sites", "links"}


def load_cluster(name_or_path: str) -> Cluster:
    """A preset by name, or a cluster TOML file by path."""
    if name_or_path in PRESETS:
        return get_preset(name_or_path)
    if name_or_path.endswith(".toml") or exists(name_or_path):
        return cluster_from_dict(read_toml(name_or_path), where=name_or_path)
    return get_preset(name_or_path)


def cluster_from_dict(d: Any, *, where: str = "cluster") -> Cluster:
    """A `Cluster` from a parsed TOML/JSON table, every key and value checked (`ConfigError`
    naming `where` and the field)."""
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
    chip_o = _numbers(s.get("chip_overrides", {}), CHIP_RANGES, f"{where}.chip_overrides")
    if chip_o:
        chip = replace(system.chip, **chip_o)  # type: ignore[arg-type]  # keys checked above
        system = replace(system, chip=chip)
    sys_o: dict[str, Any] = _numbers(s.get("system_overrides", {}), SYSTEM_RANGES,
                                     f"{where}.system_overrides")
    if "num_chips" in sys_o:
        sys_o["num_chips"] = check_int(sys_o["num_chips"],
                                       f"{where}.system_overrides.num_chips",
                                       maximum=int(SYSTEM_RANGES["num_chips"][1]))
        sys_o["num_nodes"] = 1
        sys_o["topology"] = "switch"  # a measured flat pod
        sys_o["torus_dims"] = ()
    if sys_o:
        system = replace(system, **sys_o)
    eff = _numbers(s.get("efficiency", {}), EFFICIENCY_RANGES, f"{where}.efficiency")
    fabric = get_float(s, "fabric_gbps_per_pod", where, system.nic_bytes_per_s / GBPS,
                       minimum=FABRIC_GBPS[0], maximum=FABRIC_GBPS[1]) * GBPS
    return Site(
        name=get_str(s, "name", where), system=system,
        num_pods=get_int(s, "num_pods", where, maximum=MAX_PODS),
        fabric_bytes_per_s_per_pod=fabric,
        fabric_latency_s=get_float(s, "fabric_latency_us", where,
                                   system.scale_out_latency_s / US,
                                   maximum=FABRIC_LATENCY_US[1]) * US,
        oversubscription=get_float(s, "oversubscription", where, 1.0, minimum=1.0,
                                   maximum=MAX_OVERSUBSCRIPTION),
        pue=get_float(s, "pue", where, DEFAULT_PUE, minimum=1.0, maximum=3.0),
        electricity_usd_per_kwh=get_float(s, "electricity_usd_per_kwh", where,
                                          DEFAULT_ELECTRICITY_USD_PER_KWH,
                                          maximum=MAX_USD_PER_KWH),
        location=get_str(s, "location", where, ""),
        efficiency=tuple(sorted(eff.items())),
    )


def _numbers(d: Any, ranges: dict[str, tuple[float, float]], where: str
             ) -> dict[str, float]:
    d = table(d, where)
    check_keys(d, set(ranges), where)
    return {k: get_float(d, k, where, minimum=ranges[k][0], maximum=ranges[k][1],
                         positive=k not in _MAY_BE_ZERO)
            for k in d}


def _link(k: Any, where: str) -> InterSiteLink:
    k = table(k, where)
    check_keys(k, _LINK_KEYS, where)
    ends = k.get("sites")
    if not (isinstance(ends, list) and len(ends) == 2 and all(isinstance(e, str) for e in ends)):
        raise ConfigError(f"{where}.sites: expected two site names, got {ends!r}")
    distance = get_float(k, "distance_km", where, maximum=MAX_DISTANCE_KM)
    light_ms = distance * LIGHT_S_PER_KM / MS
    latency = get_float(k, "latency_ms", where, fibre_latency_s(distance) / MS,
                        maximum=MAX_LATENCY_MS)
    if latency < light_ms:
        raise ConfigError(
            f"{where}.latency_ms: {latency:g} is less than light takes over {distance:,.0f} km "
            f"({light_ms:.3g} ms); must be in [{light_ms:.3g}, {MAX_LATENCY_MS:g}]")
    return InterSiteLink(
        site_a=ends[0], site_b=ends[1], distance_km=distance,
        bandwidth_bytes_per_s=get_float(k, "bandwidth_gbps", where, minimum=LINK_GBPS[0],
                                        maximum=LINK_GBPS[1]) * GBPS,
        latency_s=latency * MS, assumption=get_str(k, "assumption", where, ""),
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
    """The cluster as TOML text, in the format `load_cluster` reads."""
    return tomli_w.dumps(cluster_to_dict(c))
