"""The two errors users see: bad input (`ConfigError`) and plans that cannot run."""


class ConfigError(ValueError):
    """Invalid input: the message names the field, the value and what would be valid."""


class InfeasiblePlanError(ValueError):
    """A plan that cannot run on the cluster (memory, divisibility), with the numbers.

    `reason` is a short machine-readable tag (``"memory"``, ``"divisibility"``, ...) that the
    search uses to count infeasible candidates by cause.
    """

    def __init__(self, message: str, *, reason: str = "other") -> None:
        super().__init__(message)
        self.reason = reason
