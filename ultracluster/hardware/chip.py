"""The `Chip` record: one accelerator's peak figures, each with its source."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from ultracluster.errors import ConfigError
from ultracluster.hardware.sources import Source
from ultracluster.units import Precision

PRECISIONS: tuple[Precision, ...] = tuple(Precision)

ChipFamily = Literal["nvidia-ampere", "nvidia-hopper", "nvidia-blackwell", "tpu", "trainium",
                     "amd-cdna", "cpu"]
CHIP_FAMILIES: tuple[ChipFamily, ...] = get_args(ChipFamily)
"""Families that share the simulator's efficiency parameters (`simulate.calibration`)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Chip:
    """One accelerator. Dense (no structured sparsity) peaks; bytes, not GB."""

    name: str
    """Catalogue key, lower case (``trn2``)."""
    display_name: str
    """Human name (``Trainium2``)."""
    vendor: str
    """``aws``, ``nvidia``, ``google``, ``amd`` or ``cpu``."""
    family: ChipFamily
    """Architecture family (one of `CHIP_FAMILIES`): picks the simulator's efficiency
    parameters, so a new chip of a known family needs no other change."""
    peak_flops_fp32: float
    """Dense FP32 FLOP/s."""
    peak_flops_bf16: float
    """Dense BF16/FP16 FLOP/s."""
    peak_flops_fp8: float | None
    """Dense FP8 FLOP/s, None where the chip has no FP8."""
    hbm_bytes: float
    """Device memory capacity in bytes."""
    hbm_bytes_per_s: float
    """Device memory bandwidth."""
    scale_up_bytes_per_s: float
    """Chip-to-chip (NeuronLink, NVLink, ICI) bandwidth per chip, all links, both directions
    added (the vendors' figure: NVLink4 900 GB/s); one direction carries half of it."""
    tdp_w: float
    """Thermal design power (or typical board power) in watts."""
    idle_w: float
    """Power drawn while idle (estimate)."""
    sources: dict[str, Source] = field(default_factory=dict)
    """Provenance per field name."""

    def peak_flops(self, precision: Precision) -> float:
        """Peak dense FLOP/s for the matmuls at `precision` (fp8 falls back to bf16 if absent)."""
        if precision == Precision.FP32:
            return self.peak_flops_fp32
        if precision == Precision.FP8 and self.peak_flops_fp8 is not None:
            return self.peak_flops_fp8
        return self.peak_flops_bf16

    def supports(self, precision: Precision) -> bool:
        """Whether the chip has matmuls in `precision` (only fp8 may be missing)."""
        return precision != Precision.FP8 or self.peak_flops_fp8 is not None

    def __post_init__(self) -> None:
        for name in ("peak_flops_fp32", "peak_flops_bf16", "hbm_bytes", "hbm_bytes_per_s",
                     "scale_up_bytes_per_s", "tdp_w"):
            value = getattr(self, name)
            if not value > 0:
                raise ConfigError(f"chip {self.name}: {name} = {value!r} must be > 0")
        if self.family not in CHIP_FAMILIES:
            raise ConfigError(f"chip {self.name}: family = {self.family!r} is not one of "
                              f"{', '.join(CHIP_FAMILIES)}")
        if not 0 <= self.idle_w <= self.tdp_w:
            raise ConfigError(f"chip {self.name}: idle_w = {self.idle_w} must be in [0, tdp_w]")
