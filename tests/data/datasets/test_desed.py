"""DESED (DCASE2019 task 4) loader on a generated miniature tree: 3 clips per subset, one wav missing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from devicelab.data.datasets.desed import DESED, DesedError, Event, SedDataset

METADATA = {
    "train/synthetic.tsv": "filename\tonset\toffset\tevent_label\n"
    "s1.wav\t0.5\t1.5\tDog\ns1.wav\t3.0\t6.0\tSpeech\ns2.wav\t0.0\t10.0\tBlender\ns3.wav\t2.0\t2.5\tDog\n",
    "train/weak.tsv": "filename\tevent_labels\nw1.wav\tDog,Speech\nw2.wav\tBlender\nw3.wav\tSpeech\n",
    "train/unlabel_in_domain.tsv": "filename\nu1.wav\nu2.wav\nu3.wav\n",
    "validation/validation.tsv": "filename\tonset\toffset\tevent_label\n"
    "v1.wav\t1.0\t2.0\tSpeech\nv2.wav\t\t\t\nv3.wav\t4.0\t5.0\tBlender\n",
    "eval/public.tsv": "filename\tonset\toffset\tevent_label\np1.wav\t0.0\t1.0\tDog\np2.wav\t1.0\t2.0\tDog\n"
    "p3.wav\t\t\t\n",
}
AUDIO = {
    "train/synthetic": ["s1", "s2", "s3"],
    "train/weak": ["w1", "w2"],  # w3.wav is missing (as YouTube clips are)
    "train/unlabel_in_domain": ["u1", "u2", "u3"],
    "validation": ["v1", "v2", "v3"],
    "eval/public": ["p1", "p2", "p3"],
}


def make_tree(root: Path) -> Path:
    for rel, text in METADATA.items():
        path = root / "metadata" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for folder, names in AUDIO.items():
        (root / "audio" / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            sf.write(str(root / "audio" / folder / f"{name}.wav"), np.zeros((4410, 2), np.float32), 44100)
    return root


def test_subsets_counts_tags_and_empty_rows(tmp_path: Path) -> None:
    corpus = DESED(make_tree(tmp_path / "DESED"), max_missing_fraction=0.5)
    assert corpus.classes == ("Blender", "Dog", "Speech")  # read from the metadata
    synthetic = corpus.subset("synthetic")
    assert [c.filename for c in synthetic.clips] == ["s1.wav", "s2.wav", "s3.wav"]
    assert synthetic.clips[0].events == (Event(0.5, 1.5, "Dog"), Event(3.0, 6.0, "Speech"))
    weak = corpus.subset("weak")
    assert [c.tags for c in weak.clips] == [("Dog", "Speech"), ("Blender",)] and weak.missing == ["w3.wav"]
    validation = corpus.subset("validation")
    assert validation.clips[1].events == () and validation.clips[1].tags == ()
    assert [c.tags for c in corpus.subset("unlabel_in_domain").clips] == [None, None, None]
    assert len(corpus.subset("public").clips) == 3
    missing = corpus.write_missing([weak], tmp_path / "run" / "missing_files.tsv")
    assert missing.read_text() == "subset\tfilename\nweak\tw3.wav\n"


def test_dataset_pads_to_10_s_at_the_front_end_rate(tmp_path: Path) -> None:
    corpus = DESED(make_tree(tmp_path / "DESED"), max_missing_fraction=0.5)
    audio, tags = SedDataset(corpus.subset("weak").clips, corpus.classes, 16000)[0]
    assert audio.shape == (160000,) and tags.tolist() == [0.0, 1.0, 1.0]


def test_errors_name_the_file_and_line(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "DESED")
    (root / "metadata/eval/public.tsv").write_text(
        "filename\tonset\toffset\tevent_label\np1.wav\t0\t1\tCat\n"
    )
    with pytest.raises(DesedError, match=r"public.tsv:2: unknown label 'Cat'"):
        DESED(root).subset("public")
    (root / "metadata/validation/validation.tsv").unlink()
    with pytest.raises(DesedError, match=r"validation.tsv: tsv file missing"):
        DESED(root).subset("validation")
    with pytest.raises(DesedError, match=r"unknown DESED subset 'strong'"):
        DESED(root).subset("strong")


def test_too_many_missing_files_fail(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "DESED")
    with pytest.raises(DesedError, match=r"weak.tsv: 1 of 3 clips have no audio"):
        DESED(root, max_missing_fraction=0.2).subset("weak")
    assert len(DESED(root, max_missing_fraction=0.5).subset("weak").clips) == 2


def test_path_overrides_for_renamed_folders(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "DESED")
    (root / "metadata/train/synthetic.tsv").rename(root / "metadata/train/soundscapes.tsv")
    (root / "audio/train/synthetic").rename(root / "audio/train/synthetic21_train")
    corpus = DESED(
        root,
        tsv_paths={"synthetic": "metadata/train/soundscapes.tsv"},
        audio_paths={"synthetic": "audio/train/synthetic21_train"},
    )
    assert len(corpus.subset("synthetic").clips) == 3
