"""A miniature DESED tree written by the tests: 12 clips in the published 2019 layout, one wav missing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

STRONG = "filename\tonset\toffset\tevent_label\n"
METADATA = {
    "train/synthetic.tsv": STRONG
    + "s1.wav\t0.5\t1.5\tDog\ns1.wav\t3.0\t6.0\tSpeech\ns2.wav\t0.0\t10.0\tSpeech\n"
    "s3.wav\t2.0\t2.5\tDog\ns4.wav\t\t\t\n",
    "train/weak.tsv": "filename\tevent_labels\nw1.wav\tDog,Speech\nw2.wav\tSpeech\nw3.wav\tDog\n",
    "train/unlabel_in_domain.tsv": "filename\nu1.wav\nu2.wav\n",
    "validation/validation.tsv": STRONG + "v1.wav\t1.0\t2.0\tSpeech\nv2.wav\t\t\t\n",
    "eval/public.tsv": STRONG + "p1.wav\t0.0\t1.0\tDog\np2.wav\t1.0\t2.0\tDog\n",
}
AUDIO = {
    "train/synthetic": ["s1", "s2", "s3", "s4"],
    "train/weak": ["w1", "w2"],  # w3.wav is missing, as YouTube clips are
    "train/unlabel_in_domain": ["u1", "u2"],
    "validation": ["v1", "v2"],
    "eval/public": ["p1", "p2"],
}


def make_desed_tree(root: Path, seconds: float = 2.0) -> Path:
    """Write the tree under ``root`` (44.1 kHz stereo noise, shorter than 10 s: the loader pads)."""
    rng = np.random.default_rng(0)
    for rel, text in METADATA.items():
        path = root / "metadata" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for folder, names in AUDIO.items():
        (root / "audio" / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            noise = 0.1 * rng.standard_normal((int(seconds * 44100), 2)).astype(np.float32)
            sf.write(str(root / "audio" / folder / f"{name}.wav"), noise, 44100)
    return root
