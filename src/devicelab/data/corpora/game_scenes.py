"""``game-scenes``: acoustic scenes cut from ambience recordings of Debian game and education packages, in
the DCASE2019 task 1A layout (corpora.md, "game-scenes"; read by :mod:`devicelab.data.datasets.tau2019`).

A city is a recording environment: its device chain, room, EQ, mains hum and noise floor, and its own share
of each scene's bed recordings. A location is an excerpt region of one bed recording of one (scene, city).
Per (scene, seen city) the training locations and the one test location lie on different recordings, and
no recording serves two cities, so splits are by source recording, never by segment.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from devicelab.audio.channel import db_to_gain, rms, set_rms_dbfs
from devicelab.audio.io import write_wav
from devicelab.core.seeding import child_rng
from devicelab.data.corpora import BuildContext, CorpusBuilder
from devicelab.data.corpora._sound import (
    DEVICE_DESCRIPTIONS,
    SAMPLE_RATE_HZ,
    CitySignature,
    Recording,
    SourceGlob,
    SourceSet,
    load_recordings,
    loop_excerpt,
    make_city,
    procedural_recordings,
    through_city,
)
from devicelab.data.corpora._speech import (
    as_json,
    log_progress,
    manifest_fields,
    run_tasks,
    stable_int,
    write_csv,
)

LINCITY = "usr/share/games/lincity-ng/sounds"
MEGAGLEST = "usr/share/games/megaglest"
MINETEST = "usr/share/games/minetest/games/minetest_game/mods"
GCOMPRIS = "usr/share/gcompris-qt/rcc"


def _lincity(*stems: str) -> list[SourceGlob]:
    """lincity takes ``<Stem><n>.wav``; a stem ending in ``*`` also takes its longer names."""
    return [
        SourceGlob(
            "lincity-ng-data",
            f"{LINCITY}/{stem}.wav" if stem.endswith("*") else f"{LINCITY}/{stem}[0-9]*.wav",
        )
        for stem in stems
    ]


def _gcompris(bundle: str, inner: str) -> SourceGlob:
    return SourceGlob("gcompris-qt-data", f"{GCOMPRIS}/{bundle}!{inner}")


# corpora.md, game-scenes "Sources and scenes" (quick)
QUICK_BEDS: dict[str, list[SourceGlob]] = {
    "forest": [
        SourceGlob("megaglest-data", f"{MEGAGLEST}/tilesets/*/sounds/day.ogg"),
        SourceGlob("megaglest-data", f"{MEGAGLEST}/tilesets/*/sounds/sunny_day.ogg"),
        SourceGlob("megaglest-data", f"{MEGAGLEST}/tilesets/*/sounds/desertday.ogg"),
        *_lincity("ParklandPlane", "Green"),
    ],
    "water": [
        *_lincity("Water", "ParklandLake"),
        SourceGlob("minetest-data", f"{MINETEST}/env_sounds/sounds/env_sounds_water.*.ogg"),
    ],
    "fire": [
        *_lincity("Fire", "FireWasteland"),
        SourceGlob("minetest-data", f"{MINETEST}/fire/sounds/fire_fire.*.ogg"),
        SourceGlob("minetest-data", f"{MINETEST}/fire/sounds/fire_large.ogg"),
        SourceGlob("minetest-data", f"{MINETEST}/fire/sounds/fire_small.ogg"),
        SourceGlob("minetest-data", f"{MINETEST}/env_sounds/sounds/env_sounds_lava.*.ogg"),
    ],
    "street": [
        *_lincity("TraficHigh", "TraficLow", "RailTrain", "DirtTrack"),
        _gcompris("memory-sound.rcc", "*LRStartAndStopCarEngine*"),
        _gcompris("memory-sound.rcc", "*LRTrain_slowing_down*"),
    ],
    "industry": [
        *_lincity("IndustryHigh", "IndustryLight", "CoalMine", "OreMine", "Mill", "Blacksmith", "Pottery"),
    ],
    "crowd": [
        *_lincity("SportsCroud", "School", "University", "Market*"),
        _gcompris("memory-sound.rcc", "*LRApplauses_*"),
    ],
    "residential": _lincity("Residential*"),
    "construction": _lincity("MonumentConstruction", "Build", "Raze", "Monument"),
}
# what full adds where the rule below lets it in (0ad-data and wesnoth are not read yet)
FULL_EXTRA_BEDS: dict[str, list[SourceGlob]] = {
    "rain": [
        SourceGlob("megaglest-data", f"{MEGAGLEST}/tilesets/*/sounds/rain.*"),
        _gcompris("memory-sound.rcc", "*LRRain_in_garden*"),
    ],
    "farm": _lincity("Farm", "OrganicFarm"),
    "harbour": [*_lincity("Harbor"), _gcompris("watercycle.rcc", "*harbor*")],
    "night": [SourceGlob("megaglest-data", f"{MEGAGLEST}/tilesets/*/sounds/night*.ogg")],
}
# short foreground events a scene carries (`events_per_clip`), dealt to cities as disjoint shares
MEGAPACK = f"{MEGAGLEST}/techs/megapack/commondata/sounds"
SCENE_EVENTS: dict[str, list[SourceGlob]] = {
    "forest": [
        SourceGlob("megaglest-data", f"{MEGAGLEST}/tilesets/*/sounds/owl.ogg"),
        SourceGlob("megaglest-data", f"{MEGAGLEST}/tilesets/*/sounds/hawk.ogg"),
        SourceGlob("megaglest-data", f"{MEGAGLEST}/tilesets/*/sounds/rooster.ogg"),
        SourceGlob("megaglest-data", f"{MEGAGLEST}/tilesets/*/sounds/good_morning.wav"),
        _gcompris("explore_farm_animals.rcc", "*owl.ogg"),
        SourceGlob("minetest-data", f"{MINETEST}/default/sounds/default_grass_footstep.*.ogg"),
    ],
    "water": [
        SourceGlob("minetest-data", f"{MINETEST}/default/sounds/default_water_footstep.*.ogg"),
        _gcompris("core.rcc", "*sounds/water.wav"),
        _gcompris("clickgame.rcc", "*.wav"),
        _gcompris("watercycle.rcc", "*bubble.wav"),
        _gcompris("canal_lock.rcc", "*water_fill.wav"),
        _gcompris("memory-sound.rcc", "*LRFrogsInPond*"),
    ],
    "fire": [
        SourceGlob("minetest-data", f"{MINETEST}/fire/sounds/fire_extinguish_flame.*.ogg"),
        SourceGlob("minetest-data", f"{MINETEST}/fire/sounds/fire_flint_and_steel.ogg"),
        SourceGlob("minetest-data", f"{MINETEST}/tnt/sounds/tnt_gunpowder_burning.ogg"),
        SourceGlob("minetest-data", f"{MINETEST}/tnt/sounds/tnt_ignite.ogg"),
        SourceGlob("minetest-data", f"{MINETEST}/default/sounds/default_cool_lava.*.ogg"),
    ],
    "street": [
        _gcompris("traffic.rcc", "*car.wav"),
        _gcompris("railroad.rcc", "*train.wav"),
        _gcompris("guessnumber.rcc", "*helicopter.wav"),
        SourceGlob("minetest-data", f"{MINETEST}/carts/sounds/carts_cart_moving.*.ogg"),
        SourceGlob("megaglest-data", f"{MEGAPACK}/horseman_walk*.wav"),
    ],
    "industry": [
        _gcompris("memory-sound.rcc", "*LRFactory_noise_*"),  # 0.3-0.8 s: events, too short for beds
        SourceGlob("megaglest-data", f"{MEGAPACK}/anvil*.wav"),
        SourceGlob("minetest-data", f"{MINETEST}/default/sounds/default_dig_metal.ogg"),
        SourceGlob("minetest-data", f"{MINETEST}/default/sounds/default_dug_metal.*.ogg"),
    ],
    "crowd": [
        SourceGlob("megaglest-data", f"{MEGAPACK}/{unit}_ack*.wav")
        for unit in ("archer", "horseman", "swordman", "guard", "worker", "axe_thrower")
    ],
    "residential": [
        _gcompris("explore_farm_animals.rcc", "*dog.ogg"),
        _gcompris("explore_farm_animals.rcc", "*cat.ogg"),
        _gcompris("melody.rcc", "*knock.wav"),
        SourceGlob("minetest-data", f"{MINETEST}/doors/sounds/doors_door_*.ogg"),
        SourceGlob("minetest-data", f"{MINETEST}/default/sounds/default_wood_footstep.*.ogg"),
    ],
    "construction": [
        SourceGlob("megaglest-data", f"{MEGAPACK}/worker_build*.wav"),
        SourceGlob("megaglest-data", f"{MEGAPACK}/technician_build*.wav"),
        SourceGlob("minetest-data", f"{MINETEST}/default/sounds/default_place_node*.ogg"),
        SourceGlob("minetest-data", f"{MINETEST}/default/sounds/default_dig_cracky.*.ogg"),
        _gcompris("mining.rcc", "*pickaxe.wav"),
        _gcompris("core.rcc", "*brick.wav"),
    ],
}
# smoke: procedural beds (no download), scene -> kind
SMOKE_BEDS = {"rain": "hiss", "traffic": "rumble", "birds": "chirps"}
SMOKE_EVENTS = {"rain": "knock", "traffic": "buzz", "birds": "bell"}
CITY_NAMES = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta")


@dataclass(frozen=True)
class ScenesParams:
    """Sizes of one profile (corpora.md, game-scenes "Sizes")."""

    scenes: tuple[str, ...] = tuple(QUICK_BEDS)
    seen_devices: tuple[str, ...] = ("a", "b", "c", "s1")  # one city per device
    unseen_devices: tuple[str, ...] = ("s2", "s3")
    clip_seconds: float = 5.0
    train_locations: int = 3  # per (scene, seen city)
    train_segments: int = 4  # clips per training location
    test_locations: int = 1  # per (scene, seen city), on another recording
    test_segments: int = 8
    unseen_locations: int = 4  # per (scene, unseen city)
    unseen_segments: int = 6
    lowpass_hz: float = 5500.0
    bed_dbfs: float = -30.0
    bed_jitter_db: float = 4.0
    events_per_clip: tuple[int, int] = (1, 3)  # where the scene has event sources
    event_db_over_bed: tuple[float, float] = (4.0, 14.0)
    procedural: bool = False  # smoke: generated beds, no download
    procedural_recordings: int = 6


PROFILES: dict[str, ScenesParams] = {
    "smoke": ScenesParams(
        scenes=tuple(SMOKE_BEDS),
        seen_devices=("a", "b"),
        unseen_devices=("s2",),
        clip_seconds=1.0,
        train_locations=2,
        train_segments=2,
        test_segments=2,
        unseen_locations=2,
        unseen_segments=2,
        events_per_clip=(0, 1),
        procedural=True,
    ),
    "quick": ScenesParams(),
    "full": ScenesParams(
        scenes=(*QUICK_BEDS, *FULL_EXTRA_BEDS),
        clip_seconds=10.0,
        train_segments=12,
        test_segments=24,
        unseen_segments=18,
    ),
}


@dataclass(frozen=True)
class Location:
    """An excerpt region of one bed recording of one (scene, city)."""

    scene: str
    city: str
    number: int  # unique within the city
    recording: str  # source id
    start: int  # first sample of the region
    segments: int
    split: str  # train | test (seen cities) | unseen

    @property
    def identifier(self) -> str:
        return f"{self.city}-{self.number}"


@dataclass
class ScenePlan:
    """Which recordings each city gets for a scene, and its locations."""

    scene: str
    recordings_by_city: dict[str, dict[str, list[str]]]  # city -> {"train"|"test"|"unseen": [source ids]}
    locations: list[Location] = field(default_factory=list)


def _cities(params: ScenesParams, seed: int) -> list[CitySignature]:
    devices = [(d, True) for d in params.seen_devices] + [(d, False) for d in params.unseen_devices]
    return [make_city(CITY_NAMES[i], d, seen, seed) for i, (d, seen) in enumerate(devices)]


def recording_family(r: Recording) -> str:
    """Takes of one kind of place in one package (``TraficHigh1..3``, ``env_sounds_water.1..4``, the
    megaglest tilesets' ``day.ogg``): the file name without its take number."""
    stem = r.member.replace("!", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return f"{r.package}:{re.sub(r'[._-]?[0-9]+$', '', stem)}"


def deal_recordings(
    recordings: list[Recording], cities: list[CitySignature], seed: int, scene: str
) -> dict[str, dict[str, list[str]]]:
    """Deal a scene's recordings to cities: ``{city: {"train"|"test"|"unseen": [source ids]}}``.

    Each seen city first takes two takes of one family (``TraficHigh1`` and ``TraficHigh2``), one for its
    test location and one for training, so that a test location is a new recording of a kind of place the
    city's training has heard [reconstruction: TAU's test locations are new places of a city's scenes];
    cities without such a pair take any two recordings. Each unseen city then takes one recording, from
    the families with most takes left, and the rest go to the training side of the seen cities in turn.
    Packages alternate where they can.
    """
    families: dict[str, list[Recording]] = defaultdict(list)
    for r in sorted(recordings, key=lambda r: stable_int(seed, "deal", scene, r.source_id)):
        families[recording_family(r)].append(r)
    order = sorted(families, key=lambda f: stable_int(seed, "family", scene, f))
    used_packages: Counter[str] = Counter()

    def take(min_left: int) -> list[Recording] | None:
        """``min_left`` takes of the family with most takes left (at least ``min_left``), packages in turn."""
        spare = [f for f in order if len(families[f]) >= min_left]
        if not spare:
            return None
        spare.sort(key=lambda f: (used_packages[families[f][0].package], -len(families[f])))
        order.remove(spare[0])
        order.append(spare[0])
        picked = families[spare[0]][:min_left]
        del families[spare[0]][:min_left]
        used_packages[picked[0].package] += 1
        return picked

    out: dict[str, dict[str, list[str]]] = {c.name: {"train": [], "test": [], "unseen": []} for c in cities}
    seen = [c for c in cities if c.seen]
    for c in seen:
        pair = take(2) or [*(take(1) or []), *(take(1) or [])]
        out[c.name]["test"].append(pair[0].source_id)
        out[c.name]["train"].append(pair[1].source_id)
    for c in cities:
        if not c.seen:
            single = take(2) or take(1)
            assert single is not None
            out[c.name]["unseen"].append(single[0].source_id)
            if len(single) > 1:  # the family's other take goes back to the pool
                families[recording_family(single[1])].insert(0, single[1])
    rest = sorted(
        (r for f in families.values() for r in f), key=lambda r: stable_int(seed, "deal", scene, r.source_id)
    )
    for i, r in enumerate(rest):
        out[seen[i % len(seen)].name]["train"].append(r.source_id)
    return out


def min_recordings(params: ScenesParams) -> int:
    """A scene needs 2 recordings per seen city (train, test) and one per unseen city."""
    return 2 * len(params.seen_devices) + len(params.unseen_devices)


def plan_scene(
    scene: str, recordings: list[Recording], cities: list[CitySignature], params: ScenesParams, seed: int
) -> ScenePlan:
    """Deal a scene's recordings to cities and lay out its locations (corpora.md, game-scenes "Splits").

    Recordings are dealt by :func:`deal_recordings`; no recording serves two cities or both sides of a
    split.
    """
    by_city = deal_recordings(recordings, cities, seed, scene)
    lengths = {r.source_id: len(r.audio) for r in recordings}
    plan = ScenePlan(scene, by_city)
    scene_index = params.scenes.index(scene)
    for c in cities:
        layout = (
            [
                ("train", params.train_locations, params.train_segments),
                ("test", params.test_locations, params.test_segments),
            ]
            if c.seen
            else [("unseen", params.unseen_locations, params.unseen_segments)]
        )
        number = scene_index * 100
        for split, n_locations, segments in layout:
            pool = by_city[c.name][split]
            for j in range(n_locations):
                source = pool[j % len(pool)]
                share = n_locations // len(pool) + (1 if j % len(pool) < n_locations % len(pool) else 0)
                slot = j // len(pool)
                rng = child_rng(seed, "location", scene, c.name, split, j)
                span = lengths[source] / max(1, share)
                start = int(slot * span + rng.uniform(0, 0.5) * span)
                plan.locations.append(Location(scene, c.name, number, source, start, segments, split))
                number += 1
    return plan


@dataclass
class _LocationTask:
    location: Location
    city: CitySignature
    bed: np.ndarray
    bed_ref: tuple[str, str, str]  # package, version, member
    events: list[tuple[np.ndarray, str]]  # (audio, source id) of the city's event share
    params: ScenesParams
    seed: int
    out: str


def _clip_name(loc: Location, segment: int, device: str) -> str:
    return f"audio/{loc.scene}-{loc.city}-{loc.number}-{segment}-{device}.wav"


def _render_location(task: _LocationTask) -> list[dict[str, Any]]:
    """Every clip of one location: bed excerpt, events, level, then the city (room ... device)."""
    loc, p, city = task.location, task.params, task.city
    n = int(p.clip_seconds * SAMPLE_RATE_HZ)
    level_rng = child_rng(task.seed, "level", loc.scene, loc.identifier)
    bed_dbfs = p.bed_dbfs + level_rng.uniform(-p.bed_jitter_db, p.bed_jitter_db)
    rows = []
    for segment in range(loc.segments):
        clip_id = f"{loc.scene}-{loc.identifier}-{segment}"
        rng = child_rng(task.seed, "clip", clip_id)
        offset = loc.start + segment * n
        clip = set_rms_dbfs(loop_excerpt(task.bed, offset, n), bed_dbfs)
        used_events = []
        if task.events:
            for _ in range(int(rng.integers(p.events_per_clip[0], p.events_per_clip[1] + 1))):
                audio, source = task.events[int(rng.integers(len(task.events)))]
                audio = audio[: n // 2]
                start = int(rng.integers(0, max(1, n - len(audio))))
                gain = db_to_gain(bed_dbfs + rng.uniform(*p.event_db_over_bed)) / rms(audio)
                clip[start : start + len(audio)] += audio[: n - start] * gain
                used_events.append(f"{source}@{start / SAMPLE_RATE_HZ:.2f}")
        clip = through_city(clip, city, task.seed, clip_id, p.lowpass_hz)
        name = _clip_name(loc, segment, city.device)
        write_wav(Path(task.out) / name, clip, SAMPLE_RATE_HZ)
        package, version, member = task.bed_ref
        rows.append(
            {
                "filename": name,
                "scene_label": loc.scene,
                "identifier": loc.identifier,
                "source_label": city.device,
                "city": city.name,
                "location": loc.number,
                "device": city.device,
                "seen": int(city.seen),
                "split": loc.split,
                "bed_package": f"{package} {version}",
                "bed_file": member,
                "bed_offset_s": round((offset % len(task.bed)) / SAMPLE_RATE_HZ, 3),
                "events": ";".join(used_events),
            }
        )
    return rows


def _load_sources(ctx: BuildContext, params: ScenesParams) -> tuple[SourceSet, dict[str, list[Recording]]]:
    if params.procedural:
        beds = procedural_recordings(
            {s: SMOKE_BEDS[s] for s in params.scenes}, params.procedural_recordings, 8.0, ctx.seed
        )
        events = procedural_recordings({s: SMOKE_EVENTS[s] for s in params.scenes}, 3, 0.5, ctx.seed)
        return beds, events.recordings
    table = {s: (QUICK_BEDS | FULL_EXTRA_BEDS)[s] for s in params.scenes}
    beds = load_recordings(ctx.fetcher, table, min_seconds=1.0)
    events = load_recordings(
        ctx.fetcher, {s: SCENE_EVENTS[s] for s in params.scenes if s in SCENE_EVENTS}, trim=True
    )
    known = {r.pcm_sha1 for rs in beds.recordings.values() for r in rs}
    event_recordings = {s: [r for r in rs if r.pcm_sha1 not in known] for s, rs in events.recordings.items()}
    beds.sources = _merge_sources(beds.sources + events.sources)
    beds.warnings += events.warnings
    return beds, event_recordings


def _merge_sources(records: list[dict]) -> list[dict]:
    """One record per package (files used and per-file licences joined)."""
    merged: dict[str, dict] = {}
    for r in records:
        if r["name"] not in merged:
            merged[r["name"]] = {**r, "files_used": list(r.get("files_used", []))}
            continue
        m = merged[r["name"]]
        m["files_used"] = sorted(set(m["files_used"]) | set(r.get("files_used", [])))
        if "licence_per_file" in r:
            m["licence_per_file"] = {**m.get("licence_per_file", {}), **r["licence_per_file"]}
    return list(merged.values())


META_FIELDS = ["filename", "scene_label", "identifier", "source_label"]
EXTRA_FIELDS = [
    "filename", "city", "location", "device", "seen", "split",
    "bed_package", "bed_file", "bed_offset_s", "events",
]  # fmt: skip


def build(ctx: BuildContext) -> dict[str, Any]:
    params = PROFILES[ctx.profile]
    sources, events = _load_sources(ctx, params)
    cities = _cities(params, ctx.seed)
    warnings = list(sources.warnings)
    plans = []
    for scene in params.scenes:
        recordings = sources.recordings.get(scene, [])
        if len(recordings) < min_recordings(params):
            warnings.append(
                f"scene {scene} dropped: {len(recordings)} distinct bed recordings < {min_recordings(params)}"
            )
            continue
        plans.append(plan_scene(scene, recordings, cities, params, ctx.seed))
    if not plans:
        raise RuntimeError(f"game-scenes ({ctx.profile}): no scene has enough bed recordings")

    by_id = {r.source_id: r for rs in sources.recordings.values() for r in rs}
    city_of = {c.name: c for c in cities}
    tasks = []
    for plan in plans:
        shares = _event_shares(events.get(plan.scene, []), cities, ctx.seed, plan.scene)
        for loc in plan.locations:
            bed = by_id[loc.recording]
            tasks.append(
                _LocationTask(
                    loc,
                    city_of[loc.city],
                    bed.audio,
                    (bed.package, bed.version, bed.member),
                    shares[loc.city],
                    params,
                    ctx.seed,
                    str(ctx.out),
                )
            )
    n_clips = sum(t.location.segments for t in tasks)
    ctx.log(
        f"game-scenes ({ctx.profile}): {len(plans)} scenes, {len(cities)} cities, {n_clips} clips, "
        f"{ctx.workers} worker(s)"
    )
    results = run_tasks(_render_location, tasks, ctx.workers, log_progress(ctx.log, len(tasks), "locations"))
    rows = sorted((row for result in results for row in result), key=lambda r: r["filename"])

    write_csv(ctx.out / "meta.csv", rows, META_FIELDS, delimiter="\t")
    write_csv(ctx.out / "meta_extra.csv", rows, EXTRA_FIELDS)
    setup = ctx.out / "evaluation_setup"
    write_csv(
        setup / "fold1_train.csv",
        [r for r in rows if r["split"] == "train"],
        ["filename", "scene_label"],
        "\t",
    )
    evaluate = [r for r in rows if r["split"] != "train"]
    write_csv(setup / "fold1_evaluate.csv", evaluate, ["filename", "scene_label"], "\t")
    write_csv(setup / "fold1_test.csv", evaluate, ["filename"], "\t")
    write_csv(
        ctx.out / "provenance.csv",
        [
            {
                "path": r["filename"],
                "source": r["bed_package"],
                "member": r["bed_file"],
                "parameters": as_json(
                    {"offset_s": r["bed_offset_s"], "events": r["events"], "city": r["city"]}
                ),
            }
            for r in rows
        ],
        ["path", "source", "member", "parameters"],
    )

    recordings_per_scene = {
        plan.scene: {
            "available": len(sources.recordings[plan.scene]),
            "packages": dict(Counter(r.package for r in sources.recordings[plan.scene])),
            "events": len(events.get(plan.scene, [])),
        }
        for plan in plans
    }
    counts: dict[str, Any] = {
        "clips": len(rows),
        "by_split": dict(Counter(r["split"] for r in rows)),
        "by_split_scene": {
            split: dict(sorted(Counter(r["scene_label"] for r in rows if r["split"] == split).items()))
            for split in ("train", "test", "unseen")
        },
        "by_city": dict(sorted(Counter(r["city"] for r in rows).items())),
        "recordings_per_scene": recordings_per_scene,
    }
    return manifest_fields(
        "game_scenes",
        params,
        cities=[c.describe() for c in cities],
        devices={c.device: DEVICE_DESCRIPTIONS[c.device] for c in cities},
        recordings_by_city={plan.scene: plan.recordings_by_city for plan in plans},
        skewed=False,
        sources=sources.sources,
        counts=counts,
        warnings=warnings,
    )


def _event_shares(
    events: list[Recording], cities: list[CitySignature], seed: int, scene: str
) -> dict[str, list[tuple[np.ndarray, str]]]:
    """Deal a scene's event recordings to cities (disjoint shares, round robin in a seeded order)."""
    shares: dict[str, list[tuple[np.ndarray, str]]] = {c.name: [] for c in cities}
    order = sorted(events, key=lambda r: stable_int(seed, "event-deal", scene, r.source_id))
    for i, r in enumerate(order):
        shares[cities[i % len(cities)].name].append((r.audio, r.source_id))
    return shares


def sources(profile: str, extras: tuple[str, ...]) -> list[str]:
    params = PROFILES[profile]
    if params.procedural:
        return []
    table = QUICK_BEDS | FULL_EXTRA_BEDS
    names = {g.package for s in params.scenes for g in table[s] + SCENE_EVENTS.get(s, [])}
    return sorted(names)


BUILDER = CorpusBuilder(
    name="game-scenes",
    description="acoustic scenes from game ambience recordings in six cities (DCASE2019 task 1A layout)",
    build=build,
    sources=sources,
)
