"""`ultracluster train` on one machine: start the ranks with torchrun (one torchrun for the
job, or one per site and torchft's lighthouse with `--failure-domain site`), show progress,
inject faults, stop the whole process tree, and sum the job's figures over every attempt.
Imports no torch itself: the ranks do."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ultracluster.errors import ConfigError
from ultracluster.run.config import RunConfig, save_config

Progress = Callable[[dict[str, Any]], None]


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the launcher dies (even by SIGKILL), so
    torchrun stops its ranks and nothing is orphaned (Linux)."""
    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def torchrun_command(cfg: RunConfig, config_path: Path, *, nproc: int, rdzv: Path,
                     run_id: str) -> list[str]:
    """torch's own launcher; the rendezvous goes through a file in the run folder (no port
    open) and rank 0 hosts the ranks' store on loopback (see `train.init_distributed`)."""
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes=1",
            f"--nproc-per-node={nproc}", f"--max-restarts={cfg.max_restarts}",
            "--monitor-interval=0.5", "--rdzv-backend=c10d", f"--rdzv-endpoint={rdzv}",
            "--rdzv-conf=store_type=file", "--local-addr=127.0.0.1", f"--rdzv-id={run_id}",
            "-m", "ultracluster.run.train", "--config", str(config_path)]


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    env["TORCH_DISABLE_SHARE_RDZV_TCP_STORE"] = "1"  # rank 0 hosts the store, on loopback
    if sys.platform == "linux":
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")  # gloo's pairs on loopback too
    return env


@dataclass
class Job:
    """The processes of one training job: torchrun agents (one, or one per site) and,
    for `--failure-domain site`, torchft's lighthouse."""

    cfg: RunConfig
    run_dir: Path
    agents: list[subprocess.Popen[bytes]]
    lighthouse: subprocess.Popen[bytes] | None = None
    logs: list[IO[bytes]] = field(default_factory=list)
    site_failures: int = 0
    returncode: int | None = None

    @property
    def pid(self) -> int:
        """Process id of the first torchrun agent."""
        return self.agents[0].pid

    def poll(self) -> int | None:
        """None while any agent runs; then the first non-zero exit status, or 0."""
        codes = [a.poll() for a in self.agents]
        if any(c is None for c in codes):
            return None
        self.returncode = next((c for c in codes if c), 0)
        return self.returncode

    def worker_pids(self, site: int) -> list[int]:
        """Live ranks of `site` that are children of our agents (read from the pid files the
        ranks write; a pid is trusted only while its parent is one of our torchruns)."""
        ours = {a.pid for a in self.agents}
        pids = []
        for f in (self.run_dir / "ranks").glob("rank-*.pid"):
            try:
                pid, s = (int(v) for v in f.read_text().split())
                stat = Path(f"/proc/{pid}/stat").read_text()
            except (OSError, ValueError):
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if s == site and ppid in ours:
                pids.append(pid)
        return pids

    def stop(self, grace_s: float = 20.0) -> None:
        """SIGTERM every agent (torchrun stops its ranks), then SIGKILL what is left."""
        procs = [p for p in [*self.agents, self.lighthouse] if p is not None]
        stragglers = [pid for s in range(self.cfg.sites) for pid in self.worker_pids(s)]
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        end = time.monotonic() + grace_s
        for p in procs:
            try:
                p.wait(max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for pid in stragglers:  # ranks outlive torchrun only if it was killed mid-stop
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for f in self.logs:
            f.close()


def _popen(cmd: list[str], *, env: dict[str, str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True, preexec_fn=_die_with_parent)


def _start_lighthouse(cfg: RunConfig, run_dir: Path, env: dict[str, str],
                      log: IO[bytes]) -> tuple[subprocess.Popen[bytes], str]:
    addr_file = run_dir / "lighthouse.addr"
    addr_file.unlink(missing_ok=True)
    proc = _popen([sys.executable, "-m", "ultracluster.run.replica", "--bind", "127.0.0.1:0",
                   "--sync-timeout", str(cfg.sync_timeout), "--address-file", str(addr_file)],
                  env=env, log=log)
    end = time.monotonic() + 120
    while not addr_file.exists():
        if proc.poll() is not None or time.monotonic() > end:
            proc.kill()
            raise ConfigError(f"torchft's lighthouse did not start; see {run_dir}/lighthouse.log")
        time.sleep(0.1)
    return proc, addr_file.read_text().strip()


def start(cfg: RunConfig) -> tuple[Job, Path]:
    """Launch the run `cfg` under torchrun (one agent; with `--failure-domain site`, one per
    site and a torchft lighthouse) after clearing the previous run's outputs and saving the
    config; return the job and its run folder."""
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    names = ["summary.json", "faults.jsonl", *[p.name for p in run_dir.glob("corpus-*.bin")]]
    if not cfg.resume:
        names += ["metrics.jsonl", *[f"metrics-site-{s}.jsonl" for s in range(cfg.sites)]]
    for name in names:
        (run_dir / name).unlink(missing_ok=True)
    ranks = run_dir / "ranks"  # this invocation's per-rank logs (every attempt)
    if ranks.is_dir():
        for f in ranks.iterdir():
            f.unlink()
    config_path = run_dir / "config.json"
    save_config(cfg, config_path)
    env = _environment()
    rdzv = run_dir / "rdzv"
    rdzv.mkdir(exist_ok=True)
    job = Job(cfg=cfg, run_dir=run_dir, agents=[])
    if cfg.failure_domain == "job":
        (rdzv / "job").unlink(missing_ok=True)
        job.logs.append((run_dir / "train.log").open("wb"))
        job.agents.append(_popen(torchrun_command(cfg, config_path, nproc=cfg.world,
                                                  rdzv=rdzv / "job", run_id="job"),
                                 env=env, log=job.logs[-1]))
        return job, run_dir
    job.logs.append((run_dir / "lighthouse.log").open("wb"))
    job.lighthouse, address = _start_lighthouse(cfg, run_dir, env, job.logs[-1])
    for s in range(cfg.sites):
        (rdzv / f"site-{s}").unlink(missing_ok=True)
        job.logs.append((run_dir / ("train.log" if s == 0 else f"train-site-{s}.log")).open("wb"))
        job.agents.append(_popen(
            torchrun_command(cfg, config_path, nproc=cfg.workers_per_site,
                             rdzv=rdzv / f"site-{s}", run_id=f"site-{s}"),
            env=env | {"UC_SITE": str(s), "TORCHFT_LIGHTHOUSE": address}, log=job.logs[-1]))
    return job, run_dir


def read_metrics(run_dir: Path, name: str = "metrics.jsonl") -> list[dict[str, Any]]:
    """The rows of the run's metrics log so far (a line still being written is skipped)."""
    path = run_dir / name
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line being written
    return rows


class Injector:
    """`--kill-site-every` / `--kill-site-mtbf`: SIGKILL every rank of one site other than
    site 0, in turn, from the first training step on."""

    def __init__(self, cfg: RunConfig) -> None:
        self.every = cfg.kill_site_every
        self.mtbf = cfg.kill_site_mtbf
        self.rng = random.Random(cfg.seed)
        self.sites = cfg.sites
        self.due: float | None = None
        self.turn = 0

    def _gap(self) -> float:
        if self.mtbf is not None:
            return self.rng.expovariate(1.0 / self.mtbf)
        assert self.every is not None
        return self.every

    def tick(self, job: Job, started: bool) -> None:
        """Kill the next site in turn when its time has come (from the first training step on)."""
        if (self.every is None and self.mtbf is None) or not started:
            return
        now = time.monotonic()
        if self.due is None:
            self.due = now + self._gap()
            return
        if now < self.due:
            return
        site = 1 + self.turn % (self.sites - 1)
        pids = job.worker_pids(site)
        if not pids:  # that site is still restarting: try again shortly
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        job.site_failures += 1
        self.turn += 1
        self.due = now + self._gap()
        with (job.run_dir / "faults.jsonl").open("a") as f:
            f.write(json.dumps({"time": time.time(), "site": site, "pids": pids}) + "\n")


def job_totals(cfg: RunConfig, run_dir: Path, summary: dict[str, Any]) -> dict[str, Any]:
    """Bytes, tokens, restarts and goodput over every attempt of every site, from the ranks'
    own logs (a killed rank's steps included)."""
    steps: list[dict[str, Any]] = []
    rejoins = 0
    attempts: dict[int, int] = {}
    for f in sorted((run_dir / "ranks").glob("rank-*.jsonl")):
        rank = int(f.stem.split("-")[1])
        for row in read_metrics(f.parent, f.name):
            site = rank // cfg.workers_per_site
            attempts[site] = max(attempts.get(site, 0), int(row.get("a", 0)))
            if "event" in row:
                rejoins += row["event"] == "rejoined" and rank % cfg.workers_per_site == 0
            else:
                steps.append(row)
    out: dict[str, Any] = {}
    if not steps:
        return out
    wall = max(r["t1"] for r in steps) - min(r["t0"] for r in steps)
    tokens = sum(int(r["tok"]) for r in steps)
    if cfg.failure_domain == "site":
        useful = sum(int(r["useful"]) for r in steps)
        restarts = sum(attempts.values())
    else:  # the distinct steps of the final trajectory
        useful = cfg.steps * cfg.world * cfg.micro_batch * cfg.seq_len
        restarts = int(summary.get("restarts", 0))
    rows0 = read_metrics(run_dir)
    times = sorted(r["step_s"] for r in rows0) or [float("nan")]
    failure_free = cfg.world * cfg.micro_batch * cfg.seq_len / times[len(times) // 2]
    out |= {"tokens": tokens, "useful_tokens": useful, "restarts": restarts,
            "bytes": {"intra_site": sum(int(r["intra"]) for r in steps),
                      "inter_site": sum(int(r["inter"]) for r in steps)},
            "job_wall_s": wall, "job_tokens_per_s": useful / wall if wall > 0 else 0.0,
            "goodput": useful / (failure_free * wall) if wall > 0 else 0.0,
            "site_rejoins": rejoins}
    return out


def wait(job: Job, run_dir: Path, *, progress: Progress | None = None,
         poll_s: float = 0.5) -> dict[str, Any]:
    """Wait for `job` to end, injecting the configured site failures and reporting progress;
    return the run's summary, or `ConfigError` if training failed."""
    seen = 0
    injector = Injector(job.cfg)
    while job.poll() is None:
        time.sleep(poll_s)
        rows = read_metrics(run_dir)
        injector.tick(job, started=bool(rows))
        if progress and len(rows) > seen:
            seen = len(rows)
            progress(rows[-1])
    if job.lighthouse is not None:
        job.stop()
    if job.returncode != 0:
        logs = [run_dir / "train.log", *sorted(run_dir.glob("train-site-*.log"))]
        lines = [ln for p in logs if p.exists()
                 for ln in p.read_text(errors="replace").splitlines()]
        ours = [ln.split("ultracluster train: error: ", 1)[1] for ln in lines
                if "ultracluster train: error: " in ln]
        if ours:  # a rank refused its input (a checkpoint, a model): say what, in one line
            raise ConfigError(ours[-1])
        raise ConfigError(f"training failed (exit {job.returncode}); see {run_dir}/train.log")
    summary: dict[str, Any] = json.loads((run_dir / "summary.json").read_text())
    summary |= job_totals(job.cfg, run_dir, summary)
    summary["site_failures"] = job.site_failures
    summary["run_dir"] = str(run_dir)
    return summary


def run(cfg: RunConfig, *, progress: Progress | None = None) -> dict[str, Any]:
    """Start, wait, and on any exit (an error, Ctrl-C, SIGTERM) stop the whole tree."""
    def _term(*_: Any) -> None:
        raise KeyboardInterrupt

    try:
        old = signal.signal(signal.SIGTERM, _term)
    except ValueError:  # not the main thread
        old = None
    job, run_dir = start(cfg)
    try:
        return wait(job, run_dir, progress=progress)
    finally:
        job.stop()
        if old is not None:
            signal.signal(signal.SIGTERM, old)
