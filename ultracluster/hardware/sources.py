"""Provenance for every catalogue figure: where it comes from and how much to trust it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Flag(str, Enum):
    """How a figure was obtained (legend of ``reference/hardware.md``)."""

    OFFICIAL = "official"
    """Vendor doc, datasheet or announcement (also official figures restated by the press)."""
    MEASURED = "measured"
    """Measured by a third party."""
    ESTIMATE = "estimate"
    """Analyst or journalist estimate, or an assumption made here and said so."""
    DERIVED = "derived"
    """Arithmetic from other figures, method stated."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Source:
    """One figure's provenance."""

    flag: Flag
    """How the figure was obtained."""
    ref: str
    """Where it comes from (document, page, or the derivation)."""

    def to_json(self) -> dict[str, str]:
        """The flag's word and the reference, for JSON output."""
        return {"flag": self.flag.value, "ref": self.ref}


def off(ref: str) -> Source:
    """An official figure (vendor datasheet or documentation)."""
    return Source(flag=Flag.OFFICIAL, ref=ref)


def est(ref: str) -> Source:
    """An estimate: `ref` says what it rests on."""
    return Source(flag=Flag.ESTIMATE, ref=ref)


def der(ref: str) -> Source:
    """A figure derived from others: `ref` gives the derivation."""
    return Source(flag=Flag.DERIVED, ref=ref)


def meas(ref: str) -> Source:
    """A measured figure."""
    return Source(flag=Flag.MEASURED, ref=ref)
