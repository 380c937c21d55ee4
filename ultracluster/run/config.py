"""The runtime's settings: one frozen record, from flags and an optional plan file.

The same flags serve `ultracluster train` (which launches torchrun) and
`python -m ultracluster.run.train` (what torchrun runs on every node).
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from ultracluster.errors import ConfigError
from ultracluster.plan.plan import load_plan
from ultracluster.plan.vocab import RunSync, SyncMode, parse, words

MODES = words(RunSync)
PERIODIC = tuple(m.value for m in RunSync if m.mode != SyncMode.SYNC)
"""The strategies that sync sites every H steps, not every step (diloco, streaming)."""
FailureDomain = Literal["job", "site"]
DOMAINS: tuple[FailureDomain, ...] = ("job", "site")
LrSchedule = Literal["cosine", "constant"]
SCHEDULES: tuple[LrSchedule, ...] = ("cosine", "constant")


# The runtime's DiLoCo defaults, chosen by `benchmarks/sweep_outer.py` at equal tokens on this
# machine (2 sites, the 0.43M model, 8.6M tokens, 8-bit exchange; docs/runtime.md, "Defaults"):
# the DiLoCo paper's outer step (lr 0.7, Nesterov momentum 0.9, for 8 replicas from a
# pretrained model with H = 500) ended 14% above DDP here; momentum 0.5 and H = 30 end 2.7%
# above it, with 113x fewer inter-site bytes than DDP.
DEFAULT_INNER_STEPS = 30
"""H: inner steps between outer steps (the sweep: +2.65% at H = 30, +2.94% at H = 50)."""
DEFAULT_OUTER_LR = 0.7
"""Outer Nesterov learning rate (the DiLoCo paper's; the sweep kept it)."""
DEFAULT_OUTER_MOMENTUM = 0.5
"""Outer Nesterov momentum (the paper's 0.9 was +13.3% over two seeds, 0.5 +3.5% at H = 50)."""
DEFAULT_STREAMING_FRAGMENTS = 3
"""F for streaming: one fragment every H/F = 10 steps at the default H (the sweep: +2.36%)."""
DEFAULT_SYNC_WARMUP_STEPS = 100
"""DDP steps across sites before the first outer step (post-local SGD, Lin et al. 2020). Over
five seeds without it the defaults ended +2.3% to +7.1% above DDP, the gap forming over steps
150-450; on the worst seed 50, 100 and 150 warm-up steps gave +2.69%, +2.12%, +1.41%
(docs/runtime.md). Capped at a tenth of --steps (`sync_warmup_default`)."""
SYNC_WARMUP_AUTO = -1
"""`RunConfig.sync_warmup_steps` before it is resolved: the mode's default."""


def sync_warmup_default(steps: int) -> int:
    """The default DDP warm-up of a diloco/streaming run of `steps` steps in the job failure
    domain: DEFAULT_SYNC_WARMUP_STEPS, but never more than a tenth of the run, so a short run
    still trains as DiLoCo for most of it. Its cost is fixed: one fp32 gradient exchange a step,
    a few hundred outer steps' worth of bytes, small against a long run."""
    return min(DEFAULT_SYNC_WARMUP_STEPS, steps // 10)


@dataclass(frozen=True, kw_only=True, slots=True)
class RunConfig:
    """Everything one training run needs (saved in the run folder and in checkpoints)."""

    model: str = "tiny"
    data: str | None = None
    sites: int = 2
    workers_per_site: int = 1
    site_sync: RunSync = RunSync.DILOCO
    """The strategy (its plan mode and how it reduces gradients: `plan.vocab.RunSync`)."""
    inner_steps: int = DEFAULT_INNER_STEPS
    sync_bits: int = 8
    fragments: int = 0
    """F; 0 is the mode's default: DEFAULT_STREAMING_FRAGMENTS for streaming, else 1."""
    wan_gbps: float | None = None
    wan_latency_ms: float = 0.0
    steps: int = 60
    micro_batch: int = 8
    seq_len: int = 128
    lr: float = 1e-3
    warmup_steps: int = 10
    lr_schedule: LrSchedule = "cosine"
    min_lr_ratio: float = 0.1
    outer_lr: float = DEFAULT_OUTER_LR
    outer_momentum: float = DEFAULT_OUTER_MOMENTUM
    sync_warmup_steps: int = SYNC_WARMUP_AUTO
    """SYNC_WARMUP_AUTO is the default: `sync_warmup_default(steps)` for diloco/streaming in the
    job failure domain, else 0 (ddp has no outer step; a torchft site group has no per-step
    cross-site exchange to warm up with)."""
    eval_batches: int = 8
    compile: bool = False
    checkpoint_dir: str | None = None
    checkpoint_every: int = 0
    keep_checkpoints: int = 3
    async_checkpoint: bool = True
    resume: bool = False
    run_dir: str = "runs/latest"
    seed: int = 0
    max_restarts: int = 3
    failure_domain: FailureDomain = "job"
    sync_timeout: float = 120.0
    straggler_site: int | None = None
    straggler_slowdown: float = 1.0
    inner_steps_by_time: bool = False
    kill_site_every: float | None = None
    kill_site_mtbf: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "site_sync", parse(
            RunSync, self.site_sync, f"--site-sync: {self.site_sync!r} must be one of {MODES}"))
        if self.fragments == 0:
            object.__setattr__(self, "fragments", DEFAULT_STREAMING_FRAGMENTS
                               if self.site_sync.mode == SyncMode.STREAMING else 1)
        if self.sync_warmup_steps == SYNC_WARMUP_AUTO:
            periodic_job = (self.site_sync.mode != SyncMode.SYNC and self.failure_domain == "job"
                            and self.sites > 1)
            object.__setattr__(self, "sync_warmup_steps",
                               sync_warmup_default(self.steps) if periodic_job else 0)
        for name in ("sites", "workers_per_site", "inner_steps", "fragments", "steps",
                     "micro_batch", "seq_len", "eval_batches"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')}: {getattr(self, name)} must be >= 1")
        if self.lr_schedule not in SCHEDULES:
            raise ConfigError(f"--lr-schedule: {self.lr_schedule!r} must be one of {SCHEDULES}")
        # finite and in range; the bounds are where training stops making sense, not tuning
        _in_range("lr", self.lr, 0.0, 10.0, low_open=True)
        _in_range("min_lr_ratio", self.min_lr_ratio, 0.0, 1.0)
        _in_range("outer_lr", self.outer_lr, 0.0, 10.0, low_open=True)
        _in_range("outer_momentum", self.outer_momentum, 0.0, 1.0, high_open=True)
        _in_range("wan_latency_ms", self.wan_latency_ms, 0.0, 60_000.0)
        if self.wan_gbps is not None:
            _in_range("wan_gbps", self.wan_gbps, 0.0, 1e6, low_open=True)
        if self.sync_bits not in (32, 16, 8, 4):
            raise ConfigError(f"--sync-bits: {self.sync_bits} must be 32, 16, 8 or 4")
        if self.site_sync.mode == SyncMode.STREAMING and self.inner_steps % self.fragments:
            raise ConfigError(f"--inner-steps {self.inner_steps} must be a multiple of "
                              f"--fragments {self.fragments}")
        for name in ("checkpoint_every", "warmup_steps", "sync_warmup_steps", "max_restarts"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name.replace('_', '-')}: {getattr(self, name)} "
                                  "must be >= 0")
        if self.keep_checkpoints < 1:
            raise ConfigError(f"--keep-checkpoints: {self.keep_checkpoints} must be >= 1")
        if self.checkpoint_every and not self.checkpoint_dir:
            raise ConfigError("--checkpoint-every needs --checkpoint-dir")
        self._check_failures()

    def _check_failures(self) -> None:
        if self.failure_domain not in DOMAINS:
            raise ConfigError(f"--failure-domain: {self.failure_domain!r} must be one of "
                              f"{DOMAINS}")
        if self.failure_domain == "site":
            if self.site_sync.mode == SyncMode.SYNC or self.sites < 2:
                raise ConfigError(f"--failure-domain site needs --site-sync "
                                  f"{' or '.join(PERIODIC)} and --sites >= 2 "
                                  f"(got {self.site_sync}, {self.sites} sites)")
            if self.sync_warmup_steps:
                raise ConfigError("--sync-warmup-steps applies to --failure-domain job (a "
                                  "warm-up averages gradients across sites every step)")
        if not 0 < self.sync_timeout <= 86_400:
            raise ConfigError(f"--sync-timeout: {self.sync_timeout} must be in (0, 86400] s")
        if self.max_restarts < 0:
            raise ConfigError(f"--max-restarts: {self.max_restarts} must be >= 0")
        if self.straggler_site is not None and not 0 <= self.straggler_site < self.sites:
            raise ConfigError(f"--straggler-site: {self.straggler_site} must be in "
                              f"[0, {self.sites - 1}]")
        if not 1 <= self.straggler_slowdown <= 1000:
            raise ConfigError(f"--straggler-slowdown: {self.straggler_slowdown} must be in "
                              "[1, 1000]")
        if self.straggler_slowdown > 1 and self.straggler_site is None:
            raise ConfigError("--straggler-slowdown needs --straggler-site")
        if self.inner_steps_by_time and (self.failure_domain != "site"
                                         or self.site_sync != "diloco"):
            raise ConfigError("--inner-steps-by-time needs --failure-domain site and --site-sync "
                              f"diloco (got {self.failure_domain}, {self.site_sync})")
        if self.kill_site_every is not None and self.kill_site_mtbf is not None:
            raise ConfigError("--kill-site-every and --kill-site-mtbf exclude each other")
        for name in ("kill_site_every", "kill_site_mtbf"):
            v = getattr(self, name)
            if v is not None:
                if not 0 < v <= 86_400:
                    raise ConfigError(f"--{name.replace('_', '-')}: {v} must be in (0, 86400] s")
                if self.sites < 2:
                    raise ConfigError(f"--{name.replace('_', '-')} needs --sites >= 2 "
                                      "(site 0 is never killed)")

    @property
    def world(self) -> int:
        """Ranks in the job: sites x workers per site."""
        return self.sites * self.workers_per_site

    def to_json(self) -> dict[str, Any]:
        """Every field by name (the strategy as its word), as saved in ``config.json``."""
        return asdict(self)


def _in_range(name: str, v: float, lo: float, hi: float, *, low_open: bool = False,
              high_open: bool = False) -> None:
    """`v` finite and within [lo, hi] (an open end where asked), else one line naming the flag."""
    ok = math.isfinite(v) and (v > lo if low_open else v >= lo) and (v < hi if high_open
                                                                      else v <= hi)
    if not ok:
        rng = f"{'(' if low_open else '['}{lo:g}, {hi:g}{')' if high_open else ']'}"
        raise ConfigError(f"--{name.replace('_', '-')}: {v} must be a finite number in {rng}")


_LOCAL_ONLY = ("inner_steps", "sync_bits", "fragments", "sync_warmup_steps")


def add_flags(p: argparse.ArgumentParser) -> None:
    """Add the runtime's flags to `p` (every default None, so `config_from_args` can tell a
    given flag from an absent one)."""
    p.add_argument("--plan", help="plan .toml (site sync, batch); flags override it")
    p.add_argument("--model", help="tiny | preset | HF config.json (default tiny)")
    p.add_argument("--data", help="text file or folder (default: Python's stdlib sources)")
    p.add_argument("--sites", type=int)
    p.add_argument("--workers-per-site", type=int)
    p.add_argument("--site-sync", choices=MODES)
    p.add_argument("--inner-steps", type=int,
                   help=f"H, for diloco/streaming (default {DEFAULT_INNER_STEPS})")
    p.add_argument("--sync-bits", type=int, choices=[32, 16, 8, 4])
    p.add_argument("--fragments", type=int,
                   help=f"F, for streaming (default {DEFAULT_STREAMING_FRAGMENTS})")
    p.add_argument("--wan-gbps", type=float)
    p.add_argument("--wan-latency-ms", type=float)
    p.add_argument("--steps", type=int)
    p.add_argument("--micro-batch", type=int)
    p.add_argument("--seq-len", type=int)
    p.add_argument("--lr", type=float, help="peak inner learning rate (default 1e-3)")
    p.add_argument("--warmup-steps", type=int, help="linear warm-up steps (default 10)")
    p.add_argument("--lr-schedule", choices=SCHEDULES,
                   help="after warm-up: cosine decay to --min-lr-ratio x lr over --steps "
                        "(default), or constant")
    p.add_argument("--min-lr-ratio", type=float, help="cosine floor as a fraction of lr (0.1)")
    p.add_argument("--outer-lr", type=float,
                   help=f"DiLoCo outer Nesterov lr (default {DEFAULT_OUTER_LR})")
    p.add_argument("--outer-momentum", type=float,
                   help=f"DiLoCo outer momentum (default {DEFAULT_OUTER_MOMENTUM})")
    p.add_argument("--sync-warmup-steps", type=int,
                   help="diloco/streaming: train the first N steps as one data-parallel job "
                        "across sites before the first outer step (default "
                        f"{DEFAULT_SYNC_WARMUP_STEPS}, at most a tenth of --steps; 0 with "
                        "--failure-domain site; 0 turns it off)")
    p.add_argument("--compile", action="store_true", default=None,
                   help="torch.compile each transformer block (for GPUs; slow to start on CPU)")
    p.add_argument("--checkpoint-dir",
                   help="DCP checkpoints (job: every site's state; site: the state the sites "
                        "share, written by one site; shared storage on many machines)")
    p.add_argument("--checkpoint-every", type=int,
                   help="save every K steps (site: at the first committed outer step at or "
                        "after each multiple of K)")
    p.add_argument("--keep-checkpoints", type=int,
                   help="complete checkpoints kept, newest first (default 3)")
    p.add_argument("--sync-checkpoint", dest="async_checkpoint", action="store_false",
                   default=None, help="write checkpoints in the training thread (default: "
                                      "in the background, DCP's async_save)")
    p.add_argument("--resume", action="store_true", default=None,
                   help="start from the newest intact checkpoint in --checkpoint-dir")
    p.add_argument("--run-dir")
    p.add_argument("--seed", type=int)
    p.add_argument("--max-restarts", type=int,
                   help="restarts torchrun allows (per site with --failure-domain site; 3)")
    p.add_argument("--failure-domain", choices=DOMAINS,
                   help="job: any failure restarts every rank from the last checkpoint "
                        "(default); site: each site is a torchft replica group that leaves and "
                        "rejoins while the others train (diloco/streaming)")
    p.add_argument("--sync-timeout", type=float,
                   help="seconds: process-group timeout, and how long the sites present at an "
                        "outer step wait for a late one before dropping it (120)")
    p.add_argument("--straggler-site", type=int, help="inject a slow site (tests, benchmarks)")
    p.add_argument("--straggler-slowdown", type=float,
                   help="that site's steps take X times as long (X >= 1)")
    p.add_argument("--inner-steps-by-time", action="store_true", default=None,
                   help="--failure-domain site, diloco: bound each outer step by the wall time "
                        "the fastest site needs for its H inner steps (step times measured and "
                        "shared in every exchange); a slower site runs fewer inner steps and "
                        "its pseudo-gradient is weighted by its tokens, instead of arriving "
                        "late and being dropped after --sync-timeout (off: every site runs H)")
    p.add_argument("--kill-site-every", type=float,
                   help="seconds: SIGKILL every process of one site other than site 0, in turn")
    p.add_argument("--kill-site-mtbf", type=float,
                   help="seconds: as --kill-site-every, times drawn from an exponential law")


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """Defaults, then the plan file, then explicit flags."""
    values: dict[str, Any] = {}
    if getattr(args, "plan", None):
        plan = load_plan(args.plan)
        s = plan.site_sync
        values |= {"site_sync": RunSync.of_plan(s.mode),
                   "inner_steps": s.inner_steps, "sync_bits": s.bits,
                   "fragments": s.fragments, "micro_batch": plan.micro_batch,
                   "seq_len": plan.seq_len}
    for f in RunConfig.__dataclass_fields__:
        v = getattr(args, f, None)
        if v is not None:
            values[f] = v
    if values.get("sync_warmup_steps", 0) < 0:  # SYNC_WARMUP_AUTO is not a flag's value
        raise ConfigError(f"--sync-warmup-steps: {values['sync_warmup_steps']} must be >= 0")
    mode = parse(RunSync, values.get("site_sync", RunSync.DILOCO),
                 f"--site-sync: {values.get('site_sync')!r} must be one of {MODES}")
    if mode.mode == SyncMode.SYNC and not getattr(args, "plan", None):
        given = [f for f in _LOCAL_ONLY if getattr(args, f, None) is not None]
        if given:
            raise ConfigError(f"--{given[0].replace('_', '-')} applies to {'/'.join(PERIODIC)}, "
                              f"not --site-sync {mode}")
    if mode.mode == SyncMode.DILOCO and getattr(args, "fragments", None) not in (None, 1):
        raise ConfigError("--fragments applies to --site-sync streaming")
    return RunConfig(**values)


def save_config(cfg: RunConfig, path: Path) -> None:
    """Write `cfg` as JSON at `path`, atomically (the file `--config` and `load_config` read)."""
    from ultracluster.files import atomic_write_text

    atomic_write_text(path, json.dumps(cfg.to_json(), indent=2))


def load_config(path: str | Path) -> RunConfig:
    """The `RunConfig` saved at `path` by `save_config`, checked again."""
    return RunConfig(**json.loads(Path(path).read_text()))
