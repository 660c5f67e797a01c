"""Frame label grid and post-processing (spec §2.1, §2.5) [ref: baseline ``ManyHotEncoder``,
``evaluation_measures.py``].

An event [on, off) in seconds covers output frames ``int(on / frame_s)`` up to ``int(off / frame_s)``
(exclusive), where ``frame_s = P · hop / sr`` and P is the CNN's total time pooling. Output frame i starts at
``i · frame_s``. Detection: threshold the frame posteriors, median-filter each class over ``window`` frames,
and turn runs of active frames into events.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.ndimage import median_filter

from devicelab.data.datasets.desed import Event


def encode_strong(events: Sequence[Event], classes: Sequence[str], frames: int, frame_s: float) -> np.ndarray:
    """Multi-hot frame targets (frames, K) of a clip's events; a clip without events gives all zeros."""
    target = np.zeros((frames, len(classes)), dtype=np.float32)
    for e in events:
        k = classes.index(e.label)
        start, stop = int(e.onset_s / frame_s), int(e.offset_s / frame_s)
        target[max(0, start) : min(frames, max(stop, start + 1)), k] = 1.0
    return target


def encode_tags(tags: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """Multi-hot clip tags (K,)."""
    out = np.zeros(len(classes), dtype=np.float32)
    for t in tags:
        out[classes.index(t)] = 1.0
    return out


def median_smooth(scores: np.ndarray, window: int) -> np.ndarray:
    """Median filter of (..., T, K) over time, each class apart (``scipy.ndimage.median_filter``)."""
    if window <= 1:
        return scores
    size = [1] * scores.ndim
    size[-2] = window
    return median_filter(scores, size=tuple(size), mode="nearest")


def decode_strong(
    active: np.ndarray, classes: Sequence[str], frame_s: float, filename: str = ""
) -> list[tuple[str, float, float, str]]:
    """Events ``(filename, onset_s, offset_s, label)`` of a binary (T, K) grid: one per run of frames."""
    events = []
    padded = np.pad(active.astype(np.int8), ((1, 1), (0, 0)))
    changes = np.diff(padded, axis=0)  # (T + 1, K)
    for k, label in enumerate(classes):
        starts = np.flatnonzero(changes[:, k] == 1)
        stops = np.flatnonzero(changes[:, k] == -1)
        for a, b in zip(starts, stops, strict=True):
            events.append((filename, round(a * frame_s, 3), round(b * frame_s, 3), label))
    return events


def detect(
    scores: np.ndarray, classes: Sequence[str], frame_s: float, threshold: float, window: int, filename: str
) -> list[tuple[str, float, float, str]]:
    """The baseline's post-processing: threshold (same for every system), median filter, runs -> events."""
    active = median_smooth((scores > threshold).astype(np.float32), window) > 0.5
    return decode_strong(active, classes, frame_s, filename)
