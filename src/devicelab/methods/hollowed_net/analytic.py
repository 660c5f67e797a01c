"""What each hollow depth m removes from a U-Net, counted on the ``meta`` device (spec §7).

For SD-1.5 the U-Net is built from the public config dict typed into :mod:`configs` (no weights, no download).
"""

from __future__ import annotations

from typing import Any

import torch

from devicelab.methods.hollowed_net.hollow import _under, attention_projections
from devicelab.methods.hollowed_net.layers import injected_shape, ldm_layout
from devicelab.methods.hollowed_net.unet_configs import SD15_UNET_CONFIG


def meta_unet(config: dict[str, Any]):
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        return UNet2DConditionModel.from_config(config)


def hollow_table(
    config: dict[str, Any] | None = None,
    depths: range | list[int] | None = None,
    latent_hw: tuple[int, int] = (64, 64),
    bytes_per_element: int = 2,
) -> list[dict[str, Any]]:
    """One row per m: layers, parameters and attention projections hollowed, the shape and size of a_m."""
    unet = meta_unet(config or SD15_UNET_CONFIG)
    layout = ldm_layout(unet)
    named = dict(unet.named_parameters())
    total = sum(p.numel() for p in named.values())
    projections = attention_projections(unet)
    proj_weights = {n: sum(p.numel() for k, p in named.items() if k.startswith(n + ".")) for n in projections}
    proj_total = sum(proj_weights.values())
    rows = []
    for m in depths if depths is not None else range(layout.max_depth + 1):
        prefixes = layout.hollowed_prefixes(m)
        hollowed = sum(p.numel() for k, p in named.items() if _under(k, prefixes))
        gone = [n for n in projections if _under(n, prefixes)]
        shape = injected_shape(unet, m, latent_hw)
        a_elems = 1
        for d in shape[1:]:
            a_elems *= d
        rows.append(
            {
                "m": m,
                "layers_hollowed": 2 * m + 1,
                "layers_fraction": (2 * m + 1) / len(layout.layers),
                "params_hollowed": hollowed,
                "params_fraction": hollowed / total,
                "params_kept": total - hollowed,
                "projections_hollowed": len(gone),
                "projections_total": len(projections),
                "projection_weight_fraction": sum(proj_weights[n] for n in gone) / proj_total,
                "a_m_shape": "×".join(map(str, shape[1:])),
                "a_m_bytes": a_elems * bytes_per_element,
                "params_total": total,
            }
        )
    return rows


def format_hollow_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| m | layers hollowed | params hollowed | params kept | attention projections hollowed | a_m "
        "| a_m (fp16) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['m']} | {r['layers_hollowed']} ({r['layers_fraction']:.0%}) | {r['params_fraction']:.1%} "
            f"({r['params_hollowed'] / 1e6:.1f} M) | {r['params_kept'] / 1e6:.1f} M | "
            f"{r['projections_hollowed']} of {r['projections_total']} "
            f"({r['projection_weight_fraction']:.1%}) | "
            f"{r['a_m_shape']} | {r['a_m_bytes'] / 1e6:.2f} MB |"
        )
    return "\n".join(lines)
