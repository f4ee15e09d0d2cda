"""quantspec's numpy runtime: vendor-exact encodings, quantization kernels and calibrators.

The pieces, in the order data flows through them::

    batches --> calibrator.update() --> calibrator.encoding() --> Encoding
    (min, max) --> encoding_from_range(scheme=...) ------------> Encoding
    x, Encoding --> quantize() / dequantize() / fake_quantize()

Example:
    >>> import numpy as np
    >>> from quantspec.runtime import encoding_from_range, fake_quantize, make_calibrator
    >>> cal = make_calibrator("minmax", symmetric=True)
    >>> _ = cal.update(np.array([-1.0, 0.25, 0.5], dtype=np.float32))
    >>> enc = cal.result()
    >>> enc.offset.tolist(), fake_quantize([0.3], enc).tolist()
    ([-128.0], [0.296875])

Every encoding scheme reproduces one vendor's arithmetic (:mod:`.schemes`); kernels offer ONNX,
AIMET and Vitis semantics (:mod:`.quantize`); the rounding modes are in :mod:`.rounding`; packed
4-bit storage in :mod:`.packing`. Errors on bad input are ``QuantspecError`` with ``E4xx`` codes
(:mod:`.errors`). On ONNX graphs: :mod:`.execute` runs a model and exposes its tensors,
:mod:`.data` reads calibration data and :mod:`.calibrate` calibrates a compiled plan.
"""

from __future__ import annotations

from .calibrate import CalibrationResult
from .calibrators import (
    CALIBRATORS,
    Calibrator,
    EntropyCalibrator,
    HfmgCalibrator,
    IfmrCalibrator,
    MinMaxCalibrator,
    MseCalibrator,
    PercentileCalibrator,
    TfEnhancedCalibrator,
    VitisCalibrator,
    make_calibrator,
)
from .data import open_data
from .encoding import Encoding, offset_to_zero_point, zero_point_to_offset
from .execute import Executor
from .from_data import encoding_from_data
from .packing import pack_int4, unpack_int4
from .parallel import get_num_threads, set_num_threads
from .qdq import build_qdq, build_qdq_model
from .quantize import SEMANTICS, dequantize, fake_quantize, quantize
from .rounding import ROUNDING_MODES, round_array
from .schemes import SCHEMES, encoding_from_range
from .simulate import SimulationReport, simulate

__all__ = [
    "CALIBRATORS",
    "ROUNDING_MODES",
    "SCHEMES",
    "SEMANTICS",
    "CalibrationResult",
    "Calibrator",
    "Encoding",
    "EntropyCalibrator",
    "Executor",
    "HfmgCalibrator",
    "IfmrCalibrator",
    "MinMaxCalibrator",
    "MseCalibrator",
    "PercentileCalibrator",
    "SimulationReport",
    "TfEnhancedCalibrator",
    "VitisCalibrator",
    "build_qdq",
    "build_qdq_model",
    "dequantize",
    "encoding_from_data",
    "encoding_from_range",
    "fake_quantize",
    "get_num_threads",
    "make_calibrator",
    "open_data",
    "offset_to_zero_point",
    "pack_int4",
    "quantize",
    "round_array",
    "set_num_threads",
    "simulate",
    "unpack_int4",
    "zero_point_to_offset",
]
