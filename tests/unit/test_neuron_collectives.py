"""Trainium's collectives (NeuronLink efficiency and hop latency) against the Neuron docs'
published nccom-test runs (aws-neuron/aws-neuron-sdk tools/neuron-sys-tools/nccom-test.rst)."""

from __future__ import annotations

import numpy as np
import pytest

from test_nccl import net_for
from ultracluster.hardware import get_system
from ultracluster.hardware.sources import Flag
from ultracluster.simulate.calibration import NEURON_LINK, PRIORS
from ultracluster.simulate.network import Net

MIB = 2**20
# "64 rank all-reduce on two instances", fp32: bytes -> microseconds
TWO_TRN1_ALL_REDUCE = {128 * MIB: 6279, 256 * MIB: 11954, 512 * MIB: 21803, 1024 * MIB: 41806}
# "32 rank all-gather on a single instance": bytes -> microseconds
ONE_TRN1_ALL_GATHER = {1024: 151, 8192: 149, 65536: 150}


def _net(chips: int) -> Net:
    return net_for("", chips, "trn1.32xlarge")


def test_trainium_takes_neuron_link_efficiency() -> None:
    assert PRIORS["trainium"].scale_up_eff == NEURON_LINK
    assert _net(16).hw.eff.scale_up_eff == NEURON_LINK


def test_large_all_reduce_on_two_trn1_follows_nccom_test() -> None:
    """Time per byte (the slope from 128 MiB to 1 GiB) within 3%; each size within 15%."""
    net = _net(32)
    cost = net.cost(net.groups(1, 32)[0], "all_reduce")
    sizes = np.array(sorted(TWO_TRN1_ALL_REDUCE), dtype=float)
    measured = np.array([TWO_TRN1_ALL_REDUCE[int(s)] for s in sizes]) * 1e-6
    model = np.array([float(cost.time(s)) for s in sizes])
    assert np.polyfit(sizes, model, 1)[0] == pytest.approx(np.polyfit(sizes, measured, 1)[0],
                                                           rel=0.03)
    assert model == pytest.approx(measured, rel=0.15)


def test_small_all_gather_on_one_trn1_is_its_hop_latency() -> None:
    """149-151 us for 1-64 KiB on the 16 chips of one instance: 15 hops of the catalogue's
    NeuronLink latency."""
    net = _net(16)
    cost = net.cost(net.groups(1, 16)[0], "all_gather")
    for size, us in ONE_TRN1_ALL_GATHER.items():
        assert float(cost.time(size)) == pytest.approx(us * 1e-6, rel=0.05)


def test_neuron_link_latency_is_derived_on_trn1_and_estimated_later() -> None:
    assert get_system("trn1.32xlarge").sources["scale_up_latency_s"].flag == Flag.DERIVED
    for name in ("trn2.48xlarge", "trn2-ultraserver", "trn3-ultraserver"):
        assert get_system(name).sources["scale_up_latency_s"].flag == Flag.ESTIMATE
