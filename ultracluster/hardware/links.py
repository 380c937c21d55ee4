"""Inter-site link physics: fibre propagation and optical capacity, with sources."""

from __future__ import annotations

from dataclasses import dataclass

from ultracluster.hardware.sources import Source, der, off
from ultracluster.units import FIBRE_S_PER_KM, GBPS, TBPS


@dataclass(frozen=True, kw_only=True, slots=True)
class LinkFigure:
    """One inter-site planning figure."""

    name: str
    """Short key."""
    value: float
    """Value in SI units (seconds per km, bytes per second)."""
    unit: str
    """What `value` is in."""
    source: Source
    """Provenance."""


LINK_FIGURES: dict[str, LinkFigure] = {
    f.name: f
    for f in (
        LinkFigure(name="fibre_s_per_km", value=FIBRE_S_PER_KM, unit="s/km",
                   source=off("physics: group index ~1.468 (mapyourtech.com; CommScope 2017)")),
        LinkFigure(name="wavelength_400zr_bytes_per_s", value=400 * GBPS, unit="B/s",
                   source=off("400ZR coherent DCI, 400G per wavelength (sofia-connect.net)")),
        LinkFigure(name="wavelength_800g_bytes_per_s", value=800 * GBPS, unit="B/s",
                   source=off("800G per wavelength in commercial deployment 2025-26")),
        LinkFigure(name="fibre_pair_c_band_bytes_per_s", value=25.6 * TBPS, unit="B/s",
                   source=der("64 ch x 400ZR at 75 GHz over ~4.8 THz C-band = 25.6 Tbps")),
        LinkFigure(name="fibre_pair_c_l_band_bytes_per_s", value=64 * TBPS, unit="B/s",
                   source=off("China Telecom C+L field trial: 64 Tbps per fibre pair")),
    )
}


def fibre_latency_s(distance_km: float) -> float:
    """One-way propagation over `distance_km` of fibre (4.9 us/km)."""
    return distance_km * FIBRE_S_PER_KM
