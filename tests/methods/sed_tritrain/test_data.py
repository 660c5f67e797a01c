"""The task loader on a generated miniature DESED tree: counts, missing files, tags, empty rows, targets."""

from __future__ import annotations

import pytest
import torch

from devicelab.core.config import resolve_config
from devicelab.data.datasets.desed import DesedError
from devicelab.methods.sed_tritrain.config import SedTritrainConfig
from devicelab.methods.sed_tritrain.data import SedFrontEnd, load_task
from tests.methods.sed_tritrain.fixture import make_desed_tree


@pytest.fixture()
def config():
    return resolve_config(SedTritrainConfig, "smoke", {"desed.max_missing_fraction": 0.5})


def test_task_from_a_desed_tree(tmp_path, config):
    task = load_task(make_desed_tree(tmp_path / "DESED"), config, "desed")
    assert task.classes == ("Dog", "Speech")
    assert (len(task.synthetic), len(task.synthetic_valid)) == (3, 1)  # 25 % held out in smoke
    assert len(task.weak) == 2 and task.missing == [("weak", "w3.wav")]
    assert len(task.unlabeled) == 2 and len(task.validation) == 2 and len(task.test) == 2
    assert task.frame_s == pytest.approx(0.08) and task.out_frames == 125
    assert task.synthetic.features.dtype == torch.float16 and task.synthetic.features.shape[1:] == (250, 64)
    assert task.weak.tags.tolist() == [[1.0, 1.0], [0.0, 1.0]]
    v2 = task.validation.filenames.index("v2.wav")
    assert task.validation.strong[v2].sum() == 0 and task.validation.tags[v2].sum() == 0  # the empty row
    assert task.oracle_weak is None  # no metadata/oracle: real data
    assert task.test.events == [("p1.wav", 0.0, 1.0, "Dog"), ("p2.wav", 1.0, 2.0, "Dog")]


def test_unknown_label_names_the_file_and_line(tmp_path, config):
    root = make_desed_tree(tmp_path / "DESED")
    (root / "metadata/eval/public.tsv").write_text(
        "filename\tonset\toffset\tevent_label\np1.wav\t0\t1\tCat\n"
    )
    with pytest.raises(DesedError, match=r"public.tsv:2: unknown label 'Cat'"):
        load_task(root, config, "desed")


def test_too_many_missing_files_fail(tmp_path):
    config = resolve_config(SedTritrainConfig, "smoke")  # 0.2: one of three weak clips missing is too many
    with pytest.raises(DesedError, match=r"weak.tsv: 1 of 3 clips have no audio"):
        load_task(make_desed_tree(tmp_path / "DESED"), config, "desed")


def test_renamed_subsets_are_mapped_by_config(tmp_path):
    root = make_desed_tree(tmp_path / "DESED")
    (root / "metadata/train/synthetic.tsv").rename(root / "metadata/train/synthetic21.tsv")
    (root / "audio/train/synthetic").rename(root / "audio/train/synthetic21")
    config = resolve_config(
        SedTritrainConfig,
        "smoke",
        {
            "desed.max_missing_fraction": 0.5,
            "desed.paths.synthetic": "metadata/train/synthetic21.tsv",
            "desed.audio_paths.synthetic": "audio/train/synthetic21",
        },
    )
    assert len(load_task(root, config, "desed").synthetic) == 3


def test_front_end_shapes():
    quick, full = SedFrontEnd("quick"), SedFrontEnd("full")
    assert quick(torch.zeros(1, 160000)).shape == (1, 1, 250, 64)
    assert full(torch.zeros(1, 441000)).shape == (1, 1, 864, 64)
