"""``ultracluster simulate``: predict one plan."""

from __future__ import annotations

import argparse
from typing import Any

from ultracluster.cli._inputs import add_workload_args
from ultracluster.cli._output import output
from ultracluster.cli._types import whole
from ultracluster.cluster import load_cluster
from ultracluster.errors import ConfigError
from ultracluster.plan import ParallelDims, Plan, SiteSync, load_plan, schedule_for
from ultracluster.plan.plan import (MAX_BATCH, MAX_DEGREE, MAX_FRAGMENTS, MAX_INNER_STEPS,
                                    MAX_SEQ_LEN)
from ultracluster.plan.vocab import Attention, Precision, Recompute, SyncMode, words
from ultracluster.report import tables_sim
from ultracluster.simulate import estimate
from ultracluster.simulate.calibration import interval_json, model_class
from ultracluster.units import parse_count
from ultracluster.workload import TrainingJob, load_model
from ultracluster.workload.job import DEFAULT_SEQ_LEN


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``simulate``."""
    p = sub.add_parser("simulate", help="predict one plan: step time, MFU, memory, energy, cost")
    add_workload_args(p)
    p.add_argument("--plan", help="plan .toml (from `plan --save`); overrides the flags below")
    for name in ("tp", "pp", "vpp", "cp", "ep"):
        p.add_argument(f"--{name}", type=whole(1, MAX_DEGREE), default=1)
    p.add_argument("--dp", type=whole(1, MAX_DEGREE), default=None,
                   help="default: the rest of the cluster")
    p.add_argument("--zero", type=int, default=1, choices=[0, 1, 2, 3])
    p.add_argument("--recompute", default=Recompute.SELECTIVE, choices=words(Recompute))
    p.add_argument("--recompute-every", type=whole(1, MAX_DEGREE), default=1, metavar="N",
                   help="apply --recompute to one block in every N (torchtitan's "
                        "selective_ac_option; default 1: every block)")
    p.add_argument("--micro-batch", type=whole(1, MAX_BATCH), default=1)
    p.add_argument("--global-batch", default=None,
                   help="sequences (2048) or tokens (16M); default 16M tokens")
    p.add_argument("--seq-len", type=whole(1, MAX_SEQ_LEN), default=DEFAULT_SEQ_LEN)
    p.add_argument("--precision", default=Precision.BF16,
                   choices=[w for w in words(Precision) if w != Precision.FP32])
    p.add_argument("--attention", default=Attention.FLASH, choices=words(Attention),
                   help="flash (scores never stored) or eager (Megatron-LM 2022: scores, "
                        "softmax and dropout mask kept)")
    p.add_argument("--no-sequence-parallel", action="store_true")
    p.add_argument("--tp-overlap", action="store_true", help="overlap TP comm with GEMMs")
    p.add_argument("--ep-overlap", action="store_true", help="overlap MoE all-to-all")
    p.add_argument("--no-pp-overlap", action="store_true",
                   help="interleaved schedule: block on every pipeline send, as Megatron-LM's "
                        "--no-overlap-p2p-communication (default: overlapped, Megatron-Core)")
    p.add_argument("--grad-reduce-bf16", action="store_true",
                   help="keep and reduce gradients in bf16, as NeMo's performance recipes "
                        "(default: fp32, Megatron-LM's main_grad)")
    p.add_argument("--no-tp-async", action="store_true",
                   help="block on every tensor-parallel collective, as Megatron-LM v2.x and "
                        "PyTorch DTensor do (default: the backward's column-parallel "
                        "collectives run behind its GEMMs, as Megatron-LM since v3.0 and "
                        "Transformer Engine)")
    p.add_argument("--recompute-early-stop", action="store_true",
                   help="full recomputation stops before each layer's last GEMM, as PyTorch's "
                        "non-reentrant checkpoint (torchtitan) and JAX's remat (MaxText) do "
                        "(default: the whole forward again, as Megatron)")
    p.add_argument("--site-sync", default=SyncMode.SYNC, choices=words(SyncMode))
    p.add_argument("--inner-steps", type=whole(1, MAX_INNER_STEPS), default=500)
    p.add_argument("--sync-bits", type=int, default=16, choices=[32, 16, 8, 4])
    p.add_argument("--fragments", type=whole(1, MAX_FRAGMENTS), default=1)
    p.add_argument("--figure", help="PNG: timeline of one step per stage and memory per chip")
    p.set_defaults(handler=run_simulate)


def plan_from_args(args: argparse.Namespace, *, num_chips: int) -> Plan:
    """The plan ``--plan`` names, or the one the flags describe (``--dp`` defaults to the chips
    the model-parallel degrees leave)."""
    if args.plan:
        return load_plan(args.plan)
    for name in ("tp", "pp", "vpp", "cp", "ep", "micro_batch", "seq_len"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')}: {getattr(args, name)} must be >= 1")
    mp = args.tp * args.pp * args.cp
    dp = args.dp if args.dp is not None else num_chips // mp
    if dp < 1:
        raise ConfigError(f"--tp x --pp x --cp = {mp} is more than the cluster's {num_chips:,} "
                          "chips")
    gb_raw = parse_count(args.global_batch, field="--global-batch") if args.global_batch \
        else 16 * 1024**2
    seqs = TrainingJob.batch_seqs(global_batch=gb_raw, seq_len=args.seq_len)
    return Plan(
        dims=ParallelDims(tp=args.tp, pp=args.pp, vpp=args.vpp, dp=dp, cp=args.cp, ep=args.ep,
                          sequence_parallel=not args.no_sequence_parallel),
        micro_batch=args.micro_batch, global_batch=seqs, seq_len=args.seq_len,
        zero=args.zero, recompute=args.recompute, recompute_every=args.recompute_every,
        precision=args.precision, schedule=schedule_for(args.vpp), attention=args.attention,
        tp_comm_overlap=args.tp_overlap, ep_comm_overlap=args.ep_overlap,
        pp_comm_overlap=not args.no_pp_overlap, tp_async_backward=not args.no_tp_async,
        grad_reduce_in_fp32=not args.grad_reduce_bf16,
        recompute_early_stop=args.recompute_early_stop,
        site_sync=SiteSync(mode=args.site_sync, inner_steps=args.inner_steps,
                           bits=args.sync_bits, fragments=args.fragments),
    )


def run_simulate(args: argparse.Namespace) -> int:
    """Estimate one plan on one cluster for one model and job."""
    cluster = load_cluster(args.cluster)
    model = load_model(args.model)
    plan = plan_from_args(args, num_chips=cluster.num_chips)
    job = TrainingJob(tokens=parse_count(args.tokens, field="--tokens"), seq_len=plan.seq_len,
                      global_batch_seqs=plan.global_batch, precision=plan.precision)
    est = estimate(cluster=cluster, model=model, job=job, plan=plan,
                   price_per_chip_hour=args.price_per_chip_hour)
    doc: dict[str, Any] = est.to_json() | {"cluster": cluster.name, "model": model.name,
                                           "tokens": job.tokens}
    doc["interval"] = interval_json(step_time_s=est.step_time_s, tokens_per_s=est.tokens_per_s,
                                    mfu=est.mfu, time_to_train_s=est.time_to_train_s,
                                    cls=model_class(model))
    return output(args, doc, figure="step_figure", show=tables_sim.print_estimate)
