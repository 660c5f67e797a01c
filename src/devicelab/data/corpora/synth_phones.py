"""``synth-phones``: sentences with phone segments in the TIMIT layout (corpora.md, "synth-phones").

Engine phones map to TIMIT 61-set labels through the committed tables (``phones_espeak.tsv``,
``phones_cmu.tsv``); the TIMIT loader (:mod:`devicelab.data.datasets.timit`) folds them to 39 exactly as for
real TIMIT. Dialect regions name engines: DR1 espeak-ng, DR2 flite, DR3 festival, DR4 mbrola. Voices are
held out: TEST = person slt (flite, festival) + disjoint espeak-ng variant files (+ us3); TRAIN = the rest.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from devicelab.audio.channel import set_rms_dbfs, white_noise
from devicelab.audio.io import write_wav
from devicelab.core.seeding import child_rng
from devicelab.data.corpora import BuildContext, CorpusBuilder
from devicelab.data.corpora._speech import (
    FEMALE_PERSONS,
    FEMALE_VARIANTS,
    FLITE_VOICES,
    MBROLA_VOICES,
    SAMPLE_RATE_HZ,
    Voice,
    accent_order,
    engine_for,
    engine_sources,
    espeak_voice,
    festival_packages,
    generated_record,
    manifest_fields,
    mbrola_packages,
    pick_espeak_variants,
    recorded_voices,
    render,
    run_tasks,
    split_variants,
    start_work_unit,
    to_16k,
    usable_engines,
    wheel_record,
    write_csv,
)
from devicelab.data.speech.engines import FESTIVAL_VOICES, Rendering
from devicelab.data.speech.phones import Segment, fold_map, timit39, timit61
from devicelab.data.speech.texts import command_words, sentences

DIALECT = {"espeak-ng": "DR1", "flite": "DR2", "festival": "DR3", "mbrola": "DR4"}


@dataclass(frozen=True)
class PhonesParams:
    espeak_voices: int = 12  # accent+variant voices, one variant file each
    test_espeak_fraction: float = 0.25  # of the espeak variant files
    flite_voices: tuple[str, ...] = FLITE_VOICES
    festival_voices: tuple[str, ...] = ()
    mbrola_voices: tuple[str, ...] = ()
    sentences_per_voice: int = 36
    words_per_voice: int = 4  # Speech Commands words, one utterance each
    level_dbfs: float = -26.0
    level_jitter_db: float = 3.0
    noise_floor_dbfs: float = -65.0
    edge_silence_s: tuple[float, float] = (0.05, 0.15)  # silence added before and after, labelled h#


PROFILES: dict[str, PhonesParams] = {
    "smoke": PhonesParams(espeak_voices=4, flite_voices=(), sentences_per_voice=5, words_per_voice=1),
    "quick": PhonesParams(),
    "full": PhonesParams(
        espeak_voices=40,
        flite_voices=FLITE_VOICES,
        festival_voices=tuple(FESTIVAL_VOICES),
        sentences_per_voice=284,
        words_per_voice=16,
    ),
}


@dataclass(frozen=True)
class PhoneSpeaker:
    voice: Voice
    spk: str  # TIMIT-style speaker folder: sex letter + 4 characters
    split: str  # TRAIN | TEST

    @property
    def dialect(self) -> str:
        return DIALECT[self.voice.engine]


def _speaker_code(voice: Voice, taken: set[str]) -> str:
    female = voice.variant in FEMALE_VARIANTS or voice.person in FEMALE_PERSONS
    stem = (voice.person or voice.variant).upper().replace("-", "")
    base = ("F" if female else "M") + (stem + "XXX")[:3]
    for digit in range(10):
        if base + str(digit) not in taken:
            return base + str(digit)
    raise RuntimeError(f"no free speaker code for {voice}")


def plan_speakers(params: PhonesParams, seed: int) -> list[PhoneSpeaker]:
    """Voices and their TRAIN/TEST split (held out by person or espeak-ng variant file)."""
    voices = []
    variants = pick_espeak_variants(seed + 1, params.espeak_voices)
    variant_split = split_variants(seed, variants, {"TEST": params.test_espeak_fraction})
    for variant in variants:
        accent = accent_order(seed, "phones-accent", variant)[0]
        voices.append(
            (espeak_voice(accent, variant), "TEST" if variant_split[variant] == "TEST" else "TRAIN")
        )
    voices += [(v, "TEST" if v.person in ("slt", "us3") else "TRAIN") for v in recorded_voices(params)]
    taken: set[str] = set()
    speakers = []
    for voice, split in voices:
        code = _speaker_code(voice, taken)
        taken.add(code)
        speakers.append(PhoneSpeaker(voice, code, split))
    return speakers


def texts_for(spk: PhoneSpeaker, params: PhonesParams, seed: int) -> list[tuple[str, str]]:
    """(utterance id, text) of one speaker: a seeded draw of sentences (SI<n>) and words (SW<n>)."""
    rng = child_rng(seed, "texts", spk.voice.key)
    all_sentences, words = sentences(), command_words()
    chosen = sorted(
        rng.choice(
            len(all_sentences), size=min(params.sentences_per_voice, len(all_sentences)), replace=False
        )
    )
    out = [(f"SI{i:03d}", all_sentences[i]) for i in chosen]
    chosen_words = sorted(rng.choice(len(words), size=min(params.words_per_voice, len(words)), replace=False))
    return out + [(f"SW{i:03d}", words[i]) for i in chosen_words]


def pad_segments(segments: list[Segment], lead: int, n_samples: int) -> list[Segment]:
    """Shift segments by ``lead`` samples and label the added edges ``h#`` (merged with edge pauses)."""
    shifted = [Segment(s.label, s.start + lead, s.end + lead) for s in segments]
    if not shifted or shifted[0].label != "h#":
        shifted.insert(0, Segment("h#", 0, lead))
    shifted[0].start = 0
    if shifted[-1].label != "h#":
        shifted.append(Segment("h#", shifted[-1].end, n_samples))
    shifted[-1].end = n_samples
    return [s for s in shifted if s.end > s.start]


def word_segments(rendering: Rendering, n16: int) -> list[tuple[int, int, str]]:
    """Word segments at 16 kHz from espeak-ng word events; a word ends where the next word or pause starts."""
    if not rendering.words:
        return []
    pause_starts = [p.start for p in rendering.phones if p.symbol.strip("',%=").startswith("_")]
    out = []
    sr = rendering.sample_rate_hz
    for i, w in enumerate(rendering.words):
        end = rendering.words[i + 1].start if i + 1 < len(rendering.words) else len(rendering.audio)
        end = min([end] + [s for s in pause_starts if s > w.start])
        text = "".join(c for c in w.text.lower() if c.isalpha() or c == "'")
        if text and end > w.start:
            out.append(
                (round(w.start * SAMPLE_RATE_HZ / sr), min(n16, round(end * SAMPLE_RATE_HZ / sr)), text)
            )
    return out


@dataclass
class _VoiceTask:
    speaker: PhoneSpeaker
    texts: list[tuple[str, str]]
    params: PhonesParams
    seed: int
    out: str
    cache: str


def _render_voice(task: _VoiceTask) -> list[dict[str, Any]]:
    """Render one voice's utterances and write .WAV .PHN .TXT (.WRD for espeak-ng)."""
    start_work_unit()
    spk, p = task.speaker, task.params
    folder = Path(task.out) / spk.split / spk.dialect / spk.spk
    renderings = render(
        spk.voice.engine, [(text, spk.voice.voice, 1.0, 1.0) for _, text in task.texts], Path(task.cache)
    )
    rows = []
    for (utt, text), r in zip(task.texts, renderings):
        clip = to_16k(r, engine_for(spk.voice.engine).symbol_table)
        rng = child_rng(task.seed, "utt", spk.spk, utt)
        level = p.level_dbfs + rng.uniform(-p.level_jitter_db, p.level_jitter_db)
        lead, tail = (int(x * SAMPLE_RATE_HZ) for x in rng.uniform(*p.edge_silence_s, size=2))
        audio = np.concatenate(
            [np.zeros(lead, np.float32), set_rms_dbfs(clip.audio, level), np.zeros(tail, np.float32)]
        )
        audio = audio + white_noise(len(audio), rng) * 10 ** (p.noise_floor_dbfs / 20)
        n = len(audio)
        segments = pad_segments(clip.segments, lead, n)
        write_wav(folder / f"{utt}.WAV", np.clip(audio, -1, 1), SAMPLE_RATE_HZ)
        (folder / f"{utt}.PHN").write_text("".join(f"{s.start} {s.end} {s.label}\n" for s in segments))
        (folder / f"{utt}.TXT").write_text(f"0 {n} {text}\n")
        words = [(a + lead, b + lead, w) for a, b, w in word_segments(r, len(clip.audio))]
        if words:
            (folder / f"{utt}.WRD").write_text("".join(f"{a} {b} {w}\n" for a, b, w in words))
        rows.append(
            {
                "path": f"{spk.split}/{spk.dialect}/{spk.spk}/{utt}.WAV",
                "speaker": spk.spk,
                "split": spk.split,
                "engine": spk.voice.engine,
                "voice": spk.voice.voice,
                "text": text,
                "n_phones": len(segments),
                "labels": " ".join(s.label for s in segments),
            }
        )
    return rows


def phones_txt() -> str:
    folding = fold_map()
    lines = [
        "# TIMIT 61-set labels (as written in .PHN) and the 39-set folding used by the loader",
        "# 61: " + " ".join(timit61()),
        "# 39: " + " ".join(timit39()),
        "# label61<TAB>label39 ('-' = dropped)",
    ]
    lines += [f"{k}\t{v or '-'}" for k, v in sorted(folding.items())]
    return "\n".join(lines) + "\n"


def build(ctx: BuildContext) -> dict[str, Any]:
    params = PROFILES[ctx.profile]
    if "mbrola" in ctx.extras:
        params = PhonesParams(**{**asdict(params), "mbrola_voices": MBROLA_VOICES})
    engines, warnings = usable_engines(params, ctx)
    sources = [
        wheel_record("espeakng-loader", ["GPL-3+"]),
        generated_record("sentences_en.txt, phone tables (devicelab)"),
        *engine_sources(params, engines, ctx.fetcher),
    ]
    speakers = [s for s in plan_speakers(params, ctx.seed) if s.voice.engine in engines]
    tasks = [
        _VoiceTask(s, texts_for(s, params, ctx.seed), params, ctx.seed, str(ctx.out), str(ctx.fetcher.cache))
        for s in speakers
    ]
    ctx.log(
        f"synth-phones ({ctx.profile}): {len(speakers)} voices, {sum(len(t.texts) for t in tasks)} utterances"
    )
    rows = [row for result in run_tasks(_render_voice, tasks, ctx.workers) for row in result]
    (ctx.out / "PHONES.txt").write_text(phones_txt())
    write_csv(
        ctx.out / "SPEAKERS.csv",
        [
            {
                "speaker": s.spk,
                "split": s.split,
                "dialect": s.dialect,
                "engine": s.voice.engine,
                "voice": s.voice.voice,
                "variant": s.voice.variant,
                "person": s.voice.person or "-",
            }
            for s in speakers
        ],
        ["speaker", "split", "dialect", "engine", "voice", "variant", "person"],
    )
    write_csv(
        ctx.out / "provenance.csv",
        sorted(rows, key=lambda r: r["path"]),
        ["path", "speaker", "split", "engine", "voice", "text"],
    )
    folding = fold_map()
    tokens: dict[str, Counter] = {"TRAIN": Counter(), "TEST": Counter()}
    for r in rows:
        tokens[r["split"]].update(folding[label] for label in r["labels"].split() if folding[label])
    counts = {
        "utterances": dict(Counter(r["split"] for r in rows)),
        "speakers": dict(Counter(s.split for s in speakers)),
        "phone_tokens": {k: sum(v.values()) for k, v in tokens.items()},
        "tokens_per_folded_phone": {k: dict(sorted(v.items())) for k, v in tokens.items()},
    }
    return manifest_fields(
        "synth_phones", params, sources=sources, engines=engines, counts=counts, warnings=warnings
    )


def sources(profile: str, extras: tuple[str, ...]) -> list[str]:
    params = PROFILES[profile]
    packages = festival_packages(params.festival_voices) if params.festival_voices else []
    if "mbrola" in extras:
        packages += mbrola_packages()
    return packages


BUILDER = CorpusBuilder(
    name="synth-phones",
    description="Sentences with TIMIT-layout phone segments (espeak-ng, flite; festival in full)",
    build=build,
    sources=sources,
)
