"""Audio: wave I/O, resampling, the log-mel front end, augmentation."""

from devicelab.audio.io import AudioError, read_wav, resample, write_wav

__all__ = ["AudioError", "read_wav", "resample", "write_wav"]
