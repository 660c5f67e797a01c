"""tta-lsa backbones: split into features / head, usable by every TTA method (spec §4)."""

import pytest
import torch

from devicelab.core.config import ConfigError
from devicelab.methods.tta_lsa.model import build_backbone
from devicelab.methods.tta_lsa.tta import TTA_REGISTRY


def test_glyphnet_backbone_is_a_split_model_for_every_method(image_batch):
    model = build_backbone("glyphnet", 10).eval()
    assert model.features(image_batch).shape == (32, model.feature_dim)
    for name in ("tent", "eata", "sar", "lame"):
        assert TTA_REGISTRY.build(name, model)(image_batch).shape == (32, 10)
    sar = TTA_REGISTRY.build("sar", model)
    last_bn = dict(sar.model.named_modules())[model.last_stage_names[0]]
    assert isinstance(last_bn, torch.nn.BatchNorm2d) and id(last_bn.weight) not in {id(p) for p in sar.params}


def test_an_unknown_backbone_names_the_choices():
    with pytest.raises(ConfigError, match="cnn-tiny, glyphnet"):
        build_backbone("resnet-32", 10)
