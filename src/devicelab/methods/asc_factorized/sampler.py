"""Batches of P scenes x K environments x M clips, so every batch holds cross-environment positives.

Spec §2.4 [reconstruction]: a batch draws P scenes, for each up to K of its training environments (fewer
where the scene has fewer) and M clips of each (scene, environment) cell. Every model, CE-only ones
included, trains on these batches, so the comparison isolates the loss. A scene seen in one training
environment has no valid positive: its clips only serve as negatives, the sampler names such scenes, and it
refuses data in which no scene has two environments.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np

from devicelab.core.seeding import child_rng


class NoCrossEnvironmentPairsError(ValueError):
    """No scene has training clips from two environments: the triplet loss would have no positive."""


class SceneEnvironmentSampler:
    """Index batches over clips with labels ``scenes`` and ``envs`` (one int each per clip).

    ``batches(seed, epoch)`` lists an epoch's batches, drawn from ``child_rng(seed, "batches", epoch)`` only,
    so a resumed epoch repeats them exactly. An epoch has ``ceil(N / (P K M))`` batches. Scenes are taken
    in a shuffled cycle, environments in a shuffled cycle per scene, and clips of a cell without replacement
    until the cell is used up (then reshuffled), so an epoch of a balanced set visits every clip about once.
    """

    def __init__(
        self,
        scenes: Sequence[int],
        envs: Sequence[int],
        scenes_per_batch: int,
        envs_per_scene: int,
        clips_per_env: int = 1,
        scene_names: Sequence[str] | None = None,
    ):
        if len(scenes) != len(envs):
            raise ValueError(f"scenes ({len(scenes)}) and envs ({len(envs)}) differ in length")
        if not len(scenes):
            raise ValueError("the sampler needs at least one training clip")
        if min(scenes_per_batch, envs_per_scene, clips_per_env) < 1:
            raise ValueError("P, K and M must each be >= 1")
        self.p, self.k, self.m = scenes_per_batch, envs_per_scene, clips_per_env
        self.size = len(scenes)
        cells: dict[int, dict[int, list[int]]] = {}
        for i, (s, e) in enumerate(zip(scenes, envs)):
            cells.setdefault(int(s), {}).setdefault(int(e), []).append(i)
        self.cells = {
            s: {e: np.asarray(ix) for e, ix in sorted(by_env.items())} for s, by_env in cells.items()
        }
        self.scenes = sorted(self.cells)
        names = list(scene_names) if scene_names is not None else None
        self.single_env_scenes = [
            names[s] if names is not None else str(s) for s in self.scenes if len(self.cells[s]) < 2
        ]
        if len(self.single_env_scenes) == len(self.scenes):
            raise NoCrossEnvironmentPairsError(
                "no scene has training clips from two environments, so no triplet has a positive; "
                "choose another env_key or data with several environments per scene"
            )
        if self.single_env_scenes:
            warnings.warn(
                "scenes with one training environment serve only as negatives: "
                + ", ".join(self.single_env_scenes),
                stacklevel=2,
            )

    def __len__(self) -> int:
        """Batches per epoch."""
        return math.ceil(self.size / (self.p * self.k * self.m))

    def batches(self, seed: int, epoch: int) -> list[np.ndarray]:
        """The index batches of one epoch (each up to P·K·M clip indices)."""
        rng = child_rng(seed, "batches", epoch)
        scene_queue: list[int] = []
        env_queues: dict[int, list[int]] = {s: [] for s in self.scenes}
        clip_queues: dict[tuple[int, int], list[int]] = {}
        out = []
        for _ in range(len(self)):
            batch: list[int] = []
            chosen: list[int] = []
            while len(chosen) < min(self.p, len(self.scenes)):
                if not scene_queue:
                    scene_queue = [int(s) for s in rng.permutation(self.scenes)]
                s = scene_queue.pop()
                if s not in chosen:
                    chosen.append(s)
            for s in chosen:
                envs = list(self.cells[s])
                picked: list[int] = []
                while len(picked) < min(self.k, len(envs)):
                    if not env_queues[s]:
                        env_queues[s] = [int(e) for e in rng.permutation(envs)]
                    e = env_queues[s].pop()
                    if e not in picked:
                        picked.append(e)
                for e in picked:
                    pool = self.cells[s][e]
                    for _ in range(min(self.m, len(pool))):
                        queue = clip_queues.setdefault((s, e), [])
                        if not queue:
                            queue.extend(int(i) for i in rng.permutation(pool))
                        batch.append(queue.pop())
            out.append(np.asarray(batch))
        return out
