"""Trials, scoring and the keyword probe of sv-kan (spec §2.5).

A trial set holds enrolment index tuples, test indices and labels (1 target, 0 non-target) into one split.
TK trials share the enrolment keyword, NTK trials do not; half are targets. Non-targets come from other
identities; identities of the same base voice ("siblings") are kept apart and scored in their own list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from devicelab.core.seeding import child_rng
from devicelab.metrics import det_points, eer, min_dcf, tpr_at_fpr


@dataclass
class Trials:
    """Trials into one split: ``enrol[i]`` (indices) against ``test[i]`` with ``label[i]``."""

    enrol: list[tuple[int, ...]] = field(default_factory=list)
    test: list[int] = field(default_factory=list)
    label: list[int] = field(default_factory=list)

    def add(self, enrol: Sequence[int], test: int, label: int) -> None:
        self.enrol.append(tuple(int(i) for i in enrol))
        self.test.append(int(test))
        self.label.append(int(label))

    def __len__(self) -> int:
        return len(self.label)

    @property
    def scorable(self) -> bool:
        """Both target and non-target trials present (an EER exists)."""
        return 0 < sum(self.label) < len(self.label)


def build_trials(
    identity: Sequence[str],
    keyword: Sequence[int],
    group: Sequence[str],
    *,
    n_enrol: int = 1,
    seed: int = 0,
    name: str = "test",
    per_enrolment: int = 4,
    sibling_impostors: str = "exclude",
    max_enrolments: int = 20,
) -> dict[str, Trials]:
    """TK, NTK and sibling trials (spec §2.5), or text-independent ``ti`` trials when no keyword is known.

    For each identity and keyword k with at least ``n_enrol`` takes, an enrolment set of ``n_enrol`` takes of
    k. TK: up to ``per_enrolment`` of the identity's remaining takes of k as targets and as many takes of k
    by other identities as non-targets (none when no take is left: "n/a", not an error). NTK: the same with
    keywords other than k. ``sibling``: the NTK targets against takes of siblings (same ``group``, other
    identity); with ``sibling_impostors="include"`` siblings also count as ordinary non-targets. Every
    choice is drawn from ``child_rng(seed, name, identity, k, n_enrol)``.
    """
    identity, group = list(identity), list(group)
    keyword = [int(k) for k in keyword]
    idx = np.arange(len(identity))
    ident, grp, kw = np.array(identity), np.array(group), np.array(keyword)
    out = {kind: Trials() for kind in ("tk", "ntk", "sibling", "ti")}

    def draw(rng, pool: np.ndarray, count: int) -> list[int]:
        return (
            sorted(rng.choice(pool, size=min(count, len(pool)), replace=False).tolist()) if len(pool) else []
        )

    for who in sorted(set(identity)):
        own = idx[ident == who]
        siblings = idx[(grp == grp[own[0]]) & (ident != who)]
        others = idx[(ident != who) & ((grp != grp[own[0]]) | (sibling_impostors == "include"))]
        if (kw[own] < 0).all():  # text unknown: text-independent trials
            rng = child_rng(seed, name, who, "ti", n_enrol)
            for _ in range(min(max_enrolments, len(own) // (n_enrol + 1))):
                enrol = draw(rng, own, n_enrol)
                targets = draw(rng, np.setdiff1d(own, enrol), per_enrolment)
                impostors = draw(rng, others, len(targets))
                for t in targets[: len(impostors)]:
                    out["ti"].add(enrol, t, 1)
                for t in impostors[: len(targets)]:
                    out["ti"].add(enrol, t, 0)
            continue
        for k in sorted(set(kw[own].tolist())):
            takes = own[kw[own] == k]
            if len(takes) < n_enrol:
                continue
            rng = child_rng(seed, name, who, k, n_enrol)
            enrol = draw(rng, takes, n_enrol)
            pools = {
                "tk": (np.setdiff1d(takes, enrol), others[kw[others] == k]),
                "ntk": (own[kw[own] != k], others[kw[others] != k]),
            }
            for kind, (target_pool, impostor_pool) in pools.items():
                targets = draw(rng, target_pool, per_enrolment)
                impostors = draw(rng, impostor_pool, len(targets))
                n = min(len(targets), len(impostors))
                for t in targets[:n]:
                    out[kind].add(enrol, t, 1)
                for t in impostors[:n]:
                    out[kind].add(enrol, t, 0)
                if kind == "ntk" and n and len(siblings):
                    for t in targets[:n]:
                        out["sibling"].add(enrol, t, 1)
                    for t in draw(rng, siblings[kw[siblings] != k], n):
                        out["sibling"].add(enrol, t, 0)
    return {kind: t for kind, t in out.items() if len(t)}


def cosine_scores(embeddings: torch.Tensor, trials: Trials) -> np.ndarray:
    """Cosine of each test embedding with its enrolment vector, the L2-normalised mean of the enrolment
    embeddings (spec §2.5) [reconstruction]."""
    e = F.normalize(embeddings.float(), dim=1)
    enrolled = {key: F.normalize(e[list(key)].mean(0), dim=0) for key in set(trials.enrol)}
    centre = torch.stack([enrolled[key] for key in trials.enrol])
    return (centre * e[trials.test]).sum(1).numpy().astype(np.float64)


def verification_metrics(scores: np.ndarray, labels: Sequence[int]) -> dict[str, float]:
    """EER and minDCF (p_target 0.01) in percent/absolute, TPR at 1 % FPR in percent."""
    return {
        "eer": 100.0 * eer(scores, labels),
        "min_dcf": min_dcf(scores, labels, p_target=0.01),
        "tpr_at_fpr1": 100.0 * tpr_at_fpr(scores, labels, 0.01),
    }


def det_curve(scores: np.ndarray, labels: Sequence[int], points: int = 200) -> dict[str, list[float]]:
    """At most ``points`` (false-acceptance, miss) pairs of the DET curve, for plotting."""
    fa, miss = det_points(scores, labels)
    keep = np.unique(np.linspace(0, len(fa) - 1, min(points, len(fa))).round().astype(int))
    return {"fa": fa[keep].tolist(), "miss": miss[keep].tolist()}


def keyword_probe(
    embeddings: np.ndarray | torch.Tensor, keywords: Sequence[int], speakers: Sequence[str], folds: int = 5
) -> dict[str, float]:
    """Keyword accuracy (%) of an L2 logistic regression (C = 1) on frozen embeddings, cross-validated in
    ``folds`` folds grouped by speaker, with chance 100/K (spec §2.5, project check) [reconstruction]."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    x = np.asarray(embeddings, dtype=np.float64)
    y, groups = np.asarray(keywords), np.asarray(speakers)
    keep = y >= 0
    x, y, groups = x[keep], y[keep], groups[keep]
    folds = min(folds, len(set(groups.tolist())))
    if folds < 2 or len(set(y.tolist())) < 2:
        raise ValueError(
            f"keyword probe needs 2 speakers and 2 keywords, got {folds} and {len(set(y.tolist()))}"
        )
    correct = 0
    for train, test in GroupKFold(n_splits=folds).split(x, y, groups):
        model = LogisticRegression(C=1.0, max_iter=1000).fit(x[train], y[train])
        correct += int((model.predict(x[test]) == y[test]).sum())
    return {"probe_acc": 100.0 * correct / len(y), "probe_chance": 100.0 / len(set(y.tolist()))}
