"""Streaming, mergeable calibrators, one per vendor algorithm.

* ``minmax`` (:class:`MinMaxCalibrator`): AIMET/QNN "tf", Vitis maxmin, AMCT ARQ, any scheme.
* ``tf_enhanced`` (:class:`TfEnhancedCalibrator`): AIMET TF-enhanced SQNR search, bit-exact.
* ``percentile`` (:class:`PercentileCalibrator`): AIMET percentile, bit-exact.
* ``entropy`` (:class:`EntropyCalibrator`): TensorRT/ORT KL-divergence threshold.
* ``mse`` (:class:`MseCalibrator`): clipping-range search minimizing the quantization MSE.
* ``vitis`` (:class:`VitisCalibrator`): Vitis diffs/maxmin/percentile/mse/entropy per batch.
* ``ifmr`` (:class:`IfmrCalibrator`): AMCT IFMR, streaming.
* ``hfmg`` (:class:`HfmgCalibrator`): AMCT HFMG.

Typical use::

    cal = make_calibrator("tf_enhanced", symmetric=True)
    for batch in batches:
        cal.update(batch)
    enc = cal.result()          # or cal.encoding(bits=16, symmetric=False)

Sharded use: ``shard = cal.empty_like()`` on each worker, then ``cal.merge(shard)``.
"""

from __future__ import annotations

from typing import Any

from .. import errors
from .amct import HfmgCalibrator, IfmrCalibrator, ifmr_reference
from .base import Calibrator
from .entropy import EntropyCalibrator
from .histogram import Pow2Histogram
from .minmax import MinMaxCalibrator
from .mse import MseCalibrator
from .percentile import PercentileCalibrator
from .statistics import BatchStatistic
from .tf_enhanced import TfEnhancedCalibrator
from .vitis import VitisCalibrator

CALIBRATORS: dict[str, type[Calibrator]] = {
    cls.name: cls
    for cls in (MinMaxCalibrator, TfEnhancedCalibrator, PercentileCalibrator, EntropyCalibrator,
                MseCalibrator, VitisCalibrator, IfmrCalibrator, HfmgCalibrator)
}
_ALIASES = {"min_max": "minmax", "tf": "minmax", "maxmin": "minmax", "kl": "entropy",
            "post_training_tf_enhanced": "tf_enhanced", "post_training_percentile": "percentile",
            "sqnr": "tf_enhanced", "enhanced": "tf_enhanced"}


def make_calibrator(name: str, **options: Any) -> Calibrator:
    """Create a calibrator by name (aliases such as ``min_max`` and ``kl`` are accepted)."""
    cls = CALIBRATORS.get(_ALIASES.get(name, name))
    if cls is None:
        raise errors.unknown_name("calibrator", name, CALIBRATORS)
    return cls(**options)


__all__ = [
    "CALIBRATORS",
    "BatchStatistic",
    "Calibrator",
    "EntropyCalibrator",
    "HfmgCalibrator",
    "IfmrCalibrator",
    "MinMaxCalibrator",
    "MseCalibrator",
    "PercentileCalibrator",
    "Pow2Histogram",
    "TfEnhancedCalibrator",
    "VitisCalibrator",
    "ifmr_reference",
    "make_calibrator",
]
