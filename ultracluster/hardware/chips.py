"""The chip catalogue, transcribed from ``reference/hardware.md`` with each figure's source.

Units: FLOP/s, bytes, bytes/s, watts. ``scale_up_bytes_per_s`` is the vendor's per-chip
aggregate over all scale-up links, both directions (NVLink 900 GB/s, ICI 1,200 GB/s
bidirectional), so one direction carries half of it.

Idle power is never published by vendors; unless a measurement exists we estimate it as 20% of
TDP (nvidia-smi shows an idle H100 SXM at roughly 70-100 W of 700 W) and flag it as an estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

from ultracluster.errors import ConfigError
from ultracluster.hardware.chip import Chip, ChipFamily
from ultracluster.hardware.sources import Source, der, est, meas, off
from ultracluster.units import GB, GIB, MIB, TB, TFLOPS

IDLE_FRACTION_OF_TDP = 0.2
"""Estimate (see module docstring)."""

_NEURON_TRN2 = "AWS Neuron docs, 'Trainium2 Architecture' (trainium2.rst) and 'Trn2 Architecture'"
_NEURON_TRN3 = "AWS Neuron docs, 'Trainium3 Architecture' (trainium3.rst, 12/02/2025)"
_NEURON_TRN1 = "AWS Neuron docs, 'Trainium Architecture'; trainium2.rst comparison table"
_NEURON_DEVICES = ("AWS Neuron docs, 'Developer Guide for Training with PyTorch NeuronX' "
                   "(pytorch-neuron-programming-guide)")
_A100 = "NVIDIA A100 datasheet, restated by glennklockwood.com/garden/processors/A100"
_H100 = "NVIDIA H100 datasheet / Hopper whitepaper, restated by glennklockwood.com"
_B200 = "NVIDIA Blackwell datasheet, restated by glennklockwood.com/garden/processors/B200"
_TPU = "Google Cloud TPU docs"
_MI300 = "AMD MI300X datasheet, restated by jaredwatkins.com, codesota.com, gpu.blog"
_MI355 = "Tom's Hardware / The Register (Jun 2025) on AMD MI355X"


_CAP_500W = (500 / 700) ** (1 / 3)
_CAP_WHY = ("H100 SXM peak x (500 W / 700 W)^(1/3): dynamic power ~ f V^2 with V ~ f, so a "
            "power cap scales sustained clocks by the cube root (estimate)")


_SMI = ("nvidia-smi memory.total, the device memory the driver exposes (an '80GB' part has "
        "80 GiB of HBM, less what the driver reserves):")
_H100_HBM = (81559 * MIB, meas(_SMI + " 81559MiB (H100 80GB HBM3, H800)"))
_MAMF = ("Stas Bekman, ml-engineering, 'Maximum Achievable Matmul FLOPS comparison table' "
         "(mamf-finder.py, mean of 100 iterations at the best shape)")
_FA2 = "Dao 2023, FlashAttention-2: 50-73% of A100 peak forward + backward (0.60 taken)"
_FA2_H100 = ("Shah et al. 2024, FlashAttention-3: FlashAttention-2, the kernel PyTorch SDPA and "
             "most frameworks run, 'achieves only 35% utilization on H100' (FA3 itself reaches "
             "75% forward, in fewer frameworks)")
_ATTN_EST = "no published fused-attention benchmark here: 0.50 assumed (between FA2 and FA3)"
_BLACKWELL_ATTN = ("FlashAttention-4: Algorithm and Kernel Pipelining Co-Design for Asymmetric "
                   "Hardware Scaling (paper and Together AI blog): "
                   "on B200 with BF16 'up to 1613 TFLOPs/s (71% utilization), up to 1.3x faster "
                   "than cuDNN version 9.13', so cuDNN (the kernel Transformer Engine runs) "
                   "reaches about 1613 / 1.3 / 2250 = 0.55 of peak at best, forward; no "
                   "backward figure: 0.50 taken for both")
_FP8_AS_BF16 = ("no published FP8 GEMM benchmark: assumed no faster than the chip's achievable "
                "BF16 rate until one is measured (the planner does not choose FP8 here)")


_NO_CURVE: tuple[tuple[tuple[float, float, float], ...], Source] = (
    (), off("no published curve: attention_fraction at every length"))


_NO_CUDNN_CURVE: tuple[tuple[tuple[float, float, float], ...], Source] = (
    (), off("no published cuDNN attention curve: attention_curve"))


@dataclass(frozen=True, slots=True)
class _Rates:
    """Achievable GEMM and attention fractions, compute units and GEMM tile, with sources."""

    bf16: tuple[float, Source]
    fp8: tuple[float | None, Source]
    attention: tuple[float, Source]
    units: tuple[int, Source]
    tile: tuple[tuple[int, int], Source]
    collective_units: tuple[int, Source] = (0, est("collectives on dedicated engines"))
    attention_curve: tuple[tuple[tuple[float, float, float], ...], Source] = _NO_CURVE
    attention_curve_cudnn: tuple[tuple[tuple[float, float, float], ...], Source] = (
        _NO_CUDNN_CURVE)


_H100_LENGTHS = (512, 1024, 2048, 4096, 8192, 16384)
"""Sequence lengths of the FlashAttention-3 paper's H100 panels (Fig. 5-6)."""


def _h100_curve(fwd_tf: tuple[float, ...], bwd_tf: tuple[float, ...]
                ) -> tuple[tuple[float, float, float], ...]:
    """A published H100 attention curve: TFLOP/s at `_H100_LENGTHS` as fractions of 989.4."""
    return tuple((float(s), f / 989.4, b / 989.4) for s, f, b in zip(_H100_LENGTHS, fwd_tf, bwd_tf))


_FA2_H100_CURVE_SRC = (
    "Shah et al. 2024, FlashAttention-3, Fig. 5-6 (H100 80GB SXM5, head dim 128, batch x length "
    "= 16K tokens): FlashAttention-2, the kernel PyTorch SDPA and most frameworks run, forward "
    "with causal mask 191, 260, 298, 319, 333, 335 TFLOP/s and backward 214, 260, 291, 310, "
    "318, 322 TFLOP/s at 512, 1K, 2K, 4K, 8K, 16K tokens (the backward figure has no causal "
    "panel), as fractions of 989.4 TF")
_FA2_H100_CURVE = _h100_curve((191, 260, 298, 319, 333, 335), (214, 260, 291, 310, 318, 322))
"""FlashAttention-2 on H100 by sequence length (`_FA2_H100_CURVE_SRC`)."""

_CUDNN_H100_CURVE_SRC = (
    "Shah et al. 2024, FlashAttention-3, Fig. 5-6 (the same panels): cuDNN's fused attention, "
    "the kernel Transformer Engine runs on Hopper ('when both implementations are applicable, "
    "Transformer Engine prefers cuDNN flash attention on Hopper+ architectures', NVIDIA/NeMo "
    "docs, memory_optimizations.rst, PR #9188), forward with causal mask 315, 410, 484, 518, "
    "529, 539 TFLOP/s and backward 305, 408, 465, 499, 518, 516 TFLOP/s at 512, 1K, 2K, 4K, "
    "8K, 16K tokens, as fractions of 989.4 TF")
_CUDNN_H100_CURVE = _h100_curve((315, 410, 484, 518, 529, 539), (305, 408, 465, 499, 518, 516))
"""cuDNN fused attention on H100 by sequence length (`_CUDNN_H100_CURVE_SRC`)."""

_NCCL_BLOCKS = (24, meas("NVIDIA developer forum, 'Compute-communication overlap causes severe "
                         "GEMM performance degradation because of tail effect' (2025): "
                         "ncclAllGather occupies 24 thread blocks of an H100's 132 SMs"))


def _mamf(bf16_tf: float, peak_tf: float, fp8: tuple[float | None, Source], units: int,
          units_src: str, tile: tuple[int, int], attention: tuple[float, Source],
          curve: tuple[tuple[float, float, float], ...] = ()) -> _Rates:
    return _Rates(bf16=(bf16_tf / peak_tf, meas(f"{_MAMF}: {bf16_tf:g} of {peak_tf:g} TF")),
                  fp8=fp8, attention=attention, units=(units, off(units_src)),
                  tile=(tile, est("cuBLAS/CUTLASS large-GEMM tile for this architecture")),
                  collective_units=_NCCL_BLOCKS,
                  attention_curve=(curve, meas(_FA2_H100_CURVE_SRC)) if curve
                  else _NO_CURVE,
                  # both H100 curves come from the same published panels
                  attention_curve_cudnn=(_CUDNN_H100_CURVE, meas(_CUDNN_H100_CURVE_SRC))
                  if curve else _NO_CUDNN_CURVE)


def _fp8_as_bf16(bf16_fraction: float, peak_bf16_tf: float, peak_fp8_tf: float
                 ) -> tuple[float, Source]:
    """An FP8 fraction of the FP8 peak that gives the BF16 achievable rate (an estimate)."""
    return bf16_fraction * peak_bf16_tf / peak_fp8_tf, est(_FP8_AS_BF16)


_NKI_TRN1 = ("AWS Neuron docs, NKI tutorial 'Matrix multiplication' (aws-neuron/aws-neuron-sdk "
             "general/nki/tutorials/matrix_multiplication.rst @ 2086a70): the fully optimised "
             "kernel, bf16 [4096, 8192] x [8192, 8192] on one NeuronCore-v2 of a trn1.32xlarge, "
             "6.97 ms: 2 x 4096 x 8192 x 8192 / 6.97 ms = 78.9 TF, 0.83 of the 95 TF a "
             "NeuronCore-v2 has (190 TF per chip, two cores; the tutorial's 'HFU of 85.2%' is "
             "against the Tensor Engine's 128 x 128 x 2 x 2.8 GHz = 91.75 TF)")
_TRN_GEMM = 0.83
"""The NKI tutorial's large bf16 matmul on one Trainium1 NeuronCore, as a fraction of its peak
(`_NKI_TRN1`)."""
_TRN_LATER = ("no published GEMM benchmark of this generation; Trainium1's taken (the same "
              "128 x 128 systolic Tensor Engine; awslabs/nki-autotune's trn2-scoreboard.md "
              "@ 616e222, a tuning log that does not state the dtype, reads 76.6 TF at 5120^3 on "
              "one NeuronCore-v3, 0.92 of 667/8 TF)")


def _neuron(units: int, units_src: Source, *, fp8: tuple[float, float],
            measured: bool) -> _Rates:
    """Rates of a Trainium: the NKI tutorial's large-matmul fraction (`_NKI_TRN1`), measured
    on Trainium1 and an estimate on the later generations (`_TRN_LATER`)."""
    src = meas(_NKI_TRN1) if measured else est(f"{_TRN_LATER}; {_NKI_TRN1}")
    return _Rates(bf16=(_TRN_GEMM, src), fp8=_fp8_as_bf16(_TRN_GEMM, *fp8),
                  attention=(0.5, est(_ATTN_EST)), units=(units, units_src),
                  tile=((128, 128), est("Tensor Engine systolic array size (128 x 128)")))


_XLA_V5E = ("JAX docs, Pallas TPU 'Matrix Multiplication' guide (docs/pallas/tpu/matmul): XLA's "
            "jnp.matmul, bf16 8192 x 8192 x 8192 on TPU v5e, 181.8 of 197 TF (92.3%; timed with "
            "Python dispatch, so a lower bound; 4096^3: 84.3%)")
_TPU_GEMM = 0.923
"""XLA's large bf16 matmul on TPU v5e as a fraction of peak (`_XLA_V5E`)."""


def _xla_tpu(units: int, units_src: Source, tile: tuple[int, int], *,
             fp8: tuple[float, float] | None, measured: bool) -> _Rates:
    """Rates of a TPU: the large-GEMM fraction XLA reaches on TPU v5e (`_XLA_V5E`), measured
    there and an estimate on the other generations (the same XLA compiler on MXU systolic
    arrays; no published matmul benchmark of their own here)."""
    src = meas(_XLA_V5E) if measured else est(
        f"no published GEMM benchmark of this generation; TPU v5e's taken ({_XLA_V5E})")
    return _Rates(bf16=(_TPU_GEMM, src),
                  fp8=_fp8_as_bf16(_TPU_GEMM, *fp8) if fp8 else (None, off("no FP8")),
                  attention=(0.5, est(_ATTN_EST)), units=(units, units_src),
                  tile=(tile, est("MXU systolic array size")))


def _idle(tdp_w: float, tdp_src: Source) -> tuple[float, Source]:
    return tdp_w * IDLE_FRACTION_OF_TDP, est(
        f"{IDLE_FRACTION_OF_TDP:.0%} of TDP (assumption here; TDP: {tdp_src.flag})"
    )


def _chip(
    name: str,
    display: str,
    vendor: str,
    *,
    family: ChipFamily,
    fp32: tuple[float, Source],
    bf16: tuple[float, Source],
    fp8: tuple[float | None, Source],
    hbm: tuple[float, Source],
    hbm_bw: tuple[float, Source],
    link: tuple[float, Source],
    tdp: tuple[float, Source],
    rates: _Rates,
    idle: tuple[float, Source] | None = None,
    ranks: tuple[int, Source] = (1, off("one device per chip")),
) -> Chip:
    idle_w, idle_src = idle if idle is not None else _idle(*tdp)
    return Chip(
        name=name,
        display_name=display,
        vendor=vendor,
        family=family,
        peak_flops_fp32=fp32[0],
        peak_flops_bf16=bf16[0],
        peak_flops_fp8=fp8[0],
        hbm_bytes=hbm[0],
        hbm_bytes_per_s=hbm_bw[0],
        scale_up_bytes_per_s=link[0],
        tdp_w=tdp[0],
        idle_w=idle_w,
        gemm_fraction_bf16=rates.bf16[0], gemm_fraction_fp8=rates.fp8[0],
        attention_fraction=rates.attention[0], attention_curve=rates.attention_curve[0],
        attention_curve_cudnn=rates.attention_curve_cudnn[0],
        compute_units=rates.units[0],
        gemm_tile=rates.tile[0], collective_units=rates.collective_units[0],
        ranks_per_chip=ranks[0],
        sources={
            "ranks_per_chip": ranks[1],
            "collective_units": rates.collective_units[1],
            "gemm_fraction_bf16": rates.bf16[1], "gemm_fraction_fp8": rates.fp8[1],
            "attention_fraction": rates.attention[1], "compute_units": rates.units[1],
            "attention_curve": rates.attention_curve[1],
            "attention_curve_cudnn": rates.attention_curve_cudnn[1],
            "gemm_tile": rates.tile[1],
            "peak_flops_fp32": fp32[1],
            "peak_flops_bf16": bf16[1],
            "peak_flops_fp8": fp8[1],
            "hbm_bytes": hbm[1],
            "hbm_bytes_per_s": hbm_bw[1],
            "scale_up_bytes_per_s": link[1],
            "tdp_w": tdp[1],
            "idle_w": idle_src,
        },
    )


def _tpu_fp32(bf16: float) -> tuple[float, Source]:
    return bf16 / 4, est("not published; assumed bf16/4 (multi-pass bf16 emulation); unused")


_H100_RATES = _mamf(794.5, 989.4, (1402.6 / 1978.9, meas(f"{_MAMF}: FP8 1402.6 of 1978.9 TF")),
                    132, "NVIDIA Hopper whitepaper (132 SMs)", (128, 256), (0.35, meas(_FA2_H100)),
                    _FA2_H100_CURVE)
_AMD_ATTN = (0.40, est("no published fused-attention benchmark here; 0.40 assumed"))


def _catalogue() -> dict[str, Chip]:
    t = TFLOPS
    h_fp32, h_bf16, h_fp8 = (66.9 * t, off(_H100)), (989.4 * t, off(_H100)), (1978.9 * t, off(_H100))
    chips = [
        _chip("trn1", "Trainium1", "aws", family="trainium",
              fp32=(47.5 * t, off(_NEURON_TRN1)), bf16=(190 * t, off(_NEURON_TRN1)),
              fp8=(190 * t, off(_NEURON_TRN1 + " (cFP8)")),
              hbm=(32 * GIB, off(_NEURON_TRN1)), hbm_bw=(820 * GIB, off(_NEURON_TRN1)),
              link=(384 * GB, off(_NEURON_TRN1 + " (NeuronLink-v2)")),
              rates=_neuron(2, off(_NEURON_TRN1 + " (2 NeuronCore-v2)"), fp8=(190, 190),
                            measured=True),
              tdp=(275.0, est("not published; assumption here for a 7 nm 2-core training chip")),
              ranks=(2, off(_NEURON_DEVICES + ": 'On Trn1, each Trainium accelerator has two "
                            "NeuronCores (default two Logical NeuronCores)'"))),
        _chip("trn2", "Trainium2", "aws", family="trainium",
              fp32=(181 * t, off(_NEURON_TRN2)), bf16=(667 * t, off(_NEURON_TRN2)),
              fp8=(1299 * t, off(_NEURON_TRN2)),
              hbm=(96 * GIB, off(_NEURON_TRN2)),
              hbm_bw=(2.9 * TB, off(_NEURON_TRN2 + " (NKI guide v2.29 says 3 TB/s)")),
              link=(1.28 * TB, off(_NEURON_TRN2 + " (NeuronLink-v3)")),
              rates=_neuron(8, off(_NEURON_TRN2 + " (8 NeuronCore-v3, 128 x 128 systolic)"),
                            fp8=(667, 1299), measured=False),
              tdp=(500.0, est("SemiAnalysis, 'Amazon's AI Self Sufficiency' (Dec 2024); "
                              "NAND Research")),
              ranks=(4, off(_NEURON_DEVICES + ": 'On Trn2, each Trainium accelerator has 8 "
                            "NeuronCores (default 4 Logical NeuronCores)'"))),
        _chip("trn3", "Trainium3", "aws", family="trainium",
              fp32=(183 * t, off(_NEURON_TRN3)), bf16=(671 * t, off(_NEURON_TRN3)),
              fp8=(2517 * t, off(_NEURON_TRN3 + " (MXFP8)")),
              hbm=(144 * GIB, off(_NEURON_TRN3)), hbm_bw=(4.9 * TB, off(_NEURON_TRN3)),
              link=(2.56 * TB, off(_NEURON_TRN3 + " (NeuronLink-v4; UltraServer table says "
                                   "2,048 GiB/s)")),
              rates=_neuron(8, off(_NEURON_TRN3 + " (8 NeuronCore-v4)"), fp8=(671, 2517),
                            measured=False),
              tdp=(1000.0, est("DatacenterDynamics, 'AWS Trainium3 chips likely to consume 1kW'")),
              ranks=(4, est("8 NeuronCore-v4 at the default logical-core size 2, as Trainium2 "
                            "(trainium3.rst: 'Similar to Trainium2 ... LNC')"))),
        _chip("a100-40gb", "A100 SXM 40GB", "nvidia", family="nvidia-ampere",
              fp32=(19.5 * t, off(_A100)), bf16=(312 * t, off(_A100)),
              fp8=(None, off(_A100 + " (no FP8)")),
              hbm=(40 * GB, off(_A100)), hbm_bw=(1555 * GB, off("NVIDIA A100 datasheet (40GB)")),
              link=(600 * GB, off(_A100 + " (NVLink3)")),
              rates=_mamf(271.2, 312, (None, off("no FP8")), 108, "NVIDIA A100 whitepaper (108 SMs)",
                          (256, 128), (0.60, meas(_FA2))),
              tdp=(400.0, off(_A100))),
        _chip("a100-80gb", "A100 SXM 80GB", "nvidia", family="nvidia-ampere",
              fp32=(19.5 * t, off(_A100)), bf16=(312 * t, off(_A100)),
              fp8=(None, off(_A100 + " (no FP8)")),
              hbm=(81920 * MIB, meas(_SMI + " 81920MiB (A100-SXM4-80GB)")),
              hbm_bw=(2039 * GB, off(_A100)),
              link=(600 * GB, off(_A100 + " (NVLink3)")),
              rates=_mamf(271.2, 312, (None, off("no FP8")), 108, "NVIDIA A100 whitepaper (108 SMs)",
                          (256, 128), (0.60, meas(_FA2))),
              tdp=(400.0, off(_A100))),
        _chip("h100-sxm", "H100 SXM 80GB", "nvidia", family="nvidia-hopper",
              fp32=h_fp32, bf16=h_bf16, fp8=h_fp8,
              hbm=_H100_HBM, hbm_bw=(3.35 * TB, off(_H100)),
              link=(900 * GB, off(_H100 + " (NVLink4)")),
              rates=_H100_RATES,
              tdp=(700.0, off(_H100))),
        _chip("h100-96gb-500w", "H100 96GB HBM2e (500 W)", "nvidia", family="nvidia-hopper",
              fp32=(66.9 * t * _CAP_500W, der(_CAP_WHY)),
              bf16=(989.4 * t * _CAP_500W, der(_CAP_WHY)),
              fp8=(1978.9 * t * _CAP_500W, der(_CAP_WHY)),
              hbm=(96 * GB, off("torchtitan performance page: 'H100 GPUs with 96GB HBM2e'")),
              hbm_bw=(2.4 * TB, off("torchtitan performance page: '96GB HBM2e with 2.4 TB/sec peak "
                                    "memory bandwidth'")),
              link=(900 * GB, der("same NVLink4 as H100 SXM")),
              rates=_H100_RATES,
              tdp=(500.0, off("torchtitan performance page (500 W power limit)"))),
        _chip("h800", "H800 SXM", "nvidia", family="nvidia-hopper",
              fp32=h_fp32, bf16=h_bf16, fp8=h_fp8,
              hbm=_H100_HBM, hbm_bw=(3.35 * TB, off(_H100)),
              link=(400 * GB, off("H800 export variant: NVLink 400 GB/s (DeepSeek-V3 report "
                                  "quotes ~160 GB/s achievable)")),
              rates=_H100_RATES,
              tdp=(700.0, off(_H100))),
        _chip("h200", "H200 SXM", "nvidia", family="nvidia-hopper",
              fp32=h_fp32, bf16=h_bf16, fp8=h_fp8,
              hbm=(143771 * MIB, meas(_SMI + " 143771MiB (H200)")),
              hbm_bw=(4.8 * TB, off("NVIDIA H200 (openmetal.io, aiwiki.ai)")),
              link=(900 * GB, off("MLCommons Inference v4.1 NVIDIA H200 system file")),
              rates=_mamf(794.5, 989.4, (1453.4 / 1978.9, meas(f"{_MAMF}: FP8 1453.4 of 1979 TF (H200)")),
                          132, "NVIDIA Hopper whitepaper (132 SMs)", (128, 256), (0.35, meas(_FA2_H100)),
                          _FA2_H100_CURVE),
              tdp=(700.0, off("MLCommons v4.1 H200 file ('H200 TGP 700W')"))),
        _chip("b200", "B200 (HGX, 1,000 W)", "nvidia", family="nvidia-blackwell",
              fp32=(80 * t, off(_B200)), bf16=(2250 * t, off(_B200)), fp8=(4500 * t, off(_B200)),
              hbm=(183359 * MIB, meas(_SMI + " 183359MiB (B200)")),
              hbm_bw=(8 * TB, off(_B200)), link=(1.8 * TB, off(_B200 + " (NVLink5)")),
              rates=_mamf(1745.0, 2250, (3432.5 / 4500, meas(f"{_MAMF}: FP8 3432.5 of 4500 TF")), 148,
                          "NVIDIA Blackwell (148 SMs per GPU)", (256, 256), (0.50, est(_BLACKWELL_ATTN))),
              tdp=(1000.0, off(_B200))),
        _chip("gb200", "GB200 (per Blackwell GPU, 1,200 W)", "nvidia", family="nvidia-blackwell",
              fp32=(90 * t, off(_B200)), bf16=(2500 * t, off(_B200)), fp8=(5000 * t, off(_B200)),
              hbm=(186 * GB, off(_B200 + " (186-192 GB)")), hbm_bw=(8 * TB, off(_B200)),
              link=(1.8 * TB, off(_B200 + " (NVLink5)")),
              rates=_mamf(1822.0, 2500, (3615.6 / 5000, meas(f"{_MAMF}: FP8 3615.6 of 5000 TF")), 148,
                          "NVIDIA Blackwell (148 SMs per GPU)", (256, 256), (0.50, est(_BLACKWELL_ATTN))),
              tdp=(1200.0, off(_B200))),
        _chip("tpu-v4", "TPU v4", "google", family="tpu",
              fp32=_tpu_fp32(275 * t), bf16=(275 * t, off(_TPU + " 'TPU v4'")),
              fp8=(None, off(_TPU + " (no FP8)")),
              hbm=(32 * GIB, off(_TPU + " 'TPU v4'")), hbm_bw=(1200 * GB, off(_TPU + " 'TPU v4'")),
              link=(2400 / 8 * GB, est("ICI 2,400 Gbps per chip as listed in Google's v5p "
                                       "comparison; not in the v4 doc")),
              rates=_xla_tpu(8, off(_TPU + " (2 TensorCores x 4 MXUs)"), (128, 128), fp8=None,
                             measured=False),
              tdp=(192.0, meas(_TPU + " 'TPU v4': measured max 192 W (mean 170 W)")),
              idle=(90.0, meas(_TPU + " 'TPU v4': measured min 90 W"))),
        _chip("tpu-v5e", "TPU v5e", "google", family="tpu",
              fp32=_tpu_fp32(197 * t), bf16=(197 * t, off(_TPU + " 'TPU v5e'")),
              fp8=(None, off(_TPU + " (INT8 394 TOPS, no FP8)")),
              hbm=(16 * GIB, off(_TPU + " 'TPU v5e'")), hbm_bw=(819 * GB, off(_TPU + " 'TPU v5e'")),
              link=(1600 / 8 * GB, off(_TPU + " 'TPU v5e' (ICI 1,600 Gbps)")),
              rates=_xla_tpu(4, off(_TPU + " (1 TensorCore x 4 MXUs)"), (128, 128), fp8=None,
                             measured=True),
              tdp=(220.0, est("not published; assumption here"))),
        _chip("tpu-v5p", "TPU v5p", "google", family="tpu",
              fp32=_tpu_fp32(459 * t), bf16=(459 * t, off(_TPU + " 'TPU v5p'")),
              fp8=(459 * t, off(_TPU + " 'TPU v5p' (FP8 column equals BF16)")),
              hbm=(95 * GIB, off(_TPU + " 'TPU v5p' (95 GiB usable)")),
              hbm_bw=(2765 * GB, off(_TPU + " 'TPU v5p'")),
              link=(1200 * GB, off(_TPU + " 'TPU v5p' (ICI 1,200 GB/s bidirectional)")),
              rates=_xla_tpu(8, off(_TPU + " (2 TensorCores x 4 MXUs)"), (128, 128),
                             fp8=(459, 459), measured=False),
              tdp=(450.0, est("not published; assumption here"))),
        _chip("tpu-v6e", "TPU v6e Trillium", "google", family="tpu",
              fp32=_tpu_fp32(918 * t), bf16=(918 * t, off(_TPU + " 'TPU v6e'")),
              fp8=(918 * t, off(_TPU + " 'TPU7x' comparison table")),
              hbm=(32 * GB, off(_TPU + " 'TPU v6e'")), hbm_bw=(1638 * GB, off(_TPU + " 'TPU v6e'")),
              link=(800 * GB, off(_TPU + " 'TPU v6e' (ICI 800 GB/s bidirectional)")),
              rates=_xla_tpu(2, off(_TPU + " (256 x 256 MXUs)"), (256, 256), fp8=(918, 918),
                             measured=False),
              tdp=(300.0, est("not published; assumption here"))),
        _chip("tpu-ironwood", "TPU7x Ironwood", "google", family="tpu",
              fp32=_tpu_fp32(2307 * t), bf16=(2307 * t, off(_TPU + " 'TPU7x (Ironwood)'")),
              fp8=(4614 * t, off(_TPU + " 'TPU7x (Ironwood)'")),
              hbm=(192 * GIB, off(_TPU + " 'TPU7x (Ironwood)'")),
              hbm_bw=(7.37 * TB, off(_TPU + " 'TPU7x (Ironwood)'")),
              link=(1.2 * TB, off(_TPU + " 'TPU7x' (ICI 1.2 TB/s bidirectional)")),
              rates=_xla_tpu(2, est(_TPU + " (MXU count not published; 2 assumed)"),
                             (256, 256), fp8=(2307, 4614), measured=False),
              tdp=(377.0, der("v6e's 300 W (estimate) x 2.51x BF16 / Google's ~2x perf/W"))),
        _chip("mi300x", "Instinct MI300X", "amd", family="amd-cdna",
              fp32=(163.4 * t, off(_MI300)), bf16=(1307.4 * t, off(_MI300)),
              fp8=(2614.9 * t, off(_MI300)),
              hbm=(192 * GB, off(_MI300)), hbm_bw=(5.3 * TB, off(_MI300)),
              link=(896 * GB, off(_MI300 + " (Infinity Fabric, 7 links)")),
              rates=_mamf(668.4, 1307.4, _fp8_as_bf16(668.4 / 1307.4, 1307.4, 2614.9), 304,
                          "AMD MI300X datasheet (304 CUs)", (256, 256), _AMD_ATTN),
              tdp=(750.0, off(_MI300))),
        _chip("mi355x", "Instinct MI355X", "amd", family="amd-cdna",
              fp32=(157 * t, est(_MI355 + " (~157, not published here)")),
              bf16=(2500 * t, der("1/8 of 20.1 PF sparse FP4 (2x per halving of precision)")),
              fp8=(5000 * t, der("1/4 of 20.1 PF sparse FP4")),
              hbm=(288 * GB, off(_MI355)), hbm_bw=(8 * TB, off(_MI355)),
              link=(1075 * GB, est("7 Infinity Fabric links x 153.6 GB/s; assumption here")),
              rates=_mamf(1565.0, 2500, _fp8_as_bf16(1565.0 / 2500, 2500, 5000), 256,
                          "AMD MI355X (256 CUs)", (256, 256), _AMD_ATTN),
              tdp=(1400.0, off(_MI355 + " (1,400 W TBP)"))),
        _chip("cpu-local", "This machine's CPU (one process)", "cpu", family="cpu",
              fp32=(100e9, est("placeholder until `ultracluster calibrate` measures it")),
              bf16=(100e9, est("no native bf16 matmul units; same as fp32")),
              fp8=(None, est("no FP8")),
              hbm=(8 * GIB, est("share of host RAM; assumption")),
              hbm_bw=(10 * GB, est("placeholder until `ultracluster calibrate` measures it")),
              link=(5 * GB, est("loopback memory copy; placeholder until calibrated")),
              rates=_Rates(bf16=(1.0, est("the peak is what `calibrate` measures for a large GEMM")),
                           fp8=(None, est("no FP8")),
                           attention=(1.0, est("attention runs as GEMMs on the CPU")),
                           units=(1, est("one process")), tile=((1, 1), est("no tiles"))),
              tdp=(65.0, est("desktop-class CPU package power; assumption")),
              idle=(10.0, est("assumption"))),
    ]
    return {c.name: c for c in chips}


CHIPS: dict[str, Chip] = _catalogue()


def get_chip(name: str) -> Chip:
    """The catalogue chip `name`, or a `ConfigError` listing the known keys."""
    try:
        return CHIPS[name]
    except KeyError:
        raise ConfigError(
            f"chip: unknown key {name!r} (known: {', '.join(sorted(CHIPS))})"
        ) from None
