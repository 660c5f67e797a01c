"""Hollowed Net (Cho et al., NeurIPS 2024): LoRA personalisation of a U-Net with its deepest layers removed.

- ``layers``: the LDM layer numbering of a diffusers ``UNet2DConditionModel``, the exact layered forward and
  the hollowed forward at depth m with the injected activation a_m.
- ``precompute``: stage 1, fixed (k, ε, t) per sample and a_m from the full U-Net, stored on disk.
- ``hollow``: loading only the kept weights (hollowed modules stay on ``meta``), LoRA on the kept projections.
- ``finetune``: stage 2 and the baselines (``lora``, ``lora-kept``, ``full-ft``) on the same samples.
- ``transfer``: stage 3, the adapter back into the full U-Net (diffusers LoRA format), fused or not.
- ``personalize`` / ``cli``: the three stages end to end (``devicelab personalize``).
- ``pipeline``, ``pretrain``, ``evaluators``, ``sampling``: tiny text-to-image model, fidelity proxies.
- ``experiment``: the registered ``hollowed-net`` experiment and its claims H1-H5.
"""
