"""Loaders: a generated VoxCeleb1 tree in both published layouts, by-session splits, the feature cache, and
errors that name what is missing; the generated feature speakers of spec §5."""

import numpy as np
import pytest
import torch

from devicelab.audio.io import write_wav
from devicelab.data.datasets.voxceleb import VoxCelebError
from devicelab.methods.fed_ua.data import FeatureConfig, load_vox_task, synthetic_task

SPEAKERS = {"id10001": "dev", "id10002": "dev", "id10270": "test"}


def make_tree(root, layout="flat", sessions=3, per_session=2, meta_extra=()):
    """A tiny VoxCeleb1 tree: 3 speakers x ``sessions`` videos x ``per_session`` 0.4 s utterances."""
    rng = np.random.default_rng(0)
    for spk, part in SPEAKERS.items():
        base = root / "wav" if layout == "flat" else root / part / "wav"
        for s in range(sessions):
            for u in range(per_session):
                audio = (0.1 * rng.standard_normal(6400)).astype(np.float32)
                write_wav(base / spk / f"vid{s}" / f"{u + 1:05d}.wav", audio, 16000)
    rows = ["VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet"]
    rows += [f"{spk}\tname\tm\tnone\t{part}" for spk, part in [*SPEAKERS.items(), *meta_extra]]
    (root / "vox1_meta.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.mark.parametrize("layout", ["flat", "split"])
def test_reads_both_layouts_and_splits_by_session(tmp_path, layout):
    root = make_tree(tmp_path / layout, layout)
    cfg = FeatureConfig(n_mels=16, crop_s=0.3)
    task = load_vox_task(root, original_users=1, late_users=1, features=cfg)
    assert [u.speaker for u in task.unseen] == ["id10270"]
    assert sorted(u.speaker for u in task.users) == ["id10001", "id10002"]
    for u in task.users:
        assert u.train.shape == (2, 16, 31) and u.warmup.shape == (2, 16, 31) and u.test.shape == (2, 16, 31)
    assert list((root / "features").glob("fed-ua-*.safetensors"))  # cached beside the data
    again = load_vox_task(root, original_users=1, late_users=1, features=cfg)
    assert torch.equal(again.users[0].train, task.users[0].train)
    data = task.client_data(1)
    assert data.labels.tolist() == [1, 1] and data.inputs.dtype == torch.float32


def test_missing_speaker_folder_is_named(tmp_path):
    root = make_tree(tmp_path, meta_extra=[("id10009", "dev")])
    with pytest.raises(VoxCelebError, match="id10009"):
        load_vox_task(root, 1, 1, features=FeatureConfig(n_mels=16, crop_s=0.3))
    assert not (root / "features").exists()  # nothing half-written


def test_missing_layout_and_too_few_speakers_are_named(tmp_path):
    with pytest.raises(VoxCelebError, match="wav/"):
        load_vox_task(tmp_path, 1, 1)
    root = make_tree(tmp_path / "t")
    with pytest.raises(VoxCelebError, match="needs 5"):
        load_vox_task(root, 4, 1, features=FeatureConfig(n_mels=16, crop_s=0.3))


def test_speakers_with_too_few_sessions_are_left_out_with_a_note(tmp_path):
    root = make_tree(tmp_path, sessions=2)
    with pytest.raises(VoxCelebError, match="usable dev speakers"):
        load_vox_task(root, 1, 1, features=FeatureConfig(n_mels=16, crop_s=0.3))


def test_synthetic_speakers_are_separable_by_identity():
    task = synthetic_task(6, 2, 4, seed=0)
    assert len(task.users) == 8 and len(task.unseen) == 4 and task.users[0].train.shape == (6, 40, 20)
    means = torch.stack([u.train.float().mean((0, 2)) for u in task.users])
    tests = torch.stack([u.test.float().mean((0, 2)) for u in task.users])
    nearest = torch.cdist(tests, means).argmin(1)
    assert (nearest == torch.arange(8)).float().mean() >= 0.75
