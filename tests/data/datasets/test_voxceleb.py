"""VoxCeleb1 loader on a generated tree in the published layout (wav/, trial lists, vox1_meta.csv)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from devicelab.data.datasets.voxceleb import VoxCeleb1, VoxCelebError


def make_tree(root: Path, meta: bool = True) -> Path:
    for spk in ("id10001", "id10002", "id10270", "id10271"):
        for video in ("1zcIwhmdeo4", "7gWzIy6yIIk"):
            for n in (1, 2):
                path = root / "wav" / spk / video / f"{n:05d}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(str(path), np.zeros(1600), 16000, subtype="PCM_16")
    (root / "veri_test2.txt").write_text(
        "1 id10270/1zcIwhmdeo4/00001.wav id10270/7gWzIy6yIIk/00002.wav\n"
        "0 id10270/1zcIwhmdeo4/00001.wav id10271/1zcIwhmdeo4/00001.wav\n"
    )
    if meta:
        (root / "vox1_meta.csv").write_text(
            "VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet\n"
            "id10001\tA.J._Buckley\tm\tIreland\tdev\n"
            "id10002\tA.R._Rahman\tm\tIndia\tdev\n"
            "id10270\tx\tm\tUSA\ttest\nid10271\ty\tf\tUSA\ttest\n"
        )
    return root


def test_speakers_utterances_and_trials(tmp_path: Path) -> None:
    corpus = VoxCeleb1(make_tree(tmp_path / "VoxCeleb1"))
    assert corpus.speakers() == ["id10001", "id10002", "id10270", "id10271"]
    assert corpus.speakers("test") == ["id10270", "id10271"] and corpus.speakers("dev") == [
        "id10001",
        "id10002",
    ]
    assert len(corpus.utterances_of(["id10001"])) == 4
    assert corpus.utterances[0].rel == "id10001/1zcIwhmdeo4/00001.wav"
    trials = corpus.trials("O")
    assert [t.target for t in trials] == [1, 0] and trials[1].test == "id10271/1zcIwhmdeo4/00001.wav"


def test_published_split_without_metadata(tmp_path: Path) -> None:
    corpus = VoxCeleb1(make_tree(tmp_path / "VoxCeleb1", meta=False))
    assert corpus.speakers("test") == ["id10270", "id10271"]


def test_errors_name_the_file_and_line(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "VoxCeleb1")
    (root / "veri_test2.txt").write_text("1 id10270/1zcIwhmdeo4/00001.wav id10270/nope/00009.wav\n")
    with pytest.raises(VoxCelebError, match=r"veri_test2.txt:1: .*id10270/nope/00009.wav missing"):
        VoxCeleb1(root).trials()
    (root / "veri_test2.txt").write_text("yes a b\n")
    with pytest.raises(VoxCelebError, match=r"veri_test2.txt:1: expected"):
        VoxCeleb1(root).trials()
    with pytest.raises(VoxCelebError, match="list_test_hard2.txt: trial list missing"):
        VoxCeleb1(root).trials("H")
    with pytest.raises(VoxCelebError, match="wav: missing"):
        VoxCeleb1(tmp_path)
