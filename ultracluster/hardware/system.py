"""The `System` record: one scale-up domain (a node or a pod) and its scale-out NICs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ultracluster.errors import ConfigError
from ultracluster.hardware.chip import Chip
from ultracluster.hardware.sources import Source

Topology = Literal["switch", "torus", "all-to-all"]
TOPOLOGIES: tuple[Topology, ...] = ("switch", "torus", "all-to-all")


@dataclass(frozen=True, kw_only=True, slots=True)
class System:
    """A system you deploy as a unit: its chips share one scale-up fabric.

    A node (DGX H100, trn2.48xlarge) or a pod (Trn2 UltraServer, GB200 NVL72, a TPU slice).
    """

    name: str
    """Catalogue key (``trn2-ultraserver``)."""
    display_name: str
    """Human name."""
    chip: Chip
    """The accelerator in every slot."""
    num_chips: int
    """Chips in one scale-up domain."""
    num_nodes: int
    """Host servers in the system (a Trn2 UltraServer is 4 trn2u.48xlarge)."""
    topology: Topology
    """Scale-up topology: NVSwitch-like ``switch``, ``torus`` or ``all-to-all``."""
    torus_dims: tuple[int, ...] = ()
    """Torus shape when `topology` is ``torus`` (product = `num_chips`)."""
    scale_up_bytes_per_s: float
    """Per-chip scale-up bandwidth, both directions together (as vendors quote it)."""
    scale_up_latency_s: float
    """Latency of one scale-up hop (one step of a collective)."""
    nic_bytes_per_s: float
    """Scale-out NIC bandwidth of the whole system, one direction."""
    scale_out_latency_s: float
    """Small-message latency across the scale-out fabric."""
    price_per_hour_usd: float | None
    """On-demand price of the whole system per hour, None where unknown."""
    overhead_power_w: float
    """Power beyond the chips: hosts, NICs, scale-up switches, fans (whole system)."""
    sources: dict[str, Source] = field(default_factory=dict)
    """Provenance per field name."""

    def __post_init__(self) -> None:
        if self.num_chips <= 0 or self.num_nodes <= 0:
            raise ConfigError(f"system {self.name}: num_chips and num_nodes must be positive")
        if self.topology not in TOPOLOGIES:
            raise ConfigError(f"system {self.name}: topology {self.topology!r} not in {TOPOLOGIES}")
        if self.topology == "torus":
            prod = 1
            for d in self.torus_dims:
                prod *= d
            if prod != self.num_chips:
                raise ConfigError(
                    f"system {self.name}: torus_dims {self.torus_dims} multiply to {prod}, "
                    f"not num_chips = {self.num_chips}"
                )
        for name in ("scale_up_bytes_per_s", "nic_bytes_per_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"system {self.name}: {name} must be > 0")
        for name in ("scale_up_latency_s", "scale_out_latency_s", "overhead_power_w"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"system {self.name}: {name} must be >= 0")

    @property
    def chips_per_node(self) -> int:
        """Chips in one node (server)."""
        return self.num_chips // self.num_nodes

    @property
    def price_per_chip_hour_usd(self) -> float | None:
        """The system's hourly price shared over its chips (None when unpriced)."""
        if self.price_per_hour_usd is None:
            return None
        return self.price_per_hour_usd / self.num_chips
