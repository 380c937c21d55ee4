"""Hand-checkable numbers for each formula of the simulator."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ultracluster.simulate import comm
from ultracluster.simulate.context import model_context
from ultracluster.simulate.memory import activation_bytes_per_token
from ultracluster.simulate.power import daly_goodput, optimal_interval_s
from ultracluster.workload.spec import TransformerSpec


def test_ring_collectives_by_hand() -> None:
    # 4 ranks, 1 GB, 100 GB/s, 10 us: RS = 3/4 * 1e9 / 1e11 + 3 * 1e-5
    assert float(comm.ring_rs(4, 1e9, 1e11, 1e-5)) == pytest.approx(0.0075 + 3e-5)
    assert float(comm.ring_ar(4, 1e9, 1e11, 1e-5)) == pytest.approx(2 * (0.0075 + 3e-5))
    assert float(comm.ring_rs(1, 1e9, 1e11, 1e-5)) == 0.0
    assert float(comm.p2p(1e9, 1e11, 1e-5)) == pytest.approx(0.01001)
    assert float(comm.all_to_all(8, 8e9, 1e11, 0.0)) == pytest.approx(7 / 8 * 0.08)


def test_hierarchical_reduce_scatter_shrinks_bytes_per_tier() -> None:
    # 8 in a pod at 400 GB/s, then 4 pods at 50 GB/s on 1/8 of the bytes
    t = comm.hierarchical_rs((8.0, 4.0, 1.0), 8e9, (4e11, 5e10, np.inf), (0.0, 0.0, 0.0))
    assert float(t) == pytest.approx(7 / 8 * 8e9 / 4e11 + 3 / 4 * 1e9 / 5e10)


def test_torus_factor_and_tier_split() -> None:
    dims = (4, 4, 4)
    got = comm.torus_factor(np.array([2.0, 4.0, 8.0, 16.0, 64.0]), dims)
    np.testing.assert_allclose(got, [1 / 3, 1 / 3, 2 / 3, 2 / 3, 1.0])
    assert float(comm.torus_factor(64.0, ())) == 1.0
    n_pod, n_site, n_inter = comm.tier_split(8.0, 64.0, 8.0, 256.0)
    assert (float(n_pod), float(n_site), float(n_inter)) == (1.0, 32.0, 2.0)
    n_pod, n_site, n_inter = comm.tier_split(1.0, 8.0, 64.0, 1024.0)
    assert (float(n_pod), float(n_site), float(n_inter)) == (8.0, 1.0, 1.0)


def _gpt(h: int, a: int, layers: int) -> TransformerSpec:
    return TransformerSpec(name="gpt", num_layers=layers, hidden=h, num_heads=a, num_kv_heads=a,
                           ffn_hidden=4 * h, gated_ffn=False, vocab=51200, bias=True)


# Korthikanti et al. 2022, Table 3 models (s = 2048, t = 8), and Table 2 formulas
KORTHIKANTI = [(6144, 64, 48), (12288, 96, 96), (20480, 128, 105), (25600, 160, 128)]


@pytest.mark.parametrize("h, a, layers", KORTHIKANTI)
def test_activation_memory_matches_korthikanti_table2(h: int, a: int, layers: int) -> None:
    s, t = 2048, 8
    mc = model_context(_gpt(h, a, layers), seq_len=s)

    def ours(sp: int, recompute: int) -> float:
        per_token = activation_bytes_per_token(mc, tp=t, sp=sp, recompute=recompute,
                                               flash=False, dropout=True)
        return float(per_token) * s * layers

    paper = {
        "tp": s * h * layers * (10 + 24 / t + 5 * a * s / (h * t)),
        "tp+sp": s * h * layers * (34 / t + 5 * a * s / (h * t)),
        "tp+sp+selective": s * h * layers * 34 / t,
        "full": s * h * layers * 2,
    }
    assert ours(0, 0) == pytest.approx(paper["tp"], rel=0.05)
    assert ours(1, 0) == pytest.approx(paper["tp+sp"], rel=0.05)
    assert ours(1, 1) == pytest.approx(paper["tp+sp+selective"], rel=0.05)
    assert ours(0, 2) == pytest.approx(paper["full"], rel=0.05)
    # with sequence parallelism the stored layer input is the sequence-sharded one
    assert ours(1, 2) == pytest.approx(paper["full"] / t, rel=0.05)


def test_young_daly_by_hand() -> None:
    # delta = 60 s, M = 1 h: tau = sqrt(2 * 60 * 3600) - 60
    tau = float(optimal_interval_s(np.asarray(60.0), np.asarray(3600.0)))
    assert tau == pytest.approx(math.sqrt(2 * 60 * 3600) - 60)
    # first order: waste ~ sqrt(2 delta / M) when R = 0 and delta << M
    g = float(daly_goodput(np.asarray(tau), np.asarray(60.0), np.asarray(3600.0), 0.0))
    assert 1 - g == pytest.approx(math.sqrt(2 * 60 / 3600), rel=0.1)
    # a restart as long as the MTBF costs about a factor e
    g_r = float(daly_goodput(np.asarray(tau), np.asarray(60.0), np.asarray(3600.0), 3600.0))
    assert g_r == pytest.approx(g / math.e, rel=1e-6)
