"""Sound event detection metrics: event- and segment-based F1 (sed_eval), PSDS and intersection-based F1
(sed_scores_eval), clip-tag F1, and the DCASE submission tsv.

The DCASE 2019 task 4 metric is sed_eval's event-based macro F1 with a 200 ms onset collar and an offset
collar of max(200 ms, 20 % of the reference length) (Mesaros et al., "Metrics for polyphonic sound event
detection", 2016; the task-4 baseline ``evaluation_measures.py``). PSDS (Bilen et al., ICASSP 2020) is
computed exactly on frame scores by sed_scores_eval (Ebbers et al., ICASSP 2022). Nothing here is a
re-implementation: the two packages do the counting, this module only converts the inputs.

Events are ``(filename, onset_s, offset_s, label)`` tuples throughout; F1 values are fractions in [0, 1].
"""

from __future__ import annotations

import csv
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

EventTuple = tuple[str, float, float, str]

# DCASE 2019 task 4 (sed-tritrain.md §7)
T_COLLAR_S = 0.2
PERCENTAGE_OF_LENGTH = 0.2
SEGMENT_S = 1.0
# PSDS scenario 1 (DCASE 2021+): DTC = GTC = 0.7, no cross-trigger penalty, alpha_st = 1, eFPR up to 100/h
PSDS1 = {"dtc_threshold": 0.7, "gtc_threshold": 0.7, "cttc_threshold": None, "alpha_ct": 0.0, "alpha_st": 1.0}
PSDS_MAX_EFPR = 100.0


class SedMetricError(ValueError):
    """Events or scores that the SED metrics cannot read; the message names the clip or label."""


@dataclass(frozen=True)
class SedScores:
    """F1 values of one comparison: macro (mean over classes), micro (pooled counts) and per class."""

    macro_f1: float
    micro_f1: float
    class_f1: dict[str, float] = field(default_factory=dict)


def _import_sed_eval():
    with warnings.catch_warnings():  # dcase_util imports pkg_resources (stack.md, problem 7)
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        import dcase_util
        import sed_eval
    return sed_eval, dcase_util


def _check(events: Iterable[EventTuple], classes: Sequence[str], what: str) -> list[EventTuple]:
    known, out = set(classes), []
    for filename, onset, offset, label in events:
        if label not in known:
            raise SedMetricError(
                f"{what}: {filename}: unknown label {label!r}; classes: {', '.join(classes)}"
            )
        if not offset >= onset:
            raise SedMetricError(f"{what}: {filename}: {label} has offset {offset} before onset {onset}")
        out.append((str(filename), float(onset), float(offset), str(label)))
    return out


def _by_file(
    reference: Iterable[EventTuple], estimated: Iterable[EventTuple], classes: Sequence[str], files
) -> tuple[dict[str, list], dict[str, list], list[str]]:
    ref = _check(reference, classes, "reference")
    est = _check(estimated, classes, "estimate")
    names = list(files) if files is not None else sorted({e[0] for e in ref})
    wanted = set(names)
    stray = sorted({e[0] for e in est} - wanted)
    if stray:
        raise SedMetricError(f"estimate: clips not in the reference: {', '.join(stray[:5])}")
    ref_by: dict[str, list] = {n: [] for n in names}
    est_by: dict[str, list] = {n: [] for n in names}
    for e in ref:
        if e[0] in wanted:
            ref_by[e[0]].append(e)
    for e in est:
        est_by[e[0]].append(e)
    return ref_by, est_by, names


def _container(dcase_util, events: list[EventTuple]):
    return dcase_util.containers.MetaDataContainer(
        [{"filename": f, "onset": a, "offset": b, "event_label": lab} for f, a, b, lab in events]
    )


def _scores(results: Mapping, classes: Sequence[str]) -> SedScores:
    def f(entry: Mapping) -> float:
        value = float(entry["f_measure"]["f_measure"])
        return 0.0 if np.isnan(value) else value

    return SedScores(
        macro_f1=f(results["class_wise_average"]),
        micro_f1=f(results["overall"]),
        class_f1={c: f(results["class_wise"][c]) for c in classes},
    )


def event_based_f1(
    reference: Iterable[EventTuple],
    estimated: Iterable[EventTuple],
    classes: Sequence[str],
    files: Iterable[str] | None = None,
    t_collar: float = T_COLLAR_S,
    percentage_of_length: float = PERCENTAGE_OF_LENGTH,
) -> SedScores:
    """Event-based F1 of sed_eval, onsets and offsets both evaluated (DCASE 2019 task 4's metric).

    ``files``: every evaluated clip (clips without reference events included); default: the clips of the
    reference. An empty system output scores 0 (``empty_system_output_handling='zero_score'``).
    """
    sed_eval, dcase_util = _import_sed_eval()
    ref_by, est_by, names = _by_file(reference, estimated, classes, files)
    metric = sed_eval.sound_event.EventBasedMetrics(
        event_label_list=list(classes),
        t_collar=t_collar,
        percentage_of_length=percentage_of_length,
        evaluate_onset=True,
        evaluate_offset=True,
        empty_system_output_handling="zero_score",
    )
    for name in names:
        metric.evaluate(_container(dcase_util, ref_by[name]), _container(dcase_util, est_by[name]))
    return _scores(metric.results(), classes)


def segment_based_f1(
    reference: Iterable[EventTuple],
    estimated: Iterable[EventTuple],
    classes: Sequence[str],
    files: Iterable[str] | None = None,
    segment_s: float = SEGMENT_S,
) -> SedScores:
    """Segment-based F1 of sed_eval on ``segment_s`` segments (1 s in DCASE 2019 task 4)."""
    sed_eval, dcase_util = _import_sed_eval()
    ref_by, est_by, names = _by_file(reference, estimated, classes, files)
    metric = sed_eval.sound_event.SegmentBasedMetrics(
        event_label_list=list(classes), time_resolution=segment_s
    )
    for name in names:
        metric.evaluate(_container(dcase_util, ref_by[name]), _container(dcase_util, est_by[name]))
    return _scores(metric.results(), classes)


def tag_f1(reference: np.ndarray, estimated: np.ndarray, classes: Sequence[str]) -> SedScores:
    """Clip-level tagging F1 from multi-hot matrices (N, K): macro over classes and micro (pooled)."""
    ref, est = np.asarray(reference, bool), np.asarray(estimated, bool)
    if ref.shape != est.shape or ref.ndim != 2 or ref.shape[1] != len(classes):
        raise SedMetricError(
            f"tags: reference {ref.shape} and estimate {est.shape} must both be (N, {len(classes)})"
        )

    def f1(r: np.ndarray, e: np.ndarray) -> float:
        tp, fp, fn = float((r & e).sum()), float((~r & e).sum()), float((r & ~e).sum())
        return 2 * tp / (2 * tp + fp + fn) if tp > 0 else 0.0

    per_class = {c: f1(ref[:, k], est[:, k]) for k, c in enumerate(classes)}
    return SedScores(float(np.mean(list(per_class.values()))), f1(ref, est), per_class)


def _score_frames(scores: Mapping[str, tuple[np.ndarray, np.ndarray]], classes: Sequence[str]) -> dict:
    from sed_scores_eval.base_modules.scores import create_score_dataframe

    out = {}
    for name, (frame_scores, timestamps) in scores.items():
        frame_scores, timestamps = np.asarray(frame_scores, np.float64), np.asarray(timestamps, np.float64)
        if frame_scores.ndim != 2 or frame_scores.shape[1] != len(classes):
            raise SedMetricError(
                f"scores: {name}: expected (frames, {len(classes)}), got {frame_scores.shape}"
            )
        if timestamps.shape != (frame_scores.shape[0] + 1,):
            raise SedMetricError(f"scores: {name}: expected {frame_scores.shape[0] + 1} timestamps")
        out[_audio_id(name)] = create_score_dataframe(frame_scores, timestamps, list(classes))
    return out


def _audio_id(filename: str) -> str:
    return filename[:-4] if filename.endswith(".wav") else filename


def _ground_truth(reference: Iterable[EventTuple], names: Iterable[str], classes: Sequence[str]) -> dict:
    truth: dict[str, list] = {_audio_id(n): [] for n in names}
    for filename, onset, offset, label in _check(reference, classes, "reference"):
        if _audio_id(filename) in truth:
            truth[_audio_id(filename)].append((onset, offset, label))
    return truth


def psds(
    scores: Mapping[str, tuple[np.ndarray, np.ndarray]],
    reference: Iterable[EventTuple],
    durations_s: Mapping[str, float],
    classes: Sequence[str],
    scenario: Mapping[str, float | None] = PSDS1,
    max_efpr: float = PSDS_MAX_EFPR,
) -> float:
    """PSDS (scenario 1 by default) of frame scores, by ``sed_scores_eval.intersection_based.psds``.

    ``scores[filename] = (frame_scores (T, K), timestamps (T + 1,))``: unthresholded posteriors and the
    frame boundaries in seconds. Clips with no reference event count for the false-positive rate. Every
    class needs at least one reference event (the true-positive rate is per class).
    """
    from sed_scores_eval import intersection_based

    frames = _score_frames(scores, classes)
    truth = _ground_truth(reference, scores, classes)
    missing = sorted(set(classes) - {e[2] for events in truth.values() for e in events})
    if missing:
        raise SedMetricError(f"PSDS needs reference events of every class; none for {', '.join(missing)}")
    durations = {_audio_id(n): float(durations_s[n]) for n in scores}
    value, *_ = intersection_based.psds(
        frames, truth, durations, max_efpr=max_efpr, num_jobs=1, **dict(scenario)
    )
    return float(value)


def intersection_f1(
    scores: Mapping[str, tuple[np.ndarray, np.ndarray]],
    reference: Iterable[EventTuple],
    classes: Sequence[str],
    threshold: float = 0.5,
    dtc_threshold: float = 0.5,
    gtc_threshold: float = 0.5,
) -> SedScores:
    """Intersection-based F1 (the PSDS detection criteria at one decision threshold) of frame scores,
    by ``sed_scores_eval.intersection_based.fscore``; micro is the F1 of the pooled counts."""
    from sed_scores_eval import intersection_based

    frames = _score_frames(scores, classes)
    truth = _ground_truth(reference, scores, classes)
    f, _, _, stats = intersection_based.fscore(
        frames, truth, threshold, dtc_threshold=dtc_threshold, gtc_threshold=gtc_threshold, num_jobs=1
    )
    per_class = {c: float(f[c]) for c in classes}
    tp = sum(float(stats[c]["tps"]) for c in classes)
    fp = sum(float(stats[c]["fps"]) for c in classes)
    n_ref = sum(float(stats[c]["n_ref"]) for c in classes)
    micro = 2 * tp / (tp + fp + n_ref) if tp > 0 else 0.0
    return SedScores(float(np.mean(list(per_class.values()))), micro, per_class)


def write_dcase_tsv(events: Iterable[EventTuple], path: str | Path) -> Path:
    """The DCASE task-4 submission file: ``filename onset offset event_label`` (TAB, header), written
    atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(["filename", "onset", "offset", "event_label"])
        for filename, onset, offset, label in sorted(events, key=lambda e: (e[0], e[1], e[3])):
            writer.writerow([filename, f"{onset:.3f}", f"{offset:.3f}", label])
    os.replace(tmp, path)
    return path


def library_versions() -> dict[str, str]:
    """Versions of the metric packages, printed with every result (sed-tritrain.md §7)."""
    from importlib.metadata import version

    return {name: version(name) for name in ("sed_eval", "sed_scores_eval", "dcase_util")}


__all__ = [
    "PSDS1",
    "SedMetricError",
    "SedScores",
    "event_based_f1",
    "intersection_f1",
    "library_versions",
    "psds",
    "segment_based_f1",
    "tag_f1",
    "write_dcase_tsv",
]
