"""The pseudo-label rule (sed-tritrain.md §2.4) branch by branch, the masked BCE and the pool schedule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from devicelab.methods.sed_tritrain.pseudo import (
    frame_precision_recall,
    masked_bce,
    pool_fraction,
    pseudo_label,
    select_pool,
)

# two clips (0: weak, tagged class 0; 1: unlabelled), 4 frames, 3 classes
HI, LO, MID = 0.9, 0.1, 0.5


def _inputs():
    p1 = np.full((2, 4, 3), MID, np.float32)
    p2 = np.full((2, 4, 3), MID, np.float32)
    # weak clip, class 0 (tagged): frame 0 both high, frame 1 both low, frame 2 disagree, frame 3 unsure
    p1[0, :, 0], p2[0, :, 0] = [HI, LO, HI, MID], [HI, LO, LO, MID]
    # unlabelled clip: class 1 present by both clip posteriors, class 2 absent by both, class 0 unsure
    p1[1, :, 1], p2[1, :, 1] = [HI, HI, LO, HI], [HI, HI, LO, LO]
    q1 = np.array([[0.5, 0.5, 0.5], [0.5, 0.95, 0.05]], np.float32)
    q2 = np.array([[0.5, 0.5, 0.5], [0.2, 0.97, 0.02]], np.float32)
    tags = np.array([[1, 0, 0], [0, 0, 0]], np.float32)
    return p1, p2, q1, q2, tags, np.array([True, False])


def test_every_branch_of_the_rule():
    pl = pseudo_label(*_inputs())
    # weak clip, tagged class: agree high -> 1, agree low -> 0, disagree / unsure -> masked
    assert pl.targets[0, :, 0].tolist() == [1, 0, 0, 0]
    assert pl.mask[0, :, 0].tolist() == [1, 1, 0, 0]
    # weak clip, classes absent from its tags: ŷ = 0 with m = 1 whatever the labellers say
    assert (pl.targets[0, :, 1:] == 0).all() and (pl.mask[0, :, 1:] == 1).all()
    # unlabelled clip: class 1 present -> frame rule; class 2 absent -> all 0; class 0 unsure -> masked
    assert pl.targets[1, :, 1].tolist() == [1, 1, 0, 0] and pl.mask[1, :, 1].tolist() == [1, 1, 1, 0]
    assert (pl.mask[1, :, 2] == 1).all() and (pl.targets[1, :, 2] == 0).all()
    assert (pl.mask[1, :, 0] == 0).all()
    # clip tags only for unlabelled clips: ĝ on present and absent classes
    assert pl.clip_targets[1].tolist() == [0, 1, 0] and pl.clip_mask[1].tolist() == [0, 1, 1]
    assert (pl.clip_mask[0] == 0).all()
    assert pl.agreement[0] == pytest.approx((2 + 8) / 12)


def test_a_tag_without_positive_frames_masks_its_column():
    p1, p2, q1, q2, tags, is_weak = _inputs()
    p1[0, 0, 0] = MID  # the one agreed positive frame of the tagged class disappears
    pl = pseudo_label(p1, p2, q1, q2, tags, is_weak)
    assert (pl.mask[0, :, 0] == 0).all()
    assert (pl.mask[0, :, 1:] == 1).all()


def test_masked_bce_gives_no_gradient_where_the_mask_is_zero():
    p = torch.full((1, 4, 3), 0.3, requires_grad=True)
    y = torch.ones(1, 4, 3)
    m = torch.zeros(1, 4, 3)
    m[0, 1, 2] = 1.0
    loss = masked_bce(p, y, m)
    loss.backward()
    assert loss.item() == pytest.approx(-np.log(0.3), rel=1e-5)
    assert p.grad[0, 1, 2] != 0 and int((p.grad != 0).sum()) == 1
    assert masked_bce(p, y, torch.zeros_like(m)).item() == 0.0


def test_pool_grows_from_its_start_to_every_clip():
    assert pool_fraction(100, 100, 300, 0.2, 0.8) == pytest.approx(0.2)
    assert pool_fraction(170, 100, 300, 0.2, 0.8) == pytest.approx(0.2 + 0.8 * 70 / 140)
    assert pool_fraction(240, 100, 300, 0.2, 0.8) == 1.0 and pool_fraction(299, 100, 300, 0.2, 0.8) == 1.0
    pl = pseudo_label(*_inputs())
    pl.agreement = np.array([0.2, 0.9])
    assert select_pool(pl, 0.5).in_pool.tolist() == [False, True]


def test_precision_and_recall_against_hidden_labels():
    pl = pseudo_label(*_inputs())
    oracle = np.zeros((2, 4, 3), np.float32)
    oracle[0, 0:2, 0] = 1  # weak clip: one of two true frames labelled
    oracle[1, 0, 1] = 1  # unlabelled clip: frame 1 of class 1 is a wrong positive
    precision, recall = frame_precision_recall(pl, oracle)
    assert precision == pytest.approx(100 * 2 / 3)
    assert recall == pytest.approx(100 * 2 / 3)
