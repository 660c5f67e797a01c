"""P scenes x K environments x M clips batches: composition, determinism, single-environment scenes."""

import numpy as np
import pytest

from devicelab.methods.asc_factorized.sampler import NoCrossEnvironmentPairsError, SceneEnvironmentSampler


def _grid(scenes=8, envs=4, clips=12):
    s = [i for i in range(scenes) for _ in range(envs * clips)]
    e = [j for _ in range(scenes) for j in range(envs) for _ in range(clips)]
    return s, e


def test_batches_hold_p_scenes_by_k_environments_by_m_clips():
    scenes, envs = _grid(scenes=8, envs=4, clips=6)
    sampler = SceneEnvironmentSampler(scenes, envs, 4, 2, 3)
    batches = sampler.batches(seed=0, epoch=0)
    assert len(batches) == len(sampler) == int(np.ceil(len(scenes) / 24))
    for batch in batches:
        assert len(batch) == 24 and len(set(batch.tolist())) == 24
        cells = {}
        for i in batch:
            cells.setdefault(scenes[i], {}).setdefault(envs[i], 0)
            cells[scenes[i]][envs[i]] += 1
        assert len(cells) == 4 and all(len(by_env) == 2 for by_env in cells.values())
        assert all(n == 3 for by_env in cells.values() for n in by_env.values())


def test_an_epoch_of_a_balanced_grid_visits_every_clip_once():
    scenes, envs = _grid(scenes=8, envs=4, clips=12)  # the quick corpus: 384 clips, 8 x 4 x 1 batches
    batches = SceneEnvironmentSampler(scenes, envs, 8, 4, 1).batches(seed=3, epoch=5)
    assert sorted(np.concatenate(batches).tolist()) == list(range(384))


def test_batches_depend_on_seed_and_epoch_only():
    scenes, envs = _grid()
    a = SceneEnvironmentSampler(scenes, envs, 8, 4, 1)
    b = SceneEnvironmentSampler(scenes, envs, 8, 4, 1)
    assert all(np.array_equal(x, y) for x, y in zip(a.batches(1, 2), b.batches(1, 2)))
    assert not all(np.array_equal(x, y) for x, y in zip(a.batches(1, 2), a.batches(1, 3)))


def test_fewer_environments_than_k_take_what_there_is():
    scenes = [0] * 4 + [1] * 4
    envs = [0, 0, 1, 1] + [0, 1, 2, 3]
    batch = SceneEnvironmentSampler(scenes, envs, 2, 4, 1).batches(0, 0)[0]
    assert sorted(scenes[i] for i in batch) == [0, 0, 1, 1, 1, 1]


def test_single_environment_scenes_are_named_and_only_negatives():
    scenes = [0, 0, 1, 1, 2, 2]
    envs = [0, 1, 0, 1, 0, 0]  # scene 2 is seen in one environment only
    with pytest.warns(UserWarning, match="only as negatives: park"):
        sampler = SceneEnvironmentSampler(scenes, envs, 3, 2, 1, scene_names=["bus", "metro", "park"])
    assert sampler.single_env_scenes == ["park"]


def test_no_scene_with_two_environments_is_an_error():
    with pytest.raises(NoCrossEnvironmentPairsError, match="no scene has training clips from two"):
        SceneEnvironmentSampler([0, 0, 1, 1], [0, 0, 1, 1], 2, 2, 1)
    with pytest.raises(ValueError, match="differ in length"):
        SceneEnvironmentSampler([0, 1], [0], 2, 2, 1)
