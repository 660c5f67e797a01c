"""Leave-one-domain-out data for fed-dg: domain sources, client partitions, the held-out test set.

Each source domain is one client [reconstruction, the benchmark convention]; the held-out domain is read only
by the server's evaluation. Every read goes through a :class:`DomainSource` that logs who opened which
(domain, split), so a test can show that no client touched the held-out domain (spec §8).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch

if TYPE_CHECKING:
    from devicelab.core.run import RunContext
    from devicelab.methods.fed_dg.config import FedDGConfig

ImagesLabels = tuple[np.ndarray, np.ndarray]  # uint8 (N, H, W, 3), int64 (N,)


class DomainSource(Protocol):
    """Where domain images come from; ``load`` records the access in ``access_log``."""

    access_log: list[tuple[str, str, str]]

    def domains(self) -> list[str]: ...

    def num_classes(self) -> int: ...

    def load(self, domain: str, split: str, who: str) -> ImagesLabels: ...


@dataclass
class DirectoryDomains:
    """Domains in the DomainBed layout (glyph-digits, PACS, Office-Home, VLCS, DomainNet) read through
    ``devicelab.data.datasets.domains``.

    With ``check`` every image is verified on creation, so a corrupt file stops the run before any round
    with an error naming it, not when its domain is first read; with ``cache_dir`` the decoded arrays are
    written there once (:meth:`prepare`) and the check is skipped once they are all there.
    """

    root: Path
    image_size: int = 32
    access_log: list[tuple[str, str, str]] = field(default_factory=list)
    check: bool = True
    # decoded (domain, split) arrays as .npy files, written once and read by every later stage and run; a
    # built corpus only (its folder is immutable once built; the key is its manifest's checksum)
    cache_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.check and not self._cache_complete():
            from devicelab.data.datasets.domains import check_images

            check_images(self.root)

    def _cache_files(self, domain: str, split: str) -> tuple[Path, Path] | None:
        if self.cache_dir is None:
            return None
        stem = self.cache_dir / f"{domain}-{split}-{self.image_size}"
        return stem.with_suffix(".images.npy"), stem.with_suffix(".labels.npy")

    def _cache_complete(self) -> bool:
        """True when every domain's train and test arrays are cached (their images were decoded once)."""
        if self.cache_dir is None:
            return False
        files = [self._cache_files(d, sp) for d in self.domains() for sp in ("train", "test")]
        return all(f is not None and f[0].is_file() and f[1].is_file() for f in files)

    def prepare(self) -> None:
        """Decode and cache every domain's train and test split now (once per corpus), so that stages read
        arrays instead of images."""
        for domain in self.domains():
            for split in ("train", "test"):
                self._decoded(domain, split)

    def domains(self) -> list[str]:
        from devicelab.data.datasets.domains import list_domains

        return list(list_domains(self.root))

    def num_classes(self) -> int:
        from devicelab.data.datasets.domains import class_names

        return len(class_names(self.root))

    def load(self, domain: str, split: str, who: str) -> ImagesLabels:
        self.access_log.append((who, domain, split))
        return self._decoded(domain, split)

    def _decoded(self, domain: str, split: str) -> ImagesLabels:
        from devicelab.data.datasets.domains import load_domain

        files = self._cache_files(domain, split) if split in ("train", "test") else None
        if files is not None and files[0].is_file() and files[1].is_file():
            return np.load(files[0], allow_pickle=False), np.load(files[1], allow_pickle=False)
        images, labels = load_domain(self.root, domain, split=split, image_size=self.image_size)
        images, labels = np.asarray(images, dtype=np.uint8), np.asarray(labels, dtype=np.int64)
        if files is not None:
            files[0].parent.mkdir(parents=True, exist_ok=True)
            for path, array in zip(files, (images, labels)):
                tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                with open(tmp, "wb") as f:
                    np.save(f, array, allow_pickle=False)
                os.replace(tmp, path)  # atomic: a half-written cache file is never read
        return images, labels


@dataclass
class ArrayDomains:
    """Domains held in memory: ``{domain: {"train": (images, labels), "test": (images, labels)}}``."""

    data: dict[str, dict[str, ImagesLabels]]
    access_log: list[tuple[str, str, str]] = field(default_factory=list)

    def domains(self) -> list[str]:
        return sorted(self.data)

    def num_classes(self) -> int:
        return int(max(int(s[1].max()) for splits in self.data.values() for s in splits.values())) + 1

    def load(self, domain: str, split: str, who: str) -> ImagesLabels:
        if domain not in self.data:
            raise KeyError(f"unknown domain {domain!r}; domains: {', '.join(sorted(self.data))}")
        self.access_log.append((who, domain, split))
        if split == "all":
            parts = [self.data[domain][s] for s in ("train", "test")]
            return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        return self.data[domain][split]


@dataclass
class SyntheticDomains:
    """The generated domains of :func:`synthetic_domains` as their parameters: generated on first use in each
    process, so the object travels (to a worker or a Flower client) as a config, never as arrays."""

    num_domains: int = 3
    classes: int = 10
    per_class: int = 16
    size: int = 16
    seed: int = 0
    access_log: list[tuple[str, str, str]] = field(default_factory=list)
    _data: ArrayDomains | None = field(default=None, repr=False)

    def _domains(self) -> ArrayDomains:
        if self._data is None:
            self._data = synthetic_domains(
                self.num_domains, self.classes, self.per_class, self.size, self.seed
            )
        return self._data

    def domains(self) -> list[str]:
        return self._domains().domains()

    def num_classes(self) -> int:
        return self._domains().num_classes()

    def load(self, domain: str, split: str, who: str) -> ImagesLabels:
        self.access_log.append((who, domain, split))
        return self._domains().load(domain, split, who)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_data": None}


def synthetic_domains(
    num_domains: int = 3, num_classes: int = 10, per_class: int = 16, size: int = 16, seed: int = 0
) -> ArrayDomains:
    """Generated domains for tests and the smoke profile (under a second).

    A class is a fixed pattern of strokes on a grid; a domain sets the ink and background colours, the
    contrast and a noise level, so per-channel feature statistics differ across domains.
    """
    rng = np.random.default_rng(seed)
    patterns = rng.random((num_classes, 4, 4)) > 0.5  # class-specific coarse stroke layout
    data = {}
    for d in range(num_domains):
        drng = np.random.default_rng([seed, d])
        ink, paper = drng.random(3), drng.random(3)
        contrast = 0.4 + 0.6 * drng.random()
        noise = 0.05 + 0.1 * drng.random()
        splits = {}
        for split, n in (("train", per_class), ("test", per_class // 2 or 1)):
            images, labels = [], []
            for c in range(num_classes):
                for _ in range(n):
                    mask = np.kron(patterns[c], np.ones((size // 4, size // 4)))
                    mask = np.roll(mask, drng.integers(-1, 2, size=2), axis=(0, 1))
                    img = paper + contrast * mask[..., None] * (ink - paper)
                    img = img + noise * drng.normal(size=img.shape)
                    images.append(np.clip(img * 255, 0, 255).astype(np.uint8))
                    labels.append(c)
            splits[split] = (np.stack(images), np.asarray(labels, dtype=np.int64))
        data[f"dom{d}"] = splits
    return ArrayDomains(data)


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_tensor(images: np.ndarray, normalize: str = "unit") -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, H, W): ``"unit"`` scales to [-1, 1], ``"imagenet"`` uses ImageNet
    mean/std (for an ImageNet initialisation)."""
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected uint8 images of shape (N, H, W, 3), got {images.shape}")
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255.0)
    if normalize == "imagenet":
        mean, std = torch.tensor(IMAGENET_MEAN)[:, None, None], torch.tensor(IMAGENET_STD)[:, None, None]
        return ((x - mean) / std).contiguous()
    if normalize != "unit":
        raise ValueError(f"normalize={normalize!r}: expected 'unit' or 'imagenet'")
    return x.mul(2.0).sub(1.0).contiguous()


def stratified_subset(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of a seeded, class-stratified subset of ``n`` items (all items when ``n <= 0`` or too few)."""
    if n <= 0 or n >= len(labels):
        return np.arange(len(labels))
    classes = np.unique(labels)
    per_class = {c: rng.permutation(np.flatnonzero(labels == c)) for c in classes}
    counts = {c: int(n * len(per_class[c]) / len(labels)) for c in classes}
    rest = n - sum(counts.values())
    for c in sorted(classes, key=lambda c: -(n * len(per_class[c]) / len(labels) - counts[c]))[:rest]:
        counts[c] += 1
    return np.sort(np.concatenate([per_class[c][: counts[c]] for c in classes]))


@dataclass
class ClientData:
    """One client's local data: its partition id, domain and tensors."""

    pid: int
    domain: str
    images: torch.Tensor  # (N, 3, H, W) float
    labels: torch.Tensor  # (N,) int64

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def inputs(self) -> torch.Tensor:
        """The images, as :class:`devicelab.federated.fedavg.TorchFedAvg` reads a client's inputs."""
        return self.images


@dataclass
class LodoSplit:
    """Leave-one-domain-out: ``held_out`` is the test domain, each other domain one client (pid order =
    sorted source domains). ``train_per_domain`` / ``test_per_domain`` draw seeded, stratified subsets."""

    source: DomainSource
    held_out: str
    train_per_domain: int = 0
    test_per_domain: int = 0
    seed: int = 0
    client_split: str = "train"
    normalize: str = "unit"  # "unit" ([-1, 1]) | "imagenet"
    _cache: dict[int, ClientData] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        domains = self.source.domains()
        if self.held_out not in domains:
            raise ValueError(f"held-out domain {self.held_out!r} not found; domains: {', '.join(domains)}")
        self.sources = [d for d in sorted(domains) if d != self.held_out]
        if not self.sources:
            raise ValueError(f"leave-one-domain-out needs at least 2 domains, found {domains}")

    @property
    def num_clients(self) -> int:
        return len(self.sources)

    def client_data(self, pid: int) -> ClientData:
        """Partition ``pid``'s data (cached per process); reads only its own source domain."""
        if pid not in self._cache:
            if not 0 <= pid < len(self.sources):
                raise IndexError(f"partition id {pid} out of range 0..{len(self.sources) - 1}")
            domain = self.sources[pid]
            images, labels = self.source.load(domain, self.client_split, who=f"client{pid}")
            idx = stratified_subset(labels, self.train_per_domain, np.random.default_rng([self.seed, pid, 1]))
            self._cache[pid] = ClientData(
                pid, domain, to_tensor(images[idx], self.normalize), torch.from_numpy(labels[idx])
            )
        return self._cache[pid]

    def test_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The held-out domain's test images (read by the server only)."""
        images, labels = self.source.load(self.held_out, "test", who="server")
        idx = stratified_subset(labels, self.test_per_domain, np.random.default_rng([self.seed, 10_000]))
        return to_tensor(images[idx], self.normalize), torch.from_numpy(labels[idx])


def corpus_cache_dir(root: Path) -> Path:
    """``$DEVICELAB_DATA/_cache/fed-dg/<corpus folder>-<checksum of its manifest>``: decoded arrays of one
    build of a corpus (a rebuilt corpus has a new manifest, hence a new folder)."""
    from devicelab.core.paths import data_root

    digest = hashlib.sha256((Path(root) / "manifest.json").read_bytes()).hexdigest()[:16]
    return data_root() / "_cache" / "fed-dg" / f"{Path(root).parent.name}-{Path(root).name}-{digest}"


def domain_source(cfg: FedDGConfig, ctx: RunContext | None) -> tuple[DomainSource, str]:
    """The domains to use and the name of their data set (``glyph``, ``synthetic``, ``pacs``, ...): the
    ``--data`` folder, else the generated domains (``corpus: synthetic``), else the built corpus."""
    if cfg.corpus == "synthetic" and (ctx is None or ctx.data_path is None):
        return SyntheticDomains(num_domains=3, classes=10, per_class=16, size=16), "synthetic"
    if ctx is None:
        raise ValueError("a corpus other than 'synthetic' needs a run context")
    from devicelab.core.sources import resolve_data

    data = resolve_data(ctx, cfg.corpus)
    if data.is_corpus:
        return DirectoryDomains(data.path, cfg.image_size, cache_dir=corpus_cache_dir(data.path)), "glyph"
    from devicelab.data.datasets.domains import detect_layout

    layout = detect_layout(data.path)
    name = "glyph" if layout.name == "folders" else layout.name.lower().replace("-", "")
    return DirectoryDomains(data.path, cfg.image_size), name
