"""Offline fidelity proxies for DINO, CLIP-I and CLIP-T, and the attribute classifiers (spec §10.1).

[reconstruction] Trained on glyph-world's base images only, never on subjects:

- ``dino-proxy``: a small CNN trained self-supervised with InfoNCE between two views of an image (resized crop
  0.6-1, horizontal flip, ±15° rotation; no colour jitter, since colour is identity here). Stands in for
  DINO ViT-S/16.
- ``clip-proxy``: an image CNN and a caption transformer trained contrastively on (image, caption) pairs;
  CLIP-I = image-image cosine, CLIP-T = image-prompt cosine.
- attribute classifiers: one CNN with a head per ``metadata.jsonl`` attribute; *prompt-attribute accuracy*
  scores a generated image against the attributes its prompt requests.

Metrics [paper: DreamBooth protocol]: DINO and CLIP-I = mean cosine over (generated, real subject) pairs;
CLIP-T = generated image vs its prompt with the identifier removed.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from devicelab.core.checkpoint import load_model_weights, save_model
from devicelab.core.progress import progress
from devicelab.core.seeding import torch_generator
from devicelab.methods.hollowed_net.data import ATTRIBUTES, read_captioned, strip_identifier


class ImageEncoder(nn.Module):
    """32×32 RGB in [-1, 1] -> an embedding: 4 conv stages (32, 64, 128, 128), global pool, linear."""

    def __init__(self, dim: int = 128, width: int = 32):
        super().__init__()
        chans = [3, width, 2 * width, 4 * width, 4 * width]
        layers: list[nn.Module] = []
        for i in range(4):
            layers += [
                nn.Conv2d(chans[i], chans[i + 1], 3, stride=1 if i == 0 else 2, padding=1),
                nn.GroupNorm(8, chans[i + 1]),
                nn.SiLU(),
            ]
        self.trunk = nn.Sequential(*layers)
        self.proj = nn.Linear(chans[-1], dim)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x).mean(dim=(2, 3))  # (N, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.features(x))  # (N, dim)


class CaptionEncoder(nn.Module):
    """Word ids (N, L), 0 = padding -> an embedding: word + position embeddings, 2 transformer layers."""

    def __init__(self, vocab_size: int, dim: int = 128, width: int = 64, max_len: int = 16, layers: int = 2):
        super().__init__()
        self.embed = nn.Embedding(vocab_size + 1, width, padding_idx=0)
        self.pos = nn.Parameter(torch.zeros(max_len, width))
        layer = nn.TransformerEncoderLayer(width, 4, 2 * width, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.proj = nn.Linear(width, dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = ids == 0
        h = self.encoder(self.embed(ids) + self.pos[: ids.shape[1]], src_key_padding_mask=mask)
        keep = (~mask).unsqueeze(-1).float()
        return self.proj((h * keep).sum(1) / keep.sum(1).clamp_min(1))


class AttributeClassifier(nn.Module):
    def __init__(self, classes: dict[str, list[str]], width: int = 32):
        super().__init__()
        self.encoder = ImageEncoder(dim=4 * width, width=width)
        self.heads = nn.ModuleDict({a: nn.Linear(4 * width, len(v)) for a, v in classes.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f = F.silu(self.encoder(x))
        return {a: head(f) for a, head in self.heads.items()}


# --------------------------------------------------------------------------------------------------------
# augmentation and tokenisation


def random_views(
    x: torch.Tensor,
    g: torch.Generator,
    scale: tuple[float, float] = (0.6, 1.0),
    max_degrees: float = 15.0,
    flip: bool = True,
) -> torch.Tensor:
    """Resized crop (area fraction ``scale``), horizontal flip (if ``flip``) and rotation, per image."""
    n = x.shape[0]
    area = torch.empty(n).uniform_(*scale, generator=g)
    s = area.sqrt()  # side fraction
    angle = torch.empty(n).uniform_(-max_degrees, max_degrees, generator=g) * math.pi / 180
    mirror = torch.rand(n, generator=g) < 0.5
    sign = torch.where(mirror & flip, -1.0, 1.0)
    tx = (torch.rand(n, generator=g) * 2 - 1) * (1 - s)
    ty = (torch.rand(n, generator=g) * 2 - 1) * (1 - s)
    cos, sin = angle.cos() * s, angle.sin() * s
    theta = torch.stack([torch.stack([cos * sign, -sin, tx], 1), torch.stack([sin * sign, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="border", align_corners=False)


class WordVocab:
    """Caption words -> ids (1..V); unknown words (the identifier ``sks``) are dropped."""

    def __init__(self, words: list[str], max_len: int = 16):
        self.words = sorted(set(words))
        self.index = {w: i + 1 for i, w in enumerate(self.words)}
        self.max_len = max_len

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, texts: list[str]) -> torch.Tensor:
        out = torch.zeros(len(texts), self.max_len, dtype=torch.long)
        for i, t in enumerate(texts):
            ids = [self.index[w] for w in t.lower().split() if w in self.index][: self.max_len]
            out[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        return out


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE between matched rows of ``a`` and ``b`` (N, D)."""
    a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    logits = a @ b.T / temperature
    labels = torch.arange(a.shape[0])
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


# --------------------------------------------------------------------------------------------------------
# training


@dataclass(frozen=True)
class EvaluatorConfig:
    """Steps and sizes of the three evaluator trainings [reconstruction]."""

    steps: int = 400  # dino-proxy and clip-proxy
    attribute_steps: int = 1600  # the attribute classifiers, which the quality gate rests on
    batch: int = 128
    lr: float = 2e-3
    temperature: float = 0.1
    seed: int = 0
    max_images: int = 10000
    # the shape and colour classifiers must read real validation images at least this well (chance 1/8)
    min_val_accuracy: float = 0.8


Step = Callable[[int, torch.Generator], torch.Tensor]


def _train(
    params, step_loss: Step, cfg: EvaluatorConfig, desc: str, seed_key: int, steps: int | None = None
) -> list[float]:
    steps = steps or cfg.steps
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps, pct_start=0.1)
    losses = []
    for s in progress(range(steps), desc=desc, total=steps):
        g = torch_generator(cfg.seed, seed_key, s)
        loss = step_loss(s, g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return losses


def _attribute_classes(rows) -> dict[str, list[str]]:
    classes = {}
    for a in ATTRIBUTES:
        values = sorted({str(r.attributes[a]) for r in rows if a in r.attributes})
        if values:
            classes[a] = values
    return classes


def train_evaluators(
    base_dir: str | Path,
    out_dir: str | Path,
    cfg: EvaluatorConfig | None = None,
    log: Callable[[str], None] = print,
    config_hash: str | None = None,
) -> dict[str, Any]:
    """Train dino-proxy, clip-proxy and the attribute classifiers on ``base/train`` into ``out_dir``.

    The folder is written under a partial name and renamed at the end (with ``manifest.json`` last); the
    manifest's ``validation`` holds each evaluator's accuracy on real ``base/val`` images beside chance.
    """
    from devicelab.methods.hollowed_net.data import load_images, to_model_range

    cfg = cfg or EvaluatorConfig()
    base_dir, out_dir = Path(base_dir), Path(out_dir)
    rows = read_captioned(base_dir / "train")[: cfg.max_images]
    t0 = time.perf_counter()
    images = to_model_range(load_images([r.path for r in rows], 32))
    texts = [r.text for r in rows]
    words = sorted({w for t in texts for w in t.lower().split()})
    vocab = WordVocab(words)
    classes = _attribute_classes(rows)
    labels = {a: torch.tensor([v.index(str(r.attributes[a])) for r in rows]) for a, v in classes.items()}
    n = images.shape[0]
    torch.manual_seed(cfg.seed)

    def batch_idx(g: torch.Generator) -> torch.Tensor:
        return torch.randint(n, (min(cfg.batch, n),), generator=g)

    dino = ImageEncoder()

    def dino_step(s: int, g: torch.Generator) -> torch.Tensor:
        x = images[batch_idx(g)]
        return info_nce(dino(random_views(x, g)), dino(random_views(x, g)), cfg.temperature)

    dino_losses = _train(list(dino.parameters()), dino_step, cfg, "dino-proxy", 1)

    clip_image, clip_text = ImageEncoder(), CaptionEncoder(len(vocab))
    ids_all = vocab.encode(texts)

    def clip_step(s: int, g: torch.Generator) -> torch.Tensor:
        i = batch_idx(g)
        return info_nce(clip_image(images[i]), clip_text(ids_all[i]), cfg.temperature)

    clip_losses = _train([*clip_image.parameters(), *clip_text.parameters()], clip_step, cfg, "clip-proxy", 2)

    attrs = AttributeClassifier(classes)

    def attr_step(s: int, g: torch.Generator) -> torch.Tensor:
        i = batch_idx(g)
        # no flip: it would swap "left" and "right", which the position classifier must read
        out = attrs(random_views(images[i], g, scale=(0.85, 1.0), max_degrees=5.0, flip=False))
        return sum(F.cross_entropy(out[a], labels[a][i]) for a in classes)

    attr_losses = _train(list(attrs.parameters()), attr_step, cfg, "attributes", 3, cfg.attribute_steps)

    validation = validate_evaluators(
        dino, clip_image, clip_text, vocab, attrs, classes, base_dir / "val", seed=cfg.seed
    )
    tmp = out_dir.with_name(f".{out_dir.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_model(tmp / "dino_proxy", dino, {"kind": "dino-proxy"})
    save_model(tmp / "clip_image", clip_image, {"kind": "clip-proxy-image"})
    save_model(tmp / "clip_text", clip_text, {"kind": "clip-proxy-text", "vocab": vocab.words})
    save_model(tmp / "attributes", attrs, {"kind": "attributes", "classes": classes})
    manifest = {
        "artefact": "glyph-world-evaluators",
        "config_hash": config_hash,
        "config": asdict(cfg),
        "images": n,
        "seconds": round(time.perf_counter() - t0, 1),
        "final_loss": {"dino": dino_losses[-1], "clip": clip_losses[-1], "attributes": attr_losses[-1]},
        "validation": validation,
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    log(
        f"evaluators trained in {manifest['seconds']} s; on real validation images (accuracy / chance): "
        + ", ".join(f"{k} {v['accuracy']:.3f}/{v['chance']:.3f}" for k, v in validation.items())
    )
    return manifest


@torch.no_grad()
def validate_evaluators(
    dino: ImageEncoder,
    clip_image: ImageEncoder,
    clip_text: CaptionEncoder,
    vocab: WordVocab,
    attrs: AttributeClassifier,
    classes: dict[str, list[str]],
    val_dir: Path,
    seed: int = 0,
    retrieval_size: int = 256,
) -> dict[str, dict[str, float]]:
    """Each evaluator's accuracy on its own task on real validation images, beside chance.

    ``attribute/<a>``: top-1 of the <a> classifier (chance 1/#values); ``clip-proxy/image-to-caption``:
    top-1 retrieval of each image's caption among ``retrieval_size`` captions; ``dino-proxy/view-retrieval``:
    top-1 retrieval of a second random view of each image among as many (chance 1/``retrieval_size``).
    """
    from devicelab.methods.hollowed_net.data import load_images, to_model_range

    if not (val_dir / "metadata.jsonl").is_file():
        return {}
    rows = read_captioned(val_dir)[:1000]
    x = to_model_range(load_images([r.path for r in rows], 32))
    for model in (dino, clip_image, clip_text, attrs):
        model.eval()
    out = attrs(x)
    result = {}
    for a, values in classes.items():
        truth = torch.tensor(
            [values.index(str(r.attributes[a])) if str(r.attributes[a]) in values else -1 for r in rows]
        )
        result[f"attribute/{a}"] = {
            "accuracy": (out[a].argmax(-1) == truth).float().mean().item(),
            "chance": 1.0 / len(values),
        }
    k = min(retrieval_size, len(rows))
    target = torch.arange(k)
    img = F.normalize(clip_image(x[:k]), dim=-1)
    txt = F.normalize(clip_text(vocab.encode([r.text for r in rows[:k]])), dim=-1)
    result["clip-proxy/image-to-caption"] = {
        "accuracy": ((img @ txt.T).argmax(-1) == target).float().mean().item(),
        "chance": 1.0 / k,
    }
    g = torch_generator(seed, 9, 0)
    a = F.normalize(dino(random_views(x[:k], g)), dim=-1)
    b = F.normalize(dino(random_views(x[:k], g)), dim=-1)
    result["dino-proxy/view-retrieval"] = {
        "accuracy": ((a @ b.T).argmax(-1) == target).float().mean().item(),
        "chance": 1.0 / k,
    }
    return result


# --------------------------------------------------------------------------------------------------------
# scoring


class FidelityScorer:
    """DINO-proxy, CLIP-I-proxy, CLIP-T-proxy and prompt-attribute accuracy of generated images."""

    def __init__(self, folder: str | Path):
        folder = Path(folder)
        if not (folder / "manifest.json").is_file():
            raise FileNotFoundError(f"{folder / 'manifest.json'} is missing (evaluators not built)")
        self.dino = self._load(folder / "dino_proxy", ImageEncoder())
        self.clip_image = self._load(folder / "clip_image", ImageEncoder())
        _, meta = load_model_weights(folder / "clip_text")
        self.vocab = WordVocab(meta["vocab"])
        self.clip_text = self._load(folder / "clip_text", CaptionEncoder(len(self.vocab)))
        _, meta = load_model_weights(folder / "attributes")
        self.classes: dict[str, list[str]] = meta["classes"]
        self.attributes = self._load(folder / "attributes", AttributeClassifier(self.classes))

    @staticmethod
    def _load(path: Path, model: nn.Module) -> nn.Module:
        state, _ = load_model_weights(path)
        model.load_state_dict(state)
        return model.eval()

    @torch.no_grad()
    def subject_scores(self, generated: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
        """Mean cosine over all (generated, real) pairs; images (N, 3, 32, 32) in [-1, 1]."""
        out = {}
        for name, enc in (("dino", self.dino), ("clip_i", self.clip_image)):
            a, b = F.normalize(enc(generated), dim=-1), F.normalize(enc(real), dim=-1)
            out[name] = (a @ b.T).mean().item()
        return out

    @torch.no_grad()
    def text_score(self, generated: torch.Tensor, prompts: list[str]) -> float:
        """Mean cosine of each image with its prompt, identifier removed."""
        a = F.normalize(self.clip_image(generated), dim=-1)
        b = F.normalize(self.clip_text(self.vocab.encode([strip_identifier(p) for p in prompts])), dim=-1)
        return (a * b).sum(-1).mean().item()

    @torch.no_grad()
    def attribute_accuracy(self, generated: torch.Tensor, requests: list[dict[str, Any]]) -> float:
        """Fraction of requested (attribute, value) pairs the classifier reads in the image."""
        out = self.attributes(generated)
        hits = total = 0
        for i, req in enumerate(requests):
            for a, v in req.items():
                if a in self.classes and str(v) in self.classes[a]:
                    hits += int(out[a][i].argmax().item() == self.classes[a].index(str(v)))
                    total += 1
        return hits / total if total else math.nan
