"""Power, energy and goodput.

Power: each chip draws idle + (TDP - idle) x utilisation, utilisation being the fraction of
the step it computes (a linear power model, Fan, Weber & Barroso 2007, 'Power provisioning for
a warehouse-sized computer'); the rest of the system (hosts, NICs, switches) draws its
catalogue overhead; the site multiplies by its PUE.

Goodput: failures arrive at a per-chip rate (Llama 3: 419 interruptions in 54 days on 16,384
GPUs), so a failure domain of N chips has MTBF M = 1 / (N x rate). Checkpoints of delta seconds
every tau seconds, restart R: the expected wall time per unit of work is Daly's higher-order
model (J. T. Daly, 'A higher order estimate of the optimum checkpoint interval for restart
dumps', FGCS 22(3), 2006):

    T_wall / T_work = M e^{R/M} (e^{(tau + delta)/M} - 1) / tau,
    tau_opt = sqrt(2 delta M) - delta  (delta < 2M; Young 1974 to first order), else M.

With DiLoCo or streaming site sync a failure stops only its own site (the other sites keep
training and the failed one rejoins), so the failure domain is one site.
"""

from __future__ import annotations

import numpy as np

from ultracluster.simulate.comm import Arr
from ultracluster.simulate.context import HwContext


def power_terms(
    hw: HwContext, *, world: Arr, busy_s: Arr, step_s: Arr, tokens_per_step: Arr
) -> dict[str, Arr]:
    """Power and energy per step: each chip draws idle power plus its busy fraction of
    (TDP - idle); node overhead per chip is added and the site's PUE applied.

    Args:
        world: chips per plan.
        busy_s: seconds a chip computes in a step (forward, backward, optimizer).
        step_s: step time.
        tokens_per_step: tokens of one global batch.

    Returns:
        Columns ``utilization``, ``chip_power_w``, ``it_power_w``, ``power_w`` (facility),
        ``energy_per_step_j`` and ``energy_per_token_j``.
    """
    util = np.clip(busy_s / step_s, 0.0, 1.0)
    chip_w = hw.idle_w + (hw.tdp_w - hw.idle_w) * util
    it_w = world * (chip_w + hw.overhead_w_per_chip)
    facility_w = it_w * hw.pue
    energy_step = facility_w * step_s
    return {
        "utilization": util,
        "chip_power_w": chip_w,
        "it_power_w": it_w,
        "power_w": facility_w,
        "energy_per_step_j": energy_step,
        "energy_per_token_j": energy_step / tokens_per_step,
    }


def optimal_interval_s(delta: Arr, mtbf: Arr) -> Arr:
    """Young/Daly optimum checkpoint interval."""
    return np.where(delta < 2 * mtbf, np.sqrt(2 * delta * mtbf) - delta, mtbf)


def daly_goodput(tau: Arr, delta: Arr, mtbf: Arr, restart: float) -> Arr:
    """Useful fraction of wall time (Daly 2006, eq. 20 divided by the solve time)."""
    # expm1 keeps precision when (tau + delta) << M; exp(R/M) may overflow to inf -> goodput 0
    with np.errstate(over="ignore"):
        wall_per_work = mtbf * np.exp(restart / mtbf) * np.expm1((tau + delta) / mtbf) / tau
    return np.where(np.isfinite(wall_per_work), 1.0 / wall_per_work, 0.0)


def goodput_terms(
    hw: HwContext, *, domain_chips: Arr, world: Arr, checkpoint_bytes: Arr
) -> dict[str, Arr]:
    """Failures and checkpoints: the mean time between failures of the chips one failure
    stops, the time to write a checkpoint at the storage bandwidth, the Young/Daly interval
    and the useful fraction of wall time (Daly 2006).

    Args:
        domain_chips: chips a single failure stops (a site under periodic sync, else all).
        world: chips writing the checkpoint in parallel.
        checkpoint_bytes: bytes of one checkpoint (weights and optimizer state).

    Returns:
        Columns ``mtbf_s``, ``checkpoint_write_s``, ``checkpoint_interval_s``, ``goodput``.
    """
    mtbf = 3600.0 / (hw.failures_per_chip_hour * domain_chips)  # 3600 s per hour
    delta = checkpoint_bytes / (hw.storage_bw_per_chip * world)
    tau = optimal_interval_s(delta, mtbf)
    good = daly_goodput(tau, delta, mtbf, hw.restart_s)
    return {
        "mtbf_s": mtbf,
        "checkpoint_write_s": delta,
        "checkpoint_interval_s": tau,
        "goodput": np.maximum(good, 1e-12),  # a floor so time = work / goodput stays finite
    }
