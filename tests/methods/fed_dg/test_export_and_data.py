"""ONNX export of IFA inference, loaders on a generated PACS tree, bad input."""

import numpy as np
import pytest
import torch
from PIL import Image

from devicelab.methods.fed_dg.algorithms import ModelConfig, build_model
from devicelab.methods.fed_dg.bn import bn_mode
from devicelab.methods.fed_dg.data import DirectoryDomains, LodoSplit, stratified_subset, to_tensor

PACS = ("art_painting", "cartoon", "photo", "sketch")
CLASSES = ("dog", "elephant", "giraffe", "guitar", "horse", "house", "person")


def test_onnx_ifa_matches_torch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from devicelab.methods.fed_dg.export import export_ifa_onnx

    torch.manual_seed(0)
    model = build_model(ModelConfig(widths=(4, 8, 8, 8)))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".ifa." in name:
                p.normal_(0, 0.3)  # an adapter that actually mixes
    path = export_ifa_onnx(model, tmp_path / "fedfd_a.onnx", image_size=16)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad(), bn_mode(model.eval(), "ifa"):
        ref = model(x).numpy()
    out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(out, ref, atol=1e-5, rtol=0)


def fake_pacs(root, domains=PACS, per_class=3):
    rng = np.random.default_rng(0)
    for d in domains:
        for c in CLASSES:
            folder = root / d / c
            folder.mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return root


def test_leave_one_domain_out_on_a_fake_pacs_tree(tmp_path):
    source = DirectoryDomains(fake_pacs(tmp_path / "pacs"), image_size=16)
    assert source.domains() == list(PACS) and source.num_classes() == 7
    split = LodoSplit(source, "sketch")
    assert split.sources == ["art_painting", "cartoon", "photo"]
    data = split.client_data(2)
    assert data.domain == "photo" and data.images.shape[1:] == (3, 16, 16)
    x, y = split.test_set()
    assert len(y) == 7 * 3  # the held-out domain is tested in full
    assert {d for who, d, _ in source.access_log if who.startswith("client")} == {"photo"}


def test_missing_domain_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="sketch"):  # when the source is opened, before any round
        DirectoryDomains(fake_pacs(tmp_path / "pacs", domains=PACS[:3]))


def test_bad_images_and_subsets():
    with pytest.raises(ValueError, match="shape"):
        to_tensor(np.zeros((2, 8, 8), np.uint8))
    labels = np.repeat(np.arange(4), 10)
    idx = stratified_subset(labels, 8, np.random.default_rng(0))
    assert len(idx) == 8 and np.bincount(labels[idx]).tolist() == [2, 2, 2, 2]


def test_resnet18_loads_a_plain_bn_initialisation(tmp_path):
    from safetensors.torch import save_file
    from torch import nn

    from devicelab.methods.fed_dg.resnet import ResNet18

    widths = (8, 8, 16, 16)
    plain = ResNet18(num_classes=1000, norm_layer=nn.BatchNorm2d, widths=widths)
    save_file({k: v.contiguous() for k, v in plain.state_dict().items()}, str(tmp_path / "init.safetensors"))
    cfg = ModelConfig(
        backbone="resnet18", widths=widths, num_classes=7, init_weights=str(tmp_path / "init.safetensors")
    )
    model = build_model(cfg)
    torch.testing.assert_close(model.conv1.weight, plain.conv1.weight)
    assert model.fc.weight.shape == (7, 16)  # the 1000-class head is not loaded
    with pytest.raises(FileNotFoundError, match="initial weights"):
        build_model(ModelConfig(backbone="resnet18", widths=widths, init_weights=str(tmp_path / "none.st")))
