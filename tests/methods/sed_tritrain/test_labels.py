"""The frame label grid and the post-processing (sed-tritrain.md §2.1, §2.5)."""

from __future__ import annotations

import numpy as np
import pytest

from devicelab.data.datasets.desed import Event
from devicelab.methods.sed_tritrain.labels import decode_strong, detect, encode_strong, median_smooth

CLASSES = ("Dog", "Speech")
FRAME_S = 0.08  # quick: hop 640 at 16 kHz, time pooling 2


@pytest.mark.parametrize("onset, offset", [(1.0, 2.0), (0.33, 0.61), (7.91, 10.0), (0.0, 0.25)])
def test_encode_decode_round_trip_within_one_frame(onset, offset):
    grid = encode_strong([Event(onset, offset, "Speech")], CLASSES, 125, FRAME_S)
    assert grid[:, 0].sum() == 0
    (event,) = decode_strong(grid > 0.5, CLASSES, FRAME_S, "x.wav")
    assert event[0] == "x.wav" and event[3] == "Speech"
    assert abs(event[1] - onset) <= FRAME_S and abs(event[2] - offset) <= FRAME_S


def test_label_grid_follows_the_baseline_rule():
    grid = encode_strong([Event(1.0, 2.0, "Dog")], CLASSES, 125, FRAME_S)
    assert np.flatnonzero(grid[:, 0]).tolist() == list(range(int(1.0 / FRAME_S), int(2.0 / FRAME_S)))


def test_a_clip_without_events_gives_zero_targets():
    assert not encode_strong([], CLASSES, 125, FRAME_S).any()


def test_median_filter_removes_a_one_frame_blip_and_fills_a_one_frame_gap():
    active = np.zeros((20, 2), np.float32)
    active[3, 0] = 1.0  # blip
    active[10:18, 1] = 1.0
    active[14, 1] = 0.0  # gap
    smooth = median_smooth(active, 3)
    assert not smooth[:, 0].any()
    assert smooth[10:18, 1].all()


def test_detect_thresholds_filters_and_decodes():
    scores = np.zeros((25, 2), np.float32)
    scores[5:15, 1] = 0.8
    scores[9, 1] = 0.4  # one frame under the threshold inside the event
    scores[20, 0] = 0.9  # a one-frame blip
    assert detect(scores, CLASSES, FRAME_S, 0.5, 3, "a.wav") == [("a.wav", 0.4, 1.2, "Speech")]
    assert len(detect(scores, CLASSES, FRAME_S, 0.5, 1, "a.wav")) == 3
