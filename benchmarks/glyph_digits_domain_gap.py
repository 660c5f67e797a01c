"""Domain-gap matrix of ``glyph-digits``: train on one domain's train split, test on each domain's test split.

A diagonal far above the off-diagonal entries means the domains differ enough for domain generalisation to
matter (``specs/fed-dg.md`` §5). The model is a small CNN (4 x conv3x3-BN-ReLU-maxpool, 16-32-32-64, GAP, FC,
the ``glyphnet`` shape) trained with Adam; ``--model logreg`` uses a pixel logistic regression instead.

    python benchmarks/glyph_digits_domain_gap.py --profile quick [--epochs 8] [--model cnn|logreg]

Writes ``reports/<profile>/bench/glyph_digits_domain_gap.json`` and prints the matrix (accuracy, %).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn

from devicelab.core.bench import write_bench
from devicelab.core.tables import markdown_table
from devicelab.data.corpora import ensure_corpus
from devicelab.data.datasets.domains import list_domains, load_domain


def small_cnn(num_classes: int = 10) -> nn.Module:
    layers, channels = [], 3
    for width in (16, 32, 32, 64):
        layers += [
            nn.Conv2d(channels, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.MaxPool2d(2),
        ]
        channels = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes))


def to_tensor(images: np.ndarray) -> torch.Tensor:
    return (
        torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255.0).sub(0.5).div(0.25)
    )  # (N, 3, 32, 32)


def train_cnn(images: np.ndarray, labels: np.ndarray, epochs: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = small_cnn()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    x, y = to_tensor(images), torch.from_numpy(labels)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(x), generator=generator).split(64):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()
    return model.eval()


@torch.no_grad()
def accuracy_cnn(model: nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    logits = torch.cat([model(chunk) for chunk in to_tensor(images).split(512)])
    return float((logits.argmax(1).numpy() == labels).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--model", choices=("cnn", "logreg"), default="cnn")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)

    root = ensure_corpus("glyph-digits", args.profile)
    domains = list_domains(root)
    order = [d for d in ("sklearn", "serif", "sans", "mono", "hand", "decor") if d in domains]
    train = {d: load_domain(root, d, "train") for d in order}
    test = {d: load_domain(root, d, "test") for d in order}
    matrix: dict[str, dict[str, float]] = {}
    t0 = time.perf_counter()
    for source in order:
        images, labels = train[source]
        if args.model == "cnn":
            model = train_cnn(images, labels, args.epochs, args.seed)
            matrix[source] = {t: 100 * accuracy_cnn(model, *test[t]) for t in order}
        else:
            from sklearn.linear_model import LogisticRegression
            from threadpoolctl import threadpool_limits

            features = images.reshape(len(images), -1) / 255.0
            with threadpool_limits(1):
                reader = LogisticRegression(max_iter=500).fit(features, labels)
            matrix[source] = {
                t: 100
                * float(
                    (reader.predict(test[t][0].reshape(len(test[t][0]), -1) / 255.0) == test[t][1]).mean()
                )
                for t in order
            }
        print(
            f"trained on {source}: " + ", ".join(f"{t} {a:.1f}" for t, a in matrix[source].items()),
            flush=True,
        )
    seconds = time.perf_counter() - t0
    rows = [{"train \\ test": s, **{t: round(matrix[s][t], 1) for t in order}} for s in order]
    in_domain = float(np.mean([matrix[d][d] for d in order]))
    cross = float(np.mean([matrix[s][t] for s in order for t in order if s != t]))
    print(markdown_table(rows))
    print(
        f"mean in-domain {in_domain:.1f} %, mean cross-domain {cross:.1f} %, "
        f"gap {in_domain - cross:.1f} points"
    )
    path = write_bench(
        "glyph_digits_domain_gap",
        args.profile,
        {
            "model": args.model,
            "epochs": args.epochs,
            "seed": args.seed,
            "domains": order,
            "train_sizes": {d: len(train[d][1]) for d in order},
            "test_sizes": {d: len(test[d][1]) for d in order},
            "accuracy_percent": matrix,
            "mean_in_domain": in_domain,
            "mean_cross_domain": cross,
            "gap_points": in_domain - cross,
            "seconds": seconds,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
