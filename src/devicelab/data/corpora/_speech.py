"""What the three speech corpora share: voices and pseudo-speakers, which engines run, per-item random
streams, rendering to 16 kHz, noise files, source records and tool versions, and a deterministic process pool.
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import importlib.metadata
import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import scipy
import soundfile as sf

from devicelab.audio.channel import (
    brown_noise,
    hum_noise,
    pink_noise,
    set_rms_dbfs,
    trim_silence,
    white_noise,
)
from devicelab.audio.io import read_wav, resample, write_wav
from devicelab.core.seeding import child_rng
from devicelab.data.corpora._workers import worker_pool
from devicelab.data.debs import DebFetcher, MissingToolError, UnpackedPackage, read_licences
from devicelab.data.speech.engines import (
    FESTIVAL_PACKAGES,
    EspeakEngine,
    PicoEngine,
    Rendering,
    SpeechEngine,
    festival_voice_packages,
    get_engine,
)
from devicelab.data.speech.phones import Segment, scale_segments, to_timit

if TYPE_CHECKING:
    from devicelab.data.corpora import BuildContext

SAMPLE_RATE_HZ = 16000

ESPEAK_ACCENTS = ("en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-us-nyc")
# espeak-ng variant files used as voices: numbered and klatt variants plus named ones that sound like a
# plain talker (robotic, whispering and novelty variants are left out).
ESPEAK_VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4", "klatt5", "klatt6",
    "adam", "Alex", "Alicia", "Andrea", "andy", "annie", "anika", "antonio", "aunty", "belinda", "benjamin",
    "boris", "caleb", "david", "Diogo", "ed", "edward", "Gene", "grandma", "grandpa", "gustave", "Henrique",
    "Hugo", "ian", "iven", "john", "Lee", "linda", "Marco", "Mario", "max", "Michael", "michel", "Mike",
    "norbert", "paul", "pedro", "quincy", "Reed", "rob", "robert", "sandro", "shelby", "steph", "travis",
    "victor", "zac",
)  # fmt: skip
# the variant files among them that sound female
FEMALE_VARIANTS = frozenset({
    "f1", "f2", "f3", "f4", "f5",
    "Alicia", "Andrea", "annie", "anika", "aunty", "belinda", "grandma", "linda", "shelby", "steph",
})  # fmt: skip
FLITE_VOICES = ("kal16", "awb", "rms", "slt")
# one recorded person per diphone / HTS / clustergen voice;
# flite kal16 = festival kal, flite slt = festival slt
PERSON = {
    ("flite", "kal16"): "kal",
    ("flite", "awb"): "awb",
    ("flite", "rms"): "rms",
    ("flite", "slt"): "slt",
    ("festival", "kal_diphone"): "kal",
    ("festival", "ked_diphone"): "ked",
    ("festival", "cmu_us_slt_arctic_hts"): "slt",
    ("festival", "lp_diphone"): "lp",  # Italian, reads respelled English
    ("festival", "upc_ca_ona_hts"): "ona",  # Catalan, reads respelled English
    ("mbrola", "us1"): "us1",
    ("mbrola", "us2"): "us2",
    ("mbrola", "us3"): "us3",
    ("mbrola", "en1"): "en1",
    ("pico", "en-US"): "lh0",  # SVOX Pico's American English woman
    ("pico", "en-GB"): "kh0",  # SVOX Pico's British English woman
    ("pico", "es-ES"): "zl0",  # SVOX Pico's Spanish woman, reads respelled English
    ("pico", "it-IT"): "cm0",  # SVOX Pico's Italian woman, reads respelled English
    ("pico", "fr-FR"): "nk0",  # SVOX Pico's French woman, reads respelled English
    ("pico", "de-DE"): "gl0",  # SVOX Pico's German woman, reads respelled English
}
MBROLA_VOICES = ("us1", "us2", "us3", "en1")
# recorded women: slt, mbrola us1, festival lp and ona, every Pico voice (lh0, kh0, zl0, cm0, nk0, gl0)
FEMALE_PERSONS = frozenset({"slt", "us1", "lp", "ona", "lh0", "kh0", "zl0", "cm0", "nk0", "gl0"})

# Licences of the sources whose Debian copyright file is not machine-readable (from corpora.md, Licences).
KNOWN_LICENCES = {
    "espeakng-loader": ["GPL-3+"],
    "flite": ["BSD-style (flite)"],
    "festival": ["X11-style"],
    "libestools2.5": ["X11-style"],
    "festlex-cmu": ["public-domain (CMUdict)"],
    "festlex-poslex": ["X11-style"],
    "festvox-kallpc16k": ["X11-style"],
    "festvox-kdlpc16k": ["X11-style"],
    "festvox-us-slt-hts": ["BSD-3-clause"],
    "festvox-italp16k": ["GPL-2+"],
    "festlex-ifd": ["GPL-2+"],
    "asterisk-core-sounds-en-wav": ["CC-BY-SA-3.0"],
    "mbrola": ["AGPL-3"],
    "asterisk-prompt-fr-armelle": ["GPL-2+"],
    "asterisk-prompt-es-co": ["GPL-2+"],
}
_LICENCE_NAME = re.compile(r"[A-Za-z0-9.+_-]+(?: (?:or|and|with) [A-Za-z0-9.+_ -]+)?")


def clean_licences(name: str, found: list[str]) -> list[str]:
    """Licence short names of a package: the DEP-5 names that parse, else the known licence."""
    names = [f for f in found if _LICENCE_NAME.fullmatch(f) and len(f) < 40]
    return names or KNOWN_LICENCES.get(name, ["unknown"])


def stable_int(*keys: Any) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(map(str, keys)).encode()).digest()[:8], "little")


def short_id(*parts: Any) -> str:
    """First 8 hex digits of the sha1 of the parts (a pseudo-speaker id as in Speech Commands)."""
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()[:8]


@dataclass(frozen=True)
class Voice:
    """A base voice: engine and voice (or accent + variant file); ``person`` names who was recorded."""

    engine: str
    voice: str
    variant: str = ""
    person: str = ""

    @property
    def key(self) -> str:
        return f"{self.engine}:{self.voice}"

    @property
    def split_unit(self) -> str:
        """What a split keeps together: the recorded person, or the espeak-ng variant file."""
        return f"person:{self.person}" if self.person else f"variant:{self.variant}"


def espeak_voice(accent: str, variant: str) -> Voice:
    return Voice("espeak-ng", f"{accent}+{variant}", variant=variant, person="")


def recorded_voice(engine: str, voice: str) -> Voice:
    return Voice(engine, voice, variant="", person=PERSON[(engine, voice)])


def pick_espeak_variants(seed: int, n: int) -> list[str]:
    """``n`` variant files, a seeded choice from :data:`ESPEAK_VARIANTS` (in the list's order)."""
    order = sorted(ESPEAK_VARIANTS, key=lambda v: stable_int(seed, "variant", v))
    chosen = set(order[:n])
    return [v for v in ESPEAK_VARIANTS if v in chosen]


def accent_order(seed: int, tag: str, variant: str) -> list[str]:
    """:data:`ESPEAK_ACCENTS` in a seeded order for one variant file (``tag`` keeps builders apart)."""
    return sorted(ESPEAK_ACCENTS, key=lambda a: stable_int(seed, tag, variant, a))


class VoiceChoice(Protocol):
    """What a builder's profile says about the recorded-person voices it uses.

    A profile may also name ``pico_voices``: Pico gives no phone timings, so only builders that need audio
    alone (synth-commands) have that field; the others never get Pico voices."""

    @property
    def flite_voices(self) -> tuple[str, ...]: ...
    @property
    def festival_voices(self) -> tuple[str, ...]: ...
    @property
    def mbrola_voices(self) -> tuple[str, ...]: ...


def pico_voices(choice: VoiceChoice) -> tuple[str, ...]:
    """The Pico voices of a profile (none where its parameters have no ``pico_voices``)."""
    return tuple(getattr(choice, "pico_voices", ()))


def recorded_voices(choice: VoiceChoice) -> list[Voice]:
    """The flite, festival, mbrola and Pico voices of a profile, in that order."""
    return (
        [recorded_voice("flite", v) for v in choice.flite_voices]
        + [recorded_voice("festival", v) for v in choice.festival_voices]
        + [recorded_voice("mbrola", v) for v in choice.mbrola_voices]
        + [recorded_voice("pico", v) for v in pico_voices(choice)]
    )


def split_variants(seed: int, variants: list[str], fractions: dict[str, float]) -> dict[str, str]:
    """Deal variant files to splits: each split in ``fractions`` gets max(1, round(f * n)), the rest train."""
    order = sorted(variants, key=lambda v: stable_int(seed, "split", v))
    out, i = {}, 0
    for split, fraction in fractions.items():
        k = max(1, round(fraction * len(order)))
        for v in order[i : i + k]:
            out[v] = split
        i += k
    for v in order[i:]:
        out[v] = "train"
    return out


# --- engines in worker processes ------------------------------------------------------------------------

_ENGINES: dict[str, SpeechEngine] = {}


def engine_for(name: str, cache: Path | None = None) -> SpeechEngine:
    """One engine object per process (libespeak-ng has global state)."""
    if name not in _ENGINES:
        _ENGINES[name] = get_engine(name, DebFetcher(cache=cache) if cache else None)
    return _ENGINES[name]


def usable_engines(choice: VoiceChoice, ctx: BuildContext) -> tuple[list[str], list[str]]:
    """The engines a profile needs (espeak-ng, and each other engine it names voices of) that can run, and
    warnings: a missing engine fails quick and full, and is skipped with a warning in smoke."""
    wanted = {
        "espeak-ng": True,
        "flite": bool(choice.flite_voices),
        "festival": bool(choice.festival_voices),
        "mbrola": bool(choice.mbrola_voices),
        "pico": bool(pico_voices(choice)),
    }
    engines, warnings = [], []
    for name in (n for n, needed in wanted.items() if needed):
        try:
            engine_for(name, ctx.fetcher.cache).check()
        except MissingToolError as e:
            if ctx.profile != "smoke":
                raise
            warnings.append(f"engine {name} skipped: {e}")
            continue
        engines.append(name)
    return engines, warnings


def start_work_unit() -> None:
    """Call at the start of every work unit: a fresh libespeak-ng and fresh Pico engines, so the unit's
    renderings depend only on its own items (not on what the worker rendered before)."""
    EspeakEngine.reset()
    PicoEngine.reset()


@dataclass
class Clip:
    """A rendering at 16 kHz with its TIMIT segments (61-set) at 16 kHz."""

    audio: np.ndarray  # (T,) float32
    segments: list[Segment]
    rendering: Rendering


def to_16k(rendering: Rendering, table: str | None = None) -> Clip:
    """Resample a rendering to 16 kHz and move its phone boundaries with it."""
    audio = resample(rendering.audio, rendering.sample_rate_hz, SAMPLE_RATE_HZ)
    segments = []
    if table is not None:
        segments = scale_segments(
            to_timit(rendering, table), rendering.sample_rate_hz, SAMPLE_RATE_HZ, len(audio)
        )
    return Clip(audio.astype(np.float32), segments, rendering)


def render(
    engine_name: str, items: list[tuple[str, str, float, float]], cache: Path | None = None
) -> list[Rendering]:
    """Render ``(text, voice, speed, pitch)`` items with one engine (batched where the engine batches)."""
    return engine_for(engine_name, cache).synth_many(items)


def trimmed(audio: np.ndarray) -> np.ndarray:
    start, end = trim_silence(audio, -40.0)
    return audio[start:end]


# --- process pool ---------------------------------------------------------------------------------------


def run_tasks(
    fn: Callable[[Any], Any],
    tasks: list[Any],
    workers: int,
    progress: Callable[[int, int], None] | None = None,
) -> list[Any]:
    """``[fn(t) for t in tasks]`` on ``workers`` forked processes; results in task order, so output never
    depends on ``workers``."""
    if workers <= 1 or len(tasks) <= 1:
        results = []
        for i, t in enumerate(tasks):
            results.append(fn(t))
            if progress:
                progress(i + 1, len(tasks))
        return results
    with worker_pool(workers) as pool:
        results = []
        for i, r in enumerate(pool.map(fn, tasks, chunksize=1)):
            results.append(r)
            if progress:
                progress(i + 1, len(tasks))
        return results


def log_progress(log: Callable[[str], None], total: int, unit: str) -> Callable[[int, int], None]:
    """A :func:`run_tasks` progress callback that logs after every tenth of ``total`` tasks and the last."""
    step = max(1, total // 10)

    def report(done: int, n: int) -> None:
        if done % step == 0 or done == n:
            log(f"  {done}/{n} {unit}")

    return report


# --- noise files ----------------------------------------------------------------------------------------

MINETEST_LOOPS = {  # name -> member paths under the minetest_game mods folder
    "water": [
        "env_sounds/sounds/env_sounds_water.1.ogg",
        "env_sounds/sounds/env_sounds_water.2.ogg",
        "env_sounds/sounds/env_sounds_water.3.ogg",
        "env_sounds/sounds/env_sounds_water.4.ogg",
    ],
    "fire": [
        "fire/sounds/fire_fire.1.ogg",
        "fire/sounds/fire_fire.2.ogg",
        "fire/sounds/fire_fire.3.ogg",
        "fire/sounds/fire_large.ogg",
        "fire/sounds/fire_small.ogg",
    ],
}
MINETEST_MODS = "usr/share/games/minetest/games/minetest_game/mods"


def pcm_hash(audio: np.ndarray) -> str:
    return hashlib.sha256((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()).hexdigest()


def loop_to_length(takes: list[np.ndarray], n: int, crossfade: int) -> np.ndarray:
    """Concatenate takes (cycling) with linear crossfades until ``n`` samples."""
    out = np.zeros(0, dtype=np.float32)
    fade_in = np.linspace(0.0, 1.0, crossfade, dtype=np.float32)
    i = 0
    while len(out) < n:
        take = takes[i % len(takes)]
        i += 1
        if len(out) >= crossfade and len(take) > 2 * crossfade:
            head = out[:-crossfade]
            mixed = out[-crossfade:] * (1 - fade_in) + take[:crossfade] * fade_in
            out = np.concatenate([head, mixed, take[crossfade:]])
        else:
            out = np.concatenate([out, take])
    return out[:n]


def write_noise_files(
    folder: Path, seed: int, seconds: float, minetest: UnpackedPackage | None, level_dbfs: float = -26.0
) -> tuple[list[dict], list[str]]:
    """Six 60 s noise files: white, pink, brown, 50 Hz hum with hiss (generated) and, when minetest-data
    is given, its water and fire loops. Returns provenance rows and the minetest members used."""
    n = int(seconds * SAMPLE_RATE_HZ)
    rows, members = [], []
    generated = {
        "white_noise": lambda r: white_noise(n, r),
        "pink_noise": lambda r: pink_noise(n, r),
        "brown_noise": lambda r: brown_noise(n, r),
        "hum_50hz_hiss": lambda r: hum_noise(n, SAMPLE_RATE_HZ, r, mains_hz=50.0, hiss_db=-20.0),
    }
    for name, make in generated.items():
        audio = set_rms_dbfs(make(child_rng(seed, "noise", name)), level_dbfs)
        write_wav(folder / f"{name}.wav", audio, SAMPLE_RATE_HZ)
        rows.append({"file": f"{name}.wav", "source": "generated", "member": "", "parameters": name})
    if minetest is not None:
        for name, rels in MINETEST_LOOPS.items():
            takes, seen = [], set()
            for rel in rels:
                path = minetest.root / MINETEST_MODS / rel
                if not path.is_file():
                    raise FileNotFoundError(f"minetest-data {minetest.version}: {path} is missing")
                audio, _ = read_wav(path, SAMPLE_RATE_HZ)
                digest = pcm_hash(audio)
                if digest not in seen:  # de-duplicate by decoded PCM, not by file
                    seen.add(digest)
                    takes.append(audio)
                    members.append(f"{MINETEST_MODS}/{rel}")
            audio = set_rms_dbfs(loop_to_length(takes, n, crossfade=800), level_dbfs)
            write_wav(folder / f"{name}_minetest.wav", audio, SAMPLE_RATE_HZ)
            rows.append(
                {
                    "file": f"{name}_minetest.wav",
                    "source": f"minetest-data {minetest.version}",
                    "member": ";".join(f"{MINETEST_MODS}/{r}" for r in rels),
                    "parameters": "loop",
                }
            )
    return rows, members


def write_noise_folder(
    ctx: BuildContext, folder: Path, seconds: float, minetest_noise: bool
) -> tuple[list[dict], list[dict], list[str]]:
    """:func:`write_noise_files` for a build (fetching minetest-data when ``minetest_noise``): provenance
    rows, source records and warnings."""
    minetest = ctx.fetcher.fetch("minetest-data") if minetest_noise else None
    rows, members = write_noise_files(folder, ctx.seed, seconds, minetest)
    sources = [generated_record("white, pink, brown noise and 50 Hz hum with hiss")]
    warnings = []
    if minetest is not None:
        sources.append(deb_record(minetest, members))
    else:
        warnings.append("no minetest-data water/fire noise in this profile (generated noise only)")
    return rows, sources, warnings


# --- sources and tool versions --------------------------------------------------------------------------


def _dep5_stanzas(root: Path, package: str) -> list[tuple[list[str], str]]:
    """(file patterns, licence short name) of each ``Files:`` stanza of a DEP-5 copyright file."""
    path = root / "usr" / "share" / "doc" / package / "copyright"
    if not path.is_file():
        return []
    stanzas = []
    for block in re.split(r"\n\s*\n", path.read_text(errors="replace")):
        files = re.search(r"^Files:(.*(?:\n[ \t].*)*)", block, flags=re.M)
        licence = re.search(r"^License:\s*(.+)$", block, flags=re.M)
        if files and licence:
            stanzas.append((files.group(1).split(), licence.group(1).strip()))
    return stanzas


def _pattern_matches(member: str, pattern: str) -> bool:
    """A source-tree pattern matches an installed path as a trailing part, with or without the source's top
    folder (``mtg/mods/x/*`` matches ``.../mods/x/a``); a bare pattern matches the file name."""
    parts = pattern.split("/")
    if len(parts) == 1:
        return fnmatch.fnmatch(member.rsplit("/", 1)[-1], pattern)
    return any(fnmatch.fnmatch(member, "*/" + "/".join(parts[k:])) for k in range(min(2, len(parts) - 1)))


def licence_per_file(pkg: UnpackedPackage, members: list[str]) -> dict[str, str]:
    """Each member's licence from the last matching DEP-5 stanza (``unknown`` when none matches)."""
    stanzas = _dep5_stanzas(pkg.root, pkg.name)
    out = {}
    for member in members:
        found = "unknown"
        for patterns, licence in stanzas:
            if any(_pattern_matches(member, p) for p in patterns):
                found = licence
        out[member] = found
    return out


def deb_record(pkg: UnpackedPackage, files_used: list[str] | None = None, non_free: bool = False) -> dict:
    record = pkg.source_record(files_used=files_used, non_free=non_free)
    record["licence"] = clean_licences(pkg.name, pkg.licences)
    if files_used:
        per_file = licence_per_file(pkg, files_used)
        known = set(record["licence"])
        record["licence_per_file"] = {
            m: (lic if _LICENCE_NAME.fullmatch(lic) else "/".join(sorted(known)))
            for m, lic in per_file.items()
        }
    return record


def system_deb_record(package: str) -> dict:
    """Source record of an installed system package (a program on PATH)."""
    out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
    version = out.stdout.strip() if out.returncode == 0 else "unknown"
    return {
        "kind": "deb",
        "name": package,
        "version": version,
        "sha256": "",
        "installed": True,
        "licence": clean_licences(package, read_licences(Path("/"), package)),
        "non_free": False,
        "files_used": [],
    }


def mbrola_records(voices: Iterable[str]) -> list[dict]:
    """Source records of the installed mbrola program (contrib) and its voices (non-free)."""
    records = [system_deb_record("mbrola")]
    for voice in voices:
        record = system_deb_record(f"mbrola-{voice}")
        record.update(
            non_free=True, licence=["non-free (mbrola voice licence: non-commercial, non-military)"]
        )
        records.append(record)
    return records


def mbrola_packages() -> list[str]:
    """The Debian packages of the mbrola extra: the program and its voices."""
    return ["mbrola"] + [f"mbrola-{v}" for v in MBROLA_VOICES]


def engine_sources(choice: VoiceChoice, engines: list[str], fetcher: DebFetcher) -> list[dict]:
    """Source records of the engines beyond espeak-ng: flite (installed), festival (fetched), mbrola, Pico
    (the ``ttspico`` package, which bundles SVOX Pico and its language files)."""
    records = []
    if "flite" in engines:
        records.append(system_deb_record("flite"))
    if "festival" in engines:
        records += [deb_record(fetcher.fetch(n)) for n in festival_packages(choice.festival_voices)]
    if "mbrola" in engines:
        records += mbrola_records(choice.mbrola_voices)
    if "pico" in engines:
        records.append(wheel_record("ttspico", ["Apache-2.0"]))
    return records


def wheel_record(name: str, licence: list[str]) -> dict:
    try:
        version = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        version = "not installed"
    return {"kind": "wheel", "name": name, "version": version, "licence": licence, "non_free": False}


def generated_record(what: str) -> dict:
    return {
        "kind": "generated",
        "name": what,
        "version": "devicelab",
        "licence": ["Apache-2.0"],
        "non_free": False,
    }


def tool_versions(engines: Iterable[str]) -> dict[str, str]:
    versions = {
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "libsndfile": sf.__libsndfile_version__,
        "soundfile": sf.__version__,
    }
    for name in engines:
        try:
            versions[name] = engine_for(name).version()
        except MissingToolError:
            versions[name] = "missing"
    if shutil.which("sox"):
        out = subprocess.run(["sox", "--version"], capture_output=True, text=True)
        versions["sox"] = out.stdout.strip().split()[-1] if out.stdout.strip() else "unknown"
    return versions


def festival_packages(voices: Iterable[str]) -> list[str]:
    return list(dict.fromkeys([*FESTIVAL_PACKAGES, *(p for v in voices for p in festival_voice_packages(v))]))


def sox_gsm_roundtrip(audio: np.ndarray, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """Telephone band (sox ``sinc 300-3400``) and a GSM 6.10 round trip at 8 kHz (sox, ``-R -D``)."""
    sox = shutil.which("sox")
    if sox is None:
        raise MissingToolError("`sox` not found; install the Debian packages `sox libsox-fmt-all`")
    raw = ["-t", "raw", "-e", "signed", "-b", "16", "-c", "1"]
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    encode = subprocess.run(
        [
            sox,
            "-R",
            "-D",
            *raw,
            "-r",
            str(sample_rate_hz),
            "-",
            "-t",
            "gsm",
            "-r",
            "8000",
            "-c",
            "1",
            "-",
            "sinc",
            "300-3400",
        ],
        input=pcm,
        capture_output=True,
    )
    if encode.returncode != 0:
        raise RuntimeError(f"sox GSM encode failed: {encode.stderr.decode(errors='replace')[-300:]}")
    decode = subprocess.run(
        [sox, "-R", "-D", "-t", "gsm", "-r", "8000", "-c", "1", "-", *raw, "-r", str(sample_rate_hz), "-"],
        input=encode.stdout,
        capture_output=True,
    )
    if decode.returncode != 0:
        raise RuntimeError(f"sox GSM decode failed: {decode.stderr.decode(errors='replace')[-300:]}")
    out = np.frombuffer(decode.stdout, dtype="<i2").astype(np.float32) / 32768.0
    return np.pad(out, (0, max(0, len(audio) - len(out))))[: len(audio)]


# --- tables ---------------------------------------------------------------------------------------------


def manifest_fields(
    builder: str,
    params: Any,
    *,
    sources: list[dict[str, Any]],
    counts: dict[str, Any],
    warnings: list[str],
    engines: Iterable[str] = (),
    tools: dict[str, str] | None = None,
    version: int = 1,
    **fields: Any,
) -> dict[str, Any]:
    """The finishing step every corpus builder ends with: the manifest fields it owns (DESIGN.md, "Data").

    Builder name and version, the parameters, builder-specific ``fields``, sources with their licences and
    checksums, tool versions (``engines`` plus ``tools``), counts and warnings, always in this order;
    ``build_corpus`` adds the seed, the file checksums and the content hash.
    """
    return {
        "builder": builder,
        "builder_version": version,
        "parameters": asdict(params),
        **fields,
        "sources": sources,
        "tool_versions": tool_versions(engines) | (tools or {}),
        "counts": counts,
        "warnings": warnings,
    }


def write_csv(path: Path, rows: list[dict], fields: list[str], delimiter: str = ",") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(
            f, fieldnames=fields, delimiter=delimiter, lineterminator="\n", extrasaction="ignore"
        )
        writer.writeheader()
        writer.writerows(rows)


def as_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def pcm16(audio: np.ndarray) -> np.ndarray:
    """Round float audio to the 16-bit grid (what a PCM_16 file holds)."""
    return (np.round(np.clip(audio, -1.0, 32767 / 32768) * 32768.0) / 32768.0).astype(np.float32)
