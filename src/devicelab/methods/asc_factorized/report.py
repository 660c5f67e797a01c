"""Tables and plots of an asc-factorized run: accuracy per model (mean ± std over seeds), per city, the
embedding map (scenes vs environments) and confusion matrices."""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from devicelab.core.checkpoint import load_model_weights
from devicelab.core.claims import MetricValue
from devicelab.core.plots import new_figure, save_figure
from devicelab.core.stages import StageResults, metric_key
from devicelab.core.tables import format_per_seed, markdown_table
from devicelab.methods.asc_factorized.model import SceneClassifier
from devicelab.methods.asc_factorized.recipe import build_cnn, embed, model_spec

if TYPE_CHECKING:
    from devicelab.core.run import RunContext
    from devicelab.methods.asc_factorized.config import AscFactorizedConfig
    from devicelab.methods.asc_factorized.data import SceneTask

DESCRIPTIONS = {
    "baseline": "A: baseline CNN (DCASE2019 1A)",
    "factorized": "B: factorised CNN, CE only",
    "lmf": "C: LMF-CNN (factorised + triplet)",
    "baseline-triplet": "D: baseline CNN + triplet",
}


def describe(variant: str) -> str:
    base = variant.removesuffix("-ssn")
    text = DESCRIPTIONS.get(base, base)
    return text + (", SSN" if variant.endswith("-ssn") else "")


def add_tables(
    ctx: RunContext,
    config: AscFactorizedConfig,
    results: StageResults,
    metrics: Mapping[str, MetricValue],
    variants: list[str],
    splits: list[str],
    task: SceneTask,
) -> None:
    """Accuracy table per split (seen, unseen, gap, silhouettes) and accuracy per city."""

    def cell(name: str, digits: int = 2) -> str:
        value = metrics.get(name)
        return format_per_seed(value, digits) if value is not None else "–"

    for split in splits:
        rows = [
            {
                "model": describe(v),
                "params": int(statistics.fmean(metrics[metric_key("params", v, split)])),  # type: ignore[arg-type]
                "seen acc %": cell(metric_key("acc_seen", v, split)),
                "unseen acc %": cell(metric_key("acc_unseen", v, split)),
                "unseen − seen": cell(metric_key("gap", v, split)),
                "silhouette by city ↓": cell(metric_key("silhouette_city", v, split), 3),
                "silhouette by scene ↑": cell(metric_key("silhouette_scene", v, split), 3),
            }
            for v in variants
        ]
        counts = {k: len(ix) for k, ix in task.splits[split].parts().items()}
        header = (
            f"asc-factorized on {task.source}, split {split}: {counts['train']} training / {counts['seen']} "
            f"seen-test / {counts['unseen']} unseen-test clips, {len(task.scene_names)} scenes, "
            f"{config.epochs} epochs ({config.selection} epoch), {config.seeds} seeds; mean ± std over seeds"
        )
        ctx.add_table(header + "\n\n" + markdown_table(rows))
        cities = sorted({c for v in variants for r in results.of(v, split) for c in r["per_city_acc"]})
        per_city = []
        for city in cities:
            row: dict[str, Any] = {"city": city}
            for v in variants:
                values = [r["per_city_acc"][city] for r in results.of(v, split) if city in r["per_city_acc"]]
                row[describe(v).split(":")[0]] = f"{statistics.fmean(values):.1f}" if values else "–"
            per_city.append(row)
        ctx.add_table(
            f"Test accuracy % per city, split {split} (mean over seeds)\n\n" + markdown_table(per_city)
        )


def load_classifier(run_dir: Path, config: AscFactorizedConfig, name: str) -> SceneClassifier:
    """A trained model of a run (``models/NAME``), in eval mode."""
    weights, meta = load_model_weights(Path(run_dir) / "models" / name)
    cnn = build_cnn(config, model_spec(meta["variant"]), len(meta["scene_names"]))
    model = SceneClassifier(cnn, torch.zeros(config.n_mels), torch.ones(config.n_mels))
    model.load_state_dict(weights)
    return model.eval()


def project_2d(embeddings: np.ndarray, method: str, seed: int) -> np.ndarray:
    """t-SNE (perplexity ≤ 30) or PCA of L2-normalised embeddings to 2D."""
    e = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    if method == "tsne" and len(e) > 5:
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, (len(e) - 1) / 3))
        return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(e)
    centred = e - e.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T


def add_plots(
    ctx: RunContext,
    config: AscFactorizedConfig,
    results: StageResults,
    variants: list[str],
    splits: list[str],
    task: SceneTask,
) -> None:
    """``accuracy.png`` (seen and unseen per model, seeds as dots), ``embeddings-<split>.png`` (the first
    seed's test embeddings coloured by scene and by city, seen cities as dots, unseen as crosses) and
    ``confusion-<split>.png`` (unseen-test confusion of A and C, summed over seeds)."""
    fig, axes = new_figure(len(splits), figsize=(5.5 * len(splits), 4))
    axes = np.atleast_1d(axes)
    for ax, split in zip(axes, splits):
        for i, v in enumerate(variants):
            for j, part in enumerate(("seen", "unseen")):
                accs = [r[f"acc_{part}"] for r in results.of(v, split)]
                x = i * 3 + j
                ax.bar(x, statistics.fmean(accs), color=f"C{j}", alpha=0.6, label=part if i == 0 else None)
                ax.plot([x] * len(accs), accs, "k.", markersize=5)
        ax.set_xticks([i * 3 + 0.5 for i in range(len(variants))], variants, rotation=20, ha="right")
        ax.axhline(100.0 / len(task.scene_names), color="grey", linestyle=":", linewidth=1)
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"split {split}: seen vs unseen environments")
        ax.legend(fontsize=8)
    save_figure(ctx, fig, "accuracy.png")

    if config.embedding_plot != "none":
        shown = [v for v in variants if v.removesuffix("-ssn") in ("baseline", "lmf")] or variants[:1]
        for split in splits:
            index = task.splits[split]
            test = np.concatenate([index.test_seen, index.test_unseen])
            ix = torch.as_tensor(test, dtype=torch.long)
            scenes = task.scenes[ix].numpy()
            cities = np.asarray([task.cities[i] for i in test])
            seen_mask = np.arange(len(test)) < len(index.test_seen)
            fig, axes = new_figure(2, figsize=(11, 4.5 * len(shown)))
            fig.clf()
            axes = fig.subplots(len(shown), 2, squeeze=False)
            for row, v in zip(axes, shown):
                stage = results.of(v, split)[0]
                model = load_classifier(ctx.run_dir, config, stage["name"])
                xy = project_2d(embed(model, task.features[ix]).numpy(), config.embedding_plot, config.seed)
                for ax, labels, names, title in (
                    (row[0], scenes, task.scene_names, "scene"),
                    (row[1], cities, sorted(set(cities.tolist())), "city"),
                ):
                    for k, name in enumerate(names):
                        sel = labels == (k if title == "scene" else name)
                        labelled = False
                        for mask, marker in ((seen_mask, "o"), (~seen_mask, "x")):
                            pts = xy[sel & mask]
                            if not len(pts):
                                continue
                            ax.scatter(
                                pts[:, 0],
                                pts[:, 1],
                                s=8,
                                marker=marker,
                                color=f"C{k % 10}",
                                label=None if labelled else name,
                            )
                            labelled = True
                    ax.set_title(f"{describe(v)}: coloured by {title}", fontsize=9)
                    ax.set_xticks([])
                    ax.set_yticks([])
                    ax.legend(fontsize=6, markerscale=1.5, loc="best")
            fig.suptitle(
                f"test embeddings ({config.embedding_plot}), seed {config.seed}, split {split}; "
                "dots: seen cities, crosses: unseen",
                fontsize=10,
            )
            save_figure(ctx, fig, f"embeddings-{split}.png")

    for split in splits:
        pair = [v for v in variants if v in ("baseline", "lmf")] or variants[:2]
        fig, axes = new_figure(len(pair), figsize=(5 * len(pair), 4.5))
        axes = np.atleast_1d(axes)
        for ax, v in zip(axes, pair):
            matrix = np.sum([np.asarray(r["confusion_unseen"]) for r in results.of(v, split)], axis=0)
            ax.imshow(matrix, cmap="Blues")
            ax.set_xticks(range(len(task.scene_names)), task.scene_names, rotation=60, ha="right", fontsize=7)
            ax.set_yticks(range(len(task.scene_names)), task.scene_names, fontsize=7)
            ax.set_xlabel("predicted")
            ax.set_ylabel("true")
            ax.set_title(f"{describe(v)}\nunseen-test confusion (sum over seeds)", fontsize=9)
        save_figure(ctx, fig, f"confusion-{split}.png")
