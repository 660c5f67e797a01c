"""The MFCC + Δ + ΔΔ front end of spec §2.1 and the cutting of phone tokens."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from devicelab.data.datasets.timit import PhoneSegment, frame_labels
from devicelab.methods.phoneme_vgpds.config import FeatureConfig
from devicelab.methods.phoneme_vgpds.features import PhoneFeatures, cut_tokens, delta, segment_frames


def test_delta_is_the_regression_slope_with_replicated_edges():
    ramp = torch.arange(10, dtype=torch.float64).reshape(10, 1) * 3.0  # slope 3 per frame
    d = delta(ramp, 2)
    assert torch.allclose(d[2:-2], torch.full((6, 1), 3.0, dtype=torch.float64))
    # first frame: (x1 − x0 + 2(x2 − x0)) / 10 with x−1 = x−2 = x0
    assert d[0, 0].item() == pytest.approx((3 + 2 * 6) / 10)
    assert torch.equal(
        delta(torch.ones(5, 2, dtype=torch.float64), 2), torch.zeros(5, 2, dtype=torch.float64)
    )


def test_frames_follow_the_timit_frame_convention():
    features = PhoneFeatures()
    for n in (400, 559, 560, 16000):
        assert features.num_frames(n) == len(frame_labels([], n))
        assert features(torch.randn(n, generator=torch.Generator().manual_seed(n))).shape == (
            features.num_frames(n),
            39,
        )
    segments = [PhoneSegment(0, 700, "a"), PhoneSegment(700, 2100, "b"), PhoneSegment(2100, 4000, "c")]
    labels = frame_labels(segments, 4000)
    for s in segments:
        frames = segment_frames(s.start, s.end, len(labels), 400, 160)
        assert [labels[i] for i in frames] == [s.label] * len(frames) and len(frames) > 0
    assert segment_frames(0, 100, 10, 400, 160) == range(0, 0)  # no frame centre inside


def test_features_are_normalised_per_utterance_and_see_context():
    wave = torch.sin(torch.arange(8000, dtype=torch.float64) * 0.3) * torch.linspace(0.1, 1.0, 8000)
    x = PhoneFeatures()(wave)
    assert torch.allclose(x.mean(0), torch.zeros(39, dtype=torch.float64), atol=1e-9)
    assert torch.allclose(x.std(0), torch.ones(39, dtype=torch.float64), atol=1e-6)
    raw = PhoneFeatures(FeatureConfig(cmvn=False, delta_window=0))(wave)
    assert raw.shape[1] == 13 and raw[:, 0].std() > 0.1  # c0 follows the rising level


def test_cut_tokens_keeps_the_central_frames_and_drops_short_tokens():
    features = np.arange(100, dtype=np.float64).reshape(100, 1)
    segments = [(0, 160 * 3, "aa"), (160 * 10, 160 * 40, "s"), (160 * 50, 160 * 60, "n")]
    tokens = cut_tokens(features, segments, {"aa", "s"}, min_frames=4, max_frames=16, window=400, hop=160)
    assert [label for label, _ in tokens] == ["s"]  # aa has fewer than 4 frames, n is not a class
    frames = segment_frames(160 * 10, 160 * 40, 100, 400, 160)  # 30 frames, 9 … 38
    kept = tokens[0][1][:, 0]
    assert len(kept) == 16 and kept[0] == frames.start + (len(frames) - 16) // 2
    assert np.array_equal(kept, np.arange(kept[0], kept[0] + 16))


@pytest.mark.slow
def test_cepstra_match_librosa():
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(4000) + 0.3 * np.sin(np.arange(4000) * 0.2)).astype(np.float64)
    front = PhoneFeatures(FeatureConfig(log_offset=1e-10))
    ours = front.cepstra(torch.from_numpy(audio)).numpy()
    padded = np.pad(audio, (front.pad, 512 - 400 - front.pad))
    mel = librosa.feature.melspectrogram(
        y=padded,
        sr=16000,
        n_fft=512,
        hop_length=160,
        win_length=400,
        window="hamming",
        center=False,
        power=2.0,
        n_mels=40,
        fmin=20.0,
        fmax=7600.0,
        htk=True,
        norm=None,
    )
    reference = librosa.feature.mfcc(S=np.log(mel + 1e-10), n_mfcc=13, dct_type=2, norm="ortho").T
    assert ours.shape == reference.shape
    assert np.abs(ours - reference).max() <= 1e-4 * np.abs(reference).max()
