"""State shared by the transforms of one run."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .editor import ModelEditor
from .report import TransformReport


@dataclass
class Context:
    """The model being edited, the report being written, and what one transform leaves for a
    later one: the statistics of every batch norm folded into a preceding layer, keyed by that
    layer's output tensor, as ``(gamma, beta)`` (the BN output is ~ N(beta, gamma^2) per channel,
    arXiv 1906.04721 section 4.1). CLE rescales them with the layer and uses them for high-bias
    absorption."""

    editor: ModelEditor
    report: TransformReport
    bn_stats: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
