"""``synth-speakers``: synthetic identities speaking keyword phrases in sessions, in the VoxCeleb1 layout with
a LibriSpeech view (corpora.md, "synth-speakers"; read by :mod:`devicelab.data.datasets.voxceleb` and
:mod:`devicelab.data.datasets.librispeech`).

An identity is a base voice (engine, voice or accent+variant) with fixed pitch, speed and formant offset
α ∈ [0.92, 1.08] (rendered at speed/α and pitch/α, then resampled by α). Training identities carry a
deliberate text-speaker confound: a preferred subset of 5 keywords drawn with probability ``confound``.
Train and test identities are disjoint by base voice: test = persons slt and rms + 20 % of the espeak-ng
variant files. Asterisk prompts of four real persons form the ``real`` split.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from devicelab.audio.channel import (
    apply_sos,
    brown_noise,
    eq_sos,
    mix_at_snr,
    mulaw_roundtrip,
    pink_noise,
    random_eq_sos,
    set_rms_dbfs,
    trim_silence,
)
from devicelab.audio.io import read_wav, resample, write_wav
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
    as_json,
    deb_record,
    engine_for,
    engine_sources,
    espeak_voice,
    festival_packages,
    generated_record,
    log_progress,
    manifest_fields,
    mbrola_packages,
    pcm_hash,
    pick_espeak_variants,
    recorded_voices,
    render,
    run_tasks,
    sox_gsm_roundtrip,
    split_variants,
    start_work_unit,
    usable_engines,
    wheel_record,
    write_csv,
    write_noise_folder,
)
from devicelab.data.debs import MissingToolError
from devicelab.data.speech.engines import FESTIVAL_VOICES
from devicelab.data.speech.phones import fold, scale_segments, to_timit
from devicelab.data.speech.texts import keyword_phrases

REAL_PACKAGES = {  # session (language) -> (package, prompt folder, person, gender, file suffix)
    "en": ("asterisk-core-sounds-en-wav", "en_US_f_Allison", "Allison", "f", ".wav"),
    "es": ("asterisk-core-sounds-es-wav", "es_MX_f_Allison", "Allison", "f", ".wav"),
    "fr": ("asterisk-core-sounds-fr-wav", "fr_CA_f_June", "June", "f", ".wav"),
    "it": ("asterisk-core-sounds-it-wav", "it_IT_m_Carlo", "Carlo", "m", ".wav"),
    "ru": ("asterisk-core-sounds-ru-wav", "ru_RU_f_IvrvoiceRU", "IvrvoiceRU", "f", ".wav"),
    # full only: three more persons (GSM 6.10 files are decoded by sox)
    "frarmelle": ("asterisk-prompt-fr-armelle", "fr", "Armelle", "f", ".gsm"),
    "esco": ("asterisk-prompt-es-co", "es", "es-co", "f", ".gsm"),
    "itmenardi": ("asterisk-prompt-it-menardi-wav", "it_IT_f_Menardi", "Menardi", "f", ".wav"),
}
UTT_FIELDS = [
    "utt_id",
    "path",
    "split",
    "speaker",
    "base_voice",
    "person",
    "engine",
    "voice",
    "variant",
    "pitch",
    "speed",
    "formant",
    "session",
    "channel",
    "keyword_id",
    "keyword",
    "preferred",
    "phones",
    "phone_ends_ms",
    "duration",
]


@dataclass(frozen=True)
class SpeakersParams:
    espeak_variants: int = 36
    accents_per_variant: int = 2
    identities_per_espeak_voice: int = 2  # pitch/speed/formant siblings per accent+variant
    flite_voices: tuple[str, ...] = FLITE_VOICES
    festival_voices: tuple[str, ...] = tuple(FESTIVAL_VOICES)
    mbrola_voices: tuple[str, ...] = ()
    identities_per_recorded_voice: int = 4
    test_fraction: float = 0.2  # of the espeak variant files
    sessions: int = 4
    utterances_per_session: int = 10
    confound: float = 0.75  # probability that a training utterance comes from the preferred keywords
    preferred_keywords: int = 5
    speed_jitter: float = 0.05
    pitch_jitter: float = 0.03
    formant_range: tuple[float, float] = (0.92, 1.08)
    snr_db: tuple[float, float] = (15.0, 40.0)
    eq_gain_db: float = 6.0
    sox_chain_probability: float = 0.3  # of a session: 300-3400 Hz + GSM round trip, or µ-law 8 kHz
    level_dbfs: float = -26.0
    level_jitter_db: float = 3.0
    edge_s: float = 0.1  # silence kept or added around the trimmed phrase
    noise_seconds: float = 60.0
    minetest_noise: bool = True
    real_languages: tuple[str, ...] = ("en", "es", "fr", "it", "ru")
    real_prompts_per_language: int = 40


PROFILES: dict[str, SpeakersParams] = {
    "smoke": SpeakersParams(
        espeak_variants=8,
        accents_per_variant=1,
        identities_per_espeak_voice=1,
        flite_voices=(),
        festival_voices=(),
        sessions=2,
        utterances_per_session=20,
        test_fraction=0.3,
        noise_seconds=5.0,
        minetest_noise=False,
        real_languages=(),
    ),
    "quick": SpeakersParams(),
    "full": SpeakersParams(
        espeak_variants=50,
        accents_per_variant=4,
        identities_per_espeak_voice=2,
        identities_per_recorded_voice=10,
        sessions=6,
        utterances_per_session=10,
        real_prompts_per_language=400,
        real_languages=("en", "es", "fr", "it", "ru", "frarmelle", "esco", "itmenardi"),
    ),
}


@dataclass(frozen=True)
class Identity:
    number: int
    voice: Voice
    pitch: float
    speed: float
    formant: float
    split: str  # train | test

    @property
    def id(self) -> str:
        return f"id{10001 + self.number}"

    @property
    def gender(self) -> str:
        return "f" if self.voice.variant in FEMALE_VARIANTS or self.voice.person in FEMALE_PERSONS else "m"


def plan_identities(params: SpeakersParams, seed: int) -> list[Identity]:
    """Identities with their split (disjoint by base voice; siblings never cross)."""
    base: list[tuple[Voice, str, int]] = []
    variants = pick_espeak_variants(seed + 2, params.espeak_variants)
    variant_split = split_variants(seed + 2, variants, {"test": params.test_fraction})
    for variant in variants:
        for accent in accent_order(seed, "speakers-accent", variant)[: params.accents_per_variant]:
            base.append(
                (espeak_voice(accent, variant), variant_split[variant], params.identities_per_espeak_voice)
            )
    for voice in recorded_voices(params):
        split = "test" if voice.person in ("slt", "rms", "us3") else "train"
        base.append((voice, split, params.identities_per_recorded_voice))
    identities = []
    for voice, split, n in base:
        for k in range(n):
            rng = child_rng(seed, "identity", voice.key, k)
            if voice.engine == "espeak-ng":
                pitch, speed = rng.uniform(20, 80) / 50.0, rng.uniform(130, 200) / 175.0
            else:
                pitch, speed = rng.uniform(0.88, 1.12), rng.uniform(0.9, 1.1)
            formant = rng.uniform(*params.formant_range)
            identities.append(Identity(len(identities), voice, pitch, speed, formant, split))
    return identities


def utterance_plan(
    identity: Identity, params: SpeakersParams, seed: int
) -> tuple[list[list[str]], list[str]]:
    """Keyword ids per session and the identity's preferred subset (training identities only).

    Training: each utterance draws from the preferred subset with probability ``confound``, otherwise
    uniformly from all keywords. Test: balanced, every keyword equally often (2 per keyword in quick)."""
    keywords = sorted(keyword_phrases())
    rng = child_rng(seed, "text", identity.id)
    n = params.sessions * params.utterances_per_session
    preferred: list[str] = []
    if identity.split == "train":
        preferred = sorted(rng.choice(keywords, size=params.preferred_keywords, replace=False).tolist())
        chosen = [
            str(rng.choice(preferred)) if rng.random() < params.confound else str(rng.choice(keywords))
            for _ in range(n)
        ]
    else:
        chosen = [keywords[i % len(keywords)] for i in range(n)]
        chosen = [chosen[i] for i in rng.permutation(n)]
    per = params.utterances_per_session
    return [chosen[s * per : (s + 1) * per] for s in range(params.sessions)], preferred


def session_channel(identity_id: str, session: int, params: SpeakersParams, seed: int) -> dict[str, Any]:
    """A session's fixed channel: random 3-band EQ, pink or brown noise at an SNR, maybe a sox chain."""
    rng = child_rng(seed, "session", identity_id, session)
    _, bands = random_eq_sos(rng, SAMPLE_RATE_HZ, n_bands=3, max_gain_db=params.eq_gain_db)
    channel = {
        "eq": bands,
        "noise": str(rng.choice(["pink", "brown"])),
        "snr_db": float(rng.uniform(*params.snr_db)),
        "noise_seed": int(rng.integers(2**31)),
        "chain": "none",
    }
    if rng.random() < params.sox_chain_probability:
        channel["chain"] = str(rng.choice(["gsm", "mulaw"]))
    return channel


def channel_name(channel: dict[str, Any]) -> str:
    return f"eq3+{channel['noise']}{channel['snr_db']:.0f}dB" + (
        "" if channel["chain"] == "none" else f"+{channel['chain']}"
    )


def apply_channel(audio: np.ndarray, channel: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    """EQ and noise of a session's channel (the codec chain is applied per session: :func:`apply_chain`)."""
    out = apply_sos(audio, eq_sos(channel["eq"], SAMPLE_RATE_HZ))
    noise = (pink_noise if channel["noise"] == "pink" else brown_noise)(len(out), rng)
    return mix_at_snr(out, noise, channel["snr_db"])


def apply_chain(utterances: list[np.ndarray], chain: str, gap: int = 1600) -> list[np.ndarray]:
    """A session's codec chain (GSM via sox, or µ-law) over all its utterances at once, 0.1 s apart."""
    if chain == "none":
        return [np.clip(u, -1.0, 1.0).astype(np.float32) for u in utterances]
    joined = np.concatenate([np.concatenate([u, np.zeros(gap, np.float32)]) for u in utterances])
    coded = sox_gsm_roundtrip(joined) if chain == "gsm" else mulaw_roundtrip(joined, SAMPLE_RATE_HZ)
    out, start = [], 0
    for u in utterances:
        out.append(np.clip(coded[start : start + len(u)], -1.0, 1.0).astype(np.float32))
        start += len(u) + gap
    return out


@dataclass
class _IdentityTask:
    identity: Identity
    params: SpeakersParams
    seed: int
    out: str
    cache: str


def _render_identity(task: _IdentityTask) -> list[dict[str, Any]]:
    """Render, trim, level and pass through the session channels every utterance of one identity."""
    start_work_unit()
    ident, p = task.identity, task.params
    out = Path(task.out)
    sessions, preferred = utterance_plan(ident, p, task.seed)
    phrases = keyword_phrases()
    items, meta = [], []
    for s, keyword_ids in enumerate(sessions, 1):
        for u, kw in enumerate(keyword_ids, 1):
            rng = child_rng(task.seed, "utt", ident.id, s, u)
            speed = ident.speed * rng.uniform(1 - p.speed_jitter, 1 + p.speed_jitter)
            pitch = ident.pitch * rng.uniform(1 - p.pitch_jitter, 1 + p.pitch_jitter)
            # formant offset α: render at speed/α and pitch/α, then resample by α
            items.append((phrases[kw], ident.voice.voice, speed / ident.formant, pitch / ident.formant))
            meta.append((s, u, kw, speed, pitch, rng))
    renderings = render(ident.voice.engine, items, Path(task.cache))
    table = engine_for(ident.voice.engine).symbol_table
    rows = []
    coloured: dict[int, list[np.ndarray]] = {s: [] for s in range(1, len(sessions) + 1)}
    for (s, u, kw, speed, pitch, rng), r in zip(meta, renderings):
        source_hz = int(round(r.sample_rate_hz * ident.formant))
        audio = resample(r.audio, source_hz, SAMPLE_RATE_HZ)
        segments = scale_segments(to_timit(r, table), source_hz, SAMPLE_RATE_HZ, len(audio))
        start, end = trim_silence(audio, -40.0)
        edge = int(p.edge_s * SAMPLE_RATE_HZ)
        start, end = max(0, start - edge), min(len(audio), end + edge)
        speech = set_rms_dbfs(
            audio[start:end], p.level_dbfs + rng.uniform(-p.level_jitter_db, p.level_jitter_db)
        )
        channel = session_channel(ident.id, s, p, task.seed)
        coloured[s].append(apply_channel(speech, channel, np.random.default_rng(channel["noise_seed"] + u)))
        rel = f"wav/{ident.id}/{s:02d}/{u:05d}.wav"
        phones, ends = [], []
        for seg in fold(segments, drop_hsharp=True):
            seg_end = min(seg.end, end) - start
            if seg_end > max(seg.start - start, 0):
                phones.append(seg.label)
                ends.append(round(seg_end * 1000 / SAMPLE_RATE_HZ))
        rows.append(
            {
                "utt_id": f"{ident.id}-{s:02d}-{u:04d}",
                "path": rel,
                "split": ident.split,
                "speaker": ident.id,
                "base_voice": ident.voice.key,
                "person": ident.voice.person or "-",
                "engine": ident.voice.engine,
                "voice": ident.voice.voice,
                "variant": ident.voice.variant or "-",
                "pitch": f"{pitch:.4f}",
                "speed": f"{speed:.4f}",
                "formant": f"{ident.formant:.4f}",
                "session": f"{s:02d}",
                "channel": channel_name(channel),
                "keyword_id": kw,
                "keyword": phrases[kw],
                "preferred": ",".join(preferred) or "-",
                "phones": " ".join(phones),
                "phone_ends_ms": " ".join(map(str, ends)),
                "duration": f"{len(speech) / SAMPLE_RATE_HZ:.3f}",
            }
        )
    for s, utterances in coloured.items():
        chain = session_channel(ident.id, s, p, task.seed)["chain"]
        for (u, _), audio in zip(enumerate(utterances, 1), apply_chain(utterances, chain)):
            write_wav(out / f"wav/{ident.id}/{s:02d}/{u:05d}.wav", audio, SAMPLE_RATE_HZ)
    return rows


def read_prompt(path: Path) -> np.ndarray:
    """A prompt as 16 kHz float32: soundfile for WAV, sox for GSM 6.10 (``-R -D``)."""
    if path.suffix.lower() != ".gsm":
        return read_wav(path, SAMPLE_RATE_HZ)[0]
    sox = shutil.which("sox")
    if sox is None:
        raise MissingToolError("`sox` not found (needed for .gsm prompts); install the Debian package `sox`")
    out = subprocess.run(
        [
            sox,
            "-R",
            "-D",
            str(path),
            "-t",
            "raw",
            "-e",
            "signed",
            "-b",
            "16",
            "-c",
            "1",
            "-r",
            str(SAMPLE_RATE_HZ),
            "-",
        ],
        capture_output=True,
    )
    if out.returncode != 0 or not out.stdout:
        raise RuntimeError(f"{path}: cannot decode GSM ({out.stderr.decode(errors='replace')[-200:]})")
    return np.frombuffer(out.stdout, dtype="<i2").astype(np.float32) / 32768.0


def _real_prompts(ctx: BuildContext, params: SpeakersParams) -> tuple[list[dict], list[dict]]:
    """Asterisk prompts of real persons (en and es Allison are one): the digits and a seeded draw."""
    persons = sorted({REAL_PACKAGES[lang][2] for lang in params.real_languages})
    person_ids = {name: f"id{90001 + i}" for i, name in enumerate(persons)}
    rows, sources = [], []
    for lang in params.real_languages:
        package, folder, person, _, suffix = REAL_PACKAGES[lang]
        pkg = ctx.fetcher.fetch(package)
        base = pkg.root / "usr/share/asterisk/sounds" / folder
        if not base.is_dir():
            raise FileNotFoundError(f"{package} {pkg.version}: {base} is missing")
        files = sorted(p for p in base.rglob(f"*{suffix}"))
        digits = [base / "digits" / f"{d}{suffix}" for d in range(10)]
        others = [f for f in files if f not in digits]
        rng = child_rng(ctx.seed, "real", lang)
        chosen = digits + [others[i] for i in rng.permutation(len(others))]
        kept, seen, members = [], set(), []
        for path in chosen:
            if len(kept) >= params.real_prompts_per_language:
                break
            audio = read_prompt(path)
            start, end = trim_silence(audio, -40.0)
            if not 0.4 <= (end - start) / SAMPLE_RATE_HZ <= 8.0:
                continue
            digest = pcm_hash(audio[start:end])
            if digest in seen:  # re-encoded duplicates
                continue
            seen.add(digest)
            edge = int(params.edge_s * SAMPLE_RATE_HZ)
            speech = set_rms_dbfs(audio[max(0, start - edge) : end + edge], params.level_dbfs)
            stem = path.relative_to(base).with_suffix("").as_posix()
            text_id = f"digit_{path.stem}" if path in digits else f"{lang}:{stem}"
            u = len(kept) + 1
            pid = person_ids[person]
            rel = f"wav/{pid}/{lang}/{u:05d}.wav"
            write_wav(ctx.out / rel, speech, SAMPLE_RATE_HZ)
            member = path.relative_to(pkg.root).as_posix()
            members.append(member)
            kept.append(
                {
                    "utt_id": f"{pid}-{lang}-{u:04d}",
                    "path": rel,
                    "split": "real",
                    "speaker": pid,
                    "base_voice": f"asterisk:{person}",
                    "person": person,
                    "engine": "recording",
                    "voice": folder,
                    "variant": "-",
                    "pitch": "1",
                    "speed": "1",
                    "formant": "1",
                    "session": lang,
                    "channel": "asterisk-8k",
                    "keyword_id": text_id,
                    "keyword": stem,
                    "preferred": "-",
                    "phones": "",
                    "phone_ends_ms": "",
                    "duration": f"{len(speech) / SAMPLE_RATE_HZ:.3f}",
                    "_member": member,
                    "_source": f"{package} {pkg.version}",
                }
            )
        rows += kept
        sources.append(deb_record(pkg, members))
    return rows, sources


def make_trials(rows: list[dict], seed: int, name: str) -> dict[str, list[tuple[int, str, str]]]:
    """TK and NTK trial lists (n_enrol = 1, half targets): for every speaker and keyword with a take, a
    target and a non-target test item, sharing the keyword (TK) or not (NTK). Non-targets come from other
    persons / base voices, never from a sibling of the same base voice."""
    by_speaker: dict[str, list[dict]] = {}
    for r in rows:
        by_speaker.setdefault(r["speaker"], []).append(r)
    trials: dict[str, list[tuple[int, str, str]]] = {"tk": [], "ntk": []}
    for spk in sorted(by_speaker):
        own = by_speaker[spk]
        others = [
            r
            for r in rows
            if r["base_voice"] != own[0]["base_voice"]
            and (r["person"] == "-" or r["person"] != own[0]["person"])
        ]
        for kw in sorted({r["keyword_id"] for r in own}):
            rng = child_rng(seed, "trial", name, spk, kw)
            enrol_pool = [r for r in own if r["keyword_id"] == kw]
            enrol = enrol_pool[int(rng.integers(len(enrol_pool)))]
            candidates = {
                ("tk", 1): [r for r in own if r["keyword_id"] == kw and r is not enrol],
                ("tk", 0): [r for r in others if r["keyword_id"] == kw],
                ("ntk", 1): [r for r in own if r["keyword_id"] != kw],
                ("ntk", 0): [r for r in others if r["keyword_id"] != kw],
            }
            if not candidates[("tk", 1)] or not candidates[("tk", 0)]:
                candidates[("tk", 1)] = candidates[("tk", 0)] = []  # keep TK lists balanced
            for (kind, target), pool in candidates.items():
                if pool:
                    test = pool[int(rng.integers(len(pool)))]
                    trials[kind].append((target, enrol["path"][4:], test["path"][4:]))
    return trials


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def write_librispeech_view(out: Path, rows: list[dict]) -> None:
    """``librispeech/{train,test,real}/<id>/<session>/<id>-<session>-<utt>.wav`` (hard links) + trans.txt."""
    transcripts: dict[Path, list[str]] = {}
    for r in rows:
        spk, session, utt = r["speaker"], r["session"], int(Path(r["path"]).stem)
        folder = out / "librispeech" / r["split"] / spk / session
        utt_id = f"{spk}-{session}-{utt:04d}"
        _link(out / r["path"], folder / f"{utt_id}.wav")
        text = re.sub(r"[^A-Za-z' ]+", " ", r["keyword"]).upper().strip() or r["keyword_id"].upper()
        transcripts.setdefault(folder / f"{spk}-{session}.trans.txt", []).append(f"{utt_id} {text}")
    for path, lines in transcripts.items():
        path.write_text("\n".join(sorted(lines)) + "\n")


def build(ctx: BuildContext) -> dict[str, Any]:
    params = PROFILES[ctx.profile]
    overrides: dict[str, Any] = {}
    if "mbrola" in ctx.extras:
        overrides["mbrola_voices"] = MBROLA_VOICES
    for extra in ctx.extras:  # --extras confound=0 gives balanced training text (the control condition)
        if extra.startswith("confound="):
            overrides["confound"] = float(extra.split("=", 1)[1])
    params = SpeakersParams(**{**asdict(params), **overrides})
    engines, warnings = usable_engines(params, ctx)
    sources = [
        wheel_record("espeakng-loader", ["GPL-3+"]),
        generated_record("keywords_en.txt"),
        *engine_sources(params, engines, ctx.fetcher),
    ]
    identities = [i for i in plan_identities(params, ctx.seed) if i.voice.engine in engines]
    tasks = [_IdentityTask(i, params, ctx.seed, str(ctx.out), str(ctx.fetcher.cache)) for i in identities]
    ctx.log(
        f"synth-speakers ({ctx.profile}): {len(identities)} identities, "
        f"{len(identities) * params.sessions * params.utterances_per_session} utterances, "
        f"{ctx.workers} worker(s)"
    )
    results = run_tasks(_render_identity, tasks, ctx.workers, log_progress(ctx.log, len(tasks), "identities"))
    rows = [row for result in results for row in result]
    if params.real_languages:
        real_rows, real_sources = _real_prompts(ctx, params)
        rows += real_rows
        sources += real_sources
    else:
        warnings.append("no real/ Asterisk prompts in this profile (no download)")

    noise_rows, noise_sources, noise_warnings = write_noise_folder(
        ctx, ctx.out / "noise", params.noise_seconds, params.minetest_noise
    )
    sources += noise_sources
    warnings += noise_warnings

    write_csv(ctx.out / "utterances.tsv", rows, UTT_FIELDS, delimiter="\t")
    meta = [
        {
            "VoxCeleb1 ID": i.id,
            "VGGFace1 ID": i.voice.voice.replace("+", "_"),
            "Gender": i.gender,
            "Nationality": i.voice.voice.split("+")[0] if i.voice.engine == "espeak-ng" else i.voice.engine,
            "Set": "dev" if i.split == "train" else "test",
        }
        for i in identities
    ]
    real_people = {}
    for r in rows:
        if r["split"] == "real":
            real_people.setdefault(r["speaker"], r)
    meta += [
        {
            "VoxCeleb1 ID": spk,
            "VGGFace1 ID": r["person"],
            "Gender": next(v[3] for v in REAL_PACKAGES.values() if v[2] == r["person"]),
            "Nationality": "asterisk",
            "Set": "real",
        }
        for spk, r in sorted(real_people.items())
    ]
    write_csv(
        ctx.out / "vox1_meta.csv",
        meta,
        ["VoxCeleb1 ID", "VGGFace1 ID", "Gender", "Nationality", "Set"],
        delimiter="\t",
    )
    write_librispeech_view(ctx.out, rows)
    trials_dir = ctx.out / "trials"
    trials_dir.mkdir()
    trial_counts = {}
    for split in ("test", "real"):
        split_rows = [r for r in rows if r["split"] == split]
        if not split_rows:
            continue
        for kind, lines in make_trials(split_rows, ctx.seed, split).items():
            (trials_dir / f"{split}_{kind}.txt").write_text("".join(f"{t} {a} {b}\n" for t, a, b in lines))
            trial_counts[f"{split}_{kind}"] = {"targets": sum(t for t, _, _ in lines), "trials": len(lines)}
    provenance = [
        {
            "path": r["path"],
            "source": r.get("_source", r["engine"]),
            "member": r.get("_member", ""),
            "voice": r["voice"],
            "parameters": as_json({k: r[k] for k in ("pitch", "speed", "formant", "channel")}),
        }
        for r in rows
    ]
    provenance += [
        {
            "path": f"noise/{r['file']}",
            "source": r["source"],
            "member": r["member"],
            "voice": "",
            "parameters": r["parameters"],
        }
        for r in noise_rows
    ]
    write_csv(
        ctx.out / "provenance.csv",
        sorted(provenance, key=lambda r: r["path"]),
        ["path", "source", "member", "voice", "parameters"],
    )

    train_rows = [r for r in rows if r["split"] == "train"]
    preferred_fraction = (
        np.mean([r["keyword_id"] in r["preferred"].split(",") for r in train_rows]) if train_rows else 0.0
    )
    counts = {
        "identities": dict(Counter(i.split for i in identities)),
        "utterances": dict(Counter(r["split"] for r in rows)),
        "real_persons": len(real_people),
        "trials": trial_counts,
        "train_preferred_fraction": round(float(preferred_fraction), 4),
    }
    return manifest_fields(
        "synth_speakers",
        params,
        confound=params.confound,
        sources=sources,
        engines=engines,
        counts=counts,
        warnings=warnings,
    )


def sources(profile: str, extras: tuple[str, ...]) -> list[str]:
    params = PROFILES[profile]
    if profile == "smoke":
        return []
    packages = festival_packages(params.festival_voices) + ["minetest-data"]
    packages += sorted({REAL_PACKAGES[lang][0] for lang in params.real_languages})
    if "mbrola" in extras:
        packages += mbrola_packages()
    return packages


BUILDER = CorpusBuilder(
    name="synth-speakers",
    description="Synthetic identities saying 20 keyword phrases in sessions (VoxCeleb1 + LibriSpeech views)",
    build=build,
    sources=sources,
)
