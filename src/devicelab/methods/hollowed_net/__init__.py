"""Hollowed Net (Cho et al., NeurIPS 2024): LoRA personalisation of a U-Net with its deepest layers removed.

- ``layers``: the LDM layer numbering of a diffusers ``UNet2DConditionModel``, the exact layered forward and
  the hollowed forward at depth m with the injected activation a_m.
- ``precompute``: stage 1, fixed (k, ε, t) per sample and a_m from the full U-Net, stored on disk.
- ``hollow``: loading only the kept weights (hollowed modules stay on ``meta``), LoRA on the kept projections.
- ``finetune``: stage 2 and the baselines (``lora``, ``lora-kept``, ``full-ft``) on the same samples.
- ``transfer``: stage 3, the adapter back into the full U-Net (diffusers LoRA format), fused or not.
- ``personalize`` / ``cli``: the three stages end to end (``devicelab personalize``).
- ``pipeline``, ``pretrain``, ``evaluators``, ``sampling``: tiny text-to-image model, fidelity proxies;
  ``artefacts``: their one-time builds and which ones a run uses.
- ``config``, ``data``, ``recipe``, ``report``: the experiment's config, inputs, measurements (memory,
  transfer, fidelity) and tables; ``experiment``: the registered ``hollowed-net`` run and its claims H1-H5.
"""

from devicelab.methods.hollowed_net.config import HollowedNetConfig
from devicelab.methods.hollowed_net.finetune import OptimConfig, Variant
from devicelab.methods.hollowed_net.hollow import add_lora, load_kept, lora_parameters, lora_target_modules
from devicelab.methods.hollowed_net.layers import layered_forward
from devicelab.methods.hollowed_net.personalize import PersonalizeConfig, personalize
from devicelab.methods.hollowed_net.transfer import adapter_state_dict, fuse_adapter_, transfer_state_dict

__all__ = [
    "HollowedNetConfig",
    "OptimConfig",
    "PersonalizeConfig",
    "Variant",
    "adapter_state_dict",
    "add_lora",
    "fuse_adapter_",
    "layered_forward",
    "load_kept",
    "lora_parameters",
    "lora_target_modules",
    "personalize",
    "transfer_state_dict",
]
