"""`Cluster`, `Site`, `InterSiteLink`: what exists, as sites of pods joined by tiers of network."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ultracluster.errors import ConfigError
from ultracluster.hardware.links import fibre_latency_s
from ultracluster.hardware.system import System

DEFAULT_PUE = 1.15
"""AWS global PUE 2023-2024 (AWS Sustainability 'Data centers' page)."""
DEFAULT_ELECTRICITY_USD_PER_KWH = 0.0806
"""US industrial average 2023, 8.06 cents/kWh (EIA via Statista)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Site:
    """One data centre or building: `num_pods` copies of one system on one fabric."""

    name: str
    """Site name, unique in the cluster."""
    system: System
    """The system (node or pod) the site is built of."""
    num_pods: int
    """How many systems."""
    fabric_bytes_per_s_per_pod: float
    """Scale-out bandwidth per system into the site fabric (normally its NIC total)."""
    fabric_latency_s: float
    """Small-message latency across the site fabric."""
    oversubscription: float = 1.0
    """Fabric oversubscription above the leaf (>= 1): site-wide traffic gets 1/x of the NICs."""
    pue: float = DEFAULT_PUE
    """Power usage effectiveness of the site."""
    electricity_usd_per_kwh: float = DEFAULT_ELECTRICITY_USD_PER_KWH
    """Electricity price."""
    location: str = ""
    """Where it is (free text)."""
    efficiency: tuple[tuple[str, float], ...] = ()
    """Measured efficiency overrides for the simulator (``ultracluster calibrate``)."""

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("site.name: must not be empty")
        if self.num_pods <= 0:
            raise ConfigError(f"site {self.name}: num_pods = {self.num_pods} must be positive")
        if not self.fabric_bytes_per_s_per_pod > 0:
            raise ConfigError(f"site {self.name}: fabric bandwidth must be > 0")
        if not self.fabric_latency_s >= 0:
            raise ConfigError(f"site {self.name}: fabric latency must be >= 0")
        if not self.oversubscription >= 1.0:
            raise ConfigError(
                f"site {self.name}: oversubscription = {self.oversubscription} must be >= 1"
            )
        if not 1.0 <= self.pue <= 3.0:
            raise ConfigError(f"site {self.name}: pue = {self.pue} must be in [1, 3]")
        if not self.electricity_usd_per_kwh >= 0:
            raise ConfigError(f"site {self.name}: electricity price must be >= 0")

    @property
    def num_chips(self) -> int:
        """Chips in the site: pods x chips per pod."""
        return self.num_pods * self.system.num_chips

    @property
    def fabric_bytes_per_s_per_chip(self) -> float:
        """Per-chip share of the scale-out fabric for site-wide traffic."""
        return self.fabric_bytes_per_s_per_pod / self.system.num_chips / self.oversubscription


@dataclass(frozen=True, kw_only=True, slots=True)
class InterSiteLink:
    """The long-haul (or campus) link between two sites."""

    site_a: str
    """One end."""
    site_b: str
    """The other end."""
    distance_km: float
    """Fibre route length."""
    bandwidth_bytes_per_s: float
    """Capacity between the two sites, one direction."""
    latency_s: float
    """One-way latency (propagation plus equipment)."""
    assumption: str = ""
    """Why these figures, when they are assumptions rather than published numbers."""

    def __post_init__(self) -> None:
        if self.site_a == self.site_b:
            raise ConfigError(f"link: joins site {self.site_a!r} to itself")
        if not self.distance_km >= 0:
            raise ConfigError(f"link {self.site_a}-{self.site_b}: distance_km must be >= 0")
        if not self.bandwidth_bytes_per_s > 0:
            raise ConfigError(f"link {self.site_a}-{self.site_b}: bandwidth must be > 0")
        if not self.latency_s >= 0:
            raise ConfigError(f"link {self.site_a}-{self.site_b}: latency must be >= 0")

    @staticmethod
    def from_distance(
        a: str, b: str, *, distance_km: float, bandwidth_bytes_per_s: float, assumption: str = ""
    ) -> InterSiteLink:
        """A link whose latency is fibre propagation over `distance_km` (4.9 us/km)."""
        return InterSiteLink(
            site_a=a, site_b=b, distance_km=distance_km,
            bandwidth_bytes_per_s=bandwidth_bytes_per_s,
            latency_s=fibre_latency_s(distance_km), assumption=assumption,
        )

    @property
    def key(self) -> frozenset[str]:
        """The unordered pair of site names the link joins."""
        return frozenset((self.site_a, self.site_b))


TierName = Literal["scale-up", "scale-out", "inter-site"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Tier:
    """A network tier as seen by one chip: its bandwidth and latency (for display and JSON)."""

    name: TierName
    """Which level."""
    where: str
    """Site or link it describes."""
    bandwidth_bytes_per_s: float
    """Per-chip bandwidth for scale-up/scale-out; whole link for inter-site."""
    latency_s: float
    """Small-message latency."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Cluster:
    """A set of sites and the links between every pair of them."""

    name: str
    """Cluster name."""
    description: str = ""
    """One line on what it is."""
    sites: tuple[Site, ...]
    """The sites."""
    links: tuple[InterSiteLink, ...] = ()
    """One link per pair of sites."""
    assumptions: tuple[str, ...] = ()
    """Figures that are assumptions, in words, shown by `show cluster`."""

    def __post_init__(self) -> None:
        if not self.sites:
            raise ConfigError(f"cluster {self.name}: needs at least one site")
        names = [s.name for s in self.sites]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigError(f"cluster {self.name}: duplicate site names {dupes}")
        known = set(names)
        seen: set[frozenset[str]] = set()
        for link in self.links:
            for end in (link.site_a, link.site_b):
                if end not in known:
                    raise ConfigError(f"link {link.site_a}-{link.site_b}: unknown site {end!r}")
            if link.key in seen:
                raise ConfigError(f"link {link.site_a}-{link.site_b}: given twice")
            seen.add(link.key)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                if frozenset((a, b)) not in seen:
                    raise ConfigError(
                        f"cluster {self.name}: missing link between sites {a!r} and {b!r}"
                    )

    @property
    def num_chips(self) -> int:
        """Chips in every site together."""
        return sum(s.num_chips for s in self.sites)

    @property
    def num_sites(self) -> int:
        """Number of sites."""
        return len(self.sites)

    @property
    def is_homogeneous(self) -> bool:
        """Whether every site has the same chip."""
        return len({s.system.chip.name for s in self.sites}) == 1

    def link(self, a: str, b: str) -> InterSiteLink:
        """The link between sites `a` and `b` (either order); `ConfigError` if none."""
        for link in self.links:
            if link.key == frozenset((a, b)):
                return link
        raise ConfigError(f"cluster {self.name}: no link between {a!r} and {b!r}")

    def slowest_link(self) -> InterSiteLink | None:
        """The inter-site link with the least bandwidth (None for one site)."""
        if not self.links:
            return None
        return min(self.links, key=lambda k: (k.bandwidth_bytes_per_s, -k.latency_s))

    def tiers(self) -> list[Tier]:
        """Every network tier as a row: each site's scale-up and scale-out fabric, then each
        inter-site link.
        """
        out: list[Tier] = []
        for s in self.sites:
            out.append(Tier(name="scale-up", where=f"{s.name}: {s.system.name}",
                            bandwidth_bytes_per_s=s.system.scale_up_bytes_per_s,
                            latency_s=s.system.scale_up_latency_s))
            out.append(Tier(name="scale-out", where=s.name,
                            bandwidth_bytes_per_s=s.fabric_bytes_per_s_per_chip,
                            latency_s=s.fabric_latency_s))
        for k in self.links:
            out.append(Tier(name="inter-site", where=f"{k.site_a}<->{k.site_b}",
                            bandwidth_bytes_per_s=k.bandwidth_bytes_per_s, latency_s=k.latency_s))
        return out

    def restrict(self, *, site_names: tuple[str, ...]) -> Cluster:
        """The same cluster with only `site_names` (for `plan --sites`)."""
        unknown = [n for n in site_names if n not in {s.name for s in self.sites}]
        if unknown:
            raise ConfigError(f"--sites: unknown site(s) {unknown} in cluster {self.name}")
        keep = set(site_names)
        return Cluster(
            name=self.name, description=self.description,
            sites=tuple(s for s in self.sites if s.name in keep),
            links=tuple(k for k in self.links if k.site_a in keep and k.site_b in keep),
            assumptions=self.assumptions,
        )


def make_site(
    name: str,
    system: System,
    num_pods: int,
    *,
    fabric_bytes_per_s_per_pod: float | None = None,
    fabric_latency_s: float | None = None,
    oversubscription: float = 1.0,
    pue: float = DEFAULT_PUE,
    electricity_usd_per_kwh: float = DEFAULT_ELECTRICITY_USD_PER_KWH,
    location: str = "",
) -> Site:
    """A site whose fabric defaults to the system's own NICs and scale-out latency."""
    return Site(
        name=name, system=system, num_pods=num_pods,
        fabric_bytes_per_s_per_pod=(
            system.nic_bytes_per_s if fabric_bytes_per_s_per_pod is None
            else fabric_bytes_per_s_per_pod
        ),
        fabric_latency_s=(
            system.scale_out_latency_s if fabric_latency_s is None else fabric_latency_s
        ),
        oversubscription=oversubscription, pue=pue,
        electricity_usd_per_kwh=electricity_usd_per_kwh, location=location,
    )
