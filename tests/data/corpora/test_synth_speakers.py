"""synth-speakers (smoke): VoxCeleb1 and LibriSpeech views read by their loaders, disjoint identities, the
text-speaker confound, trial lists, phone strings, determinism."""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from devicelab.data.corpora import build_corpus
from devicelab.data.corpora.synth_speakers import PROFILES, plan_identities, utterance_plan
from devicelab.data.datasets.librispeech import LibriSpeech
from devicelab.data.datasets.voxceleb import VoxCeleb1


def _build(root: Path, workers: int = 1) -> Path:
    return build_corpus("synth-speakers", "smoke", workers=workers, root=root, log=lambda *_: None)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("dl-data"))


def _rows(root: Path) -> list[dict]:
    with open(root / "utterances.tsv", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def test_views_are_read_by_the_real_data_loaders(smoke: Path) -> None:
    rows = _rows(smoke)
    vox = VoxCeleb1(smoke)
    assert len(vox.utterances) == len(rows)
    assert set(vox.speakers("test")) == {r["speaker"] for r in rows if r["split"] == "test"}
    assert set(vox.speakers("dev")) == {r["speaker"] for r in rows if r["split"] == "train"}
    libri = LibriSpeech(smoke / "librispeech")
    assert libri.subsets == ["test", "train"]
    test = libri.utterances("test")
    assert len(test) == sum(r["split"] == "test" for r in rows)
    by_id = {r["utt_id"]: r for r in rows}
    for utt in test[:10]:
        row = by_id[utt.utt_id]
        assert utt.text == row["keyword"].upper()
        assert utt.path.read_bytes() == (smoke / row["path"]).read_bytes()
    audio = test[0].audio()
    assert audio.dtype == np.float32 and 0.8 < len(audio) / 16000 < 4.0


def test_identities_are_disjoint_by_base_voice(smoke: Path) -> None:
    rows = _rows(smoke)
    splits: dict[str, set] = {}
    for r in rows:
        splits.setdefault(r["base_voice"], set()).add(r["split"])
        splits.setdefault("variant:" + r["variant"], set()).add(r["split"])
    assert all(len(s) == 1 for s in splits.values()), splits
    quick = plan_identities(PROFILES["quick"], seed=0)
    counts = Counter(i.split for i in quick)
    assert 120 <= counts["train"] <= 136 and counts["test"] == 40
    assert {i.voice.person for i in quick if i.split == "test" and i.voice.person} == {"slt", "rms"}
    assert all(0.92 <= i.formant <= 1.08 for i in quick)


def test_confound_and_balanced_test_text(smoke: Path) -> None:
    rows = _rows(smoke)
    train = [r for r in rows if r["split"] == "train"]
    preferred = np.mean([r["keyword_id"] in r["preferred"].split(",") for r in train])
    assert 0.7 < preferred < 0.92  # 0.75 + 0.25 * 5/20 expected
    assert all(len(r["preferred"].split(",")) == 5 for r in train)
    for spk in {r["speaker"] for r in rows if r["split"] == "test"}:
        per_keyword = Counter(r["keyword_id"] for r in rows if r["speaker"] == spk)
        assert set(per_keyword.values()) == {2} and len(per_keyword) == 20
    manifest = json.loads((smoke / "manifest.json").read_text())
    assert manifest["confound"] == 0.75
    identity = next(i for i in plan_identities(PROFILES["quick"], 0) if i.split == "train")
    balanced = replace(PROFILES["quick"], confound=0.0, sessions=20)
    sessions, chosen = utterance_plan(identity, balanced, seed=0)
    drawn = [k for s in sessions for k in s]
    assert np.mean([k in chosen for k in drawn]) < 0.4  # uniform: about 5/20


def test_trials(smoke: Path) -> None:
    rows = {r["path"][4:]: r for r in _rows(smoke)}
    for kind in ("tk", "ntk"):
        lines = [line.split() for line in (smoke / "trials" / f"test_{kind}.txt").read_text().splitlines()]
        assert lines and abs(np.mean([int(t) for t, _, _ in lines]) - 0.5) < 1e-9
        for target, enrol, test in lines:
            a, b = rows[enrol], rows[test]
            assert enrol != test and a["split"] == b["split"] == "test"
            assert (a["keyword_id"] == b["keyword_id"]) == (kind == "tk")
            assert (a["speaker"] == b["speaker"]) == (target == "1")
            if target == "0":
                assert a["base_voice"] != b["base_voice"]  # no sibling impostors
    assert VoxCeleb1(smoke).trials("trials/test_tk.txt")


def test_phone_strings(smoke: Path) -> None:
    for r in _rows(smoke)[:40]:
        phones, ends = r["phones"].split(), [int(e) for e in r["phone_ends_ms"].split()]
        assert len(phones) == len(ends) >= 5
        assert all(a < b for a, b in zip(ends, ends[1:])) and ends[-1] <= float(r["duration"]) * 1000


def test_deterministic(smoke: Path, tmp_path: Path) -> None:
    again = _build(tmp_path, workers=2)
    assert (again / "checksums.sha256").read_text() == (smoke / "checksums.sha256").read_text()
