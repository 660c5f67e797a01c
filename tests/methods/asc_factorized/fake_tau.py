"""A tiny TAU Urban Acoustic Scenes 2019 tree in the published layout (48 kHz, 24-bit stereo)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

SCENES = ("bus", "park")
CITIES = ("lisbon", "lyon", "paris")  # every scene in every city


def make_fake_tau(root: Path, seconds: float = 1.0, locations: int = 3, segments: int = 2) -> Path:
    """Per (scene, city): ``locations`` locations of ``segments`` clips; the last location of each cell is in
    fold1_evaluate, the others in fold1_train. Scenes differ in pitch, cities in level; the clip
    ``park-paris-<last>-0`` has its right channel inverted, so its mono mix is silence."""
    meta = ["filename\tscene_label\tidentifier\tsource_label"]
    folds = {"train": ["filename\tscene_label"], "evaluate": ["filename\tscene_label"]}
    rate = 48000
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(0)
    number = 0
    for s, scene in enumerate(SCENES):
        for c, city in enumerate(CITIES):
            for loc in range(locations):
                number += 1
                fold = "evaluate" if loc == locations - 1 else "train"
                for seg in range(segments):
                    name = f"audio/{scene}-{city}-{number}-{seg}-a.wav"
                    tone = 0.2 * np.sin(2 * np.pi * (300 + 900 * s) * t) * (0.5 + 0.25 * c)
                    left = tone + 0.01 * rng.standard_normal(len(t))
                    right = left.copy()
                    if scene == "park" and city == "paris" and fold == "evaluate" and seg == 0:
                        right = -left
                    path = root / name
                    path.parent.mkdir(parents=True, exist_ok=True)
                    sf.write(str(path), np.stack([left, right], 1).astype(np.float32), rate, subtype="PCM_24")
                    meta.append(f"{name}\t{scene}\t{city}-{number}\ta")
                    folds[fold].append(f"{name}\t{scene}")
    (root / "meta.csv").write_text("\n".join(meta) + "\n")
    setup = root / "evaluation_setup"
    setup.mkdir(parents=True, exist_ok=True)
    (setup / "fold1_train.csv").write_text("\n".join(folds["train"]) + "\n")
    (setup / "fold1_evaluate.csv").write_text("\n".join(folds["evaluate"]) + "\n")
    (setup / "fold1_test.csv").write_text(
        "filename\n" + "".join(f"{row.split()[0]}\n" for row in folds["evaluate"][1:])
    )
    return root
