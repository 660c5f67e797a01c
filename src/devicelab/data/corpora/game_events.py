"""``game-events``: 10 s soundscapes mixed with scaper from isolated game and education sounds, in the
DESED (DCASE2019 task 4) layout (corpora.md, "game-events"; read by :mod:`devicelab.data.datasets.desed`).

Each label's source files (persons for Speech) are dealt into four disjoint pools: A (synthetic domain),
B-train (weak and unlabelled sets), B-val (validation) and B-test (eval/public). Ambience beds are dealt into
the three B pools the same way, so no foreground or background file serves two of train, validation and
test. The synthetic domain mixes pool A over generated stationary noise; the real-like domain mixes the B
pools over recorded ambience with babble, at lower SNRs, with reverb, a band limit, light compression and a
different class prior (sed-tritrain.md §5, "Domain gap").
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from devicelab.audio.channel import brown_noise, hum_noise, pink_noise, set_rms_dbfs, white_noise
from devicelab.audio.io import read_wav, resample, write_wav
from devicelab.core.seeding import child_rng
from devicelab.data.corpora import BuildContext, CorpusBuilder
from devicelab.data.corpora._sound import (
    SAMPLE_RATE_HZ,
    Recording,
    SourceGlob,
    SourceSet,
    load_recordings,
    loop_excerpt,
    pcm_sha1,
    procedural_recordings,
    split_at_silences,
)
from devicelab.data.corpora._speech import (
    as_json,
    deb_record,
    generated_record,
    log_progress,
    manifest_fields,
    run_tasks,
    stable_int,
    wheel_record,
    write_csv,
)
from devicelab.data.corpora.game_scenes import GCOMPRIS, LINCITY, MEGAGLEST, MINETEST, QUICK_BEDS

CLIP_SECONDS = 10.0
POOLS = ("A", "B-train", "B-val", "B-test")
BED_POOLS = POOLS[1:]
MEGAPACK = f"{MEGAGLEST}/techs/megapack/commondata/sounds"
FREEDESKTOP = "usr/share/sounds/freedesktop/stereo"
ASTERISK = "usr/share/asterisk/sounds"


def _mt(pattern: str) -> SourceGlob:
    return SourceGlob("minetest-data", f"{MINETEST}/{pattern}")


def _mg(pattern: str) -> SourceGlob:
    return SourceGlob("megaglest-data", f"{MEGAGLEST}/{pattern}")


def _gc(bundle: str, inner: str) -> SourceGlob:
    return SourceGlob("gcompris-qt-data", f"{GCOMPRIS}/{bundle}!{inner}")


# corpora.md, game-events (quick sources); Speech is handled apart (persons, TTS)
QUICK_EVENTS: dict[str, list[SourceGlob]] = {
    "Alarm_bell": [
        SourceGlob("sound-theme-freedesktop", f"{FREEDESKTOP}/bell.oga"),
        SourceGlob("sound-theme-freedesktop", f"{FREEDESKTOP}/alarm-clock-elapsed.oga"),
        SourceGlob("sound-theme-freedesktop", f"{FREEDESKTOP}/phone-*.oga"),
        SourceGlob("oxygen-sounds", "usr/share/sounds/Oxygen-Im-Phone-Ring.ogg"),
        SourceGlob("oxygen-sounds", "usr/share/sounds/Oxygen-Sys-Warning.ogg"),
        SourceGlob("oxygen-sounds", "usr/share/sounds/Oxygen-Im-Nudge.ogg"),
        _gc("memory-sound.rcc", "*LRRing_*"),
        _gc("memory-sound.rcc", "*LRBuddhist_gong_*"),
    ],
    "Canine": [
        _gc("explore_farm_animals.rcc", "*dog.ogg"),
        _gc("memory-sound.rcc", "*LRBark_*"),
        _mg("tilesets/*/sounds/wolf.wav"),
    ],
    "Door": [
        _mt("doors/sounds/doors_*.ogg"),
        _mt("default/sounds/default_chest_*.ogg"),
        _mt("xpanes/sounds/xpanes_*.ogg"),
        _gc("memory-sound.rcc", "*LRDoor_Open_*"),
        _gc("canal_lock.rcc", "*door_*.wav"),
        SourceGlob("lincity-ng-data", f"{LINCITY}/Window*.wav"),
    ],
    "Engine": [
        _gc("memory-sound.rcc", "*LRStartAndStopCarEngine*"),
        _gc("memory-sound.rcc", "*LRTrain_slowing_down*"),
        _mt("carts/sounds/carts_cart_moving.*.ogg"),
        _mg("techs/megapack/commondata/sounds/catapult_walk*.wav"),
    ],
    "Explosion": [
        _mt("tnt/sounds/tnt_explode.ogg"),
        SourceGlob("lincity-ng-data", f"{LINCITY}/RocketExplosion*.wav"),
        _gc("memory-sound.rcc", "*LRFireballs_*"),
        _mg("techs/megapack/commondata/sounds/tech_building_fall*.wav"),
    ],
    "Farm_animal": [
        _gc("explore_farm_animals.rcc", "*/cow.ogg"),
        _gc("explore_farm_animals.rcc", "*/horse.ogg"),
        _gc("explore_farm_animals.rcc", "*/chickens.ogg"),
        _gc("explore_farm_animals.rcc", "*/duck.ogg"),
        _gc("explore_farm_animals.rcc", "*/pig.ogg"),
        _gc("explore_farm_animals.rcc", "*/sheep.ogg"),
        _mg("tilesets/*/sounds/chicken.wav"),
        _mg("tilesets/*/sounds/rooster.ogg"),
        _mg("tilesets/*/sounds/mudchute_cow_*.ogg"),
        _mg("techs/megapack/commondata/sounds/cow_*.wav"),
        _mg("techs/megapack/commondata/sounds/pig_*.wav"),
    ],
    "Footsteps": [_mt("default/sounds/default_*_footstep.*.ogg")],
    "Shout": [
        _mg(f"techs/megapack/commondata/sounds/{unit}_die*.wav")
        for unit in ("archer", "axe_thrower", "guard", "horseman", "swordman", "worker", "technician")
    ],
    "Tools": [
        _mt("default/sounds/default_dig_*.ogg"),
        _mt("default/sounds/default_dug_*.ogg"),
        _mt("default/sounds/default_place_node*.ogg"),
        _mt("default/sounds/default_tool_breaks.*.ogg"),
        _mg("techs/megapack/commondata/sounds/worker_mine*.wav"),
        _mg("techs/megapack/commondata/sounds/technician_build*.wav"),
    ],
}
LUGARU = "usr/share/games/lugaru/Sounds"
SCORCHED = "usr/share/games/scorched3d/data/globalmods/none/data/wav"  # the GPL-2+ mod only (not apoc/)
WESNOTH = "usr/share/games/wesnoth/1.16/data/core/sounds"
BTANKS = "usr/share/games/btanks/data/sounds"
# --extras more-sources: recorded sources from six more packages for the classes with the fewest recordings
# (docs/corpora/sound.md, "More recorded sources per class"); appended to QUICK_EVENTS, so every pool changes
MORE_EVENTS: dict[str, list[SourceGlob]] = {
    "Alarm_bell": [
        SourceGlob("heroes-sound-effects", "usr/share/games/heroes/sfx/clock0*.wav"),
        SourceGlob("tuxmath-data", "usr/share/tuxmath/sounds/towerclock.wav"),
        SourceGlob("tuxmath-data", "usr/share/tuxmath/sounds/alarm.wav"),
    ],
    "Canine": [
        *(SourceGlob("lugaru-data", f"{LUGARU}/{name}*.ogg") for name in ("Bark", "Growl", "Snarl")),
        SourceGlob("scorched3d-data", f"{SCORCHED}/misc/wolf.wav"),
        SourceGlob("wesnoth-1.16-data", f"{WESNOTH}/wolf-*.ogg"),
    ],
    "Explosion": [
        *(
            SourceGlob("scorched3d-data", f"{SCORCHED}/explosions/{size}.wav")
            for size in ("small", "medium", "large", "xlarge", "tank")
        ),
        *(
            SourceGlob("btanks-data", f"{BTANKS}/{name}.ogg")
            for name in ("building-explosion*", "vehicle-explosion*", "explosion", "nuke-explosion")
        ),
        SourceGlob("tuxmath-data", "usr/share/tuxmath/sounds/explosion.wav"),
    ],
    "Shout": [SourceGlob("wesnoth-1.16-data", f"{WESNOTH}/{kind}-*.ogg") for kind in ("human", "dwarf")],
}
# Speech, real pools: the Asterisk persons of synth-speakers (en_US and es_MX Allison are one person)
SPEECH_PERSONS = {
    "allison": ("asterisk-core-sounds-en-wav", f"{ASTERISK}/en_US_f_Allison/*.wav"),
    "june": ("asterisk-core-sounds-fr-wav", f"{ASTERISK}/fr_CA_f_June/*.wav"),
    "ivr-ru": ("asterisk-core-sounds-ru-wav", f"{ASTERISK}/ru_RU_f_IvrvoiceRU/*.wav"),
}
SMOKE_EVENTS = {"Alarm_bell": "bell", "Door": "knock", "Engine": "buzz"}
SMOKE_BEDS = {"rain": "hiss", "traffic": "rumble", "birds": "chirps"}


@dataclass(frozen=True)
class MixStyle:
    """How one domain is mixed (corpora.md, game-events "Build")."""

    snr_db: tuple[float, float]
    reverb: tuple[float, float] | None  # scaper reverb amount, None for dry
    device_chain: bool  # sox band limit and compand
    prior_boost: tuple[tuple[str, float], ...] = ()  # label weights over the uniform prior
    recorded_background: bool = False


SYNTHETIC_STYLE = MixStyle(snr_db=(6.0, 30.0), reverb=None, device_chain=False)
REAL_STYLE = MixStyle(
    snr_db=(0.0, 20.0),
    reverb=(0.3, 0.8),
    device_chain=True,
    prior_boost=(("Speech", 2.0), ("Footsteps", 2.0)),
    recorded_background=True,
)
# subset -> (folder under audio/ and metadata/, pool, style)
SUBSETS = {
    "synthetic": ("train/synthetic", "A", "synthetic"),
    "weak": ("train/weak", "B-train", "real"),
    "unlabel_in_domain": ("train/unlabel_in_domain", "B-train", "real"),
    "validation": ("validation", "B-val", "real"),
    "public": ("eval/public", "B-test", "real"),
}


@dataclass(frozen=True)
class EventsParams:
    """Sizes of one profile (corpora.md, game-events "Sizes")."""

    sizes: tuple[tuple[str, int], ...] = (
        ("synthetic", 300),
        ("weak", 150),
        ("unlabel_in_domain", 450),
        ("validation", 100),
        ("public", 200),
    )
    events_per_clip: tuple[int, int] = (1, 4)
    max_polyphony: int = 3
    ref_db: float = -55.0
    min_event_s: float = 0.25  # DESED: shorter events are extended
    merge_gap_s: float = 0.15  # DESED: same-label events closer than this are merged
    max_event_s: float = 8.0
    semitones: tuple[float, ...] = (-1.0, 0.0, 1.0)  # synthetic domain: varispeed copies of pool A
    babble_db: float = -25.0  # real-like backgrounds: babble re. the bed
    babble_prompts: int = 6
    speech_prompts_per_person: int = 40
    tts_sentences: int = 30
    domain_gap: bool = True
    more_sources: bool = False  # --extras more-sources: MORE_EVENTS join the quick sources
    procedural: bool = False  # smoke: generated events and beds, no download
    procedural_recordings: int = 4


PROFILES: dict[str, EventsParams] = {
    "smoke": EventsParams(
        sizes=(("synthetic", 8), ("weak", 4), ("unlabel_in_domain", 4), ("validation", 4), ("public", 4)),
        procedural=True,
    ),
    "quick": EventsParams(),
    "full": EventsParams(
        sizes=(
            ("synthetic", 2000),
            ("weak", 1500),
            ("unlabel_in_domain", 6000),
            ("validation", 500),
            ("public", 1000),
        ),
        speech_prompts_per_person=200,
        tts_sentences=150,
    ),
}


# --- pools ----------------------------------------------------------------------------------------------


def deal_pools(units: list[str], seed: int, label: str, pools: tuple[str, ...] = POOLS) -> dict[str, str]:
    """Deal source units (files, persons, beds) of one label to pools: one each first, then the rest in
    turn, A and B-train taking two of every four (sed-tritrain.md §5: no file serves two pools)."""
    order = sorted(units, key=lambda u: stable_int(seed, "pool", label, u))
    cycle = [p for p in ("A", "B-train", "A", "B-train", "B-val", "B-test") if p in pools]
    out = {}
    for i, unit in enumerate(order):
        out[unit] = pools[i] if i < len(pools) else cycle[(i - len(pools)) % len(cycle)]
    return out


def event_clips(recordings: list[Recording], params: EventsParams) -> list[tuple[Recording, np.ndarray]]:
    """Cut each source file at its silences into events (over ``max_event_s`` they are cut)."""
    out = []
    for r in recordings:
        for start, end in split_at_silences(r.audio, max_event_s=params.max_event_s):
            out.append((r, r.audio[start:end]))
    return out


# --- mixing ---------------------------------------------------------------------------------------------


def import_scaper() -> Any:
    """scaper 1.6.5 on numpy 2 (stack.md, problem 1): ``np.Inf`` is set before the import; its sox backend
    is the ``sox`` package over the Debian sox binary (soxbindings can corrupt audio, scaper#157)."""
    import sys

    if not hasattr(np, "Inf"):
        np.Inf = np.inf  # type: ignore[attr-defined]
    if "scaper" not in sys.modules:
        blocked = sys.modules.get("soxbindings", "unset")
        sys.modules["soxbindings"] = None  # type: ignore[assignment]  # makes scaper fall back to pysox
        try:
            import scaper
        finally:
            if blocked == "unset":
                del sys.modules["soxbindings"]
            else:
                sys.modules["soxbindings"] = blocked  # type: ignore[assignment]
    import scaper

    return scaper


@dataclass(frozen=True)
class PlannedEvent:
    label: str
    file: str  # path of the staged event, relative to the bank
    onset_s: float
    duration_s: float
    snr_db: float


@dataclass(frozen=True)
class SoundscapePlan:
    subset: str
    name: str
    pool: str
    style: str
    background: str  # staged background file, relative to the bank
    background_start_s: float
    events: tuple[PlannedEvent, ...]
    reverb: float | None
    scaper_seed: int


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    points = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    depth = best = 0
    for _, step in points:
        depth += step
        best = max(best, depth)
    return best


def plan_soundscape(
    subset: str,
    index: int,
    pool: str,
    style_name: str,
    bank: dict[str, Any],
    params: EventsParams,
    seed: int,
) -> SoundscapePlan:
    """Every random choice of one soundscape, drawn from ``child_rng(seed, subset, index)``."""
    style = SYNTHETIC_STYLE if style_name == "synthetic" else REAL_STYLE
    rng = child_rng(seed, "soundscape", subset, index)
    labels = sorted(bank["foreground"][pool])
    boost = dict(style.prior_boost)
    weights = np.array([boost.get(label, 1.0) for label in labels])
    backgrounds = bank["background"][pool]
    background = backgrounds[int(rng.integers(len(backgrounds)))]
    events: list[PlannedEvent] = []
    for _ in range(int(rng.integers(params.events_per_clip[0], params.events_per_clip[1] + 1))):
        label = labels[int(rng.choice(len(labels), p=weights / weights.sum()))]
        files = bank["foreground"][pool][label]
        file, length_s = files[int(rng.integers(len(files)))]
        for _attempt in range(10):
            onset = float(rng.uniform(0.0, max(0.0, CLIP_SECONDS - min(length_s, CLIP_SECONDS) * 0.5)))
            duration = min(length_s, CLIP_SECONDS - onset)
            spans = [(e.onset_s, e.onset_s + e.duration_s) for e in events] + [(onset, onset + duration)]
            if _max_overlap(spans) <= params.max_polyphony:
                events.append(PlannedEvent(label, file, round(onset, 3), round(duration, 3), 0.0))
                break
    events = [replace(e, snr_db=round(float(rng.uniform(*style.snr_db)), 2)) for e in events]
    reverb = round(float(rng.uniform(*style.reverb)), 3) if style.reverb else None
    return SoundscapePlan(
        subset=subset,
        name=f"{subset}_{index:05d}.wav",
        pool=pool,
        style=style_name,
        background=background,
        background_start_s=0.25 * int(rng.integers(0, 7)),  # on the sample grid (sox trims exactly)
        events=tuple(events),
        reverb=reverb,
        scaper_seed=int(rng.integers(2**31 - 1)),
    )


def desed_annotations(
    events: list[tuple[float, float, str]], min_event_s: float, merge_gap_s: float
) -> list[tuple[float, float, str]]:
    """DESED's rules: events shorter than ``min_event_s`` are extended to it (within the clip), then
    same-label events less than ``merge_gap_s`` apart are merged."""
    extended = []
    for onset, offset, label in events:
        if offset - onset < min_event_s:
            offset = min(CLIP_SECONDS, onset + min_event_s)
            onset = min(onset, offset - min_event_s)
        extended.append((onset, offset, label))
    merged: list[tuple[float, float, str]] = []
    for label in sorted({e[2] for e in extended}):
        spans = sorted((a, b) for a, b, lab in extended if lab == label)
        current = list(spans[0])
        for a, b in spans[1:]:
            if a - current[1] < merge_gap_s:
                current[1] = max(current[1], b)
            else:
                merged.append((current[0], current[1], label))
                current = [a, b]
        merged.append((current[0], current[1], label))
    return sorted((round(a, 3), round(b, 3), lab) for a, b, lab in merged)


def _device_chain(path: Path) -> None:
    """Real-like device: sox band limit 100-6000 Hz and a light compander, in place (``-R -D``)."""
    tmp = path.with_name(f".{path.stem}.chain.wav")
    out = subprocess.run(
        ["sox", "-R", "-D", str(path), str(tmp), "sinc", "100-6000",
         "compand", "0.01,0.2", "6:-70,-70,-40,-34,0,-18", "0", "-90", "0.05"],
        capture_output=True, text=True,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"sox device chain failed on {path.name}: {out.stderr.strip()[-300:]}")
    tmp.replace(path)


@dataclass
class _MixTask:
    plans: list[SoundscapePlan]
    bank: str
    out: str
    params: EventsParams


def _mix(task: _MixTask) -> list[dict[str, Any]]:
    """Mix a batch of planned soundscapes with scaper; returns one record per soundscape."""
    import logging
    import warnings

    scaper = import_scaper()
    logging.getLogger("scaper").setLevel(logging.ERROR)
    bank, out, p = Path(task.bank), Path(task.out), task.params
    records = []
    for plan in task.plans:
        folder = SUBSETS[plan.subset][0]
        sc = scaper.Scaper(
            CLIP_SECONDS,
            str(bank / plan.pool / "foreground"),
            str(bank / plan.pool / "background"),
            random_state=plan.scaper_seed,
        )
        sc.sr, sc.n_channels, sc.ref_db = SAMPLE_RATE_HZ, 1, p.ref_db
        bg_label = Path(plan.background).parent.name
        sc.add_background(
            label=("const", bg_label),
            source_file=("const", str(bank / plan.background)),
            source_time=("const", plan.background_start_s),
        )
        for e in plan.events:
            sc.add_event(
                label=("const", e.label),
                source_file=("const", str(bank / e.file)),
                source_time=("const", 0.0),
                event_time=("const", e.onset_s),
                event_duration=("const", e.duration_s),
                snr=("const", e.snr_db),
                pitch_shift=None,
                time_stretch=None,
            )
        audio_path = out / "audio" / folder / plan.name
        jams_path = out / "jams" / plan.subset / plan.name.replace(".wav", ".jams")
        audio_path.parent.mkdir(parents=True, exist_ok=True)
        jams_path.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, _, annotations, _ = sc.generate(
                str(audio_path),
                str(jams_path),
                allow_repeated_label=True,
                allow_repeated_source=True,
                reverb=plan.reverb,
                fix_clipping=True,
                disable_sox_warnings=True,
                disable_instantiation_warnings=True,
            )
        if plan.style == "real" and REAL_STYLE.device_chain:
            _device_chain(audio_path)
        # scaper writes float wav; the corpus is 16-bit PCM
        audio, _ = read_wav(audio_path)
        write_wav(audio_path, audio, SAMPLE_RATE_HZ)
        _relative_jams(jams_path, out)
        strong = desed_annotations(
            [(float(a), float(b), str(lab)) for a, b, lab in annotations], p.min_event_s, p.merge_gap_s
        )
        records.append({"plan": plan, "strong": strong})
    return records


def _relative_jams(path: Path, out: Path) -> None:
    """Make the bank paths in a jams file relative to the corpus root (the build folder is renamed)."""
    text = path.read_text().replace(str(out) + "/", "")
    path.write_text(text)


# --- staging the banks ----------------------------------------------------------------------------------


def _stage(path: Path, audio: np.ndarray) -> None:
    write_wav(path, audio, SAMPLE_RATE_HZ)


def _speech_sources(ctx: BuildContext, params: EventsParams) -> tuple[dict[str, list[Recording]], list, list]:
    """Speech: TTS sentences (espeak-ng) for pool A, one Asterisk person for each B pool."""
    by_person: dict[str, list[Recording]] = {}
    sources, warnings = [], []
    for person, (package, pattern) in SPEECH_PERSONS.items():
        pkg = ctx.fetcher.fetch(package)
        files = sorted(pkg.root.glob(pattern))
        chosen = sorted(files, key=lambda f: stable_int(ctx.seed, "prompt", person, f.name))
        recs = []
        for f in chosen:
            audio, _ = read_wav(f, SAMPLE_RATE_HZ)
            if 1.0 <= len(audio) / SAMPLE_RATE_HZ <= 6.0:
                member = f.relative_to(pkg.root).as_posix()
                recs.append(Recording("Speech", package, pkg.version, member, audio, pcm_sha1(audio), person))
            if len(recs) >= params.speech_prompts_per_person:
                break
        by_person[person] = recs
        sources.append(deb_record(pkg, [r.member for r in recs]))
    try:
        from devicelab.data.corpora._speech import render
        from devicelab.data.speech.texts import sentences

        texts = sorted(sentences(), key=lambda s: stable_int(ctx.seed, "tts", s))[: params.tts_sentences]
        voices = ["en-us+m3", "en-gb-x-rp+f2", "en+m1", "en-us+f4"]
        items = [(t, voices[i % len(voices)], 1.0, 1.0) for i, t in enumerate(texts)]
        tts = []
        for (text, voice, _, _), r in zip(items, render("espeak-ng", items, ctx.fetcher.cache)):
            audio = resample(r.audio, r.sample_rate_hz, SAMPLE_RATE_HZ)
            tts.append(
                Recording(
                    "Speech", "espeakng-loader", "", f"tts:{voice}:{text}", audio, pcm_sha1(audio), "tts"
                )
            )
        by_person["tts"] = tts
        sources.append(wheel_record("espeakng-loader", ["GPL-3+"]))
    except Exception as e:  # a missing engine leaves pool A without Speech
        warnings.append(f"Speech: no TTS sentences for the synthetic pool ({e})")
    return by_person, sources, warnings


def _noise_backgrounds(bank: Path, seed: int, n_per_kind: int = 3) -> list[str]:
    """Stationary generated backgrounds of the synthetic domain: white, pink, brown, hum (12 s each)."""
    n = int(12 * SAMPLE_RATE_HZ)
    staged = []
    for kind in ("white", "pink", "brown", "hum"):
        for k in range(n_per_kind):
            rng = child_rng(seed, "noise-bed", kind, k)
            if kind == "hum":
                noise = hum_noise(n, SAMPLE_RATE_HZ, rng, mains_hz=float(rng.choice([50.0, 60.0])))
            else:
                noise = {"white": white_noise, "pink": pink_noise, "brown": brown_noise}[kind](n, rng)
            rel = f"A/background/noise/{kind}_{k}.wav"
            _stage(bank / rel, set_rms_dbfs(noise, -30.0))
            staged.append(rel)
    return staged


def stage_banks(ctx: BuildContext, params: EventsParams, bank: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Load the sources, deal them into pools and write scaper's banks; returns the bank index and the
    manifest fields (sources, pool membership, warnings)."""
    warnings: list[str] = []
    if params.procedural:
        events = procedural_recordings(SMOKE_EVENTS, params.procedural_recordings, 2.0, ctx.seed)
        beds = procedural_recordings(SMOKE_BEDS, 1, 12.0, ctx.seed)
        persons: dict[str, list[Recording]] = {}
        sources = events.sources
    else:
        table = {label: list(globs) for label, globs in QUICK_EVENTS.items()}
        if params.more_sources:
            for label, globs in MORE_EVENTS.items():
                table[label] += globs
        table.update({f"bed:{s}": globs for s, globs in QUICK_BEDS.items()})
        loaded = load_recordings(ctx.fetcher, table, min_seconds=0.1, trim=False)
        events = SourceSet({k: v for k, v in loaded.recordings.items() if not k.startswith("bed:")})
        beds = SourceSet(
            {
                k[4:]: [r for r in v if r.seconds >= 3.0]
                for k, v in loaded.recordings.items()
                if k.startswith("bed:")
            }
        )
        persons, speech_sources, speech_warnings = _speech_sources(ctx, params)
        sources = loaded.sources + speech_sources
        warnings += loaded.warnings + speech_warnings

    index: dict[str, Any] = {"foreground": {p: {} for p in POOLS}, "background": {p: [] for p in POOLS}}
    membership: dict[str, dict[str, list[str]]] = {}
    recordings_per_label: dict[str, dict[str, int]] = {}
    for label in sorted(events.recordings):
        recs = events.recordings[label]
        if len(recs) < len(POOLS):
            warnings.append(f"label {label} dropped: {len(recs)} source recordings < {len(POOLS)}")
            continue
        pools = deal_pools([r.source_id for r in recs], ctx.seed, label)
        membership[label] = {p: sorted(u for u, q in pools.items() if q == p) for p in POOLS}
        recordings_per_label[label] = dict(Counter(pools.values()))
        for r, clip in event_clips(recs, params):
            _stage_event(bank, index, label, pools[r.source_id], clip, params)
    if persons:
        speech_pools = _person_pools(persons, ctx.seed)
        if "tts" in persons:
            speech_pools["tts"] = "A"
        if len(speech_pools) >= len(POOLS):
            membership["Speech"] = {pool: [p for p, q in speech_pools.items() if q == pool] for pool in POOLS}
            recordings_per_label["Speech"] = {speech_pools[p]: len(recs) for p, recs in persons.items()}
            for person, recs in persons.items():
                for r in recs:
                    _stage_event(bank, index, "Speech", speech_pools[person], r.audio, params)
        else:
            warnings.append("label Speech dropped: fewer than four persons (TTS + three Asterisk voices)")

    for rel in _noise_backgrounds(bank, ctx.seed):
        index["background"]["A"].append(rel)
    bed_units = {r.source_id: r for rs in beds.recordings.values() for r in rs}
    bed_pools = deal_pools(sorted(bed_units), ctx.seed, "beds", BED_POOLS)
    real_persons = {pool: person for person, pool in _person_pools(persons, ctx.seed).items()}
    for source_id, pool in sorted(bed_pools.items()):
        r = bed_units[source_id]
        babble_from = persons.get(real_persons.get(pool, ""), [])
        audio = _bed_with_babble(r, babble_from, params, ctx.seed)
        rel = f"{pool}/background/{r.label}/{_safe_name(r)}.wav"
        _stage(bank / rel, audio)
        index["background"][pool].append(rel)
    membership["backgrounds"] = {p: sorted(u for u, q in bed_pools.items() if q == p) for p in BED_POOLS}
    if not params.domain_gap:  # sanity check: every subset mixed over the synthetic backgrounds
        for p in BED_POOLS:
            index["background"][p] = []
            for rel in index["background"]["A"]:
                dest = rel.replace("A/", f"{p}/", 1)
                (bank / dest).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(bank / rel, bank / dest)
                index["background"][p].append(dest)
    fields = {
        "sources": sources,
        "pools": membership,
        "recordings_per_label": recordings_per_label,
        "warnings": warnings,
    }
    return index, fields


def _person_pools(persons: dict[str, list[Recording]], seed: int) -> dict[str, str]:
    real = sorted((p for p in persons if p != "tts"), key=lambda u: stable_int(seed, "person", u))
    return {p: BED_POOLS[i] for i, p in enumerate(real[: len(BED_POOLS)])}


def _safe_name(r: Recording) -> str:
    stem = r.member.replace("!", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return f"{r.package}-{stem}-{r.pcm_sha1[:8]}"


def _stage_event(
    bank: Path,
    index: dict[str, Any],
    label: str,
    pool: str,
    clip: np.ndarray,
    params: EventsParams,
) -> None:
    """Write one event (pool A: one copy per varispeed step) and list it with its length."""
    digest = pcm_sha1(clip)[:10]
    steps = params.semitones if pool == "A" else (0.0,)
    files = index["foreground"][pool].setdefault(label, [])
    for step in steps:
        audio = clip
        if step:
            factor = 2 ** (step / 12)  # varispeed: pitch and tempo together
            audio = resample(clip, int(round(SAMPLE_RATE_HZ * factor)), SAMPLE_RATE_HZ)
        rel = f"{pool}/foreground/{label}/{digest}_{step:+.0f}st.wav"
        _stage(bank / rel, set_rms_dbfs(audio, -20.0))
        files.append((rel, round(len(audio) / SAMPLE_RATE_HZ, 3)))


def _bed_with_babble(r: Recording, babble: list[Recording], params: EventsParams, seed: int) -> np.ndarray:
    """A real-like background: the bed looped to 12 s plus low babble (prompts of the pool's person)."""
    n = int(12 * SAMPLE_RATE_HZ)
    bed = set_rms_dbfs(loop_excerpt(r.audio, 0, n), -30.0)
    if not babble:
        return bed
    rng = child_rng(seed, "babble", r.source_id)
    talk = np.zeros(n, dtype=np.float32)
    for _ in range(params.babble_prompts):
        prompt = babble[int(rng.integers(len(babble)))].audio[:n]
        start = int(rng.integers(0, n - len(prompt) + 1))
        talk[start : start + len(prompt)] += prompt
    return (bed + set_rms_dbfs(talk, -30.0 + params.babble_db)).astype(np.float32)


# --- build ----------------------------------------------------------------------------------------------


def _write_metadata(out: Path, records: list[dict[str, Any]], params: EventsParams) -> dict[str, Any]:
    by_subset: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        by_subset.setdefault(rec["plan"].subset, []).append(rec)
    meta = out / "metadata"
    counts: dict[str, Any] = {}
    for subset, recs in by_subset.items():
        folder = SUBSETS[subset][0]
        strong_rows = []
        for rec in recs:
            name = rec["plan"].name
            if rec["strong"]:
                strong_rows += [f"{name}\t{a:.3f}\t{b:.3f}\t{lab}" for a, b, lab in rec["strong"]]
            else:
                strong_rows.append(f"{name}\t\t\t")
        strong_text = "filename\tonset\toffset\tevent_label\n" + "".join(f"{r}\n" for r in strong_rows)
        tsv = meta / f"{folder}.tsv" if subset in ("synthetic", "weak", "unlabel_in_domain") else None
        if subset in ("validation", "public"):
            tsv = meta / ("validation/validation.tsv" if subset == "validation" else "eval/public.tsv")
        assert tsv is not None
        tsv.parent.mkdir(parents=True, exist_ok=True)
        if subset in ("synthetic", "validation", "public"):
            tsv.write_text(strong_text)
        elif subset == "weak":
            lines = [f"{rec['plan'].name}\t{','.join(sorted({e[2] for e in rec['strong']}))}" for rec in recs]
            tsv.write_text("filename\tevent_labels\n" + "".join(f"{x}\n" for x in lines))
        else:
            tsv.write_text("filename\n" + "".join(f"{rec['plan'].name}\n" for rec in recs))
        if subset in ("weak", "unlabel_in_domain"):
            oracle = meta / "oracle" / f"{subset}.tsv"
            oracle.parent.mkdir(parents=True, exist_ok=True)
            oracle.write_text(strong_text)
        counts[subset] = {
            "clips": len(recs),
            "events": dict(sorted(Counter(e[2] for rec in recs for e in rec["strong"]).items())),
        }
    return counts


EXTRAS = ("domain-gap-off", "more-sources")


def build(ctx: BuildContext) -> dict[str, Any]:
    unknown = [e for e in ctx.extras if e not in EXTRAS]
    if unknown:
        raise ValueError(f"game-events: unknown extra(s) {', '.join(unknown)}; valid: {', '.join(EXTRAS)}")
    params = PROFILES[ctx.profile]
    if "domain-gap-off" in ctx.extras:
        params = replace(params, domain_gap=False)
    if "more-sources" in ctx.extras:
        params = replace(params, more_sources=True)
    bank = ctx.out / "bank"
    index, fields = stage_banks(ctx, params, bank)
    plans = []
    for subset, size in params.sizes:
        _, pool, style = SUBSETS[subset]
        if not params.domain_gap:
            style = "synthetic"
        plans += [plan_soundscape(subset, i, pool, style, index, params, ctx.seed) for i in range(size)]
    batches = [plans[i : i + 10] for i in range(0, len(plans), 10)]
    tasks = [_MixTask(batch, str(bank), str(ctx.out), params) for batch in batches]
    ctx.log(f"game-events ({ctx.profile}): {len(plans)} soundscapes, {ctx.workers} worker(s)")
    results = run_tasks(_mix, tasks, ctx.workers, log_progress(ctx.log, len(tasks), "batches"))
    records = [rec for result in results for rec in result]
    counts = _write_metadata(ctx.out, records, params)
    write_csv(
        ctx.out / "provenance.csv",
        [
            {
                "path": f"audio/{SUBSETS[rec['plan'].subset][0]}/{rec['plan'].name}",
                "pool": rec["plan"].pool,
                "style": rec["plan"].style,
                "background": rec["plan"].background,
                "events": as_json([asdict(e) for e in rec["plan"].events]),
                "reverb": rec["plan"].reverb if rec["plan"].reverb is not None else "",
            }
            for rec in records
        ],
        ["path", "pool", "style", "background", "events", "reverb"],
    )
    (ctx.out / "bank" / "index.json").write_text(json.dumps(index, indent=1, sort_keys=True))
    scaper = import_scaper()
    sources = fields["sources"]
    if params.procedural:
        sources = [*sources, generated_record("stationary noise backgrounds (white, pink, brown, hum)")]
    labels = sorted({lab for rec in records for _, _, lab in rec["strong"]})
    return manifest_fields(
        "game_events",
        params,
        styles={"synthetic": asdict(SYNTHETIC_STYLE), "real": asdict(REAL_STYLE)},
        domain_gap=params.domain_gap,
        labels=labels,
        pools=fields["pools"],
        recordings_per_label=fields["recordings_per_label"],
        sources=sources,
        tools={"scaper": scaper.__version__},
        counts=counts,
        warnings=fields["warnings"],
    )


def sources(profile: str, extras: tuple[str, ...]) -> list[str]:
    params = PROFILES[profile]
    if params.procedural:
        return []
    tables = (
        *QUICK_EVENTS.values(),
        *QUICK_BEDS.values(),
        *(MORE_EVENTS.values() if "more-sources" in extras else ()),
    )
    names = {g.package for globs in tables for g in globs}
    names |= {package for package, _ in SPEECH_PERSONS.values()}
    return sorted(names)


BUILDER = CorpusBuilder(
    name="game-events",
    description="10 s soundscapes of game sound events mixed with scaper (DESED / DCASE2019 task 4 layout)",
    build=build,
    sources=sources,
)
