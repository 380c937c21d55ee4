"""Issue #12's input defects, one test each: bad input is one line and exit 2, nothing
impossible is accepted, special files are refused without blocking, `--save` replaces only
regular files, planning cost does not grow with the batch's size."""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path

import pytest
import tomli_w

from fuzz_inputs import BASE_CLUSTER, BASE_CSV, BASE_HF, SIMULATE, check
from ultracluster.errors import ConfigError
from ultracluster.files import atomic_write_text
from ultracluster.search.divisors import divisors, factorise, num_divisors


def _cluster(tmp_path: Path, edit: dict[str, object] | None = None,
             link: dict[str, object] | None = None) -> str:
    doc = {**BASE_CLUSTER, "sites": [dict(s) for s in BASE_CLUSTER["sites"]],
           "links": [dict(BASE_CLUSTER["links"][0], **(link or {}))]}
    site = doc["sites"][0]
    for key, value in (edit or {}).items():
        if "." in key:
            table, field = key.split(".")
            site[table] = {**site.get(table, {}), field: value}
        else:
            site[key] = value
    p = tmp_path / "c.toml"
    p.write_text(tomli_w.dumps(doc))
    return str(p)


def refused(argv: list[str], *needles: str) -> str:
    rc, line = check(argv)
    assert rc == 2, argv
    for n in needles:
        assert n in line, line
    return line


def simulate(cluster: str, model: str = "llama3-8b", *extra: str) -> list[str]:
    return ["simulate", "--cluster", cluster, "--model", model, *SIMULATE, *extra]


# 1. infinite/NaN figures from a cluster file never reach --json --------------------------
@pytest.mark.parametrize("edit, needle", [
    ({"fabric_gbps_per_pod": 1e308}, "fabric_gbps_per_pod: 1e+308 is out of range"),
    ({"chip_overrides.peak_flops_bf16": 1e-300}, "peak_flops_bf16: 1e-300 is out of range"),
    ({"chip_overrides.hbm_bytes": float("inf")}, "hbm_bytes: inf is not a finite number"),
    ({"pue": float("nan")}, "pue: nan is not a finite number; must be in [1, 3]"),
])
def test_cluster_figures_that_would_overflow_are_refused(tmp_path: Path, edit: dict[str, object],
                                                         needle: str) -> None:
    refused(simulate(_cluster(tmp_path, edit)), needle)


# 2. huge numbers ------------------------------------------------------------------------------
def test_huge_numbers_are_range_errors(tmp_path: Path) -> None:
    hf = tmp_path / "config.json"
    hf.write_text('{"model_type": "llama", "num_hidden_layers": 1e308, '
                  '"hidden_size": 512, "num_attention_heads": 8, "intermediate_size": 1024, '
                  '"vocab_size": 1000}')
    refused(["show", "model", str(hf), "--json"], "num_hidden_layers: 1e+308 is out of range",
            "[1, 10,000]")
    refused(simulate(_cluster(tmp_path, {"system_overrides.num_chips": 1e308})),
            "num_chips: 1e+308 is out of range", "[1, 100,000]")
    hf.write_text(f'{{"model_type": "llama", "num_hidden_layers": {"9" * 5000}}}')
    refused(["show", "model", str(hf), "--json"], "not valid JSON")
    toml = tmp_path / "c.toml"
    toml.write_text(f'name = "x"\nnum = {"9" * 5000}\n')
    refused(["show", "cluster", str(toml), "--json"], "not valid TOML")


# 4. deep nesting ------------------------------------------------------------------------------
@pytest.mark.parametrize("name, text", [
    ("c.toml", "x = " + "[" * 1000 + "]" * 1000), ("config.json", "[" * 1000 + "]" * 1000),
    ("p.toml", "x = " + "[" * 100 + "]" * 100),
])
def test_deep_nesting_is_one_line(tmp_path: Path, name: str, text: str) -> None:
    p = tmp_path / name
    p.write_text(text)
    cmd = ["show", "model" if name.endswith(".json") else "cluster", str(p), "--json"]
    refused(cmd, "nested more than 32 deep")


# 5. --save ------------------------------------------------------------------------------------
def test_save_refuses_anything_but_a_regular_file(tmp_path: Path) -> None:
    target = tmp_path / "real.toml"
    target.write_text("keep")
    link = tmp_path / "link.toml"
    link.symlink_to(target)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, kind in ((link, "symbolic link"), (fifo, "FIFO"), (tmp_path, "folder"),
                       (Path("/"), "folder"), (Path("/dev/null"), "device")):
        with pytest.raises(ConfigError, match=f"is a {kind}; only a regular file is replaced"):
            atomic_write_text(path, "x")
    assert link.is_symlink() and target.read_text() == "keep"
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_save_keeps_mode_and_reports_unwritable_paths(tmp_path: Path) -> None:
    p = tmp_path / "secret.toml"
    p.write_text("old")
    p.chmod(0o600)
    atomic_write_text(p, "new")
    assert p.read_text() == "new" and stat.S_IMODE(p.stat().st_mode) == 0o600
    atomic_write_text(tmp_path / "new" / "deeper" / "plan.toml", "x")  # parents are created
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="a parent of this path is a file"):
        atomic_write_text(tmp_path / "file" / "plan.toml", "x")
    with pytest.raises(ConfigError, match="cannot"):
        atomic_write_text("/proc/ultracluster-test.toml", "x")  # a read-only file system


def test_plan_save_to_a_folder_is_one_line(tmp_path: Path) -> None:
    refused(["plan", "--cluster", "local", "--model", "tiny", "--seq-len", "256",
             "--global-batch", "8", "--tokens", "1e9", "--save", str(tmp_path), "--json"],
            "is a folder")


def test_empty_measurements_path_is_an_error_not_the_default() -> None:
    refused(["validate", "--measurements", "", "--json"], "is not a path")


# 6. special files as input ----------------------------------------------------------------
@pytest.mark.parametrize("what", ["fifo", "/dev/zero", "folder"])
def test_special_files_are_refused_without_blocking(tmp_path: Path, what: str) -> None:
    if what == "fifo":
        path = tmp_path / "in.toml"
        os.mkfifo(path)
    else:
        path = tmp_path if what == "folder" else Path(what)
    refused(["show", "cluster", f"{path}", "--json"], "not a regular file")
    if what != "folder":
        refused(["simulate", "--cluster", "local", "--plan", str(path), "--json"],
                "not a regular file")


@pytest.mark.parametrize("what", ["fifo", "/dev/zero", "folder", "nul"])
def test_measurements_are_read_like_every_input(tmp_path: Path, what: str) -> None:
    if what == "fifo":
        path = str(tmp_path / "m.csv")
        os.mkfifo(path)
    else:
        path = {"folder": str(tmp_path), "nul": f"{tmp_path}/m\x00.csv"}.get(what, what)
    refused(["validate", "--measurements", path, "--json"],
            "no such file" if what == "nul" else "not a regular file")


def test_measurements_with_a_byte_order_mark_are_read(tmp_path: Path) -> None:
    p = tmp_path / "m.csv"
    p.write_bytes(b"\xef\xbb\xbf" + BASE_CSV)  # as spreadsheets save "CSV UTF-8"
    assert check(["validate", "--measurements", str(p), "--json"])[0] == 0


def test_oversized_input_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "big.toml"
    with p.open("wb") as f:
        f.truncate(17 * 1024**2)
    refused(["show", "cluster", str(p), "--json"], "over the 16,777,216-byte limit")


# 7. planning cost does not grow with the batch ----------------------------------------------
def test_divisors_by_factorisation() -> None:
    for n in range(1, 400):
        assert divisors(n) == [d for d in range(1, n + 1) if n % d == 0]
    assert factorise(10**18) == ((2, 18), (5, 18))
    assert num_divisors(10**18) == 361
    # a strong pseudoprime to the first 12 prime bases (Sorenson and Webster 2015), below MAX_N
    psi12 = 318_665_857_834_031_151_167_461
    factors = factorise(psi12)
    assert len(factors) > 1 and math.prod(p**e for p, e in factors) == psi12
    assert divisors(999_999_937 * 999_999_929, limit=10**9) == [1, 999_999_929, 999_999_937]
    assert divisors(2**61 - 1) == [1, 2**61 - 1]


def test_plan_with_a_huge_batch_finishes(tmp_path: Path) -> None:
    # 15T tokens per step at seq_len 256 is 58.6 billion sequences: a loop over every
    # integer up to it (the old divisor search) would not finish; factorising takes micro-
    # seconds. `check` fails the test if it runs past its deadline.
    rc, _ = check(["plan", "--cluster", _cluster(tmp_path), "--model", "tiny", "--seq-len",
                   "256", "--global-batch", "15T", "--tokens", "1e18", "--json"])
    assert rc == 0


# 9. accepted but impossible -----------------------------------------------------------------
@pytest.mark.parametrize("edit, link, needle", [
    ({"efficiency.matmul_eff_max": 5}, None, "matmul_eff_max: 5 is out of range; must be in (0, 1]"),
    ({"system_overrides.num_chips": 1.9}, None, "num_chips: expected a whole number"),
    ({}, {"bandwidth_gbps": 1e-9}, "bandwidth_gbps: 1e-09 is out of range"),
    ({}, {"distance_km": 1e6, "latency_ms": 0}, "distance_km: 1000000.0 is out of range"),
    ({}, {"distance_km": 1000, "latency_ms": 0},
     "latency_ms: 0 is less than light takes over 1,000 km (3.34 ms)"),
])
def test_impossible_cluster_figures_are_refused(tmp_path: Path, edit: dict[str, object],
                                                link: dict[str, object] | None,
                                                needle: str) -> None:
    refused(simulate(_cluster(tmp_path, edit, link)), needle)


@pytest.mark.parametrize("argv, needle", [
    (["plan", "--max-chips", "0.5"], "--max-chips: '0.5' must be a whole number"),
    (["simulate", "--tokens", "1e-9"], "tokens: 1e-09 must be in [16,777,216"),
    (["simulate", "--global-batch", "1.5"], "1.5 sequences is not a whole number"),
    (["plan", "--max-chips="], "--max-chips: '' is not a count"),  # was "no limit"
    (["plan", "--sites="], "--sites: '' names no site"),  # was "every site"
    (["plan", "--sites", " , "], "names no site"),
])
def test_impossible_flags_are_refused(argv: list[str], needle: str) -> None:
    refused([*argv, "--cluster", "local", "--model", "tiny", "--json"], needle)


def test_hf_config_numbers_keep_their_range(tmp_path: Path) -> None:
    p = tmp_path / "config.json"
    p.write_text(str({**BASE_HF, "num_attention_heads": 1.9}).replace("'", '"')
                 .replace("False", "false"))
    refused(["show", "model", str(p), "--json"], "num_attention_heads: expected a whole number")


# 13. the folder is fsynced after the rename ---------------------------------------------------
def test_atomic_write_fsyncs_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[bool] = []
    real = os.fsync

    def spy(fd: int) -> None:
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    atomic_write_text(tmp_path / "a.toml", "x")
    assert synced == [False, True]  # the file's data, then the folder holding the rename
