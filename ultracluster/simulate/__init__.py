"""The simulator: pure functions from (cluster, model, job, plan) to an `Estimate`."""

from ultracluster.simulate.estimate import Estimate, check_plan, estimate

__all__ = ["Estimate", "check_plan", "estimate"]
