"""Learnability of the sound corpora (not a claim): small models trained for a few minutes.

* ``game-scenes``: the DCASE2019 task 1A baseline CNN (asc-factorized.md §2.2; 40 log-mel bands, window
  40 ms, hop 20 ms) trained on ``fold1_train`` with Adam 1e-3, batch 16; accuracy per scene on the test
  locations of seen cities and on the unseen cities.
* ``game-events``: a frame-level CRNN (3 conv blocks pooling frequency only, a BiGRU, a sigmoid per class;
  64 log-mel bands, hop 40 ms) trained on the strongly labelled synthetic set; segment-based F1 (1 s,
  sed_eval) per class on the real-like ``eval/public`` set and on a held-out fifth of the synthetic set,
  whose difference is the domain gap.

    python benchmarks/sound_corpora_learnability.py --profile quick [--scene-epochs 20] [--event-epochs 30]

Reads the corpora through the loaders (building them first if needed) and writes
``reports/<profile>/bench/sound_corpora_learnability.json``.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

import numpy as np
import torch
from torch import nn

from devicelab.audio.features import LogMel
from devicelab.core.bench import write_bench
from devicelab.core.tables import markdown_table
from devicelab.data.corpora import ensure_corpus
from devicelab.data.datasets.desed import DESED, SedClip, load_clip
from devicelab.data.datasets.tau2019 import TAU2019, SceneClip, SceneDataset


def baseline_cnn(n_classes: int, frames: int) -> nn.Module:
    """The DCASE2019 task 1A baseline (116k parameters at 10 classes)."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 7, padding=3),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(5),
        nn.Dropout(0.3),
        nn.Conv2d(32, 64, 7, padding=3),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d((4, frames // 5)),
        nn.Dropout(0.3),
        nn.Flatten(),
        nn.Linear(128, 100),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Linear(100, n_classes),
    )


def scene_features(corpus: TAU2019, clips: list[SceneClip], seconds: float) -> torch.Tensor:
    front = LogMel(16000, n_fft=1024, win_length=640, hop_length=320, n_mels=40, mel_scale="slaney")
    dataset = SceneDataset(corpus, clips, 16000, seconds)
    waves = torch.stack([dataset[i][0] for i in range(len(dataset))])
    with torch.no_grad():
        return front(waves).unsqueeze(1)  # (N, 1, 40, T)


def scenes_table(profile: str, epochs: int, seed: int) -> dict:
    corpus = TAU2019(ensure_corpus("game-scenes", profile))
    split = corpus.split("official")
    seconds = 10.0 if profile == "full" else (5.0 if profile == "quick" else 1.0)
    sets = {"train": split.train, "seen": split.test_seen, "unseen": split.test_unseen}
    x = {k: scene_features(corpus, v, seconds) for k, v in sets.items()}
    y = {k: torch.tensor([corpus.label(c.scene) for c in v]) for k, v in sets.items()}
    mean, std = x["train"].mean((0, 1, 3), keepdim=True), x["train"].std((0, 1, 3), keepdim=True)
    x = {k: (v - mean) / std for k, v in x.items()}
    torch.manual_seed(seed)
    model = baseline_cnn(len(corpus.scenes), x["train"].shape[-1])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for batch in torch.randperm(len(y["train"]), generator=generator).split(16):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x["train"][batch]), y["train"][batch]).backward()
            optimizer.step()
    model.eval()
    result: dict = {"train_seconds": round(time.perf_counter() - t0, 1), "epochs": epochs, "per_scene": {}}
    with torch.no_grad():
        for name in ("train", "seen", "unseen"):
            pred = model(x[name]).argmax(1)
            result[f"accuracy/{name}"] = round((pred == y[name]).float().mean().item() * 100, 1)
            for k, scene in enumerate(corpus.scenes):
                mask = y[name] == k
                acc = (pred[mask] == k).float().mean().item() * 100 if mask.any() else float("nan")
                result["per_scene"].setdefault(scene, {})[name] = round(acc, 1)
    return result


class FrameCRNN(nn.Module):
    """(N, 1, 64, T) log-mel -> (N, T, K) frame probabilities."""

    def __init__(self, n_classes: int, width: int = 32):
        super().__init__()
        blocks, channels = [], 1
        for pool in (4, 4, 4):
            blocks += [nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
            blocks += [nn.MaxPool2d((pool, 1))]
            channels = width
        self.cnn = nn.Sequential(*blocks)
        self.gru = nn.GRU(width, width, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * width, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.cnn(x).mean(2).transpose(1, 2)  # (N, T, C)
        return torch.sigmoid(self.head(self.gru(h)[0]))


def event_features(clips: list[SedClip]) -> torch.Tensor:
    front = LogMel(16000, n_fft=1024, win_length=1024, hop_length=640, n_mels=64)
    waves = torch.stack([torch.from_numpy(load_clip(c.path)) for c in clips])
    with torch.no_grad():
        return front(waves).unsqueeze(1)  # (N, 1, 64, 251)


def frame_targets(clips: list[SedClip], classes: tuple[str, ...], frames: int, hop_s: float) -> torch.Tensor:
    y = torch.zeros(len(clips), frames, len(classes))
    for i, clip in enumerate(clips):
        for e in clip.events or ():
            y[i, int(e.onset_s / hop_s) : int(np.ceil(e.offset_s / hop_s)), classes.index(e.label)] = 1.0
    return y


def decode_events(probs: np.ndarray, classes: tuple[str, ...], hop_s: float, filename: str) -> list[dict]:
    """Threshold 0.5, then contiguous active frames become events."""
    out = []
    active = probs > 0.5
    for k, label in enumerate(classes):
        edges = np.diff(np.concatenate([[0], active[:, k].astype(int), [0]]))
        for on, off in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
            out.append({"filename": filename, "event_onset": on * hop_s, "event_offset": off * hop_s,
                        "event_label": label})  # fmt: skip
    return out


def segment_f1(clips: list[SedClip], probs: np.ndarray, classes: tuple[str, ...], hop_s: float) -> dict:
    import sed_eval

    metrics = sed_eval.sound_event.SegmentBasedMetrics(list(classes), time_resolution=1.0)
    for clip, p in zip(clips, probs):
        reference = [
            {
                "filename": clip.filename,
                "event_onset": e.onset_s,
                "event_offset": e.offset_s,
                "event_label": e.label,
            }
            for e in clip.events or ()
        ]
        metrics.evaluate(reference, decode_events(p, classes, hop_s, clip.filename))
    classwise = metrics.results_class_wise_metrics()
    per_class = {k: round(v["f_measure"]["f_measure"] * 100, 1) for k, v in classwise.items()}
    macro = metrics.results_class_wise_average_metrics()["f_measure"]["f_measure"] * 100
    return {"macro": round(macro, 1), "per_class": per_class}


def events_table(profile: str, epochs: int, seed: int) -> dict:
    corpus = DESED(ensure_corpus("game-events", profile))
    classes = corpus.classes
    synthetic = corpus.subset("synthetic").clips
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(synthetic))
    held = {int(i) for i in order[: len(synthetic) // 5]}
    train = [c for i, c in enumerate(synthetic) if i not in held]
    sets = {"train": train, "synthetic_heldout": [synthetic[i] for i in sorted(held)],
            "public": corpus.subset("public").clips}  # fmt: skip
    x = {k: event_features(v) for k, v in sets.items()}
    mean, std = x["train"].mean((0, 1, 3), keepdim=True), x["train"].std((0, 1, 3), keepdim=True)
    x = {k: (v - mean) / std for k, v in x.items()}
    hop_s = 640 / 16000
    y = frame_targets(sets["train"], classes, x["train"].shape[-1], hop_s)
    torch.manual_seed(seed)
    model = FrameCRNN(len(classes))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for batch in torch.randperm(len(y), generator=generator).split(16):
            optimizer.zero_grad()
            nn.functional.binary_cross_entropy(model(x["train"][batch]), y[batch]).backward()
            optimizer.step()
    model.eval()
    result: dict = {"train_seconds": round(time.perf_counter() - t0, 1), "epochs": epochs}
    with torch.no_grad():
        for name in ("synthetic_heldout", "public"):
            result[name] = segment_f1(sets[name], model(x[name]).numpy(), classes, hop_s)
    result["events_per_class/public"] = dict(
        sorted(Counter(e.label for c in sets["public"] for e in c.events or ()).items())
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--scene-epochs", type=int, default=20)
    parser.add_argument("--event-epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(2)
    scenes = scenes_table(args.profile, args.scene_epochs, args.seed)
    rows = [
        {"scene": s, "train %": v["train"], "seen test %": v["seen"], "unseen test %": v["unseen"]}
        for s, v in scenes["per_scene"].items()
    ]
    rows.append(
        {
            "scene": "**all**",
            "train %": scenes["accuracy/train"],
            "seen test %": scenes["accuracy/seen"],
            "unseen test %": scenes["accuracy/unseen"],
        }
    )
    print(
        f"game-scenes ({args.profile}): baseline CNN, {args.scene_epochs} epochs, {scenes['train_seconds']} s"
    )
    print(markdown_table(rows))
    events = events_table(args.profile, args.event_epochs, args.seed)
    classes = sorted(events["public"]["per_class"])
    rows = [
        {
            "class": k,
            "synthetic held-out F1 %": events["synthetic_heldout"]["per_class"][k],
            "public (real-like) F1 %": events["public"]["per_class"][k],
            "public events": events["events_per_class/public"].get(k, 0),
        }
        for k in classes
    ]
    rows.append(
        {
            "class": "**macro**",
            "synthetic held-out F1 %": events["synthetic_heldout"]["macro"],
            "public (real-like) F1 %": events["public"]["macro"],
            "public events": sum(events["events_per_class/public"].values()),
        }
    )
    print(f"\ngame-events ({args.profile}): frame CRNN on synthetic, {args.event_epochs} epochs, "
          f"{events['train_seconds']} s; segment F1 (1 s)")  # fmt: skip
    print(markdown_table(rows))
    path = write_bench(
        "sound_corpora_learnability",
        args.profile,
        {"seed": args.seed, "game_scenes": scenes, "game_events": events},
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
