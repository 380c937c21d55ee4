"""The planner: enumerate valid plans, evaluate them in bulk, rank and find the Pareto front."""

from ultracluster.search.candidates import SearchSpace
from ultracluster.search.search import SearchResult, SearchStats, search

__all__ = ["SearchResult", "SearchSpace", "SearchStats", "search"]
