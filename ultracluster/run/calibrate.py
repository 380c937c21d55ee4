"""Measure this machine as a cluster: matmul FLOP/s per process across shapes (the efficiency
curve), causal attention's FLOP/s, memory bandwidth and AdamW's share of it, a transformer
layer's fixed cost, and gloo collective bandwidth and latency between local processes; each
the median of its timed rounds, as the runtime reports its median step.

The result is the `local` preset with its chip, system and efficiency overridden by the
measurements, written as a cluster TOML file that `simulate` (and `train --predict`) accept.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ultracluster.cluster.load import cluster_to_toml
from ultracluster.cluster.model import Cluster
from ultracluster.cluster.presets import local
from ultracluster.files import atomic_write_text

MATMUL_SIZES = (32, 64, 128, 256, 512, 1024)
"""Reduction sizes k of the calibration GEMMs."""
MATMUL_ROWS = 1024
"""Rows m of the calibration GEMMs: a micro-batch's tokens, as training multiplies them."""
MATMUL_COLS = (256, 1024)
"""Output widths n of the calibration GEMMs."""
AR_SIZES = (1 << 10, 1 << 14, 1 << 18, 1 << 20, 1 << 22)


@dataclass(frozen=True, kw_only=True, slots=True)
class Measurements:
    matmul_flops: dict[str, float]
    """Achieved FLOP/s of each ``MxNxK`` fp32 matmul (m x k times k x n), one thread."""
    peak_flops: float
    half_dim: float
    """Fitted: efficiency(k) = k / (k + half_dim) of the fitted peak."""
    memory_bytes_per_s: float
    memory_eff: float
    """Achieved fraction of `memory_bytes_per_s` for memory-bound kernels, from a timed AdamW
    step (the simulator counts 30 bytes of traffic per parameter for it)."""
    gloo_bytes_per_s: float
    """Fitted bus bandwidth of all-reduce between two local processes."""
    gloo_latency_s: float
    attention_flops: float = 0.0
    """Achieved FLOP/s of causal fused attention, forward and backward (`measure_attention`),
    counted as the simulator counts it."""
    layer_overhead_s: float = 0.0
    """Fixed seconds per transformer layer per micro-batch, forward and backward, that do not
    scale with its size: eager PyTorch's per-operator dispatch (`measure_layer_overhead`)."""

    def to_json(self) -> dict[str, Any]:
        """The measured figures as `ultracluster calibrate --json` prints them."""
        return {"matmul_flops": self.matmul_flops, "peak_flops": self.peak_flops,
                "half_dim": self.half_dim, "memory_bytes_per_s": self.memory_bytes_per_s,
                "memory_eff": self.memory_eff,
                "gloo_bytes_per_s": self.gloo_bytes_per_s, "gloo_latency_s": self.gloo_latency_s,
                "attention_flops": self.attention_flops,
                "attention_eff_ratio": self.attention_eff_ratio,
                "layer_overhead_s": self.layer_overhead_s}

    @property
    def attention_eff_ratio(self) -> float:
        """Attention's rate over the GEMM peak: the simulator's ``attention_eff_ratio`` for
        this chip (whose catalogue attention fraction is 1), at most 1."""
        return min(1.0, self.attention_flops / self.peak_flops) if self.attention_flops else 1.0


def _typical_time(fn: Any, *, repeat: int = 5, min_s: float = 0.05) -> float:
    """Seconds per call of `fn`: the median of `repeat` rounds, each the mean over at least
    `min_s` of calls. The median, not the quickest round, because the runtime's step time is
    a median too: a prediction from best-case rates reads faster than any typical step (on
    this machine GEMMs' median runs ~6% below their best)."""
    rounds = []
    for _ in range(repeat):
        n, t0 = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            dt = time.perf_counter() - t0
            if dt >= min_s:
                break
        rounds.append(dt / n)
    return statistics.median(rounds)


def measure_matmul() -> dict[str, float]:
    """Best achieved FLOP/s of fp32 matmuls on one thread, shaped as training runs them:
    `MATMUL_ROWS` tokens times each width in `MATMUL_COLS`, for each reduction size in
    `MATMUL_SIZES` (keys ``MxNxK``). Square GEMMs overstate what a CPU reaches on these
    shapes, whose operands fall out of cache."""
    torch.set_num_threads(1)
    out = {}
    m = MATMUL_ROWS
    for n in MATMUL_COLS:
        for k in MATMUL_SIZES:
            a, b = torch.randn(m, k), torch.randn(k, n)
            out[f"{m}x{n}x{k}"] = 2 * m * n * k / _typical_time(lambda a=a, b=b: a @ b)
    return out


def fit_half_dim(rates: dict[str, float]) -> tuple[float, float]:
    """Peak and half-efficiency size d of rate(k) = peak x k / (k + d) over the reduction
    size k (the simulator's K-loop fill, `simulate/compute.py`), least squares in log space
    on a grid of d, each d with its best peak (the geometric mean of rate x (k + d) / k)."""
    ks = {key: float(key.rsplit("x", 1)[1]) for key in rates}
    best = (float("inf"), 0.0, max(rates.values()))
    for d in [x * 2.0 for x in range(0, 513)]:
        logs = [math.log(r * (ks[key] + d) / ks[key]) for key, r in rates.items()]
        log_peak = sum(logs) / len(logs)
        err = sum((x - log_peak) ** 2 for x in logs)
        if err < best[0]:
            best = (err, d, math.exp(log_peak))
    return best[2], best[1]


def measure_memory() -> float:
    """Memory bandwidth (bytes/s) of a 64 MiB copy: read and write counted, median of five."""
    x = torch.empty(16 * 1024 * 1024)  # 64 MiB
    y = torch.empty_like(x)
    return 2 * x.numel() * 4 / _typical_time(lambda: y.copy_(x), repeat=5, min_s=0.1)


ADAM_BYTES_PER_PARAM = 34.0
"""The simulator's count for an AdamW step (`simulate/core.py`), repeated here (run must not
import simulate; a test checks they agree), so that the simulator's optimizer time at the
calibrated efficiency is the measured one."""


def measure_adamw_eff(memory_bytes_per_s: float) -> float:
    """Memory-bound efficiency: AdamW's bytes/param (the simulator's count) at the measured bandwidth, vs. its time."""
    torch.set_num_threads(1)
    p = torch.nn.Parameter(torch.randn(4 * 1024 * 1024))
    p.grad = torch.randn_like(p)
    opt = torch.optim.AdamW([p], lr=1e-3)
    opt.step()
    t = _typical_time(opt.step, repeat=3, min_s=0.2)
    return min(1.0, ADAM_BYTES_PER_PARAM * p.numel() / t / memory_bytes_per_s)


ATTENTION_BWD_RATIO = 2.5
"""The simulator's flash-attention backward FLOPs over forward (`simulate/compute.py`
``FLASH_BWD_RATIO``), repeated here as `ADAM_BYTES_PER_PARAM` is (a test keeps them equal)."""


def measure_attention() -> float:
    """FLOP/s of causal ``scaled_dot_product_attention``, forward and backward, on one thread,
    at the shape the runtime's default run gives it (`RunConfig`'s micro-batch and sequence
    length, its model's heads and head width), counted as the simulator counts attention:
    the model's own forward count (`TransformerSpec.attention_flops_per_token_fwd`, the causal
    half), `ATTENTION_BWD_RATIO` times that backward. PyTorch's CPU kernel runs far below the GEMM rate (a quarter of it
    here), which a GEMM-rate assumption would miss."""
    import torch.nn.functional as F

    from ultracluster.run.config import RunConfig
    from ultracluster.workload import load_model

    torch.set_num_threads(1)
    cfg = RunConfig()
    spec = load_model(cfg.model)
    b, s, h = cfg.micro_batch, cfg.seq_len, spec.num_heads
    d = spec.d_head
    q, k, v = (torch.randn(b, h, s, d, requires_grad=True) for _ in range(3))
    grad = torch.ones(b, h, s, d)

    def step() -> None:
        F.scaled_dot_product_attention(q, k, v, is_causal=True).backward(grad)  # type: ignore[no-untyped-call]  # untyped stub

    step()
    fwd = spec.attention_flops_per_token_fwd(s) / spec.num_layers * b * s  # one layer's
    return (1 + ATTENTION_BWD_RATIO) * fwd / _typical_time(step)


OVERHEAD_LAYERS = (1, 5)
"""Depths of the two narrow models whose difference is four layers' fixed cost."""
OVERHEAD_REPEATS = 200
"""Timed forward-backward passes of each (about 2 ms each here)."""


def measure_layer_overhead() -> float:
    """Seconds per layer per micro-batch that do not scale with the layer's size: the runtime's
    own transformer block (`run/model.py`), 64 wide, on one token, forward and backward, so
    its arithmetic is negligible and what remains is the cost of running its ~60 operators
    (dispatch, autograd bookkeeping, allocation). Two depths, differenced, leave out the
    embedding, output layer and loss. The simulator adds it to every layer of every
    micro-batch (`Efficiency.layer_overhead_s`): a small micro-batch's step is mostly this."""
    from dataclasses import replace

    from ultracluster.run.model import Transformer
    from ultracluster.workload.presets import tiny

    torch.set_num_threads(1)
    times = []
    for layers in OVERHEAD_LAYERS:
        spec = replace(tiny(), num_layers=layers, hidden=64, num_heads=4, num_kv_heads=4,
                       ffn_hidden=128, vocab=256)
        model = Transformer(spec, max_seq_len=8)
        ids = torch.zeros(1, 1, dtype=torch.long)

        def step(model: Transformer = model, ids: torch.Tensor = ids) -> None:
            model.loss(ids, ids).backward()  # type: ignore[no-untyped-call]  # untyped stub

        step()
        laps = []
        for _ in range(OVERHEAD_REPEATS):
            t0 = time.perf_counter()
            step()
            laps.append(time.perf_counter() - t0)
        times.append(statistics.median(laps))  # typical, as every figure here
    return max(0.0, (times[1] - times[0]) / (OVERHEAD_LAYERS[1] - OVERHEAD_LAYERS[0]))


def _ar_worker(rank: int, store: str, out: Any) -> None:
    torch.set_num_threads(1)
    # rendezvous through a file, as the runtime's torchrun does: no port to choose or collide
    # on; gloo's own connections take ports the OS assigns
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        res = {}
        for nbytes in AR_SIZES:
            t = torch.zeros(nbytes // 4)
            for _ in range(3):
                dist.all_reduce(t)
            times = []
            for _ in range(10):
                dist.barrier()
                t0 = time.perf_counter()
                dist.all_reduce(t)
                times.append(time.perf_counter() - t0)
            res[nbytes] = statistics.median(times)
        if rank == 0:
            out.update(res)
    finally:
        dist.destroy_process_group()


def measure_gloo() -> tuple[float, float]:
    """(bus bandwidth, latency) of all-reduce between two processes: t = lat + B / bw."""
    with tempfile.TemporaryDirectory() as tmp, mp.Manager() as m:
        out = m.dict()
        mp.spawn(_ar_worker, args=(str(Path(tmp) / "store"), out), nprocs=2, join=True)  # type: ignore[attr-defined,no-untyped-call]  # untyped in the stubs
        res = dict(out)
    xs, ys = list(res), list(res.values())
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return 1.0 / slope, max(my - slope * mx, 1e-6)


def measure() -> Measurements:
    """Every figure `ultracluster calibrate` reports: matmul rates and their fit, gloo
    bandwidth and latency, memory bandwidth, AdamW's efficiency."""
    rates = measure_matmul()
    peak, half = fit_half_dim(rates)
    bw, lat = measure_gloo()
    mem = measure_memory()
    return Measurements(matmul_flops=rates, peak_flops=peak, half_dim=half,
                        memory_bytes_per_s=mem, memory_eff=measure_adamw_eff(mem),
                        gloo_bytes_per_s=bw, gloo_latency_s=lat,
                        attention_flops=measure_attention(),
                        layer_overhead_s=measure_layer_overhead())


def calibrated_cluster(m: Measurements) -> Cluster:
    """The `local` preset with this machine's measured figures."""
    from dataclasses import replace

    base = local()
    site = base.sites[0]
    chip = replace(site.system.chip, peak_flops_fp32=m.peak_flops, peak_flops_bf16=m.peak_flops,
                   hbm_bytes_per_s=m.memory_bytes_per_s,
                   scale_up_bytes_per_s=2 * m.gloo_bytes_per_s)
    system = replace(site.system, chip=chip, scale_up_bytes_per_s=2 * m.gloo_bytes_per_s,
                     scale_up_latency_s=m.gloo_latency_s, nic_bytes_per_s=m.gloo_bytes_per_s,
                     scale_out_latency_s=m.gloo_latency_s)
    eff = (("matmul_eff_max", 1.0), ("matmul_half_dim", m.half_dim),
           ("memory_eff", m.memory_eff), ("attention_eff_ratio", m.attention_eff_ratio),
           ("layer_overhead_s", m.layer_overhead_s),
           ("scale_up_eff", 1.0), ("scale_out_eff", 1.0))
    site = replace(site, system=system, fabric_bytes_per_s_per_pod=m.gloo_bytes_per_s,
                   fabric_latency_s=m.gloo_latency_s, efficiency=eff)
    return replace(base, sites=(site,), description="this machine, calibrated",
                   assumptions=("measured by `ultracluster calibrate` on "
                                f"{time.strftime('%Y-%m-%d')}: matmul peak "
                                f"{m.peak_flops / 1e9:.1f} GFLOP/s per process, memory "
                                f"{m.memory_bytes_per_s / 1e9:.1f} GB/s, gloo "
                                f"{m.gloo_bytes_per_s / 1e9:.2f} GB/s, "
                                f"{m.gloo_latency_s * 1e6:.0f} us, attention "
                                f"{m.attention_flops / 1e9:.1f} GFLOP/s, "
                                f"{m.layer_overhead_s * 1e3:.2f} ms per layer",))


def save(cluster: Cluster, path: str | Path) -> None:
    """Write `cluster` as a cluster TOML file at `path`, atomically."""
    atomic_write_text(path, cluster_to_toml(cluster))
