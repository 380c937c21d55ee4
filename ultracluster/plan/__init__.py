"""Plans: parallel degrees, micro-batching, recomputation, sharding and site sync."""

from ultracluster.plan.dims import DEGREES, DIM_NAMES, WORLD_DIMS, ParallelDims, world_of
from ultracluster.plan.plan import (
    SYNC_BITS,
    SYNC_MODES,
    Plan,
    SiteSync,
    load_plan,
    plan_from_dict,
    plan_to_dict,
    save_plan,
)
from ultracluster.plan.vocab import (Precision, Recompute, RunSync, Schedule, SyncMode,
                                     schedule_for)

__all__ = [
    "DEGREES", "DIM_NAMES", "SYNC_BITS", "WORLD_DIMS", "world_of", "SYNC_MODES", "ParallelDims", "Plan", "Precision", "Recompute",
    "RunSync", "Schedule", "SiteSync", "SyncMode", "load_plan", "plan_from_dict", "plan_to_dict",
    "save_plan", "schedule_for",
]
