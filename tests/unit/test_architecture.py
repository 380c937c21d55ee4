"""The import graph: no cycle between modules, and the layering DESIGN.md sets.

Read from the source with `ast` (imports inside functions count too), so a lazy import cannot
hide a cycle or a layering break.
"""

from __future__ import annotations

import ast
from pathlib import Path

import ultracluster

ROOT = Path(ultracluster.__file__).parent


def _modules() -> dict[str, Path]:
    mods = {}
    for f in ROOT.rglob("*.py"):
        name = ".".join(("ultracluster", *f.relative_to(ROOT).with_suffix("").parts))
        mods[name.removesuffix(".__init__")] = f
    return mods


def _imports(path: Path) -> set[str]:
    """Every absolute ``ultracluster...`` name `path` imports, with ``from X import y`` giving
    both X and X.y (y may be a module)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m.split(".")[0] == "ultracluster"}


def _graph() -> dict[str, set[str]]:
    """Module -> modules it imports. A package and its own submodules are not edges: importing
    a submodule always loads its parent package first."""
    mods = _modules()
    g: dict[str, set[str]] = {}
    for m, f in mods.items():
        g[m] = {t for t in _imports(f) if t in mods and t != m
                and not m.startswith(t + ".") and not t.startswith(m + ".")}
    return g


def _cycle(g: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `g` as a path of modules, or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for start in sorted(g):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(g[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(g[nxt])))
    return None


def _package(module: str) -> str:
    """``ultracluster.simulate.core`` -> ``simulate``; a top-level module is its own name."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _package_imports() -> dict[str, set[str]]:
    deps: dict[str, set[str]] = {}
    for m, targets in _graph().items():
        deps.setdefault(_package(m), set()).update(
            _package(t) for t in targets if _package(t) != _package(m))
    return deps


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle() -> None:
    assert _cycle(_graph()) is None


def test_only_cli_imports_both_run_and_simulate() -> None:
    both = {p for p, d in _package_imports().items() if {"run", "simulate"} <= d}
    assert both == {"cli"}


def test_nothing_imports_cli_and_run_never_imports_simulate() -> None:
    deps = _package_imports()
    assert [p for p, d in deps.items() if "cli" in d] == []
    assert "simulate" not in deps["run"]


def test_only_run_imports_torch() -> None:
    users = set()
    for m, f in _modules().items():
        for node in ast.walk(ast.parse(f.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "torch" or n.startswith("torch.") for n in names):
                users.add(_package(m))
    assert users == {"run"}


def test_calibration_counts_adamw_bytes_as_the_simulator_does() -> None:
    """run/calibrate.py repeats the simulator's AdamW byte count (run may not import simulate):
    a calibrated efficiency then gives back the measured optimizer time."""
    import pytest

    pytest.importorskip("torch")
    from ultracluster.run.calibrate import ADAM_BYTES_PER_PARAM as measured_with
    from ultracluster.simulate.core import ADAM_BYTES_PER_PARAM as predicted_with

    assert measured_with == predicted_with


def test_calibration_counts_attention_flops_as_the_simulator_does() -> None:
    """run/calibrate.py counts attention's backward FLOPs with the simulator's ratio, so the
    calibrated `attention_eff_ratio` gives back the measured attention time."""
    import pytest

    pytest.importorskip("torch")
    from ultracluster.run.calibrate import ATTENTION_BWD_RATIO as measured_with
    from ultracluster.simulate.compute import FLASH_BWD_RATIO as predicted_with

    assert measured_with == predicted_with
