"""Clusters: presets, the TOML format, every ConfigError path, fuzzing the loader."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ultracluster.cluster import (
    PRESETS,
    cluster_from_dict,
    cluster_to_toml,
    get_preset,
    load_cluster,
)
from ultracluster.errors import ConfigError
from ultracluster.hardware import CHIPS, SYSTEMS, Flag, fibre_latency_s

REQUIRED_CHIPS = {"trn1", "trn2", "trn3", "a100-40gb", "a100-80gb", "h100-sxm", "h100-96gb-500w",
                  "h800", "h200", "b200", "gb200", "tpu-v4", "tpu-v5e", "tpu-v5p", "tpu-v6e",
                  "tpu-ironwood", "mi300x", "mi355x"}
REQUIRED_SYSTEMS = {"trn1.32xlarge", "trn2.48xlarge", "trn2-ultraserver", "trn3-ultraserver",
                    "p5.48xlarge", "dgx-a100", "dgx-h100", "grand-teton-h100", "h800-node",
                    "dgx-b200", "gb200-nvl72", "mosaic-a100", "jean-zay-a100",
                    "a100-40gb-node", "tpu-v4-pod", "tpu-v5p-pod", "tpu-v5e-pod"}


def test_catalogue_has_required_keys_and_sources() -> None:
    assert REQUIRED_CHIPS <= set(CHIPS)
    assert REQUIRED_SYSTEMS <= set(SYSTEMS)
    for c in CHIPS.values():
        for f in ("peak_flops_fp32", "peak_flops_bf16", "peak_flops_fp8", "hbm_bytes",
                  "hbm_bytes_per_s", "scale_up_bytes_per_s", "tdp_w", "idle_w"):
            assert isinstance(c.sources[f].flag, Flag) and c.sources[f].ref, (c.name, f)
    assert SYSTEMS["trn2-ultraserver"].torus_dims == (4, 4, 4)
    assert SYSTEMS["trn3-ultraserver"].num_chips == 144


def test_rainier_preset() -> None:
    c = get_preset("rainier")
    assert c.num_chips == 499_968 and c.num_sites == 7
    assert all(s.system.chip.name == "trn2" for s in c.sites)
    assert len(c.links) == 21 and all("ASSUMPTION" in k.assumption for k in c.links)
    assert get_preset("rainier-trn3").num_chips == 499_968


def test_multistate_latency_from_distance() -> None:
    c = get_preset("rainier-multistate")
    k = c.link("indiana", "mississippi")
    assert k.latency_s == pytest.approx(fibre_latency_s(k.distance_km))
    assert k.latency_s == pytest.approx(k.distance_km * 4.9e-6)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_toml_round_trip(name: str, tmp_path: Path) -> None:
    c = get_preset(name)
    p = tmp_path / "c.toml"
    p.write_text(cluster_to_toml(c))
    assert load_cluster(str(p)) == c


def _two_sites() -> dict[str, Any]:
    return {
        "name": "two",
        "sites": [
            {"name": "a", "system": "trn2-ultraserver", "num_pods": 10},
            {"name": "b", "system": "p5.48xlarge", "num_pods": 4, "chip": "h200"},
        ],
        "links": [{"sites": ["a", "b"], "distance_km": 100, "bandwidth_gbps": 400}],
    }


def test_heterogeneous_sites_and_derived_latency() -> None:
    c = cluster_from_dict(_two_sites())
    assert c.num_chips == 640 + 32 and not c.is_homogeneous
    assert c.sites[1].system.chip.name == "h200"
    assert c.link("a", "b").latency_s == pytest.approx(100 * 4.9e-6)


def _mutate(d: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    cur: Any = d
    for p in path[:-1]:
        cur = cur[p]
    if value is _DELETE:
        del cur[path[-1]]
    else:
        cur[path[-1]] = value
    return d


_DELETE = object()


@pytest.mark.parametrize("path, value, match", [
    (("sites", 0, "system"), "trn9", "unknown key 'trn9'"),
    (("sites", 0, "num_pods"), 0, "num_pods"),
    (("sites", 0, "num_pods"), -3, "num_pods"),
    (("sites", 0, "num_pods"), "many", "num_pods"),
    (("sites", 1, "chip"), "gpu9", "unknown key 'gpu9'"),
    (("sites", 0, "pue"), 0.5, "pue"),
    (("sites", 0, "oversubscription"), 0.5, "oversubscription"),
    (("sites", 0, "bogus"), 1, "unknown field"),
    (("sites", 1, "name"), "a", "duplicate site"),
    (("links",), [], "missing link between sites 'a' and 'b'"),
    (("links", 0, "sites"), ["a", "c"], "unknown site 'c'"),
    (("links", 0, "sites"), ["a"], "expected two site names"),
    (("links", 0, "bandwidth_gbps"), 0, "bandwidth_gbps"),
    (("links", 0, "distance_km"), -1, "distance_km"),
    (("sites",), [], "at least one"),
    (("name",), _DELETE, "missing field 'name'"),
])
def test_config_errors_name_field_and_value(path: tuple[Any, ...], value: Any, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        cluster_from_dict(_mutate(_two_sites(), path, value))


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_cluster(str(tmp_path / "nope.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [unclosed")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_cluster(str(bad))
    with pytest.raises(ConfigError, match="unknown preset"):
        load_cluster("atlantis")


_scalars = st.none() | st.booleans() | st.integers(-5, 10**6) | st.floats() | st.text(max_size=6)


@settings(max_examples=300, deadline=None)
@given(edits=st.lists(st.tuples(
    st.sampled_from([("name",), ("sites", 0, "system"), ("sites", 0, "num_pods"),
                     ("sites", 1, "chip"), ("sites", 0, "pue"), ("sites", 1, "name"),
                     ("sites", 0, "fabric_gbps_per_pod"), ("sites", 0, "fabric_latency_us"),
                     ("links", 0, "sites"), ("links", 0, "distance_km"),
                     ("links", 0, "bandwidth_gbps"), ("links", 0, "latency_ms"), ("links",),
                     ("sites",), ("assumptions",), ("sites", 0)]),
    _scalars | st.lists(_scalars, max_size=3)), max_size=4))
def test_fuzz_loader_raises_only_config_errors(edits: list[tuple[Any, Any]]) -> None:
    d = _two_sites()
    try:
        for path, value in edits:
            _mutate(d, path, value)
    except (TypeError, IndexError, KeyError):
        return  # the edit itself could not apply to the mutated shape
    try:
        c = cluster_from_dict(d)
    except ConfigError:
        return
    assert c.num_chips > 0
    assert tomllib.loads(cluster_to_toml(c))
