"""Audio: wave I/O, resampling, the log-mel front end, augmentation.

The torch parts (front end, augmentation) load on first use, so corpus builders that only read and write
waves do not pay for importing torch.
"""

from importlib import import_module
from typing import Any

from devicelab.audio.io import AudioError, read_wav, resample, write_wav

_LAZY = {
    "BackgroundNoiseMixer": "devicelab.audio.augment",
    "mix_at_snr": "devicelab.audio.augment",
    "spec_augment": "devicelab.audio.augment",
    "time_shift": "devicelab.audio.augment",
    "MFCC": "devicelab.audio.features",
    "LogMel": "devicelab.audio.features",
    "mel_filterbank": "devicelab.audio.features",
}

__all__ = ["AudioError", "read_wav", "resample", "write_wav", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'devicelab.audio' has no attribute {name!r}")
