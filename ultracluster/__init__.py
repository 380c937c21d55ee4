"""ultracluster: plan, simulate and run one model's training on a multi-site ultra-cluster."""

__version__ = "0.1.0"
