"""Workloads: transformer shapes (presets, Hugging Face configs) and training jobs."""

from pathlib import Path

from ultracluster.errors import ConfigError
from ultracluster.readers import exists, is_dir
from ultracluster.workload.hf import load_hf_config, spec_from_hf
from ultracluster.workload.job import TrainingJob
from ultracluster.workload.presets import MODEL_PRESETS, PUBLISHED_PARAMS, get_model_preset
from ultracluster.workload.spec import MLASpec, MoESpec, TransformerSpec

DEFAULT_MODEL = "llama3-405b"


def load_model(name_or_path: str) -> TransformerSpec:
    """A preset by name, or a Hugging Face ``config.json`` (file or folder holding one)."""
    if name_or_path in MODEL_PRESETS:
        return get_model_preset(name_or_path)
    p = Path(name_or_path)
    if is_dir(p):
        p = p / "config.json"
    if p.suffix == ".json" or exists(p):
        return load_hf_config(p)
    raise ConfigError(
        f"model: {name_or_path!r} is neither a preset ({', '.join(MODEL_PRESETS)}) nor a file"
    )


__all__ = [
    "DEFAULT_MODEL", "MLASpec", "MODEL_PRESETS", "MoESpec", "PUBLISHED_PARAMS", "TrainingJob",
    "TransformerSpec", "get_model_preset", "load_hf_config", "load_model", "spec_from_hf",
]
