"""Checkpoints on torch.distributed.checkpoint (DCP): one copy per site, reshardable, async.

Layout: ``DIR/step-000040/`` holds DCP's files (``.metadata``, ``__N_0.distcp``) and our
``manifest.json`` (format, step, the run's identity, every file's SHA-256). Each rank hands DCP
its site's state under the key ``site{s}``; the workers of a site hold the same state, and
DCP's planner keeps one copy of a key that several ranks save, so each site is stored once.
That state does not depend on the number of workers per site, so a run resumes with another
W (each rank reads its own site's keys). Sites cannot change: each owns a data shard.
With `--failure-domain site` one site writes the state the sites share under one key
(`run/site_checkpoint.py`), over its own ranks, into a ``.siteS.tmp`` folder of its own.

Atomic: DCP writes into ``step-000040.tmp/``; once every rank has written (DCP's finish runs
on rank 0 after gathering every rank's result), rank 0 checksums the files, writes the
manifest and renames the folder. A checkpoint is either complete or absent; stale ``.tmp``
folders are removed at start; only the newest `keep` complete ones are kept.

Async (`async_save`): DCP copies the state to host memory, then writes it in a thread over
a process group of its own (gloo), so training goes on; rank 0 finalises when it is done.

Loading: rank 0 picks the newest intact checkpoint (manifest schema, identity, checksums),
printing one line for each newer one it refuses, and tells every rank; a checkpoint of
another run (identity differs) is refused with one line and no fallback. DCP's metadata is a
pickle: it is read with an unpickler that admits only DCP's own record types, and tensors are
read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import re
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.checkpoint.filesystem import FileSystemReader, FileSystemWriter
from torch.distributed.checkpoint.state_dict_loader import load as dcp_load
from torch.distributed.checkpoint.state_dict_saver import async_save as dcp_async_save
from torch.distributed.checkpoint.state_dict_saver import save as dcp_save
from torch.distributed.checkpoint.default_planner import DefaultLoadPlanner
from torch.distributed.checkpoint.metadata import Metadata, StorageMeta
from torch.distributed.checkpoint._traverse import set_element

from ultracluster.errors import ConfigError
from ultracluster.files import atomic_write_text

FORMAT = "ultracluster-dcp-1"
MANIFEST = "manifest.json"
_NAME = re.compile(r"^step-(\d{6,})$")
_SHA = re.compile(r"^[0-9a-f]{64}$")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _MetadataUnpickler(pickle.Unpickler):
    """Only DCP's own record classes, torch sizes, dtypes and layouts, and paths."""

    _EXTRA = {("torch", "Size"), ("torch.serialization", "_get_layout"),
              ("pathlib", "PosixPath"), ("pathlib", "WindowsPath"),
              ("collections", "OrderedDict")}

    def find_class(self, module: str, name: str) -> Any:
        obj = super().find_class(module, name) if module.startswith("torch") or (
            module, name) in self._EXTRA else None
        if (module, name) in self._EXTRA or isinstance(obj, torch.dtype) or (
                isinstance(obj, type)
                and obj.__module__.startswith("torch.distributed.checkpoint.")):
            return obj
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a checkpoint's metadata")


class _SafeReader(FileSystemReader):
    def read_metadata(self, *args: Any, **kwargs: Any) -> Metadata:
        path = Path(self.path) / ".metadata"
        md = _MetadataUnpickler(io.BytesIO(path.read_bytes())).load()
        if not isinstance(md, Metadata):
            raise pickle.UnpicklingError(".metadata does not hold DCP metadata")
        if md.storage_meta is None:
            md.storage_meta = StorageMeta()
        md.storage_meta.load_id = self.load_id
        return md


def complete(root: Path) -> list[Path]:
    """Complete checkpoint folders under `root`, oldest first."""
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if _NAME.match(p.name) and p.is_dir()
                   and (p / MANIFEST).is_file()), key=lambda p: int(p.name[5:]))


def _check(folder: Path, identity: dict[str, Any]) -> str | None:
    """Why `folder` cannot be used (None if it is intact). Raises ConfigError for another
    run's checkpoint."""
    try:
        m = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError, RecursionError) as e:
        return f"unreadable manifest ({e})"
    if not (isinstance(m, dict) and m.get("format") == FORMAT
            and isinstance(m.get("step"), int) and isinstance(m.get("identity"), dict)
            and isinstance(m.get("files"), dict) and ".metadata" in m["files"]
            and all(isinstance(k, str) and "/" not in k and isinstance(v, str) and _SHA.match(v)
                    for k, v in m["files"].items())):
        return f"manifest is not a {FORMAT} manifest (format, step, identity, files)"
    # checkpoints written before the failure domain was part of the identity were `job`'s
    saved = {"failure_domain": "job"} | m["identity"]
    diff = [f"{k}: checkpoint {saved.get(k)!r} vs run {v!r}" for k, v in identity.items()
            if saved.get(k) != v]
    if diff:
        raise ConfigError(f"checkpoint {folder} does not match this run ({'; '.join(diff)})")
    for name, sha in m["files"].items():
        path = folder / name
        if not path.is_file() or _sha256(path) != sha:
            return f"{name} is missing or corrupt (SHA-256 does not match the manifest)"
    return None


def find_intact(root: str | Path, identity: dict[str, Any], *,
                warn: Any = None) -> tuple[Path | None, list[str]]:
    """The newest intact checkpoint under `root`, and one line per newer one refused."""
    refused: list[str] = []
    for folder in reversed(complete(Path(root))):
        why = _check(folder, identity)
        if why is None:
            return folder, refused
        refused.append(f"checkpoint {folder} refused: {why}")
        if warn:
            warn(refused[-1] + "; trying an older one")
    return None, refused


def choose(root: str | Path, identity: dict[str, Any], *, rank: int) -> Path | None:
    """Collective: rank 0 picks the checkpoint to resume from and tells every rank.

    None when there is no checkpoint at all; ConfigError (the same on every rank) when there
    are checkpoints but none intact, or they belong to another run."""
    verdict: list[Any] = [None]
    if rank == 0:
        try:
            folder, refused = find_intact(root, identity, warn=_warn)
            verdict[0] = ("ok", str(folder) if folder else None) if folder or not refused \
                else ("error", f"no intact checkpoint in {root} ({refused[-1]})")
        except ConfigError as e:
            verdict[0] = ("error", str(e))
    dist.broadcast_object_list(verdict, src=0)
    kind, value = verdict[0]
    if kind == "error":
        raise ConfigError(value)
    return Path(value) if value else None


def _warn(line: str) -> None:
    print(f"ultracluster train: warning: {line}", file=sys.stderr, flush=True)


class _SafePlanner(DefaultLoadPlanner):
    """DCP's default planner, but non-tensor values load with ``weights_only=True``."""

    def load_bytes(self, read_item: Any, value: io.BytesIO) -> None:
        obj = torch.load(value, weights_only=True)
        if self.flatten_state_dict:
            set_element(self.original_state_dict, self.mappings[read_item.dest_index.fqn], obj)
        else:
            self.state_dict[read_item.dest_index.fqn] = obj


def read(folder: Path, template: dict[str, Any]) -> dict[str, Any]:
    """Fill `template` (the keys this rank needs) from `folder`, in place, and return it."""
    dcp_load(template, storage_reader=_SafeReader(str(folder)), planner=_SafePlanner())
    return template


class Checkpointer:
    """Saves one site-keyed state per rank into `root`, synchronously or in the background.

    `rank` is the rank in the default group (with --failure-domain site, the site's own
    torchrun: rank 0 of the saving site finalises); `tmp` names the folders being written
    (``step-N.tmp``; a site's own suffix with --failure-domain site, so that a site cleaning
    up after its own restart never removes the save another site has in flight)."""

    def __init__(self, root: str | Path, *, rank: int, identity: dict[str, Any], keep: int,
                 async_save: bool, tmp: str = ".tmp") -> None:
        self.root, self.rank, self.identity = Path(root), rank, identity
        self.keep, self.async_save, self.tmp = keep, async_save, tmp
        # DCP's collectives in the saving thread must not share a group with training's
        self.group = dist.new_group(backend="gloo")
        self.pending: tuple[Any, int, Path] | None = None  # (a Future, step, folder)

    def remove_stale(self) -> None:
        """Collective: rank 0 removes the `.tmp` folders a killed run left behind."""
        if self.rank == 0 and self.root.is_dir():
            for p in self.root.glob(f"step-*{self.tmp}"):
                shutil.rmtree(p, ignore_errors=True)
        dist.barrier(group=self.group)

    def save(self, step: int, state: dict[str, Any]) -> None:
        """Collective: every rank calls it at the same step with its site's state."""
        self.wait()
        tmp = self.root / f"step-{step:06d}{self.tmp}"
        writer = FileSystemWriter(str(tmp), sync_files=True)
        if self.async_save:
            resp = dcp_async_save(state, storage_writer=writer, process_group=self.group)
            fut = getattr(resp, "upload_completion", resp)
            self.pending = (fut, step, tmp)
        else:
            dcp_save(state, storage_writer=writer, process_group=self.group)
            self._finalise(step, tmp)

    def poll(self) -> None:
        """Finalise a background save that has finished (call once a step)."""
        if self.pending is not None and self.pending[0].done():
            self.wait()

    def wait(self) -> None:
        """Block until a background save in flight has finished, then finalise it (manifest,
        rename, prune)."""
        if self.pending is not None:
            fut, step, tmp = self.pending
            self.pending = None
            fut.result()
            self._finalise(step, tmp)

    def _finalise(self, step: int, tmp: Path) -> None:
        if self.rank != 0:
            return
        files = {p.name: _sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        manifest = {"format": FORMAT, "step": step, "identity": self.identity, "files": files}
        atomic_write_text(tmp / MANIFEST, json.dumps(manifest, indent=1))
        final = self.root / f"step-{step:06d}"
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        _fsync_dir(self.root)
        for old in complete(self.root)[:-self.keep]:
            shutil.rmtree(old, ignore_errors=True)


def optimizer_state(opt: torch.optim.Optimizer, named: Sequence[tuple[str, torch.Tensor]]
                    ) -> dict[str, Any]:
    """An optimiser's per-parameter tensors keyed by parameter name (its hyper-parameters
    come from the run's settings, so only tensors are saved)."""
    return {n: {k: v for k, v in opt.state[p].items() if isinstance(v, torch.Tensor)}
            for n, p in named if p in opt.state}


def adamw_template(named: Sequence[tuple[str, torch.Tensor]], *, fused: bool) -> dict[str, Any]:
    """The shape of AdamW's saved state, for a reader to fill in."""
    return {n: {"exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p),
                "step": torch.zeros((), dtype=torch.float32,
                                    device=p.device if fused else "cpu")}
            for n, p in named}


def load_optimizer(opt: torch.optim.Optimizer, named: Sequence[tuple[str, torch.Tensor]],
                   state: dict[str, Any]) -> None:
    """Put the per-parameter tensors of `state` (keyed by parameter name) into `opt`'s state."""
    for n, p in named:
        if n in state:
            opt.state[p] = dict(state[n])
