"""game-events (smoke): DESED layout, pools disjoint by source, labels that match the audio, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import butter, sosfilt

from devicelab.data.corpora import build_corpus
from devicelab.data.corpora.game_events import (
    MORE_EVENTS,
    PROFILES,
    QUICK_EVENTS,
    deal_pools,
    desed_annotations,
    import_scaper,
    sources,
)
from devicelab.data.datasets.desed import DESED


def _build(root: Path, workers: int = 1) -> Path:
    return build_corpus("game-events", "smoke", workers=workers, root=root, log=lambda *_: None)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("dl-data"))


def test_layout_is_desed_2019(smoke: Path) -> None:
    sizes = dict(PROFILES["smoke"].sizes)
    headers = {
        "metadata/train/synthetic.tsv": "filename\tonset\toffset\tevent_label",
        "metadata/train/weak.tsv": "filename\tevent_labels",
        "metadata/train/unlabel_in_domain.tsv": "filename",
        "metadata/validation/validation.tsv": "filename\tonset\toffset\tevent_label",
        "metadata/eval/public.tsv": "filename\tonset\toffset\tevent_label",
        "metadata/oracle/weak.tsv": "filename\tonset\toffset\tevent_label",
    }
    for rel, header in headers.items():
        assert (smoke / rel).read_text().splitlines()[0] == header, rel
    folders = {
        "synthetic": "train/synthetic",
        "weak": "train/weak",
        "unlabel_in_domain": "train/unlabel_in_domain",
        "validation": "validation",
        "public": "eval/public",
    }
    for subset, folder in folders.items():
        wavs = sorted((smoke / "audio" / folder).glob("*.wav"))
        assert len(wavs) == sizes[subset]
        assert len(list((smoke / "jams" / subset).glob("*.jams"))) == sizes[subset]
    info = sf.info(str(next((smoke / "audio" / "eval" / "public").glob("*.wav"))))
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (16000, 1, 160000, "PCM_16")
    manifest = json.loads((smoke / "manifest.json").read_text())
    assert manifest["tool_versions"]["scaper"] == "1.6.5" and manifest["domain_gap"] is True
    jams = (smoke / "jams" / "public").glob("*.jams").__next__().read_text()
    assert '"bank/B-test/' in jams and ".partial-" not in jams


def test_pools_are_disjoint_by_source(smoke: Path) -> None:
    manifest = json.loads((smoke / "manifest.json").read_text())
    for label, pools in manifest["pools"].items():
        units = [u for members in pools.values() for u in members]
        assert len(units) == len(set(units)), label
    bank = smoke / "bank"
    for pool_a, pool_b in (
        ("B-train", "B-val"),
        ("B-train", "B-test"),
        ("B-val", "B-test"),
        ("A", "B-train"),
    ):
        names_a = {p.name for p in (bank / pool_a).rglob("*.wav")}
        names_b = {p.name for p in (bank / pool_b).rglob("*.wav")}
        assert not {n.split("_")[0] for n in names_a} & {n.split("_")[0] for n in names_b}


def test_dealing_gives_every_pool_a_source() -> None:
    pools = deal_pools([f"file{k}" for k in range(9)], seed=3, label="Door")
    assert set(pools.values()) == {"A", "B-train", "B-val", "B-test"}
    assert deal_pools([f"file{k}" for k in range(9)], seed=3, label="Door") == pools


def _frame_energy_db(audio: np.ndarray, hop: int = 1600) -> np.ndarray:
    """Energy of 100 ms frames above 300 Hz (scaper sets SNRs in loudness units, which weigh lows down)."""
    audio = sosfilt(butter(4, 300.0, btype="high", fs=16000, output="sos"), audio)
    frames = audio[: len(audio) // hop * hop].reshape(-1, hop)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)


def test_strong_labels_match_the_mixed_audio(smoke: Path) -> None:
    """Labelled frames are louder than the others: the 90th percentile of frame energy inside events exceeds
    the one outside them, in synthetic and real-like clips."""
    corpus = DESED(smoke)
    margins = []
    for name in ("synthetic", "public", "validation"):
        for clip in corpus.subset(name).clips:
            audio, sr = sf.read(str(clip.path), dtype="float32")
            energy = _frame_energy_db(audio)
            inside = np.zeros(len(energy), dtype=bool)
            for e in clip.events or ():
                inside[int(e.onset_s * 10) : int(np.ceil(e.offset_s * 10))] = True
            if inside.any() and (~inside).any():
                margins.append(np.percentile(energy[inside], 90) - np.percentile(energy[~inside], 90))
    assert len(margins) >= 10
    assert np.median(margins) > 6.0 and np.mean(np.array(margins) > 0) >= 0.9, margins


def test_loader_reads_the_corpus(smoke: Path) -> None:
    corpus = DESED(smoke)
    assert corpus.classes == ("Alarm_bell", "Door", "Engine")
    weak = corpus.subset("weak")
    oracle = corpus.oracle("weak")
    for clip in weak.clips:
        assert clip.tags == tuple(sorted({e.label for e in oracle[clip.filename]}))
    assert corpus.subset("unlabel_in_domain").clips[0].tags is None
    assert not corpus.subset("public").missing


def test_same_seed_same_checksums_whatever_the_jobs(smoke: Path, tmp_path: Path) -> None:
    again = _build(tmp_path, workers=2)
    first = json.loads((smoke / "manifest.json").read_text())["content_sha256"]
    assert json.loads((again / "manifest.json").read_text())["content_sha256"] == first


def test_desed_annotation_rules() -> None:
    events = [(1.0, 1.1, "Door"), (1.2, 2.0, "Door"), (5.0, 5.1, "Dog"), (9.9, 9.95, "Dog")]
    assert desed_annotations(events, 0.25, 0.15) == [
        (1.0, 2.0, "Door"),
        (5.0, 5.25, "Dog"),
        (9.75, 10.0, "Dog"),
    ]


def test_scaper_imports_on_numpy_2() -> None:
    scaper = import_scaper()
    assert scaper.__version__ == "1.6.5" and np.Inf == np.inf


def test_domain_gap_off_mixes_every_subset_the_synthetic_way(tmp_path: Path) -> None:
    root = build_corpus(
        "game-events", "smoke", root=tmp_path, extras=("domain-gap-off",), log=lambda *_: None
    )
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["domain_gap"] is False and manifest["extras"] == ["domain-gap-off"]
    provenance = (root / "provenance.csv").read_text().splitlines()[1:]
    assert provenance and all(",synthetic," in line and "/background/noise/" in line for line in provenance)


def test_more_sources_adds_packages_only_when_asked() -> None:
    plain, more = sources("quick", ()), sources("quick", ("more-sources",))
    added = {"lugaru-data", "scorched3d-data", "wesnoth-1.16-data", "btanks-data", "tuxmath-data"}
    assert not added & set(plain) and added | {"heroes-sound-effects"} <= set(more)
    assert set(plain) < set(more)
    # every added source is for a class the quick sources already have, never a new class
    assert set(MORE_EVENTS) <= set(QUICK_EVENTS)


def test_an_unknown_extra_is_refused_naming_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown extra.*more-sorces.*valid: domain-gap-off, more-sources"):
        build_corpus("game-events", "smoke", root=tmp_path, extras=("more-sorces",), log=lambda *_: None)
