"""TAU Urban Acoustic Scenes 2019 loader on a generated tree in the published layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from devicelab.data.datasets.tau2019 import TAU2019, SceneDataset, TAU2019Error

# (scene, city, location, fold): two cities in training, milan only in fold1_evaluate
CLIPS = [
    ("park", "lisbon", 0, "train"),
    ("park", "lisbon", 1, "evaluate"),
    ("bus", "lisbon", 2, "train"),
    ("park", "paris", 3, "train"),
    ("bus", "paris", 4, "evaluate"),  # paris has no bus in training: an unseen cell
    ("park", "milan", 5, "evaluate"),
]


def make_tree(root: Path) -> Path:
    meta = ["filename\tscene_label\tidentifier\tsource_label"]
    folds = {"train": ["filename\tscene_label"], "evaluate": ["filename\tscene_label"]}
    for scene, city, location, fold in CLIPS:
        name = f"audio/{scene}-{city}-{location}-0-a.wav"
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(
            str(path), np.full((4800, 2), 0.1, np.float32), 48000, subtype="PCM_24"
        )  # 0.1 s stereo 24-bit
        meta.append(f"{name}\t{scene}\t{city}-{location}\ta")
        folds[fold].append(f"{name}\t{scene}")
    (root / "meta.csv").write_text("\n".join(meta) + "\n")
    setup = root / "evaluation_setup"
    setup.mkdir()
    (setup / "fold1_train.csv").write_text("\n".join(folds["train"]) + "\n")
    (setup / "fold1_evaluate.csv").write_text("\n".join(folds["evaluate"]) + "\n")
    (setup / "fold1_test.csv").write_text(
        "filename\n" + "".join(f"{r.split()[0]}\n" for r in folds["evaluate"][1:])
    )
    return root


def test_official_split_with_seen_and_unseen_cells(tmp_path: Path) -> None:
    with pytest.warns(UserWarning) as record:
        corpus = TAU2019(make_tree(tmp_path / "TAU"))
    assert [str(w.message).split(": ", 1)[1] for w in record] == [
        "meta.csv has 6 rows, the published set 14400",
        "fold1_train.csv has 3 rows, the published set 9185",
        "fold1_evaluate.csv has 3 rows, the published set 4185",
    ]
    assert corpus.scenes == ("bus", "park") and corpus.cities == ("lisbon", "milan", "paris")
    split = corpus.split("official")
    assert [c.identifier for c in split.train] == ["lisbon-0", "lisbon-2", "paris-3"]
    assert [c.identifier for c in split.test_seen] == ["lisbon-1"]
    assert [c.identifier for c in split.test_unseen] == ["paris-4", "milan-5"]
    assert corpus.cities_only_in_evaluate() == ["milan"]
    assert len(corpus.fold_test) == 3


def test_leave_cities_out(tmp_path: Path) -> None:
    with pytest.warns(UserWarning):
        corpus = TAU2019(make_tree(tmp_path / "TAU"))
    split = corpus.split("leave_cities_out", unseen_cities=["lisbon"])
    assert [c.identifier for c in split.train] == ["paris-3"]
    assert {c.identifier for c in split.test_unseen} == {
        "lisbon-0",
        "lisbon-1",
        "lisbon-2",
        "paris-4",
        "milan-5",
    }
    with pytest.raises(TAU2019Error, match="unknown cities lyon; available: lisbon, milan, paris"):
        corpus.split("leave_cities_out", unseen_cities=["lyon"])


def test_dataset_reads_24_bit_stereo_as_16k_mono(tmp_path: Path) -> None:
    with pytest.warns(UserWarning):
        corpus = TAU2019(make_tree(tmp_path / "TAU"))
    dataset = SceneDataset(corpus, corpus.split().train, sample_rate_hz=16000, seconds=0.2)
    audio, label = dataset[0]
    assert audio.shape == (3200,) and label == corpus.label("park")
    assert audio[:1000].mean().item() == pytest.approx(0.1, abs=1e-3) and audio[-100:].abs().max() == 0


def test_missing_files_and_bad_rows_are_named(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "TAU")
    (root / "audio" / "bus-paris-4-0-a.wav").unlink()
    with pytest.raises(
        TAU2019Error, match=r"1 audio files listed in meta.csv are missing, first: audio/bus-paris-4"
    ):
        TAU2019(root)
    root = make_tree(tmp_path / "TAU2")
    (root / "evaluation_setup" / "fold1_evaluate.csv").unlink()
    with pytest.raises(TAU2019Error, match=r"fold1_evaluate.csv: file missing"):
        TAU2019(root)
    root = make_tree(tmp_path / "TAU3")
    (root / "evaluation_setup" / "fold1_train.csv").write_text(
        "filename\tscene_label\naudio/nope.wav\tpark\n"
    )
    with pytest.raises(TAU2019Error, match=r"fold1_train.csv:2: audio/nope.wav is not in meta.csv"):
        TAU2019(root)
    (root / "meta.csv").write_text("file,scene\n")
    with pytest.raises(TAU2019Error, match=r"meta.csv:1: expected the TAB-separated header"):
        TAU2019(root)
