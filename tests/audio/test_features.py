"""The log-mel and MFCC front ends: librosa parity, frame count, band placement, ONNX export."""

import numpy as np
import pytest
import torch

from devicelab.audio.features import MFCC, LogMel, dct_matrix, hz_to_mel, mel_filterbank, mel_to_hz

SR = 16000


def _test_signal(seed: int = 0) -> np.ndarray:
    """A chirp plus a tone plus noise: energy in every band, no silent frames."""
    rng = np.random.default_rng(seed)
    t = np.arange(SR) / SR
    chirp = 0.3 * np.sin(2 * np.pi * (100 * t + 3500 * t**2))
    tone = 0.2 * np.sin(2 * np.pi * 1000 * t)
    return (chirp + tone + 0.02 * rng.standard_normal(SR)).astype(np.float32)


def test_logmel_matches_librosa_within_1e3():
    pytest.importorskip("librosa")
    x = np.stack([_test_signal(0), _test_signal(1)])
    ref = LogMel().librosa_reference(x)
    out = LogMel()(torch.from_numpy(x)).numpy()
    assert out.shape == ref.shape == (2, 40, 101)
    assert np.abs(out - ref).max() < 1e-3


def test_mfcc_matches_librosa_dct_of_log_mels():
    librosa = pytest.importorskip("librosa")
    x = _test_signal(2)
    mel = librosa.feature.melspectrogram(
        y=x, sr=SR, n_fft=480, hop_length=160, n_mels=40, fmin=20.0, fmax=4000.0, pad_mode="reflect"
    )
    ref = librosa.feature.mfcc(S=np.log(mel + 1e-6), n_mfcc=40, dct_type=2, norm="ortho")
    out = MFCC()(torch.from_numpy(x)).numpy()
    assert out.shape == (40, 101)
    assert np.abs(out - ref).max() < 1e-3


def test_one_second_gives_101_frames_and_keeps_leading_shape():
    front = LogMel()
    assert front.num_frames(16000) == 101
    assert front(torch.zeros(3, 1, 16000)).shape == (3, 1, 40, 101)
    assert front(torch.zeros(8000)).shape == (40, 51)


def test_1khz_sine_peaks_in_the_band_centred_near_1khz():
    t = torch.arange(SR) / SR
    out = LogMel()(0.5 * torch.sin(2 * np.pi * 1000 * t))  # (40, 101)
    band = int(out[:, 10:90].mean(dim=1).argmax())
    edges = mel_to_hz(np.linspace(0, hz_to_mel(8000.0), 42))  # band b spans edges[b]..edges[b + 2]
    assert edges[band] < 1000 < edges[band + 2]


def test_mel_scales_invert_and_filters_cover_the_band():
    f = np.array([0.0, 300.0, 1000.0, 4000.0, 8000.0])
    for scale in ("htk", "slaney"):
        np.testing.assert_allclose(mel_to_hz(hz_to_mel(f, scale), scale), f, atol=1e-6)
    fb = mel_filterbank(SR, 512, 40)
    assert fb.shape == (40, 257) and fb.max() <= 1.0 + 1e-12
    assert (fb.sum(axis=0)[2:-1] > 0).all()  # every bin between the first and last centre is covered


def test_dct_matrix_is_orthonormal():
    d = dct_matrix(40, 40)
    np.testing.assert_allclose(d @ d.T, np.eye(40), atol=1e-12)


def test_bad_front_end_settings_raise():
    with pytest.raises(ValueError, match="win_length"):
        LogMel(n_fft=256, win_length=480)
    with pytest.raises(ValueError, match="f_max"):
        LogMel(f_max_hz=9000.0)
    with pytest.raises(ValueError, match="n_mfcc"):
        MFCC(n_mfcc=41)


def test_logmel_exports_to_onnx_with_dynamic_batch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    front = LogMel().eval()
    x = torch.from_numpy(np.stack([_test_signal(3), _test_signal(4)]))
    path = tmp_path / "logmel.onnx"
    torch.onnx.export(
        front, (x,), str(path), dynamo=True, dynamic_shapes=({0: torch.export.Dim("batch")},), verbose=False
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x3 = torch.from_numpy(np.stack([_test_signal(5), _test_signal(6), _test_signal(7)]))
    out = session.run(None, {session.get_inputs()[0].name: x3.numpy()})[0]
    assert out.shape == (3, 40, 101)
    assert np.abs(out - front(x3).numpy()).max() < 1e-4
