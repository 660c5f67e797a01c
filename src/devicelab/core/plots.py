"""Run plots: matplotlib without a display, saved into the run's ``plots/`` and listed in metrics.json."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devicelab.core.run import RunContext


def new_figure(ncols: int = 1, figsize: tuple[float, float] = (6.0, 4.0)) -> tuple[Any, Any]:
    """``(figure, axes)`` of ``plt.subplots(1, ncols)`` on the Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(1, ncols, figsize=figsize)


def save_figure(ctx: RunContext, figure: Any, name: str, dpi: int = 110) -> Path:
    """Save ``figure`` as ``plots/NAME`` (tight layout), close it and list it in the run's plots."""
    import matplotlib.pyplot as plt

    path = ctx.plots_dir / name
    figure.tight_layout()
    figure.savefig(path, dpi=dpi)
    plt.close(figure)
    ctx.add_plot(path)
    return path
