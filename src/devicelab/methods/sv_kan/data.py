"""The sv-kan task in memory: log-mel features of every utterance with speaker, identity and keyword labels.

Reads the offline corpus ``synth-speakers`` (``utterances.tsv`` and its ``trials/`` lists; corpora.md), or a
root given with ``--data``: LibriSpeech (:mod:`devicelab.data.datasets.librispeech`, spec §6 keyword
protocol) or VoxCeleb1 (:mod:`devicelab.data.datasets.voxceleb`: no text, Vox1-O trials). Features
(spec §2.1) [reconstruction]: 40 log-mel bands (n_fft 512, 25 ms Hann, 10 ms hop, ``log(mel + 1e-6)``),
mean subtracted per band and utterance. Everything is held in memory: fine for the corpora and for
subsets of the real sets (``max_train_utterances``), not for all of VoxCeleb1 dev.
"""

from __future__ import annotations

import contextlib
import csv
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from devicelab.audio.features import LogMel
from devicelab.audio.io import AudioError, read_wav
from devicelab.core.config import ConfigError
from devicelab.core.seeding import child_rng
from devicelab.data.datasets.librispeech import LibriSpeech, LibriSpeechError
from devicelab.data.datasets.voxceleb import VoxCeleb1, VoxCelebError

SAMPLE_RATE_HZ = 16000
HOP_MS = 10
REQUIRED_COLUMNS = ("path", "split", "speaker", "base_voice", "person", "keyword_id", "preferred")


class SvKanDataError(ConfigError):
    """Unusable input data; the message names the file (and line or key)."""


def log_mel_frontend(n_mels: int = 40) -> LogMel:
    """The front end of spec §2.1: 16 kHz, n_fft 512, 25 ms Hann window, 10 ms hop, ``log(mel + 1e-6)``."""
    return LogMel(SAMPLE_RATE_HZ, n_fft=512, win_length=400, hop_length=160, n_mels=n_mels)


@torch.no_grad()
def utterance_features(frontend: LogMel, audio: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Log-mel (n_mels, T) of one waveform with the per-band utterance mean removed."""
    x = torch.as_tensor(audio, dtype=torch.float32)
    mel = frontend(x)
    return mel - mel.mean(-1, keepdim=True)


@dataclass
class SpeechSet:
    """Utterances of one split: features and labels; ``keyword`` is -1 where the text is unknown."""

    features: list[torch.Tensor]  # (n_mels, T) each
    speaker: list[str]  # the corpus's speaker id
    identity: list[str]  # the person a trial asks about (real split: the person behind several ids)
    group: list[str]  # sibling group: identities of one base voice
    keyword: torch.Tensor  # (N,) keyword index, -1 unknown
    names: list[str] = field(default_factory=list)  # paths relative to the data root

    def __len__(self) -> int:
        return len(self.features)

    def speaker_index(self) -> torch.Tensor:
        ids = {s: i for i, s in enumerate(sorted(set(self.speaker)))}
        return torch.tensor([ids[s] for s in self.speaker])

    def subset(self, keep: list[int]) -> SpeechSet:
        return SpeechSet(
            [self.features[i] for i in keep],
            [self.speaker[i] for i in keep],
            [self.identity[i] for i in keep],
            [self.group[i] for i in keep],
            self.keyword[keep],
            [self.names[i] for i in keep] if self.names else [],
        )


@dataclass
class SvTask:
    """Everything one experiment trains and evaluates on."""

    train: SpeechSet
    test: SpeechSet
    keywords: list[str]  # keyword index -> keyword id
    source: str  # corpus name or "librispeech"
    real: SpeechSet | None = None
    # the corpus's own pair lists ("test_tk", "real_ntk"): (label, enrol index, test index) into the split
    corpus_trials: dict[str, list[tuple[int, int, int]]] = field(default_factory=dict)
    confound: float | None = None  # the manifest's confound level
    preferred_fraction: float | None = None  # measured fraction of preferred-keyword training utterances
    skipped: list[str] = field(default_factory=list)


def read_utterances_tsv(path: Path) -> list[dict[str, str]]:
    """Rows of ``utterances.tsv``; a missing file or column is a one-line error naming it."""
    if not path.is_file():
        raise SvKanDataError(f"{path}: missing (is this a synth-speakers corpus folder?)")
    with open(path, newline="") as f:
        reader = csv.DictReader(f, delimiter="\t")
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise SvKanDataError(
                f"{path}: column {missing[0]!r} missing (needs {', '.join(REQUIRED_COLUMNS)})"
            )
        return list(reader)


def check_confound(
    rows: list[dict[str, str]], manifest: Path, allow_balanced: bool
) -> tuple[float | None, float]:
    """The manifest's confound level and the measured fraction of preferred-keyword training utterances
    (spec §5); a build without preferred subsets is refused unless ``allow_balanced``."""
    confound = None
    if manifest.is_file():
        try:
            confound = json.loads(manifest.read_text()).get("confound")
        except json.JSONDecodeError as e:
            raise SvKanDataError(f"{manifest}: not JSON ({e.msg}, line {e.lineno})") from None
    train = [r for r in rows if r["split"] == "train"]
    has_subsets = [r for r in train if r["preferred"] not in ("", "-")]
    fraction = (
        float(np.mean([r["keyword_id"] in r["preferred"].split(",") for r in has_subsets]))
        if has_subsets
        else 0.0
    )
    if (not has_subsets or not confound) and not allow_balanced:
        raise SvKanDataError(
            f"{manifest}: corpus built without the text-speaker confound (confound={confound}, "
            f"{len(has_subsets)} training utterances with a preferred subset); set allow_balanced=true to "
            "use it as the balanced control"
        )
    return confound, fraction


@contextlib.contextmanager
def single_thread():
    """Run the per-item front end with one torch thread: on small tensors more threads only spin."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _load_features(
    paths: list[Path], frontend: LogMel, skipped: list[str] | None
) -> tuple[list[torch.Tensor], list[int]]:
    """Features of each readable file and the indices kept; a bad file raises unless ``skipped`` takes it."""
    out, keep = [], []
    with single_thread():
        for i, path in enumerate(paths):
            try:
                audio, _ = read_wav(path, SAMPLE_RATE_HZ)
            except AudioError as e:
                if skipped is None:
                    raise
                skipped.append(str(e))
                continue
            out.append(utterance_features(frontend, audio))
            keep.append(i)
    return out, keep


def _speech_set(
    rows: list[dict[str, str]],
    root: Path,
    keyword_index: dict[str, int],
    frontend: LogMel,
    skipped,
    by_person: bool,
) -> SpeechSet:
    features, keep = _load_features([root / r["path"] for r in rows], frontend, skipped)
    rows = [rows[i] for i in keep]
    identity = [r["person"] if by_person and r["person"] not in ("", "-") else r["speaker"] for r in rows]
    return SpeechSet(
        features,
        [r["speaker"] for r in rows],
        identity,
        [r["base_voice"] for r in rows],
        torch.tensor([keyword_index.get(r["keyword_id"], -1) for r in rows], dtype=torch.long),
        [r["path"] for r in rows],
    )


def _stratified(rows: list[dict[str, str]], limit: int, seed: int) -> list[dict[str, str]]:
    """At most ``limit`` rows, the same number from every speaker (smoke runs)."""
    if limit <= 0 or limit >= len(rows):
        return rows
    by_speaker: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        by_speaker.setdefault(r["speaker"], []).append(r)
    per = max(2, limit // len(by_speaker))
    rng = child_rng(seed, "subset")
    keep = []
    for spk in sorted(by_speaker):
        own = by_speaker[spk]
        keep += [own[i] for i in sorted(rng.permutation(len(own))[:per].tolist())]
    return keep


def _corpus_trials(root: Path, split: str, kind: str, names: list[str]) -> list[tuple[int, int, int]]:
    """A corpus pair list ``trials/<split>_<kind>.txt`` ("1|0 enrol test", under ``wav/``) as indices."""
    path = root / "trials" / f"{split}_{kind}.txt"
    if not path.is_file():
        return []
    index = {n[4:] if n.startswith("wav/") else n: i for i, n in enumerate(names)}
    out = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3 or parts[0] not in ("0", "1"):
            raise SvKanDataError(f"{path}:{number}: expected '<1|0> <enrol> <test>', got {line.strip()!r}")
        if parts[1] in index and parts[2] in index:  # files dropped by --skip-bad leave their trials out
            out.append((int(parts[0]), index[parts[1]], index[parts[2]]))
    return out


def load_corpus(
    root: Path,
    *,
    n_mels: int = 40,
    seed: int = 0,
    max_train_utterances: int = 0,
    allow_balanced: bool = False,
    source: str = "synth-speakers",
    skip_bad: bool = False,
) -> SvTask:
    """The synth-speakers corpus at ``root``: train, test and real splits, keyword indices, corpus trials."""
    rows = read_utterances_tsv(root / "utterances.tsv")
    confound, fraction = check_confound(rows, root / "manifest.json", allow_balanced)
    splits = {s: [r for r in rows if r["split"] == s] for s in ("train", "test", "real")}
    for split in ("train", "test"):
        if not splits[split]:
            raise SvKanDataError(f"{root / 'utterances.tsv'}: no {split!r} utterances")
    keywords = sorted({r["keyword_id"] for r in splits["train"] + splits["test"]})
    keyword_index = {k: i for i, k in enumerate(keywords)}
    frontend = log_mel_frontend(n_mels)
    skipped: list[str] | None = [] if skip_bad else None
    train = _speech_set(
        _stratified(splits["train"], max_train_utterances, seed),
        root,
        keyword_index,
        frontend,
        skipped,
        False,
    )
    test = _speech_set(splits["test"], root, keyword_index, frontend, skipped, False)
    real = None
    if splits["real"]:
        real_index = {k: i for i, k in enumerate(sorted({r["keyword_id"] for r in splits["real"]}))}
        real = _speech_set(splits["real"], root, real_index, frontend, skipped, True)
    corpus_trials = {}
    for split, speech in (("test", test), ("real", real)):
        for kind in ("tk", "ntk"):
            if speech is not None and (pairs := _corpus_trials(root, split, kind, speech.names)):
                corpus_trials[f"{split}_{kind}"] = pairs
    return SvTask(train, test, keywords, source, real, corpus_trials, confound, fraction, skipped or [])


# LibriSpeech keyword protocol (spec §6) ----------------------------------------------------------------
def keyword_vocabulary(transcripts: list[str], size: int = 50, min_letters: int = 5) -> list[str]:
    """The ``size`` most frequent words of at least ``min_letters`` letters (ties: alphabetical)."""
    counts = Counter(w for text in transcripts for w in text.upper().split() if len(w) >= min_letters)
    return [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:size]]


def _crop(audio: np.ndarray, centre_s: float, length_s: float) -> np.ndarray:
    """``length_s`` seconds of ``audio`` centred on ``centre_s`` (shifted to fit; zero-padded if short)."""
    n = int(round(length_s * SAMPLE_RATE_HZ))
    start = int(round(centre_s * SAMPLE_RATE_HZ)) - n // 2
    start = min(max(0, start), max(0, len(audio) - n))
    piece = audio[start : start + n]
    return np.pad(piece, (0, n - len(piece)))


def load_librispeech(
    root: Path,
    *,
    train_subsets: list[str],
    test_subset: str,
    keyword_source: str = "alignments",
    vocabulary_size: int = 50,
    min_word_letters: int = 5,
    crop_s: float = 2.0,
    n_mels: int = 40,
    seed: int = 0,
    max_train_utterances: int = 0,
) -> SvTask:
    """Items of the LibriSpeech keyword protocol: a ``crop_s`` crop centred on each aligned occurrence of a
    vocabulary word, labelled with it; with ``keyword_source="none"`` one random crop per utterance and no
    keyword (text-independent trials only)."""
    try:
        corpus = LibriSpeech(root)
        train_utts = [u for s in train_subsets for u in corpus.utterances(s)]
        test_utts = corpus.utterances(test_subset)
    except LibriSpeechError as e:
        raise SvKanDataError(str(e)) from None
    if keyword_source == "alignments" and not any(u.alignment for u in train_utts):
        raise SvKanDataError(
            f"{root}: no *.alignment.txt word alignments under {', '.join(train_subsets)}; "
            "set keyword_source=none for text-independent trials"
        )
    vocabulary = keyword_vocabulary([u.text for u in train_utts], vocabulary_size, min_word_letters)
    word_index = {w: i for i, w in enumerate(vocabulary)}
    frontend = log_mel_frontend(n_mels)

    def items(utts, split: str) -> SpeechSet:
        feats, speakers, keywords, names = [], [], [], []
        for u in utts:
            audio = u.audio(SAMPLE_RATE_HZ)
            if keyword_source == "alignments":
                spots = [(w.word.upper(), (w.start_s + w.end_s) / 2) for w in (u.alignment or [])]
                spots = [(word_index[w], c) for w, c in spots if w in word_index]
            else:
                rng = child_rng(seed, "crop", split, u.utt_id)
                spots = [(-1, float(rng.uniform(0, max(len(audio) / SAMPLE_RATE_HZ, 1e-3))))]
            for k, centre in spots:
                feats.append(utterance_features(frontend, _crop(audio, centre, crop_s)))
                speakers.append(u.speaker)
                keywords.append(k)
                names.append(u.path.relative_to(root).as_posix())
        return SpeechSet(
            feats, speakers, list(speakers), list(speakers), torch.tensor(keywords, dtype=torch.long), names
        )

    rows = [{"speaker": u.speaker, "i": i} for i, u in enumerate(train_utts)]
    train_utts = [train_utts[r["i"]] for r in _stratified(rows, max_train_utterances, seed)]
    with single_thread():
        train, test = items(train_utts, "train"), items(test_utts, "test")
    for name, speech in (("train", train), ("test", test)):
        if len(speech) == 0:
            raise SvKanDataError(f"{root}: no {name} items (no vocabulary word in the alignments?)")
    return SvTask(train, test, vocabulary if keyword_source == "alignments" else [], "librispeech")


def load_voxceleb(
    root: Path, *, trial_list: str = "O", n_mels: int = 40, seed: int = 0, max_train_utterances: int = 0
) -> SvTask:
    """VoxCeleb1 (spec §6): dev speakers train, the utterances of the trial list are the test set, scored on
    that list (``eer_corpus_test_vox1<list>``) and on text-independent builder trials. No keywords."""
    try:
        vox = VoxCeleb1(root)
        trials = vox.trials(trial_list)
        dev = vox.utterances_of(vox.speakers("dev"))
    except VoxCelebError as e:
        raise SvKanDataError(str(e)) from None
    if not dev:
        raise SvKanDataError(f"{vox.wav_dir}: no dev (training) speakers")
    rows = [{"speaker": u.speaker, "i": i} for i, u in enumerate(dev)]
    dev = [dev[r["i"]] for r in _stratified(rows, max_train_utterances, seed)]
    test_rels = sorted({t.enrol for t in trials} | {t.test for t in trials})
    frontend = log_mel_frontend(n_mels)

    def speech(paths: list[Path], speakers: list[str]) -> SpeechSet:
        features, keep = _load_features(paths, frontend, None)
        spk = [speakers[i] for i in keep]
        names = [paths[i].relative_to(vox.wav_dir).as_posix() for i in keep]
        return SpeechSet(features, spk, list(spk), list(spk), torch.full((len(spk),), -1), names)

    train = speech([u.path for u in dev], [u.speaker for u in dev])
    test = speech([vox.wav_dir / r for r in test_rels], [r.split("/")[0] for r in test_rels])
    index = {n: i for i, n in enumerate(test.names)}
    pairs = [(t.target, index[t.enrol], index[t.test]) for t in trials]
    return SvTask(train, test, [], "voxceleb1", corpus_trials={f"test_vox1{trial_list.lower()}": pairs})
