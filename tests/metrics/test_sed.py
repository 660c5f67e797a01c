"""SED metrics on a hand-made reference whose answer is known (sed-tritrain.md §8), checked against sed_eval
called directly, and PSDS / intersection F1 on scores with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from devicelab.metrics.sed import (
    SedMetricError,
    event_based_f1,
    intersection_f1,
    library_versions,
    psds,
    segment_based_f1,
    tag_f1,
    write_dcase_tsv,
)

CLASSES = ["Dog", "Speech"]
REFERENCE = [("a.wav", 1.0, 2.0, "Dog"), ("a.wav", 3.0, 6.0, "Speech"), ("b.wav", 0.5, 1.5, "Dog")]
# a match; an onset off by 0.5 s (> 200 ms collar); an offset off by 1.0 s (> max(0.2, 0.2 · 1 s))
ESTIMATE = [("a.wav", 1.1, 2.1, "Dog"), ("a.wav", 3.5, 6.0, "Speech"), ("b.wav", 0.6, 2.5, "Dog")]


def test_event_based_f1_on_the_hand_made_reference():
    scores = event_based_f1(REFERENCE, ESTIMATE, CLASSES)
    assert scores.class_f1 == pytest.approx({"Dog": 0.5, "Speech": 0.0})
    assert scores.macro_f1 == pytest.approx(0.25)
    assert scores.micro_f1 == pytest.approx(1 / 3)


def test_segment_based_f1_on_the_hand_made_reference():
    assert segment_based_f1(REFERENCE, ESTIMATE, CLASSES).micro_f1 == pytest.approx(6 / 7)


def test_wrapper_equals_sed_eval_called_directly():
    import dcase_util
    import sed_eval

    def container(events):
        return dcase_util.containers.MetaDataContainer(
            [{"filename": f, "onset": a, "offset": b, "event_label": lab} for f, a, b, lab in events]
        )

    metric = sed_eval.sound_event.EventBasedMetrics(
        event_label_list=CLASSES,
        t_collar=0.2,
        percentage_of_length=0.2,
        empty_system_output_handling="zero_score",
    )
    for name in ("a.wav", "b.wav"):
        metric.evaluate(
            container([e for e in REFERENCE if e[0] == name]),
            container([e for e in ESTIMATE if e[0] == name]),
        )
    direct = metric.results()
    ours = event_based_f1(REFERENCE, ESTIMATE, CLASSES)
    assert ours.macro_f1 == pytest.approx(direct["class_wise_average"]["f_measure"]["f_measure"])
    assert ours.micro_f1 == pytest.approx(direct["overall"]["f_measure"]["f_measure"])


def test_a_perfect_estimate_scores_one_and_an_empty_one_zero():
    assert event_based_f1(REFERENCE, REFERENCE, CLASSES).macro_f1 == pytest.approx(1.0)
    assert event_based_f1(REFERENCE, [], CLASSES).macro_f1 == 0.0
    # a clip without reference events still counts: a detection there is a false positive
    extra = [*REFERENCE, ("c.wav", 0.0, 1.0, "Dog")]
    worse = event_based_f1(REFERENCE, extra, CLASSES, files=["a.wav", "b.wav", "c.wav"])
    assert worse.class_f1["Dog"] == pytest.approx(2 * 2 / (2 * 2 + 1))


def _frame_scores(events, name, frames=100, frame_s=0.1, value=0.9):
    scores = np.zeros((frames, len(CLASSES)))
    for f, a, b, label in events:
        if f == name:
            scores[int(round(a / frame_s)) : int(round(b / frame_s)), CLASSES.index(label)] = value
    return scores, np.arange(frames + 1) * frame_s


def test_psds_of_perfect_and_of_silent_scores():
    names = ["a.wav", "b.wav"]
    durations = dict.fromkeys(names, 10.0)
    perfect = {n: _frame_scores(REFERENCE, n) for n in names}
    assert psds(perfect, REFERENCE, durations, CLASSES) == pytest.approx(1.0)
    silent = {n: _frame_scores([], n) for n in names}
    assert psds(silent, REFERENCE, durations, CLASSES) == 0.0


def test_intersection_f1_counts_the_estimate():
    names = ["a.wav", "b.wav"]
    scores = {n: _frame_scores(ESTIMATE, n) for n in names}
    result = intersection_f1(scores, REFERENCE, CLASSES)
    # b.wav's Dog covers its reference for only 0.9 s of 1.9 s (DTC 0.47 < 0.5): one TP, one FP, one FN
    assert result.class_f1 == pytest.approx({"Dog": 0.5, "Speech": 1.0})
    assert result.macro_f1 == pytest.approx(0.75)


def test_tag_f1():
    ref = np.array([[1, 0], [1, 1], [0, 1]])
    est = np.array([[1, 0], [0, 1], [1, 1]])
    scores = tag_f1(ref, est, CLASSES)
    assert scores.class_f1 == pytest.approx({"Dog": 0.5, "Speech": 1.0})
    assert scores.micro_f1 == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))


def test_bad_input_is_named():
    with pytest.raises(SedMetricError, match=r"estimate: a.wav: unknown label 'Cat'"):
        event_based_f1(REFERENCE, [("a.wav", 0.0, 1.0, "Cat")], CLASSES)
    with pytest.raises(SedMetricError, match=r"clips not in the reference: z.wav"):
        event_based_f1(REFERENCE, [("z.wav", 0.0, 1.0, "Dog")], CLASSES)
    with pytest.raises(SedMetricError, match=r"reference: a.wav: Dog has offset 1.0 before onset 2.0"):
        segment_based_f1([("a.wav", 2.0, 1.0, "Dog")], [], CLASSES)
    silent = {"a.wav": _frame_scores([], "a.wav")}
    with pytest.raises(SedMetricError, match=r"PSDS needs reference events of every class; none for Speech"):
        psds(silent, [("a.wav", 1.0, 2.0, "Dog")], {"a.wav": 10.0}, CLASSES)
    with pytest.raises(SedMetricError, match=r"scores: a.wav: expected \(frames, 2\)"):
        psds({"a.wav": (np.zeros((10, 3)), np.arange(11.0))}, REFERENCE, {"a.wav": 10.0}, CLASSES)


def test_dcase_tsv_is_sorted_with_a_header(tmp_path):
    path = write_dcase_tsv(ESTIMATE[::-1], tmp_path / "out" / "detections.tsv")
    lines = path.read_text().splitlines()
    assert lines[0] == "filename\tonset\toffset\tevent_label"
    assert lines[1:] == [
        "a.wav\t1.100\t2.100\tDog",
        "a.wav\t3.500\t6.000\tSpeech",
        "b.wav\t0.600\t2.500\tDog",
    ]
    assert [p.name for p in path.parent.iterdir()] == ["detections.tsv"]


def test_versions_are_reported():
    assert library_versions()["sed_eval"] == "0.2.1"
