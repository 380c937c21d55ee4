"""Choosing a checkpoint to resume from (no processes): manifest schema, checksums, identity,
falling back past a refused one; and a stopped run's restarts stopping at once."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")

from ultracluster.errors import ConfigError  # noqa: E402
from ultracluster.run import checkpoint  # noqa: E402
from ultracluster.run import train as train_mod  # noqa: E402

IDENT = {"model": "tiny", "sites": 2}


def _fake(root: Path, step: int, *, manifest: Any = None, ident: dict[str, Any] = IDENT
          ) -> Path:
    folder = root / f"step-{step:06d}"
    folder.mkdir(parents=True)
    files = {}
    for name in (".metadata", "__0_0.distcp"):
        (folder / name).write_bytes(f"{name} {step}".encode())
        files[name] = hashlib.sha256(f"{name} {step}".encode()).hexdigest()
    doc = manifest if manifest is not None else {
        "format": checkpoint.FORMAT, "step": step, "identity": ident, "files": files}
    (folder / "manifest.json").write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return folder


def test_newest_intact_is_chosen_and_refusals_are_one_line_each(tmp_path: Path) -> None:
    _fake(tmp_path, 4)
    _fake(tmp_path, 8, manifest="[]")
    _fake(tmp_path, 12, manifest='{"format": "ultracluster-dcp-1", "step": 12}')
    bad = _fake(tmp_path, 16)
    (bad / "__0_0.distcp").write_bytes(b"flipped")
    _fake(tmp_path, 20, manifest="{")
    (tmp_path / "step-000024.tmp").mkdir()  # an unfinished save is never a candidate
    warned: list[str] = []
    folder, refused = checkpoint.find_intact(tmp_path, IDENT, warn=warned.append)
    assert folder is not None and folder.name == "step-000004"
    assert [r.split(" refused: ")[0].rsplit("/", 1)[1] for r in refused] == [
        "step-000020", "step-000016", "step-000012", "step-000008"]
    assert "unreadable manifest" in refused[0] and "SHA-256" in refused[1]
    assert "manifest is not" in refused[2] and "manifest is not" in refused[3]
    assert all("\n" not in w for w in warned) and len(warned) == 4


def test_no_intact_checkpoint_and_none_at_all(tmp_path: Path) -> None:
    assert checkpoint.find_intact(tmp_path / "missing", IDENT) == (None, [])
    _fake(tmp_path, 4, manifest="[]")
    folder, refused = checkpoint.find_intact(tmp_path, IDENT)
    assert folder is None and len(refused) == 1


def test_another_runs_checkpoint_is_refused_without_fallback(tmp_path: Path) -> None:
    _fake(tmp_path, 4)
    _fake(tmp_path, 8, ident={"model": "tiny", "sites": 3})
    with pytest.raises(ConfigError, match="does not match this run.*sites: checkpoint 3 vs run 2"):
        checkpoint.find_intact(tmp_path, IDENT)


def test_metadata_unpickler_admits_only_checkpoint_records(tmp_path: Path) -> None:
    import pickle

    evil = tmp_path / ".metadata"
    evil.write_bytes(pickle.dumps(print))  # any callable outside DCP's records
    reader = checkpoint._SafeReader(str(tmp_path))
    with pytest.raises(pickle.UnpicklingError, match="not part of a checkpoint"):
        reader.read_metadata()


def test_a_stopped_runs_restart_stops_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """After a non-finite loss (or bad input) torchrun's restarts exit 2 with the same line."""
    (tmp_path / train_mod.STOPPED).write_text("loss is nan at step 7 (rank 1); stopped\n")
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    assert train_mod.main(["--run-dir", str(tmp_path), "--steps", "3"]) == 2
    err = capsys.readouterr().err
    assert err == "ultracluster train: error: loss is nan at step 7 (rank 1); stopped\n"


def test_non_finite_loss_is_a_one_line_error() -> None:
    with pytest.raises(ConfigError, match="loss is nan at step 3 .*keeping the last checkpoint"):
        train_mod.check_finite(float("nan"), step=3, rank=0)
    train_mod.check_finite(2.5, step=3, rank=0)


def test_the_failure_domain_is_part_of_the_identity(tmp_path: Path) -> None:
    """A manifest written before the identity named the failure domain is a `job` one."""
    _fake(tmp_path, 4)  # no failure_domain in its identity
    job, site = IDENT | {"failure_domain": "job"}, IDENT | {"failure_domain": "site"}
    folder, _ = checkpoint.find_intact(tmp_path, job)
    assert folder is not None and folder.name == "step-000004"
    with pytest.raises(ConfigError, match="failure_domain: checkpoint 'job' vs run 'site'"):
        checkpoint.find_intact(tmp_path, site)
    _fake(tmp_path, 8, ident=site)
    with pytest.raises(ConfigError, match="failure_domain: checkpoint 'site' vs run 'job'"):
        checkpoint.find_intact(tmp_path, job)
