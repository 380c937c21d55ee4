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
    gemm_fraction_bf16: float
    """Achievable fraction of the BF16 peak for a large, well-shaped GEMM (a published GEMM
    benchmark such as MAMF; `sources` says which, or that it is an estimate)."""
    gemm_fraction_fp8: float | None
    """The same for FP8 GEMMs, of the FP8 peak (None where the chip has no FP8)."""
    attention_fraction: float
    """Achievable fraction of the BF16 peak for fused (flash) attention, forward + backward."""
    attention_curve: tuple[tuple[float, float, float], ...] = ()
    """Fused attention's achievable fraction of the BF16 peak by sequence length, where a
    benchmark publishes it: (sequence length, forward fraction, backward fraction), lengths
    ascending. Empty: `attention_fraction` at every length."""
    attention_curve_cudnn: tuple[tuple[float, float, float], ...] = ()
    """The same for cuDNN's fused attention (``attention = "cudnn"``: Transformer Engine's
    kernel on Hopper and later), where a benchmark publishes it. Empty: `attention_curve`."""
    compute_units: int
    """Units a GEMM's output tiles are spread over (SMs, CUs, NeuronCores, TensorCores x MXUs):
    the wave size of tile quantisation."""
    collective_units: int = 0
    """Compute units a collective kernel occupies while it runs beside compute (NCCL's thread
    blocks on GPUs); 0 where collectives run on dedicated engines (Trainium's collective
    cores, TPU ICI). Overlapped communication slows compute by
    ``collective_units / (compute_units - collective_units)`` of the overlapped time."""
    gemm_tile: tuple[int, int]
    """Output tile (rows x columns) one unit computes at a time (CUTLASS/cuBLAS 128 x 256 on
    Hopper, the systolic array's 128 x 128 on TPUs and Trainium)."""
    ranks_per_chip: int = 1
    """Framework ranks (devices) one chip hosts: 1 on GPUs and TPUs; Trainium1 2 (each
    NeuronCore-v2 is one XLA device), Trainium2 4 (8 NeuronCores, two per logical core by
    default). A tensor-parallel group of t chips is t x this many ranks, each holding at
    least one whole KV head (`simulate.compute`)."""
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
        for name in ("gemm_fraction_bf16", "attention_fraction"):
            if not 0 < getattr(self, name) <= 1:
                raise ConfigError(f"chip {self.name}: {name} = {getattr(self, name)!r} must be "
                                  "in (0, 1]")
        for name in ("attention_curve", "attention_curve_cudnn"):
            curve = getattr(self, name)
            lengths = [p[0] for p in curve]
            if lengths != sorted(set(lengths)) or not all(0 < f <= 1 for p in curve
                                                          for f in p[1:]):
                raise ConfigError(f"chip {self.name}: {name} = {curve!r} needs ascending "
                                  "lengths and fractions in (0, 1]")
        if self.gemm_fraction_fp8 is not None and not 0 < self.gemm_fraction_fp8 <= 1:
            raise ConfigError(f"chip {self.name}: gemm_fraction_fp8 = "
                              f"{self.gemm_fraction_fp8!r} must be in (0, 1]")
        if not 0 <= self.collective_units < self.compute_units:
            raise ConfigError(f"chip {self.name}: collective_units = {self.collective_units} "
                              f"must be in [0, compute_units = {self.compute_units})")
        if self.ranks_per_chip < 1:
            raise ConfigError(f"chip {self.name}: ranks_per_chip = {self.ranks_per_chip} must "
                              "be >= 1")
        if self.compute_units < 1 or min(self.gemm_tile) < 1:
            raise ConfigError(f"chip {self.name}: compute_units and gemm_tile must be >= 1")
        if not 0 <= self.idle_w <= self.tdp_w:
            raise ConfigError(f"chip {self.name}: idle_w = {self.idle_w} must be in [0, tdp_w]")
