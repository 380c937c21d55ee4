"""Cluster presets. Each is a function; a variant is `dataclasses.replace` of one.

Every figure here that is an assumption says so, in the link's `assumption` and in the
cluster's `assumptions`, which `ultracluster show cluster` prints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from itertools import combinations

from ultracluster.cluster.model import Cluster, InterSiteLink, Site, make_site
from ultracluster.errors import ConfigError
from ultracluster.hardware.chips import get_chip
from ultracluster.hardware.systems import get_system
from ultracluster.units import GBPS, TBPS

INDIANA_USD_PER_KWH = 0.0805
"""EIA Electric Power Monthly Table 5.6.B: Indiana industrial, Jan-Jul 2024."""
US_INDUSTRIAL_USD_PER_KWH = 0.0806
"""US industrial average, 2023 (EIA via Statista; reference/hardware.md), for sites whose
state price is not in the catalogue."""

RAINIER_BUILDINGS = 7
RAINIER_ULTRASERVERS_PER_BUILDING = 1116
"""7 x 1,116 x 64 = 499,968 chips: 'nearly 500,000 Trainium2' (aboutamazon.com, Oct 2025) in the
7 buildings running at activation (datacenter.news, Nov 2025); an even split is an assumption."""

CAMPUS_KM = 1.0
_CAMPUS_BW = 71_424 * 200 * GBPS / 8 / 6
_CAMPUS_WHY = (
    "ASSUMPTION: a building's EFA injection (71,424 chips x 200 Gb/s = 14.3 Pb/s) through an "
    "8:1 oversubscribed inter-building spine (Meta's 24K clusters run 7:1 at T1-T2), shared "
    "evenly by the 6 other buildings = 298 Tb/s per pair; 1 km of campus fibre"
)


def _campus(system: str, pods_per_building: int, label: str) -> Cluster:
    sys = get_system(system)
    sites = tuple(
        make_site(f"ncl-{i + 1}", sys, pods_per_building,
                  electricity_usd_per_kwh=INDIANA_USD_PER_KWH,
                  location="New Carlisle, Indiana (St Joseph County)")
        for i in range(RAINIER_BUILDINGS)
    )
    links = tuple(
        InterSiteLink.from_distance(a.name, b.name, distance_km=CAMPUS_KM,
                                    bandwidth_bytes_per_s=_CAMPUS_BW, assumption=_CAMPUS_WHY)
        for a, b in combinations(sites, 2)
    )
    return Cluster(
        name=label,
        description=f"Project Rainier campus: {RAINIER_BUILDINGS} buildings x "
                    f"{pods_per_building:,} {sys.display_name}",
        sites=sites, links=links,
        assumptions=(
            "even split of chips across the 7 operating buildings",
            _CAMPUS_WHY,
            "EFAv3 inside a building modelled as non-blocking ('10p10u': tens of Pb/s, <10 us)",
            f"Trainium power ~{sys.chip.tdp_w:.0f} W per chip is an estimate (not published)",
            "PUE 1.15 (AWS global 2023-24); electricity 8.05 c/kWh (EIA, Indiana industrial)",
        ),
    )


def rainier() -> Cluster:
    """Project Rainier as activated (Oct 2025): 499,968 Trainium2 in 7 Indiana buildings."""
    return _campus("trn2-ultraserver", RAINIER_ULTRASERVERS_PER_BUILDING, "rainier")


def rainier_trn3() -> Cluster:
    """The same campus and chip count with Trn3 UltraServers (7 x 496 x 144 = 499,968)."""
    return _campus("trn3-ultraserver", 71_424 // 144, "rainier-trn3")


_STATES = (
    ("indiana", 4464, "New Carlisle, Indiana", INDIANA_USD_PER_KWH),
    ("pennsylvania", 1674, "Salem Township, Pennsylvania", US_INDUSTRIAL_USD_PER_KWH),
    ("mississippi", 1674, "Madison County, Mississippi", US_INDUSTRIAL_USD_PER_KWH),
)
_STATE_KM = {
    ("indiana", "pennsylvania"): 860 * 1.25,
    ("indiana", "mississippi"): 1050 * 1.25,
    ("pennsylvania", "mississippi"): 1480 * 1.25,
}
_LONG_HAUL_BW = 8 * 25.6 * TBPS
_LONG_HAUL_WHY = (
    "ASSUMPTION: 8 fibre pairs x 25.6 Tb/s (64 x 400ZR, C-band) = 204.8 Tb/s per site pair; "
    "route = straight-line distance x 1.25"
)


def rainier_multistate() -> Cluster:
    """Rainier spread over Indiana, Pennsylvania and Mississippi (Semafor, Oct 2025)."""
    sys = get_system("trn2-ultraserver")
    sites = tuple(
        make_site(name, sys, pods, electricity_usd_per_kwh=price, location=where)
        for name, pods, where, price in _STATES
    )
    links = tuple(
        InterSiteLink.from_distance(a, b, distance_km=km, bandwidth_bytes_per_s=_LONG_HAUL_BW,
                                    assumption=_LONG_HAUL_WHY)
        for (a, b), km in _STATE_KM.items()
    )
    return Cluster(
        name="rainier-multistate",
        description="Rainier-scale Trainium2 across three states joined by long-haul fibre",
        sites=sites, links=links,
        assumptions=(
            "the states come from one source (Semafor); the chip split 57/21/21% is assumed",
            _LONG_HAUL_WHY,
            "latency from distance at 4.9 us/km; PA and MS electricity at the US average",
        ),
    )


def meta_24k_h100() -> Cluster:
    """One of Meta's two 24,576-H100 clusters (3,072 Grand Teton nodes, 400G per GPU)."""
    site = make_site("meta-24k", get_system("grand-teton-h100"), 3072, pue=1.08,
                     location="Meta data centre")
    return Cluster(
        name="meta-24k-h100", description="Meta 24K H100 cluster (Llama 3 training)",
        sites=(site,),
        assumptions=("one fabric at full bisection: the 7:1 T1-T2 oversubscription between "
                     "3,072-GPU pods is not modelled", "PUE 1.08 (Meta fleet figure)"),
    )


def xai_colossus() -> Cluster:
    """xAI Colossus as first built: about 100,000 H100 (12,500 8-GPU nodes, Spectrum-X)."""
    site = make_site("memphis", get_system("dgx-h100"), 12_500, location="Memphis, Tennessee",
                     fabric_latency_s=3e-6)
    return Cluster(
        name="xai-colossus", description="xAI Colossus, Memphis: ~100,000 H100",
        sites=(site,),
        assumptions=("HGX H100 nodes modelled as DGX H100 with 400G Spectrum-X per GPU",
                     "Ethernet fabric latency 3 us and PUE 1.15 assumed"),
    )


def local() -> Cluster:
    """This machine: its CPU as one chip (``ultracluster calibrate`` measures it)."""
    site = make_site("local", get_system("local-host"), 1, pue=1.0, location="this machine")
    return Cluster(name="local", description="this machine's CPU as one chip", sites=(site,),
                   assumptions=("every figure is a placeholder until calibrated",))


PRESETS: dict[str, Callable[[], Cluster]] = {
    "rainier": rainier,
    "rainier-trn3": rainier_trn3,
    "rainier-multistate": rainier_multistate,
    "meta-24k-h100": meta_24k_h100,
    "xai-colossus": xai_colossus,
    "local": local,
}
DEFAULT_CLUSTER = "rainier"


def get_preset(name: str) -> Cluster:
    """The preset cluster `name`; `ConfigError` listing the known ones otherwise."""
    try:
        return PRESETS[name]()
    except KeyError:
        raise ConfigError(
            f"cluster: unknown preset {name!r} (known: {', '.join(PRESETS)}; or a .toml file)"
        ) from None


def single_system_cluster(system: str, num_chips: int, *, chip: str | None = None) -> Cluster:
    """One site of `system` holding at least `num_chips` chips (for validation rows)."""
    sys = get_system(system)
    if chip is not None and chip != sys.chip.name:
        sys = replace(sys, chip=get_chip(chip))
    pods = max(1, -(-num_chips // sys.num_chips))
    site: Site = make_site("site", sys, pods)
    return Cluster(name=f"{system}x{pods}", sites=(site,))
