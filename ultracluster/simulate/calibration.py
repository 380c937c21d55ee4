"""Efficiency parameters: the only fitted numbers in the simulator, a handful per chip family.

Each is a physical fraction of a catalogue peak, not a per-run fudge:

- ``matmul_eff_max``: the fraction of dense peak a large GEMM reaches (cuBLAS/NKI/XLA).
- ``matmul_half_dim``: the matrix dimension at which a GEMM reaches half of that; small or
  thin matmuls (TP-split weights, MoE experts with few tokens) lose efficiency as
  ``d / (d + half_dim)`` (a wave-quantisation / tile-occupancy model).
- ``fp8_eff_ratio``: FP8 GEMM efficiency relative to BF16 (scaling, casts, amax reductions).
- ``attention_eff_ratio``: fused (flash) attention's efficiency relative to a GEMM's.
- ``memory_eff``: fraction of HBM bandwidth that elementwise kernels reach.
- ``scale_up_eff`` / ``scale_out_eff``: fraction of link bandwidth that collectives reach
  (NCCL bus bandwidth over line rate).
- ``layer_overhead_s``: fixed time per layer per micro-batch (forward + backward) that does
  not scale with the layer's size: kernel launches, synchronisation, small host work
  (~20-40 kernels per layer each way at a few microseconds each).

How they were set: the link efficiencies are fixed from public NCCL measurements (all-reduce
bus bandwidth ~0.75-0.8 of NVLink, ~0.85-0.9 of InfiniBand line rate). The rest were fitted by
``python benchmarks/fit_calibration.py`` (coordinate descent on median + 0.5 x p90 |error| of
tokens/s per chip over the 55 reference runs not flagged UNRELIABLE / LOWER BOUND), which gave:

| family | matmul_eff_max | fitted on |
| --- | --- | --- |
| nvidia-ampere | 0.70 | 19 A100 rows (Megatron 2021-22, MT-NLG) |
| nvidia-hopper | 0.55 | 27 H100/H800 rows (NeMo, Megatron-Bridge, Megatron-Core, torchtitan, MPT, Llama 3) |
| nvidia-blackwell | 0.50 | 2 rows (B200, GB200) |
| tpu | 0.80 | 3 MaxText rows (v5p, v5e) |
| trainium | 0.40 | 4 Trn1 rows; applied to Trn2/Trn3 for want of published runs |
| amd-cdna | 0.60 | no rows: a prior, not a fit |

and, shared: matmul_half_dim 384, fp8_eff_ratio 1.0, attention_eff_ratio 0.4, memory_eff 0.7,
layer_overhead_s 0 (the fit found no benefit). The large-GEMM efficiency absorbs what the
model does not represent (framework overheads, imperfect overlap), which is why Hopper's value
sits below cuBLAS's ~0.75; docs/validation.md lists the rows it gets most wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ultracluster.errors import ConfigError
from ultracluster.hardware.chip import Chip


@dataclass(frozen=True, kw_only=True, slots=True)
class Efficiency:
    """Achievable fractions of catalogue peaks for one chip family."""

    matmul_eff_max: float
    """Large-GEMM fraction of dense peak."""
    matmul_half_dim: float
    """GEMM dimension at which efficiency halves."""
    fp8_eff_ratio: float
    """FP8 GEMM efficiency relative to BF16."""
    attention_eff_ratio: float
    """Flash-attention efficiency relative to GEMM."""
    memory_eff: float
    """Fraction of HBM bandwidth reached by elementwise kernels."""
    scale_up_eff: float
    """Fraction of scale-up link bandwidth reached by collectives."""
    scale_out_eff: float
    """Fraction of NIC bandwidth reached by collectives."""
    layer_overhead_s: float = 0.0
    """Fixed seconds per layer per micro-batch (forward + backward)."""


_BASE = dict(matmul_half_dim=384.0, fp8_eff_ratio=1.0, attention_eff_ratio=0.4, memory_eff=0.7,
             scale_up_eff=0.75, scale_out_eff=0.85)

EFFICIENCY: dict[str, Efficiency] = {
    "nvidia-ampere": Efficiency(matmul_eff_max=0.7, **_BASE),
    "nvidia-hopper": Efficiency(matmul_eff_max=0.55, **_BASE),
    "nvidia-blackwell": Efficiency(matmul_eff_max=0.5, **_BASE),
    "tpu": Efficiency(matmul_eff_max=0.8, **_BASE),
    "trainium": Efficiency(matmul_eff_max=0.4, **_BASE),
    "amd-cdna": Efficiency(matmul_eff_max=0.60, **_BASE),
    "cpu": Efficiency(matmul_eff_max=0.50, **_BASE),
}


def efficiency_for(chip: Chip, table: Mapping[str, Efficiency] | None = None
                   ) -> Efficiency:
    """The parameters of `chip`'s family (`Chip.family`), from `table` (default `EFFICIENCY`).

    Raises:
        ConfigError: the table has no parameters for the family (never a silent default).
    """
    effs = EFFICIENCY if table is None else table
    if chip.family not in effs:
        raise ConfigError(f"chip {chip.name}: family {chip.family!r} has no efficiency "
                          f"parameters (known: {', '.join(effs)})")
    return effs[chip.family]
