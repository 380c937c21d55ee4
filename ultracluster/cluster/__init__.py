"""Clusters: sites of pods, tiers of network, presets and TOML files."""

from ultracluster.cluster.load import cluster_from_dict, cluster_to_toml, load_cluster
from ultracluster.cluster.model import Cluster, InterSiteLink, Site, Tier, make_site
from ultracluster.cluster.presets import DEFAULT_CLUSTER, PRESETS, get_preset

__all__ = [
    "DEFAULT_CLUSTER", "PRESETS", "Cluster", "InterSiteLink", "Site", "Tier",
    "cluster_from_dict", "cluster_to_toml", "get_preset", "load_cluster", "make_site",
]
