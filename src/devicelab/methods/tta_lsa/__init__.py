"""Label Shift Adapter for test-time adaptation (Park et al., ICCV 2023), with the TTA methods it plugs into.

Public pieces: :class:`LabelShiftAdapter` (the adapter), :class:`PriorEstimator` (π̂), :func:`make_head`
(the heads ``plain``, ``lsa``, ``logit`` and their oracles), :data:`TTA_REGISTRY` (``source``, ``bn-adapt``,
``tent``, ``eata``, ``sar``, ``lame``), the stream samplers in :mod:`devicelab.methods.tta_lsa.streams`, the
experiment's :class:`TTALSAConfig` and its source backbones (:func:`build_backbone`).
"""

from devicelab.methods.tta_lsa.adapter import AdapterConfig, LabelShiftAdapter
from devicelab.methods.tta_lsa.config import TTALSAConfig
from devicelab.methods.tta_lsa.estimator import PriorEstimator
from devicelab.methods.tta_lsa.heads import HEAD_NAMES, make_head
from devicelab.methods.tta_lsa.model import build_backbone
from devicelab.methods.tta_lsa.tta import TTA_REGISTRY, TTAMethod

__all__ = [
    "AdapterConfig",
    "HEAD_NAMES",
    "LabelShiftAdapter",
    "PriorEstimator",
    "TTAMethod",
    "TTALSAConfig",
    "TTA_REGISTRY",
    "build_backbone",
    "make_head",
]
