"""``synth-commands``: the 35 Speech Commands v0.02 words spoken by synthetic pseudo-speakers, in the
Speech Commands layout (corpora.md, "synth-commands"; read by the kws-ssn Speech Commands loader).

A pseudo-speaker is (engine, voice or accent+variant, pitch, speed, formant factor α); its id is the
first 8 hex digits of the sha1 of that tuple (α = 1 leaves it out). Splits keep a recorded person
(flite/festival/Pico) or an espeak-ng variant file together: test = slt + 10 % of the variant files,
validation = rms + another 10 %, train = the rest (every Pico voice, its two English women and its four
accent voices, trains only). Every split draws its pitch, speed, α and channel from the same ranges; only
the voices differ.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from devicelab.audio.channel import (
    apply_sos,
    eq_sos,
    random_eq_sos,
    rms_dbfs,
    set_rms_dbfs,
    tilt_sos,
    two_shelf_sos,
    white_noise,
)
from devicelab.audio.io import read_wav, resample, write_wav
from devicelab.core.seeding import child_rng
from devicelab.data.corpora import BuildContext, CorpusBuilder
from devicelab.data.corpora._speech import (
    ESPEAK_VARIANTS,
    FLITE_VOICES,
    MBROLA_VOICES,
    SAMPLE_RATE_HZ,
    Voice,
    accent_order,
    as_json,
    deb_record,
    engine_sources,
    espeak_voice,
    festival_packages,
    log_progress,
    manifest_fields,
    mbrola_packages,
    pick_espeak_variants,
    recorded_voices,
    render,
    run_tasks,
    short_id,
    split_variants,
    start_work_unit,
    trimmed,
    usable_engines,
    wheel_record,
    write_csv,
    write_noise_folder,
)
from devicelab.data.speech.engines import (
    FESTIVAL_ACCENT_VOICES,
    FESTIVAL_VOICES,
    PICO_ACCENT_VOICES,
    PICO_VOICES,
)
from devicelab.data.speech.texts import command_words, keywords10

ALLISON_DIGITS = "usr/share/asterisk/sounds/en_US_f_Allison/digits"
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
CLIP_SAMPLES = SAMPLE_RATE_HZ  # 1 s
MAX_SPEECH_S = 0.95


@dataclass(frozen=True)
class CommandsParams:
    """Sizes and levels of one profile (corpora.md, synth-commands "Build" and "Sizes")."""

    espeak_variants: int = 30  # variant files used
    accents_per_variant: int = 2  # accents per variant file
    tuples_per_espeak_voice: int = 1  # (pitch, speed) tuples per accent+variant
    flite_voices: tuple[str, ...] = FLITE_VOICES
    festival_voices: tuple[str, ...] = tuple(FESTIVAL_VOICES)
    mbrola_voices: tuple[str, ...] = ()  # filled from --extras mbrola
    # SVOX Pico's English women (lh0, kh0) and accent voices (zl0, cm0, nk0, gl0): training only
    pico_voices: tuple[str, ...] = ()
    tuples_per_voice: int = 4  # (pitch, speed) tuples per flite/festival/mbrola/Pico voice
    voice_pitch: tuple[float, float] = (0.88, 1.12)  # pitch factor range of recorded-voice tuples
    voice_speed: tuple[float, float] = (0.88, 1.12)  # speed factor range of recorded-voice tuples
    # formant factor α per tuple (every engine): rendered at speed/α and pitch/α, then resampled by α,
    # which scales the spectral envelope by α and keeps pitch and duration (vocal tract length)
    formant_range: tuple[float, float] = (1.0, 1.0)
    keyword_takes: int = 3
    other_takes: int = 1
    test_fraction: float = 0.1  # of the espeak variant files
    validation_fraction: float = 0.1
    speed_jitter: float = 0.08
    pitch_jitter: float = 0.05
    level_dbfs: float = -26.0
    level_jitter_db: float = 6.0
    noise_floor_dbfs: float = -60.0
    shelf_db: float = 3.0
    noise_seconds: float = 60.0
    minetest_noise: bool = True
    real_digits: bool = True
    real_noise_floor: bool = False  # the real/ digits get the same noise floor as the synthetic clips


PROFILES: dict[str, CommandsParams] = {
    "smoke": CommandsParams(
        espeak_variants=8,
        accents_per_variant=1,
        flite_voices=(),
        festival_voices=(),
        noise_seconds=5.0,
        minetest_noise=False,
        real_digits=False,
    ),
    # quick: every variant file, 3 accents and 2 tuples each, 24 tuples per recorded voice, wide pitch and
    # formant ranges and ±6 dB shelves; test = 6 variant files x 3 x 2 + slt x 2 engines x 24 = 84 speakers,
    # 252 clips per keyword: the 12-class test split holds 12 x 252 = 3,024 clips (Pico's voices train only)
    "quick": CommandsParams(
        espeak_variants=len(ESPEAK_VARIANTS),
        accents_per_variant=3,
        tuples_per_espeak_voice=2,
        festival_voices=(*FESTIVAL_VOICES, *FESTIVAL_ACCENT_VOICES),
        # Pico's English women only: with its four accent voices too, kws-ssn's quick run took 10 min 23 s
        # (over its budget), and a budget-keeping subset of the training clips lowered BatchNorm (docs)
        pico_voices=tuple(PICO_VOICES),
        tuples_per_voice=24,
        voice_pitch=(0.8, 1.8),
        voice_speed=(0.85, 1.2),
        formant_range=(0.88, 1.22),
        shelf_db=6.0,
        real_noise_floor=True,
    ),
    "full": CommandsParams(
        espeak_variants=46,
        accents_per_variant=6,
        tuples_per_espeak_voice=3,
        festival_voices=(*FESTIVAL_VOICES, *FESTIVAL_ACCENT_VOICES),
        pico_voices=(*PICO_VOICES, *PICO_ACCENT_VOICES),
        tuples_per_voice=12,
        other_takes=3,
    ),
}


@dataclass(frozen=True)
class PseudoSpeaker:
    voice: Voice
    pitch: float  # factor on the voice's own pitch
    speed: float  # factor on the voice's own speed
    split: str
    channel_low_db: float
    channel_high_db: float
    spk: str = field(default="")
    formant: float = 1.0  # α: spectral envelope scaled by α, pitch and duration kept

    def row(self) -> dict[str, Any]:
        return {
            "spk8": self.spk,
            "engine": self.voice.engine,
            "voice": self.voice.voice,
            "variant": self.voice.variant,
            "person": self.voice.person or "-",
            "pitch": f"{self.pitch:.4f}",
            "speed": f"{self.speed:.4f}",
            "formant": f"{self.formant:.4f}",
            "split": self.split,
        }


def _make_speaker(
    voice: Voice, pitch: float, speed: float, split: str, seed: int, formant: float = 1.0
) -> PseudoSpeaker:
    parts = [voice.engine, voice.voice, f"{pitch:.4f}", f"{speed:.4f}"]
    if formant != 1.0:
        parts.append(f"{formant:.4f}")
    spk = short_id(*parts)
    rng = child_rng(seed, "channel", spk)
    shelf = rng.uniform(-1.0, 1.0, size=2)
    return PseudoSpeaker(voice, pitch, speed, split, float(shelf[0]), float(shelf[1]), spk, formant)


def _formant(params: CommandsParams, rng: np.random.Generator) -> float:
    """α drawn from ``formant_range`` (no draw when the range is the single value 1)."""
    low, high = params.formant_range
    return 1.0 if low == high == 1.0 else float(rng.uniform(low, high))


def plan_speakers(params: CommandsParams, seed: int) -> list[PseudoSpeaker]:
    """All pseudo-speakers with their splits (deterministic for a seed)."""
    speakers = []
    variants = pick_espeak_variants(seed, params.espeak_variants)
    variant_split = split_variants(
        seed, variants, {"test": params.test_fraction, "validation": params.validation_fraction}
    )
    for variant in variants:
        for accent in accent_order(seed, "accent", variant)[: params.accents_per_variant]:
            voice = espeak_voice(accent, variant)
            for t in range(params.tuples_per_espeak_voice):
                rng = child_rng(seed, "tuple", voice.key, t)
                pitch = rng.uniform(20, 80) / 50.0  # espeakPITCH 20-80
                speed = rng.uniform(130, 220) / 175.0  # espeakRATE 130-220 wpm
                formant = _formant(params, rng)
                speakers.append(_make_speaker(voice, pitch, speed, variant_split[variant], seed, formant))
    person_split = {"slt": "test", "us3": "test", "rms": "validation", "en1": "validation"}
    for voice in recorded_voices(params):
        for t in range(params.tuples_per_voice):
            rng = child_rng(seed, "tuple", voice.key, t)
            pitch, speed = rng.uniform(*params.voice_pitch), rng.uniform(*params.voice_speed)
            formant = _formant(params, rng)
            split = person_split.get(voice.person, "train")
            speakers.append(_make_speaker(voice, pitch, speed, split, seed, formant))
    ids = Counter(s.spk for s in speakers)
    if max(ids.values(), default=1) > 1:
        raise RuntimeError(f"pseudo-speaker id collision: {[k for k, v in ids.items() if v > 1]}")
    return speakers


def _channel_for_test(seed: int) -> dict[str, Any]:
    """The one channel that training never sees: a ±6 dB/octave tilt or a random 3-band EQ of ±9 dB."""
    rng = child_rng(seed, "test-channel")
    if rng.random() < 0.5:
        return {"kind": "tilt", "db_per_octave": float(rng.choice([-6.0, 6.0]))}
    _, bands = random_eq_sos(rng, SAMPLE_RATE_HZ, n_bands=3, max_gain_db=9.0)
    return {"kind": "eq3", "bands": bands}


def _channel_sos(channel: dict[str, Any]) -> np.ndarray:
    if channel["kind"] == "tilt":
        return tilt_sos(channel["db_per_octave"], SAMPLE_RATE_HZ)
    return eq_sos(channel["bands"], SAMPLE_RATE_HZ)


@dataclass
class _SpeakerTask:
    speaker: PseudoSpeaker
    words: list[tuple[str, int]]  # (word, take)
    params: CommandsParams
    seed: int
    out: str
    cache: str
    test_channel: dict[str, Any]


def _render_speaker(task: _SpeakerTask) -> list[dict[str, Any]]:
    """Render, trim, place, colour and level every clip of one pseudo-speaker; returns provenance rows."""
    start_work_unit()
    spk, p = task.speaker, task.params
    out, rows = Path(task.out), []
    jitters = {}
    for word, take in task.words:
        rng = child_rng(task.seed, "clip", spk.spk, word, take)
        jitters[(word, take)] = (
            rng,
            spk.speed * rng.uniform(1 - p.speed_jitter, 1 + p.speed_jitter),
            spk.pitch * rng.uniform(1 - p.pitch_jitter, 1 + p.pitch_jitter),
        )
    pending = list(task.words)
    truncated: set[tuple[str, int]] = set()
    speech: dict[tuple[str, int], tuple[np.ndarray, float]] = {}
    alpha = spk.formant
    for attempt in range(4):  # speed is redrawn (faster) while the trimmed word is over 0.95 s
        # formant factor α: render at speed/α and pitch/α, then read the samples at rate·α
        items = [
            (w, spk.voice.voice, jitters[(w, k)][1] / alpha, jitters[(w, k)][2] / alpha) for w, k in pending
        ]
        renderings = render(spk.voice.engine, items, Path(task.cache))
        again = []
        for (word, take), r in zip(pending, renderings):
            source_hz = r.sample_rate_hz if alpha == 1.0 else int(round(r.sample_rate_hz * alpha))
            audio = trimmed(resample(r.audio, source_hz, SAMPLE_RATE_HZ))
            if audio.size == 0:
                raise RuntimeError(
                    f"{spk.voice.engine} voice {spk.voice.voice!r} rendered silence for {word!r}"
                )
            rng, speed, pitch = jitters[(word, take)]
            if len(audio) > MAX_SPEECH_S * SAMPLE_RATE_HZ and attempt < 3:
                jitters[(word, take)] = (rng, speed * len(audio) / (0.9 * SAMPLE_RATE_HZ), pitch)
                again.append((word, take))
            else:
                if len(audio) > MAX_SPEECH_S * SAMPLE_RATE_HZ:
                    truncated.add((word, take))
                speech[(word, take)] = (audio[: int(MAX_SPEECH_S * SAMPLE_RATE_HZ)], speed)
        pending = again
        if not pending:
            break
    shelves = two_shelf_sos(spk.channel_low_db * p.shelf_db, spk.channel_high_db * p.shelf_db, SAMPLE_RATE_HZ)
    test_sos = _channel_sos(task.test_channel) if spk.split == "test" else None
    for word, take in task.words:
        audio, speed = speech[(word, take)]
        rng, _, pitch = jitters[(word, take)]
        clip = np.zeros(CLIP_SAMPLES, dtype=np.float32)
        offset = int(rng.integers(0, CLIP_SAMPLES - len(audio) + 1))
        clip[offset : offset + len(audio)] = audio
        clip = apply_sos(clip, shelves)
        level = p.level_dbfs + rng.uniform(-p.level_jitter_db, p.level_jitter_db)
        # level set on the speech part, then a -60 dBFS white noise floor over the whole second
        gain = 10 ** ((level - rms_dbfs(clip[offset : offset + len(audio)])) / 20)
        clip = clip * gain + white_noise(CLIP_SAMPLES, rng) * 10 ** (p.noise_floor_dbfs / 20)
        clip = np.clip(clip, -1.0, 1.0).astype(np.float32)
        name = f"{word}/{spk.spk}_nohash_{take}.wav"
        write_wav(out / "gsc" / name, clip, SAMPLE_RATE_HZ)
        row = {
            "path": f"gsc/{name}",
            "source": _source_name(spk.voice.engine),
            "member": "",
            "engine": spk.voice.engine,
            "voice": spk.voice.voice,
            "split": spk.split,
            "parameters": as_json(
                {
                    "speed": round(speed, 4),
                    "pitch": round(pitch, 4),
                    **({"formant": round(alpha, 4)} if alpha != 1.0 else {}),
                    "offset": offset,
                    "level_dbfs": round(level, 2),
                }
            ),
        }
        rows.append({**row, "_truncated": (word, take) in truncated})
        if test_sos is not None:
            coloured = set_rms_dbfs(apply_sos(clip, test_sos), rms_dbfs(clip))
            write_wav(out / "channel" / name, np.clip(coloured, -1, 1), SAMPLE_RATE_HZ)
            rows.append({**row, "path": f"channel/{name}", "parameters": as_json(task.test_channel)})
    return rows


def _source_name(engine: str) -> str:
    return {
        "espeak-ng": "espeakng-loader",
        "flite": "flite",
        "festival": "festival",
        "mbrola": "mbrola",
        "pico": "ttspico",
    }[engine]


def _write_real(
    ctx: BuildContext, out: Path, noise_floor_dbfs: float | None = None
) -> tuple[list[dict], dict]:
    """Allison's ten digits (asterisk-core-sounds-en-wav, 8 kHz), trimmed, centred in 1 s at −26 dBFS.

    With ``noise_floor_dbfs`` the clip gets the white noise floor every synthetic clip has; without it the
    padding and the band above 4 kHz are digital zeros, log-mel values (log 1e-6) that no training clip has.
    """
    pkg = ctx.fetcher.fetch("asterisk-core-sounds-en-wav")
    spk = short_id("asterisk", "en_US_f_Allison")
    rows, members = [], []
    for digit, word in enumerate(DIGIT_WORDS):
        member = f"{ALLISON_DIGITS}/{digit}.wav"
        path = pkg.root / member
        if not path.is_file():
            raise FileNotFoundError(f"asterisk-core-sounds-en-wav {pkg.version}: {member} is missing")
        audio = trimmed(read_wav(path, SAMPLE_RATE_HZ)[0])[:CLIP_SAMPLES]
        clip = np.zeros(CLIP_SAMPLES, dtype=np.float32)
        offset = (CLIP_SAMPLES - len(audio)) // 2
        clip[offset : offset + len(audio)] = set_rms_dbfs(audio, -26.0)
        if noise_floor_dbfs is not None:
            floor = white_noise(CLIP_SAMPLES, child_rng(ctx.seed, "real-floor", digit))
            clip = clip + floor * 10 ** (noise_floor_dbfs / 20)
        name = f"{word}/{spk}_nohash_0.wav"
        write_wav(out / "real" / name, np.clip(clip, -1, 1), SAMPLE_RATE_HZ)
        rows.append(
            {
                "path": f"real/{name}",
                "source": f"asterisk-core-sounds-en-wav {pkg.version}",
                "member": member,
                "engine": "",
                "voice": "en_US_f_Allison",
                "split": "real",
                "parameters": as_json(
                    {"offset": offset, **({"noise_floor_dbfs": noise_floor_dbfs} if noise_floor_dbfs else {})}
                ),
            }
        )
        members.append(member)
    (out / "real" / "testing_list.txt").write_text("".join(f"{r['path'][5:]}\n" for r in rows))
    return rows, deb_record(pkg, members)


def build(ctx: BuildContext) -> dict[str, Any]:
    params = PROFILES[ctx.profile]
    if "mbrola" in ctx.extras:
        params = CommandsParams(**{**asdict(params), "mbrola_voices": MBROLA_VOICES})
    engines, warnings = usable_engines(params, ctx)
    sources = [wheel_record("espeakng-loader", ["GPL-3+"]), *engine_sources(params, engines, ctx.fetcher)]
    speakers = [s for s in plan_speakers(params, ctx.seed) if s.voice.engine in engines]
    words = command_words()
    keyword_set = set(keywords10())
    test_channel = _channel_for_test(ctx.seed)
    tasks = []
    for s in speakers:
        takes = [
            (w, k)
            for w in words
            for k in range(params.keyword_takes if w in keyword_set else params.other_takes)
        ]
        tasks.append(
            _SpeakerTask(s, takes, params, ctx.seed, str(ctx.out), str(ctx.fetcher.cache), test_channel)
        )
    ctx.log(
        f"synth-commands ({ctx.profile}): {len(speakers)} pseudo-speakers, "
        f"{sum(len(t.words) for t in tasks)} clips, {ctx.workers} worker(s)"
    )
    results = run_tasks(_render_speaker, tasks, ctx.workers, log_progress(ctx.log, len(tasks), "speakers"))
    rows = [row for result in results for row in result]
    n_truncated = sum(bool(r.get("_truncated")) for r in rows if r["path"].startswith("gsc/"))
    if n_truncated:
        warnings.append(f"{n_truncated} clips still over {MAX_SPEECH_S} s after 3 faster renders were cut")

    gsc = ctx.out / "gsc"
    noise_dir = gsc / "_background_noise_"
    noise_rows, noise_sources, noise_warnings = write_noise_folder(
        ctx, noise_dir, params.noise_seconds, params.minetest_noise
    )
    rows += [{**r, "path": f"gsc/_background_noise_/{r['file']}", "split": "noise"} for r in noise_rows]
    sources += noise_sources
    warnings += noise_warnings

    by_split = {"validation": [], "test": []}
    for r in rows:
        if r["path"].startswith("gsc/") and r["split"] in by_split:
            by_split[r["split"]].append(r["path"][4:])
    (gsc / "validation_list.txt").write_text("".join(f"{p}\n" for p in sorted(by_split["validation"])))
    (gsc / "testing_list.txt").write_text("".join(f"{p}\n" for p in sorted(by_split["test"])))
    channel_files = sorted(r["path"][8:] for r in rows if r["path"].startswith("channel/"))
    if channel_files:
        (ctx.out / "channel" / "testing_list.txt").write_text("".join(f"{p}\n" for p in channel_files))
    write_csv(
        gsc / "speakers.csv",
        [s.row() for s in speakers],
        ["spk8", "engine", "voice", "variant", "person", "pitch", "speed", "formant", "split"],
    )
    if params.real_digits:
        floor = params.noise_floor_dbfs if params.real_noise_floor else None
        real_rows, real_source = _write_real(ctx, ctx.out, floor)
        rows += real_rows
        sources.append(real_source)
    else:
        warnings.append("no real/ digits in this profile (no download)")
    write_csv(
        ctx.out / "provenance.csv",
        sorted(rows, key=lambda r: r["path"]),
        ["path", "source", "member", "engine", "voice", "split", "parameters"],
    )

    counts: dict[str, Any] = {"speakers": dict(Counter(s.split for s in speakers)), "clips": {}}
    for r in rows:
        if r["path"].startswith(("gsc/", "real/")) and "_background_noise_" not in r["path"]:
            split = r["split"]
            word = r["path"].split("/")[1]
            counts["clips"].setdefault(split, {}).setdefault(word, 0)
            counts["clips"][split][word] += 1
    counts["clips_total"] = {k: sum(v.values()) for k, v in counts["clips"].items()}
    return manifest_fields(
        "synth_commands",
        params,
        test_channel=test_channel,
        sources=sources,
        engines=engines,
        counts=counts,
        warnings=warnings,
    )


def sources(profile: str, extras: tuple[str, ...]) -> list[str]:
    params = PROFILES[profile]
    if profile == "smoke":
        return []
    packages = festival_packages(params.festival_voices) + ["minetest-data", "asterisk-core-sounds-en-wav"]
    if "mbrola" in extras:
        packages += mbrola_packages()
    return packages


BUILDER = CorpusBuilder(
    name="synth-commands",
    description="Speech Commands v0.02 words by synthetic pseudo-speakers (espeak-ng, flite, festival, pico)",
    build=build,
    sources=sources,
)
