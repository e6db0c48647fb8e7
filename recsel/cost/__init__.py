"""Measured serving cost: latency timing, a per-feature cost model, calibration, cache keys."""

from recsel.cost.cache_key import cache_key, cache_path, default_cache_dir, machine_info
from recsel.cost.calibration import calibrate, plan_models
from recsel.cost.latency import (
    LatencyStats,
    ServingTarget,
    load_serving_target,
    measure_interleaved,
    measure_latency,
    measure_model_latency,
)
from recsel.cost.model import COEFFICIENTS, CostModel

__all__ = [
    "COEFFICIENTS",
    "CostModel",
    "LatencyStats",
    "ServingTarget",
    "cache_key",
    "cache_path",
    "calibrate",
    "default_cache_dir",
    "load_serving_target",
    "machine_info",
    "measure_interleaved",
    "measure_latency",
    "measure_model_latency",
    "plan_models",
]
