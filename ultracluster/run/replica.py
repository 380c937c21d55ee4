"""Sites as failure domains, on torchft (`--failure-domain site`).

Each site is a torchft *replica group*: its own torchrun (which restarts only that site's
workers), its own store, and on every worker a torchft `Manager`. torchft's Lighthouse (a
Rust quorum server; `python -m ultracluster.run.replica` runs one) forms a quorum of the sites
present at each outer step:

- the DiLoCo exchange of that step runs over a torchft `ProcessGroupGloo` that torchft
  reconfigures for every new quorum, one per worker index (worker l of every site), so the
  average is over the sites present;
- a site that has not arrived within `--sync-timeout` (the lighthouse's join timeout) or has
  stopped heartbeating is left out of that quorum; a collective that fails or times out makes
  the sites of the quorum skip that outer update (`should_commit` is false) and the next
  quorum goes on without the failed site;
- a site that restarts, or missed a committed outer step, is behind the others when it next
  joins: torchft sends it a healthy peer's state over HTTP (global weights, outer and inner
  optimiser state, step), so it needs no checkpoint and nobody else restarts.

Imports torch (and torchft), like all of `run/`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed import TCPStore  # type: ignore[attr-defined]  # stubs omit it

from ultracluster.errors import ConfigError
from ultracluster.files import atomic_write_text

State = dict[str, Any]


def _torchft() -> Any:
    try:
        import torchft
        from torchft._torchft import LighthouseServer
    except ImportError as e:  # an optional dependency (the `train` extra)
        raise ConfigError("--failure-domain site needs torchft (pip install torchft; "
                          f"{e})") from None
    return torchft, LighthouseServer


def heartbeat_timeout_s(sync_timeout_s: float) -> float:
    """A site that stops heartbeating is dead after this long (at most the sync timeout)."""
    return min(sync_timeout_s, 5.0)


class Membership:
    """One worker's seat in the job: its torchft Manager, the cross-site process group of its
    worker index, and the quorum of every outer step."""

    def __init__(self, *, site: int, local: int, workers: int, timeout_s: float,
                 state: Callable[[], State], load: Callable[[State], None]) -> None:
        torchft, _ = _torchft()
        host = os.environ.get("UC_SITE_HOST") or os.environ.get("MASTER_ADDR", "127.0.0.1")
        lighthouse = os.environ.get("TORCHFT_LIGHTHOUSE")
        if not lighthouse:
            raise ConfigError("--failure-domain site: TORCHFT_LIGHTHOUSE is not set (the "
                              "lighthouse's http://HOST:PORT; `ultracluster train` sets it)")
        # The manager's store: a new one each attempt, hosted by the site's worker 0 and
        # reached by the other sites to build the cross-site group of each quorum.
        self._store = None
        port = [0]
        if local == 0:
            self._store = TCPStore(host, 0, is_master=True, wait_for_workers=False)
            port = [self._store.port]
        dist.broadcast_object_list(port, src=0)
        td = timedelta(seconds=timeout_s)
        # collectives time out after --sync-timeout; a rejoining site's state transfer and the
        # commit vote get at least a minute (a few hundred MB over HTTP)
        slow = timedelta(seconds=max(timeout_s, 60.0))
        self.pg = torchft.ProcessGroupGloo(timeout=td)
        self.healed = False
        self.timings: dict[str, float] = {}

        def _load(st: State) -> None:
            load(st)
            self.healed = True

        self.manager = torchft.Manager(
            pg=self.pg, load_state_dict=_load, state_dict=state, min_replica_size=1,
            use_async_quorum=False, timeout=slow, quorum_timeout=timedelta(hours=6),
            connect_timeout=slow, rank=local, world_size=workers, store_addr=host,
            store_port=int(port[0]), lighthouse_addr=lighthouse, replica_id=f"site{site}",
            hostname=host, init_sync=False)

    def begin(self) -> bool:
        """Join this outer step's quorum (blocks until it forms); True if this site was behind
        and has just loaded a healthy peer's state."""
        self.healed = False
        t0 = time.perf_counter()
        self.manager.start_quorum()
        self._time("quorum_s", t0)
        return self.healed

    def _time(self, key: str, t0: float) -> None:
        self.timings[key] = self.timings.get(key, 0.0) + time.perf_counter() - t0

    def take_timings(self) -> dict[str, float]:
        """Seconds spent since the last call in the quorum (its forming, the group's set-up,
        a recovery), waiting for the exchange, and in the commit vote."""
        out, self.timings = self.timings, {}
        return out

    def errored(self) -> bool:
        return self.manager.errored() is not None

    def participants(self) -> int:
        return int(self.manager.num_participants())

    def all_gather(self, parts: list[torch.Tensor]
                   ) -> tuple[list[Any], list[list[torch.Tensor]]]:
        """Start an all-gather of each part over the sites of the quorum; an error is
        reported to the manager (the step will not commit), never raised."""
        from torch.distributed.distributed_c10d import (  # type: ignore[attr-defined]
            AllgatherOptions,  # torch exports it from _C, the stubs do not re-export it
        )

        n = self.participants()
        outs = [[torch.zeros_like(p) for _ in range(n)] for p in parts]
        works: list[Any] = []
        if self.manager.errored() is not None:
            return works, outs
        for p, out in zip(parts, outs):
            try:
                works.append(self.pg.allgather([out], [p], AllgatherOptions()))
            except Exception as e:  # a peer gone: skip this outer step
                self.manager.report_error(e)
                break
        return works, outs

    def wait(self, works: list[Any]) -> None:
        t0 = time.perf_counter()
        for w in works:
            try:
                w.wait()
            except Exception as e:  # timeout or a peer gone
                self.manager.report_error(e)
                break
        self._time("exchange_s", t0)

    def fail(self, why: str) -> None:
        self.manager.report_error(RuntimeError(why))

    def commit(self) -> bool:
        """Whether every worker of this site may apply this outer step (torchft's
        should_commit: false after any error in this quorum)."""
        t0 = time.perf_counter()
        ok = bool(self.manager.should_commit())
        self._time("commit_s", t0)
        return ok

    def shutdown(self) -> None:
        self.manager.shutdown(wait=False)


def site_layout(cfg: Any, *, site: int) -> Any:
    """The layout seen by one site's torchrun: its own ranks form the default group (DDP
    inside the site); the cross-site exchange goes through the Membership."""
    from ultracluster.run.comms import ProcessGroupLayout

    if dist.get_world_size() != cfg.workers_per_site:
        raise ConfigError(f"--failure-domain site: this site's torchrun has "
                          f"{dist.get_world_size()} ranks, --workers-per-site is "
                          f"{cfg.workers_per_site}")
    return ProcessGroupLayout(rank=site * cfg.workers_per_site + dist.get_rank(), world=cfg.world,
                    sites=cfg.sites, workers=cfg.workers_per_site, site_group=None,
                    cross_group=None,
                    wan_bytes_per_s=cfg.wan_gbps * 1e9 / 8 if cfg.wan_gbps else None,
                    wan_latency_s=cfg.wan_latency_ms / 1e3)


def attach(sync: Any, inner: torch.optim.Optimizer, cfg: Any, layout: Any) -> Membership:
    """Give a DiLoCo sync its seat in the quorum; a rejoining site loads `sync.peer_state()`
    of a healthy peer through `sync.load_peer_state`."""
    m = Membership(site=layout.site, local=layout.local, workers=layout.workers,
                   timeout_s=cfg.sync_timeout, state=sync.peer_state, load=sync.load_peer_state)
    sync.membership = m
    sync.inner = inner
    return m


class RankLog:
    """Every rank appends one line per step (and its events) to ``RUN_DIR/ranks/``, so the
    job's totals count every attempt of every site, killed ones included."""

    def __init__(self, run_dir: Path, *, layout: Any, attempt: int) -> None:
        folder = run_dir / "ranks"
        folder.mkdir(parents=True, exist_ok=True)
        self.attempt = attempt
        self._f = (folder / f"rank-{layout.rank:05d}.jsonl").open("a")
        (folder / f"rank-{layout.rank:05d}.pid").write_text(f"{os.getpid()} {layout.site}\n")

    def _write(self, row: dict[str, Any]) -> None:
        self._f.write(json.dumps(row) + "\n")
        self._f.flush()

    def step(self, *, step: int, t0: float, t1: float, tokens: int, c0: dict[str, float],
             c1: dict[str, float], useful: int, **extra: float) -> None:
        self._write({"a": self.attempt, "step": step, "t0": t0, "t1": t1, "tok": tokens,
                     "intra": c1["intra_site"] - c0["intra_site"],
                     "inter": c1["inter_site"] - c0["inter_site"], "useful": useful} | extra)

    def event(self, name: str, **kw: Any) -> None:
        self._write({"a": self.attempt, "event": name, "time": time.time()} | kw)


def lighthouse_main(argv: list[str] | None = None) -> int:
    """Run torchft's lighthouse until SIGTERM/SIGINT; write its address to a file."""
    ap = argparse.ArgumentParser(prog="python -m ultracluster.run.replica",
                                 description="torchft lighthouse for --failure-domain site")
    ap.add_argument("--bind", default="127.0.0.1:0",
                    help="HOST:PORT to listen on (default loopback, a free port; use "
                         "0.0.0.0:29510 for sites on several machines)")
    ap.add_argument("--sync-timeout", type=float, default=120.0,
                    help="seconds the sites present wait for a late one (join timeout)")
    ap.add_argument("--address-file", help="write http://HOST:PORT here when listening")
    args = ap.parse_args(argv)
    try:
        _, server_cls = _torchft()
    except ConfigError as e:
        print(f"ultracluster lighthouse: error: {e}", file=sys.stderr)
        return 2
    stop = False

    def _stop(*_: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    server = server_cls(bind=args.bind, min_replicas=1,
                        join_timeout_ms=int(args.sync_timeout * 1000), quorum_tick_ms=50,
                        heartbeat_timeout_ms=int(heartbeat_timeout_s(args.sync_timeout) * 1000))
    host = args.bind.rsplit(":", 1)[0].strip("[]")
    port = server.address().rsplit(":", 1)[1]
    address = f"http://{host}:{port}"
    print(f"lighthouse listening on {address}", flush=True)
    if args.address_file:
        atomic_write_text(Path(args.address_file), address)
    while not stop:
        time.sleep(0.2)
    server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(lighthouse_main())
