"""Speech engines behind one interface: text in; waveform, sample rate and phone timings out.

- ``EspeakEngine``: libespeak-ng in-process through ctypes (the ``espeakng-loader`` wheel, else Debian
  ``libespeak-ng1``); phone starts from phoneme events (``espeakEVENT_PHONEME``, type 7).
- ``FliteEngine``: the ``flite`` CLI (Debian ``flite``) with ``-psdur`` (phone end times).
- ``FestivalEngine``: ``festival`` and its voices unpacked from Debian packages (no root); ``utt.save.segs``
  gives phone end times; many utterances are rendered by one batch process.
- ``MbrolaEngine`` (opt-in extra): ``.pho`` from espeak-ng ``--pho`` voices ``mb-*``, rendered by ``mbrola``.
- ``PicoEngine``: SVOX Pico in-process (the ``ttspico`` Python package, which bundles its language files);
  it gives no phone timings, so only corpora that need audio alone (synth-commands) use it.

Every engine returns a :class:`Rendering` whose phones hold the engine's own symbols (none for Pico); mapping
to TIMIT labels is in :mod:`devicelab.data.speech.phones`. Pitch and speed are factors relative to the
voice's own.
"""

from __future__ import annotations

import _ctypes
import ctypes
import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sysconfig
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from devicelab.data.debs import DebFetcher, MissingToolError, UnpackedPackage


class EngineError(RuntimeError):
    """An engine failed on one input; the message names the engine, voice and text."""


@dataclass
class Phone:
    """One phone segment ``[start, end)`` in samples of the rendering's rate, engine symbol."""

    symbol: str
    start: int
    end: int


@dataclass
class Word:
    text: str
    start: int
    end: int


@dataclass
class Rendering:
    audio: np.ndarray  # (T,) float32 in [-1, 1]
    sample_rate_hz: int
    phones: list[Phone]
    words: list[Word] | None
    engine: str
    voice: str
    text: str
    parameters: dict = field(default_factory=dict)


class SpeechEngine:
    """Base class: ``synth(text, voice, speed=1.0, pitch=1.0) -> Rendering``."""

    name = "engine"
    packages = ""  # what brings the engine (named in errors)
    symbol_table = ""  # phones_<table>.tsv maps this engine's symbols to TIMIT labels

    def available(self) -> bool:
        try:
            self.check()
            return True
        except MissingToolError:
            return False

    def check(self) -> None:
        """Raise :class:`MissingToolError` naming the package when the engine cannot run."""

    def version(self) -> str:
        return ""

    def voices(self) -> list[str]:
        return []

    def synth(self, text: str, voice: str, speed: float = 1.0, pitch: float = 1.0) -> Rendering:
        raise NotImplementedError

    def synth_many(self, items: list[tuple[str, str, float, float]]) -> list[Rendering]:
        """Render ``(text, voice, speed, pitch)`` items; engines with costly start-up batch them."""
        return [self.synth(*item) for item in items]

    def _rendering_from_ends(
        self,
        audio: np.ndarray,
        sample_rate_hz: int,
        symbols_and_ends_s: list[tuple[str, float]],
        voice: str,
        text: str,
        parameters: dict,
    ) -> Rendering:
        """A rendering (no word timings) whose phones come from (symbol, end time in s) pairs."""
        phones = _ends_to_phones(symbols_and_ends_s, sample_rate_hz, len(audio))
        return Rendering(audio, sample_rate_hz, phones, None, self.name, voice, text, parameters)


def _ends_to_phones(
    symbols_and_ends_s: list[tuple[str, float]], sample_rate_hz: int, n_samples: int
) -> list[Phone]:
    """Phones from (symbol, end time in s) pairs: each starts where the previous one ended."""
    phones, start = [], 0
    for i, (symbol, end_s) in enumerate(symbols_and_ends_s):
        end = (
            n_samples
            if i == len(symbols_and_ends_s) - 1
            else min(n_samples, int(round(end_s * sample_rate_hz)))
        )
        if end > start:
            phones.append(Phone(symbol, start, end))
            start = end
    return phones


def sox_pitch(audio: np.ndarray, sample_rate_hz: int, factor: float) -> np.ndarray:
    """Shift pitch by ``factor`` keeping duration (sox ``pitch``, repeatable ``-R``, no dither ``-D``)."""
    if abs(factor - 1.0) < 1e-4:
        return audio
    sox = shutil.which("sox")
    if sox is None:
        raise MissingToolError("`sox` not found; install the Debian package `sox`")
    cents = 1200.0 * np.log2(factor)
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    fmt = ["-t", "raw", "-r", str(sample_rate_hz), "-e", "signed", "-b", "16", "-c", "1"]
    out = subprocess.run(
        [sox, "-R", "-D", *fmt, "-", *fmt, "-", "pitch", f"{cents:.1f}"], input=pcm, capture_output=True
    )
    if out.returncode != 0:
        raise EngineError(f"sox pitch failed: {out.stderr.decode(errors='replace')[-300:]}")
    shifted = np.frombuffer(out.stdout, dtype="<i2").astype(np.float32) / 32768.0
    if len(shifted) < len(audio):
        shifted = np.pad(shifted, (0, len(audio) - len(shifted)))
    return shifted[: len(audio)]


# --- espeak-ng ------------------------------------------------------------------------------------------

ESPEAK_EVENT_WORD, ESPEAK_EVENT_PHONEME = 1, 7
ESPEAK_RATE, ESPEAK_PITCH, ESPEAK_RANGE = 1, 3, 4
ESPEAK_DEFAULT_WPM, ESPEAK_DEFAULT_PITCH = 175, 50


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


def _espeak_library() -> tuple[str, str, str]:
    """(library path, folder containing ``espeak-ng-data``, source) of the libespeak-ng to use."""
    try:
        import espeakng_loader

        lib, data = espeakng_loader.get_library_path(), espeakng_loader.get_data_path()
        if Path(lib).is_file() and Path(data).is_dir():
            return str(lib), str(Path(data).parent), "espeakng-loader"
    except ImportError:
        pass
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    for folder in (Path("/usr/lib") / multiarch, Path("/usr/lib")):
        lib_path = folder / "libespeak-ng.so.1"
        if lib_path.is_file() and (folder / "espeak-ng-data").is_dir():
            return str(lib_path), str(folder), "libespeak-ng1"
    raise MissingToolError(
        "libespeak-ng not found; install the Python wheel `espeakng-loader` "
        "(pip install 'devicelab[data]') or the Debian packages `libespeak-ng1 espeak-ng-data`"
    )


class EspeakEngine(SpeechEngine):
    """espeak-ng formant synthesis in-process (libespeak-ng has global state: one instance per process;
    :meth:`reset` reloads it, after which a sequence of renderings is repeatable).

    Voices are ``<accent>+<variant>`` (``en-us+m3``); speed scales 175 wpm, pitch scales espeakPITCH 50
    (0-99), so the pseudo-speakers' 20-80 pitch and 130-220 wpm settings are factors 0.4-1.6, 0.74-1.26.
    """

    name = "espeak-ng"
    packages = "espeakng-loader (wheel) or libespeak-ng1 + espeak-ng-data (Debian)"
    symbol_table = "espeak"
    _lock = threading.RLock()
    _state: dict = {}

    def check(self) -> None:
        _espeak_library()

    def _init(self) -> ctypes.CDLL:
        state = EspeakEngine._state
        if state.get("pid") == os.getpid():
            return state["lib"]
        if state:  # forked from a process that had loaded the library: start fresh
            EspeakEngine.reset()
        lib_path, data_parent, source = _espeak_library()
        lib = ctypes.CDLL(lib_path)
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Info.restype = ctypes.c_char_p
        rate = lib.espeak_Initialize(2, 0, data_parent.encode(), 1)  # synchronous, phoneme events
        if rate <= 0:
            raise EngineError(f"espeak_Initialize failed for {data_parent}/espeak-ng-data ({lib_path})")

        def collect(wav, n, events):  # called by libespeak-ng during espeak_Synth
            if n > 0:
                state["chunks"].append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            i = 0
            while events[i].type != 0:
                ev = events[i]
                if ev.type == ESPEAK_EVENT_PHONEME:
                    state["events"].append(
                        ("phone", ev.id.string.decode("ascii", "replace"), ev.sample, 0, 0)
                    )
                elif ev.type == ESPEAK_EVENT_WORD:
                    state["events"].append(("word", "", ev.sample, ev.text_position, ev.length))
                i += 1
            return 0

        callback = _SynthCallback(collect)
        lib.espeak_SetSynthCallback(callback)
        # klatt voices draw noise from libc rand(); seed it and espeak's own generator (repeatable output)
        if hasattr(lib, "espeak_ng_SetRandSeed"):
            lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
            lib.espeak_ng_SetRandSeed(1)
        ctypes.CDLL(None).srand(1)
        state.update(
            pid=os.getpid(),
            lib=lib,
            path=lib_path,
            callback=callback,
            rate=rate,
            source=source,
            version=lib.espeak_Info(None).decode(),
            chunks=[],
            events=[],
        )
        return lib

    @classmethod
    def reset(cls) -> None:
        """Unload libespeak-ng so that the next call starts from a fresh library state.

        libespeak-ng keeps synthesis state between calls (so the same text renders slightly differently
        each time); a sequence of calls made after a reset is repeatable. Builders reset at the start of
        every work unit, which makes the output independent of the order and number of workers. A forked
        worker inherits its parent's loaded library, which is unloaded here too."""
        with cls._lock:
            lib = cls._state.get("lib")
            if lib is not None and cls._state.get("pid") == os.getpid():
                lib.espeak_Terminate()
            path = cls._state.get("path")
            cls._state.clear()
            if path is None:
                return
            for _ in range(16):  # drop every reference so that the next dlopen loads a fresh copy
                try:
                    handle = ctypes.CDLL(path, mode=os.RTLD_NOLOAD | os.RTLD_LAZY)._handle
                except OSError:
                    return
                _ctypes.dlclose(handle)
                _ctypes.dlclose(handle)
            raise EngineError(f"cannot unload {path}")

    def version(self) -> str:
        self._init()
        return f"{EspeakEngine._state['version']} ({EspeakEngine._state['source']})"

    def voices(self) -> list[str]:
        _, data_parent, _ = _espeak_library()
        return sorted(p.name for p in (Path(data_parent) / "espeak-ng-data" / "voices" / "!v").iterdir())

    def synth(self, text: str, voice: str, speed: float = 1.0, pitch: float = 1.0) -> Rendering:
        with EspeakEngine._lock:
            lib = self._init()
            state = EspeakEngine._state
            if lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise EngineError(f"espeak-ng: unknown voice {voice!r}")
            wpm = int(round(ESPEAK_DEFAULT_WPM * speed))
            pitch_value = int(np.clip(round(ESPEAK_DEFAULT_PITCH * pitch), 0, 99))
            lib.espeak_SetParameter(ESPEAK_RATE, wpm, 0)
            lib.espeak_SetParameter(ESPEAK_PITCH, pitch_value, 0)
            state["chunks"], state["events"] = [], []
            data = text.encode("utf-8")
            if lib.espeak_Synth(data, len(data) + 1, 0, 1, 0, 0, None, None) != 0:
                raise EngineError(f"espeak-ng: synthesis failed (voice {voice!r}, text {text!r})")
            chunks, events = state["chunks"], state["events"]
        audio = (np.concatenate(chunks).astype(np.float32) / 32768.0) if chunks else np.zeros(0, np.float32)
        n = len(audio)
        starts = [(sym, min(s, n)) for kind, sym, s, _, _ in events if kind == "phone"]
        phones = [
            Phone(sym, s, starts[i + 1][1] if i + 1 < len(starts) else n) for i, (sym, s) in enumerate(starts)
        ]
        phones = [p for p in phones if p.end > p.start]
        if phones and phones[0].start > 0:  # leading silence before the first event
            phones.insert(0, Phone("_", 0, phones[0].start))
        word_events = [(s, pos, length) for kind, _, s, pos, length in events if kind == "word"]
        words = []
        for i, (s, pos, length) in enumerate(word_events):
            end = word_events[i + 1][0] if i + 1 < len(word_events) else n
            # a word ends at the last phone start before the next word that is a pause
            word_text = data[pos - 1 : pos - 1 + length].decode("utf-8", "replace")
            words.append(Word(word_text, min(s, n), min(end, n)))
        return Rendering(
            audio, state["rate"], phones, words, self.name, voice, text, {"wpm": wpm, "pitch": pitch_value}
        )


# --- flite ----------------------------------------------------------------------------------------------

# Median F0 (Hz) of each flite voice on a reference sentence (pyin); ``int_f0_target_mean`` is set to
# this times the pitch factor. ``rms`` ignores ``int_f0_target_mean``, so its pitch is shifted by sox.
FLITE_F0_HZ = {"kal16": 88.0, "awb": 133.0, "slt": 170.0, "rms": None, "kal": 88.0}


class FliteEngine(SpeechEngine):
    """CMU flite through its CLI; ``-psdur`` prints ``phone:end_seconds`` pairs."""

    name = "flite"
    packages = "flite (Debian)"
    symbol_table = "cmu"

    def check(self) -> None:
        if shutil.which("flite") is None:
            raise MissingToolError("`flite` not found; install the Debian package `flite`")

    def version(self) -> str:
        out = subprocess.run(["flite", "--version"], capture_output=True, text=True)
        found = re.search(r"version:\s*(\S+)", out.stdout + out.stderr)
        return found.group(1) if found else "unknown"

    def voices(self) -> list[str]:
        out = subprocess.run(["flite", "-lv"], capture_output=True, text=True)
        return out.stdout.split(":", 1)[-1].split()

    def synth(self, text: str, voice: str, speed: float = 1.0, pitch: float = 1.0) -> Rendering:
        self.check()
        args = ["--setf", f"duration_stretch={1.0 / speed:.4f}"]
        default_f0 = FLITE_F0_HZ.get(voice)
        if default_f0 is not None:
            args += ["--setf", f"int_f0_target_mean={default_f0 * pitch:.2f}"]
        with tempfile.TemporaryDirectory(prefix="flite-") as tmp:
            wav = Path(tmp) / "out.wav"
            out = subprocess.run(
                ["flite", "-voice", voice, *args, "-psdur", "-t", text, "-o", str(wav)],
                capture_output=True,
                text=True,
            )
            if out.returncode != 0 or not wav.is_file():
                raise EngineError(
                    f"flite failed (voice {voice!r}, text {text!r}): {out.stderr.strip()[-300:]}"
                )
            audio, sr = sf.read(str(wav), dtype="float32")
        pairs = []
        for token in out.stdout.split():
            symbol, _, end = token.rpartition(":")
            try:
                pairs.append((symbol, float(end)))
            except ValueError:
                raise EngineError(
                    f"flite -psdur: cannot parse {token!r} (voice {voice!r}, text {text!r})"
                ) from None
        if default_f0 is None:
            audio = sox_pitch(audio, sr, pitch)
        parameters = {"duration_stretch": round(1.0 / speed, 4), "pitch": round(pitch, 4)}
        return self._rendering_from_ends(audio, sr, pairs, voice, text, parameters)


# --- accented English: respellings ---------------------------------------------------------------------

# Accent voices are recorded women of other languages (festival and Pico voices, opt-in per corpus profile):
# they read the English words from respellings in their own orthography, so that their language's
# letter-to-sound rules say them close to English. Keys: the 35 Speech Commands words.
# Italian and Catalan (festival lp and ona, Pico it-IT).
ROMANCE_RESPELLINGS = {
    "yes": "ies", "no": "nou", "up": "ap", "down": "daun", "left": "left", "right": "rait", "on": "on",
    "off": "of", "stop": "stop", "go": "gou", "zero": "ziro", "one": "uan", "two": "tu", "three": "tri",
    "four": "for", "five": "faiv", "six": "sics", "seven": "seven", "eight": "eit", "nine": "nain",
    "bed": "bed", "bird": "berd", "cat": "chet", "dog": "dog", "happy": "epi", "house": "aus",
    "marvin": "marvin", "sheila": "scila", "tree": "tri", "wow": "uau", "backward": "becuord",
    "forward": "foruord", "follow": "folou", "learn": "lern", "visual": "visual",
}  # fmt: skip
# Spanish (Pico es-ES): the Romance table where Spanish reads it the same. Castilian z is /θ/ (so "zri" is
# the /θr/ of three and tells it from tree), ch is /tʃ/ and sc+i /sθ/ (cat, sheila), j is /x/ for English h,
# final v a /b/ (five); an acute accent keeps the English stress where Spanish rules would move it, and
# a doubled vowel is a long one (oof, tuu: Pico says "of" and "tu" in 0.14 and 0.15 s).
SPANISH_RESPELLINGS = {
    **ROMANCE_RESPELLINGS,
    "off": "oof", "two": "tuu", "zero": "siro", "three": "zri", "five": "faif", "cat": "quet",
    "happy": "jepi", "house": "jaus", "sheila": "chila", "backward": "bécuord", "forward": "fóruord",
    "visual": "vísual",
}  # fmt: skip
# French (Pico fr-FR): a final -e keeps the consonant before it sounding (yèsse, lefte, beurde), ï opens a
# second vowel (raïte /rait/), -onne is oral /ɔn/, ou is /u/ and ou+vowel /w/, a doubled vowel is a long
# one (touou, trii: Pico says "tou" and "tri" in 0.11 and 0.13 s); French has no /h/ or /θ/.
FRENCH_RESPELLINGS = {
    "yes": "yèsse", "no": "no", "up": "eupe", "down": "daoune", "left": "lefte", "right": "raïte",
    "on": "onne", "off": "offe", "stop": "stop", "go": "go", "zero": "ziro", "one": "ouane", "two": "touou",
    "three": "sri", "four": "fore", "five": "faïve", "six": "sikse", "seven": "sèvène", "eight": "éïte",
    "nine": "naïne", "bed": "bède", "bird": "beurde", "cat": "katte", "dog": "dogue", "happy": "happi",
    "house": "aousse", "marvin": "marvine", "sheila": "chila", "tree": "trii", "wow": "ouaou",
    "backward": "bakouarde", "forward": "forouarde", "follow": "folo", "learn": "leurne",
    "visual": "vijouel",
}  # fmt: skip
# German (Pico de-DE): j is /j/, w is /v/ (German has no /w/: uann for one), ei and ai are /aɪ/ (eight is
# "eht"), h marks a long vowel (noh, goh; ou would be /u:/), ä ö are /ɛ œ/ for English /æ ɜ/, initial s
# before a vowel is /z/ and initial st is /ʃt/ (the German accent of seven, six and stop).
GERMAN_RESPELLINGS = {
    "yes": "jes", "no": "noh", "up": "ap", "down": "daun", "left": "left", "right": "rait", "on": "on",
    "off": "off", "stop": "stopp", "go": "goh", "zero": "siro", "one": "uann", "two": "tuh", "three": "sri",
    "four": "for", "five": "faiw", "six": "sicks", "seven": "sewen", "eight": "eht", "nine": "nain",
    "bed": "bett", "bird": "börd", "cat": "kätt", "dog": "dogg", "happy": "häppi", "house": "haus",
    "marvin": "marwin", "sheila": "schiela", "tree": "trie", "wow": "wau", "backward": "bäckwörd",
    "forward": "forwörd", "follow": "follo", "learn": "lörn", "visual": "wischuel",
}  # fmt: skip


def respell(text: str, voice: str) -> str:
    """The text a voice is given: an accent voice's respelling (`ACCENT_RESPELLINGS`, festival and Pico) word
    by word, words without one unchanged; an English voice reads ``text`` itself."""
    table = ACCENT_RESPELLINGS.get(voice)
    if table is None:
        return text
    return " ".join(table.get(word.lower(), word) for word in text.split())


# --- festival -------------------------------------------------------------------------------------------

FESTIVAL_PACKAGES = ("festival", "libestools2.5", "festlex-cmu", "festlex-poslex")
FESTIVAL_VOICES = {  # voice -> (package, folder under usr/share/festival/voices)
    "kal_diphone": ("festvox-kallpc16k", "english/kal_diphone"),
    "ked_diphone": ("festvox-kdlpc16k", "english/ked_diphone"),
    "cmu_us_slt_arctic_hts": ("festvox-us-slt-hts", "us/cmu_us_slt_arctic_hts"),
}
# Recorded women of other languages (accent voices): they read English words from `ROMANCE_RESPELLINGS`;
# their language's text processing comes from the extra packages.
# voice -> (package, folder under usr/share/festival/voices, language packages)
FESTIVAL_ACCENT_VOICES = {
    "lp_diphone": ("festvox-italp16k", "italian/lp_diphone", ("festlex-ifd",)),
    "upc_ca_ona_hts": ("festvox-ca-ona-hts", "catalan/upc_ca_ona_hts", ("festival-ca",)),
}
PAUSE_SYMBOLS = frozenset({"pau", "#", "h#", "sil"})


def _festival_voice(voice: str) -> tuple[str, str, tuple[str, ...]]:
    """(package, folder under usr/share/festival/voices, language packages) of a known festival voice."""
    if voice in FESTIVAL_VOICES:
        return (*FESTIVAL_VOICES[voice], ())
    if voice in FESTIVAL_ACCENT_VOICES:
        return FESTIVAL_ACCENT_VOICES[voice]
    known = sorted({*FESTIVAL_VOICES, *FESTIVAL_ACCENT_VOICES})
    raise EngineError(f"festival: unknown voice {voice!r} (known: {', '.join(known)})")


def festival_voice_packages(voice: str) -> tuple[str, ...]:
    """The Debian packages a festival voice needs beyond `FESTIVAL_PACKAGES`: the voice, then its language."""
    package, _, languages = _festival_voice(voice)
    return (package, *languages)


def crop_to_speech(
    audio: np.ndarray, sample_rate_hz: int, pairs: list[tuple[str, float]], margin_s: float = 0.03
) -> tuple[np.ndarray, list[tuple[str, float]]]:
    """Cut the leading and trailing pauses of (symbol, end time in s) pairs, ``margin_s`` kept: the accent
    voices' pauses carry their vocoder's noise floor, up to 25 dB over a silence trim's threshold."""
    starts = [0.0, *(end for _, end in pairs[:-1])]
    speech = [(start, end) for (symbol, end), start in zip(pairs, starts) if symbol not in PAUSE_SYMBOLS]
    if not speech:
        return audio, pairs
    t0 = max(0.0, speech[0][0] - margin_s)
    t1 = min(len(audio) / sample_rate_hz, speech[-1][1] + margin_s)
    kept = [
        (symbol, min(end, t1) - t0) for (symbol, end), start in zip(pairs, starts) if end > t0 and start < t1
    ]
    return audio[int(round(t0 * sample_rate_hz)) : int(round(t1 * sample_rate_hz))], kept


def _merge_links(source: Path, target: Path) -> None:
    """Link ``source``'s entries into ``target``; a folder both have becomes a real folder of links."""
    for item in source.iterdir():
        dest = target / item.name
        if not dest.exists() and not dest.is_symlink():
            dest.symlink_to(item)
        elif item.is_dir() and dest.is_dir():
            if dest.is_symlink():
                linked = dest.resolve()
                dest.unlink()
                dest.mkdir()
                _merge_links(linked, dest)
            _merge_links(item, dest)


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class FestivalEngine(SpeechEngine):
    """festival 2.5 unpacked from Debian packages into the cache and run in batch mode (no root).

    The packages unpack into separate roots, so a merged ``--libdir`` of symbolic links is made once.
    """

    name = "festival"
    packages = " ".join(sorted((*FESTIVAL_PACKAGES, *(package for package, _ in FESTIVAL_VOICES.values()))))
    symbol_table = "cmu"

    def __init__(self, fetcher: DebFetcher | None = None, voices: tuple[str, ...] = tuple(FESTIVAL_VOICES)):
        self.fetcher = fetcher
        self.wanted_voices = voices
        self._setup: tuple[list[str], dict, Path] | None = None
        self.unpacked: list[UnpackedPackage] = []

    def _prepare(self) -> tuple[list[str], dict, Path]:
        if self._setup is not None:
            return self._setup
        fetcher = self.fetcher or DebFetcher()
        try:
            pkgs = {name: fetcher.fetch(name) for name in FESTIVAL_PACKAGES}
            for voice in self.wanted_voices:
                for name in festival_voice_packages(voice):
                    pkgs[name] = fetcher.fetch(name)
        except Exception as e:
            raise MissingToolError(
                f"festival could not be fetched ({e}); it needs the Debian packages {self.packages}"
            ) from None
        self.unpacked = list(pkgs.values())
        key = hashlib.sha1("|".join(f"{p.name}={p.version}" for p in self.unpacked).encode()).hexdigest()[:12]
        libdir = fetcher.cache / "festival" / key
        if not (libdir / ".ready").exists():
            tmp = libdir.with_name(f"{key}.tmp-{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            (tmp / "dicts").mkdir(parents=True)
            for item in (pkgs["festival"].root / "usr/share/festival").iterdir():
                (tmp / item.name).symlink_to(item)
            for lex in ("festlex-cmu", "festlex-poslex"):
                for item in (pkgs[lex].root / "usr/share/festival/dicts").iterdir():
                    (tmp / "dicts" / item.name).symlink_to(item)
            for voice in self.wanted_voices:
                package, folder, languages = _festival_voice(voice)
                target = tmp / "voices" / folder
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(pkgs[package].root / "usr/share/festival/voices" / folder)
                for language in languages:  # text processing of an accent voice's own language
                    _merge_links(pkgs[language].root / "usr/share/festival", tmp)
            (tmp / ".ready").write_text(key)
            shutil.rmtree(libdir, ignore_errors=True)
            os.replace(tmp, libdir)
        binary = shutil.which("festival")
        env = dict(os.environ)
        if binary is None:
            binary = str(pkgs["festival"].root / "usr/bin/festival")
            libs = [str(p.multiarch_lib) for p in self.unpacked if p.multiarch_lib.is_dir()]
            env["LD_LIBRARY_PATH"] = ":".join(libs + [env.get("LD_LIBRARY_PATH", "")]).rstrip(":")
        self._setup = ([binary, "--libdir", str(libdir) + "/", "--datadir", str(libdir) + "/"], env, libdir)
        return self._setup

    def check(self) -> None:
        self._prepare()

    def version(self) -> str:
        self._prepare()
        return next((p.version for p in self.unpacked if p.name == "festival"), "unknown")

    def voices(self) -> list[str]:
        return list(self.wanted_voices)

    def synth(self, text: str, voice: str, speed: float = 1.0, pitch: float = 1.0) -> Rendering:
        return self.synth_many([(text, voice, speed, pitch)])[0]

    def synth_many(self, items: list[tuple[str, str, float, float]]) -> list[Rendering]:
        """Render all items in one festival process (start-up ~0.3 s, then ~20 ms per utterance)."""
        if not items:
            return []
        for voice in dict.fromkeys(voice for _, voice, _, _ in items):
            if voice not in self.wanted_voices:  # a known voice is fetched and prepared on first use
                festival_voice_packages(voice)  # an unknown one is an error naming the known voices
                self.wanted_voices, self._setup = (*self.wanted_voices, voice), None
        command, env, _ = self._prepare()
        with tempfile.TemporaryDirectory(prefix="festival-") as tmp:
            lines = []
            for i, (text, voice, speed, _) in enumerate(items):
                lines += [
                    f"(voice_{voice})",
                    f"(Parameter.set 'Duration_Stretch {1.0 / speed:.4f})",
                    f"(set! utt (utt.synth (Utterance Text {_scheme_string(respell(text, voice))})))",
                    f'(utt.save.wave utt "{tmp}/{i}.wav" \'riff)',
                    f'(utt.save.segs utt "{tmp}/{i}.segs")',
                ]
            script = Path(tmp) / "render.scm"
            script.write_text("\n".join(lines) + "\n")
            out = subprocess.run([*command, "-b", str(script)], capture_output=True, text=True, env=env)
            renderings = []
            for i, (text, voice, speed, pitch) in enumerate(items):
                wav, segs = Path(tmp) / f"{i}.wav", Path(tmp) / f"{i}.segs"
                if not wav.is_file() or not segs.is_file():
                    raise EngineError(
                        f"festival failed (voice {voice!r}, text {text!r}): "
                        f"{(out.stderr + out.stdout).strip()[-400:]}"
                    )
                audio, sr = sf.read(str(wav), dtype="float32")
                pairs = []
                for line in segs.read_text().splitlines():
                    parts = line.split()
                    if len(parts) == 3 and not line.startswith("#"):
                        pairs.append((parts[2], float(parts[0])))
                if voice in FESTIVAL_ACCENT_VOICES:
                    audio, pairs = crop_to_speech(audio, sr, pairs)
                audio = sox_pitch(audio, sr, pitch)
                parameters = {"duration_stretch": round(1.0 / speed, 4), "pitch": round(pitch, 4)}
                if respell(text, voice) != text:
                    parameters["spoken_as"] = respell(text, voice)
                renderings.append(self._rendering_from_ends(audio, sr, pairs, voice, text, parameters))
        return renderings


# --- mbrola (extra) -------------------------------------------------------------------------------------


class MbrolaEngine(SpeechEngine):
    """mbrola diphone voices (non-free, opt-in): espeak-ng writes the ``.pho``, mbrola renders it.

    The ``.pho`` durations give the phone boundaries (+10 ms, mbrola's onset). ``us3`` lacks espeak's
    ``O2``, so its ``.pho`` is made with ``mb-us1``; any "unknown" phone warning fails the render.
    """

    name = "mbrola"
    packages = (
        "mbrola (contrib) and mbrola-us1/us2/us3/en1 (non-free): sudo bash scripts/setup-system.sh --nonfree"
    )
    symbol_table = "mbrola"
    VOICE_DIRS = (Path("/usr/share/mbrola"),)

    def check(self) -> None:
        for tool in ("mbrola", "espeak-ng"):
            if shutil.which(tool) is None:
                raise MissingToolError(f"`{tool}` not found; mbrola needs {self.packages}")

    def _voice_file(self, voice: str) -> Path:
        for folder in self.VOICE_DIRS:
            for candidate in (folder / voice / voice, folder / voice):
                if candidate.is_file():
                    return candidate
        raise MissingToolError(
            f"mbrola voice {voice!r} not found in {self.VOICE_DIRS}; install "
            f"`mbrola-{voice}` ({self.packages})"
        )

    def synth(self, text: str, voice: str, speed: float = 1.0, pitch: float = 1.0) -> Rendering:
        self.check()
        voice_file = self._voice_file(voice)
        pho_voice = "mb-us1" if voice == "us3" else f"mb-{voice}"
        pho = subprocess.run(
            ["espeak-ng", "-q", "-v", pho_voice, "--pho", "-s", str(int(ESPEAK_DEFAULT_WPM * speed)), text],
            capture_output=True,
            text=True,
        )
        if pho.returncode != 0 or not pho.stdout.strip():
            raise EngineError(
                f"espeak-ng --pho failed (voice {pho_voice}, text {text!r}): {pho.stderr[-300:]}"
            )
        with tempfile.TemporaryDirectory(prefix="mbrola-") as tmp:
            pho_file, wav = Path(tmp) / "in.pho", Path(tmp) / "out.wav"
            pho_file.write_text(pho.stdout)
            out = subprocess.run(
                ["mbrola", "-e", "-f", f"{pitch:.3f}", str(voice_file), str(pho_file), str(wav)],
                capture_output=True,
                text=True,
            )
            if out.returncode != 0 or "unknown" in out.stderr.lower() or not wav.is_file():
                raise EngineError(
                    f"mbrola failed (voice {voice}, text {text!r}): {out.stderr.strip()[-300:]}"
                )
            audio, sr = sf.read(str(wav), dtype="float32")
        pairs, t = [], 0.0
        for line in pho.stdout.splitlines():
            parts = line.split()
            if not parts or line.startswith(";"):
                continue
            t += float(parts[1]) / 1000.0
            pairs.append((parts[0], t + 0.010))
        return self._rendering_from_ends(audio, sr, pairs, voice, text, {"speed": speed, "pitch": pitch})


# --- SVOX Pico (ttspico) --------------------------------------------------------------------------------

PICO_PACKAGE = "ttspico==0.3.2"
# English voices: language -> Pico voice (language file ``<language>_<voice>_sg.bin``); both are women
PICO_VOICES = {"en-US": "lh0", "en-GB": "kh0"}
# Pico's other languages, women too (es-ES zl0, it-IT cm0, fr-FR nk0, de-DE gl0), as accent voices: they read
# English words from respellings in their own orthography. language -> respelling table
PICO_ACCENT_VOICES = {
    "es-ES": SPANISH_RESPELLINGS,
    "it-IT": ROMANCE_RESPELLINGS,
    "fr-FR": FRENCH_RESPELLINGS,
    "de-DE": GERMAN_RESPELLINGS,
}
PICO_SAMPLE_RATE_HZ = 16000
PICO_PITCH_RANGE = (0.5, 2.0)  # the pitch property's limits (percent 50-200) as factors
PICO_SPEED_RANGE = (0.2, 5.0)  # the rate property's limits (percent 20-500) as factors
# Pico saturates to 16 bits: at its default volume (100) every loud vowel clips, and at pitch 0.5 the
# peaks reach 0.93 at volume 40; volume 30 keeps every Speech Commands word below 0.75 at any pitch in
# the English voices and below 0.85 in the accent voices (de-DE "wau" at pitch 0.5 and rate 65: 0.82).
PICO_VOLUME = 30
# Rate, pitch and volume are markup around the text, and the audio Pico flushes after the closing tag is
# not scaled by the volume (a word's last few tens of ms came out at full volume, 3x too loud at volume
# 30); a trailing pause inside the markup makes that flushed tail silence.
PICO_TAIL = "<break time='100ms'/>"


def _import_ttspico():
    try:
        import ttspico
    except ImportError as e:
        raise MissingToolError(
            f"the Python package `ttspico` cannot be imported ({e}); install it with "
            f"`pip install {PICO_PACKAGE}` (an sdist: needs gcc and the Python headers, Debian "
            "`build-essential python3-dev`)"
        ) from None
    return ttspico


class PicoEngine(SpeechEngine):
    """SVOX Pico in-process through ``ttspico`` (libttspico state: one engine object per voice and process,
    made on first use; :meth:`reset` drops them, after which a sequence of renderings is repeatable).

    Voices are the English languages ``en-US`` (lh0) and ``en-GB`` (kh0) and the accent voices
    ``es-ES``, ``it-IT``, ``fr-FR`` and ``de-DE``, which read English words from their respellings
    (:func:`respell`; the rendering's parameters give the text as ``spoken_as``), 16 kHz. Speed sets the rate
    property (percent), pitch the pitch property (percent; it moves F0 and keeps duration and spectral
    envelope); a pitch factor outside 0.5-2 is rendered at the nearest limit and the rest shifted by sox.
    Pico reports no phone timings: renderings have no phones, so synth-phones never uses this engine.
    """

    name = "pico"
    packages = f"{PICO_PACKAGE} (Python package; pip install {PICO_PACKAGE})"
    symbol_table = ""  # no phone timings
    _lock = threading.RLock()
    _state: dict = {}

    def check(self) -> None:
        ttspico = _import_ttspico()
        for language in (*PICO_VOICES, *PICO_ACCENT_VOICES):
            try:
                ttspico.TtsEngine(language)
            except RuntimeError as e:
                raise MissingToolError(
                    f"ttspico cannot load its {language} language files ({e}); reinstall it with "
                    f"`pip install --force-reinstall {PICO_PACKAGE}`"
                ) from None

    def version(self) -> str:
        _import_ttspico()
        try:
            return importlib.metadata.version("ttspico")
        except importlib.metadata.PackageNotFoundError:
            return "unknown"

    def voices(self) -> list[str]:
        return [*PICO_VOICES, *PICO_ACCENT_VOICES]

    def _engine(self, voice: str):
        state = PicoEngine._state
        if state.get("pid") != os.getpid():  # first use, or forked from a process that had engines
            state.clear()
            state.update(pid=os.getpid(), engines={})
        if voice not in state["engines"]:
            state["engines"][voice] = _import_ttspico().TtsEngine(voice)
        return state["engines"][voice]

    @classmethod
    def reset(cls) -> None:
        """Drop this process's Pico engines: the next rendering starts from a fresh engine (Pico keeps state
        between calls, so the same text renders slightly differently each time)."""
        with cls._lock:
            cls._state.clear()

    def synth(self, text: str, voice: str, speed: float = 1.0, pitch: float = 1.0) -> Rendering:
        if voice not in self.voices():
            raise EngineError(f"pico: unknown voice {voice!r} (known: {', '.join(self.voices())})")
        if not PICO_SPEED_RANGE[0] <= speed <= PICO_SPEED_RANGE[1]:
            raise EngineError(f"pico: speed {speed:.3f} outside {PICO_SPEED_RANGE} (voice {voice!r})")
        rate = int(round(100 * speed))
        pico_pitch = int(round(100 * float(np.clip(pitch, *PICO_PITCH_RANGE))))
        spoken = respell(text, voice)
        markup = re.sub(r"[<>]", " ", spoken) + PICO_TAIL  # no markup from the text itself
        with PicoEngine._lock:
            engine = self._engine(voice)
            engine.rate, engine.pitch, engine.volume = rate, pico_pitch, PICO_VOLUME
            pcm = engine.speak(markup)
        if not pcm:
            raise EngineError(f"pico: no audio (voice {voice!r}, text {text!r})")
        audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
        if not PICO_PITCH_RANGE[0] <= pitch <= PICO_PITCH_RANGE[1]:
            audio = sox_pitch(audio, PICO_SAMPLE_RATE_HZ, pitch / (pico_pitch / 100))
        parameters = {"rate": rate, "pitch": round(pitch, 4), "pico_pitch": pico_pitch, "volume": PICO_VOLUME}
        if spoken != text:
            parameters["spoken_as"] = spoken
        return Rendering(audio, PICO_SAMPLE_RATE_HZ, [], None, self.name, voice, text, parameters)


# accent voice (festival or Pico) -> the respelling table it reads (`respell`)
ACCENT_RESPELLINGS = {**dict.fromkeys(FESTIVAL_ACCENT_VOICES, ROMANCE_RESPELLINGS), **PICO_ACCENT_VOICES}

ENGINES = {
    "espeak-ng": EspeakEngine,
    "flite": FliteEngine,
    "festival": FestivalEngine,
    "mbrola": MbrolaEngine,
    "pico": PicoEngine,
}


def get_engine(name: str, fetcher: DebFetcher | None = None) -> SpeechEngine:
    if name not in ENGINES:
        raise KeyError(f"unknown speech engine {name!r}; valid: {', '.join(ENGINES)}")
    return ENGINES[name](fetcher) if name == "festival" else ENGINES[name]()
