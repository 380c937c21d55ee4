"""Sourced hardware catalogue: chips, systems (nodes and pods), inter-site link figures."""

from ultracluster.hardware.chip import PRECISIONS, Chip
from ultracluster.hardware.chips import CHIPS, get_chip
from ultracluster.hardware.links import LINK_FIGURES, fibre_latency_s
from ultracluster.hardware.sources import Flag, Source
from ultracluster.hardware.system import System
from ultracluster.hardware.systems import SYSTEMS, get_system
from ultracluster.units import Precision

__all__ = [
    "CHIPS", "Chip", "Flag", "LINK_FIGURES", "PRECISIONS", "Precision", "SYSTEMS", "Source",
    "System", "fibre_latency_s", "get_chip", "get_system",
]
